"""STORE, UID STORE (RFC 9051 6.4.6), EXPUNGE and UID EXPUNGE (RFC 9051 6.4.3, RFC 4315).

STORE reports the flags of every message of the set afterwards (unless ``.SILENT``), as
its transaction left them (``FlagResult.found``), and marks them reported so the session
does not announce its own change twice. A message expunged by another session and not
yet reported is skipped; STORE by sequence number then answers ``OK [EXPUNGEISSUED]``
(RFC 2180 4.2, Dovecot also answers OK), ``.SILENT`` and UID STORE just go on.

Keywords a STORE adds are announced in FLAGS before its tagged reply even when no FETCH
shows them (``.SILENT``): imaptest checks after every STORE that its keywords exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailkeep import errors
from mailkeep.imap import access, responses
from mailkeep.imap import commands as c
from mailkeep.imap.handlers.base import SELECTED, Result, handles, no
from mailkeep.imap.handlers.common import client_flags, message_spans, selected_mailbox
from mailkeep.imap.handlers.condstore import enable_condstore
from mailkeep.store.api import FlagMode

if TYPE_CHECKING:
    from mailkeep.imap.session import Session

MODES = {"+": FlagMode.ADD, "-": FlagMode.REMOVE, "": FlagMode.REPLACE}


@handles(c.Store, SELECTED, expunge_ok=False)
async def store(session: Session, tag: str, command: c.Store) -> Result:
    selected = selected_mailbox(session)
    if selected.readonly:
        raise no("the mailbox is read-only (EXAMINE): flags cannot be changed")
    spans = message_spans(session, command.sequence, command.uid)
    flags, keywords = client_flags(command.flags)
    # RFC 4314 4: "s" for \Seen, "t" for \Deleted, "w" for the other flags and keywords.
    # Flags the user may not change are left alone; only a STORE that can change none
    # of what it names fails.
    rights = await access.selected_rights(session)
    flag_mask, keywords_allowed = access.flag_rights(rights)
    replace = command.action == ""
    if not (flags & flag_mask or (keywords and keywords_allowed)) and (
        not replace or (not flag_mask and not keywords_allowed)
    ):
        raise errors.PermissionDenied("you may not change these flags in this mailbox")
    uids = selected.span_uids(spans)
    what = "UID STORE" if command.uid else "STORE"
    if command.unchangedsince is not None:
        await enable_condstore(session)  # RFC 7162 3.1
    if not uids:
        return Result("OK", f"{what} completed")
    result = await session.store.store_flags(
        selected.id,
        uids,
        MODES[command.action],
        flags,
        keywords,
        unchanged_since=command.unchangedsince,
        flag_mask=flag_mask,
        keywords_allowed=keywords_allowed,
    )
    if command.action != "-" and keywords_allowed:
        selected.note_keywords(keywords)  # announced with the next response
    await session.absorb()
    for state in result.change.changed:
        selected.reported(state.uid, state.modseq)
    gone = any(selected.is_expunged(uid) for uid in uids)
    refused = set(result.failed_unchangedsince)
    changed = {state.uid for state in result.change.changed}
    if not command.silent or (command.unchangedsince is not None and changed):
        # Both in UID order: the spans ascend, and so does what the transaction found.
        found = iter(result.found)
        message = next(found, None)
        for start, stop in spans:
            for position in range(start, stop):
                uid = selected.uids[position]
                while message is not None and message.uid < uid:
                    message = next(found, None)
                if message is None or message.uid != uid:  # expunged before the STORE
                    gone = True
                    continue
                if message.uid in refused or (command.silent and message.uid not in changed):
                    continue
                out = responses.FetchResponse(position + 1)
                if not command.silent:
                    out.add(
                        "FLAGS", session.flag_list(message.flags, message.keywords, message.uid)
                    )
                if command.uid or session.condstore:
                    out.add_number("UID", message.uid)
                if session.condstore:
                    # RFC 7162 3.1.3: even .SILENT reports the new MODSEQ of a
                    # conditional STORE.
                    out.add("MODSEQ", responses.modseq_value(message.modseq))
                await session.send(out.to_bytes())
                selected.reported(message.uid, message.modseq)
    if result.failed_unchangedsince:
        failed = result.failed_unchangedsince
        numbers = failed if command.uid else selected.uids_to_seqs(failed)
        return Result(
            "OK",
            "conditional STORE failed for some messages",
            responses.modified(sorted(numbers)),
        )
    if gone and not command.silent and not command.uid:
        # OK rather than NO (RFC 2180 4.2 allows both): the other messages did change,
        # Dovecot answers OK too, and imaptest's stress mode counts a NO to STORE as a
        # failure. The code still tells the client to NOOP soon (RFC 9051 7.1).
        return Result(
            "OK",
            "STORE completed, but some of the messages no longer exist",
            responses.EXPUNGEISSUED,
        )
    return Result("OK", f"{what} completed")


@handles(c.Expunge, SELECTED)
async def expunge(session: Session, tag: str, command: c.Expunge) -> Result:
    """Remove the \\Deleted messages (all, or those of the UID set); the EXPUNGE responses
    are the session's announcement that follows."""
    selected = selected_mailbox(session)
    if selected.readonly:
        raise no("the mailbox is read-only (EXAMINE): nothing can be expunged")
    await access.require_selected(session, "e", "expunge")  # RFC 4314 4
    if command.uids is None:
        await session.store.expunge(selected.id)
        return Result("OK", "EXPUNGE completed")
    uids = selected.span_uids(message_spans(session, command.uids, True))
    if uids:
        await session.store.expunge(selected.id, uids)
    return Result("OK", "UID EXPUNGE completed")
