"""The PostgreSQL backend: several mailkeep nodes on one database (asyncpg).

It runs the same transactions as SQLite (``sql``, ``search``: generators of ``ops``),
translating ``?`` placeholders to ``$n``; only what PostgreSQL does differently lives here.

Concurrency. Every write runs in its own READ COMMITTED transaction on a pooled
connection. Values that are read and then written back are read ``FOR UPDATE``
(``One.for_update``): the mailbox row (UIDNEXT, HIGHESTMODSEQ), the account row (quota
usage), the UIDVALIDITY counter and a contents row (its reference count). Writers of one
mailbox on any node therefore queue on its row: UIDs are never duplicated or reused,
MODSEQs grow strictly, quota is exact. A transaction that loses a race it cannot win by
waiting (deadlock, serialisation failure, a unique key taken meanwhile by another node)
is run again from its start (``ops.Replayable``); the second run sees the winner's rows
and answers accordingly (``AlreadyExists``, or the existing contents row). Reads run in a
REPEATABLE READ READ ONLY transaction: one snapshot for the whole generator.

Blobs. Message bodies live in the database, so every node reads every message:
``blobs`` (hash, size) and ``blob_chunks`` of ``CHUNK`` bytes, read by range with
``substring`` so a partial FETCH transfers only what it asks for. ``put_blob`` stores a
blob in its own committed transaction before the transaction that names it (as SQLite
syncs the file first). ``NewContent`` takes ``FOR SHARE`` on the blob row, and
``DeleteBlob`` takes ``FOR UPDATE`` and then looks again (a new statement sees every
commit) for a contents row naming the blob: whichever transaction comes second sees the
other's outcome, so a blob is never deleted while referenced (an append that lost the
race gets ``BlobMissing`` and writes the blob again).

Search. IMAP SEARCH BODY/TEXT is a case-insensitive *substring* match (RFC 9051 6.4.4)
and must answer exactly as the SQLite backend does, so words alone (a tsvector and its
stemming or tokenisation rules) cannot decide it. ``contents_text`` keeps the decoded
header and body text casefolded (``str.casefold``, the same in every locale and for any
language: Polish, Slovak, Greek...) and the answer is ``LIKE '%needle%'`` on it, which a
pg_trgm GIN index serves for needles of three characters or more (shorter ones are
checked on the mailbox's own rows). The set of whole words of the text is kept as a
``tsvector`` (built in Python, language-neutral like the ``simple`` configuration, and
NULL when too large to index) with a GIN index, and prefilters: every word of the needle
that has a non-word character on both sides *within the needle* is a whole word of any
text containing the needle, so ``words @@ 'w1' & 'w2'`` may only drop rows the LIKE would
drop too. The SQLite backend folds case per character rather than with ``casefold``; the
answers differ only for the few characters whose folding expands (``ß`` matches ``ss``
here). Maintaining those indexes is most of PostgreSQL's work for a delivery, so a new
message's text is indexed after the delivery is acknowledged (migration 0010): written to
``contents_text_pending`` and moved into ``contents_text`` in batches by the delivering
node in the first pause, or by a SEARCH BODY/TEXT before it looks.

Notifications. A trigger on ``mailboxes`` NOTIFYs channel ``mailkeep`` when a mailbox's
HIGHESTMODSEQ moves or a mailbox is created, renamed or deleted; PostgreSQL delivers it
at commit. Each node LISTENs on a dedicated connection and publishes what other nodes
committed as ``MailboxTouched`` (sessions catch up from the log, which is the truth) or
``MailboxEvent``; a node's connections carry its id in ``mailkeep.node`` so it skips its
own. After a lost listening connection the node reconnects and touches every mailbox.

Maildrop. The POP3 lock is ``pg_try_advisory_lock`` on a dedicated connection held for
the session, so it holds across nodes and is released if the node dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import re
import uuid
from array import array
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from mailkeep.errors import NotFound, TemporaryFailure
from mailkeep.mail.words import MAX_LEXEME, WORD, fold, fold_text
from mailkeep.store import migrations
from mailkeep.store.api import BlobReader
from mailkeep.store.blobs import BytesBlobReader
from mailkeep.store.changes import Change, MailboxEvent, MailboxTouched
from mailkeep.store.ops import (
    All,
    AppendOne,
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
    replayable,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

if TYPE_CHECKING:
    Connection: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]

CHUNK = 256 * 1024
"""Bytes per stored blob chunk: a range read transfers at most one chunk more than asked."""
STREAM_GROUP = 1024 * 1024
"""Octets of stored chunks a stream reads per query (``PostgresBlobReader.chunks``)."""
CHANNEL = "mailkeep"
ANALYZE_AFTER = 1000
"""Messages appended through this node before it refreshes the planner's statistics
(``PostgresEngine.appended``)."""
INDEX_BATCH = 256
"""Texts indexed per statement (a transaction each), by ``PostgresEngine.index_pending``
and by the node's indexer."""
INDEX_IDLE = 0.1
"""Seconds without an append through this node after which it indexes what is pending:
it keeps out of a burst of deliveries and catches up in the first pause (as SQLite's
writer does). At 0.02 s the gaps in a burst (four connections waiting on the parse of a
large message) were pauses one to three times a second, and the indexing in them was
three fifths of PostgreSQL's CPU per delivery: LMTP x4 290-292 msg/s against 318-351 at
0.1 s (mailkeep alone, two pairs). A SEARCH indexes what is pending before it looks."""
INDEX_BACKLOG = 10_000
"""Texts appended through this node and not indexed yet beyond which it indexes between
appends too, so that a node never idle does not pile them up."""
_ATTEMPTS = 5
_MIGRATION_LOCK = 0x6D6B_0001
_MAILDROP_NAMESPACE = 0x6D61_696C << 32
_TRIGRAM = re.compile(r"[^\W_]{3}")
"""Three letters or digits: a needle with them has a trigram pg_trgm can look up."""
_MAX_QUERY_WORDS = 16

