"""SORT and THREAD (RFC 5256), SORT=DISPLAY (RFC 5957), ESORT (RFC 5267) and PARTIAL
(RFC 9394) results.

Both start like SEARCH (the same ``search.Compiler``, bounded by the last UID the client
knows). SORT is one SQL query over the sort keys stored at delivery, the message's UID
breaking ties (RFC 5256 3: sequence order). THREAD reads the stored threading headers
of the matching messages (``Store.thread_headers``) and runs ``imap.threads``; a large
mailbox is threaded in a worker thread so other sessions keep being served.

Decisions:

* ``SORT RETURN (...)`` answers ``* ESEARCH``: ALL and PARTIAL keep the sort order, MIN
  and MAX are the first and last message in that order (RFC 5267 3.2). SAVE keeps the
  matching messages for ``$`` as SEARCH does (a set: order does not survive).
* With the MODSEQ search key, ``* SORT`` ends with ``(MODSEQ n)`` (RFC 7162 3.1.5).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mailkeep.imap import access, responses, threads
from mailkeep.imap import commands as c
from mailkeep.imap.handlers.base import SELECTED, Result, bad, handles
from mailkeep.imap.handlers.common import selected_mailbox
from mailkeep.imap.handlers.condstore import enable_condstore, uses_modseq
from mailkeep.imap.handlers.progress import awaiting
from mailkeep.imap.handlers.search import Compiler, esearch_response, highest_modseq
from mailkeep.imap.selected import SelectedMailbox, uid_array
from mailkeep.store import query as q
from mailkeep.store.api import ThreadHeaders
from mailkeep.store.query import SortKey

if TYPE_CHECKING:
    from mailkeep.imap.session import Session

THREAD_IN_WORKER = 2000
"""Thread this many messages or more in a worker thread."""


async def _matching(session: Session, criteria: c.SearchKey) -> tuple[SelectedMailbox, q.Query]:
    selected = selected_mailbox(session)
    await access.require_selected(session, "r", "search")  # RFC 4314 4
    if uses_modseq(criteria):
        await enable_condstore(session)  # RFC 7162 3.1
    compiler = Compiler(selected, session.saved, datetime.now(UTC))
    query = q.And((q.Uids(((1, selected.last_uid),)), compiler.key(criteria)))
    return selected, query


def _numbers(selected: SelectedMailbox, uids: list[int], uid: bool) -> list[int]:
    """UIDs in a given order as the numbers to show, order kept."""
    if uid:
        return uids
    return [n for n in (selected.seq_of(u) for u in uids) if n is not None]


@handles(c.Sort, SELECTED, expunge_ok=False)
async def sort(session: Session, tag: str, command: c.Sort) -> Result:
    what = "UID SORT" if command.uid else "SORT"
    selected, query = await _matching(session, command.search)
    keys = [SortKey(k.key.lower(), k.reverse) for k in command.criteria]
    uids = []
    if selected.count:
        uids = await awaiting(session, tag, session.store.sort(selected.id, keys, query))
    numbers = _numbers(selected, uids, command.uid)
    with_modseq = uses_modseq(command.search)
    returns = command.returns
    if returns is None:
        modseq = await highest_modseq(session, sorted(uids)) if with_modseq else None
        await session.send(responses.sort(numbers, modseq))
        return Result("OK", f"{what} completed")
    options = set(returns.options)
    if "SAVE" in options:
        session.saved = uid_array(sorted(uids))
        options.discard("SAVE")
        if not options:
            return Result("OK", f"{what} completed, result saved")
    await session.send(
        await esearch_response(
            session,
            tag,
            command.uid,
            options,
            uids,
            numbers,
            returns.partial,
            with_modseq,
            ordered=True,
        )
    )
    return Result("OK", f"{what} completed")


@handles(c.Thread, SELECTED, expunge_ok=False)
async def thread(session: Session, tag: str, command: c.Thread) -> Result:
    what = "UID THREAD" if command.uid else "THREAD"
    if command.algorithm not in threads.ALGORITHMS:
        raise bad(f"unknown threading algorithm {command.algorithm} (use REFERENCES)")
    selected, query = await _matching(session, command.search)
    uids = []
    if selected.count:
        uids = await awaiting(session, tag, session.store.search(selected.id, query))
    headers = await awaiting(session, tag, session.store.thread_headers(selected.id, uids))
    messages = [_message(selected, h, command.uid) for h in headers]
    algorithm = threads.references if command.algorithm == "REFERENCES" else threads.ordered_subject
    if len(messages) >= THREAD_IN_WORKER:
        roots = await awaiting(session, tag, asyncio.to_thread(algorithm, messages))
    else:
        roots = algorithm(messages)
    await session.send(responses.thread(roots))
    return Result("OK", f"{what} completed")


def _message(selected: SelectedMailbox, h: ThreadHeaders, uid: bool) -> threads.ThreadMessage:
    number = h.uid if uid else (selected.seq_of(h.uid) or 0)
    return threads.ThreadMessage(
        number,
        h.message_id,
        h.in_reply_to,
        h.references,
        h.base_subject,
        threads.is_reply_or_forward(h.subject),
        h.date,
    )
