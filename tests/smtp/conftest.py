"""Fixtures for the SMTP/LMTP/submission end-to-end tests: the real listeners in-process
on port 0 over a SQLite store in a temporary directory, a socket transcript client, and
a reader of what the store holds."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import dataclasses
import functools
import ssl
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailkeep.app import App, listener_specs
from mailkeep.auth.passwords import hash_password, scram_stored
from mailkeep.config import AuthConfig, Config, LimitsConfig
from mailkeep.net.listeners import Listeners
from mailkeep.net.tls import ensure_self_signed
from mailkeep.store.api import Account, FetchField
from mailkeep.store.names import INBOX

HOST = "mx.test"
DOMAIN = "example.org"
PASSWORD = "correct horse"
LISTENERS = ("smtp", "submission", "submissions", "lmtp")


@functools.cache
def credentials() -> tuple[str, str]:
    """One argon2 hash and SCRAM key set for the whole run (hashing is slow)."""
    return hash_password(PASSWORD), scram_stored(PASSWORD)


@dataclass
class Server:
    app: App
    ports: dict[str, int]

    async def add_user(self, address: str, quota: int | None = None) -> Account:
        password_hash, scram = credentials()
        return await self.app.store.create_account(address, password_hash, scram, quota_bytes=quota)

    async def messages(self, address: str) -> list[bytes]:
        """The raw messages in the account's INBOX, in UID order."""
        store = self.app.store
        account = await store.get_account(address)
        assert account is not None
        mailbox = await store.get_mailbox(account.id, INBOX)
        assert mailbox is not None
        snapshot = await store.snapshot(mailbox.id)
        rows = await store.fetch(mailbox.id, list(snapshot.uids), FetchField.BLOB)
        raws = []
        for row in rows:
            reader = await store.open_blob(row.blob)
            try:
                raws.append(await reader.read(0, reader.size))
            finally:
                await reader.close()
        return raws


StartServer = Callable[..., Awaitable[Server]]


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[StartServer]:
    """``await start_server(**limits)`` starts the four SMTP listeners; with
    ``proxy_protocol=True`` they expect a PROXY header (to pose as a remote client)."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(*, proxy_protocol: bool = False, **limits: int) -> Server:
            ensure_self_signed(tmp_path / "tls/cert.pem", tmp_path / "tls/key.pem", HOST)
            config = Config(
                hostname=HOST,
                domains=(DOMAIN,),
                data_dir=tmp_path,
                limits=dataclasses.replace(LimitsConfig(max_message=100_000), **limits),
                auth=AuthConfig(failure_delay=0.0),
            )
            app = await App.open(config)
            stack.push_async_callback(app.close)
            tls = app.tls
            assert tls is not None
            listeners = Listeners(
                listener_specs(app, dict.fromkeys(LISTENERS, ("127.0.0.1", 0))),
                gate=app.gate,
                tls_context=lambda: tls.context,
                proxy_protocol=proxy_protocol,
            )
            bound = await listeners.start()
            stack.push_async_callback(listeners.stop, 2.0)
            return Server(app, {name: port for name, _, port in bound})

        yield start


@pytest.fixture
async def server(start_server: StartServer) -> Server:
    return await start_server()


def insecure_context() -> ssl.SSLContext:
    """The test certificate is self-signed."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def converse(port: int, script: str, *, wait: float = 10.0) -> None:
    """Play a C:/S: script over a real connection. ``C: text`` sends text + CRLF; ``R:``
    sends raw octets (Python escapes); ``S: text`` reads one reply line (a trailing
    ``...`` matches any rest); ``STARTTLS`` upgrades the connection; ``CLOSED`` expects
    the server to close; ``EOF`` closes our side and stops."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for number, line in enumerate(textwrap.dedent(script).strip().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("C:"):
                writer.write(line[2:].lstrip(" ").encode() + b"\r\n")
                await writer.drain()
            elif line.startswith("R:"):
                raw = line[2:].lstrip(" ")
                writer.write(ast.literal_eval(f"b'''{raw}'''"))
                await writer.drain()
            elif line.startswith("S:"):
                expected = line[2:].lstrip(" ")
                got = (await asyncio.wait_for(reader.readline(), wait)).decode()
                assert got.endswith("\r\n"), f"line {number}: {got!r} (connection closed?)"
                got = got.removesuffix("\r\n").rstrip(" ")
                if expected.endswith("..."):
                    assert got.startswith(expected[:-3]), f"line {number}: {got!r}"
                else:
                    assert got == expected, f"line {number}: {got!r} != {expected!r}"
            elif line == "STARTTLS":
                await writer.start_tls(insecure_context())
            elif line == "CLOSED":
                assert await asyncio.wait_for(reader.read(), wait) == b""
            elif line == "EOF":
                return
            else:
                raise AssertionError(f"line {number}: {line!r}")
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


def body_of(raw: bytes) -> bytes:
    """A stored message without the three trace fields delivery prepends."""
    lines = raw.split(b"\r\n")
    assert lines[0].startswith(b"Return-Path: <"), raw[:200]
    assert lines[1].startswith(b"Delivered-To: "), raw[:200]
    assert lines[2].startswith(b"Received: from "), raw[:200]
    index = 3
    while lines[index].startswith((b"\t", b" ")):
        index += 1
    return b"\r\n".join(lines[index:])
