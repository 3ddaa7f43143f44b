"""One POP3 session (RFC 1939, with RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH and
RFC 6856 UTF8/LANG): octets in, actions out. No sockets: ``server.py`` feeds what it
reads and performs the actions::

    session = Session(store, authenticator, settings, peer)
    send(session.greeting())
    session.receive_data(data)                      # b"" never: the server handles EOF
    while (actions := await session.next_actions()) is not None:
        for action in actions:
            match action:
                case Send(data): write(data)
                case Stream(head, body): write(head); write each piece of body; aclose it
                case StartTls(): upgrade; session.tls_started()
                case Close(): close the connection
    ...
    await session.close()                           # always: releases the maildrop

``Stream`` carries a message body as a ``Body``: dot-stuffed chunks read from the
blob piece by piece, so a large message is never held whole. What a download implies
(the first-download time for retention, ``\\Seen`` when configured) is recorded after
the last chunk, so a download that was cut off counts as none.

The maildrop is INBOX. At login the session takes the account's POP3 lock and a
snapshot (UIDs and sizes, from the index: no blob is read), numbers the messages 1..n
and keeps that view: mail delivered later appears in the next session, DELE only marks,
and QUIT removes the marked messages (and, under ``delete-after-retr``, the retrieved
ones) in one transaction that open IMAP sessions see as an expunge. A session that ends
any other way removes nothing. A message expunged meanwhile by IMAP answers RETR/TOP
with ``-ERR``; QUIT removes whatever of the marked messages still exists.

Decisions where the RFCs leave room:

* USER always answers +OK (no account enumeration); PASS says whether the pair was
  right. A second USER replaces the first. Failed logins are delayed by the
  authenticator; after ``max_failures`` the connection is closed.
* Plain-text passwords (USER/PASS, SASL PLAIN/LOGIN) are refused with
  ``-ERR [SYS/PERM]`` where ``Authenticator.plaintext_allowed`` says no; CAPA then
  does not offer USER, PLAIN or LOGIN.
* UIDL is ``%08X%08X`` of UID and UIDVALIDITY (Dovecot's default ``%08Xu%08Xv``):
  stable across sessions, restarts, flag changes and ``mailkeep store copy``, never
  reused, and the same as Dovecot's after a migration that keeps UIDs and UIDVALIDITY.
* RFC 6856: a message whose header holds UTF-8 (RFC 6532) is refused to RETR/TOP with
  ``-ERR [UTF8]`` unless the client sent UTF8 before logging in (we make no downgraded
  surrogates); LIST/STAT sizes stay the exact stored octets. Raw 8-bit header octets
  that are not UTF-8 (legacy mail) are sent as they are.
* A TOP that sends the whole message (fetchmail's ``keep`` mode uses ``TOP n
  99999999``) starts the ``days:N`` clock like RETR, but sets no ``\\Seen`` and is no
  RETR for ``delete-after-retr``.
* LANG offers English only. AUTH without a mechanism lists the mechanisms (the form
  of the pre-RFC 5034 drafts that some clients still send).
* EXPIRE before login is ``0 USER``: any account may be set to delete-after-retr, and
  RFC 2449 6.7 wants the smallest value that could apply; after login, the account's.
* LOGIN-DELAY (``[pop3] login_delay``) is enforced from the time of the last
  successful login, kept in the account setting ``pop3.last-login`` so that it holds
  across restarts and nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from array import array
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from mailkeep import __version__
from mailkeep.auth.sasl import (
    Challenge,
    Failure,
    FailureCode,
    SaslEncodingError,
    decode_initial_response,
    decode_response,
    encode_challenge,
)
from mailkeep.auth.service import Authenticated, Authenticator, SaslResult, SaslSession
from mailkeep.config import Config, Pop3Config
from mailkeep.errors import MailkeepError, NotFound, TemporaryFailure
from mailkeep.mail.flags import SystemFlag
from mailkeep.pop3 import commands as c
from mailkeep.pop3.readahead import ReadAhead
from mailkeep.pop3.retention import Kind, Policy, account_policy, server_policy
from mailkeep.pop3.wire import (
    CRLF,
    DotStuffer,
    Line,
    LineLimiter,
    LineReader,
    LineTooLong,
    NeedData,
    err,
    multiline,
    ok,
)
from mailkeep.store.api import (
    BlobReader,
    Credentials,
    FetchField,
    FlagMode,
    Mailbox,
    MessageRow,
    Store,
)
from mailkeep.store.names import INBOX

log = logging.getLogger("mailkeep.pop3")

LAST_LOGIN_SETTING = "pop3.last-login"
LANGUAGES = {"en": "English"}
BLOB_CHUNK = 65536
TOP_CHUNK = 8192
"""TOP usually wants a few lines: read the body in small pieces."""
ROW_BATCH = 100
"""RETR and TOP load the stored rows (header, blob name, size) of this many messages at
once: a client downloading a maildrop asks for them in order, and one store read per
message cost more than sending it."""
RECORD_AT = 500
"""Downloads recorded in memory before they are written even while commands keep coming."""


# ---------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Send:
    data: bytes


class Body:
    """A message body on its way out: dot-stuffed chunks, the terminator last. The blob
    it reads is released when the chunks run out or on ``aclose``, which the consumer
    must call if it stops early, even before the first chunk."""

    def __init__(self, chunks: AsyncGenerator[bytes, None], reader: BlobReader | None) -> None:
        self._chunks = chunks
        self._reader = reader

    def __aiter__(self) -> Body:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._chunks.__anext__()
        except BaseException:
            await self._release()
            raise

    async def aclose(self) -> None:
        try:
            await self._chunks.aclose()
        finally:
            await self._release()

    async def _release(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.close()


@dataclass(frozen=True, slots=True)
class Stream:
    """Send ``head``, then every chunk of ``body``; ``aclose`` it if the connection
    fails midway."""

    head: bytes
    body: Body


@dataclass(frozen=True, slots=True)
class StartTls:
    """The ``+OK`` of STLS was sent: upgrade the connection, then ``tls_started()``."""


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection after the actions before this one."""


