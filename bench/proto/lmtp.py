"""A lean asyncio LMTP client (RFC 2033) for delivering the corpus.

Each message is two round trips: ``MAIL FROM``, ``RCPT TO`` and ``DATA`` pipelined
(RFC 2920: DATA ends a group), then the dot-stuffed content, answered once per recipient
(RFC 2033 section 4.2).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

STREAM_LIMIT = 1 << 20


class LmtpError(Exception):
    """A reply other than the expected one."""


def dot_stuff(message: bytes) -> bytes:
    """RFC 5321 section 4.5.2: double a leading dot on every line; end with CRLF.CRLF."""
    if message.startswith(b"."):
        message = b"." + message
    message = message.replace(b"\r\n.", b"\r\n..")
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message + b".\r\n"


@dataclass
class LmtpClient:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    bytes_out: int = 0

    @classmethod
    async def connect(cls, host: str, port: int) -> LmtpClient:
        reader, writer = await asyncio.open_connection(host, port, limit=STREAM_LIMIT)
        client = cls(reader, writer)
        await client._expect(b"220")
        writer.write(b"LHLO bench.example\r\n")
        await client._expect(b"250")
        return client

    async def _reply(self) -> bytes:
        """One (possibly multi-line) reply; returns its last line."""
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line[3:4] != b"-":
                return line

    async def _expect(self, code: bytes) -> None:
        line = await self._reply()
        if not line.startswith(code):
            raise LmtpError(f"expected {code.decode()}, got {line!r}")

    async def deliver(self, message: bytes, rcpt: str, sender: str = "sender@example.org") -> None:
        """Deliver one message to one recipient; returns after the recipient's 250."""
        self.writer.write(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        await self._expect(b"250")
        await self._expect(b"250")
        await self._expect(b"354")
        data = dot_stuff(message)
        self.bytes_out += len(data)
        self.writer.write(data)
        await self._expect(b"250")

    async def quit(self) -> None:
        try:
            self.writer.write(b"QUIT\r\n")
            await self._reply()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        await self.aclose()

    async def aclose(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
