"""A real mailkeep server in the test's event loop (App + listeners on port 0, TLS with a
self-signed certificate), for the real-client tests."""

from __future__ import annotations

import asyncio
import functools
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from mailkeep.app import App, listener_specs
from mailkeep.auth.passwords import hash_password, scram_stored
from mailkeep.config import Config, ListenersConfig
from mailkeep.mail.message import parse
from mailkeep.net.listeners import Listeners
from mailkeep.net.tls import ensure_self_signed
from mailkeep.store.api import Account, NewMessage

ADDRESS = "alice@example.org"
PASSWORD = "correct horse"


@functools.cache
def credentials() -> tuple[str, str]:
    return hash_password(PASSWORD), scram_stored(PASSWORD)


@dataclass
class Server:
    app: App
    account: Account
    imap: int
    imaps: int
    pop3: int
    cert: Path
    data: Path

    async def deliver(self, raw: bytes, mailbox: str = "INBOX") -> int:
        box = await self.app.store.get_mailbox(self.account.id, mailbox)
        assert box is not None
        result = await self.app.store.append(box.id, [NewMessage(raw, parse(raw))])
        return result.uids[0]

    async def uids(self, mailbox: str = "INBOX") -> list[int]:
        box = await self.app.store.get_mailbox(self.account.id, mailbox)
        assert box is not None
        return list((await self.app.store.snapshot(box.id)).uids)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    data = tmp_path / "data"
    data.mkdir()
    config = replace(Config(hostname="localhost"), data_dir=data, listeners=ListenersConfig())
    cert, key = config.path(config.tls.cert), config.path(config.tls.key)
    cert.parent.mkdir(parents=True, exist_ok=True)
    ensure_self_signed(cert, key, "localhost")
    app = await App.open(config)
    password_hash, scram = credentials()
    account = await app.store.create_account(ADDRESS, password_hash, scram)
    tls = app.tls
    assert tls is not None
    listeners = Listeners(
        listener_specs(
            app,
            {"imap": ("127.0.0.1", 0), "imaps": ("127.0.0.1", 0), "pop3": ("127.0.0.1", 0)},
        ),
        gate=app.gate,
        tls_context=lambda: tls.context,
    )
    bound = {name: port for name, _, port in await listeners.start()}
    try:
        yield Server(app, account, bound["imap"], bound["imaps"], bound["pop3"], cert, data)
    finally:
        await listeners.stop(grace=2)
        await app.close()


def need(program: str) -> str:
    """The path of a client program, or skip (it comes from a Debian package that
    scripts/test-deps.sh installs)."""
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed (scripts/test-deps.sh installs it)")
    return path


async def run(
    *argv: str,
    stdin: bytes = b"",
    limit: float = 60,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[int, bytes, bytes]:
    """Run a client program without blocking the server's event loop."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), limit)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out, err
