"""Mailbox names as the store keeps them: UTF-8, ``/`` between levels, ``INBOX`` canonical.

The protocol layers decode wire names (modified UTF-7 or UTF-8) first; this module is the
last gate, so that no name that could confuse LIST patterns, paths or another account ever
reaches the database.
"""

from __future__ import annotations

import unicodedata

from mailkeep.errors import InvalidName

SEPARATOR = "/"
INBOX = "INBOX"
MAX_NAME_OCTETS = 1000
MAX_LEVELS = 32


def canonical(name: str) -> str:
    """``inbox`` → ``INBOX``, ``Inbox/x`` → ``INBOX/x`` (INBOX is case-insensitive,
    RFC 9051 5.1); other names are case-sensitive and kept as given (NFC)."""
    name = unicodedata.normalize("NFC", name)
    head, sep, rest = name.partition(SEPARATOR)
    if head.upper() == INBOX:
        return INBOX + sep + rest
    return name


def validate(name: str) -> str:
    """The canonical form of ``name``, or InvalidName with the reason."""
    if not name:
        raise InvalidName("mailbox name is empty")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_OCTETS:
        raise InvalidName(f"mailbox name is longer than {MAX_NAME_OCTETS} octets")
    for char in name:
        if unicodedata.category(char) in {"Cc", "Cs", "Cf", "Zl", "Zp", "Co", "Cn"}:
            raise InvalidName("mailbox name contains a control or unassigned character")
    if "*" in name or "%" in name:
        raise InvalidName("mailbox name may not contain the LIST wildcards * or %")
    levels = name.split(SEPARATOR)
    if len(levels) > MAX_LEVELS:
        raise InvalidName(f"mailbox name has more than {MAX_LEVELS} levels")
    for level in levels:
        if not level:
            raise InvalidName("mailbox name has an empty level (leading, trailing or // )")
        if level.strip() != level or level in {".", ".."}:
            raise InvalidName(f"mailbox name level {level!r} is not allowed")
    return canonical(name)


def parents(name: str) -> list[str]:
    """The superior names of ``name``, outermost first: ``a/b/c`` → ``[a, a/b]``."""
    levels = name.split(SEPARATOR)
    return [SEPARATOR.join(levels[:i]) for i in range(1, len(levels))]


def is_inside(name: str, ancestor: str) -> bool:
    """True for ``ancestor`` itself and every name below it."""
    return name == ancestor or name.startswith(ancestor + SEPARATOR)
