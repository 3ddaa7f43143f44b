"""CONDSTORE and QRESYNC (RFC 7162) pieces the command handlers share.

* ``enable_condstore``: RFC 7162 3.1 lists the CONDSTORE enabling commands (SELECT/EXAMINE
  CONDSTORE, STATUS HIGHESTMODSEQ, FETCH MODSEQ or CHANGEDSINCE, SEARCH MODSEQ, STORE
  UNCHANGEDSINCE, ENABLE CONDSTORE/QRESYNC). From then on every unsolicited FETCH carries
  UID and MODSEQ; when the first one arrives while a mailbox is selected the client is
  told that mailbox's HIGHESTMODSEQ at once (as Dovecot does).
* ``resynchronise``: the ``VANISHED (EARLIER)`` and FETCH responses of
  ``SELECT ... (QRESYNC (...))`` (RFC 7162 3.2.5).
* ``vanished_earlier``: what ``UID FETCH ... (CHANGEDSINCE n VANISHED)`` reports
  (RFC 7162 3.2.6).

Every mailbox has MODSEQs, so ``NOMODSEQ`` is never sent.

Expunges the session has not announced yet are never reported as ``VANISHED (EARLIER)``:
those messages still have sequence numbers in the client's view and are reported with a
plain ``VANISHED`` at the next allowed moment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailkeep.imap import commands as c
from mailkeep.imap import responses, resync, sequence
from mailkeep.imap.selected import SelectedMailbox
from mailkeep.imap.sequence import Ranges
from mailkeep.store.api import Changes

if TYPE_CHECKING:
    from mailkeep.imap.session import Session


async def enable_condstore(session: Session) -> None:
    """Turn CONDSTORE on for this session (RFC 7162 3.1)."""
    if session.condstore:
        return
    session.condstore = True
    selected = session.selected
    if selected is not None:
        code = responses.highestmodseq(selected.modseq)
        await session.send(responses.untagged("OK", "highest MODSEQ", code))


def uses_modseq(key: c.SearchKey) -> bool:
    """Whether a search program has the MODSEQ key (a CONDSTORE enabling command)."""
    match key:
        case c.SearchModseq():
            return True
        case c.SearchNot(key=inner):
            return uses_modseq(inner)
        case c.SearchOr(left=left, right=right):
            return uses_modseq(left) or uses_modseq(right)
        case c.SearchAnd(keys=keys):
            return any(uses_modseq(k) for k in keys)
    return False


async def send_vanished(session: Session, ranges: Ranges, *, earlier: bool) -> None:
    for part in resync.chunks(ranges):
        await session.send(responses.vanished(part, earlier=earlier))


async def vanished_earlier(
    session: Session,
    selected: SelectedMailbox,
    modseq: int,
    known: Ranges,
    *,
    floor: int = 0,
    changes: Changes | None = None,
) -> Ranges:
    """UIDs of ``known`` expunged after ``modseq`` that the client's view no longer has.

    From the expunge log when it reaches back to ``modseq``; otherwise by comparison
    with the view, above ``floor`` (see ``resync``)."""
    if changes is None:
        changes = await session.store.changes_since(selected.id, modseq)
    if changes.expunge_log_complete:
        gone = [
            uid
            for uid in changes.expunged
            if sequence.contains(known, uid) and selected.seq_of(uid) is None
        ]
        return sequence.compress(gone)
    return resync.missing(resync.above(known, floor), selected.uids)


async def resynchronise(session: Session, selected: SelectedMailbox, params: c.Qresync) -> None:
    """RFC 7162 3.2.5: after SELECT's usual responses, report what changed since the
    client's MODSEQ: ``VANISHED (EARLIER)`` first, then a FETCH (UID, FLAGS, MODSEQ) per
    changed message. Nothing when the UIDVALIDITY differs (the client must start over).
    With known-uids, only those messages are reported (RFC 7162 3.2.5: SHOULD)."""
    if params.uidvalidity != selected.uidvalidity or params.modseq >= selected.modseq:
        return
    largest = max(selected.uidnext - 1, selected.last_uid)
    known: Ranges = ((1, largest),) if largest else ()
    if params.known_uids is not None:
        known = sequence.resolve(params.known_uids, largest)
    floor = 0
    if params.known_sequence is not None and params.known_sequence_uids is not None:
        floor = resync.matched_floor(
            selected.uids,
            sequence.resolve(params.known_sequence, selected.count),
            sequence.resolve(params.known_sequence_uids, largest),
        )
    changes = await session.store.changes_since(selected.id, params.modseq)
    gone = await vanished_earlier(
        session, selected, params.modseq, known, floor=floor, changes=changes
    )
    if gone:
        await send_vanished(session, gone, earlier=True)
    for state in changes.changed:
        if params.known_uids is not None and not sequence.contains(known, state.uid):
            continue
        seq = selected.seq_of(state.uid)
        if seq is not None:
            await session.send(session.flags_update(seq, state))
            selected.reported(state.uid, state.modseq)
