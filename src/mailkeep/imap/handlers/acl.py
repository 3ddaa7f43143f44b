"""SETACL, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS (RFC 4314 3).

Who holds which rights and how names resolve is ``access``'s business; these handlers
only check the ``a`` right (``l``, ``r``, ``i``, ``k``, ``x`` or ``a`` for MYRIGHTS) and
talk to the store.

Decisions:

* The owner's rights are implicit and fixed: GETACL shows the owner with every right,
  LISTRIGHTS says the owner always has them all, and SETACL or DELETEACL for the owner
  answers ``NO [CANNOT]``. Public mailboxes have no owner to show.
* Identifiers are account addresses (any address is accepted, so that SETACL does not
  tell which accounts exist), ``anyone`` and ``authenticated``; no rights are tied, so
  LISTRIGHTS offers each right alone (RFC 4314 3.7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailkeep.imap import access, responses
from mailkeep.imap import commands as c
from mailkeep.imap.handlers.base import AUTHENTICATED, Result, handles, no
from mailkeep.store.api import FlagMode

if TYPE_CHECKING:
    from mailkeep.imap.session import Session

MODES = {"+": FlagMode.ADD, "-": FlagMode.REMOVE, "": FlagMode.REPLACE}


def _not_the_owner(found: access.Found, identifier: str) -> None:
    if identifier == found.owner.address:
        raise no("the owner always has every right; they cannot be changed", responses.CANNOT)


@handles(c.SetAcl, AUTHENTICATED)
async def setacl(session: Session, tag: str, command: c.SetAcl) -> Result:
    """RFC 4314 3.1: ``+`` adds, ``-`` removes, otherwise the rights replace the entry."""
    identifier = access.identifier(command.identifier)
    mode, rights = access.parse_rights(command.rights)
    name = session.mailbox_name(command.mailbox)
    found = await access.open_mailbox(session, name, "a")
    _not_the_owner(found, identifier)
    await session.store.set_acl(found.mailbox.id, identifier, rights, MODES[mode])
    return Result("OK", "SETACL completed")


@handles(c.DeleteAcl, AUTHENTICATED)
async def deleteacl(session: Session, tag: str, command: c.DeleteAcl) -> Result:
    """RFC 4314 3.2: removes the identifier's entry (none is fine)."""
    identifier = access.identifier(command.identifier)
    name = session.mailbox_name(command.mailbox)
    found = await access.open_mailbox(session, name, "a")
    _not_the_owner(found, identifier)
    await session.store.delete_acl(found.mailbox.id, identifier)
    return Result("OK", "DELETEACL completed")


@handles(c.GetAcl, AUTHENTICATED)
async def getacl(session: Session, tag: str, command: c.GetAcl) -> Result:
    """RFC 4314 3.3 / 3.6: ``* ACL mailbox identifier rights ...``."""
    name = session.mailbox_name(command.mailbox)
    found = await access.open_mailbox(session, name, "a")
    entries: list[tuple[str, str]] = []
    if found.owner.address != access.PUBLIC_OWNER:
        entries.append((found.owner.address, access.show(access.ALL)))
    for identifier, rights in await session.store.get_acl(found.mailbox.id):
        entries.append((identifier, access.show(rights)))
    await session.send(responses.acl(found.name, entries, utf8=session.utf8))
    return Result("OK", "GETACL completed")


@handles(c.ListRights, AUTHENTICATED)
async def listrights(session: Session, tag: str, command: c.ListRights) -> Result:
    """RFC 4314 3.4 / 3.7: the identifier as the client wrote it, what it always has and
    what may be granted to it (each right on its own: none are tied)."""
    written = command.identifier.decode("utf-8", "replace")
    identifier = access.identifier(command.identifier)
    name = session.mailbox_name(command.mailbox)
    found = await access.open_mailbox(session, name, "a")
    if identifier == found.owner.address:
        required, optional = access.show(access.ALL), []
    else:
        required, optional = "", [*access.ALL, *access.VIRTUAL]
    await session.send(
        responses.listrights(found.name, written, required, optional, utf8=session.utf8)
    )
    return Result("OK", "LISTRIGHTS completed")


@handles(c.MyRights, AUTHENTICATED)
async def myrights(session: Session, tag: str, command: c.MyRights) -> Result:
    """RFC 4314 3.5 / 3.8; needs any of ``l r i k x a`` (RFC 4314 4), otherwise the
    mailbox is as good as nonexistent."""
    name = session.mailbox_name(command.mailbox)
    found = await access.find(session, name)
    if found is None or not any(r in found.rights for r in access.MYRIGHTS_RIGHTS):
        raise access.missing(name)
    await session.send(responses.myrights(found.name, access.show(found.rights), utf8=session.utf8))
    return Result("OK", "MYRIGHTS completed")