Action = Send | Stream | StartTls | Close


class State(enum.Enum):
    """RFC 1939 section 3."""

    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"


ALLOWED: dict[State, frozenset[type[c.Command]]] = {
    State.AUTHORIZATION: frozenset(
        {c.User, c.Pass, c.Apop, c.Auth, c.Stls, c.Capa, c.Utf8, c.Lang, c.Quit}
    ),
    State.TRANSACTION: frozenset(
        {c.Stat, c.List, c.Retr, c.Dele, c.Noop, c.Rset, c.Top, c.Uidl, c.Capa, c.Lang, c.Quit}
    ),
    State.UPDATE: frozenset(),
}
"""Which commands each state accepts; anything else gets ``-ERR`` and changes nothing."""


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class Settings:
    """What a session needs from the configuration (validated once, at startup)."""

    hostname: str
    pop3: Pop3Config
    policy: Policy
    max_line: int
    max_failures: int
    implementation: str = f"mailkeep-{__version__}"

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        """Raises ConfigError when ``[pop3] retention`` is malformed."""
        return cls(
            hostname=config.hostname,
            pop3=config.pop3,
            policy=server_policy(config.pop3),
            max_line=config.limits.max_line,
            max_failures=config.auth.max_failures,
        )


@dataclass(frozen=True, slots=True)
class Peer:
    remote: str
    tls: bool
    loopback: bool
    can_start_tls: bool


# ---------------------------------------------------------------------------- maildrop