# Races another transaction won: running again sees its outcome.
_RETRY = (
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.UniqueViolationError,
)
_UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
)


# ---------------------------------------------------------------------------- text


def needle_words(folded: str) -> list[str]:
    """Words of a folded needle bounded by non-word characters inside the needle: every
    text containing the needle contains them as whole words."""
    found = []
    for match in WORD.finditer(folded):
        if match.start() == 0 or match.end() == len(folded):
            continue
        word = match.group()
        if len(word.encode()) <= MAX_LEXEME:
            found.append(word)
    found = sorted(set(found), key=len, reverse=True)[:_MAX_QUERY_WORDS]
    return found


def _like_pattern(folded: str) -> str:
    escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class PostgresDialect:
    name = "postgresql"
    narrow_contents = ""
    pending_index: str | None = "SELECT EXISTS (SELECT 1 FROM contents_text_pending)"
    append_one = True  # migration 0011
    wants_words = True  # the tsvector prefilter of contents_text
    logs_flag_changes = True  # migration 0013

    def contains(self, haystack_sql: str) -> str:
        return f"strpos({haystack_sql}, ?) > 0"

    def fulltext_plan(self, text: str) -> str | None:
        """The planner prices LIKE on a body at one operator, not at the detoasting of
        every body it reads, and so prefers scanning every contents_text row (or its
        primary key) to the trigram indexes: 40 ms against 3 for 5,000 messages, worse
        as they grow. With plain scans off for the search's transaction, text is found
        through its trigram indexes, or, in a small mailbox, by bitmap scans of the
        mailbox's own rows. A needle without three letters or digits in a row has no
        trigram to look up: the planner then chooses as it likes."""
        if _TRIGRAM.search(fold(text)) is None:
            return None
        return (
            "SELECT set_config('enable_seqscan', 'off', true),"
            " set_config('enable_indexscan', 'off', true)"
        )

    def fts_match(self, column: str | None) -> str:
        # One parameter, a text[]: {tsquery of whole words or NULL, LIKE pattern}. It is
        # unpacked in a one-row subquery that the planner pulls up, so both conditions
        # reach their GIN indexes (the words one only when it is not NULL: custom plans
        # fold the test away).
        text = "(t.headers LIKE p.v[2] OR t.body LIKE p.v[2])" if column is None else None
        like = text or f"t.{column} LIKE p.v[2]"
        return (
            "c.id IN (SELECT t.content_id FROM contents_text t,"
            " (SELECT CAST(? AS text[]) AS v) p"
            " WHERE (p.v[1] IS NULL OR t.words IS NULL"
            " OR t.words @@ CAST(p.v[1] AS tsquery))"
            f" AND {like})"
        )

    def column_candidates(self, column: str, folded: str) -> tuple[str, object] | None:
        return None  # the short search columns are scanned (migration 0004)

    def fts_param(self, column: str | None, text: str) -> object | None:
        folded = fold(text)
        words = needle_words(folded)
        query = " & ".join(f"'{w}'" for w in words) if words else None
        return [query, _like_pattern(folded)]


# ---------------------------------------------------------------------------- SQL


@lru_cache(maxsize=4096)
def to_postgres(sql: str) -> str:
    """``?`` placeholders (outside string literals) to ``$1``, ``$2``, ..."""
    out: list[str] = []
    number = 0
    quoted = False
    for char in sql:
        if char == "'":
            quoted = not quoted
        elif char == "?" and not quoted:
            number += 1
            out.append(f"${number}")
            continue
        out.append(char)
    return "".join(out)


