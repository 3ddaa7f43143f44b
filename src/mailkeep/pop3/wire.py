"""POP3 framing without I/O: command lines in, status lines and dot-stuffed multi-line
bodies out (RFC 1939 section 3, RFC 2449 section 3).

``DotStuffer`` and ``LineLimiter`` work on a stream of chunks of any size, so that a
message is sent from its blob piece by piece and never held whole in memory: a line
that starts in one chunk and continues in the next is handled like any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CRLF = b"\r\n"
TERMINATOR = b".\r\n"
_LINE_DOT = re.compile(rb"\n\.")
"""Finds a line starting with ``.`` several times faster than ``bytes.find`` does (the
regular expression engine scans for the LF first), and most messages have none."""


# ---------------------------------------------------------------------------- input


@dataclass(frozen=True, slots=True)
class Line:
    """A complete line, without its CR LF."""

    data: bytes


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line longer than the limit was discarded (up to and including its LF)."""

    limit: int


@dataclass(frozen=True, slots=True)
class NeedData:
    pass


ReadEvent = Line | LineTooLong | NeedData


class LineReader:
    """Splits received octets into lines of at most ``max_line`` octets (CR LF
    included). A line ends at LF; a CR before the LF is removed."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        self._discarding = False
        self._scanned = 0

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def clear(self) -> None:
        """Forget everything received and not yet read (after STLS: octets sent in
        clear text after the command must not be taken as coming through TLS)."""
        self._buffer.clear()
        self._discarding = False
        self._scanned = 0

    def next(self) -> ReadEvent:
        while True:
            end = self._buffer.find(b"\n", self._scanned)
            if end < 0:
                if self._discarding:
                    self._buffer.clear()
                    self._scanned = 0
                    return NeedData()
                if len(self._buffer) > self.max_line:
                    self._buffer.clear()
                    self._scanned = 0
                    self._discarding = True
                    return LineTooLong(self.max_line)
                self._scanned = len(self._buffer)
                return NeedData()
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            self._scanned = 0
            if self._discarding:
                self._discarding = False
                continue
            if end + 1 > self.max_line:
                return LineTooLong(self.max_line)
            return Line(line[:-1] if line.endswith(b"\r") else line)


# ---------------------------------------------------------------------------- output


def ok(text: str = "") -> bytes:
    """``+OK [text]`` (RFC 1939 section 3)."""
    return b"+OK" + (b" " + text.encode() if text else b"") + CRLF


def err(text: str, code: str | None = None) -> bytes:
    """``-ERR [[code] ]text``; ``code`` is an RFC 2449 section 8 response code."""
    prefix = f"[{code}] " if code else ""
    return b"-ERR " + (prefix + text).encode() + CRLF


def multiline(first: bytes, lines: list[bytes]) -> bytes:
    """A status line, lines that are dot-stuffed here, and the terminating ``.``."""
    body = b"".join(b"." + line + CRLF if line.startswith(b".") else line + CRLF for line in lines)
    return first + body + TERMINATOR


class DotStuffer:
    """RFC 1939 section 3: in a multi-line response, a line starting with ``.`` gets
    one more ``.``. Feed the message in chunks; ``finish`` ends the response.

    A line starts after every LF, bare or not: clients that split lines at LF must not
    mistake a stored ``\\n.\\r\\n`` for the end of the response. ``finish`` adds CR LF
    when the message does not end with one, so that the terminator is always preceded
    by CR LF (those two octets belong to the terminator: RFC 1939's sizes count the
    message as stored, before stuffing)."""

    def __init__(self) -> None:
        self._line_start = True
        self._tail = b""
        self._sent = False

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        out = chunk if _LINE_DOT.search(chunk) is None else chunk.replace(b"\n.", b"\n..")
        if self._line_start and chunk.startswith(b"."):
            out = b"." + out
        self._line_start = chunk.endswith(b"\n")
        self._tail = chunk[-2:] if len(chunk) >= 2 else self._tail[-1:] + chunk
        self._sent = True
        return out

    def finish(self) -> bytes:
        if self._sent and self._tail != CRLF:
            return CRLF + TERMINATOR
        return TERMINATOR


class LineLimiter:
    """Passes through the first ``lines`` lines of a stream (for TOP's body lines,
    RFC 1939 section 7), then nothing; ``done`` tells when to stop reading."""

    def __init__(self, lines: int) -> None:
        self._left = lines

    @property
    def done(self) -> bool:
        return self._left <= 0

    def feed(self, chunk: bytes) -> bytes:
        if self._left <= 0:
            return b""
        count = chunk.count(b"\n")
        if count < self._left:
            self._left -= count
            return chunk
        end = -1
        for _ in range(self._left):
            end = chunk.index(b"\n", end + 1)
        self._left = 0
        return chunk[: end + 1]
