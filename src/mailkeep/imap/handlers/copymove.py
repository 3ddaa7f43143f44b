"""COPY, MOVE and their UID forms (RFC 9051 6.4.7, 6.4.8, RFC 6851) with COPYUID
(RFC 4315).

The store copies (or moves) in one transaction. MOVE sends ``* OK [COPYUID ...]`` first,
then the EXPUNGE responses (the session's announcement of its own expunge), then the
tagged OK, as RFC 6851 3.3 shows. Messages expunged by another session and not yet
reported make COPY/MOVE by sequence number fail whole with ``NO [EXPUNGEISSUED]``
(RFC 2180 4.4.1, as Dovecot does).

MOVE into the selected mailbox itself is allowed (RFC 9051 6.4.8): the store moves only
between two mailboxes, so it is a COPY followed by the removal of the originals, in two
transactions. A crash between them would leave duplicates, never lose a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailkeep.imap import access, responses
from mailkeep.imap import commands as c
from mailkeep.imap.handlers.base import SELECTED, Result, handles, no
from mailkeep.imap.handlers.common import message_spans, selected_mailbox

if TYPE_CHECKING:
    from mailkeep.imap.session import Session


async def _transfer(session: Session, command: c.Copy | c.Move, move: bool) -> Result:
    selected = selected_mailbox(session)
    what = ("UID " if command.uid else "") + ("MOVE" if move else "COPY")
    if move and selected.readonly:
        raise no("the mailbox is read-only (EXAMINE): messages cannot be moved out")
    spans = message_spans(session, command.sequence, command.uid)
    name = session.mailbox_name(command.mailbox)
    # RFC 4314 4: "i" on the target, whose copies keep only the flags the user may set
    # there; MOVE also removes from the source, which takes "t" and "e" (RFC 6851 3.3).
    await access.require_selected(
        session, "rte" if move else "r", "move messages out" if move else "read messages"
    )
    found = await access.open_mailbox(session, name, "i", code=responses.TRYCREATE)
    target = found.mailbox
    flag_mask, keywords_allowed = access.flag_rights(found.rights)
    uids = selected.span_uids(spans)
    if not command.uid and any(selected.is_expunged(uid) for uid in uids):
        raise no("some of the requested messages no longer exist", responses.EXPUNGEISSUED)
    if not uids:
        return Result("OK", f"{what} completed, no messages")
    result = await session.store.copy(
        selected.id,
        uids,
        target.id,
        move=move,
        flag_mask=flag_mask,
        keywords_allowed=keywords_allowed,
    )
    if not result.source_uids:
        return Result("OK", f"{what} completed, no messages")
    code = responses.copyuid(result.target.uidvalidity, result.source_uids, result.target_uids)
    if move:
        await session.send(responses.untagged("OK", "moved", code))
        return Result("OK", f"{what} completed")
    return Result("OK", f"{what} completed", code)


@handles(c.Copy, SELECTED)
async def copy(session: Session, tag: str, command: c.Copy) -> Result:
    return await _transfer(session, command, move=False)


@handles(c.Move, SELECTED)
async def move(session: Session, tag: str, command: c.Move) -> Result:
    return await _transfer(session, command, move=True)
