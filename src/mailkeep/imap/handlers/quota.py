"""GETQUOTA, GETQUOTAROOT, SETQUOTA (RFC 9208).

One quota root per account, holding two resources: STORAGE (the sum of the messages'
sizes, in units of 1024 octets, RFC 9208 5.1) and MESSAGE (the number of messages, 5.2).
They are the account's ``quota_bytes``/``quota_messages`` and ``used_bytes``/
``used_messages``: the very numbers ``mailkeep user list`` shows and delivery, APPEND,
COPY and MOVE check (``NO [OVERQUOTA]``, SMTP/LMTP 452/552).

Decisions:

* The user's own root is ``""``. A shared mailbox counts against its owner's quota, whose
  root is named by the owner's address (``#public`` for the public mailboxes); a user may
  read it where it may read one of the owner's mailboxes, admins always.
* Octets are shown rounded up to whole units of 1024, the limit too, so that usage never
  shows as 0 for a non-empty mailbox and never above a limit it is within.
* A resource without a limit is not reported; a root with neither limit has no QUOTA
  response (the ABNF needs at least one resource), and GETQUOTAROOT names no root then.
* SETQUOTA is for admins only (``Config.admins``); as RFC 9208 4.1.3 says, the limits
  given replace all the root's limits (a resource not named becomes unlimited).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailkeep import errors
from mailkeep.imap import access, responses
from mailkeep.imap import commands as c
from mailkeep.imap.handlers.base import AUTHENTICATED, Result, bad, handles, no
from mailkeep.store.api import Account

if TYPE_CHECKING:
    from mailkeep.imap.session import Session

UNIT = 1024
"""Octets per STORAGE unit (RFC 9208 5.1)."""
RESOURCES = ("STORAGE", "MESSAGE")


def units(octets: int) -> int:
    return -(-octets // UNIT)


def resources(account: Account) -> list[tuple[str, int, int]]:
    """(resource, usage, limit) of every limited resource of the account."""
    found: list[tuple[str, int, int]] = []
    if account.quota_bytes is not None:
        found.append(("STORAGE", units(account.used_bytes), units(account.quota_bytes)))
    if account.quota_messages is not None:
        found.append(("MESSAGE", account.used_messages, account.quota_messages))
    return found


def root_name(session: Session, account: Account) -> str:
    return "" if account.id == session.account_id else account.address


async def _root(session: Session, root: bytes) -> Account:
    """The account a quota root names, if this user may know of it."""
    name = root.decode("utf-8", "replace")
    if name == "":
        account = await session.store.get_account_by_id(session.account_id)
    else:
        account = await session.store.get_account(name)
        if account is not None and not access.is_admin(session):
            grants = await session.store.list_grants(access.identities(session))
            if not any(g.mailbox.account_id == account.id and "r" in g.rights for g in grants):
                account = None
    if account is None:
        raise errors.NotFound(f"there is no quota root {name!r}")
    return account


@handles(c.GetQuotaRoot, AUTHENTICATED)
async def getquotaroot(session: Session, tag: str, command: c.GetQuotaRoot) -> Result:
    """RFC 9208 4.1.2: the mailbox's roots, then each root's QUOTA."""
    name = session.mailbox_name(command.mailbox)
    found = await access.open_mailbox(session, name, "r")
    account = await session.store.get_account_by_id(found.owner.id)
    if account is None:
        raise access.missing(name)
    limited = resources(account)
    root = root_name(session, account)
    roots = [root] if limited else []
    await session.send(responses.quotaroot(found.name, roots, utf8=session.utf8))
    if limited:
        await session.send(responses.quota(root, limited, utf8=session.utf8))
    return Result("OK", "GETQUOTAROOT completed")


@handles(c.GetQuota, AUTHENTICATED)
async def getquota(session: Session, tag: str, command: c.GetQuota) -> Result:
    """RFC 9208 4.1.1."""
    account = await _root(session, command.root)
    limited = resources(account)
    if not limited:
        raise errors.NotFound(f"quota root {root_name(session, account)!r} has no limits")
    await session.send(responses.quota(root_name(session, account), limited, utf8=session.utf8))
    return Result("OK", "GETQUOTA completed")


@handles(c.SetQuota, AUTHENTICATED)
async def setquota(session: Session, tag: str, command: c.SetQuota) -> Result:
    """RFC 9208 4.1.3: admins only; the untagged QUOTA shows the new limits."""
    names = [resource for resource, _ in command.limits]
    if len(set(names)) != len(names):
        raise bad("a resource is named twice")
    for resource in names:
        if resource not in RESOURCES:
            raise no(f"resource {resource} is not supported here", responses.CANNOT)
    if not access.is_admin(session):
        raise errors.PermissionDenied("only administrators may set quotas")
    account = await _root(session, command.root)
    limits = dict(command.limits)
    storage = limits.get("STORAGE")
    await session.store.set_quota(
        account.id, None if storage is None else storage * UNIT, limits.get("MESSAGE")
    )
    updated = await session.store.get_account_by_id(account.id)
    if updated is not None and resources(updated):
        await session.send(
            responses.quota(root_name(session, updated), resources(updated), utf8=session.utf8)
        )
    return Result("OK", "SETQUOTA completed")
