"""The embedded SQLite backend: one writer thread with group commit, reader threads.

* Writes: every write transaction is queued to the single writer thread, which takes all
  queued transactions at once, runs each inside its own SAVEPOINT (one failing does not
  undo the others) and commits them together: many deliveries share one WAL sync
  (``synchronous = FULL``, so a commit is on disk before anyone is answered).
* Reads: a small pool of threads, each with its own connection; WAL lets them read a
  consistent snapshot while the writer works.
* Blobs up to ``_INLINE_BLOB`` octets (most mail) are rows of ``inline_blobs``, written by
  the writer in the batch that commits the rows naming them: the WAL sync makes both
  durable at once. Larger ones are files (``blobs.FileBlobs``), written before the
  transaction is queued and synced by the writer (one ``syncfs``) before it commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import queue
import sqlite3
import threading
from array import array
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

from mailkeep.errors import InUse, TemporaryFailure
from mailkeep.store import migrations
from mailkeep.store.api import BlobReader
from mailkeep.store.backup import GC_LOCK
from mailkeep.store.blobs import BytesBlobReader, FileBlobReader, FileBlobs
from mailkeep.store.changes import Change, MailboxTouched
from mailkeep.store.ops import (
    All,
    Batch,
    Column,
    DeleteBlob,
    Exec,
    FtsDelete,
    FtsInsert,
    Many,
    NewContent,
    One,
    Op,
    ReadBlob,
    Replayable,
    Tx,
    run_sync,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

_MAX_BATCH = 512
_EXTERNAL_POLL = 0.25
"""Seconds between checks for commits by other processes when the writer is idle."""
_TRIGRAM = 3
_WRITER_CACHE_KIB = 65536
_READER_CACHE_KIB = 8192
"""Page caches: the writer keeps the indexes it updates on every delivery; a reader
mostly scans (a FETCH of a large folder reads more than any cache holds), and the
kernel's file cache serves the pages again, so each of the readers keeps little. Every
reader's cache is memory of this process: at 64 MB each the server held 315 MB after the
three whole-folder FETCHes of a 50,000-message folder, at 8 MB 75 MB, with the same CPU."""
_INDEX_BATCH = 256
"""Pending contents the indexer moves into the full-text indexes per transaction: FTS5
writes a segment per commit, so large batches index for half the CPU of a delivery's
one or two messages (0.5 against 1 ms a message)."""
_INDEX_IDLE = 0.02
"""Seconds without a write after which the indexer runs: it keeps out of a burst of
deliveries and catches up in the first pause."""
_INDEX_BACKLOG = 10_000
"""Pending contents beyond which the indexer also runs between busy writes, so that a
server never idle does not pile up text (and a SEARCH BODY does not wait long for it)."""
_WAL_LIMIT = 64 * 1024 * 1024
_INLINE_BLOB = 128 * 1024
"""Blobs up to this size live in the database (migration 0008): no file to create, no
syncfs. Larger ones are files, which a FETCH of part of the message reads without loading
all of it; SQLite reads blobs below about 100 KB faster from its pages than from files
(https://sqlite.org/intern-v-extern-blob.html)."""


class SqliteDialect:
    name = "sqlite"
    narrow_contents = "INDEXED BY contents_search"
    pending_index: str | None = "SELECT EXISTS (SELECT 1 FROM fts_pending)"
    append_one = False  # in-process: statements cost no round trip
    wants_words = False  # FTS5 tokenises the text itself
    logs_flag_changes = False  # messages_by_modseq: SQLite updates its entries in place

    def contains(self, haystack_sql: str) -> str:
        return f"instr({haystack_sql}, ?) > 0"

    def fulltext_plan(self, text: str) -> str | None:
        return None  # the queries name their indexes where it matters

    # Index conditions name m.content_id, not c.id (the same value): SQLite then tests them
    # on each message before it looks up the message's contents row, which is what costs
    # (SEARCH SUBJECT in a 5,000-message folder: 2.3 ms -> 0.8 ms).
    def fts_match(self, column: str | None) -> str:
        return "m.content_id IN (SELECT rowid FROM contents_fts WHERE contents_fts MATCH ?)"

    def fts_param(self, column: str | None, text: str) -> str | None:
        # A trigram index finds substrings of three characters or more; a phrase of
        # consecutive trigrams is exactly a (case-insensitive) substring match.
        if len(text) < _TRIGRAM:
            return None
        phrase = '"' + text.replace('"', '""') + '"'
        return phrase if column is None else f"{{{column}}} : {phrase}"

    def column_candidates(self, column: str, folded: str) -> tuple[str, object] | None:
        # Migration 0004's trigram index over the casefolded columns: folding the text
        # and the needle character by character keeps every substring a substring, so the
        # index finds a superset of what instr() then confirms. Contents the indexer has
        # not reached yet (migration 0007) are candidates too.
        param = self.fts_param(column, folded)
        if param is None:
            return None
        return (
            "m.content_id IN (SELECT rowid FROM contents_addr_fts WHERE contents_addr_fts"
            " MATCH ? UNION ALL SELECT content_id FROM fts_pending)",
            param,
        )


class SqliteEngine:
    dialect = SqliteDialect()
    group_commit = True
    remote_reads = False  # a point read on the event loop costs tens of microseconds

    def __init__(self, path: Path, blobs: FileBlobs, readers: int = 4) -> None:
        self.path = path
        self.blobs = blobs
        self._loop = asyncio.get_running_loop()
        self._queue: queue.SimpleQueue[_WriterItem] = queue.SimpleQueue()
        self._unindexed = 1
        """About how many contents wait for the indexer (the writer's own count; at least
        1 when unknown, which the indexer's next batch settles)."""
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(max(1, readers), thread_name_prefix="mailkeep-read")
        self._reader_connections: list[sqlite3.Connection] = []
        self._point_connection: sqlite3.Connection | None = None
        self._connections_lock = threading.Lock()
        self._writer_connection = self._connect(_WRITER_CACHE_KIB)
        self._pending_deletes: set[str] = set()
        self._staged: dict[str, bytes] = {}
        """Small blobs given to ``put_blob``, for the writer's next batch to insert."""
        self._staged_lock = threading.Lock()
        self._gc_lock: BinaryIO | None = None
        self._locks: set[int] = set()
        self._publish_external: Callable[[Sequence[Change]], None] | None = None
        self._writer = threading.Thread(target=self._write_loop, name="mailkeep-write", daemon=True)

    @classmethod
    async def open(cls, path: Path, blob_root: Path, readers: int = 4) -> SqliteEngine:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = cls(path, FileBlobs(blob_root), readers)
        await asyncio.get_running_loop().run_in_executor(None, engine._migrate)
        engine._writer.start()
        return engine

    # -- connections

    def _connect(self, cache_kib: int = _READER_CACHE_KIB) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("PRAGMA busy_timeout = 30000")
            connection.execute(f"PRAGMA cache_size = -{cache_kib}")
            # The WAL carries message bodies (inline_blobs): after a large import it is
            # cut back to this size once checkpointed, instead of keeping its peak size.
            connection.execute(f"PRAGMA journal_size_limit = {_WAL_LIMIT}")
        except sqlite3.Error as exc:
            raise TemporaryFailure(f"cannot open the store {self.path}: {exc}") from exc
        return connection

    def _reader(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            connection.execute("PRAGMA query_only = ON")
            self._local.connection = connection
            with self._connections_lock:
                self._reader_connections.append(connection)
        return connection

    def _migrate(self) -> None:
        connection = self._writer_connection
        connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
        for version, name, script in migrations.pending("sqlite", row[0] or 0):
            log.info("applying store migration %s", name)
            connection.executescript(
                f"BEGIN IMMEDIATE;\n{script}\n"
                f"INSERT INTO schema_version (version) VALUES ({version});\nCOMMIT;"
            )

    # -- running transactions

    async def read(self, tx: Tx[T], *, point: bool = False) -> T:
        if point:
            # A lookup by key in WAL mode never waits for the writer and takes tens of
            # microseconds from the page cache: less than the hop to a reader thread and
            # back (two thread switches and the GIL changing hands), which delivery and
            # login pay several times. A busy database (a checkpoint, another process's
            # recovery) sends it to a reader thread after all.
            try:
                return self._run_read(tx, self._point_reader())
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
        return await self._loop.run_in_executor(self._readers, self._run_read, tx)

    def _point_reader(self) -> sqlite3.Connection:
        """The event loop thread's own connection, for ``point`` reads: it fails at once
        instead of waiting when the database is locked."""
        if self._point_connection is None:
            connection = self._connect()
            connection.execute("PRAGMA query_only = ON")
            connection.execute("PRAGMA busy_timeout = 0")
            self._point_connection = connection
        return self._point_connection

    def _run_read(self, tx: Tx[T], connection: sqlite3.Connection | None = None) -> T:
        if connection is None:
            connection = self._reader()
        connection.execute("BEGIN")
        try:
            return run_sync(tx, lambda op: self._execute(connection, op))
        finally:
            connection.execute("COMMIT")

    async def write(self, tx: Tx[T], *, one_statement: bool = False) -> T:
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put((tx, future))
        return await future

    def watch_external(self, publish: Callable[[Sequence[Change]], None]) -> None:
        """Report commits by other processes (``mailkeep deliver``, CLI tools) as
        ``MailboxTouched``, so that IDLE sessions wake up for them too."""
        self._publish_external = publish

    def appended(self, count: int) -> None:
        """SQLite's queries name their indexes where it matters (``INDEXED BY``)."""

    async def index_pending(self) -> None:
        """Return once everything pending when called is in the full-text indexes (the
        writer indexes in batches, letting other writes run in between)."""
        future: asyncio.Future[None] = self._loop.create_future()
        self._queue.put(_IndexRequest(future))
        await future

    def _write_loop(self) -> None:
        connection = self._writer_connection
        version = connection.execute("PRAGMA data_version").fetchone()[0]
        modseqs = self._highest_modseqs(connection)
        while True:
            try:
                item = self._queue.get(timeout=_INDEX_IDLE if self._unindexed else _EXTERNAL_POLL)
            except queue.Empty:
                # data_version changes only when another connection commits; this
                # connection is the only writer of this process.
                current = connection.execute("PRAGMA data_version").fetchone()[0]
                if current != version:
                    version = current
                    modseqs = self._report_external(connection, modseqs)
                    # Another process's deliveries wait for the indexer too.
                    self._unindexed = max(self._unindexed, 1)
                if self._unindexed:
                    self._index_some(connection)
                continue
            if item is None:
                break
            batch: list[tuple[Tx[Any], asyncio.Future[Any]]] = []
            requests: list[_IndexRequest] = []
            while True:
                if isinstance(item, _IndexRequest):
                    requests.append(item)
                else:
                    batch.append(item)
                if len(batch) >= _MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
            if batch:
                self._commit_batch(connection, batch)
            if requests or self._unindexed > _INDEX_BACKLOG:
                self._serve_index_requests(connection, requests)
        connection.close()

    def _serve_index_requests(
        self, connection: sqlite3.Connection, requests: list[_IndexRequest]
    ) -> None:
        """Index one batch; answer the requests if that was all, else ask again after the
        writes queued meanwhile."""
        try:
            more = self._index_some(connection, raise_errors=bool(requests))
        except TemporaryFailure as exc:
            self._loop.call_soon_threadsafe(_answer_requests, requests, exc)
            return
        if not requests:
            return
        if more:
            for request in requests:
                self._queue.put(request)
        else:
            self._loop.call_soon_threadsafe(_answer_requests, requests, None)

    def _index_some(self, connection: sqlite3.Connection, *, raise_errors: bool = False) -> bool:
        """The indexer: move a batch of pending text into the full-text indexes (body and
        headers; subject and addresses from the contents row, gone for contents already
        collected, whose body entry ``FtsDelete`` removes as ever). True if more wait."""
        try:
            connection.execute("BEGIN IMMEDIATE")
            rows = connection.execute(
                "SELECT p.content_id, p.headers, p.body, c.id, c.subject, c.from_, c.to_,"
                " c.cc, c.bcc FROM fts_pending p LEFT JOIN contents c ON c.id = p.content_id"
                " ORDER BY p.content_id LIMIT ?",
                (_INDEX_BATCH,),
            ).fetchall()
            connection.executemany(
                "INSERT INTO contents_fts (rowid, headers, body) VALUES (?, ?, ?)",
                [row[:3] for row in rows],
            )
            connection.executemany(
                "INSERT INTO contents_addr_fts (rowid, subject, from_, to_, cc, bcc)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [row[3:] for row in rows if row[3] is not None],
            )
            connection.executemany(
                "DELETE FROM fts_pending WHERE content_id = ?", [(row[0],) for row in rows]
            )
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            log.warning("full-text indexing failed (retried later): %s", exc)
            self._unindexed = 0  # until the next delivery or request: no busy loop
            if raise_errors:
                raise _temporary(exc) from exc
            return False
        more = len(rows) == _INDEX_BATCH
        self._unindexed = max(self._unindexed - len(rows), 1) if more else 0
        return more

    @staticmethod
    def _highest_modseqs(connection: sqlite3.Connection) -> dict[int, tuple[int, int]]:
        rows = connection.execute("SELECT id, account_id, highestmodseq FROM mailboxes")
        return {row[0]: (row[1], row[2]) for row in rows}

    def _report_external(
        self, connection: sqlite3.Connection, known: dict[int, tuple[int, int]]
    ) -> dict[int, tuple[int, int]]:
        current = self._highest_modseqs(connection)
        touched: list[Change] = [
            MailboxTouched(account_id, mailbox_id, modseq)
            for mailbox_id, (account_id, modseq) in current.items()
            if known.get(mailbox_id, (0, 0))[1] != modseq
        ]
        if touched and self._publish_external is not None:
            self._loop.call_soon_threadsafe(self._publish_external, touched)
        return current

    def _commit_batch(
        self, connection: sqlite3.Connection, batch: list[tuple[Tx[Any], asyncio.Future[Any]]]
    ) -> None:
        # Every blob staged before a transaction was queued is inserted ahead of it. If the
        # batch fails they are gone, like a file blob that could not be synced: an append
        # whose blob is missing writes it again (sql.BlobMissing).
        with self._staged_lock:
            staged, self._staged = self._staged, {}
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] | None = None
        if len(batch) == 1 or all(isinstance(tx, Replayable) for tx, _ in batch):
            outcomes = self._try_batch_whole(connection, batch, staged)
            if outcomes is None:
                # One of them failed: run them again (from the start), each in its own
                # savepoint, so that only the failing one is undone.
                batch = [(cast(Replayable[Any], tx).restart(), future) for tx, future in batch]
        if outcomes is None:
            outcomes = self._run_batch(connection, batch, staged, savepoints=True)
        for blob in self._pending_deletes:
            self.blobs.delete(blob)
        self._pending_deletes.clear()
        self._release_gc_lock()
        self._loop.call_soon_threadsafe(_resolve_all, outcomes)

    def _try_batch_whole(
        self,
        connection: sqlite3.Connection,
        batch: list[tuple[Tx[Any], asyncio.Future[Any]]],
        staged: dict[str, bytes],
    ) -> list[tuple[asyncio.Future[Any], Any, BaseException | None]] | None:
        """Run a batch with no savepoint per transaction (each costs: FTS5 flushes its
        pending index data at every savepoint release, one small segment per message);
        None, with everything rolled back, when one of several raised."""
        deletes_before = set(self._pending_deletes)
        try:
            return self._run_batch(connection, batch, staged, savepoints=False)
        except _BatchFailed as failed:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            self._pending_deletes = deletes_before
            if len(batch) == 1:  # undoing the batch undid just that transaction
                return [(batch[0][1], None, failed.__cause__ or failed)]
            return None

    def _run_batch(
        self,
        connection: sqlite3.Connection,
        batch: list[tuple[Tx[Any], asyncio.Future[Any]]],
        staged: dict[str, bytes],
        *,
        savepoints: bool,
    ) -> list[tuple[asyncio.Future[Any], Any, BaseException | None]]:
        """Run every transaction of the batch and commit them together. With
        ``savepoints`` a transaction that raises is undone alone; without, it raises
        ``_BatchFailed`` (the caller rolls back)."""
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            connection.execute("BEGIN IMMEDIATE")
            if staged:
                connection.executemany(
                    "INSERT OR IGNORE INTO inline_blobs (hash, data) VALUES (?, ?)",
                    staged.items(),
                )
            for tx, future in batch:
                if not savepoints:
                    try:
                        result = run_sync(tx, lambda op: self._execute(connection, op))
                    except Exception as exc:
                        raise _BatchFailed from exc
                    outcomes.append((future, result, None))
                    continue
                connection.execute("SAVEPOINT tx")
                deletes_before = set(self._pending_deletes)
                try:
                    result = run_sync(tx, lambda op: self._execute(connection, op))
                except Exception as exc:
                    connection.execute("ROLLBACK TO tx")
                    connection.execute("RELEASE tx")
                    self._pending_deletes = deletes_before
                    outcomes.append((future, None, exc))
                else:
                    connection.execute("RELEASE tx")
                    outcomes.append((future, result, None))
            # Blob files written since the last batch reach the disk before any row
            # naming them commits: one sync for the whole batch (DESIGN.md: durability).
            self.blobs.sync_pending()
            connection.execute("COMMIT")
        except (sqlite3.Error, TemporaryFailure) as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            self._pending_deletes.clear()
            failure = exc if isinstance(exc, TemporaryFailure) else _temporary(exc)
            outcomes = [(future, None, failure) for _, future in batch]
        return outcomes

    def _execute(self, connection: sqlite3.Connection, op: Op) -> Any:
        match op:
            case One(sql, params):
                return connection.execute(sql, params).fetchone()
            case All(sql, params):
                return connection.execute(sql, params).fetchall()
            case Exec(sql, params):
                return connection.execute(sql, params).rowcount
            case Many(sql, params):
                connection.executemany(sql, params)
                return None
            case Batch(sql, _, rows, fixed):
                connection.executemany(sql, [(*row, *fixed) for row in rows])
                return None
            case Column(sql, params):
                return array("q", [row[0] for row in connection.execute(sql, params)])
            case NewContent(blob, columns, values, headers, body):
                self._pending_deletes.discard(blob)
                if _inline_blob(connection, blob, "1") is None and not self.blobs.exists(blob):
                    return None
                insert = _insert_content(columns)
                content_id = connection.execute(insert, (blob, *values)).fetchone()[0]
                connection.execute(
                    "INSERT INTO content_refs (content_id, refs) VALUES (?, 1)", (content_id,)
                )
                self._execute(connection, FtsInsert(content_id, headers, body))
                return content_id
            case FtsInsert(content_id, headers, body):
                # Indexed later, by the indexer (migration 0007).
                connection.execute(
                    "INSERT INTO fts_pending (content_id, headers, body) VALUES (?, ?, ?)",
                    (content_id, headers, body),
                )
                self._unindexed += 1
                return None
            case FtsDelete(content_id, headers, body):
                pending = connection.execute(
                    "DELETE FROM fts_pending WHERE content_id = ?", (content_id,)
                ).rowcount
                if not pending:
                    connection.execute(
                        "INSERT INTO contents_fts (contents_fts, rowid, headers, body)"
                        " VALUES ('delete', ?, ?, ?)",
                        (content_id, headers, body),
                    )
                return None
            case DeleteBlob(blob):
                self._hold_gc_lock()
                connection.execute("DELETE FROM inline_blobs WHERE hash = ?", (blob,))
                self._pending_deletes.add(blob)  # a file, if it is one, once committed
                return None
            case ReadBlob(blob):
                data = _inline_blob(connection, blob, "data")
                return data if data is not None else self.blobs.read(blob)
        raise TypeError(op)  # pragma: no cover

    def _hold_gc_lock(self) -> None:
        """Blobs are deleted only while no backup runs (``backup.gc_paused``); a
        collection that meets a backup fails and is retried later."""
        if self._gc_lock is not None:
            return
        lock = open(self.path.parent / GC_LOCK, "a+b")  # noqa: SIM115 - held across calls
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise InUse("a backup is running; blobs are collected later") from None
        self._gc_lock = lock

    def _release_gc_lock(self) -> None:
        if self._gc_lock is not None:
            fcntl.flock(self._gc_lock, fcntl.LOCK_UN)
            self._gc_lock.close()
            self._gc_lock = None

    # -- blobs, locks, lifecycle

    async def list_blobs(self) -> list[str]:
        files = await self._loop.run_in_executor(None, self.blobs.all_blobs)
        rows = await self.read(_all_inline_tx())
        return sorted({*files, *rows})

    async def put_blob(self, blob: str, data: bytes) -> None:
        # Durable at the commit of the batch that names it (see _commit_batch): a small
        # blob is inserted by that batch, a file is synced before it commits.
        if len(data) <= _INLINE_BLOB:
            with self._staged_lock:
                self._staged[blob] = data
            return
        await self._loop.run_in_executor(
            None, functools.partial(self.blobs.put, sync=False), blob, data
        )

    async def open_blob(self, blob: str) -> FileBlobReader | BytesBlobReader:
        data = await self.read(_inline_blob_tx(blob), point=True)
        if data is not None:
            return BytesBlobReader(data)
        return self.blobs.open(blob)

    async def open_small_blobs(self, blobs: Sequence[str]) -> dict[str, BlobReader]:
        # On a reader thread: the rows of a FETCH batch are megabytes, where one point
        # read on the event loop is not worth the hop; one message is read in place.
        wanted = sorted(set(blobs))
        found = await self.read(_inline_blobs_tx(wanted), point=len(wanted) <= 1)
        return {blob: BytesBlobReader(data) for blob, data in found}

    @contextlib.asynccontextmanager
    async def maildrop_lock(self, account_id: int) -> AsyncIterator[bool]:
        if account_id in self._locks:
            yield False
            return
        self._locks.add(account_id)
        try:
            yield True
        finally:
            self._locks.discard(account_id)

    async def close(self) -> None:
        self._queue.put(None)
        await self._loop.run_in_executor(None, self._writer.join)
        self._readers.shutdown(wait=True)
        with self._connections_lock:
            for connection in self._reader_connections:
                connection.close()
            self._reader_connections.clear()
        if self._point_connection is not None:
            self._point_connection.close()
            self._point_connection = None


@functools.lru_cache
def _insert_content(columns: tuple[str, ...]) -> str:
    marks = ", ".join("?" * (len(columns) + 1))
    return f"INSERT INTO contents (blob, {', '.join(columns)}) VALUES ({marks}) RETURNING id"


def _inline_blob(connection: sqlite3.Connection, blob: str, column: str) -> Any:
    row = connection.execute(f"SELECT {column} FROM inline_blobs WHERE hash = ?", (blob,))
    found = row.fetchone()
    return None if found is None else found[0]


def _inline_blob_tx(blob: str) -> Tx[bytes | None]:
    row = yield One("SELECT data FROM inline_blobs WHERE hash = ?", (blob,))
    if row is None:
        return None
    data: bytes = row[0]
    return data


def _inline_blobs_tx(blobs: list[str]) -> Tx[list[tuple[str, bytes]]]:
    if not blobs:
        return []
    marks = ",".join("?" * len(blobs))
    rows = yield All(f"SELECT hash, data FROM inline_blobs WHERE hash IN ({marks})", tuple(blobs))
    return [(str(row[0]), bytes(row[1])) for row in rows]


def _all_inline_tx() -> Tx[list[str]]:
    rows = yield All("SELECT hash FROM inline_blobs")
    return [str(row[0]) for row in rows]


@dataclass(frozen=True, slots=True)
class _IndexRequest:
    """Asks the writer to index everything pending (``index_pending``)."""

    future: asyncio.Future[None]


_WriterItem = tuple[Tx[Any], asyncio.Future[Any]] | _IndexRequest | None


def _answer_requests(requests: list[_IndexRequest], error: BaseException | None) -> None:
    """Answer index requests: done (``error`` None) or failed."""
    for request in requests:
        if request.future.cancelled():
            continue
        if error is None:
            request.future.set_result(None)
        else:
            request.future.set_exception(error)


class _BatchFailed(Exception):
    """A transaction of a batch run without savepoints raised."""


def _temporary(exc: sqlite3.Error) -> TemporaryFailure:
    text = str(exc)
    if "full" in text.lower():
        return TemporaryFailure("the disk is full; try again later")
    if "locked" in text.lower() or "busy" in text.lower():
        return TemporaryFailure("the store is busy; try again later")
    return TemporaryFailure(f"the store failed: {text}")


def _resolve_all(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in outcomes:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
