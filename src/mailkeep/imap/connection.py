"""The IMAP server's wire connection, h11-style: ``receive_data`` then ``next_event``.

A ``Connection`` turns received octets into typed events and knows the modes the wire can
be in; it writes nothing (responses come from ``responses``) and performs no I/O::

    conn = Connection(Limits())
    conn.receive_data(data)              # b"" when the peer closed
    while not isinstance(event := conn.next_event(), NeedData):
        match event:
            case CommandReceived(tag, Idle()): send(b"+ idling\\r\\n"); conn.start_idle(tag)
            case CommandReceived(tag, command): ...
            case CommandError(tag, reason, kind): send(BAD ...)       # connection usable
            case NeedContinuation(): send(responses.continuation(event.text))
            case LiteralRefused(tag, ...): send(NO [TOOBIG] / BAD ...)
            case IdleDone(): send(tagged OK for IDLE)
            case AuthResponse(tag, data): feed the SASL exchange (None: client cancelled)
            case ConnectionClosed(): stop

Modes (RFC 9051): COMMAND (normal); IDLE after ``start_idle`` until ``DONE`` (RFC 2177);
AUTHENTICATE after ``start_authenticate``, for exactly one client response line (base64 or
``*``, RFC 9051 6.2.2); call it again for each further challenge. Literals, including the
synchronising literals of MULTIAPPEND's later messages, are framed by the reader: each
``{n}`` yields ``NeedContinuation`` and the session answers ``+``.

Events are produced one at a time and lazily: after ``CommandReceived`` nothing past that
command has been looked at, so a mode switch (IDLE, AUTHENTICATE, STARTTLS, COMPRESS, or
the larger limits after login) takes effect exactly from the next octet.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field

from mailkeep.imap.commands import Command
from mailkeep.imap.parser import ParseError, decode_base64, parse_command
from mailkeep.imap.reader import (
    DEFAULT_LIMITS,
    ContinuationNeeded,
    EndOfInput,
    ErrorKind,
    FrameReady,
    FramingError,
    Limits,
    LineReady,
    LiteralTooLarge,
    NeedInput,
    Reader,
    command_name_of,
)

CONTINUATION_TEXT = "Ready for literal data"
INTERNAL_ERROR = "internal error while parsing the command"
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CommandReceived:
    tag: str
    command: Command


@dataclass(frozen=True, slots=True)
class CommandError:
    """A command that could not be framed or parsed: answer ``tag BAD reason`` (``* BAD``
    when ``tag`` is None; ``NO [BADCHARSET ...]`` for BADCHARSET). ``command`` is the
    command name when it could be read (``""`` otherwise). The connection stays usable."""

    tag: str | None
    reason: str
    kind: ErrorKind
    command: str = ""
    save: bool = False
    """A SEARCH refused for its CHARSET had asked for ``RETURN (SAVE)`` (RFC 5182)."""


@dataclass(frozen=True, slots=True)
class NeedContinuation:
    """A synchronising literal of ``size`` octets was accepted: send ``+ text``."""

    text: str
    tag: str | None = None
    size: int = 0


@dataclass(frozen=True, slots=True)
class LiteralRefused:
    """A literal announced over the limit, refused before reading it: answer the tag with
    ``NO [TOOBIG]`` (APPEND/REPLACE, RFC 9051 7.1 and RFC 7889) or ``BAD``. The rest of
    that command is discarded by the reader (for a non-synchronising literal its octets
    are skipped as they arrive)."""

    tag: str | None
    size: int
    limit: int
    command: str
    synchronizing: bool
    reason: str = field(default="", compare=False)
    """Human-readable, for the response text."""


@dataclass(frozen=True, slots=True)
class IdleDone:
    """The client ended IDLE with ``DONE``: answer the IDLE tag with OK."""

    tag: str


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """One client response during AUTHENTICATE: decoded ``data``, or None when the client
    cancelled with ``*`` (answer ``tag BAD``, RFC 9051 6.2.2)."""

    tag: str
    data: bytes | None


@dataclass(frozen=True, slots=True)
class NeedData:
    pass


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The client closed its side; anything after the last complete command is lost."""


Event = (
    CommandReceived
    | CommandError
    | NeedContinuation
    | LiteralRefused
    | IdleDone
    | AuthResponse
    | NeedData
    | ConnectionClosed
)


class Mode(enum.Enum):
    COMMAND = "command"
    IDLE = "idle"
    AUTHENTICATE = "authenticate"


