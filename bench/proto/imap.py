"""A lean asyncio IMAP4rev1 client for measuring servers, not for reading mail.

It pipelines (several tagged commands in flight on one connection), counts octets received,
checks every tagged status, and parses only what the benchmark needs: literal framing
(RFC 3501 section 4.3), EXISTS, SEARCH results, the response codes of SELECT. Everything
else is handed raw to a per-command callback, so the client costs little more than reading
the bytes. imaplib would dominate the measurement of a fast server.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

STREAM_LIMIT = 1 << 24
"""The stream's buffer limit (asyncio pauses reading the socket at twice this)."""
READ_SIZE = 1 << 20
"""Octets asked of the socket at a time; responses are then cut out of the buffer."""

Handler = Callable[[bytes, list[bytes]], None]
"""Called with each untagged response: the line (literals replaced by their ``{n}``
announcements, CRLF stripped) and the literals' contents."""

_LITERAL_RE = re.compile(rb"\{(\d+)\}$")
_CODE_RE = re.compile(rb"\[([A-Z-]+)(?: ([^\]]*))?\]")


class ImapError(Exception):
    """A tagged NO or BAD, or a connection that closed or greeted with BYE."""


def quoted(text: str) -> bytes:
    """An IMAP quoted string (RFC 3501 section 4.3): only for ASCII without CR/LF."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'.encode("ascii")


@dataclass
class Mailbox:
    """What SELECT/EXAMINE reported (RFC 3501 section 7.3.1, RFC 7162 section 3.1.2.1)."""

    exists: int = 0
    uidvalidity: int = 0
    uidnext: int = 0
    highestmodseq: int = 0
    fetches: int = 0
    vanished: int = 0


@dataclass
class ImapClient:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    capabilities: set[str] = field(default_factory=set)
    bytes_in: int = 0
    bytes_out: int = 0
    _next_tag: int = 0
    _done: dict[bytes, tuple[bytes, bytes]] = field(default_factory=dict)
    _buffer: bytearray = field(default_factory=bytearray)
    _position: int = 0
    """Where the next response starts in ``_buffer``."""

    @classmethod
    async def connect(cls, host: str, port: int) -> ImapClient:
        reader, writer = await asyncio.open_connection(host, port, limit=STREAM_LIMIT)
        client = cls(reader, writer)
        greeting, _ = await client.read_response()
        if not greeting.startswith(b"* OK"):
            writer.close()
            raise ImapError(f"greeting: {greeting!r}")
        client._note_capabilities(greeting)
        return client

    # -- framing ------------------------------------------------------------------------------

    async def read_response(self) -> tuple[bytes, list[bytes]]:
        """One response: a line with any literals it announces (RFC 3501 section 4.3)."""
        while (response := self._take()) is None:
            await self._fill()
        return response

    def _take(self) -> tuple[bytes, list[bytes]] | None:
        """The next response if all of it has arrived, else None. Responses are cut out of
        a buffer filled ``READ_SIZE`` at a time, without a coroutine per line: reading a
        line at a time (``readuntil``) made the driver slower than either server on a
        whole-folder FETCH, so that it measured itself."""
        buffer, start = self._buffer, self._position
        end = buffer.find(b"\r\n", start)
        if end < 0:
            return None
        pieces: list[bytes] = []
        literals: list[bytes] = []
        line_start = start
        while end > line_start and buffer[end - 1] == 0x7D:  # "}": a literal may follow
            found = _LITERAL_RE.search(buffer, max(line_start, end - 12), end)
            if found is None:
                break
            data_end = end + 2 + int(found.group(1))
            after = buffer.find(b"\r\n", data_end) if len(buffer) >= data_end else -1
            if after < 0:
                return None
            pieces.append(bytes(buffer[line_start:end]))
            literals.append(bytes(buffer[end + 2 : data_end]))
            line_start, end = data_end, after
        pieces.append(bytes(buffer[line_start:end]))
        self._position = end + 2
        self.bytes_in += end + 2 - start
        return (pieces[0] if len(pieces) == 1 else b"".join(pieces)), literals

    async def _fill(self) -> None:
        if self._position:
            del self._buffer[: self._position]
            self._position = 0
        data = await self.reader.read(READ_SIZE)
        if not data:
            raise asyncio.IncompleteReadError(bytes(self._buffer), None)
        self._buffer += data

    def _write(self, data: bytes) -> None:
        self.bytes_out += len(data)
        self.writer.write(data)

    def send(self, command: bytes) -> bytes:
        """Queue a command (no literals) and return its tag; ``drain`` or ``wait`` sends it."""
        self._next_tag += 1
        tag = b"B%d" % self._next_tag
        self._write(tag + b" " + command + b"\r\n")
        return tag

    async def send_literal(self, prefix: bytes, literal: bytes, suffix: bytes = b"") -> bytes:
        """Queue ``prefix {n}CRLF literal suffix``: non-synchronizing (RFC 7888 LITERAL+) when
        the server has it, otherwise waiting for the continuation request."""
        self._next_tag += 1
        tag = b"B%d" % self._next_tag
        if "LITERAL+" in self.capabilities:
            self._write(
                b"%s %s {%d+}\r\n" % (tag, prefix, len(literal)) + literal + suffix + b"\r\n"
            )
            return tag
        self._write(b"%s %s {%d}\r\n" % (tag, prefix, len(literal)))
        await self.writer.drain()
        while True:
            line, _ = await self.read_response()
            if line.startswith(b"+"):
                break
            self._record(line)
        self._write(literal + suffix + b"\r\n")
        return tag

    def _record(self, line: bytes) -> None:
        """Remember a tagged completion read while waiting for something else."""
        tag, _, rest = line.partition(b" ")
        if tag != b"*":
            status, _, text = rest.partition(b" ")
            self._done[tag] = (status, text)

    async def wait(self, tags: Iterable[bytes], handler: Handler | None = None) -> None:
        """Read until every tag in ``tags`` has completed; raise ImapError on NO/BAD (after
        all of them completed, so the connection stays in step)."""
        await self.writer.drain()
        pending = set(tags) - self._done.keys()
        while pending:
            line, literals = self._take() or await self.read_response()
            if line.startswith(b"* "):
                if line.startswith(b"* BYE"):
                    raise ImapError(f"server said {line!r}")
                if handler is not None:
                    handler(line, literals)
                continue
            if line.startswith(b"+"):
                continue
            self._record(line)
            pending.discard(line.partition(b" ")[0])
        failed = []
        for tag in tags:
            status, text = self._done.pop(tag)
            if status != b"OK":
                failed.append(f"{tag.decode()} {status.decode()} {text.decode(errors='replace')}")
            else:
                self._note_capabilities(text)
        if failed:
            raise ImapError("; ".join(failed))

    async def command(self, command: bytes, handler: Handler | None = None) -> None:
        await self.wait([self.send(command)], handler)

    def _note_capabilities(self, text: bytes) -> None:
        found = _CODE_RE.search(text)
        if found and found.group(1) == b"CAPABILITY" and found.group(2):
            self.capabilities = set(found.group(2).decode().upper().split())

    # -- commands -----------------------------------------------------------------------------

    async def capability(self) -> set[str]:
        caps: list[str] = []

        def on(line: bytes, _: list[bytes]) -> None:
            if line.startswith(b"* CAPABILITY "):
                caps.extend(line[13:].decode().upper().split())

        await self.command(b"CAPABILITY", on)
        self.capabilities = set(caps)
        return self.capabilities

    async def login(self, user: str, password: str) -> None:
        await self.command(b"LOGIN " + quoted(user) + b" " + quoted(password))
        if not self.capabilities:
            await self.capability()

    async def select(
        self, mailbox: str = "INBOX", params: bytes = b"", examine: bool = False
    ) -> Mailbox:
        box = Mailbox()

        def on(line: bytes, _: list[bytes]) -> None:
            if line.endswith(b" EXISTS"):
                box.exists = int(line[2:-7])
            elif line.startswith(b"* OK ["):
                found = _CODE_RE.search(line)
                if found and found.group(2):
                    code, value = found.group(1), found.group(2)
                    if code == b"UIDVALIDITY":
                        box.uidvalidity = int(value)
                    elif code == b"UIDNEXT":
                        box.uidnext = int(value)
                    elif code == b"HIGHESTMODSEQ":
                        box.highestmodseq = int(value)
            elif line.startswith(b"* VANISHED"):
                box.vanished += 1
            elif line.endswith(b")") and b" FETCH (" in line:
                box.fetches += 1

        verb = b"EXAMINE " if examine else b"SELECT "
        arg = quoted(mailbox) + (b" " + params if params else b"")
        await self.command(verb + arg, on)
        return box

    async def search(
        self, criteria: bytes, literal: bytes | None = None, uid: bool = True
    ) -> list[int]:
        """``UID SEARCH criteria`` (``SEARCH`` if not ``uid``), with ``literal`` appended as a
        literal argument (for non-ASCII strings); returns the numbers from the untagged SEARCH
        responses."""
        verb = b"UID SEARCH " if uid else b"SEARCH "
        found: list[int] = []

        def on(line: bytes, _: list[bytes]) -> None:
            if line.startswith(b"* SEARCH"):
                found.extend(int(n) for n in line[8:].split())

        if literal is None:
            await self.command(verb + criteria, on)
        else:
            await self.wait([await self.send_literal(verb + criteria, literal)], on)
        return found

    async def logout(self) -> None:
        try:
            await self.command(b"LOGOUT")
        except (ImapError, ConnectionError, asyncio.IncompleteReadError):
            pass
        await self.aclose()

    def close(self) -> None:
        self.writer.close()

    async def aclose(self) -> None:
        """Close and wait until the socket is gone (no transport left for the GC to find)."""
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def parse_exists(line: bytes) -> int | None:
    """``* n EXISTS`` → n."""
    if line.endswith(b" EXISTS") and line.startswith(b"* "):
        return int(line[2:-7])
    return None


def fetch_seq(line: bytes) -> int:
    """``* n FETCH (...`` → n."""
    return int(line[2 : line.index(b" ", 2)])
