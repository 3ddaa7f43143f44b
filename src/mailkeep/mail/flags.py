"""Message flags: the five permanent system flags as a bit set, keywords as strings.

``\\Recent`` is not stored: it is a property of a session's view (RFC 3501 2.3.2) and is
handled by the IMAP layer. Keywords are kept exactly as given but compared
case-insensitively, as RFC 9051 2.3.2 requires.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntFlag


class SystemFlag(IntFlag):
    SEEN = 1
    ANSWERED = 2
    FLAGGED = 4
    DELETED = 8
    DRAFT = 16


NO_FLAGS = SystemFlag(0)

SYSTEM_FLAG_NAMES: dict[SystemFlag, str] = {
    SystemFlag.SEEN: "\\Seen",
    SystemFlag.ANSWERED: "\\Answered",
    SystemFlag.FLAGGED: "\\Flagged",
    SystemFlag.DELETED: "\\Deleted",
    SystemFlag.DRAFT: "\\Draft",
}
_BY_LOWER_NAME = {name.lower(): flag for flag, name in SYSTEM_FLAG_NAMES.items()}


def system_flag(name: str) -> SystemFlag | None:
    """The system flag spelled ``name`` (any case, with its backslash), or None."""
    return _BY_LOWER_NAME.get(name.lower())


def flag_names(flags: int) -> list[str]:
    """System flag names in canonical order for a bit set."""
    return [name for flag, name in SYSTEM_FLAG_NAMES.items() if flags & flag]


def normalize_keywords(keywords: Iterable[str]) -> tuple[str, ...]:
    """Deduplicate keywords case-insensitively, keeping the first spelling, sorted."""
    seen: dict[str, str] = {}
    for keyword in keywords:
        seen.setdefault(keyword.lower(), keyword)
    return tuple(sorted(seen.values(), key=str.lower))


def split_flags(names: Iterable[str]) -> tuple[SystemFlag, tuple[str, ...]]:
    """Split flag names into system flags and keywords.

    Unknown backslash names (``\\Recent``, extension flags) are dropped here; the
    protocol layer decides whether they are an error before calling this.
    """
    system = NO_FLAGS
    keywords: list[str] = []
    for name in names:
        flag = system_flag(name)
        if flag is not None:
            system |= flag
        elif not name.startswith("\\"):
            keywords.append(name)
    return system, normalize_keywords(keywords)
