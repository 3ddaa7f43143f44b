"""The SQLite store keeps small message blobs in its database (migration 0008) and larger
ones as files. Where a blob lives must not show: both kinds read back byte for byte, are
collected when no message needs them, and are reported and repaired by ``check``; blobs
written as files before the migration are still read."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from mailkeep.store import sqlite as sqlite_engine
from mailkeep.store.api import FetchField
from mailkeep.store.factory import open_store
from mailkeep.store.ops import Exec, Tx
from mailkeep.store.sqlite import SqliteEngine
from mailkeep.store.sqlstore import SqlStore

from ._support import inbox_id, msg, new, raw_message, sqlite_database

LARGE = raw_message("large", ("y" * 76 + "\r\n") * (sqlite_engine._INLINE_BLOB // 78 + 10))


def _inline(data: Path) -> set[str]:
    with sqlite3.connect(sqlite_database(data)) as connection:
        return {row[0] for row in connection.execute("SELECT hash FROM inline_blobs")}


def _files(data: Path) -> set[str]:
    return {p.name for p in (data / "store" / "blobs").glob("??/??/*")}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    store = await open_store("sqlite:store", tmp_path)
    yield store
    await store.close()


async def _read(store: SqlStore, blob: str) -> bytes:
    reader = await store.open_blob(blob)
    try:
        return b"".join([chunk async for chunk in reader.chunks(0, reader.size, 1000)])
    finally:
        await reader.close()


async def test_small_blobs_live_in_the_database_large_ones_in_files(
    store: SqlStore, tmp_path: Path
) -> None:
    inbox = await inbox_id(store)
    small = raw_message("small")
    assert len(LARGE) > sqlite_engine._INLINE_BLOB
    await store.append(inbox, [new(small), new(LARGE)])
    rows = await store.fetch(inbox, [1, 2], FetchField.BLOB)
    assert _inline(tmp_path) == {rows[0].blob}
    assert _files(tmp_path) == {rows[1].blob}
    assert await _read(store, rows[0].blob) == small
    assert await _read(store, rows[1].blob) == LARGE
    reader = await store.open_blob(rows[0].blob)
    assert await reader.read(6, 7) == small[6:13]
    assert await reader.read(len(small) - 2, 100) == small[-2:]
    await reader.close()
    assert (await store.check()).clean


async def test_collected_blobs_leave_no_row_and_no_file(store: SqlStore, tmp_path: Path) -> None:
    inbox = await inbox_id(store)
    await store.append(inbox, [new(raw_message("small")), new(LARGE)])
    await store.remove(inbox, [1, 2])
    assert await store.collect_garbage() == 2
    assert _inline(tmp_path) == set()
    assert _files(tmp_path) == set()
    assert (await store.check()).clean


async def test_the_same_message_twice_is_stored_once(store: SqlStore, tmp_path: Path) -> None:
    inbox = await inbox_id(store)
    raw = raw_message("twice")
    await store.append(inbox, [new(raw)])
    await store.append(inbox, [new(raw)])
    await store.remove(inbox, [1])
    await store.collect_garbage()
    (row,) = await store.fetch(inbox, [2], FetchField.BLOB)
    assert _inline(tmp_path) == {row.blob}
    assert await _read(store, row.blob) == raw


async def test_check_finds_missing_and_orphan_inline_blobs(store: SqlStore, tmp_path: Path) -> None:
    inbox = await inbox_id(store)
    await store.append(inbox, [msg("kept"), msg("lost")])
    kept, lost = await store.fetch(inbox, [1, 2], FetchField.BLOB)
    engine = cast(SqliteEngine, store.engine)
    orphan = "ab" * 32
    await engine.write(_exec("DELETE FROM inline_blobs WHERE hash = ?", lost.blob))
    await engine.write(_exec("INSERT INTO inline_blobs (hash, data) VALUES (?, x'00')", orphan))
    report = await store.check(repair=True)
    assert report.missing_blobs == [(lost.blob, 1)]
    assert report.orphan_blobs == [orphan]
    assert _inline(tmp_path) == {kept.blob}


async def test_blob_files_from_before_the_migration_are_read(
    store: SqlStore, tmp_path: Path
) -> None:
    """A store from before migration 0008 has every blob as a file: move one there."""
    inbox = await inbox_id(store)
    raw = raw_message("old")
    await store.append(inbox, [new(raw)])
    (row,) = await store.fetch(inbox, [1], FetchField.BLOB)
    engine = cast(SqliteEngine, store.engine)
    engine.blobs.put(row.blob, raw)
    await engine.write(_exec("DELETE FROM inline_blobs WHERE hash = ?", row.blob))
    assert await _read(store, row.blob) == raw
    assert (await store.check()).clean
    # Delivered again, the message refers to the file it has, and stays readable once
    # the first copy is collected.
    await store.append(inbox, [new(raw)])
    await store.remove(inbox, [1])
    await store.collect_garbage()
    assert await _read(store, row.blob) == raw
    await store.remove(inbox, [2])
    await store.collect_garbage()
    assert _files(tmp_path) == set()
    assert _inline(tmp_path) == set()


async def test_a_blob_lost_before_its_transaction_is_written_again(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staged blobs go with a batch that fails; the append that needed one finds it
    missing in its own transaction, stages it again (sql.BlobMissing) and succeeds."""
    inbox = await inbox_id(store)
    engine = cast(SqliteEngine, store.engine)
    raw = raw_message("retried")
    real_commit = engine._commit_batch
    dropped: list[str] = []

    def commit_dropping_staged_once(connection: sqlite3.Connection, batch: Any) -> None:
        if not dropped:
            with engine._staged_lock:
                dropped.extend(engine._staged)
                engine._staged.clear()
        real_commit(connection, batch)

    monkeypatch.setattr(engine, "_commit_batch", commit_dropping_staged_once)
    result = await store.append(inbox, [new(raw)])
    assert len(dropped) == 1
    (row,) = await store.fetch(inbox, list(result.uids), FetchField.BLOB)
    assert await _read(store, row.blob) == raw


def _exec(sql: str, *params: object) -> Tx[None]:
    yield Exec(sql, params)


async def test_the_wal_shrinks_back_after_a_large_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bodies pass through the WAL: one large transaction must not leave it at its peak."""
    limit = 4 * 1024 * 1024
    monkeypatch.setattr(sqlite_engine, "_WAL_LIMIT", limit)
    store = await open_store("sqlite:store", tmp_path)
    try:
        inbox = await inbox_id(store)
        bodies = [
            raw_message(f"bulk {n}", (f"{n:06d}" + "q" * 70 + "\r\n") * 1000) for n in range(120)
        ]
        await store.append(inbox, [new(raw) for raw in bodies])  # about 9.5 MB at once
        wal = sqlite_database(tmp_path).with_name("mailkeep.sqlite3-wal")
        assert wal.stat().st_size > 2 * limit
        await store.append(inbox, [msg("after")])
        await store.append(inbox, [msg("and after")])
        assert wal.stat().st_size <= limit
    finally:
        await store.close()
