"""CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE (RFC 9051 6.3.4-6.3.8, RFC 6154).

Decisions:

* DELETE of a mailbox that has children is refused with ``NO [HASCHILDREN]`` (RFC 9051
  6.3.5 allows this or turning the name into a ``\\Noselect`` placeholder; Dovecot
  refuses too). So every superior name of an existing mailbox exists, and LIST never has
  to invent ``\\Noselect`` parents.
* DELETE of the selected mailbox is allowed; the session leaves the selected state with
  ``* OK [CLOSED]``.
* Subscriptions are names, not mailboxes (RFC 9051 6.3.7): subscribing to a mailbox that
  does not exist is allowed, and DELETE leaves the subscription alone. UNSUBSCRIBE of a
  name that is not subscribed answers OK (RFC 9051 6.3.8).
* CREATE ... (USE (...)) takes one special use per mailbox (the store keeps one); \\All
  and \\Flagged are virtual mailboxes we do not have: ``NO [USEATTR]`` (RFC 6154 3).
* In other users' and the public namespaces (``access``) the rights of RFC 4314 4 apply:
  CREATE needs ``k`` on the nearest existing parent (no one but the owner creates at the
  top of ``Shared/<owner>/``; admins do at the top of ``Public/``, whose pseudo-account
  the first such CREATE makes), DELETE needs ``x``, RENAME ``x`` on the mailbox and ``k``
  on the new parent, and stays within one owner's mailboxes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailkeep import errors
from mailkeep.imap import access, responses
from mailkeep.imap import commands as c
from mailkeep.imap.handlers.base import AUTHENTICATED, Result, handles, no
from mailkeep.imap.handlers.objectid import mailbox_id
from mailkeep.store import names

if TYPE_CHECKING:
    from mailkeep.imap.session import Session

SPECIAL_USES: dict[str, str] = {
    name.lower(): name
    for name in ("\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash", "\\Important")
}
"""Special uses a mailbox can be created with (RFC 6154 2, RFC 8457)."""


def declared_name(session: Session, raw: bytes) -> str:
    """A new mailbox name: a trailing separator only declares that children will
    follow and is dropped (RFC 9051 6.3.4)."""
    name = session.mailbox_name(raw)
    if name.endswith(names.SEPARATOR) and len(name) > 1:
        name = name[:-1]
    return names.validate(name)


async def _owner_of_new(session: Session, name: str) -> tuple[access.Owner, str]:
    """Where a new name (CREATE, RENAME's target) goes, if the user may create it there
    (RFC 4314 4: "k" on the nearest existing parent)."""
    if access.is_namespace_node(name):
        raise no(f"{name} is the name of a namespace, not of a mailbox", responses.CANNOT)
    located = await access.locate(session, name)
    if located is None and name.startswith(access.PUBLIC) and access.is_admin(session):
        await session.store.create_account(
            access.PUBLIC_OWNER, access.LOCKED_PASSWORD, None, mailboxes=()
        )
        located = await access.locate(session, name)
    if located is None:
        raise errors.PermissionDenied(f"you may not create mailbox {name}")
    owner, own_name = located
    if owner.personal:
        return owner, own_name
    for parent in reversed(names.parents(own_name)):
        mailbox = await session.store.get_mailbox(owner.id, parent)
        if mailbox is not None:
            if "k" in await access.rights_on(session, owner, mailbox):
                return owner, own_name
            break
    else:
        if owner.address == access.PUBLIC_OWNER and access.is_admin(session):
            return owner, own_name
    # The same answer whether the parent exists or not: nothing is learnt from it.
    raise errors.PermissionDenied(f"you may not create mailbox {name}")


@handles(c.Create, AUTHENTICATED)
async def create(session: Session, tag: str, command: c.Create) -> Result:
    name = declared_name(session, command.mailbox)
    special_use: str | None = None
    if command.special_use:
        uses = {u.lower() for u in command.special_use}
        if len(uses) > 1:
            raise no("a mailbox can have only one special use here", responses.USEATTR)
        special_use = SPECIAL_USES.get(uses.pop())
        if special_use is None:
            raise no(f"cannot create a {command.special_use[0]} mailbox", responses.USEATTR)
    owner, own_name = await _owner_of_new(session, name)
    mailbox = await session.store.create_mailbox(owner.id, names.validate(own_name), special_use)
    # RFC 8474 4.1: the new mailbox's MAILBOXID in the tagged OK.
    return Result("OK", "CREATE completed", responses.mailboxid_code(mailbox_id(mailbox)))


@handles(c.Delete, AUTHENTICATED)
async def delete(session: Session, tag: str, command: c.Delete) -> Result:
    name = session.mailbox_name(command.mailbox)
    if name == names.INBOX:
        raise no("INBOX cannot be deleted", responses.CANNOT)
    found = await access.open_mailbox(session, name, "x")  # RFC 4314 4
    target = found.mailbox
    if target.name == names.INBOX:
        raise no("INBOX cannot be deleted", responses.CANNOT)
    mailboxes = await session.store.list_mailboxes(found.owner.id)
    if any(m.name.startswith(target.name + names.SEPARATOR) for m in mailboxes):
        raise no(f"mailbox {name} has children: delete them first", responses.HASCHILDREN)
    if session.selected is not None and session.selected.id == target.id:
        session.unselect()
        await session.send(responses.untagged("OK", "mailbox closed", responses.CLOSED))
    await session.store.delete_mailbox(target.id)
    return Result("OK", "DELETE completed")


@handles(c.Rename, AUTHENTICATED)
async def rename(session: Session, tag: str, command: c.Rename) -> Result:
    """RFC 9051 6.3.6: children move along; renaming INBOX moves its messages to the new
    mailbox and leaves INBOX empty (the store does both)."""
    old = session.mailbox_name(command.mailbox)
    new = declared_name(session, command.new_name)
    if old == new:
        raise no(f"mailbox {new} already exists", responses.ALREADYEXISTS)
    # RFC 4314 4: "x" on the mailbox, "k" on the new parent.
    found = await access.open_mailbox(session, old, "x")
    owner, new_own = await _owner_of_new(session, new)
    if owner.id != found.owner.id:
        raise no("a mailbox cannot be renamed into another namespace", responses.CANNOT)
    await session.store.rename_mailbox(owner.id, found.mailbox.name, names.validate(new_own))
    return Result("OK", "RENAME completed")


@handles(c.Subscribe, AUTHENTICATED)
async def subscribe(session: Session, tag: str, command: c.Subscribe) -> Result:
    name = names.validate(session.mailbox_name(command.mailbox))
    await session.store.subscribe(session.account_id, name, True)
    return Result("OK", "SUBSCRIBE completed")


@handles(c.Unsubscribe, AUTHENTICATED)
async def unsubscribe(session: Session, tag: str, command: c.Unsubscribe) -> Result:
    name = session.mailbox_name(command.mailbox)
    await session.store.subscribe(session.account_id, name, False)
    return Result("OK", "UNSUBSCRIBE completed")
