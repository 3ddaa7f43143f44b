"""Fixtures for the IMAP session tests: a real SQLite store in a temporary directory, an
account, the authenticator (failure delays recorded, not slept) and sessions driven in
memory (``support.Client``)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from mailkeep.auth.passwords import hash_password, scram_stored
from mailkeep.auth.service import Authenticator
from mailkeep.config import AuthConfig, LimitsConfig
from mailkeep.imap.session import Services
from mailkeep.mail.message import parse
from mailkeep.store.api import Account, NewMessage
from mailkeep.store.factory import open_store
from mailkeep.store.sqlstore import SqlStore

from .support import Client, MemoryTransport

ADDRESS = "alice@example.org"
PASSWORD = "correct horse"
CORPUS = Path(__file__).resolve().parent.parent / "mail" / "corpus"


@functools.cache
def password_hash() -> str:
    return hash_password(PASSWORD)


@functools.cache
def scram_keys() -> str:
    return scram_stored(PASSWORD, 4096)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = await open_store("sqlite:store", tmp_path, pool_size=2)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def account(store: SqlStore) -> Account:
    return await store.create_account(ADDRESS, password_hash(), scram_keys())


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_services(
    store: SqlStore,
    sleeps: Sleeps,
    *,
    auth: AuthConfig | None = None,
    limits: LimitsConfig | None = None,
) -> Services:
    authenticator = Authenticator(store, auth or AuthConfig(), scram_iterations=4096, sleep=sleeps)
    return Services(store, authenticator, limits or LimitsConfig(), "imap.example.org")


@pytest.fixture
def services(store: SqlStore, sleeps: Sleeps, account: Account) -> Services:
    return make_services(store, sleeps)


@pytest.fixture
async def client(services: Services) -> AsyncIterator[Client]:
    """A connected, not yet authenticated session (greeting read)."""
    c = Client(services)
    await c.start()
    yield c
    await c.finish()


@pytest.fixture
async def alice(client: Client, store: SqlStore) -> Client:
    """A session logged in as alice. It enters the authenticated state the way LOGIN
    does after the password check (``Session.logged_in``), skipping the argon2
    verification that would cost every test half a second; ``test_auth`` covers it."""
    credentials = await store.get_credentials(ADDRESS)
    assert credentials is not None
    assert client.session is not None
    await client.session.logged_in(credentials)
    return client


@pytest.fixture
def new_client(services: Services) -> Callable[..., Client]:
    def make(**transport: object) -> Client:
        return Client(services, MemoryTransport(**transport))  # type: ignore[arg-type]

    return make


def message(
    subject: str = "hello",
    body: str = "Hello there.\r\n",
    *,
    sender: str = "bob@example.org",
    to: str = ADDRESS,
    date: str = "Mon, 7 Feb 1994 21:52:25 -0800",
    extra: str = "",
) -> bytes:
    head = f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n{extra}"
    return (head + "\r\n" + body).encode("utf-8")


async def deliver(
    store: SqlStore,
    account: Account,
    raw: bytes,
    mailbox: str = "INBOX",
    *,
    flags: int = 0,
    keywords: tuple[str, ...] = (),
) -> int:
    """Append one message the way delivery does; returns its UID."""
    box = await store.get_mailbox(account.id, mailbox)
    assert box is not None
    result = await store.append(
        box.id, [NewMessage(raw, parse(raw), flags=flags, keywords=keywords)]
    )
    return result.uids[0]
