"""An asyncio POP3 client (RFC 1939), with CAPA (RFC 2449), STLS (RFC 2595) and AUTH
(RFC 5034), for ``mailkeep fetch`` and the POP3 server tests.

Multi-line answers are dot-unstuffed (RFC 1939 3) and written to a file object as they
arrive, so a large RETR never sits in memory. Line ends are passed through as the server
sends them (CRLF), so the stored message has the bytes the server holds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from typing import Protocol

from mailkeep.client.connection import Endpoint, TlsMode, open_stream, start_tls
from mailkeep.client.errors import (
    AuthenticationFailed,
    NetworkError,
    Pop3Error,
    ProtocolError,
    TlsFailure,
)
from mailkeep.client.imap import SaslMechanism
from mailkeep.errors import MailkeepError

MAX_LINE = 64 * 1024


class Sink(Protocol):
    """Where a multi-line answer is written (a binary file, or a wrapper of one)."""

    def write(self, data: bytes, /) -> object: ...


def unstuff(line: bytes) -> bytes:
    """RFC 1939 3: a line of a multi-line answer that starts with ``.`` had one added."""
    return line[1:] if line.startswith(b".") else line


def parse_status(line: bytes, command: str) -> str:
    """``+OK text`` → text; ``-ERR text`` raises Pop3Error."""
    text = line.rstrip(b"\r\n").decode("utf-8", "replace")
    if text.startswith("+OK"):
        return text[3:].strip()
    if text.startswith("-ERR"):
        raise Pop3Error(command, text[4:].strip())
    raise ProtocolError(f"POP3 {command}: unexpected answer {text[:200]!r}")


class Pop3Client:
    """Use ``await Pop3Client.connect(endpoint)``; end with ``quit()`` (which commits the
    DELEs, RFC 1939 6) or ``close()`` (which abandons them)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, endpoint: Endpoint
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.endpoint = endpoint
        self.capabilities: dict[str, list[str]] = {}
        self.greeting = ""

    @classmethod
    async def connect(cls, endpoint: Endpoint) -> Pop3Client:
        reader, writer = await open_stream(endpoint)
        client = cls(reader, writer, endpoint)
        try:
            client.greeting = parse_status(await client._line(), "greeting")
            await client.capa()
            if endpoint.tls is TlsMode.STARTTLS:
                await client.stls()
        except BaseException:
            await client.close()
            raise
        return client

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    # --- I/O --------------------------------------------------------------------------

    async def _line(self) -> bytes:
        try:
            line = await asyncio.wait_for(self._reader.readline(), self.endpoint.timeout)
        except TimeoutError:
            raise NetworkError(f"{self.endpoint.host} did not answer in time") from None
        except (OSError, ValueError) as exc:
            raise NetworkError(f"connection to {self.endpoint.host} failed: {exc}") from exc
        if not line:
            raise NetworkError(f"{self.endpoint.host} closed the connection")
        if len(line) > MAX_LINE:
            raise ProtocolError("POP3 line too long")
        return line

    async def _send(self, line: str) -> None:
        try:
            self._writer.write(line.encode() + b"\r\n")
            await self._writer.drain()
        except (OSError, ConnectionError) as exc:
            raise NetworkError(f"sending to {self.endpoint.host} failed: {exc}") from exc

    async def command(self, line: str, name: str | None = None) -> str:
        """Send one command, return the ``+OK`` text (``-ERR`` raises Pop3Error)."""
        await self._send(line)
        return parse_status(await self._line(), name or line.split(" ")[0])

    async def multiline(self, line: str, sink: Sink | None = None) -> list[bytes]:
        """A command with a multi-line answer; lines go to ``sink`` (if given) or are
        returned without their line ends."""
        await self.command(line)
        lines: list[bytes] = []
        while True:
            raw = await self._line()
            if raw in (b".\r\n", b".\n"):
                return lines
            data = unstuff(raw)
            if sink is not None:
                sink.write(data)
            else:
                lines.append(data.rstrip(b"\r\n"))

    # --- commands ---------------------------------------------------------------------

    async def capa(self) -> dict[str, list[str]]:
        """CAPA (RFC 2449 5); an old server without it gets an empty dict."""
        try:
            lines = await self.multiline("CAPA")
        except Pop3Error:
            self.capabilities = {}
            return self.capabilities
        self.capabilities = {}
        for raw in lines:
            words = raw.decode("utf-8", "replace").split()
            if words:
                self.capabilities[words[0].upper()] = words[1:]
        return self.capabilities

    async def stls(self) -> None:
        if "STLS" not in self.capabilities:
            raise TlsFailure(f"{self.endpoint.host} does not offer STLS")
        await self.command("STLS")
        await start_tls(self._writer, self.endpoint)
        await self.capa()

    async def login(self, user: str, password: str) -> None:
        """USER/PASS (RFC 1939 7)."""
        try:
            await self.command(f"USER {user}")
            await self._send(f"PASS {password}")
            parse_status(await self._line(), "PASS")
        except Pop3Error as exc:
            raise AuthenticationFailed(f"login as {user} refused: {exc.text}") from exc

    async def authenticate(self, mechanism: SaslMechanism) -> None:
        """AUTH (RFC 5034) with an initial response when the mechanism has one."""
        initial = mechanism.initial_response()
        line = f"AUTH {mechanism.name}"
        if initial is not None:
            line += " " + (base64.b64encode(initial).decode() or "=")
        await self._send(line)
        while True:
            raw = (await self._line()).rstrip(b"\r\n")
            if raw.startswith(b"+ ") or raw == b"+":
                try:
                    answer = mechanism.respond(base64.b64decode(raw[2:]))
                except (ValueError, MailkeepError) as exc:
                    await self._send("*")
                    raise AuthenticationFailed(f"SASL {mechanism.name}: {exc}") from exc
                await self._send(base64.b64encode(answer).decode())
                continue
            try:
                parse_status(raw, "AUTH")
                mechanism.finish(None)
            except Pop3Error as exc:
                raise AuthenticationFailed(f"AUTH {mechanism.name} refused: {exc.text}") from exc
            except MailkeepError as exc:
                raise AuthenticationFailed(f"SASL {mechanism.name}: {exc}") from exc
            return

    async def stat(self) -> tuple[int, int]:
        count, size = (await self.command("STAT")).split()[:2]
        return int(count), int(size)

    async def list_sizes(self) -> dict[int, int]:
        return {int(n): int(s) for n, s in _pairs(await self.multiline("LIST"))}

    async def uidl(self) -> dict[int, str]:
        """UIDL (RFC 1939 7); Pop3Error if the server lacks it."""
        return {int(n): uid for n, uid in _pairs(await self.multiline("UIDL"))}

    async def retr(self, number: int, sink: Sink) -> None:
        await self.multiline(f"RETR {number}", sink)

    async def top(self, number: int, lines: int, sink: Sink) -> None:
        """TOP (RFC 1939 7): the header, the blank line and ``lines`` body lines."""
        await self.multiline(f"TOP {number} {lines}", sink)

    async def dele(self, number: int) -> None:
        await self.command(f"DELE {number}")

    async def rset(self) -> None:
        await self.command("RSET")

    async def noop(self) -> None:
        await self.command("NOOP")

    async def quit(self) -> None:
        """QUIT: the server enters UPDATE state and removes DELEted messages (RFC 1939 6).
        A failure here means the deletions may not have happened."""
        await self.command("QUIT")
        await self.close()


def _pairs(lines: list[bytes]) -> list[tuple[str, str]]:
    pairs = []
    for raw in lines:
        words = raw.decode("utf-8", "replace").split()
        if len(words) >= 2:
            pairs.append((words[0], words[1]))
    return pairs
