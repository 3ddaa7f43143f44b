"""GETMETADATA and SETMETADATA (RFC 5464): annotations of mailboxes and of the server.

Entries live under ``/private/`` (one value per user) or ``/shared/`` (one value for all
who may see the mailbox); names are case-insensitive, so they are kept and shown in lower
case. Values are octets (a value with NUL comes back as a ``literal8``).

Decisions:

* Rights (RFC 5464 3.3): on a mailbox, reading and writing either kind of entry needs
  ``l`` and one of ``r s w i p``; the owner has them all. Server entries: every user
  reads them and sets its own ``/private`` ones; ``/shared`` server entries are set by
  admins only (``Config.admins``), as a server's message of the day or admin contact.
* Limits: a value is at most ``MAX_VALUE`` octets (``NO [METADATA MAXSIZE n]``); a mailbox
  (or the server) holds at most ``MAX_ENTRIES`` shared entries and as many private ones
  per user (``NO [METADATA TOOMANY]``, checked in the write transaction). Every entry of
  a SETMETADATA is set, or none (RFC 5464 4.3). ``[METADATA NOPRIVATE]`` is never
  needed: private entries are supported everywhere.
* GETMETADATA answers one METADATA response with the entries found; an entry asked for
  by name that has no value is shown as NIL. ``MAXSIZE`` leaves out longer values and
  says how long the longest was (``OK [METADATA LONGENTRIES n]``, RFC 5464 4.2.1).
* Annotations go with their mailbox (DELETE) and with their account (the store).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailkeep import errors
from mailkeep.imap import access, responses
from mailkeep.imap import commands as c
from mailkeep.imap.handlers.base import AUTHENTICATED, Result, bad, handles, no
from mailkeep.store.metadata import PRIVATE, SHARED, TooManyEntries

if TYPE_CHECKING:
    from mailkeep.imap.session import Session

MAX_VALUE = 64 * 1024
"""Largest value accepted, in octets."""
MAX_ENTRIES = 100
"""Entries per mailbox (or the server) and owner: the shared ones, each user's private."""
READ_RIGHTS = "rswip"
"""With ``l``, any of these lets a user read and write a mailbox's entries."""


def _name(entry: str) -> str:
    """A valid entry name, lower-cased (RFC 5464 3.2: ``/private`` or ``/shared``, no
    wildcards)."""
    name = entry.lower()
    if "%" in name or "*" in name:
        raise bad(f"entry name {entry} contains a wildcard")
    if not name.startswith((PRIVATE, SHARED)) and name not in ("/private", "/shared"):
        raise bad(f"entry name {entry} does not begin with /private/ or /shared/")
    return name


async def _target(session: Session, raw: bytes) -> tuple[int | None, str]:
    """The mailbox (None: the server) and its name as the client sees it."""
    if raw == b"":
        return None, ""
    name = session.mailbox_name(raw)
    found = await access.find(session, name)
    if found is None or "l" not in found.rights:
        raise access.missing(name)
    if not any(r in found.rights for r in READ_RIGHTS):
        raise errors.PermissionDenied(f"you may not read or write annotations of {name}")
    return found.mailbox.id, found.name


def _selected(name: str, stored: str, depth: str) -> bool:
    """Whether a stored entry answers a request for ``name`` at ``depth``."""
    if stored == name:
        return True
    if depth == "0" or not stored.startswith(name + "/"):
        return False
    return depth == "INFINITY" or "/" not in stored[len(name) + 1 :]


@handles(c.GetMetadata, AUTHENTICATED)
async def getmetadata(session: Session, tag: str, command: c.GetMetadata) -> Result:
    """RFC 5464 4.2 with MAXSIZE (4.2.1) and DEPTH (4.2.2)."""
    wanted = [_name(e) for e in command.entries]
    mailbox_id, shown = await _target(session, command.mailbox)
    stored = await session.store.list_metadata(mailbox_id, session.account_id)
    values: list[tuple[str, bytes | None]] = []
    listed: set[str] = set()
    longest = 0
    for name in wanted:
        matched = False
        for entry, value in stored:
            if not _selected(name, entry, command.depth):
                continue
            matched = True
            if entry in listed:
                continue
            listed.add(entry)
            if command.maxsize is not None and len(value) > command.maxsize:
                longest = max(longest, len(value))
                continue
            values.append((entry, value))
        if not matched and name.count("/") > 1 and name not in listed:
            listed.add(name)
            values.append((name, None))
    if values:
        await session.send(responses.metadata(shown, values, utf8=session.utf8))
    if longest:
        return Result("OK", "GETMETADATA completed", responses.metadata_longentries(longest))
    return Result("OK", "GETMETADATA completed")


@handles(c.SetMetadata, AUTHENTICATED)
async def setmetadata(session: Session, tag: str, command: c.SetMetadata) -> Result:
    """RFC 5464 4.3: all entries or none; NIL removes."""
    entries: list[tuple[str, bytes | None]] = []
    for entry, value in command.entries:
        name = _name(entry)
        if name in ("/private", "/shared"):
            raise bad(f"{entry} is a prefix, not an entry")
        if value is not None and len(value) > MAX_VALUE:
            raise no(
                f"values are limited to {MAX_VALUE} octets", responses.metadata_maxsize(MAX_VALUE)
            )
        entries.append((name, value))
    mailbox_id, _ = await _target(session, command.mailbox)
    shared = any(name.startswith(SHARED) for name, _ in entries)
    if mailbox_id is None and shared and not access.is_admin(session):
        raise errors.PermissionDenied("only administrators may set shared server annotations")
    try:
        await session.store.set_metadata(
            mailbox_id, session.account_id, entries, max_entries=MAX_ENTRIES
        )
    except TooManyEntries as exc:
        raise no(str(exc), responses.METADATA_TOOMANY) from None
    return Result("OK", "SETMETADATA completed")
