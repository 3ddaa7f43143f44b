"""asyncio glue for SMTP (MX), submission and LMTP: the only SMTP module doing I/O.

``handler(app, listener)`` gives ``serve`` one coroutine per connection: it reads octets
into a ``session.Session``, answers its events with the store, the authenticator and
delivery, and writes the replies. Replies to pipelined commands are collected and
written when the session needs more input, or before anything slow (a login, a delivery)
so the client is never left waiting for answers we already have (RFC 2920 section 3.1).

Policy decided here (the session machine decides the protocol):

* Submission: the envelope sender must be the authenticated account (``+tag`` allowed);
  anything else, the null sender included, is 553 5.7.1. Recipients must be local users:
  mailkeep has no outgoing queue yet, so mail for other domains is refused at RCPT with
  550 5.7.1 saying so.
* SMTP and LMTP accept mail only for existing accounts of the domains we serve (550 5.1.1
  for unknown users, 550 5.7.1 for other domains: never an open relay).
* A store failure while checking a recipient is 451 4.3.0 for that recipient.
* One log line per session: who, how it ended, what was accepted and refused.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailkeep.auth.sasl import Challenge, Failure
from mailkeep.auth.service import Authenticated, SaslResult, SaslSession
from mailkeep.errors import MailkeepError
from mailkeep.net.listeners import Connection, ConnectionClosed
from mailkeep.smtp.commands import Reply, reply
from mailkeep.smtp.delivery import Envelope, Status, base_address
from mailkeep.smtp.session import (
    AUTH_SUCCEEDED,
    TEMPORARY_FAILURE,
    AuthResponse,
    AuthStarted,
    MessageReceived,
    Mode,
    NeedData,
    RecipientProposed,
    Respond,
    SenderProposed,
    Session,
    Settings,
    TlsRequested,
    auth_failure_reply,
    delivery_replies,
    recipient_reply,
    sender_ok,
)
from mailkeep.smtp.session import ConnectionClosed as SessionClosed

if TYPE_CHECKING:
    from mailkeep.app import App

log = logging.getLogger("mailkeep.smtp")

MODES = {
    "smtp": Mode.SMTP,
    "submission": Mode.SUBMISSION,
    "submissions": Mode.SUBMISSION,
    "lmtp": Mode.LMTP,
}

TLS_HANDSHAKE_TIMEOUT = 30.0
MIN_DATA_RATE = 1024
"""Octets per second a client must average while sending message data, beyond the
``smtp_timeout`` every command gets (50 MB may take over 14 hours at this rate)."""


def handler(app: App, listener: str) -> Callable[[Connection], Awaitable[None]]:
    """The connection handler for ``listener`` (smtp, submission, submissions, lmtp)."""
    mode = MODES[listener]

    async def handle(connection: Connection) -> None:
        await Conversation(app, listener, mode, connection).run()

    return handle


def refusal(why: str) -> bytes:
    """The goodbye for a connection the limits refuse (RFC 5321 3.8: 421 and close)."""
    return reply(421, "4.7.0", why).encode()


@dataclass
class _Tally:
    messages: int = 0
    recipients: int = 0
    refused: int = 0


class Conversation:
    """One client connection: a ``Session`` driven over a ``Connection``."""

    def __init__(self, app: App, listener: str, mode: Mode, connection: Connection) -> None:
        self.app = app
        self.listener = listener
        self.mode = mode
        self.connection = connection
        self.user: str | None = None
        self.tally = _Tally()
        self._out = bytearray()
        self._sasl: SaslSession | None = None
        self.session = Session(self._settings())

    def _settings(self) -> Settings:
        config = self.app.config
        connection = self.connection
        auth_clear: tuple[str, ...] = ()
        auth_tls: tuple[str, ...] = ()
        if self.mode is Mode.SUBMISSION:
            authenticator = self.app.auth
            loopback = connection.loopback
            auth_tls = authenticator.mechanisms(tls=True, loopback=loopback)
            if authenticator.plaintext_allowed(False, loopback):
                auth_clear = authenticator.mechanisms(tls=False, loopback=loopback)
        return Settings(
            self.mode,
            config.hostname,
            max_line=config.limits.max_line,
            max_message=config.limits.max_message,
            max_auth_failures=config.auth.max_failures,
            tls=connection.tls,
            starttls=connection.can_start_tls,
            auth_clear=auth_clear,
            auth_tls=auth_tls,
        )

    _deadline = 0.0

    async def run(self) -> None:
        ended = "client closed the connection"
        try:
            ended = await self._converse()
        except ConnectionClosed:
            ended = "client went away"
        except asyncio.CancelledError:
            ended = "server shutting down"
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    await self.connection.write(
                        self.session.shutdown(reply(421, "4.3.2", "server shutting down"))
                    )
            raise
        except Exception:
            ended = "internal error"
            log.exception("%s %s: session failed", self.listener, self.connection.remote)
            with contextlib.suppress(ConnectionClosed):
                await self.connection.write(
                    self.session.shutdown(reply(421, "4.3.0", "internal error; closing"))
                )
        finally:
            self._log_end(ended)

    async def _converse(self) -> str:
        session = self.session
        await self.connection.write(session.greeting())
        self._restart_clock()
        while True:
            event = session.next_event()
            if not isinstance(event, NeedData):
                self._restart_clock()
            match event:
                case NeedData():
                    await self._flush()
                    data = await self._read()
                    if data is None:
                        await self.connection.write(session.timeout())
                        return "timeout"
                    session.receive_data(data)
                case SessionClosed(reason):
                    await self._flush()
                    return reason
                case Respond(replies):
                    for answer in replies:
                        self._out += session.send(answer)
                case SenderProposed(address, _):
                    self._out += session.send(self._sender(address))
                case RecipientProposed(address, size):
                    self._out += session.send(await self._recipient(address, size))
                case AuthStarted(mechanism, initial):
                    await self._flush()
                    self._sasl = self.app.auth.sasl(
                        mechanism,
                        remote=self.connection.remote,
                        tls=session.tls,
                        loopback=self.connection.loopback,
                    )
                    self._out += session.send(self._auth_reply(await self._sasl.start(initial)))
                case AuthResponse(data):
                    assert self._sasl is not None
                    sasl = self._sasl
                    result = sasl.cancel() if data is None else await sasl.step(data)
                    self._out += session.send(self._auth_reply(result))
                case TlsRequested(answer):
                    self._out += session.send(answer)
                    await self._flush()
                    if not await self._start_tls():
                        return "TLS handshake failed"
                case MessageReceived():
                    await self._flush()
                    for answer in await self._deliver(event):
                        self._out += session.send(answer)
            if session.closed:
                await self._flush()
                return session.ended

    def _restart_clock(self) -> None:
        """A command (or the message) is complete: the next one gets ``smtp_timeout``."""
        self._deadline = asyncio.get_running_loop().time() + self.app.config.limits.smtp_timeout

    async def _read(self) -> bytes | None:
        """Next octets; b"" at end of input; None when the client took too long.

        Silence is limited per read (RFC 5321 4.5.3.2), and against clients trickling an
        octet now and then (slowloris) a command line must be complete within
        ``smtp_timeout`` of the previous one; message data may take longer, but only at
        ``MIN_DATA_RATE`` octets per second or faster on average.
        """
        timeout = float(self.app.config.limits.smtp_timeout)
        loop = asyncio.get_running_loop()
        started = loop.time()
        within = min(timeout, self._deadline - started)
        if within <= 0:
            return None
        data = await self.connection.read(within=within)
        if not data and loop.time() - started >= within * 0.99:
            return None
        if self.session.receiving_message:
            self._deadline += len(data) / MIN_DATA_RATE
        return data

    async def _flush(self) -> None:
        if self._out:
            data, self._out = bytes(self._out), bytearray()
            await self.connection.write(data)

    async def _start_tls(self) -> bool:
        try:
            async with asyncio.timeout(TLS_HANDSHAKE_TIMEOUT):
                await self.connection.start_tls()
        except (TimeoutError, ssl.SSLError, ConnectionError, OSError, RuntimeError) as exc:
            log.info("%s %s: STARTTLS failed: %s", self.listener, self.connection.remote, exc)
            return False
        return True

    # ---------------------------------------------------------------- decisions

    def _sender(self, address: str) -> Reply:
        if self.mode is Mode.SUBMISSION:
            user = self.user or ""
            if not address or base_address(address) != base_address(user):
                shown = address or "the null sender <>"
                return reply(553, "5.7.1", f"<{shown}>: not your address (logged in as {user})")
        return sender_ok()

    async def _recipient(self, address: str, size: int | None) -> Reply:
        try:
            status = await self.app.delivery.accept(address, size)
        except MailkeepError as exc:
            log.warning("%s: cannot check recipient <%s>: %s", self.listener, address, exc)
            status = Status.TEMPORARY
        answer = recipient_reply(status, address, self.mode)
        if answer.positive:
            self.tally.recipients += 1
        else:
            self.tally.refused += 1
            log.info(
                "%s %s: recipient <%s> refused: %s",
                self.listener,
                self.connection.remote,
                address,
                status.value,
            )
        return answer

    def _auth_reply(self, result: SaslResult) -> Reply:
        match result:
            case Challenge(data):
                return Reply(334, "", (base64.b64encode(data).decode("ascii"),))
            case Authenticated(credentials):
                self.user = credentials.address
                self._sasl = None
                return AUTH_SUCCEEDED
            case Failure():
                self._sasl = None
                return auth_failure_reply(result)
        raise AssertionError(f"unexpected SASL result {result!r}")  # pragma: no cover

    async def _deliver(self, event: MessageReceived) -> list[Reply]:
        session = self.session
        envelope = Envelope(
            event.mail_from,
            helo=session.helo,
            client=self.connection.remote,
            protocol=session.protocol,
            tls=session.tls,
        )
        try:
            outcomes = await self.app.delivery.deliver(event.data, envelope, event.recipients)
        except Exception:
            log.exception("%s %s: delivery failed", self.listener, self.connection.remote)
            return [TEMPORARY_FAILURE] * event.replies_due
        if any(o.delivered for o in outcomes):
            self.tally.messages += 1
        return delivery_replies(self.mode, outcomes)

    def _log_end(self, ended: str) -> None:
        session, tally = self.session, self.tally
        log.info(
            "%s %s helo=%s%s%s: %d message(s) accepted, %d recipient(s) accepted,"
            " %d refused, %d error(s); %s",
            self.listener,
            self.connection.remote,
            session.helo or "-",
            f" user={self.user}" if self.user else "",
            " tls" if session.tls else "",
            tally.messages,
            tally.recipients,
            tally.refused,
            session.errors,
            ended,
        )
