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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailkeep import errors
from mailkeep.imap import commands as c
from mailkeep.imap import responses
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
    mailbox = await session.store.create_mailbox(session.account_id, name, special_use)
    # RFC 8474 4.1: the new mailbox's MAILBOXID in the tagged OK.
    return Result("OK", "CREATE completed", responses.mailboxid_code(mailbox_id(mailbox)))


@handles(c.Delete, AUTHENTICATED)
async def delete(session: Session, tag: str, command: c.Delete) -> Result:
    name = session.mailbox_name(command.mailbox)
    if name == names.INBOX:
        raise no("INBOX cannot be deleted", responses.CANNOT)
    mailboxes = await session.store.list_mailboxes(session.account_id)
    target = next((m for m in mailboxes if m.name == name), None)
    if target is None:
        raise errors.NotFound(f"mailbox {name} does not exist")
    if any(m.name.startswith(name + names.SEPARATOR) for m in mailboxes):
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
    await session.store.rename_mailbox(session.account_id, old, new)
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
