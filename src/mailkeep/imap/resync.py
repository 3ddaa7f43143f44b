"""What a QRESYNC client missed, computed from UID arrays (RFC 7162 3.2.5.2, 3.2.6).

Pure functions: the handlers feed them the session's view (ascending UIDs) and the
client's parameters, and send what they return as ``VANISHED (EARLIER)``.

When the store's expunge log still reaches back to the client's MODSEQ, the expunged UIDs
come from the log. When it was trimmed (``store.expunge_log_days``), the server compares
instead: every UID the client may know that is not in the mailbox any more has vanished.
The seq-match data narrows that comparison (RFC 7162 3.2.5.2): if the client's message
number ``n`` still has the UID the client remembers for it, no message below that UID
can have been expunged (UIDs only grow, so nothing new appeared below it to make up for
one), and only UIDs above it need reporting.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from mailkeep.imap import sequence
from mailkeep.imap.sequence import Ranges

MAX_RANGES_PER_LINE = 2000
"""VANISHED responses are split so that no line grows without bound."""


def missing(known: Ranges, present: Sequence[int]) -> Ranges:
    """The parts of ``known`` (merged UID ranges) where no UID of ``present`` (ascending)
    is: the UIDs a client knows that are gone. Costs one pass over the present UIDs
    inside ``known``, whatever the size of the ranges."""
    out: list[tuple[int, int]] = []
    for low, high in known:
        start = bisect.bisect_left(present, low)
        stop = bisect.bisect_right(present, high)
        cursor = low
        for i in range(start, stop):
            uid = present[i]
            if uid > cursor:
                out.append((cursor, uid - 1))
            cursor = uid + 1
        if cursor <= high:
            out.append((cursor, high))
    return sequence.merge(out)


def matched_floor(view: Sequence[int], known_sequence: Ranges, known_uids: Ranges) -> int:
    """The highest UID that seq-match data proves nothing was expunged below (0 when no
    pair matches). The two sets correspond pairwise (RFC 7162 3.2.5: same count,
    ascending); a malformed pair list simply proves nothing."""
    seqs = list(sequence.iterate(known_sequence))
    uids = list(sequence.iterate(known_uids))
    if len(seqs) != len(uids):
        return 0
    floor = 0
    for seq, uid in zip(seqs, uids, strict=True):
        if 1 <= seq <= len(view) and view[seq - 1] == uid:
            floor = max(floor, uid)
    return floor


def intersect(ranges: Ranges, numbers: Iterable[int]) -> list[int]:
    """Those of ``numbers`` inside ``ranges``."""
    return [n for n in numbers if sequence.contains(ranges, n)]


def above(ranges: Ranges, floor: int) -> Ranges:
    """``ranges`` cut to the numbers greater than ``floor``."""
    return tuple((max(low, floor + 1), high) for low, high in ranges if high > floor)


def chunks(ranges: Ranges, size: int = MAX_RANGES_PER_LINE) -> list[Ranges]:
    """Ranges in groups of at most ``size``, one VANISHED response each."""
    return [ranges[i : i + size] for i in range(0, len(ranges), size)]
