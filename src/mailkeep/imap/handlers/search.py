"""SEARCH and UID SEARCH (RFC 9051 6.4.4, RFC 3501 6.4.4) with ESEARCH (RFC 4731),
SEARCHRES (RFC 5182) and WITHIN (RFC 5032).

The search program becomes a ``store.query`` tree that the store compiles to SQL (TEXT
and BODY through its full-text index); message sets are turned into UID ranges first and
the result is bounded by the last UID the client knows, so a message it has not been
told about never shows up. Results go back as sequence numbers (or UIDs) in one pass.

IMAP4rev1 sessions get ``* SEARCH`` unless they ask for ``RETURN (...)``; IMAP4rev2
sessions always get ``* ESEARCH`` (RFC 9051 6.4.4: SEARCH without RETURN means ALL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from mailkeep.errors import MailkeepError
from mailkeep.imap import access, responses, sequence
from mailkeep.imap import commands as c
from mailkeep.imap.handlers.base import SELECTED, ImapError, Result, bad, handles
from mailkeep.imap.handlers.common import selected_mailbox
from mailkeep.imap.handlers.condstore import enable_condstore, uses_modseq
from mailkeep.imap.handlers.progress import awaiting
from mailkeep.imap.selected import SelectedMailbox, uid_array
from mailkeep.mail.flags import SystemFlag
from mailkeep.store import query as q
from mailkeep.store.api import FetchField

if TYPE_CHECKING:
    from mailkeep.imap.session import Session

_FLAGS = {
    "ANSWERED": SystemFlag.ANSWERED,
    "DELETED": SystemFlag.DELETED,
    "DRAFT": SystemFlag.DRAFT,
    "FLAGGED": SystemFlag.FLAGGED,
    "SEEN": SystemFlag.SEEN,
}
_HEADERS = {"BCC": "bcc", "CC": "cc", "FROM": "from", "SUBJECT": "subject", "TO": "to"}
_DATES = {
    "BEFORE": ("internal", "before"),
    "ON": ("internal", "on"),
    "SINCE": ("internal", "since"),
    "SENTBEFORE": ("sent", "before"),
    "SENTON": ("sent", "on"),
    "SENTSINCE": ("sent", "since"),
    "SAVEDBEFORE": ("saved", "before"),
    "SAVEDON": ("saved", "on"),
    "SAVEDSINCE": ("saved", "since"),
}


@dataclass
class Compiler:
    """Turns one search program into a store query, in the view of one session."""

    selected: SelectedMailbox
    saved: Sequence[int]
    now: datetime

    def recent(self) -> q.Query:
        return q.Uids(tuple(self.selected.recent))

    def key(self, key: c.SearchKey) -> q.Query:
        match key:
            case c.SearchFlag(name="ALL" | "SAVEDATESUPPORTED"):
                return q.All()
            case c.SearchFlag(name="RECENT"):
                return self.recent()
            case c.SearchFlag(name="NEW"):
                return q.And((self.recent(), q.HasFlags(int(SystemFlag.SEEN), present=False)))
            case c.SearchFlag(name="OLD"):
                return q.Not(self.recent())
            case c.SearchFlag(name=name) if name in _FLAGS:
                return q.HasFlags(int(_FLAGS[name]))
            case c.SearchFlag(name=name) if name.startswith("UN") and name[2:] in _FLAGS:
                return q.HasFlags(int(_FLAGS[name[2:]]), present=False)
            case c.SearchText(name=name, value=value) if name in _HEADERS:
                return q.HeaderContains(_HEADERS[name], value)
            case c.SearchText(name="BODY", value=value):
                return q.BodyContains(value)
            case c.SearchText(name="TEXT", value=value):
                return q.TextContains(value)
            case c.SearchText(name="EMAILID", value=value):
                return q.EmailId(value)
            case c.SearchText(name="THREADID", value=value):
                return q.ThreadId(value)
            case c.SearchHeader(field=field, value=value):
                return q.HeaderContains(field.lower(), value)
            case c.SearchKeyword(keyword=keyword, present=present):
                return q.HasKeyword(keyword, present)
            case c.SearchDate(name=name, day=day) if name in _DATES:
                which, op = _DATES[name]
                return q.DateCompare(which, op, day)
            case c.SearchNumber(name="LARGER", value=value):
                return q.SizeCompare(True, value)
            case c.SearchNumber(name="SMALLER", value=value):
                return q.SizeCompare(False, value)
            case c.SearchNumber(name="OLDER" | "YOUNGER" as name, value=value):
                # RFC 5032: relative to now, on INTERNALDATE.
                instant = self.now - timedelta(seconds=value)
                return q.InternalAfter(instant, younger=name == "YOUNGER")
            case c.SearchSet(sequence=seqset, uid=uid):
                return q.Uids(self.uid_ranges(seqset, uid))
            case c.SearchModseq(modseq=modseq):
                return q.ModseqAtLeast(modseq)
            case c.SearchNot(key=inner):
                return q.Not(self.key(inner))
            case c.SearchOr(left=left, right=right):
                return q.Or(self.key(left), self.key(right))
            case c.SearchAnd(keys=keys):
                return q.And(tuple(self.key(k) for k in keys))
        raise bad(f"search key {key!r} is not supported")

    def uid_ranges(self, seqset: sequence.SequenceSet, uid: bool) -> q.UidRanges:
        if seqset.saved:
            return sequence.compress(self.saved)
        if uid:
            return sequence.resolve(seqset, self.selected.last_uid)
        # RFC 9051 9 (seq-number) says a server "should" answer BAD to a number beyond the
        # message count. As a search key we let such numbers match nothing instead, as
        # Dovecot and Cyrus do and imaptest's 'esearch' script requires (SEARCH RETURN
        # (COUNT) 1000 in a smaller mailbox: OK, COUNT 0): a key only filters, so nothing
        # can be misread. FETCH, STORE, COPY and the rest keep the BAD.
        uids, count = self.selected.uids, self.selected.count
        return tuple(
            (uids[low - 1], uids[min(high, count) - 1])
            for low, high in sequence.resolve(seqset, count)
            if 1 <= low <= count
        )


@handles(c.Search, SELECTED, expunge_ok=False)
async def search(session: Session, tag: str, command: c.Search) -> Result:
    returns = command.returns
    saving = returns is not None and "SAVE" in returns.options
    try:
        result = await _search(session, tag, command)
    except ImapError as exc:
        if saving and exc.status == "NO":
            session.saved = uid_array()
        raise
    except MailkeepError:
        # RFC 9051 6.4.4.1: a SEARCH with SAVE that fails with NO empties $ (one that
        # fails with BAD leaves it alone).
        if saving:
            session.saved = uid_array()
        raise
    return result


async def _search(session: Session, tag: str, command: c.Search) -> Result:
    selected = selected_mailbox(session)
    await access.require_selected(session, "r", "search")  # RFC 4314 4
    returns = command.returns
    if command.charset not in (None, "UTF-8") and "UTF8=ACCEPT" in session.enabled:
        # RFC 6855 3 (erratum 4029): the strings are UTF-8 once UTF8=ACCEPT is on.
        raise bad(f"CHARSET {command.charset} conflicts with UTF8=ACCEPT")
    with_modseq = uses_modseq(command.criteria)
    if with_modseq:
        await enable_condstore(session)  # RFC 7162 3.1
    compiler = Compiler(selected, session.saved, datetime.now(UTC))
    query = compiler.key(command.criteria)
    uids: list[int] = []
    if selected.count:
        bounded = q.And((q.Uids(((1, selected.last_uid),)), query))
        uids = await awaiting(session, tag, session.store.search(selected.id, bounded))
    numbers = uids if command.uid else selected.uids_to_seqs(uids)
    what = "UID SEARCH" if command.uid else "SEARCH"
    if returns is None and not session.rev2:
        modseq = await highest_modseq(session, uids) if with_modseq else None
        await session.send(responses.search(numbers, modseq))
        return Result("OK", f"{what} completed")
    options = set(returns.options) if returns is not None else {"ALL"}
    partial = returns.partial if returns is not None else None
    window = partial_window(len(uids), partial) if partial is not None else None
    if "SAVE" in options:
        saved = uids
        if window is not None:
            saved = uids[window[0] : window[1]]  # RFC 9394 3.1: SAVE keeps what is returned
        elif options & {"MIN", "MAX"} and not options & {"ALL", "COUNT"} and uids:
            # RFC 5182 2.1: with MIN/MAX alone, only those messages are saved.
            saved = sorted(
                {uids[0] for _ in ("MIN",) if "MIN" in options}
                | {uids[-1] for _ in ("MAX",) if "MAX" in options}
            )
        session.saved = uid_array(saved)
        options.discard("SAVE")
        if not options:
            return Result("OK", f"{what} completed, result saved")
    await session.send(
        await esearch_response(
            session, tag, command.uid, options, uids, numbers, partial, with_modseq
        )
    )
    return Result("OK", f"{what} completed")


def normalized_partial(partial: tuple[int, int]) -> tuple[int, int]:
    """RFC 9394 3.1: ``4:2`` means ``2:4`` and ``-5:-1`` means ``-1:-5``; answers echo
    the range in this order."""
    first, last = partial
    low, high = sorted((abs(first), abs(last)))
    return (-low, -high) if first < 0 else (low, high)


def partial_window(total: int, partial: tuple[int, int]) -> tuple[int, int]:
    """The slice ``[start, stop)`` of a ``total``-long result that ``partial`` names:
    positions counted from 1, or from the end when negative (RFC 9394 3.1)."""
    low, high = (abs(n) for n in normalized_partial(partial))
    if partial[0] < 0:
        return max(total - high, 0), max(total - low + 1, 0)
    return min(low - 1, total), min(high, total)


async def highest_modseq(session: Session, uids: Sequence[int]) -> int | None:
    """The highest MODSEQ of ``uids`` (RFC 7162 3.1.5: shown with a SEARCH MODSEQ
    result); None when there are none."""
    selected = selected_mailbox(session)
    highest: int | None = None
    for i in range(0, len(uids), 1000):
        rows = await session.store.fetch(selected.id, uids[i : i + 1000], FetchField(0))
        for row in rows:
            highest = row.modseq if highest is None else max(highest, row.modseq)
    return highest


async def esearch_response(
    session: Session,
    tag: str,
    uid: bool,
    options: set[str],
    uids: Sequence[int],
    numbers: Sequence[int],
    partial: tuple[int, int] | None,
    with_modseq: bool,
    *,
    ordered: bool = False,
) -> bytes:
    """``* ESEARCH`` for SEARCH and SORT (RFC 4731, RFC 5267 ESORT, RFC 9394 PARTIAL).

    ``uids``/``numbers``: the result as UIDs and as the numbers to show, in the same
    order: ascending for SEARCH, sort order for SORT (``ordered``: ALL and PARTIAL keep
    that order, and MIN/MAX are the first and last sorted message, RFC 5267 3.2). With the
    MODSEQ key, the highest MODSEQ of the messages being returned is added (RFC 7162
    3.1.5: only MIN's and MAX's with those alone)."""
    window = partial_window(len(uids), partial) if partial is not None else None
    shown: Sequence[int] | None = None
    returned: list[int] = []
    if "ALL" in options or "COUNT" in options:
        returned = list(uids)
    if window is not None:
        returned += uids[window[0] : window[1]]
    if uids and "MIN" in options:
        returned.append(uids[0])
    if uids and "MAX" in options:
        returned.append(uids[-1])
    modseq = await highest_modseq(session, sorted(set(returned))) if with_modseq else None
    if "ALL" in options:
        shown = numbers
    all_: responses.Numbers | None = None
    if shown is not None:
        all_ = _ordered(shown) if ordered else sequence.compress(shown)
    part: tuple[tuple[int, int], responses.Numbers] | None = None
    if partial is not None and window is not None:
        inside = numbers[window[0] : window[1]]
        part = (
            normalized_partial(partial),
            _ordered(inside) if ordered else sequence.compress(inside),
        )
    return responses.esearch(
        tag,
        uid=uid,
        min=numbers[0] if "MIN" in options and numbers else None,
        max=numbers[-1] if "MAX" in options and numbers else None,
        all=all_,
        count=len(numbers) if "COUNT" in options else None,
        partial=part,
        modseq=modseq,
    )


def _ordered(numbers: Sequence[int]) -> bytes:
    return sequence.format_ordered(numbers)