class Connection:
    """Server side of one IMAP connection's input. Not thread-safe; no I/O."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS, *, authenticated: bool = False) -> None:
        self._reader = Reader(limits, authenticated=authenticated)
        self._mode = Mode.COMMAND
        self._mode_tag = ""

    @property
    def limits(self) -> Limits:
        return self._reader.limits

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def authenticated(self) -> bool:
        return self._reader.authenticated

    @authenticated.setter
    def authenticated(self, value: bool) -> None:
        """Flip after LOGIN/AUTHENTICATE succeeds (larger limits); back for UNAUTHENTICATE."""
        self._reader.authenticated = value

    # ---------------------------------------------------------------- input

    def receive_data(self, data: bytes) -> None:
        """Add octets from the client; ``b""`` signals end of input."""
        self._reader.feed(data)

    def next_event(self) -> Event:
        """The next event; ``NeedData`` when more input is needed. Never raises on input."""
        event = self._reader.next()
        match event:
            case FrameReady(frame):
                try:
                    tag, command = parse_command(frame)
                except ParseError as exc:
                    return CommandError(
                        frame.tag,
                        exc.reason,
                        exc.kind,
                        command_name_of(frame.lines[0]),
                        save=exc.save,
                    )
                except Exception:
                    # Our bug, not the client's: log it, answer BAD, keep the connection
                    # (the frame is consumed, so the reader stays in step).
                    _log.exception("IMAP parser failed on a command")
                    return CommandError(
                        frame.tag, INTERNAL_ERROR, ErrorKind.SYNTAX, command_name_of(frame.lines[0])
                    )
                return CommandReceived(tag, command)
            case LineReady(line):
                return self._mode_line(line)
            case ContinuationNeeded(tag, size):
                return NeedContinuation(CONTINUATION_TEXT, tag, size)
            case LiteralTooLarge(tag, command, size, limit, synchronizing, reason):
                return LiteralRefused(tag, size, limit, command, synchronizing, reason)
            case FramingError(tag, reason, kind):
                if self._mode is not Mode.COMMAND:
                    tag = self._mode_tag
                    self._mode = Mode.COMMAND
                return CommandError(tag, reason, kind)
            case NeedInput():
                return NeedData()
            case EndOfInput():
                return ConnectionClosed()
        raise AssertionError(f"unexpected reader event {event!r}")  # pragma: no cover

    def _mode_line(self, line: bytes) -> Event:
        mode, tag = self._mode, self._mode_tag
        self._mode = Mode.COMMAND
        if mode is Mode.IDLE:
            # RFC 2177 / RFC 9051 6.3.13: the client ends IDLE with "DONE".
            if line.rstrip(b" ").upper() == b"DONE":
                return IdleDone(tag)
            return CommandError(tag, "expected DONE to end IDLE", ErrorKind.SYNTAX, "IDLE")
        # RFC 9051 6.2.2: "*" cancels; otherwise a base64 response.
        stripped = line.strip(b" ")
        if stripped == b"*":
            return AuthResponse(tag, None)
        try:
            return AuthResponse(tag, decode_base64(stripped) if stripped else b"")
        except ParseError as exc:
            return CommandError(tag, exc.reason, exc.kind, "AUTHENTICATE")

    # ---------------------------------------------------------------- modes

    def start_idle(self, tag: str) -> None:
        """After sending ``+ idling``: the next line must be ``DONE``."""
        self._enter(Mode.IDLE, tag)

    def start_authenticate(self, tag: str) -> None:
        """After sending a ``+ challenge``: the next line is the client's response."""
        self._enter(Mode.AUTHENTICATE, tag)

    def _enter(self, mode: Mode, tag: str) -> None:
        self._mode = mode
        self._mode_tag = tag
        self._reader.line_mode = True

    def start_tls(self) -> int:
        """Call after answering STARTTLS OK: drops (and returns the count of) octets the
        client pipelined in plaintext behind it, which must not be acted on
        (RFC 9051 6.2.1; the STARTTLS command-injection attacks)."""
        return self._reader.discard_buffered()

    def take_buffered(self) -> bytes:
        """Unread octets, removed; after COMPRESS they are compressed and must go through
        the inflater before being fed back with ``receive_data`` (RFC 4978)."""
        return self._reader.take_buffered()

    @property
    def buffered(self) -> int:
        """Octets received but not yet turned into events."""
        return self._reader.buffered