@replayable
def _index_batch_tx(*, skip_locked: bool) -> Tx[int]:
    """Move up to ``INDEX_BATCH`` pending texts into ``contents_text``; the answer is how
    many were found (fewer than a batch: none are left)."""
    # The contents rows first, as a collection deleting one does (and then its pending
    # text): the same order, so never a deadlock.
    skip = " SKIP LOCKED" if skip_locked else ""
    rows = yield All(
        "SELECT id FROM contents WHERE id IN (SELECT content_id FROM contents_text_pending"
        f" ORDER BY content_id LIMIT ?) ORDER BY id FOR KEY SHARE{skip}",
        (INDEX_BATCH,),
    )
    if rows:
        yield Exec(
            "WITH moved AS (DELETE FROM contents_text_pending"
            " WHERE content_id = ANY(CAST(? AS bigint[])) RETURNING *)"
            " INSERT INTO contents_text (content_id, headers, body, words)"
            " SELECT content_id, headers, body, words FROM moved",
            ([row[0] for row in rows],),
        )
    return len(rows)


@lru_cache
def _insert_content(columns: tuple[str, ...]) -> str:
    """``NewContent`` as one statement: the blob's row locked ``FOR SHARE`` (no row if it
    is gone: nothing is inserted and the answer is NULL), then the contents row, its
    reference count and its text, left for the indexer (``contents_text_pending``,
    migration 0010). Parameters: the blob, the values of ``columns``, the
    folded headers, body and word list."""
    values = ", ".join(f"${n}" for n in range(2, len(columns) + 2))
    text = len(columns) + 2
    return (
        "WITH b AS (SELECT hash FROM blobs WHERE hash = $1 FOR SHARE),"
        f" c AS (INSERT INTO contents (blob, {', '.join(columns)}) SELECT b.hash, {values}"
        " FROM b RETURNING id),"
        " r AS (INSERT INTO content_refs (content_id, refs) SELECT id, 1 FROM c),"
        " t AS (INSERT INTO contents_text_pending (content_id, headers, body, words)"
        f" SELECT id, ${text}, ${text + 1}, array_to_tsvector(${text + 2}::text[]) FROM c)"
        " SELECT id FROM c"
    )


_APPEND_ONE = (
    "SELECT * FROM mailkeep_append_one("
    + ", ".join(f"${n}" for n in range(1, 39))  # the 38 parameters of migration 0011
    + ")"
)
_APPEND_REFUSALS = {
    "MK001": "blob missing",
    "MK002": "no mailbox",
    "MK003": "no account",
    "MK004": "over quota",
}
"""``AppendOne``'s outcome for each error its function raises (migration 0011)."""


def _chunks(data: bytes) -> list[bytes]:
    """A blob's octets as stored: ``CHUNK`` at a time, at least one (maybe empty)."""
    return [data[offset : offset + CHUNK] for offset in range(0, max(len(data), 1), CHUNK)]


def _clean(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "")
    return value


def _params(params: Sequence[Any]) -> list[Any]:
    return [_clean(p) for p in params]


