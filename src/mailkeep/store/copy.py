"""Copy a whole store between backends (``mailkeep store copy``), so clients notice nothing.

Rows are copied as they are, ids included: UIDVALIDITY, UIDs, flags, MODSEQs,
HIGHESTMODSEQ, the expunge log (QRESYNC VANISHED keeps working), subscriptions, settings,
access control lists and annotations, credentials, quota and usage, POP3 download times
(POP3 UIDLs are made of UIDVALIDITY and UID, so they stay too), EMAILID and THREADID
(content ids) and the stored parse of every message (ENVELOPE, BODYSTRUCTURE are
byte-identical). Message bodies are copied blob by blob and parsed once more only for the
target's full-text index, whose text the source cannot give back (SQLite's index keeps
none). Contents no message refers to any more
(``garbage``) are not copied.

The target must be empty (a store just created by opening it), and nothing may write to
the source meanwhile: stop the servers first. A copy that was interrupted leaves a partial
target: empty it and run again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mailkeep.errors import ConfigError, NotFound
from mailkeep.mail.message import parse
from mailkeep.store import sql
from mailkeep.store.ops import All, Exec, FtsInsert, Many, One, Row, Tx
from mailkeep.store.sqlstore import SqlStore

Progress = Callable[[str, int, int], None]
"""Called with (phase, rows done, rows in the phase) as the copy goes."""

_BATCH = 500
_BLOB_BATCH = 50


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    key: tuple[str, ...]
    """The primary key, for copying in batches in key order."""
    columns: tuple[str, ...]
    same_as: tuple[tuple[str, str], ...] = ()
    """Columns written with another one's value: (target column, copied column)."""


TABLES = (
    Table(
        "accounts",
        ("id",),
        (
            "id",
            "address",
            "password_hash",
            "scram_sha256",
            "quota_bytes",
            "quota_messages",
            "used_bytes",
            "used_messages",
            "created",
        ),
    ),
    Table("account_settings", ("account_id", "key"), ("account_id", "key", "value")),
    Table(
        "mailboxes",
        ("id",),
        (
            "id",
            "account_id",
            "name",
            "uidvalidity",
            "uidnext",
            "highestmodseq",
            "expunge_log_start",
            "special_use",
            "created",
        ),
    ),
    Table("subscriptions", ("account_id", "name"), ("account_id", "name")),
    Table("contents", ("id",), ("id", "blob", *sql.CONTENT_COLUMNS)),
    Table(
        "messages",
        ("mailbox_id", "uid"),
        (
            "mailbox_id",
            "uid",
            "modseq",
            "flags",
            "keywords",
            "internaldate",
            "internaldate_tz",
            "savedate",
            "size",
            "content_id",
            "thread_id",
            "downloaded",
        ),
        # Every message as if added at its MODSEQ: the target's own flag_changes log
        # (PostgreSQL, migration 0013) is not copied, so a change made in the source
        # must be found by created_modseq.
        (("created_modseq", "modseq"),),
    ),
    Table("content_refs", ("content_id",), ("content_id", "refs")),
    Table("expunged", ("mailbox_id", "uid"), ("mailbox_id", "uid", "modseq", "at")),
    Table("acl", ("mailbox_id", "identifier"), ("mailbox_id", "identifier", "rights")),
    Table("metadata", ("id",), ("id", "mailbox_id", "account_id", "entry", "value")),
)

_KNOWN_TABLES = {
    *(t.name for t in TABLES),
    "meta",
    "garbage",
    "schema_version",
    # SQLite's own and its full-text index
    "sqlite_sequence",
    "contents_fts",
    "contents_fts_data",
    "contents_fts_idx",
    "contents_fts_docsize",
    "contents_fts_config",
    "contents_fts_content",
    "contents_addr_fts",
    "contents_addr_fts_data",
    "contents_addr_fts_idx",
    "contents_addr_fts_docsize",
    "contents_addr_fts_config",
    "fts_pending",
    # message blobs: SQLite keeps small ones in a table, PostgreSQL all
    "inline_blobs",
    "blobs",
    "blob_chunks",
    # PostgreSQL's full-text index, and its text waiting for it (migration 0010)
    "contents_text",
    "contents_text_pending",
    # PostgreSQL's log of flag changes (migration 0013): the copy's created_modseq stands
    # for it
    "flag_changes",
}
_SEQUENCES = ("accounts", "mailboxes", "contents", "metadata")


@dataclass(frozen=True, slots=True)
class CopyReport:
    rows: dict[str, int]
    """Rows copied per table."""
    blobs: int
    missing_blobs: tuple[str, ...]
    """Blobs the source names but does not have (its ``check`` reports them too)."""


