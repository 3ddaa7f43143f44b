"""FETCH data that never changes, kept per message in memory.

A message's ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE, INTERNALDATE and header fields
are fixed for as long as its UID exists (RFC 9051 2.3.1.1: a UID is never reused within a
UIDVALIDITY). Clients fetch the same items for a whole folder again and again (the
header-field list of a message list, the structure before opening messages), so the
rendered items of such a FETCH are kept per (mailbox, UIDVALIDITY, items, UID) and a
repeated FETCH answers without the store, as Dovecot's index cache keeps the fields its
clients ask for. Flags and MODSEQ change, so a FETCH naming them is never cached.

One cache per server (``Services``), least recently used out first, bounded in octets.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

BUDGET = 64 * 2**20
"""Octets of cached responses, counting a fixed overhead per entry."""
_ENTRY_OVERHEAD = 256
"""Dictionary slot, key tuple, UID and bytes object headers of one entry, roughly."""


class FetchCache:
    def __init__(self, budget: int = BUDGET) -> None:
        self._budget = budget
        self._used = 0
        self._entries: OrderedDict[tuple[Hashable, int], bytes] = OrderedDict()

    def get(self, key: Hashable, uid: int) -> bytes | None:
        entry = (key, uid)
        found = self._entries.get(entry)
        if found is not None:
            self._entries.move_to_end(entry)
        return found

    def put(self, key: Hashable, uid: int, items: bytes) -> None:
        entry = (key, uid)
        old = self._entries.pop(entry, None)
        if old is not None:
            self._used -= len(old) + _ENTRY_OVERHEAD
        self._entries[entry] = items
        self._used += len(items) + _ENTRY_OVERHEAD
        while self._used > self._budget and self._entries:
            _, dropped = self._entries.popitem(last=False)
            self._used -= len(dropped) + _ENTRY_OVERHEAD

    def __len__(self) -> int:
        return len(self._entries)
