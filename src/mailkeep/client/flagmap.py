"""Maildir info letters ↔ IMAP system flags, and the three-way flag merge of sync.

=====  ============  =====================================================
Letter IMAP flag     Note
=====  ============  =====================================================
S      \\Seen
R      \\Answered
F      \\Flagged
T      \\Deleted     "trashed": marked for deletion, not yet expunged
D      \\Draft
P      (none)        "passed" is local only; IMAP keywords live in the state DB
=====  ============  =====================================================
"""

from __future__ import annotations

from collections.abc import Iterable

LETTER_TO_FLAG = {
    "S": "\\Seen",
    "R": "\\Answered",
    "F": "\\Flagged",
    "T": "\\Deleted",
    "D": "\\Draft",
}
FLAG_TO_LETTER = {flag.lower(): letter for letter, flag in LETTER_TO_FLAG.items()}
SYNCED_LETTERS = frozenset(LETTER_TO_FLAG)


def letters_from_imap(flags: Iterable[str]) -> str:
    """The synced letters for a set of IMAP flags (keywords and ``\\Recent`` dropped)."""
    return "".join(
        sorted({FLAG_TO_LETTER[f.lower()] for f in flags if f.lower() in FLAG_TO_LETTER})
    )


def keywords_from_imap(flags: Iterable[str]) -> str:
    """IMAP keywords (flags without a backslash), space-separated, sorted."""
    return " ".join(sorted({f for f in flags if not f.startswith("\\")}, key=str.lower))


def imap_from_letters(letters: str) -> list[str]:
    return [LETTER_TO_FLAG[c] for c in sorted(set(letters)) if c in LETTER_TO_FLAG]


def synced(letters: str) -> str:
    """Only the letters sync cares about, sorted."""
    return "".join(sorted(set(letters) & SYNCED_LETTERS))


def merge(base: str, local: str, remote: str) -> str:
    """Three-way merge: a flag set or cleared on either side since ``base`` (the flags both
    sides agreed on at the last sync) is set or cleared in the result. Both sides can only
    disagree with each other in the same direction, so the merge has no conflicts."""
    base_set, local_set, remote_set = set(base), set(local), set(remote)
    added = (local_set - base_set) | (remote_set - base_set)
    removed = (base_set - local_set) | (base_set - remote_set)
    return "".join(sorted((base_set | added) - removed))
