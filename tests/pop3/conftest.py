"""Shared POP3 test fixtures: a real SQLite store with a settable clock, accounts with a
known password, delivery into INBOX, sessions, and the transcript runner."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailkeep.app import App, listener_specs
from mailkeep.auth.passwords import hash_password, scram_stored
from mailkeep.auth.service import Authenticator
from mailkeep.auth.throttle import Throttle
from mailkeep.config import AuthConfig, Config, Pop3Config
from mailkeep.mail.message import parse
from mailkeep.net.listeners import Listeners
from mailkeep.net.tls import ensure_self_signed
from mailkeep.pop3.session import Close, Peer, Send, Session, Settings, StartTls, Stream
from mailkeep.store.api import Account, NewMessage
from mailkeep.store.names import INBOX
from mailkeep.store.sqlite import SqliteEngine
from mailkeep.store.sqlstore import SqlStore

ADDRESS = "alice@example.org"
PASSWORD = "correct horse"
OTHER = "bob@example.org"
LOOPBACK = Peer(remote="127.0.0.1", tls=False, loopback=True, can_start_tls=True)
REMOTE = Peer(remote="192.0.2.7", tls=False, loopback=False, can_start_tls=True)


@functools.cache
def credentials() -> tuple[str, str]:
    """One argon2 hash and SCRAM key set for the whole run (hashing is slow)."""
    return hash_password(PASSWORD), scram_stored(PASSWORD)


class Clock:
    """A settable clock for the store (download times, retention)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[SqlStore]:
    root = tmp_path / "store"
    engine = await SqliteEngine.open(root / "mailkeep.sqlite3", root / "blobs", 2)
    opened = SqlStore(engine, clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


async def add_account(store: SqlStore, address: str = ADDRESS) -> Account:
    password_hash, scram = credentials()
    return await store.create_account(address, password_hash, scram)


@pytest.fixture
async def account(store: SqlStore) -> Account:
    return await add_account(store)


async def deliver(store: SqlStore, account: Account, *raws: bytes) -> list[int]:
    """Append messages to the account's INBOX; return their UIDs."""
    mailbox = await store.get_mailbox(account.id, INBOX)
    assert mailbox is not None
    result = await store.append(mailbox.id, [NewMessage(raw, parse(raw)) for raw in raws])
    return list(result.uids)


async def no_sleep(delay: float) -> None:
    return None


def authenticator(store: SqlStore, auth: AuthConfig | None = None) -> Authenticator:
    config = auth or AuthConfig()
    return Authenticator(store, config, Throttle(config.failure_delay), sleep=no_sleep)


def settings(
    pop3: Pop3Config | None = None, *, max_line: int = 64 * 1024, max_failures: int = 3
) -> Settings:
    config = Config(hostname="pop.example.org")
    config = dataclasses.replace(
        config,
        pop3=pop3 or Pop3Config(),
        limits=dataclasses.replace(config.limits, max_line=max_line),
        auth=dataclasses.replace(config.auth, max_failures=max_failures),
    )
    return Settings.from_config(config)


def new_session(
    store: SqlStore,
    peer: Peer = LOOPBACK,
    *,
    pop3: Pop3Config | None = None,
    auth: AuthConfig | None = None,
    max_line: int = 64 * 1024,
    max_failures: int = 3,
    clock: Clock | None = None,
) -> Session:
    return Session(
        store,
        authenticator(store, auth),
        settings(pop3, max_line=max_line, max_failures=max_failures),
        peer,
        clock=clock or Clock(),
    )


# ---------------------------------------------------------------------------- driving


class Driver:
    """Feeds a session and collects what it sends, as the server loop would."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.closed = False
        self.tls_requested = False

    async def send(self, data: bytes) -> bytes:
        """Feed ``data``; run every complete command; return all output."""
        self.session.receive_data(data)
        return await self.run()

    async def run(self) -> bytes:
        out = bytearray()
        while not self.closed and (actions := await self.session.next_actions()) is not None:
            for action in actions:
                match action:
                    case Send(data):
                        out += data
                    case Stream(head, body):
                        out += head
                        async for piece in body:
                            out += piece
                    case StartTls():
                        self.tls_requested = True
                        self.session.tls_started()
                    case Close():
                        self.closed = True
                        await self.session.close()
        return bytes(out)

    async def command(self, line: str) -> bytes:
        return await self.send(line.encode() + b"\r\n")

    async def login(self, address: str = ADDRESS, password: str = PASSWORD) -> bytes:
        await self.command(f"USER {address}")
        reply = await self.command(f"PASS {password}")
        assert reply.startswith(b"+OK"), reply
        return reply


async def transcript(session: Session, text: str) -> Driver:
    """Run a dialogue written as ``C:``/``S:`` lines (RFC style). The greeting is the
    first ``S:`` lines, if any. Server lines must match exactly; ``*`` in one matches
    any text. Lines are compared without CRLF; every server line ends with one."""
    driver = Driver(session)
    steps: list[tuple[str, str]] = []
    for raw in text.strip("\n").splitlines():
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        who, _, rest = line.partition(":")
        assert who in {"C", "S"}, f"transcript line {raw!r} must start with C: or S:"
        steps.append((who, rest[1:] if rest.startswith(" ") else rest))
    output = session.greeting()
    expected: list[str] = []
    for who, line in steps:
        if who == "S":
            expected.append(line)
            continue
        compare(output, expected)
        expected = []
        output = await driver.send(line.encode() + b"\r\n")
    compare(output, expected)
    return driver


async def dialogue(driver: Driver, text: str) -> None:
    """``transcript`` for a session already under way (no greeting)."""
    expected: list[str] = []
    output = b""
    for raw in text.strip("\n").splitlines():
        line = raw.lstrip()
        if not line:
            continue
        who, _, rest = line.partition(":")
        assert who in {"C", "S"}, f"transcript line {raw!r} must start with C: or S:"
        rest = rest[1:] if rest.startswith(" ") else rest
        if who == "S":
            expected.append(rest)
            continue
        compare(output, expected)
        expected = []
        output = await driver.command(rest)
    compare(output, expected)


def compare(output: bytes, expected: list[str]) -> None:
    assert output.endswith(b"\r\n") or not output, output
    lines = output.decode("utf-8", "replace").split("\r\n")[:-1] if output else []
    assert len(lines) == len(expected), f"got {lines!r}, want {expected!r}"
    for got, want in zip(lines, expected, strict=True):
        pattern = ".*".join(re.escape(part) for part in want.split("*"))
        assert re.fullmatch(pattern, got, re.DOTALL), f"got {got!r}, want {want!r}"


# ---------------------------------------------------------------------------- real server


@dataclasses.dataclass
class Server:
    """mailkeep's POP3 listeners, in this process, on ports the OS chose."""

    app: App
    pop3: int
    pop3s: int
    data: Path

    @property
    def store(self) -> SqlStore:
        return self.app.store


@pytest.fixture
def server_config(tmp_path: Path) -> Config:
    """The configuration of ``server``; a test module may override this fixture."""
    config = Config(hostname="pop.example.org", data_dir=tmp_path / "data")
    return dataclasses.replace(config, auth=dataclasses.replace(config.auth, failure_delay=0.05))


@pytest.fixture
async def server(server_config: Config) -> AsyncIterator[Server]:
    config = server_config
    data = config.data_dir
    data.mkdir(exist_ok=True)
    ensure_self_signed(config.path(config.tls.cert), config.path(config.tls.key), "localhost")
    app = await App.open(config)
    tls = app.tls
    assert tls is not None
    listeners = Listeners(
        listener_specs(app, {"pop3": ("127.0.0.1", 0), "pop3s": ("127.0.0.1", 0)}),
        gate=app.gate,
        tls_context=lambda: tls.context,
    )
    ports = {name: port for name, _, port in await listeners.start()}
    try:
        await add_account(app.store)
        yield Server(app, ports["pop3"], ports["pop3s"], data)
    finally:
        await listeners.stop()
        await app.close()