def _rowcount(status: str) -> int:
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _numeric(text: str) -> int | Decimal:
    """sum() of bigint is numeric; ours are whole numbers, wanted as int."""
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else value


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to undo when a pooled connection goes back to the pool: asyncpg's default
    (unlock advisory locks, close cursors, UNLISTEN, RESET ALL) is one more round trip
    per use, and pooled connections take none of those (the maildrop lock and LISTEN
    have connections of their own; settings are transaction-local). An open
    transaction is still rolled back by the pool before this runs."""


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "numeric", encoder=str, decoder=_numeric, schema="pg_catalog", format="text"
    )


# ---------------------------------------------------------------------------- blobs


class PostgresBlobReader:
    """Random access to one stored message; each read fetches only the chunks it spans."""

    def __init__(
        self, pool: asyncpg.Pool, blob: str, size: int, chunk_size: int, first: bytes | None
    ) -> None:
        self._pool = pool
        self._blob = blob
        self.size = size
        self._chunk = chunk_size
        self._first = first
        """The first chunk, read with the blob's size: most messages are one chunk, and a
        download then costs one query, not two."""

    async def read(self, offset: int, length: int) -> bytes:
        offset = max(0, offset)
        length = max(0, min(length, self.size - offset))
        if length == 0:
            return b""
        first = offset // self._chunk
        last = (offset + length - 1) // self._chunk
        if last == 0 and self._first is not None:
            return self._first[offset : offset + length]
        start = offset - first * self._chunk
        end = offset + length - last * self._chunk
        try:
            rows = await self._pool.fetch(
                "SELECT substring(data FROM (CASE WHEN seq = $2 THEN $4::int ELSE 0 END) + 1"
                " FOR (CASE WHEN seq = $3 THEN $5::int ELSE $6::int END)"
                " - (CASE WHEN seq = $2 THEN $4::int ELSE 0 END))"
                " FROM blob_chunks WHERE hash = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq",
                self._blob,
                first,
                last,
                start,
                end,
                self._chunk,
            )
        except _UNAVAILABLE as exc:
            raise TemporaryFailure(f"the store is unavailable: {exc}") from exc
        return b"".join(row[0] for row in rows)

    async def chunks(self, offset: int, length: int, chunk: int = 65536) -> AsyncIterator[bytes]:
        """``length`` octets from ``offset``, ``chunk`` at a time. The stored chunks come
        ``STREAM_GROUP`` octets per query, the next query running while the caller sends
        what the last one returned: a 1 MB message read as ``read`` calls was sixteen
        round trips one after the other. (FETCH BODY[] and RETR read messages up to
        ``WHOLE_BLOB`` ahead instead, many per query: ``open_small_blobs``.)"""
        end = min(self.size, offset + max(0, length))
        if offset >= end:
            return
        first, last = offset // self._chunk, (end - 1) // self._chunk
        step = max(1, STREAM_GROUP // self._chunk)
        groups = [(seq, min(seq + step, last + 1)) for seq in range(first, last + 1, step)]
        ahead = asyncio.ensure_future(self._stored(*groups[0]))
        position = first * self._chunk  # of the first octet of the data in hand
        try:
            for i in range(len(groups)):
                data = await ahead
                if i + 1 < len(groups):
                    ahead = asyncio.ensure_future(self._stored(*groups[i + 1]))
                start = max(offset, position) - position
                stop = min(end, position + len(data)) - position
                for piece in range(start, stop, chunk):
                    yield data[piece : min(piece + chunk, stop)]
                position += len(data)
                if position < min(groups[i][1] * self._chunk, self.size):
                    return  # chunks missing: the blob ends early, as ``read`` would
        finally:
            if not ahead.cancel() and not ahead.cancelled():
                ahead.exception()  # seen here: a failure after ours is not logged as lost

    async def _stored(self, first: int, stop: int) -> bytes:
        """Stored chunks ``first`` to ``stop - 1``, whole and joined."""
        held = b""
        if first == 0 and self._first is not None:  # read with the size: not again
            held, first = self._first, 1
            if stop == 1:
                return held
        try:
            rows = await self._pool.fetch(
                "SELECT data FROM blob_chunks WHERE hash = $1 AND seq >= $2 AND seq < $3"
                " ORDER BY seq",
                self._blob,
                first,
                stop,
            )
        except _UNAVAILABLE as exc:
            raise TemporaryFailure(f"the store is unavailable: {exc}") from exc
        return b"".join([held, *(row[0] for row in rows)])

    async def close(self) -> None:
        return None


# ---------------------------------------------------------------------------- engine


class PostgresEngine:
    dialect = PostgresDialect()
    group_commit = False
    remote_reads = True

    def __init__(self, url: str, pool: asyncpg.Pool, node: str) -> None:
        self.url = url
        self.node = node
        self._pool = pool
        self._publish: Callable[[Sequence[Change]], None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self._closing = False
        self._last_turn: asyncio.Future[None] | None = None
        self._appending: dict[int, set[_InFlight]] = {}
        """``AppendOne``s in flight, by mailbox (``_write_alone``)."""
        self._appended = 0
        self._analyze_after = ANALYZE_AFTER
        self._analyzing: asyncio.Task[None] | None = None
        self._unindexed = 0
        self._last_append = 0.0
        self._indexing: asyncio.Task[None] | None = None
        self._backlog = asyncio.Event()
        """Set when ``INDEX_BACKLOG`` is reached: the indexer need not wait for a pause."""

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10) -> PostgresEngine:
        node = uuid.uuid4().hex[:16]
        settings = {"application_name": "mailkeep", "mailkeep.node": node}
        try:
            connection = await asyncpg.connect(url, server_settings=settings)
        except (*_UNAVAILABLE, asyncpg.PostgresError) as exc:
            raise TemporaryFailure(f"cannot open the store {_safe_url(url)}: {exc}") from exc
        try:
            await _migrate(connection)
        finally:
            await connection.close()
        pool = await asyncpg.create_pool(
            url,
            min_size=min(2, max(1, pool_size)),
            max_size=max(1, pool_size),
            server_settings=settings,
            init=_init_connection,
            reset=_keep_session,
        )
        engine = cls(url, pool, node)
        try:
            await engine._listen()
        except BaseException:
            await pool.close()
            raise
        return engine

    # -- running transactions

    async def read(self, tx: Tx[T], *, point: bool = False) -> T:
        """A REPEATABLE READ transaction: one snapshot for all of ``tx``. A ``point``
        read runs its statements as they come, each in a snapshot of its own: an
        account, a mailbox and its owner, looked up by key, where a change committed
        between two statements is no different from one committed just after; that
        saves two round trips (BEGIN, COMMIT) of the three, on every delivery."""
        try:
            async with self._pool.acquire() as connection:
                if point:
                    return await self._drive(connection, tx)
                async with connection.transaction(isolation="repeatable_read", readonly=True):
                    return await self._drive(connection, tx)
        except _UNAVAILABLE as exc:
            raise TemporaryFailure(f"the store is unavailable: {exc}") from exc

    async def write(self, tx: Tx[T], *, one_statement: bool = False) -> T:
        attempt = 0
        while True:
            attempt += 1
            turn: _Turn | None = None
            result: T
            try:
                async with self._pool.acquire() as connection:
                    if one_statement:
                        result, turn = await self._write_alone(connection, tx)
                    else:
                        transaction = connection.transaction()
                        await transaction.start()
                        try:
                            result = await self._drive(connection, tx)
                        except BaseException:
                            with contextlib.suppress(Exception):
                                await transaction.rollback()
                            raise
                        turn = self._take_turn()
                        await transaction.commit()
            except BaseException as exc:
                if turn is not None:
                    turn.pass_on()
                if isinstance(exc, _RETRY):
                    if not isinstance(tx, Replayable) or attempt >= _ATTEMPTS:
                        raise TemporaryFailure(
                            "the store is busy with concurrent changes; try again"
                        ) from exc
                    log.debug("retrying a transaction after %s", type(exc).__name__)
                    tx = tx.restart()
                    await asyncio.sleep(random.uniform(0, 0.01 * 2**attempt))
                    continue
                if isinstance(exc, asyncpg.exceptions.DiskFullError):
                    raise TemporaryFailure("the database disk is full; try again later") from exc
                if isinstance(exc, _UNAVAILABLE):
                    raise TemporaryFailure(f"the store is unavailable: {exc}") from exc
                raise
            assert turn is not None
            await turn.wait()
            return result

    def _take_turn(self) -> _Turn:
        """A place in the order in which writes return: taken just before COMMIT, while
        the transaction holds its row locks, so of two writes to one mailbox the first
        to commit takes the earlier place."""
        turn = _Turn(self._last_turn)
        self._last_turn = turn.released
        return turn

    async def _write_alone(self, connection: Connection, tx: Tx[T]) -> tuple[T, _Turn]:
        """Run ``tx``, one ``AppendOne``, without BEGIN and COMMIT: its statement commits
        as it ends. Its turn is then taken as if just before that commit: appends to one
        mailbox take theirs in the order of the MODSEQs they got, which is the order in
        which they committed (each waited for the mailbox's row), so that their changes
        are published in that order too: one that returns waits for each other one sent
        and not yet in turn to return, and for those with a lower MODSEQ to take theirs."""
        try:
            op = next(tx)
            if not isinstance(op, AppendOne):
                raise TypeError(f"not a one-statement transaction: {op!r}")
            mine = _InFlight()
            flying = self._appending.setdefault(op.mailbox_id, set())
            flying.add(mine)
            modseq: int | None = None
            try:
                outcome = await self._execute(connection, op)
                if outcome[0] == "appended":
                    modseq = outcome[1][5]
                mine.returned.set_result(modseq)
                if modseq is not None:
                    for other in [other for other in flying if other is not mine]:
                        theirs = await asyncio.shield(other.returned)
                        if theirs is not None and theirs < modseq:
                            await asyncio.shield(other.turned)
                turn = self._take_turn()
            finally:
                mine.done(modseq)
                flying.discard(mine)
                if not flying:
                    self._appending.pop(op.mailbox_id, None)
            try:
                tx.send(outcome)
            except StopIteration as stop:
                value: T = stop.value
                return value, turn
            except BaseException:
                turn.pass_on()
                raise
            turn.pass_on()
            raise TypeError("a one-statement transaction made another statement")
        finally:
            tx.close()

    async def _drive(self, connection: Connection, tx: Tx[T]) -> T:
        try:
            op = next(tx)
            while True:
                result = await self._execute(connection, op)
                op = tx.send(result)
        except StopIteration as stop:
            value: T = stop.value
            return value
        finally:
            tx.close()

    async def _execute(self, connection: Connection, op: Op) -> Any:
        match op:
            case One(sql, params, for_update):
                text = to_postgres(sql) + (" FOR UPDATE" if for_update else "")
                return await connection.fetchrow(text, *_params(params))
            case All(sql, params):
                return await connection.fetch(to_postgres(sql), *_params(params))
            case Exec(sql, params):
                return _rowcount(await connection.execute(to_postgres(sql), *_params(params)))
            case Many(sql, params):
                if params:
                    await connection.executemany(to_postgres(sql), [_params(p) for p in params])
                return None
            case Batch(_, array_sql, rows, fixed):
                if rows:
                    columns = [_params(column) for column in zip(*rows, strict=True)]
                    await connection.execute(array_sql, *columns, *_params(fixed))
                return None
            case Column(sql, params):
                rows = await connection.fetch(to_postgres(sql), *_params(params))
                return array("q", [row[0] for row in rows])
            case NewContent(blob, columns, values, headers, body):
                headers, body, found = fold_text(headers, body)
                return await connection.fetchval(
                    _insert_content(columns), blob, *_params(values), headers, body, found
                )
            case AppendOne(
                mailbox_id,
                blob,
                octets,
                check,
                now,
                message,
                referred,
                content,
                headers,
                body,
                words,
            ):
                if words is None:
                    headers, body, found = fold_text(headers, body)
                else:  # found by the parser (``Dialect.wants_words``)
                    headers, body, found = fold(headers), fold(body), list(words)
                try:
                    row = await connection.fetchrow(
                        _APPEND_ONE,
                        mailbox_id,
                        blob,
                        check,
                        now,
                        None if octets is None else _chunks(octets),
                        None if octets is None else len(octets),
                        CHUNK,
                        *_params(message),
                        _params(referred),
                        *_params(content),
                        headers,
                        body,
                        found,
                    )
                except asyncpg.PostgresError as exc:
                    outcome = _APPEND_REFUSALS.get(exc.sqlstate)
                    if outcome is None:
                        raise
                    usage = json.loads(exc.detail or "null") if outcome == "over quota" else None
                    return outcome, None, usage
                assert row is not None  # a function call answers one row
                return "appended", tuple(row[:7]), tuple(row[7:])
            case FtsInsert(content_id, headers, body):
                headers, body, found = fold_text(headers, body)
                await connection.execute(
                    "INSERT INTO contents_text (content_id, headers, body, words)"
                    " VALUES ($1, $2, $3, array_to_tsvector($4::text[]))",
                    content_id,
                    headers,
                    body,
                    found,
                )
                return None
            case FtsDelete(content_id):
                # Normally gone already: the row goes with its contents row.
                await connection.execute(
                    "DELETE FROM contents_text WHERE content_id = $1", content_id
                )
                return None
            case DeleteBlob(blob):
                await self._delete_blob(connection, blob)
                return None
            case ReadBlob(blob):
                rows = await connection.fetch(
                    "SELECT data FROM blob_chunks WHERE hash = $1 ORDER BY seq", blob
                )
                if not rows and not await connection.fetchrow(
                    "SELECT 1 FROM blobs WHERE hash = $1", blob
                ):
                    raise NotFound(f"message blob {blob} is missing")
                return b"".join(row[0] for row in rows)
        raise TypeError(op)  # pragma: no cover

    @staticmethod
    async def _delete_blob(connection: Connection, blob: str) -> None:
        locked = await connection.fetchrow("SELECT 1 FROM blobs WHERE hash = $1 FOR UPDATE", blob)
        if locked is None:
            return
        # A new statement sees every commit, including an append that held the blob
        # FOR SHARE while we waited: then the blob is referenced again and stays.
        if await connection.fetchrow("SELECT 1 FROM contents WHERE blob = $1", blob):
            return
        await connection.execute("DELETE FROM blobs WHERE hash = $1", blob)

    # -- blobs

    # -- the full-text indexes (migration 0010)

    async def index_pending(self) -> None:
        """Return once every text pending when called is indexed. Rows another indexer
        holds are waited for, not skipped: a SEARCH waiting for this must find them
        indexed when it looks again."""
        while await self.write(_index_batch_tx(skip_locked=False)) == INDEX_BATCH:
            pass

    async def _index_in_pauses(self) -> None:
        """The node's indexer: texts left pending by its appends (and by others it hears
        of), once they pause for ``INDEX_IDLE`` (or between them past ``INDEX_BACKLOG``).
        When appends come again it stops after the batch in hand and waits for the next
        pause: a burst of deliveries may pause for a moment many times, and indexing
        was three fifths of PostgreSQL's CPU per delivery. Rows another node is indexing
        are skipped; a SEARCH has whatever is left indexed before it looks."""
        loop = asyncio.get_running_loop()
        try:
            while self._unindexed:
                wait = self._last_append + INDEX_IDLE - loop.time()
                if wait > 0 and self._unindexed < INDEX_BACKLOG:
                    self._backlog.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._backlog.wait(), wait)
                    continue
                left, self._unindexed = self._unindexed, 0  # appends from now on count again
                while await self.write(_index_batch_tx(skip_locked=True)) == INDEX_BATCH:
                    left = max(left - INDEX_BATCH, 1)  # 1: more than counted were pending
                    resumed = self._last_append + INDEX_IDLE > loop.time()
                    if resumed and self._unindexed + left < INDEX_BACKLOG:
                        self._unindexed += left
                        break
        except (TemporaryFailure, asyncpg.PostgresError) as exc:
            log.warning("could not index new messages' text (a search will): %s", exc)
        finally:
            self._indexing = None

    # -- planner statistics

    def appended(self, count: int) -> None:
        """Have the new texts indexed (``_index_in_pauses``), and ANALYZE the message
        tables once they have grown by a tenth (and at least ``ANALYZE_AFTER`` messages)
        since this node last did: autovacuum does the same but looks only once a minute,
        and until then a mailbox filled just now is planned as nearly empty (SEARCH BODY
        through every row instead of the trigram index: 50 ms against 3 for 5,000
        messages)."""
        self._index_soon(count)
        self._appended += count
        if self._appended >= self._analyze_after and self._analyzing is None:
            self._appended = 0
            self._analyzing = asyncio.get_running_loop().create_task(self._analyze())

    def _index_soon(self, count: int) -> None:
        """Have pending texts indexed in the next pause: ``count`` appended here, or an
        unknown number (say 1) by another node or by ``mailkeep deliver``."""
        loop = asyncio.get_running_loop()
        self._unindexed += count
        self._last_append = loop.time()
        if self._indexing is None:
            self._indexing = loop.create_task(self._index_in_pauses())
        elif self._unindexed >= INDEX_BACKLOG:
            self._backlog.set()

    async def _analyze(self) -> None:
        try:
            async with self._pool.acquire() as connection:
                await connection.execute("ANALYZE messages, contents, contents_text")
                rows = await connection.fetchval(
                    "SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass"
                )
            self._analyze_after = max(ANALYZE_AFTER, int(rows or 0) // 10)
        except Exception as exc:  # best effort: autovacuum will do it in a minute
            log.warning("could not refresh the planner's statistics: %s", exc)
        finally:
            self._analyzing = None

    async def put_blob(self, blob: str, data: bytes) -> None:
        # One statement, so one round trip and its own transaction: the chunks are
        # inserted only with the blobs row that this statement inserted.
        chunks = _chunks(data)
        try:
            await self._pool.execute(
                "WITH new AS (INSERT INTO blobs (hash, size, chunk_size) VALUES ($1, $2, $3)"
                " ON CONFLICT (hash) DO NOTHING RETURNING hash)"
                " INSERT INTO blob_chunks (hash, seq, data)"
                " SELECT new.hash, c.seq - 1, c.data"
                " FROM new, unnest($4::bytea[]) WITH ORDINALITY AS c(data, seq)",
                blob,
                len(data),
                CHUNK,
                chunks,
            )
        except asyncpg.exceptions.DiskFullError as exc:
            raise TemporaryFailure("the database disk is full; try again later") from exc
        except _UNAVAILABLE as exc:
            raise TemporaryFailure(f"cannot store message: {exc}") from exc

    async def open_blob(self, blob: str) -> PostgresBlobReader:
        try:
            row = await self._pool.fetchrow(
                "SELECT b.size, b.chunk_size, c.data FROM blobs b LEFT JOIN blob_chunks c"
                " ON c.hash = b.hash AND c.seq = 0 WHERE b.hash = $1",
                blob,
            )
        except _UNAVAILABLE as exc:
            raise TemporaryFailure(f"the store is unavailable: {exc}") from exc
        if row is None:
            raise NotFound(f"message blob {blob} is missing")
        return PostgresBlobReader(self._pool, blob, row[0], row[1], row[2])

    async def open_small_blobs(self, blobs: Sequence[str]) -> dict[str, BlobReader]:
        # A FETCH batch in one query, not one each; every chunk of each, in order.
        try:
            rows = await self._pool.fetch(
                "SELECT b.hash, b.size, c.data FROM blobs b JOIN blob_chunks c"
                " ON c.hash = b.hash WHERE b.hash = ANY($1::text[]) ORDER BY b.hash, c.seq",
                sorted(set(blobs)),
            )
        except _UNAVAILABLE as exc:
            raise TemporaryFailure(f"the store is unavailable: {exc}") from exc
        readers: dict[str, BlobReader] = {}
        for blob, group in itertools.groupby(rows, key=lambda row: row[0]):
            chunks = list(group)
            data = b"".join(row[2] for row in chunks)  # one chunk: joined without a copy
            if len(data) == chunks[0][1]:  # else left to open_blob, which tells what is wrong
                readers[blob] = BytesBlobReader(data)
        return readers

    async def list_blobs(self) -> list[str]:
        try:
            rows = await self._pool.fetch("SELECT hash FROM blobs ORDER BY hash")
        except _UNAVAILABLE as exc:
            raise TemporaryFailure(f"the store is unavailable: {exc}") from exc
        return [row[0] for row in rows]

    # -- the POP3 maildrop lock

    @contextlib.asynccontextmanager
    async def maildrop_lock(self, account_id: int) -> AsyncIterator[bool]:
        try:
            connection = await asyncpg.connect(
                self.url, server_settings={"application_name": "mailkeep-maildrop"}
            )
        except _UNAVAILABLE as exc:
            raise TemporaryFailure(f"the store is unavailable: {exc}") from exc
        try:
            key = _MAILDROP_NAMESPACE | (account_id & 0xFFFFFFFF)
            held = bool(await connection.fetchval("SELECT pg_try_advisory_lock($1)", key))
            yield held
        finally:
            # Closing the session releases its advisory locks.
            await connection.close()

    # -- other nodes' commits

    def watch_external(self, publish: Callable[[Sequence[Change]], None]) -> None:
        self._publish = publish

    async def _listen(self) -> None:
        connection = await asyncpg.connect(
            self.url, server_settings={"application_name": "mailkeep-listen"}
        )
        await connection.add_listener(CHANNEL, self._on_notify)
        connection.add_termination_listener(self._on_lost)
        self._listener = connection

    def _on_notify(self, connection: Connection, pid: int, channel: str, payload: object) -> None:
        try:
            note = json.loads(str(payload))
        except ValueError:  # pragma: no cover - only our trigger notifies
            log.warning("ignoring a malformed notification %r", payload)
            return
        if note.get("n") == self.node or self._publish is None:
            return
        change: Change
        if note["k"] == "touched":
            change = MailboxTouched(note["a"], note["m"], note["h"])
            # Mail delivered elsewhere (another node, ``mailkeep deliver``) leaves its text
            # pending, and that process may be gone before its next pause.
            self._index_soon(1)
        else:
            change = MailboxEvent(
                note["a"], note["k"], note["name"], note.get("old"), mailbox_id=note.get("m")
            )
        self._publish([change])

    def _on_lost(self, connection: Connection) -> None:
        if self._closing or self._reconnect is not None:
            return
        log.warning("lost the notification connection to PostgreSQL; reconnecting")
        self._reconnect = asyncio.get_running_loop().create_task(self._relisten())

    async def _relisten(self) -> None:
        delay = 0.2
        try:
            while not self._closing:
                try:
                    await self._listen()
                except (*_UNAVAILABLE, asyncpg.PostgresError) as exc:
                    log.warning("cannot listen for other nodes' changes: %s", exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                await self._touch_everything()
                return
        finally:
            self._reconnect = None

    async def _touch_everything(self) -> None:
        """Whatever was notified while we were deaf: let every session check its log."""
        rows = await self._pool.fetch("SELECT account_id, id, highestmodseq FROM mailboxes")
        if self._publish is not None and rows:
            self._publish([MailboxTouched(r[0], r[1], r[2]) for r in rows])

    # -- lifecycle

    async def close(self) -> None:
        self._closing = True
        for task in (self._analyzing, self._indexing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        await self._pool.close()


class _InFlight:
    """An ``AppendOne`` sent and not yet in turn: the MODSEQ it got once it returned
    (None: it failed), and whether it has taken its turn."""

    __slots__ = ("returned", "turned")

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.returned: asyncio.Future[int | None] = loop.create_future()
        self.turned: asyncio.Future[None] = loop.create_future()

    def done(self, modseq: int | None) -> None:
        if not self.returned.done():
            self.returned.set_result(modseq)
        if not self.turned.done():
            self.turned.set_result(None)


class _Turn:
    """Writes return, and so their callers publish their changes, in commit order."""

    def __init__(self, previous: asyncio.Future[None] | None) -> None:
        self.previous = previous
        self.released: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def _release(self, _: object = None) -> None:
        if not self.released.done():
            self.released.set_result(None)

    def pass_on(self) -> None:
        """We publish nothing: the next write may go as soon as the previous went."""
        if self.previous is None or self.previous.done():
            self._release()
        else:
            self.previous.add_done_callback(self._release)

    async def wait(self) -> None:
        """Wait for the previous write to have returned; then let the next one go. The
        release happens in the caller's task right before it returns and publishes, so
        the next one resumes only after that."""
        try:
            if self.previous is not None and not self.previous.done():
                await asyncio.shield(self.previous)
        except BaseException:
            self.pass_on()
            raise
        self._release()


async def _migrate(connection: asyncpg.Connection) -> None:
    """Apply pending migrations once, whichever node starts first (an advisory lock)."""
    await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)"
        )
        current = await connection.fetchval("SELECT max(version) FROM schema_version")
        for version, name, script in migrations.pending("postgres", current or 0):
            log.info("applying store migration %s", name)
            async with connection.transaction():
                await connection.execute(script)
                await connection.execute(
                    "INSERT INTO schema_version (version) VALUES ($1)", version
                )
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)