async def copy_store(
    source: SqlStore, target: SqlStore, *, progress: Progress | None = None
) -> CopyReport:
    """Copy everything in ``source`` into the empty ``target``."""
    report = progress or (lambda phase, done, total: None)
    await _check_tables(source)
    await _check_tables(target)
    if await target.engine.read(_count_tx("accounts")) or await target.engine.read(
        _count_tx("contents")
    ):
        raise ConfigError("the target store is not empty: copy only into a new, empty store")
    copied: dict[str, int] = {}
    blobs = 0
    missing: list[str] = []
    last_uidvalidity = await source.engine.read(_meta_tx())
    next_content = await source.engine.read(_next_id_tx(source.engine.dialect.name))
    for table in TABLES:
        total = await source.engine.read(_count_tx(table.name))
        done = 0
        report(table.name, 0, total)
        after: Row | None = None
        while True:
            size = _BLOB_BATCH if table.name == "contents" else _BATCH
            rows = await source.engine.read(_page_tx(table, after, size))
            if not rows:
                break
            after = _key(table, rows[-1])
            texts: list[tuple[int, str, str]] = []
            if table.name == "contents":
                texts, lost = await _copy_blobs(source, target, rows)
                blobs += len(rows) - len(lost)
                missing += lost
            await target.engine.write(_insert_tx(table, rows, texts))
            done += len(rows)
            report(table.name, done, total)
        copied[table.name] = done
    await target.engine.write(
        _finish_tx(target.engine.dialect.name, last_uidvalidity, next_content)
    )
    await target.index_pending()
    return CopyReport(copied, blobs, tuple(missing))


async def _copy_blobs(
    source: SqlStore, target: SqlStore, rows: Sequence[Row]
) -> tuple[list[tuple[int, str, str]], list[str]]:
    """Copy the blobs of a page of contents rows; their text for the target's index."""
    texts: list[tuple[int, str, str]] = []
    missing: list[str] = []
    loop = asyncio.get_running_loop()
    for row in rows:
        content_id, blob = int(row[0]), str(row[1])
        try:
            reader = await source.engine.open_blob(blob)
        except NotFound:
            missing.append(blob)
            continue
        try:
            data = await reader.read(0, reader.size)
        finally:
            await reader.close()
        await target.engine.put_blob(blob, data)
        parsed = await loop.run_in_executor(None, parse, data)
        texts.append((content_id, parsed.header_text, parsed.body_text))
    return texts, missing


def _key(table: Table, row: Row) -> Row:
    return tuple(row[table.columns.index(k)] for k in table.key)


def _count_tx(table: str) -> Tx[int]:
    row = yield One(f"SELECT count(*) FROM {table}")
    return int(row[0])


def _meta_tx() -> Tx[int]:
    row = yield One("SELECT value FROM meta WHERE key = 'last_uidvalidity'")
    return int(row[0])


def _next_id_tx(dialect: str) -> Tx[int]:
    """The source's next contents id: ids of collected contents are never given again
    (they are EMAILIDs a client may remember)."""
    row = yield One("SELECT coalesce(max(content_id), 0) FROM garbage")
    highest = int(row[0])
    if dialect == "sqlite":
        row = yield One("SELECT seq FROM sqlite_sequence WHERE name = 'contents'")
        if row is not None:
            highest = max(highest, int(row[0]))
        return highest + 1
    (sequence,) = yield One("SELECT pg_get_serial_sequence('contents', 'id')")
    last, called = yield One(f"SELECT last_value, is_called FROM {sequence}")
    return max(highest + 1, int(last) + (1 if called else 0))


def _page_tx(table: Table, after: Row | None, limit: int) -> Tx[list[Row]]:
    columns = ", ".join(table.columns)
    order = ", ".join(table.key)
    if after is None:
        where, params = "", [limit]
    else:
        marks = ", ".join("?" * len(table.key))
        where, params = f" WHERE ({order}) > ({marks})", [*after, limit]
    rows = yield All(f"SELECT {columns} FROM {table.name}{where} ORDER BY {order} LIMIT ?", params)
    return [tuple(_plain(v) for v in row) for row in rows]


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


def _insert_tx(
    table: Table, rows: Sequence[Row], texts: Sequence[tuple[int, str, str]]
) -> Tx[None]:
    names = [*table.columns, *(target for target, _ in table.same_as)]
    sources = [table.columns.index(source) for _, source in table.same_as]
    marks = ", ".join("?" * len(names))
    yield Many(
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})",
        [(*row, *(row[i] for i in sources)) for row in rows],
    )
    for content_id, headers, body in texts:
        yield FtsInsert(content_id, headers, body)


def _finish_tx(dialect: str, last_uidvalidity: int, next_content: int) -> Tx[None]:
    """Counters: UIDVALIDITY keeps growing, and no id is given twice."""
    yield Exec("UPDATE meta SET value = ? WHERE key = 'last_uidvalidity'", (last_uidvalidity,))
    if dialect == "sqlite":
        changed = yield Exec(
            "UPDATE sqlite_sequence SET seq = ? WHERE name = 'contents' AND seq < ?",
            (next_content - 1, next_content - 1),
        )
        present = yield One("SELECT 1 FROM sqlite_sequence WHERE name = 'contents'")
        if not changed and present is None:
            yield Exec(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('contents', ?)",
                (next_content - 1,),
            )
        return
    for table in _SEQUENCES:
        floor = next_content if table == "contents" else 1
        yield One(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
            f" greatest((SELECT coalesce(max(id), 0) + 1 FROM {table}), ?), false)",
            (floor,),
        )


async def _check_tables(store: SqlStore) -> None:
    """Refuse a store with tables this code does not know (a newer schema): copying it
    would silently lose them."""
    if store.engine.dialect.name == "sqlite":
        tx = _names_tx("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        tx = _names_tx("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    unknown = set(await store.engine.read(tx)) - _KNOWN_TABLES
    if unknown:
        raise ConfigError(
            f"the store has tables this mailkeep cannot copy: {', '.join(sorted(unknown))}"
        )


def _names_tx(sql: str) -> Tx[list[str]]:
    rows = yield All(sql)
    return [str(r[0]) for r in rows]
