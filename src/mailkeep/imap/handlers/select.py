"""SELECT, EXAMINE, CLOSE, UNSELECT (RFC 9051 6.3.2, 6.3.3, 6.4.2, RFC 3691).

SELECT reads one snapshot (the UIDs as an array and the mailbox's log position) and builds
the session's ``SelectedMailbox``; from then on the session keeps it current from the
hub. IMAP4rev1 sessions get RECENT and ``[UNSEEN n]``, IMAP4rev2 sessions the LIST
response RFC 9051 requires instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailkeep import errors
from mailkeep.imap import access, responses
from mailkeep.imap import commands as c
from mailkeep.imap.handlers.base import AUTHENTICATED, SELECTED, Result, bad, handles
from mailkeep.imap.handlers.condstore import resynchronise
from mailkeep.imap.handlers.objectid import mailbox_id
from mailkeep.imap.selected import SelectedMailbox, mailbox_flags

if TYPE_CHECKING:
    from mailkeep.imap.session import Session

"""\\Seen \\Answered \\Flagged \\Deleted \\Draft; keywords are free (``\\*``)."""


async def _select(session: Session, tag: str, command: c.Select) -> Result:
    if command.qresync is not None and "QRESYNC" not in session.enabled:
        # RFC 7162 3.2.5: QRESYNC parameters without ENABLE QRESYNC are a BAD command.
        raise bad("ENABLE QRESYNC before using the QRESYNC parameter")
    name = session.mailbox_name(command.mailbox)
    if session.selected is not None:
        # RFC 9051 6.3.2: the old mailbox is deselected even if this SELECT fails.
        session.unselect()
        if session.rev2 or "QRESYNC" in session.enabled:
            await session.send(
                responses.untagged("OK", "previous mailbox is now closed", responses.CLOSED)
            )
    # RFC 4314 4: SELECT and EXAMINE need "r"; without any right to change the mailbox
    # it is READ-ONLY (RFC 4314 5.2).
    found = await access.open_mailbox(session, name, "r")
    mailbox = found.mailbox
    readonly = command.readonly or not any(r in found.rights for r in access.WRITE_RIGHTS)
    snapshot = await session.store.snapshot(mailbox.id, claim_recent=not readonly)
    mailbox = snapshot.mailbox
    selected = SelectedMailbox(
        mailbox,
        snapshot.uids,
        readonly=readonly,
        recent=[(snapshot.recent_from_uid, mailbox.uidnext - 1)],
    )
    session.select(selected)
    selected.note_keywords(snapshot.keywords)
    selected.keywords_changed = False  # the FLAGS response below names them
    if command.condstore:
        session.condstore = True  # RFC 7162 3.1: HIGHESTMODSEQ is sent below anyway
    await session.send(responses.flags(mailbox_flags(selected.keywords.values())))
    await session.send(responses.exists(selected.count))
    if not session.rev2:
        await session.send(responses.recent(selected.recent_count()))
        if snapshot.first_unseen_uid is not None:
            seq = selected.seq_of(snapshot.first_unseen_uid)
            if seq is not None:
                await session.send(
                    responses.untagged(
                        "OK", f"message {seq} is first unseen", responses.unseen(seq)
                    )
                )
    allowed, keywords = access.permanent_flags("" if readonly else found.rights)
    permanent = responses.permanentflags(allowed, new_keywords=keywords)
    await session.send(responses.untagged("OK", "flags permitted", permanent))
    await session.send(
        responses.untagged("OK", "UIDs valid", responses.uidvalidity(mailbox.uidvalidity))
    )
    await session.send(
        responses.untagged("OK", "predicted next UID", responses.uidnext(mailbox.uidnext))
    )
    # RFC 7162 3.1.2.1: every mailbox has MODSEQs, so HIGHESTMODSEQ is always sent.
    await session.send(
        responses.untagged("OK", "highest MODSEQ", responses.highestmodseq(selected.modseq))
    )
    await session.send(
        responses.untagged("OK", "mailbox ID", responses.mailboxid_code(mailbox_id(mailbox)))
    )
    if session.rev2:
        await session.send(responses.list_([], "/", found.name, utf8=session.utf8))
    if command.qresync is not None:
        await resynchronise(session, selected, command.qresync)
    what = "EXAMINE" if command.readonly else "SELECT"
    code = responses.READ_ONLY if readonly else responses.READ_WRITE
    return Result("OK", f"{what} completed", code)


handles(c.Select, AUTHENTICATED, announce=False)(_select)


@handles(c.Close, SELECTED, announce=False)
async def close(session: Session, tag: str, command: c.Close) -> Result:
    """RFC 9051 6.4.1: expunge \\Deleted messages silently (unless read-only), then
    leave the selected state."""
    selected = session.selected
    assert selected is not None
    # RFC 4314 4: without the "e" right the expunge is skipped, and CLOSE still succeeds.
    expunge = not selected.readonly and "e" in await access.selected_rights(session)
    session.unselect()
    if expunge:
        try:
            await session.store.expunge(selected.id)
        except errors.NotFound:
            pass  # deleted meanwhile: nothing left to expunge
    return Result("OK", "CLOSE completed")


@handles(c.Unselect, SELECTED, announce=False)
async def unselect(session: Session, tag: str, command: c.Unselect) -> Result:
    """RFC 3691 / RFC 9051 6.4.2: leave the selected state without expunging."""
    session.unselect()
    return Result("OK", "UNSELECT completed")
