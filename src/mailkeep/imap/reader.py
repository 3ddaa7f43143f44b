"""Framing of the client's byte stream into command frames, lines and literals (sans-I/O).

The reader knows nothing of command syntax beyond what framing needs (RFC 9051 2.2, 4.3,
7.5; RFC 7888 LITERAL+/LITERAL-; RFC 3516 literal8): a command is a line; a line ending in
a literal announcement ``{n}``, ``{n+}`` or ``~{n}`` is followed by ``n`` octets and then
the rest of the command, which is again a line. It hands the parser a ``Frame`` (the
lines, CRLF removed, and the literals between them), so literal octets are never copied
into one big buffer nor scanned for line ends.

Memory is bounded whatever the client sends: a line (all the lines of one command,
literals excluded) is at most ``max_line``, a literal at most ``max_literal``, and all the
literals of one command together at most ``max_command``. A literal over a limit is
refused from its announcement, before any of its octets are read; a non-synchronising one
is then skipped as it arrives, never buffered, and so is the rest of that command
(including further non-synchronising literals). An over-long line is reported once and
discarded up to its end. Input arrives with ``feed``; the caller drains ``next`` until it
returns ``NEED_DATA`` before feeding more, so the buffer stays at one read plus one
partial command (h11's contract).

Line ends: CRLF; a bare LF is accepted too (some clients' IDLE ``DONE``), the CR stripped.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from mailkeep.config import LimitsConfig
from mailkeep.imap.grammar import LITERAL_TAIL, TAG

MB = 1024 * 1024
LITERAL_MINUS_LIMIT = 4096
"""RFC 7888 3: with LITERAL-, non-synchronising literals are at most 4096 octets."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection input limits; the ``*_unauthenticated`` ones apply before login
    (DESIGN.md: smaller limits before authentication)."""

    max_line: int = 64 * 1024
    max_literal: int = 50 * MB
    max_command: int = 100 * MB
    """All literal octets of one command (MULTIAPPEND sends several messages)."""
    max_line_unauthenticated: int = 8 * 1024
    max_literal_unauthenticated: int = 8 * 1024
    max_command_unauthenticated: int = 16 * 1024
    literal_minus: bool = False
    """True when LITERAL- (not LITERAL+) is advertised: ``{n+}`` over 4096 is refused."""

    @classmethod
    def from_config(cls, config: LimitsConfig) -> Limits:
        """The limits the operator configured: ``max_message`` bounds one literal and a
        MULTIAPPEND may carry two such messages; before login, lines are at most 8 KiB."""
        return cls(
            max_line=config.max_line,
            max_literal=config.max_message,
            max_command=2 * config.max_message,
            max_line_unauthenticated=min(config.max_line, 8 * 1024),
            max_literal_unauthenticated=config.max_literal_unauthenticated,
            max_command_unauthenticated=2 * config.max_literal_unauthenticated,
        )


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Literal:
    data: bytes
    binary: bool = False
    """Sent as ``~{n}`` (literal8: may contain NUL, RFC 3516)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete command: ``lines[i]`` ends with the announcement of ``literals[i]``
    (kept, so the parser sees where each literal stands); the last line has none."""

    lines: tuple[bytes, ...]
    literals: tuple[Literal, ...] = ()

    @property
    def tag(self) -> str | None:
        return tag_of(self.lines[0])


class ErrorKind(enum.Enum):
    """Why a command could not be framed or parsed; the session answers each with BAD
    (and ``NO [BADCHARSET]`` for BADCHARSET), tagged when the tag is known."""

    SYNTAX = "syntax"
    UNKNOWN_COMMAND = "unknown-command"
    LINE_TOO_LONG = "line-too-long"
    BADCHARSET = "badcharset"
    """SEARCH/SORT/THREAD CHARSET we do not support: ``NO [BADCHARSET (...)]``."""


@dataclass(frozen=True, slots=True)
class FrameReady:
    frame: Frame


@dataclass(frozen=True, slots=True)
class LineReady:
    """A raw line read in line mode (IDLE's DONE, an AUTHENTICATE response)."""

    line: bytes


@dataclass(frozen=True, slots=True)
class ContinuationNeeded:
    """A synchronising literal was accepted: the client waits for ``+``."""

    tag: str | None
    size: int


@dataclass(frozen=True, slots=True)
class LiteralTooLarge:
    tag: str | None
    command: str
    size: int
    limit: int
    synchronizing: bool
    reason: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class FramingError:
    tag: str | None
    reason: str
    kind: ErrorKind


@dataclass(frozen=True, slots=True)
class NeedInput:
    pass


@dataclass(frozen=True, slots=True)
class EndOfInput:
    pass


NEED_DATA = NeedInput()
END_OF_INPUT = EndOfInput()

ReaderEvent = (
    FrameReady
    | LineReady
    | ContinuationNeeded
    | LiteralTooLarge
    | FramingError
    | NeedInput
    | EndOfInput
)

_TAG_SP = re.compile(TAG.pattern + rb" ")
_COMMAND_NAME = re.compile(TAG.pattern + rb" (?:[Uu][Ii][Dd] )?([A-Za-z0-9._-]{1,32})")
_TAIL = 32
"""Octets of a discarded line kept to see whether it ended with a literal announcement."""


def tag_of(line: bytes) -> str | None:
    """The tag of a command line, if it starts with a valid tag and SP."""
    match = _TAG_SP.match(line)
    return match.group()[:-1].decode("ascii") if match else None


def command_name_of(line: bytes) -> str:
    """The command name (``UID`` skipped), upper-cased, or ``""``."""
    match = _COMMAND_NAME.match(line)
    return match.group(1).decode("ascii").upper() if match else ""


class _State(enum.Enum):
    COMMAND = 1
    """Reading a command line."""
    LITERAL = 2
    """Reading literal octets into the current command."""
    SKIP_LITERAL = 3
    """Discarding the octets of a refused non-synchronising literal."""
    DISCARD_LINE = 4
    """Discarding up to the end of a line (too long, or rest of a refused command)."""


class Reader:
    """The framing state machine. ``line_mode`` makes the next line a ``LineReady``
    without literal processing (IDLE, AUTHENTICATE)."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS, *, authenticated: bool = False) -> None:
        self.limits = limits
        self.authenticated = authenticated
        self.line_mode = False
        self._buf = bytearray()
        self._pos = 0
        self._eof = False
        self._state = _State.COMMAND
        self._lines: list[bytes] = []
        self._literals: list[Literal] = []
        self._line_bytes = 0
        self._literal_bytes = 0
        self._remaining = 0
        self._chunks: list[bytes] = []
        self._binary = False
        self._discard_tail = b""

    # ---------------------------------------------------------------- limits

    @property
    def max_line(self) -> int:
        return self.limits.max_line if self.authenticated else self.limits.max_line_unauthenticated

    @property
    def max_literal(self) -> int:
        if self.authenticated:
            return self.limits.max_literal
        return self.limits.max_literal_unauthenticated

    @property
    def max_command(self) -> int:
        if self.authenticated:
            return self.limits.max_command
        return self.limits.max_command_unauthenticated

    # ---------------------------------------------------------------- input

    def feed(self, data: bytes) -> None:
        """Add received octets; ``b""`` means the client closed its side."""
        if not data:
            self._eof = True
            return
        if self._pos and self._pos >= len(self._buf) // 2:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def take_buffered(self) -> bytes:
        """Remove and return unread octets (for COMPRESS, which must inflate them)."""
        data = bytes(self._buf[self._pos :])
        self._buf.clear()
        self._pos = 0
        return data

    def discard_buffered(self) -> int:
        """Drop unread octets (after STARTTLS: RFC 9051 6.2.1 forbids acting on
        plaintext pipelined behind it); returns how many were dropped."""
        return len(self.take_buffered())

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    @property
    def in_command(self) -> bool:
        """Whether part of a command has been read (an idle connection is not)."""
        return bool(self._lines) or self._state is not _State.COMMAND or self._pos < len(self._buf)

    # ---------------------------------------------------------------- events

    def next(self) -> ReaderEvent:
        """The next framing event; never raises on any input."""
        while True:
            state = self._state
            if state is _State.LITERAL:
                if not self._read_literal():
                    return self._starved()
                continue
            if state is _State.SKIP_LITERAL:
                if not self._skip_literal():
                    return self._starved()
                continue
            if state is _State.DISCARD_LINE:
                if not self._discard_line():
                    return self._starved()
                continue
            event = self._read_line()
            if event is not None:
                return event

    def _starved(self) -> ReaderEvent:
        return END_OF_INPUT if self._eof else NEED_DATA

    def _read_line(self) -> ReaderEvent | None:
        buf = self._buf
        end = buf.find(b"\n", self._pos)
        budget = self.max_line - self._line_bytes
        if end < 0 or end - self._pos > budget:
            if len(buf) - self._pos <= budget:
                return self._starved()
            # Too long: report now, discard up to the end of the line (and the rest of
            # the command if this line announces a non-synchronising literal).
            head = bytes(buf[self._pos : self._pos + 256]) if not self._lines else self._lines[0]
            tag = tag_of(head)
            self._reset_command()
            self._state = _State.DISCARD_LINE
            self._discard_tail = b""
            self.line_mode = False
            return FramingError(
                tag, f"line too long (limit {self.max_line} octets)", ErrorKind.LINE_TOO_LONG
            )
        stop = end - 1 if end > self._pos and buf[end - 1] == 0x0D else end
        line = bytes(buf[self._pos : stop])
        self._pos = end + 1
        if self.line_mode:
            self.line_mode = False
            return LineReady(line)
        if not line and not self._lines:
            # An empty line between commands is ignored, as Dovecot and Cyrus do
            # (clients add a stray CRLF after APPEND's literal).
            self._line_bytes = 0
            return None
        self._line_bytes += len(line) + 2
        announcement = LITERAL_TAIL.search(line) if line.endswith(b"}") else None
        if announcement is None:
            self._lines.append(line)
            frame = Frame(tuple(self._lines), tuple(self._literals))
            self._reset_command()
            return FrameReady(frame)
        self._lines.append(line)
        return self._announce(announcement)

    def _announce(self, match: re.Match[bytes]) -> ReaderEvent | None:
        """Handle a literal announcement; None means: go on reading (LITERAL+)."""
        tilde, digits, plus = match.groups()
        size = int(digits)
        synchronizing = plus != b"+"
        first = self._lines[0]
        tag = tag_of(first)
        if plus == b"-":
            return self._refuse_syntax(tag, "'{n-}' is not a literal (did you mean '{n+}'?)", True)
        if tag is None:
            return self._refuse_syntax(
                None, "expected a tag before the literal", synchronizing, size
            )
        limit = min(self.max_literal, self.max_command - self._literal_bytes)
        if not synchronizing and self.limits.literal_minus:
            limit = min(limit, LITERAL_MINUS_LIMIT)
        if size > limit:
            limit = max(limit, 0)
            if limit == LITERAL_MINUS_LIMIT and not synchronizing and self.limits.literal_minus:
                reason = f"non-synchronizing literal over {limit} octets (LITERAL-, RFC 7888)"
            elif limit < self.max_literal:
                reason = f"literal of {size} octets exceeds what is left of the command limit"
            else:
                reason = f"literal of {size} octets exceeds the limit of {limit}"
            event = LiteralTooLarge(tag, command_name_of(first), size, limit, synchronizing, reason)
            self._reset_command()
            if not synchronizing:
                self._start_skip(size)
            return event
        self._literal_bytes += size
        self._remaining = size
        self._binary = tilde == b"~"
        self._chunks = []
        self._state = _State.LITERAL
        if synchronizing:
            return ContinuationNeeded(tag, size)
        return None

    def _refuse_syntax(
        self, tag: str | None, reason: str, synchronizing: bool, size: int = 0
    ) -> ReaderEvent:
        self._reset_command()
        if not synchronizing:
            self._start_skip(size)
        return FramingError(tag, reason, ErrorKind.SYNTAX)

    def _start_skip(self, size: int) -> None:
        self._remaining = size
        self._state = _State.SKIP_LITERAL

    def _read_literal(self) -> bool:
        available = len(self._buf) - self._pos
        if not available:
            return False
        take = min(available, self._remaining)
        self._chunks.append(bytes(self._buf[self._pos : self._pos + take]))
        self._pos += take
        self._remaining -= take
        if self._remaining:
            return False
        data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks = []
        self._literals.append(Literal(data, self._binary))
        self._state = _State.COMMAND
        return True

    def _skip_literal(self) -> bool:
        available = len(self._buf) - self._pos
        take = min(available, self._remaining)
        self._pos += take
        self._remaining -= take
        if self._remaining:
            if self._pos == len(self._buf):
                self._buf.clear()
                self._pos = 0
            return False
        self._state = _State.DISCARD_LINE
        self._discard_tail = b""
        return True

    def _discard_line(self) -> bool:
        end = self._buf.find(b"\n", self._pos)
        if end < 0:
            self._discard_tail = (self._discard_tail + bytes(self._buf[self._pos :]))[-_TAIL:]
            self._buf.clear()
            self._pos = 0
            return False
        tail = self._discard_tail + bytes(self._buf[max(self._pos, end - _TAIL) : end])
        self._pos = end + 1
        tail = tail.removesuffix(b"\r")
        self._discard_tail = b""
        match = LITERAL_TAIL.search(tail)
        if match and match.group(3) == b"+":
            self._start_skip(int(match.group(2)))
        else:
            self._state = _State.COMMAND
        return True

    def _reset_command(self) -> None:
        self._lines = []
        self._literals = []
        self._line_bytes = 0
        self._literal_bytes = 0
        self._state = _State.COMMAND
