"""Access control lists (RFC 4314) as store transactions (see ``ops``).

The store keeps only the entries granted to others: ``identifier`` (an account address in
lower case, ``anyone`` or ``authenticated``) and the rights letters, in the canonical order
``RIGHTS``. What the letters allow, the owner's implicit rights and how entries combine are
the protocol's business (``imap/access.py``); here rights are just sets of letters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailkeep.errors import NotFound
from mailkeep.store.api import FlagMode, Grant
from mailkeep.store.ops import All, Exec, One, Tx, replayable
from mailkeep.store.sql import MAILBOX_COLUMNS, mailbox_from_row

RIGHTS = "lrswipkxtea"
"""Every right a store entry may hold, in the order they are kept and shown."""


@dataclass(frozen=True, slots=True)
class AclChange:
    """What a change of one entry did, for the hub."""

    rights: str
    """The identifier's rights afterwards."""
    changed: bool
    owner_id: int
    grantee_id: int | None
    """The account the identifier names, if any."""


def canonical_rights(rights: str) -> str:
    """The letters of ``rights`` that the store keeps, once each, in ``RIGHTS`` order."""
    return "".join(r for r in RIGHTS if r in rights)


def get_acl_tx(mailbox_id: int) -> Tx[list[tuple[str, str]]]:
    rows = yield All(
        "SELECT identifier, rights FROM acl WHERE mailbox_id = ? ORDER BY identifier",
        (mailbox_id,),
    )
    return [(r[0], r[1]) for r in rows]


def rights_tx(mailbox_id: int, identifiers: Sequence[str]) -> Tx[list[tuple[str, str]]]:
    """The entries of the mailbox for any of ``identifiers``."""
    if not identifiers:
        return []
    marks = ", ".join("?" * len(identifiers))
    rows = yield All(
        f"SELECT identifier, rights FROM acl WHERE mailbox_id = ? AND identifier IN ({marks})",
        (mailbox_id, *identifiers),
    )
    return [(r[0], r[1]) for r in rows]


def list_grants_tx(identifiers: Sequence[str]) -> Tx[list[Grant]]:
    """Every entry for any of ``identifiers``, with its mailbox and owner, by owner and
    mailbox name."""
    if not identifiers:
        return []
    marks = ", ".join("?" * len(identifiers))
    columns = ", ".join(f"m.{c.strip()}" for c in MAILBOX_COLUMNS.split(","))
    rows = yield All(
        f"SELECT {columns}, a.address, g.identifier, g.rights FROM acl g"
        " JOIN mailboxes m ON m.id = g.mailbox_id JOIN accounts a ON a.id = m.account_id"
        f" WHERE g.identifier IN ({marks}) ORDER BY a.address, m.name, g.identifier",
        tuple(identifiers),
    )
    return [Grant(mailbox_from_row(r[:7]), r[7], r[8], r[9]) for r in rows]


def _parties(mailbox_id: int, identifier: str) -> Tx[tuple[int, int | None]]:
    """The mailbox's owner (locking the mailbox: changes of one ACL queue) and the
    account ``identifier`` names, if any."""
    row = yield One("SELECT account_id FROM mailboxes WHERE id = ?", (mailbox_id,), for_update=True)
    if row is None:
        raise NotFound("mailbox does not exist (it may have been deleted)")
    grantee = yield One("SELECT id FROM accounts WHERE address = ?", (identifier,))
    return int(row[0]), None if grantee is None else int(grantee[0])


@replayable
def set_acl_tx(mailbox_id: int, identifier: str, rights: str, mode: FlagMode) -> Tx[AclChange]:
    """Replace, add to or remove from the identifier's rights (RFC 4314 3.1); an entry
    left with no rights is removed."""
    owner, grantee = yield from _parties(mailbox_id, identifier)
    row = yield One(
        "SELECT rights FROM acl WHERE mailbox_id = ? AND identifier = ?",
        (mailbox_id, identifier),
        for_update=True,
    )
    old = row[0] if row is not None else ""
    if mode is FlagMode.ADD:
        new = canonical_rights(old + rights)
    elif mode is FlagMode.REMOVE:
        new = canonical_rights("".join(r for r in old if r not in rights))
    else:
        new = canonical_rights(rights)
    if not new:
        yield Exec(
            "DELETE FROM acl WHERE mailbox_id = ? AND identifier = ?", (mailbox_id, identifier)
        )
    elif row is None:
        yield Exec(
            "INSERT INTO acl (mailbox_id, identifier, rights) VALUES (?, ?, ?)",
            (mailbox_id, identifier, new),
        )
    elif new != old:
        yield Exec(
            "UPDATE acl SET rights = ? WHERE mailbox_id = ? AND identifier = ?",
            (new, mailbox_id, identifier),
        )
    return AclChange(new, new != old, owner, grantee)


@replayable
def delete_acl_tx(mailbox_id: int, identifier: str) -> Tx[AclChange]:
    """Remove the identifier's entry (RFC 4314 3.2)."""
    owner, grantee = yield from _parties(mailbox_id, identifier)
    changed = yield Exec(
        "DELETE FROM acl WHERE mailbox_id = ? AND identifier = ?", (mailbox_id, identifier)
    )
    return AclChange("", bool(changed), owner, grantee)
