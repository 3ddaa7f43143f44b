"""Search and sort queries in domain terms; backends compile them to SQL.

The IMAP layer turns SEARCH programs into these (sequence numbers already turned into
UIDs); text matching is case-insensitive substring matching on decoded text, as RFC 9051
6.4.4 asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

UidRanges = tuple[tuple[int, int], ...]
"""Inclusive (low, high) UID ranges."""


@dataclass(frozen=True, slots=True)
class All:
    pass


@dataclass(frozen=True, slots=True)
class Uids:
    ranges: UidRanges


@dataclass(frozen=True, slots=True)
class HasFlags:
    """Messages with all of ``flags`` set (``present``), or with none of them set."""

    flags: int
    present: bool = True


@dataclass(frozen=True, slots=True)
class HasKeyword:
    keyword: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class Recent:
    """UID >= the session's recent boundary (the store knows no sessions)."""

    from_uid: int


@dataclass(frozen=True, slots=True)
class HeaderContains:
    """``field`` is a header name (lowercase); empty ``text`` matches presence."""

    field: str
    text: str


@dataclass(frozen=True, slots=True)
class BodyContains:
    text: str


@dataclass(frozen=True, slots=True)
class TextContains:
    """Header or body contains ``text``."""

    text: str


@dataclass(frozen=True, slots=True)
class DateCompare:
    """Compare a message date, disregarding time and zone (RFC 9051 6.4.4).

    ``which`` is ``internal`` (INTERNALDATE), ``sent`` (Date: header) or ``saved``
    (SAVEDATE); ``op`` is ``before``, ``on`` or ``since``.
    """

    which: str
    op: str
    day: date


@dataclass(frozen=True, slots=True)
class InternalAfter:
    """INTERNALDATE within an absolute instant range (WITHIN: OLDER/YOUNGER)."""

    instant: datetime
    younger: bool


@dataclass(frozen=True, slots=True)
class SizeCompare:
    larger: bool
    size: int


@dataclass(frozen=True, slots=True)
class ModseqAtLeast:
    modseq: int


@dataclass(frozen=True, slots=True)
class EmailId:
    email_id: str


@dataclass(frozen=True, slots=True)
class ThreadId:
    thread_id: str


@dataclass(frozen=True, slots=True)
class Not:
    query: Query


@dataclass(frozen=True, slots=True)
class And:
    queries: tuple[Query, ...]


@dataclass(frozen=True, slots=True)
class Or:
    left: Query
    right: Query


Query = (
    All
    | Uids
    | HasFlags
    | HasKeyword
    | Recent
    | HeaderContains
    | BodyContains
    | TextContains
    | DateCompare
    | InternalAfter
    | SizeCompare
    | ModseqAtLeast
    | EmailId
    | ThreadId
    | Not
    | And
    | Or
)


@dataclass(frozen=True, slots=True)
class SortKey:
    """RFC 5256 / RFC 5957 sort criterion: ``arrival``, ``cc``, ``date``, ``from``,
    ``size``, ``subject``, ``to``, ``displayfrom``, ``displayto``."""

    key: str
    reverse: bool = False
