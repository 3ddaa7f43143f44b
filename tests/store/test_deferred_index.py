"""SQLite indexes full text after acknowledging (migration 0007): a delivery leaves its text
in ``fts_pending`` and the writer's indexer moves it into the FTS5 indexes when idle. What a
user sees must not depend on whether the indexer got there yet: every SEARCH finds pending
messages, expunged pending messages leave the indexes consistent, and pending text survives
a restart."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailkeep.client.storeio import import_mail
from mailkeep.store import query as q
from mailkeep.store import sqlite as sqlite_engine
from mailkeep.store.factory import open_store
from mailkeep.store.sqlstore import SqlStore

from ._support import inbox_id, msg, raw_message, sqlite_database


def _pending(data: Path) -> int:
    with sqlite3.connect(sqlite_database(data)) as connection:
        return int(connection.execute("SELECT count(*) FROM fts_pending").fetchone()[0])


def _check_indexes(data: Path) -> None:
    """FTS5's own consistency check of both indexes (raises if they are corrupt); the
    address index is checked against every contents row, so nothing may be pending."""
    with sqlite3.connect(sqlite_database(data)) as connection:
        for table in ("contents_fts", "contents_addr_fts"):
            connection.execute(f"INSERT INTO {table} ({table}) VALUES ('integrity-check')")


@pytest.fixture
async def idle_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SqlStore]:
    """A SQLite store whose indexer never runs on its own (it would when idle for 20 ms)."""
    monkeypatch.setattr(sqlite_engine, "_INDEX_IDLE", 3600.0)
    store = await open_store("sqlite:store", tmp_path)
    yield store
    await store.close()


async def test_searches_find_messages_not_indexed_yet(idle_store: SqlStore, tmp_path: Path) -> None:
    inbox = await inbox_id(idle_store)
    uids = list(
        (
            await idle_store.append(
                inbox,
                [
                    msg("Quarterly zebra report", "The aardvark sleeps.\r\n"),
                    msg("Lunch", "Nothing about animals.\r\n", sender="Bob <bob@example.net>"),
                ],
            )
        ).uids
    )
    assert _pending(tmp_path) == 2
    # Subject and addresses: pending contents are candidates, confirmed on the columns.
    assert await idle_store.search(inbox, q.HeaderContains("subject", "ZEBRA")) == uids[:1]
    assert await idle_store.search(inbox, q.HeaderContains("from", "bob@exa")) == uids[1:]
    assert _pending(tmp_path) == 2
    # Body and text: the search has the pending text indexed first, then looks.
    assert await idle_store.search(inbox, q.BodyContains("AARDVARK")) == uids[:1]
    assert _pending(tmp_path) == 0
    assert await idle_store.search(inbox, q.TextContains("lunch")) == uids[1:]
    assert await idle_store.sort(inbox, [q.SortKey("subject")], q.BodyContains("animals")) == [
        uids[1]
    ]
    _check_indexes(tmp_path)


async def test_sort_indexes_what_is_pending_first(idle_store: SqlStore, tmp_path: Path) -> None:
    inbox = await inbox_id(idle_store)
    uids = list((await idle_store.append(inbox, [msg("B", "gnu\r\n"), msg("A", "gnu\r\n")])).uids)
    found = await idle_store.sort(inbox, [q.SortKey("subject")], q.BodyContains("gnu"))
    assert found == [uids[1], uids[0]]
    assert _pending(tmp_path) == 0


async def test_expunging_pending_and_indexed_messages_keeps_the_indexes_sound(
    idle_store: SqlStore, tmp_path: Path
) -> None:
    inbox = await inbox_id(idle_store)
    indexed = list((await idle_store.append(inbox, [msg("Indexed okapi", "okapi\r\n")])).uids)
    assert await idle_store.search(inbox, q.BodyContains("okapi")) == indexed  # indexes it
    pending = list(
        (await idle_store.append(inbox, [msg("Pending quokka", "quokka\r\n"), msg("Kept")])).uids
    )
    assert _pending(tmp_path) == 2
    await idle_store.remove(inbox, [indexed[0], pending[0]])
    await idle_store.collect_garbage()
    assert _pending(tmp_path) == 1  # the collected one's text went with it
    assert await idle_store.search(inbox, q.HeaderContains("subject", "quokka")) == []
    assert await idle_store.search(inbox, q.BodyContains("quokka")) == []
    assert await idle_store.search(inbox, q.BodyContains("okapi")) == []
    assert await idle_store.search(inbox, q.HeaderContains("subject", "kept")) == pending[1:]
    _check_indexes(tmp_path)


async def test_the_indexer_catches_up_when_idle_and_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_engine, "_INDEX_IDLE", 3600.0)
    store = await open_store("sqlite:store", tmp_path)
    inbox = await inbox_id(store)
    uids = list((await store.append(inbox, [msg("Before", "wombat\r\n")])).uids)
    await store.close()
    assert _pending(tmp_path) == 1  # acknowledged, durable, not indexed

    monkeypatch.setattr(sqlite_engine, "_INDEX_IDLE", 0.02)
    store = await open_store("sqlite:store", tmp_path)
    try:
        uids += (await store.append(inbox, [msg("After", "wombat\r\n")])).uids
        for _ in range(200):
            if _pending(tmp_path) == 0:
                break
            await asyncio.sleep(0.025)
        assert _pending(tmp_path) == 0
        _check_indexes(tmp_path)
        assert await store.search(inbox, q.BodyContains("wombat")) == uids
    finally:
        await store.close()


async def test_a_bulk_import_leaves_nothing_to_index(idle_store: SqlStore, tmp_path: Path) -> None:
    await inbox_id(idle_store)
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for n in range(3):
        (maildir / "new" / f"{n}.host").write_bytes(raw_message(f"Imported {n}", "capybara\r\n"))
    report = await import_mail(idle_store, "alice@example.org", "maildir", maildir)
    assert report.new == 3
    assert _pending(tmp_path) == 0
    _check_indexes(tmp_path)


async def test_a_search_does_not_wait_for_ever_on_the_indexer(
    idle_store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mail arriving without pause would leave text pending at every look; after two
    rounds of indexing a search answers from the index as it is."""
    inbox = await inbox_id(idle_store)
    calls = 0

    async def indexer_never_catches_up() -> None:
        nonlocal calls
        calls += 1

    monkeypatch.setattr(idle_store.engine, "index_pending", indexer_never_catches_up)
    uids = list((await idle_store.append(inbox, [msg("Endless", "ibex\r\n")])).uids)
    async with asyncio.timeout(10):
        assert await idle_store.search(inbox, q.BodyContains("ibex")) == []
    assert calls == 2
    assert await idle_store.search(inbox, q.HeaderContains("subject", "endless")) == uids


async def test_commits_by_another_process_are_reported_while_the_indexer_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer looks for other processes' commits (``mailkeep deliver``) whenever it
    is idle, catching up on the index or not: IDLE sessions learn of that mail at once."""
    monkeypatch.setattr(sqlite_engine, "_INDEX_IDLE", 0.02)
    server = await open_store("sqlite:store", tmp_path)
    other = await open_store("sqlite:store", tmp_path)  # another process's connection
    try:
        inbox = await inbox_id(server)
        engine = server.engine
        assert isinstance(engine, sqlite_engine.SqliteEngine)

        def endless_catch_up(connection: sqlite3.Connection, **_: object) -> bool:
            engine._unindexed = 1
            return True

        monkeypatch.setattr(engine, "_index_some", endless_catch_up)
        engine._unindexed = 1
        touched = asyncio.Event()
        engine.watch_external(lambda changes: touched.set())
        await other.append(inbox, [msg("From the deliver command")])
        async with asyncio.timeout(5):
            await touched.wait()
    finally:
        await other.close()
        await server.close()
