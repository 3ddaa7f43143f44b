"""Driving sessions without sockets: a memory transport, a line-level client, and a
transcript runner for C:/S: dialogues written like the RFC examples."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

from mailkeep.imap.session import Services, Session

TIMEOUT = 10.0


class MemoryTransport:
    """The ``Transport`` a session reads from and writes to, in memory."""

    def __init__(
        self,
        *,
        remote: str = "127.0.0.1",
        loopback: bool = True,
        tls: bool = False,
        can_start_tls: bool = False,
    ) -> None:
        self.remote = remote
        self.loopback = loopback
        self.tls = tls
        self._can_start_tls = can_start_tls
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.output = bytearray()
        self.written = asyncio.Event()
        self.tls_started = 0

    @property
    def can_start_tls(self) -> bool:
        return self._can_start_tls and not self.tls

    async def read(self, within: float | None = None) -> bytes:
        return await self.incoming.get()

    async def write(self, data: bytes) -> None:
        self.output += data
        self.written.set()

    async def start_tls(self) -> None:
        self.tls = True
        self.tls_started += 1


class Client:
    """One session and its transport, spoken to line by line."""

    def __init__(self, services: Services, transport: MemoryTransport | None = None) -> None:
        self.services = services
        self.transport = transport or MemoryTransport()
        self.session: Session | None = None
        self.task: asyncio.Task[None] | None = None
        self._pos = 0

    async def start(self) -> bytes:
        """Start the session; returns the greeting line."""
        self.session = Session(self.services, self.transport)
        self.task = asyncio.create_task(self.session.run())
        return await self.line()

    def send_raw(self, data: bytes) -> None:
        self.transport.incoming.put_nowait(data)

    def send(self, line: str | bytes) -> None:
        data = line.encode("utf-8") if isinstance(line, str) else line
        self.send_raw(data + b"\r\n")

    def close_input(self) -> None:
        self.send_raw(b"")

    async def line(self, wait: float = TIMEOUT) -> bytes:
        """The next CRLF-terminated line the server wrote (CRLF removed)."""
        async with asyncio.timeout(wait):
            while True:
                end = self.transport.output.find(b"\r\n", self._pos)
                if end >= 0:
                    line = bytes(self.transport.output[self._pos : end])
                    self._pos = end + 2
                    return line
                self.transport.written.clear()
                if self.task is not None and self.task.done():
                    raise EOFError(f"session ended; unread output {self.pending()!r}")
                waiter = asyncio.ensure_future(self.transport.written.wait())
                _done, _ = await asyncio.wait(
                    {waiter, *([self.task] if self.task else [])},
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiter.cancel()

    async def read(self, size: int, wait: float = TIMEOUT) -> bytes:
        """Exactly ``size`` raw octets of output (a literal's data)."""
        async with asyncio.timeout(wait):
            while len(self.transport.output) - self._pos < size:
                self.transport.written.clear()
                await self.transport.written.wait()
        data = bytes(self.transport.output[self._pos : self._pos + size])
        self._pos += size
        return data

    def pending(self) -> bytes:
        return bytes(self.transport.output[self._pos :])

    async def response(self) -> bytes:
        """One whole response, literals included (``{n}`` lines joined with their data)."""
        out = b""
        while True:
            line = await self.line()
            out += line
            match = re.search(rb"~?\{(\d+)\}$", line)
            if match is None:
                return out
            out += b"\r\n" + await self.read(int(match.group(1)))

    async def command(self, line: str | bytes) -> list[bytes]:
        """Send a tagged command; return its responses, the tagged one last."""
        text = line.encode("utf-8") if isinstance(line, str) else line
        tag = text.split(b" ", 1)[0]
        self.send(text)
        return await self.until(tag)

    async def until(self, tag: bytes | str) -> list[bytes]:
        if isinstance(tag, str):
            tag = tag.encode()
        out = []
        while True:
            response = await self.response()
            out.append(response)
            if response.startswith(tag + b" "):
                return out

    async def ok(self, line: str | bytes) -> list[bytes]:
        """A command that must succeed; returns its untagged responses."""
        responses = await self.command(line)
        assert b" OK" in responses[-1][:40], responses
        return responses[:-1]

    async def login(self, user: str = "alice@example.org", password: str = "") -> None:
        """Log in with LOGIN (the real password check), or directly when no password is
        given (see the ``alice`` fixture)."""
        if password:
            await self.ok(f'L LOGIN {user} "{password}"')
            return
        assert self.session is not None
        credentials = await self.services.store.get_credentials(user)
        assert credentials is not None
        await self.session.logged_in(credentials)

    async def finish(self) -> None:
        """End the session (the client closes its side) and wait for it."""
        if self.task is None:
            return
        if not self.task.done():
            self.close_input()
        async with asyncio.timeout(TIMEOUT):
            await self.task

    async def quiet(self, delay: float = 0.05) -> bytes:
        """Whatever the server wrote without being asked, after a short wait."""
        await asyncio.sleep(delay)
        data = self.pending()
        self._pos += len(data)
        return data


_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


async def run_transcript(
    client: Client, transcript: str, variables: Mapping[str, object] | None = None
) -> None:
    """Play a dialogue::

        C: a001 LOGIN alice secret
        S: a001 OK [CAPABILITY ...] logged in
        S~ \\* OK \\[UIDVALIDITY \\d+\\].*     (a regular expression)

    ``C:`` lines are sent as they are (CRLF added, so literals are written out line by
    line as in the RFCs); every ``S:`` line must be the next line the server writes,
    after ``{{name}}`` placeholders are filled from ``variables``. ``S~`` lines match a
    regular expression instead. Blank lines and lines starting with ``#`` are ignored.
    """
    values = {k: str(v) for k, v in (variables or {}).items()}
    for number, raw in enumerate(transcript.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        kind, _, text = line.partition(" ")
        text = raw.lstrip()[len(kind) + 1 :] if raw.lstrip().startswith(kind + " ") else ""
        text = _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
        if kind == "C:":
            client.send(text)
        elif kind == "S:":
            got = await client.line()
            # Trailing spaces are invisible in a transcript ("+ " of an empty challenge).
            assert got.rstrip(b" ") == text.rstrip(" ").encode("utf-8"), (
                f"line {number}: expected {text!r}, got {got!r}"
            )
        elif kind == "S~":
            got = await client.line()
            assert re.fullmatch(text.encode("utf-8"), got), (
                f"line {number}: expected /{text}/, got {got!r}"
            )
        else:
            raise ValueError(f"transcript line {number}: {raw!r}")
