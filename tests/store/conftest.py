"""The ``store`` fixture: every contract test runs on SQLite and on PostgreSQL.

SQLite lives in the test's temporary directory. PostgreSQL runs on 127.0.0.1:5432 (user
``postgres``, trust authentication, as ``scripts/test-deps.sh`` sets up; started here if
it is down): each test session (each xdist worker) creates a throwaway database, every
test starts from empty tables, and the database is dropped at the end.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from mailkeep.store.factory import open_store
from mailkeep.store.sqlstore import SqlStore

PG_HOST = os.environ.get("MAILKEEP_TEST_PGHOST", "127.0.0.1")
PG_PORT = int(os.environ.get("MAILKEEP_TEST_PGPORT", "5432"))
PG_USER = os.environ.get("MAILKEEP_TEST_PGUSER", "postgres")
ADMIN_URL = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"

BACKENDS = ["sqlite", "postgresql"]
T = TypeVar("T")

# Children first. DELETE, not TRUNCATE: the tables hold a few rows, and TRUNCATE costs
# a new file per table and index.
_TABLES = (
    "garbage",
    "expunged",
    "flag_changes",
    "messages",
    "contents_text",
    "content_refs",
    "contents",
    "blob_chunks",
    "blobs",
    "subscriptions",
    "account_settings",
    "mailboxes",
    "accounts",
)


async def _reachable() -> bool:
    try:
        connection = await asyncpg.connect(ADMIN_URL, timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


def _start_postgresql() -> None:
    """What ``scripts/test-deps.sh`` does, for a developer who runs pytest directly."""
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        return
    for version in sorted(os.listdir("/etc/postgresql")):
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            check=False,
            capture_output=True,
        )


async def _create_database() -> str | None:
    if not await _reachable():
        _start_postgresql()
        for _ in range(30):
            if await _reachable():
                break
            await asyncio.sleep(1)
        else:
            return None
    name = f"mailkeep_test_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


async def _drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def _empty(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        exists = await connection.fetchval("SELECT to_regclass('accounts') IS NOT NULL")
        if exists:
            await connection.execute("; ".join(f"DELETE FROM {table}" for table in _TABLES))
            await connection.execute("UPDATE meta SET value = 0")
    finally:
        await connection.close()


def _blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion from anywhere, even inside a running loop (the
    session fixture is first asked for from inside an async fixture)."""
    with ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """A throwaway database for this test session (each xdist worker has its own)."""
    url = _blocking(_create_database())
    if url is None:
        pytest.skip(f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT} and cannot be started")
    try:
        yield url
    finally:
        _blocking(_drop_database(url))


@dataclass
class Backend:
    """Opens stores on one backend's data; several open stores are several nodes."""

    name: str
    url: str
    data_dir: Path
    opened: list[SqlStore] = field(default_factory=list)

    async def open(self, pool_size: int = 4) -> SqlStore:
        store = await open_store(self.url, self.data_dir, pool_size=pool_size)
        self.opened.append(store)
        return store

    async def close(self, store: SqlStore) -> None:
        self.opened.remove(store)
        await store.close()


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        chosen = Backend("sqlite", "sqlite:store", tmp_path)
    else:
        url: str = request.getfixturevalue("postgresql_url")
        await _empty(url)
        chosen = Backend("postgresql", url, tmp_path)
    try:
        yield chosen
    finally:
        for store in list(chosen.opened):
            await chosen.close(store)


@pytest.fixture
async def store(backend: Backend) -> SqlStore:
    return await backend.open()


@pytest.fixture
async def postgresql(postgresql_url: str, tmp_path: Path) -> AsyncIterator[Backend]:
    """PostgreSQL only: for what needs several nodes on one database."""
    await _empty(postgresql_url)
    chosen = Backend("postgresql", postgresql_url, tmp_path)
    try:
        yield chosen
    finally:
        for store in list(chosen.opened):
            await chosen.close(store)
