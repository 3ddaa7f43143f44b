"""FETCH data that never changes, kept per message in memory.

A message's ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE, INTERNALDATE and header fields
are fixed for as long as its UID exists (RFC 9051 2.3.1.1: a UID is never reused within a
UIDVALIDITY). Clients fetch the same items for a whole folder again and again (the
header-field list of a message list, the structure before opening messages), so the
rendered items of such a FETCH are kept per (mailbox, UIDVALIDITY, items, UID) and a
repeated FETCH answers without the store, as Dovecot's index cache keeps the fields its
clients ask for. Flags and MODSEQ change, so a FETCH naming them is never cached.

One cache per server (``Services``), bounded in octets (``[limits] fetch_cache``). Entries
are kept in segments, one per (mailbox, UIDVALIDITY, items): a dictionary by UID, about
110 octets per entry besides the data, where entries keyed by tuples in one ordered
dictionary cost about 250. The least recently used segment goes first. A segment that
alone would outgrow the budget keeps what it holds and takes no more: a whole-folder
FETCH of a folder larger than the cache then finds that part again, where dropping the
oldest entry for every new one would leave nothing to find (a FETCH in UID order always
asks next for what was dropped longest ago).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping

BUDGET = 256 * 2**20
"""Default octets of cached responses, counting a fixed overhead per entry."""
_ENTRY_OVERHEAD = 112
"""Dictionary slot, UID and bytes object headers of one entry, roughly."""
_EMPTY: Mapping[int, bytes] = {}


class FetchCache:
    def __init__(self, budget: int = BUDGET) -> None:
        self._budget = budget
        self._used = 0
        self._segments: OrderedDict[Hashable, dict[int, bytes]] = OrderedDict()
        self._octets: dict[Hashable, int] = {}

    def segment(self, key: Hashable) -> Mapping[int, bytes]:
        """The entries kept for ``key`` by UID, marked as just used; a FETCH looks up a
        batch of UIDs in it."""
        found = self._segments.get(key)
        if found is None:
            return _EMPTY
        self._segments.move_to_end(key)
        return found

    def put(self, key: Hashable, uid: int, items: bytes) -> None:
        size = len(items) + _ENTRY_OVERHEAD
        if size > self._budget:
            return
        segment = self._segments.get(key)
        if segment is None:
            segment = self._segments[key] = {}
            self._octets[key] = 0
        self._segments.move_to_end(key)
        old = segment.pop(uid, None)
        if old is not None:
            self._count(key, -(len(old) + _ENTRY_OVERHEAD))
        while self._used + size > self._budget:
            oldest = next(iter(self._segments))
            if oldest == key:
                break  # only this segment is left: it keeps what it has
            del self._segments[oldest]
            self._used -= self._octets.pop(oldest)
        if self._used + size > self._budget:
            if not segment:
                del self._segments[key]
                del self._octets[key]
            return
        segment[uid] = items
        self._count(key, size)

    def _count(self, key: Hashable, octets: int) -> None:
        self._octets[key] += octets
        self._used += octets

    def __len__(self) -> int:
        return sum(map(len, self._segments.values()))