class Maildrop:
    """The session's numbered view of INBOX (RFC 1939 section 5: message numbers are
    fixed for the session; messages marked deleted are not counted)."""

    def __init__(self, mailbox: Mailbox, uids: Sequence[int], sizes: Sequence[int]) -> None:
        self.mailbox_id = mailbox.id
        self.uidvalidity = mailbox.uidvalidity
        self.uids = array("q", uids)
        self.sizes = array("q", sizes)
        self.deleted = bytearray(len(self.uids))
        self.retrieved: set[int] = set()
        """Indexes downloaded with RETR in this session."""
        self.downloaded: set[int] = set()
        """Indexes whose download time was recorded in this session."""
        self.count = len(self.uids)
        self.octets = sum(self.sizes)

    def __len__(self) -> int:
        return len(self.uids)

    def uidl(self, index: int) -> bytes:
        return b"%08X%08X" % (self.uids[index], self.uidvalidity)

    def delete(self, index: int) -> None:
        self.deleted[index] = 1
        self.count -= 1
        self.octets -= self.sizes[index]

    def undelete_all(self) -> None:
        self.deleted = bytearray(len(self.uids))
        self.count = len(self.uids)
        self.octets = sum(self.sizes)

    def to_remove(self, policy: Policy) -> list[int]:
        """UIDs to expunge on QUIT: those marked, and under delete-after-retr (EXPIRE 0,
        RFC 2449 6.7: "an implicit DELE for each message downloaded with RETR") those
        retrieved."""
        chosen = {i for i, d in enumerate(self.deleted) if d}
        if policy.retention.kind is Kind.DELETE_AFTER_RETR:
            chosen |= self.retrieved
        return [self.uids[i] for i in sorted(chosen)]


def needs_utf8(header: bytes) -> bool:
    """Whether a stored header holds UTF-8 beyond ASCII (RFC 6532, RFC 6856 section 2.1)."""
    if header.isascii():
        return False
    try:
        header.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# ---------------------------------------------------------------------------- session


