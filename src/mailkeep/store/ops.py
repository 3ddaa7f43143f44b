"""Transactions as generators of SQL operations: the store's logic without I/O.

Every store transaction is written once, as a generator that yields ``Op``s and receives
their results, e.g.::

    def count_tx(mailbox_id: int) -> Tx[int]:
        row = yield One("SELECT count(*) FROM messages WHERE mailbox_id = ?", (mailbox_id,))
        return row[0]

A backend drives the generator with its own connection: SQLite synchronously in its
writer or reader threads, PostgreSQL with ``await``. SQL uses ``?`` placeholders and the
common subset of both dialects; the few differences go through ``Dialect``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ParamSpec, Protocol, TypeVar, cast

T = TypeVar("T")
P = ParamSpec("P")

Row = Sequence[Any]


@dataclass(frozen=True, slots=True)
class One:
    """Run a query; the result is its first row, or None.

    ``for_update`` locks the selected rows until the transaction ends, for a value read
    and then written back (UIDNEXT, HIGHESTMODSEQ, quota usage). Backends with several
    concurrent writers (PostgreSQL: ``FOR UPDATE``) need it; SQLite's single writer
    ignores it.
    """

    sql: str
    params: Sequence[Any] = ()
    for_update: bool = False


@dataclass(frozen=True, slots=True)
class All:
    """Run a query; the result is the list of its rows."""

    sql: str
    params: Sequence[Any] = ()


@dataclass(frozen=True, slots=True)
class Exec:
    """Run a statement; the result is the number of rows it changed."""

    sql: str
    params: Sequence[Any] = ()


@dataclass(frozen=True, slots=True)
class Many:
    """Run a statement once per parameter tuple; the result is None."""

    sql: str
    params: Sequence[Sequence[Any]]


@dataclass(frozen=True, slots=True)
class Batch:
    """``Many`` that PostgreSQL runs as one statement over arrays. SQLite runs ``sql``
    once per row with the parameters ``(*row, *fixed)``, numbered (``?1``, ``?2``, ...);
    PostgreSQL runs ``array_sql`` once with one array per column of ``rows`` (for
    ``unnest``), then ``fixed``, as ``$1``, ``$2``, .... A statement per row is a round of
    PostgreSQL's executor each: a fifth of a 5,000-message STORE. The result is None."""

    sql: str
    array_sql: str
    rows: Sequence[Sequence[Any]]
    fixed: Sequence[Any] = ()


@dataclass(frozen=True, slots=True)
class NewContent:
    """Insert a contents row for a stored blob: ``blob`` and ``values`` into ``blob``
    and ``columns``, a reference count of one (``content_refs``) and the text for the
    full-text index (as ``FtsInsert``; both backends index it after the commit). The
    result is the new row's id, or None when the blob is not durably stored (collected
    meanwhile: the caller writes it again).

    The blob's presence is checked inside the write transaction, serialised with
    ``DeleteBlob``, so that a blob collected concurrently is never referenced. One op for
    four statements, so that a backend where each statement is a round trip
    (PostgreSQL) can send them as one.
    """

    blob: str
    columns: tuple[str, ...]
    values: tuple[Any, ...]
    headers: str
    body: str


@dataclass(frozen=True, slots=True)
class AppendOne:
    """Append one message in one statement that is its own transaction, on a backend
    that can (``Dialect.append_one``; PostgreSQL, where each statement is a round trip):
    what ``sql.append_tx`` does for one message. Run as a transaction's only op by
    ``write(tx, one_statement=True)``, or inside a transaction (pipelined appends sharing
    one, ``all_of``). The result is ``(outcome, mailbox, usage)``: outcome
    ``appended`` with the mailbox's row as after (``sql.MAILBOX_COLUMNS``) and the
    account's quota and usage after the charge (as ``Usage``); or, with nothing kept,
    ``blob missing``, ``no mailbox``, ``no account`` (both None), ``over quota`` (the
    usage it would have made, mailbox None)."""

    mailbox_id: int
    blob: str
    octets: bytes | None
    """The message, stored with it; None when stored already (``put_blob``)."""
    check_quota: bool
    now: int
    message: tuple[Any, ...]
    """The messages row's flags, keywords, internaldate and its time zone."""
    referred: tuple[str, ...]
    """Message-IDs it refers to, for its THREADID."""
    content: tuple[Any, ...]
    """The values of ``sql.CONTENT_COLUMNS``, should the blob have no contents row yet."""
    headers: str
    body: str
    words: tuple[str, ...] | None
    """The text's whole words if the parser found them (``Dialect.wants_words``)."""


@dataclass(frozen=True, slots=True)
class Column:
    """Run a query; the result is its first column as a compact sequence of ints."""

    sql: str
    params: Sequence[Any] = ()


@dataclass(frozen=True, slots=True)
class FtsInsert:
    """Index a content's decoded text (the statement is the backend's own)."""

    content_id: int
    headers: str
    body: str


@dataclass(frozen=True, slots=True)
class FtsDelete:
    """Remove a collected content's text from the index (the same text it was indexed
    with, as contentless indexes require)."""

    content_id: int
    headers: str
    body: str


