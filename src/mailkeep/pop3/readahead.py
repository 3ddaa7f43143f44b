"""RETR runs read ahead where every store read is a round trip to a database server
(``Store.remote_reads``).

A client downloading a maildrop sends ``RETR 1``, ``RETR 2``, ... and each message is a
small store read: one at a time, the session spends more time waiting for the database
than sending. Once RETR goes through consecutive messages, the rows (header, blob, size)
of the next messages up to ``GROUP_OCTETS`` and the bodies of those among them up to
``WHOLE_BLOB`` are read in two queries (``Store.open_small_blobs``), and while that group
is sent the next one is already being read. At most two groups are held per session. On
SQLite a point read costs less than this bookkeeping, so the session does not use it
there.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailkeep.store.api import WHOLE_BLOB, BlobReader, FetchField, MessageRow, Store

if TYPE_CHECKING:
    from mailkeep.pop3.session import Maildrop

GROUP_OCTETS = 4 * 2**20
GROUP_MESSAGES = 1000
"""At most this many messages in a group, however small."""


@dataclass(frozen=True, slots=True)
class Group:
    """Messages ``start`` up to ``end`` (exclusive): the rows of those still in the
    store, and the readers of those read whole, by message index."""

    start: int
    end: int
    rows: dict[int, MessageRow]
    blobs: dict[int, BlobReader]

    def __contains__(self, index: int) -> bool:
        return self.start <= index < self.end


async def read_group(store: Store, drop: Maildrop, start: int) -> Group:
    indexes: list[int] = []
    octets = 0
    end = start
    while end < len(drop) and octets < GROUP_OCTETS and len(indexes) < GROUP_MESSAGES:
        if not drop.deleted[end]:
            indexes.append(end)
            octets += drop.sizes[end]
        end += 1
    fields = FetchField.HEADER | FetchField.BLOB | FetchField.SIZE
    found = await store.fetch(drop.mailbox_id, [drop.uids[i] for i in indexes], fields)
    by_uid = {row.uid: row for row in found}
    rows = {i: by_uid[drop.uids[i]] for i in indexes if drop.uids[i] in by_uid}
    whole = {i: row for i, row in rows.items() if row.size <= WHOLE_BLOB}
    readers = await store.open_small_blobs([row.blob for row in whole.values()])
    blobs = {i: readers[row.blob] for i, row in whole.items() if row.blob in readers}
    return Group(start, end, rows, blobs)


class ReadAhead:
    """The group being sent and the one being read after it."""

    def __init__(self, store: Store, drop: Maildrop) -> None:
        self._store = store
        self._drop = drop
        self._current = Group(0, 0, {}, {})
        self._next: asyncio.Task[Group] | None = None

    async def take(self, index: int) -> tuple[MessageRow | None, BlobReader | None]:
        """Message ``index``'s row and reader, as far as read ahead (None: read it
        alone); reads its group first unless that is here or on its way."""
        if index not in self._current:
            self._current = await self._group_from(index)
            if self._current.end < len(self._drop):
                self._next = asyncio.ensure_future(
                    read_group(self._store, self._drop, self._current.end)
                )
        return self._current.rows.pop(index, None), self._current.blobs.pop(index, None)

    async def _group_from(self, index: int) -> Group:
        task, self._next = self._next, None
        if task is not None:
            if index >= self._current.end:  # the read of what follows the current group
                group = await task
                if index in group:
                    return group
            elif not task.cancel() and not task.cancelled():  # the client went back
                task.exception()  # seen here: a failed read nobody wants is no error
        return await read_group(self._store, self._drop, index)

    async def close(self) -> None:
        task, self._next = self._next, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
