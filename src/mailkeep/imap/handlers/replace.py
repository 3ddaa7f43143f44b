"""REPLACE and UID REPLACE (RFC 8508): append a new version of a message (to this or
another mailbox) and expunge the old one, as one command.

The store has no single transaction for both, so the new message is appended first and
the old one removed second: a failure in between leaves both versions, never neither.
The client sees ``* OK [APPENDUID ...]``, then the EXPUNGE (or VANISHED) and EXISTS
announcements, then the tagged OK, as in RFC 8508 3's example.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mailkeep.imap import access, responses
from mailkeep.imap import commands as c
from mailkeep.imap.handlers.base import SELECTED, Result, bad, handles, no
from mailkeep.imap.handlers.common import client_flags, selected_mailbox
from mailkeep.mail.message import parse
from mailkeep.store.api import NewMessage

if TYPE_CHECKING:
    from mailkeep.imap.session import Session


@handles(c.Replace, SELECTED)
async def replace(session: Session, tag: str, command: c.Replace) -> Result:
    selected = selected_mailbox(session)
    what = "UID REPLACE" if command.uid else "REPLACE"
    if selected.readonly:
        raise no("the mailbox is read-only (EXAMINE): messages cannot be replaced")
    if command.uid:
        uid = command.number
        if selected.seq_of(uid) is None:
            raise no(f"there is no message with UID {uid}", responses.NONEXISTENT)
    else:
        if command.number > selected.count:
            raise bad(f"message {command.number} does not exist")
        uid = selected.uids[command.number - 1]
    if selected.is_expunged(uid):
        raise no("the message was expunged meanwhile", responses.EXPUNGEISSUED)
    # RFC 8508 4 / RFC 4314 4: as APPEND into the target ("i", flags by their rights)
    # and STORE \Deleted plus EXPUNGE in the selected mailbox ("t" and "e").
    await access.require_selected(session, "te", "replace messages")
    name = session.mailbox_name(command.mailbox)
    found = await access.open_mailbox(session, name, "i", code=responses.TRYCREATE)
    target = found.mailbox
    allowed, keywords_allowed = access.flag_rights(found.rights)
    item = command.message
    if not item.data:
        raise no("an empty message cannot be stored", responses.CANNOT)
    if not item.binary and b"\0" in item.data:
        raise bad("a literal cannot contain NUL; send binary data as ~{n} (RFC 3516)")
    flags, keywords = client_flags(item.flags)
    flags &= allowed
    keywords = keywords if keywords_allowed else ()
    limits = session.services.limits
    parsed = await asyncio.to_thread(
        parse, item.data, max_parts=limits.max_mime_parts, max_depth=limits.max_mime_depth
    )
    result = await session.store.append(
        target.id, [NewMessage(item.data, parsed, flags, keywords, item.internal_date)]
    )
    code = responses.appenduid(result.mailbox.uidvalidity, result.uids)
    await session.send(responses.untagged("OK", "replacement message ready", code))
    await session.store.remove(selected.id, [uid])
    return Result("OK", f"{what} completed")
