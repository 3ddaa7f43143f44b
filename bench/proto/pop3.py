"""A lean asyncio POP3 client (RFC 1939) that pipelines when the server announces PIPELINING
(RFC 2449 section 6.6) and counts octets received."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

STREAM_LIMIT = 1 << 28
"""The longest stretch without ``.CRLF`` that ``_multiline`` can read in one piece: a
UIDL or LIST of a 1,000,000-message maildrop is one such stretch of about 20 MB."""
_WINDOW = 64  # pipelined commands in flight


class Pop3Error(Exception):
    """-ERR, or a connection that closed."""


def unstuff(body: bytes) -> bytes:
    """Undo RFC 1939 section 3 byte-stuffing of a multi-line response body."""
    if body.startswith(b".."):
        body = body[1:]
    return body.replace(b"\r\n..", b"\r\n.")


@dataclass
class Pop3Client:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    capabilities: set[str] = field(default_factory=set)
    bytes_in: int = 0

    @classmethod
    async def connect(cls, host: str, port: int) -> Pop3Client:
        reader, writer = await asyncio.open_connection(host, port, limit=STREAM_LIMIT)
        client = cls(reader, writer)
        await client._status()
        return client

    async def _status(self) -> bytes:
        line = await self.reader.readuntil(b"\r\n")
        self.bytes_in += len(line)
        if not line.startswith(b"+OK"):
            raise Pop3Error(line.decode(errors="replace").strip())
        return line

    async def _multiline(self) -> bytes:
        """The body of a multi-line response after its status line, terminator removed,
        still byte-stuffed. The terminator is ``.CRLF`` at the start of a line."""
        chunks: list[bytes] = []
        at_line_start = True
        while True:
            chunk = await self.reader.readuntil(b".\r\n")
            self.bytes_in += len(chunk)
            if (len(chunk) == 3 and at_line_start) or chunk.endswith(b"\r\n.\r\n"):
                chunks.append(chunk[:-3])
                return b"".join(chunks)
            chunks.append(chunk)
            at_line_start = True  # the chunk ended with CRLF

    async def command(self, line: bytes, multiline: bool = False) -> bytes:
        self.writer.write(line + b"\r\n")
        status = await self._status()
        return await self._multiline() if multiline else status

    async def login(self, user: str, password: str) -> None:
        capa = await self.command(b"CAPA", multiline=True)
        self.capabilities = {ln.split(b" ")[0].decode().upper() for ln in capa.split(b"\r\n") if ln}
        await self.command(f"USER {user}".encode())
        await self.command(f"PASS {password}".encode())

    async def uidl(self) -> list[tuple[int, bytes]]:
        body = await self.command(b"UIDL", multiline=True)
        out = []
        for line in body.split(b"\r\n"):
            if line:
                number, _, uid = line.partition(b" ")
                out.append((int(number), uid))
        return out

    async def many(
        self, commands: Sequence[bytes], on_body: Callable[[int, bytes], None] | None = None
    ) -> None:
        """Run multi-line ``commands`` (RETR n, TOP n 0), pipelined in windows when the server
        allows it; ``on_body(index, stuffed_body)`` sees each response."""
        window = _WINDOW if "PIPELINING" in self.capabilities else 1
        for start in range(0, len(commands), window):
            batch = commands[start : start + window]
            self.writer.write(b"".join(c + b"\r\n" for c in batch))
            for k in range(len(batch)):
                await self._status()
                body = await self._multiline()
                if on_body is not None:
                    on_body(start + k, body)

    async def quit(self) -> None:
        try:
            await self.command(b"QUIT")
        except (Pop3Error, ConnectionError, asyncio.IncompleteReadError):
            pass
        await self.aclose()

    async def aclose(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
