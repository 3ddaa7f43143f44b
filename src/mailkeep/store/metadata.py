"""Annotations (RFC 5464 METADATA) as store transactions (see ``ops``).

An entry belongs to a mailbox or to the server (``mailbox_id`` None). ``/shared/...``
entries are one per mailbox; ``/private/...`` entries one per mailbox and user. Names
arrive already checked and lower-cased (entry names are case-insensitive); values are
octets. The limits (how many entries, how large a value) are the caller's policy, passed
in, so that the count is checked in the same transaction that adds the entry.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailkeep.errors import LimitExceeded, NotFound
from mailkeep.store.ops import All, Exec, One, Tx, replayable

PRIVATE = "/private/"
SHARED = "/shared/"


class TooManyEntries(LimitExceeded):
    """Setting the entries would exceed the number allowed (``[METADATA TOOMANY]``)."""


def _owner(entry: str, user_id: int) -> int:
    """The account column of an entry: 0 (NULL) for /shared, the user for /private."""
    return user_id if entry.startswith(PRIVATE) else 0


def list_metadata_tx(mailbox_id: int | None, user_id: int) -> Tx[list[tuple[str, bytes]]]:
    """The mailbox's (or server's) shared entries and ``user_id``'s private ones, by name."""
    rows = yield All(
        "SELECT entry, value FROM metadata WHERE coalesce(mailbox_id, 0) = ?"
        " AND coalesce(account_id, 0) IN (0, ?) ORDER BY entry",
        (mailbox_id or 0, user_id),
    )
    return [(r[0], bytes(r[1])) for r in rows]


@replayable
def set_metadata_tx(
    mailbox_id: int | None,
    user_id: int,
    entries: Sequence[tuple[str, bytes | None]],
    max_entries: int,
) -> Tx[tuple[list[str], int | None]]:
    """Set (or with None remove) every entry, all or none (RFC 5464 4.3); returns the
    names that changed and the mailbox's owner. ``max_entries`` bounds the entries of
    one mailbox per owner (the shared ones, or one user's private ones)."""
    owner_id: int | None = None
    if mailbox_id is not None:
        # Serialises writers of one mailbox's entries (the count below stays true) and
        # fails if the mailbox was deleted meanwhile.
        row = yield One(
            "SELECT account_id FROM mailboxes WHERE id = ?", (mailbox_id,), for_update=True
        )
        if row is None:
            raise NotFound("mailbox does not exist (it may have been deleted)")
        owner_id = int(row[0])
    box = mailbox_id or 0
    changed: list[str] = []
    added: dict[int, int] = {}
    for entry, value in entries:
        owner = _owner(entry, user_id)
        where = "coalesce(mailbox_id, 0) = ? AND coalesce(account_id, 0) = ? AND entry = ?"
        key = (box, owner, entry)
        row = yield One(f"SELECT value FROM metadata WHERE {where}", key, for_update=True)
        if value is None:
            if row is not None:
                yield Exec(f"DELETE FROM metadata WHERE {where}", key)
                changed.append(entry)
                added[owner] = added.get(owner, 0) - 1
        elif row is None:
            yield Exec(
                "INSERT INTO metadata (mailbox_id, account_id, entry, value) VALUES (?, ?, ?, ?)",
                (mailbox_id, owner or None, entry, value),
            )
            changed.append(entry)
            added[owner] = added.get(owner, 0) + 1
        elif bytes(row[0]) != value:
            yield Exec(f"UPDATE metadata SET value = ? WHERE {where}", (value, *key))
            changed.append(entry)
    for owner, delta in added.items():
        if delta <= 0:
            continue
        row = yield One(
            "SELECT count(*) FROM metadata WHERE coalesce(mailbox_id, 0) = ?"
            " AND coalesce(account_id, 0) = ?",
            (box, owner),
        )
        if row[0] > max_entries:
            raise TooManyEntries(f"at most {max_entries} annotations are allowed here")
    return changed, owner_id