@dataclass(frozen=True, slots=True)
class DeleteBlob:
    """Remove a blob no contents row refers to (runs serialised with ``NewContent``)."""

    blob: str


@dataclass(frozen=True, slots=True)
class ReadBlob:
    """The raw bytes of a stored message (for the rare searches the index cannot answer)."""

    blob: str


Op = (
    One
    | All
    | Exec
    | Many
    | Batch
    | Column
    | NewContent
    | AppendOne
    | FtsInsert
    | FtsDelete
    | DeleteBlob
    | ReadBlob
)

Tx = Generator[Op, Any, T]


class Dialect(Protocol):
    """What differs between the SQL of the backends."""

    name: str
    narrow_contents: str
    """A clause after ``contents c`` making a query that reads only ``c.id`` and the
    searchable address and subject columns use the narrow index (SQLite's ``INDEXED BY``,
    see migration 0003), or ``""``."""
    pending_index: str | None
    """SQL answering one row, true when some contents are not in the full-text index
    yet (SQLite indexes after acknowledging, migration 0007); None when the backend
    indexes as it commits."""
    append_one: bool
    """Whether the backend runs ``AppendOne``."""
    wants_words: bool
    """Whether the backend indexes a message's whole words, which a parser may find
    beforehand (``ParsedMessage.words``)."""
    logs_flag_changes: bool
    """Whether a change of flags is logged in ``flag_changes`` (its MODSEQ and UIDs) and
    MODSEQ is not indexed: PostgreSQL, migration 0013 (``sql.changed_since``)."""

    def contains(self, haystack_sql: str) -> str:
        """SQL true when the (already lowercased) column contains the parameter ``?``."""
        ...

    def fulltext_plan(self, text: str) -> str | None:
        """SQL to run in a search's transaction before a query looking for ``text``
        through the full-text index, so that the planner uses the index; or None."""
        ...

    def fts_match(self, column: str | None) -> str:
        """SQL condition on ``c.id`` (or ``m.content_id``, the same) true when the
        content's full-text ``column`` (``headers``, ``body``, or both for None) contains
        the parameter ``?``."""
        ...

    def fts_param(self, column: str | None, text: str) -> object | None:
        """The parameter for ``fts_match(column)`` (any value the backend's driver can
        send), or None when the index cannot answer for this text (too short): the
        caller then falls back to a scan."""
        ...

    def column_candidates(self, column: str, folded: str) -> tuple[str, object] | None:
        """An SQL condition on ``c.id`` (or ``m.content_id``) and its parameter, true at
        least for every content whose search ``column`` (``subject``, ``from_``, ...)
        contains ``folded``: an index narrowing what ``contains`` then tests. None when the
        backend has no such index or it cannot answer for this text."""
        ...


class Replayable(Generator[Op, Any, T]):
    """A transaction that can be started again from the beginning.

    Backends with concurrent writers (PostgreSQL) run a transaction again when it lost a
    race it cannot win by waiting: a deadlock, a serialisation failure, a unique key
    taken meanwhile. A generator cannot be rewound, so write transactions are made with
    ``replayable``, which keeps how to make them; everywhere else this behaves exactly
    like the generator it wraps.
    """

    __slots__ = ("_make", "_tx")

    def __init__(self, make: Callable[[], Tx[T]]) -> None:
        self._make = make
        self._tx = make()

    def send(self, value: Any) -> Op:
        return self._tx.send(value)

    def throw(
        self,
        typ: Any,
        val: Any = None,
        tb: TracebackType | None = None,
    ) -> Op:
        if val is None and tb is None:
            return self._tx.throw(typ)
        return self._tx.throw(typ, val, tb)  # pragma: no cover - legacy signature

    def close(self) -> None:
        self._tx.close()

    def restart(self) -> Replayable[T]:
        """The same transaction, not yet started."""
        return Replayable(self._make)


def replayable(make: Callable[P, Tx[T]]) -> Callable[P, Tx[T]]:
    """Make a write transaction function return ``Replayable`` transactions."""

    @functools.wraps(make)
    def start(*args: P.args, **kwargs: P.kwargs) -> Tx[T]:
        return Replayable(lambda: make(*args, **kwargs))

    return start


def all_of(txs: Sequence[Tx[T]]) -> Tx[list[T]]:
    """Several write transactions run as one, all or none; the result is theirs, in order
    (pipelined appends sharing one commit where the engine has no group commit).
    Replayable when each of them is."""
    parts = list(txs)
    if all(isinstance(tx, Replayable) for tx in parts):
        return Replayable(lambda: _in_turn([cast(Replayable[T], tx).restart() for tx in parts]))
    return _in_turn(parts)


def _in_turn(txs: Sequence[Tx[T]]) -> Tx[list[T]]:
    results = []
    for tx in txs:
        results.append((yield from tx))
    return results


def run_sync(tx: Tx[T], execute: Any) -> T:
    """Drive ``tx`` with a synchronous ``execute(op) -> result``."""
    try:
        op = next(tx)
        while True:
            op = tx.send(execute(op))
    except StopIteration as stop:
        result: T = stop.value
        return result
