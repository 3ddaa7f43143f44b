"""The not-authenticated state: STARTTLS, LOGIN, AUTHENTICATE (RFC 9051 6.2, RFC 4959).

Passwords in the clear (LOGIN, AUTHENTICATE PLAIN/LOGIN) are refused with
``NO [PRIVACYREQUIRED]`` where ``Authenticator.plaintext_allowed`` says so (unencrypted,
not loopback), and LOGINDISABLED is advertised there (RFC 9051 6.2.3). The authenticator
delays failures; the session counts them and closes after ``max_failures``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mailkeep.auth.sasl import Challenge, Failure, FailureCode
from mailkeep.auth.service import Authenticated
from mailkeep.imap import commands as c
from mailkeep.imap import connection as wire
from mailkeep.imap import responses
from mailkeep.imap.handlers.base import NOT_AUTHENTICATED, Result, State, bad, handles, no
from mailkeep.net.listeners import ConnectionClosed

if TYPE_CHECKING:
    from mailkeep.imap.session import Session

log = logging.getLogger("mailkeep.imap")


@handles(c.StartTls, NOT_AUTHENTICATED, announce=False)
async def starttls(session: Session, tag: str, command: c.StartTls) -> Result:
    """RFC 9051 6.2.1: answer OK, then negotiate; octets the client pipelined after the
    command in clear text are dropped, never acted on."""
    if session.transport.tls:
        raise bad("TLS is already active")
    if not session.transport.can_start_tls:
        raise bad("STARTTLS is not available (no certificate configured)")

    async def negotiate() -> None:
        dropped = session.wire.start_tls()
        if dropped:
            log.warning("%s: dropped %d octets pipelined after STARTTLS", _peer(session), dropped)
        try:
            await session.transport.start_tls()
        except (OSError, ValueError) as exc:
            log.info("%s: TLS negotiation failed: %s", _peer(session), exc)
            session.state = State.LOGOUT

    return Result("OK", "begin TLS negotiation now", after=negotiate)


@handles(c.Login, NOT_AUTHENTICATED)
async def login(session: Session, tag: str, command: c.Login) -> Result:
    """RFC 9051 6.2.3."""
    if not session.plaintext_ok():
        raise no("use STARTTLS (or a TLS port) before LOGIN", responses.PRIVACYREQUIRED)
    user = command.username.decode("utf-8", "replace")
    password = command.password.decode("utf-8", "replace")
    credentials = await session.services.auth.login(user, password, session.transport.remote)
    if credentials is None:
        await session.login_failed()
        raise no("authentication failed", responses.AUTHENTICATIONFAILED)
    await session.logged_in(credentials)
    return Result("OK", "logged in", responses.capability_code(session.capability_list()))


_FAILURES: dict[FailureCode, tuple[str, bytes | None]] = {
    FailureCode.AUTHENTICATION_FAILED: ("NO", responses.AUTHENTICATIONFAILED),
    FailureCode.AUTHORIZATION_FAILED: ("NO", responses.AUTHORIZATIONFAILED),
    FailureCode.ENCRYPTION_REQUIRED: ("NO", responses.PRIVACYREQUIRED),
    FailureCode.UNKNOWN_MECHANISM: ("NO", responses.CANNOT),
    FailureCode.UNAVAILABLE: ("NO", responses.UNAVAILABLE),
    FailureCode.CANCELLED: ("BAD", None),  # RFC 9051 6.2.2: a cancelled exchange is BAD
    FailureCode.MALFORMED: ("BAD", None),
}


@handles(c.Authenticate, NOT_AUTHENTICATED)
async def authenticate(session: Session, tag: str, command: c.Authenticate) -> Result:
    """RFC 9051 6.2.2 with SASL-IR (RFC 4959): challenges go out as ``+ base64``, each
    client line comes back through the wire layer's AUTHENTICATE mode."""
    transport = session.transport
    exchange = session.services.auth.sasl(
        command.mechanism, remote=transport.remote, tls=transport.tls, loopback=transport.loopback
    )
    result = await exchange.start(command.initial_response)
    while isinstance(result, Challenge):
        await session.send(responses.continuation_base64(result.data))
        session.wire.start_authenticate(tag)
        event = await session.next_event()
        match event:
            case wire.AuthResponse(data=None):
                result = exchange.cancel()
            case wire.AuthResponse(data=bytes() as data):
                result = await exchange.step(data)
            case wire.CommandError(reason=reason):
                exchange.cancel()
                raise bad(reason)
            case wire.ConnectionClosed():
                raise ConnectionClosed
            case _:
                exchange.cancel()
                raise bad("unexpected input during AUTHENTICATE")
    if isinstance(result, Authenticated):
        await session.logged_in(result.credentials)
        return Result("OK", "logged in", responses.capability_code(session.capability_list()))
    assert isinstance(result, Failure)
    if result.code in (FailureCode.AUTHENTICATION_FAILED, FailureCode.AUTHORIZATION_FAILED):
        await session.login_failed()
    status, code = _FAILURES[result.code]
    return Result(status, result.reason, code)


def _peer(session: Session) -> str:
    return session.transport.remote
