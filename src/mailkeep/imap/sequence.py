"""Sequence sets: ``*`` and ``$`` kept symbolic until a session resolves them.

::

    sequence-set = (seq-number / seq-range) ["," sequence-set]
                   ; RFC 5182 (SEARCHRES) adds "$" as a whole sequence-set
    seq-range    = seq-number ":" seq-number
                   ; two seq-number values and all values between these two
                   ; regardless of order. Example: 2:4 and 4:2 are equivalent
    seq-number   = nz-number / "*"
                   ; "*" represents the largest number in use

Resolution (``resolve``) is a pure function of the set and the value ``*`` stands for:
the number of messages (sequence numbers) or the largest UID (UIDs). For an empty
mailbox pass 0: ``*`` then denotes no message at all, so ``1:*`` resolves to nothing
(RFC 9051 9 defines ``*`` only for a non-empty mailbox; for UIDs it names UIDNEXT, which
no message has, so matching nothing is the same answer), while explicit numbers stay and
the session checks sequence numbers against the message count (BAD if beyond it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from mailkeep.imap.grammar import MAX_NUMBER

Ranges = tuple[tuple[int, int], ...]
"""Inclusive (low, high) ranges, sorted, disjoint and not adjacent."""

STAR = 0
"""Stands for ``*`` in a ``SequenceSet`` range (0 is never a valid nz-number)."""

SEQUENCE_SET = re.compile(
    rb"\$|(?:[0-9]+|\*)(?::(?:[0-9]+|\*))?(?:,(?:[0-9]+|\*)(?::(?:[0-9]+|\*))?)*"
)
"""The token; ``parse`` then checks the numbers."""


class SequenceSetError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """``ranges`` as written (``STAR`` for ``*``; reversed ranges kept), or ``saved``
    for ``$``, the result saved by ``SEARCH RETURN (SAVE)`` (RFC 5182)."""

    ranges: tuple[tuple[int, int], ...] = ()
    saved: bool = False

    def __bytes__(self) -> bytes:
        if self.saved:
            return b"$"
        return b",".join(_num(a) if a == b else _num(a) + b":" + _num(b) for a, b in self.ranges)

    def __str__(self) -> str:
        return bytes(self).decode("ascii")

    @property
    def uses_star(self) -> bool:
        return any(STAR in r for r in self.ranges)

    @classmethod
    def of(cls, numbers: Iterable[int]) -> SequenceSet:
        """The compact set of some numbers (for the command serializer and tests)."""
        return cls(compress(numbers))


def _num(n: int) -> bytes:
    return b"*" if n == STAR else b"%d" % n


def parse(text: bytes) -> SequenceSet:
    """Parse a ``sequence-set`` (the whole of ``text``)."""
    if text == b"$":
        return SequenceSet(saved=True)
    if not SEQUENCE_SET.fullmatch(text):
        raise SequenceSetError(f"invalid sequence set {text[:40].decode('ascii', 'replace')!r}")
    ranges: list[tuple[int, int]] = []
    for item in text.split(b","):
        first, _, last = item.partition(b":")
        a = _seq_number(first)
        b = _seq_number(last) if last else a
        ranges.append((a, b))
    return SequenceSet(tuple(ranges))


def _seq_number(token: bytes) -> int:
    if token == b"*":
        return STAR
    if len(token) > 10 or not 0 < int(token) <= MAX_NUMBER:
        raise SequenceSetError(f"sequence number {token.decode('ascii')} is out of range")
    return int(token)


def resolve(seqset: SequenceSet, largest: int, saved: Ranges | None = None) -> Ranges:
    """The numbers ``seqset`` denotes when ``*`` is ``largest``, as merged ranges.

    ``saved`` is the session's SEARCHRES result, required when ``seqset`` is ``$``
    (RFC 5182: an empty saved result is valid and denotes nothing).
    """
    if seqset.saved:
        if saved is None:
            raise SequenceSetError("no saved search result for '$'")
        return saved
    pairs: list[tuple[int, int]] = []
    for a, b in seqset.ranges:
        if a == STAR:
            a = largest
        if b == STAR:
            b = largest
        if a == 0 or b == 0:
            continue  # "*" on an empty mailbox
        pairs.append((a, b) if a <= b else (b, a))
    return merge(pairs)


def merge(pairs: Iterable[tuple[int, int]]) -> Ranges:
    """Sort and merge inclusive ranges, joining adjacent ones."""
    out: list[tuple[int, int]] = []
    for low, high in sorted(pairs):
        if out and low <= out[-1][1] + 1:
            if high > out[-1][1]:
                out[-1] = (out[-1][0], high)
        else:
            out.append((low, high))
    return tuple(out)


def compress(numbers: Iterable[int]) -> Ranges:
    """Numbers (any order, duplicates allowed) as merged ranges."""
    return merge((n, n) for n in numbers)


def contains(ranges: Ranges, number: int) -> bool:
    """Whether ``number`` is in merged ``ranges`` (binary search)."""
    lo, hi = 0, len(ranges)
    while lo < hi:
        mid = (lo + hi) // 2
        if ranges[mid][1] < number:
            lo = mid + 1
        else:
            hi = mid
    return lo < len(ranges) and ranges[lo][0] <= number


def iterate(ranges: Ranges) -> Iterator[int]:
    for low, high in ranges:
        yield from range(low, high + 1)


def count(ranges: Ranges) -> int:
    return sum(high - low + 1 for low, high in ranges)


def format_ranges(ranges: Sequence[tuple[int, int]]) -> bytes:
    """Merged ranges as a ``sequence-set`` / ``uid-set`` (``1:3,7``); empty gives b""."""
    return b",".join(b"%d" % a if a == b else b"%d:%d" % (a, b) for a, b in ranges)


def format_numbers(numbers: Iterable[int]) -> bytes:
    """Numbers as a compact set, in ascending order (APPENDUID, VANISHED, ESEARCH ALL)."""
    return format_ranges(compress(numbers))


def format_ordered(numbers: Sequence[int]) -> bytes:
    """Numbers in the given order, runs collapsed (COPYUID's source and destination sets
    must correspond pairwise, RFC 4315, so they are not sorted)."""
    out: list[bytes] = []
    i = 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        out.append(b"%d" % numbers[i] if i == j else b"%d:%d" % (numbers[i], numbers[j]))
        i = j + 1
    return b",".join(out)