class Session:
    def __init__(
        self,
        store: Store,
        auth: Authenticator,
        settings: Settings,
        peer: Peer,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.auth = auth
        self.settings = settings
        self.peer = peer
        self.clock = clock
        self.state = State.AUTHORIZATION
        self.account: str | None = None
        self.policy = settings.policy
        self.maildrop: Maildrop | None = None
        self._reader = LineReader(settings.max_line)
        self._tls = peer.tls
        self._user: str | None = None
        self._sasl: SaslSession | None = None
        self._failures = 0
        self._utf8 = False
        self._lock = contextlib.AsyncExitStack()
        self.closed = False
        self._rows: dict[int, MessageRow] = {}
        """Rows loaded ahead for RETR and TOP, by message index (see ``ROW_BATCH``)."""
        self._ahead: ReadAhead | None = None
        """Runs of RETR read ahead, where reads are remote (``pop3/readahead.py``)."""
        self._last_retr = -2
        self._downloaded: list[int] = []
        self._seen: list[int] = []
        """UIDs whose download time, and \\Seen, are still to be written (``_record``)."""

    # ---------------------------------------------------------------- driving

    def greeting(self) -> bytes:
        # No <timestamp>: we offer no APOP (RFC 1939 section 7).
        return ok(f"{self.settings.hostname} POP3 server ready")

    def receive_data(self, data: bytes) -> None:
        self._reader.feed(data)

    async def next_actions(self) -> list[Action] | None:
        """Handle the next complete line; None when more input is needed."""
        if self.closed or self.state is State.UPDATE:
            return None
        match self._reader.next():
            case NeedData():
                # The client waits for answers before it sends more: write what the
                # answers sent so far have recorded, before they are flushed to it.
                await self._record()
                return None
            case LineTooLong(limit):
                if self._sasl is not None:
                    self._sasl.cancel()
                    self._sasl = None
                return [Send(err(f"Line too long (the limit is {limit} octets)"))]
            case Line(data) if self._sasl is not None:
                return await self._sasl_response(self._sasl, data)
            case Line(data):
                return await self._line(data)
        raise AssertionError("unreachable")  # pragma: no cover

    def tls_started(self) -> None:
        """The connection is now TLS. Anything received before the handshake is
        dropped (RFC 2595 section 4 and CVE-2011-0411), and a USER given in clear
        text is forgotten."""
        self._reader.clear()
        self._tls = True
        self._user = None

    async def close(self) -> None:
        """End the session without UPDATE: nothing is deleted; the maildrop is free."""
        if self._sasl is not None:
            self._sasl.cancel()
            self._sasl = None
        self.closed = True
        try:
            if self._ahead is not None:
                await self._ahead.close()
            await self._record()
        finally:
            await self._lock.aclose()

    @property
    def tls(self) -> bool:
        return self._tls

    @property
    def utf8(self) -> bool:
        return self._utf8

    # ---------------------------------------------------------------- dispatch

    async def _line(self, data: bytes) -> list[Action]:
        try:
            command = c.parse_command(data)
        except c.CommandError as exc:
            if exc.keyword and not self._allowed_keyword(exc.keyword):
                return [Send(self._wrong_state(exc.keyword))]
            return [Send(err(_sentence(exc.reason)))]
        if type(command) not in ALLOWED[self.state]:
            return [Send(self._wrong_state(type(command).__name__.upper()))]
        try:
            return await self._dispatch(command)
        except TemporaryFailure as exc:
            return [Send(err(_sentence(str(exc)), "SYS/TEMP"))]
        except MailkeepError as exc:
            return [Send(err(_sentence(str(exc))))]
        except Exception:
            log.exception("POP3 %s: %s failed", self.peer.remote, type(command).__name__)
            return [Send(err("Internal server error; the incident was logged", "SYS/TEMP"))]

    def _allowed_keyword(self, keyword: str) -> bool:
        return any(t.__name__.upper() == keyword for t in ALLOWED[self.state])

    def _wrong_state(self, keyword: str) -> bytes:
        if self.state is State.AUTHORIZATION:
            return err(f"{keyword} is not valid before login")
        return err(f"{keyword} is not valid after login")

    async def _dispatch(self, command: c.Command) -> list[Action]:
        match command:
            case c.Capa():
                return [Send(self._capa())]
            case c.User(name):
                return [Send(self._user_command(name))]
            case c.Pass(password):
                return await self._pass(password)
            case c.Apop():
                return [Send(err("APOP is not supported: use USER and PASS, or AUTH"))]
            case c.Auth(None):
                names = [m.encode() for m in self._mechanisms()]
                return [Send(multiline(ok("Supported SASL mechanisms follow"), names))]
            case c.Auth(mechanism, initial):
                assert mechanism is not None
                return await self._authenticate(mechanism, initial)
            case c.Stls():
                return self._stls()
            case c.Utf8():
                self._utf8 = True
                return [Send(ok("UTF-8 mode enabled"))]
            case c.Lang(language):
                return [Send(self._lang(language))]
            case c.Quit() if self.state is State.AUTHORIZATION:
                self.state = State.UPDATE
                return [Send(ok(f"{self.settings.hostname} POP3 server signing off")), Close()]
            case c.Quit():
                return await self._quit()
            case c.Stat():
                drop = self._drop()
                return [Send(ok(f"{drop.count} {drop.octets}"))]
            case c.List(msg):
                return [Send(self._list(msg))]
            case c.Uidl(msg):
                return [Send(self._uidl(msg))]
            case c.Retr(msg):
                return await self._retr(msg)
            case c.Top(msg, lines):
                return await self._top(msg, lines)
            case c.Dele(msg):
                return [Send(self._dele(msg))]
            case c.Noop():
                return [Send(ok())]
            case c.Rset():
                drop = self._drop()
                drop.undelete_all()
                return [Send(ok(f"maildrop has {drop.count} messages ({drop.octets} octets)"))]
        raise AssertionError(f"unhandled command {command!r}")  # pragma: no cover

    # ---------------------------------------------------------------- AUTHORIZATION

    def _plaintext_ok(self) -> bool:
        return self.auth.plaintext_allowed(self._tls, self.peer.loopback)

    def _mechanisms(self) -> tuple[str, ...]:
        return self.auth.mechanisms(tls=self._tls, loopback=self.peer.loopback)

    def _capa(self) -> bytes:
        """RFC 2449 section 5; the EXPIRE and LOGIN-DELAY rules of 6.5 and 6.7."""
        caps = ["TOP", "UIDL"]
        if self._plaintext_ok():
            caps.append("USER")
        mechanisms = self._mechanisms()
        if mechanisms:
            caps.append("SASL " + " ".join(mechanisms))
        caps += ["RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self.state is State.TRANSACTION:
            caps.append(f"EXPIRE {self.policy.retention.expire}")
        else:
            caps.append("EXPIRE 0 USER")
        if self.settings.pop3.login_delay > 0:
            caps.append(f"LOGIN-DELAY {self.settings.pop3.login_delay}")
        caps.append(f"IMPLEMENTATION {self.settings.implementation}")
        if self.peer.can_start_tls and not self._tls:
            caps.append("STLS")
        caps += ["UTF8 USER", "LANG"]
        return multiline(ok("Capability list follows"), [cap.encode() for cap in caps])

    def _plaintext_refusal(self) -> bytes:
        return err(
            "Plain-text passwords are not accepted on an unencrypted connection:"
            " use STLS first (or the TLS port)",
            "SYS/PERM",
        )

    def _user_command(self, name: str) -> bytes:
        if not self._plaintext_ok():
            return self._plaintext_refusal()
        self._user = name
        return ok("Send your password")

    async def _pass(self, password: str) -> list[Action]:
        if not self._plaintext_ok():
            self._user = None
            return [Send(self._plaintext_refusal())]
        user, self._user = self._user, None
        if user is None:
            return [Send(err("No user name given: send USER first"))]
        credentials = await self.auth.login(user, password, self.peer.remote)
        if credentials is None:
            return self._failed("Invalid user name or password")
        return await self._open(credentials)

    async def _authenticate(self, mechanism: str, initial: bytes | None) -> list[Action]:
        """RFC 5034 section 4."""
        self._user = None
        data = None
        if initial is not None:
            try:
                data = decode_initial_response(initial)
            except SaslEncodingError:
                return [Send(err("The initial response is not valid base64"))]
        session = self.auth.sasl(
            mechanism, remote=self.peer.remote, tls=self._tls, loopback=self.peer.loopback
        )
        return await self._sasl_result(session, await session.start(data))

    async def _sasl_response(self, session: SaslSession, line: bytes) -> list[Action]:
        try:
            data = decode_response(line)
        except SaslEncodingError:
            self._sasl = None
            session.cancel()
            return [Send(err("The SASL response is not valid base64; authentication aborted"))]
        if data is None:
            return await self._sasl_result(session, session.cancel())
        return await self._sasl_result(session, await session.step(data))

    async def _sasl_result(self, session: SaslSession, result: SaslResult) -> list[Action]:
        self._sasl = None
        match result:
            case Challenge(data):
                self._sasl = session
                return [Send(b"+ " + encode_challenge(data) + CRLF)]
            case Authenticated(credentials):
                return await self._open(credentials)
            case Failure(FailureCode.AUTHENTICATION_FAILED | FailureCode.AUTHORIZATION_FAILED):
                return self._failed(_sentence(result.reason))
            case Failure(FailureCode.ENCRYPTION_REQUIRED):
                return [Send(self._plaintext_refusal())]
            case Failure(FailureCode.UNAVAILABLE, reason):
                return [Send(err(_sentence(reason), "SYS/TEMP"))]
            case Failure(FailureCode.CANCELLED):
                return [Send(err("Authentication cancelled"))]
            case Failure(_, reason):
                return [Send(err(_sentence(reason)))]
        raise AssertionError(f"unexpected SASL result {result!r}")  # pragma: no cover

    def _failed(self, reason: str) -> list[Action]:
        """A wrong user name or password (RFC 3206: ``[AUTH]``); the authenticator has
        already slept the failure delay."""
        self._failures += 1
        if self._failures >= self.settings.max_failures:
            self.state = State.UPDATE
            text = f"{reason} (too many failures: closing the connection)"
            return [Send(err(text, "AUTH")), Close()]
        return [Send(err(reason, "AUTH"))]

    def _stls(self) -> list[Action]:
        """RFC 2595 section 4."""
        if self._tls:
            return [Send(err("TLS is already active"))]
        if not self.peer.can_start_tls:
            return [Send(err("TLS is not available on this server"))]
        if self._utf8:
            return [Send(err("STLS is not allowed after UTF8 (RFC 6856 section 2.1)"))]
        return [Send(ok("Begin TLS negotiation")), StartTls()]

    def _lang(self, language: str | None) -> bytes:
        """RFC 6856 section 3, with basic filtering (RFC 4647 section 3.3.1)."""
        if language is None:
            listing = [f"{tag} {name}".encode() for tag, name in LANGUAGES.items()]
            return multiline(ok("Language listing follows"), listing)
        wanted = language.lower()
        for tag in LANGUAGES:
            if wanted in {"*", tag} or tag.startswith(wanted + "-"):
                return ok(f"{tag} Language is now {LANGUAGES[tag]}")
        return err("Unsupported language; LANG lists the languages offered")

    async def _open(self, credentials: Credentials) -> list[Action]:
        """The credentials are right: check LOGIN-DELAY, lock the maildrop (RFC 1939
        section 4), take the snapshot and enter TRANSACTION."""
        store = self.store
        account = await store.get_account_by_id(credentials.account_id)
        if account is None:
            return [Send(err("This account no longer exists", "SYS/PERM"))]
        delay = self.settings.pop3.login_delay
        now = self.clock()
        if delay > 0:
            last = _float(account.settings.get(LAST_LOGIN_SETTING))
            if last is not None and 0 <= now - last < delay:
                wait = int(delay - (now - last)) + 1
                text = f"Logins are allowed every {delay} seconds: try again in {wait} seconds"
                return [Send(err(text, "LOGIN-DELAY"))]
        held = await self._lock.enter_async_context(store.maildrop_lock(account.id))
        if not held:
            await self._lock.aclose()
            text = "The maildrop is in use by another POP3 session"
            return [Send(err(text, "IN-USE"))]
        try:
            mailbox = await store.get_mailbox(account.id, INBOX)
            if mailbox is None:
                raise NotFound("this account has no INBOX")
            snapshot = await store.snapshot(mailbox.id)
            rows = await store.fetch(mailbox.id, snapshot.uids, FetchField.SIZE)
            if delay > 0:
                await store.set_account_setting(account.id, LAST_LOGIN_SETTING, str(int(now)))
        except MailkeepError as exc:
            await self._lock.aclose()
            code = "SYS/TEMP" if isinstance(exc, TemporaryFailure) else "SYS/PERM"
            return [Send(err(f"Cannot open the maildrop: {exc}", code))]
        drop = Maildrop(snapshot.mailbox, [r.uid for r in rows], [r.size for r in rows])
        self.maildrop = drop
        if self.store.remote_reads:
            self._ahead = ReadAhead(self.store, drop)
        self.account = account.address
        self.policy = account_policy(account, self.settings.pop3)
        self.state = State.TRANSACTION
        log.info("POP3 %s opened by %s: %d messages", account.address, self.peer.remote, len(drop))
        return [
            Send(ok(f"Maildrop locked and ready: {drop.count} messages ({drop.octets} octets)"))
        ]

    # ---------------------------------------------------------------- TRANSACTION

    def _drop(self) -> Maildrop:
        assert self.maildrop is not None
        return self.maildrop

    def _find(self, msg: int) -> int | bytes:
        """The index of message ``msg``, or the ``-ERR`` to answer."""
        drop = self._drop()
        if not 1 <= msg <= len(drop):
            return err(f"No such message, only {len(drop)} messages in maildrop")
        if drop.deleted[msg - 1]:
            return err(f"Message {msg} already deleted")
        return msg - 1

    def _list(self, msg: int | None) -> bytes:
        """RFC 1939 section 5, LIST: "msg octets" scan listings from the index."""
        drop = self._drop()
        if msg is not None:
            found = self._find(msg)
            return found if isinstance(found, bytes) else ok(f"{msg} {drop.sizes[found]}")
        deleted, sizes = drop.deleted, drop.sizes
        lines = b"".join(
            [b"%d %d\r\n" % (i + 1, sizes[i]) for i in range(len(sizes)) if not deleted[i]]
        )
        return ok(f"{drop.count} messages ({drop.octets} octets)") + lines + b".\r\n"

    def _uidl(self, msg: int | None) -> bytes:
        """RFC 1939 section 7, UIDL."""
        drop = self._drop()
        if msg is not None:
            found = self._find(msg)
            return found if isinstance(found, bytes) else ok(f"{msg} {drop.uidl(found).decode()}")
        validity, uids, deleted = drop.uidvalidity, drop.uids, drop.deleted
        lines = b"".join(
            [
                b"%d %08X%08X\r\n" % (i + 1, uids[i], validity)
                for i in range(len(uids))
                if not deleted[i]
            ]
        )
        return ok() + lines + b".\r\n"

    def _dele(self, msg: int) -> bytes:
        found = self._find(msg)
        if isinstance(found, bytes):
            return found
        self._drop().delete(found)
        return ok(f"Message {msg} deleted")

    async def _row(self, msg: int, index: int, row: MessageRow | None = None) -> MessageRow | bytes:
        """The stored header, blob and size of a message still in the store (``row`` if
        read already), or the ``-ERR`` to answer (expunged meanwhile; UTF-8 header
        outside UTF-8 mode)."""
        if row is None:
            row = self._rows.pop(index, None)
        if row is None:
            row = await self._load_rows(index)
        if row is None:
            return _gone(msg)
        if not self._utf8 and needs_utf8(row.header):
            text = f"Message {msg} has UTF-8 header fields: send UTF8 before logging in"
            return err(text, "UTF8")
        return row

    async def _load_rows(self, index: int) -> MessageRow | None:
        """The row of message ``index``, loading those of the next messages not deleted
        with it (``ROW_BATCH``); None when it is no longer in the store."""
        drop = self._drop()
        indexes = [
            i for i in range(index, min(len(drop), index + ROW_BATCH)) if not drop.deleted[i]
        ]
        if index not in indexes:
            indexes.insert(0, index)
        fields = FetchField.HEADER | FetchField.BLOB | FetchField.SIZE
        rows = await self.store.fetch(drop.mailbox_id, [drop.uids[i] for i in indexes], fields)
        by_uid = {row.uid: row for row in rows}
        self._rows = {i: by_uid[drop.uids[i]] for i in indexes if drop.uids[i] in by_uid}
        return self._rows.pop(index, None)

    async def _open_blob(self, blob: str) -> BlobReader | None:
        try:
            return await self.store.open_blob(blob)
        except NotFound:
            return None

    async def _retr(self, msg: int) -> list[Action]:
        """RFC 1939 section 5, RETR: the stored octets, dot-stuffed, streamed."""
        index = self._find(msg)
        if isinstance(index, bytes):
            return [Send(index)]
        sequential, self._last_retr = index == self._last_retr + 1, index
        ahead: tuple[MessageRow | None, BlobReader | None] = None, None
        if sequential and self._ahead is not None:  # the second RETR of a run starts it
            ahead = await self._ahead.take(index)
        row = await self._row(msg, index, ahead[0])
        if isinstance(row, bytes):
            return [Send(row)]
        reader = ahead[1] if ahead[1] is not None else await self._open_blob(row.blob)
        if reader is None:
            return [Send(_gone(msg))]
        if reader.size != row.size:
            log.warning("blob %s has %d octets, the index %d", row.blob, reader.size, row.size)
        body = Body(self._retr_chunks(reader, index), reader)
        return [Stream(ok(f"{reader.size} octets"), body)]

    async def _retr_chunks(self, reader: BlobReader, index: int) -> AsyncGenerator[bytes, None]:
        stuffer = DotStuffer()
        async for chunk in reader.chunks(0, reader.size, BLOB_CHUNK):
            yield stuffer.feed(chunk)
        yield stuffer.finish()
        await self._retrieved(index, retr=True)

    async def _retrieved(self, index: int, *, retr: bool) -> None:
        """Record a complete download: the first-download time (``days:N``); for RETR
        also the implicit DELE of ``delete-after-retr`` and ``\\Seen`` when the policy
        says so. A TOP that sent the whole message counts as a download for ``days:N``
        only: fetchmail's ``keep`` fetches with ``TOP n 99999999`` precisely so that
        the message stays unseen. The store writes wait for ``_record``: pipelined
        downloads share one write, made before the session waits for input (so before
        the client can see the answers still buffered) and at the latest at QUIT."""
        drop = self._drop()
        uid = drop.uids[index]
        if index not in drop.downloaded:
            drop.downloaded.add(index)
            self._downloaded.append(uid)
        if retr:
            drop.retrieved.add(index)
            if self.policy.retr_marks_seen:
                self._seen.append(uid)
        if len(self._downloaded) + len(self._seen) >= RECORD_AT:
            await self._record()

    async def _record(self) -> None:
        """Write the downloads recorded so far. A failure is logged: the client has its
        messages."""
        if self.maildrop is None or not (self._downloaded or self._seen):
            return
        mailbox_id = self.maildrop.mailbox_id
        downloaded, self._downloaded = self._downloaded, []
        seen, self._seen = self._seen, []
        writes: list[Awaitable[object]] = []
        if downloaded:
            writes.append(self.store.mark_downloaded(mailbox_id, downloaded))
        if seen:
            writes.append(
                self.store.store_flags(mailbox_id, seen, FlagMode.ADD, SystemFlag.SEEN, ())
            )
        for outcome in await asyncio.gather(*writes, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.warning("POP3 %s: could not record a download: %s", self.account, outcome)

    async def _top(self, msg: int, lines: int) -> list[Action]:
        """RFC 1939 section 7, TOP: the stored header, then ``lines`` body lines read
        from the blob (none for ``TOP n 0``: the header comes from the index)."""
        index = self._find(msg)
        if isinstance(index, bytes):
            return [Send(index)]
        row = await self._row(msg, index)
        if isinstance(row, bytes):
            return [Send(row)]
        head = ok("Top of message follows")
        if lines == 0 or row.size <= len(row.header):
            # Nothing to read from the blob: the answer is in memory, sent at once.
            stuffer = DotStuffer()
            header = stuffer.feed(row.header) + stuffer.finish()
            if row.size <= len(row.header):
                await self._retrieved(index, retr=False)
            return [Send(head + header)]
        reader = await self._open_blob(row.blob)
        if reader is None:
            return [Send(_gone(msg))]
        body = Body(self._top_chunks(row.header, reader, lines, index), reader)
        return [Stream(head, body)]

    async def _top_chunks(
        self, header: bytes, reader: BlobReader, lines: int, index: int
    ) -> AsyncGenerator[bytes, None]:
        stuffer = DotStuffer()
        yield stuffer.feed(header)
        body_size = reader.size - len(header)
        sent = 0
        limiter = LineLimiter(lines)
        async for chunk in reader.chunks(len(header), body_size, TOP_CHUNK):
            piece = limiter.feed(chunk)
            sent += len(piece)
            yield stuffer.feed(piece)
            if limiter.done:
                break
        yield stuffer.finish()
        if sent >= body_size:
            await self._retrieved(index, retr=False)

    async def _quit(self) -> list[Action]:
        """RFC 1939 section 6: the UPDATE state removes the marked messages, atomically
        and durably (the store syncs before returning), then releases the maildrop."""
        drop = self._drop()
        await self._record()
        self.state = State.UPDATE
        uids = drop.to_remove(self.policy)
        try:
            if uids:
                change = await self.store.remove(drop.mailbox_id, uids)
                log.info(
                    "POP3 %s: QUIT removed %d of %d messages",
                    self.account,
                    len(change.expunged),
                    len(uids),
                )
        except MailkeepError as exc:
            log.warning("POP3 %s: QUIT could not remove messages: %s", self.account, exc)
            await self.close()
            return [Send(err(f"Some deleted messages not removed: {exc}", "SYS/TEMP")), Close()]
        await self.close()
        left = len(drop) - len(uids)
        status = f"{left} messages left" if left else "maildrop empty"
        return [Send(ok(f"{self.settings.hostname} POP3 server signing off ({status})")), Close()]


def _gone(msg: int) -> bytes:
    return err(f"Message {msg} no longer exists: it was deleted by another session")


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _sentence(text: str) -> str:
    """Reasons start with a capital in replies; they come lower-case from the layers."""
    return text[:1].upper() + text[1:] if text else text
