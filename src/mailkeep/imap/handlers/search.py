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
from mailkeep.imap import commands as c
from mailkeep.imap import responses, sequence
from mailkeep.imap.handlers.base import SELECTED, ImapError, Result, bad, handles
from mailkeep.imap.handlers.common import selected_mailbox
from mailkeep.imap.selected import SelectedMailbox, uid_array
from mailkeep.imap.sequence import SequenceSetError
from mailkeep.mail.flags import SystemFlag
from mailkeep.store import query as q

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
        uids = self.selected.uids
        try:
            spans = self.selected.sequence_spans(seqset, None)
        except SequenceSetError as exc:
            raise bad(str(exc)) from None
        return tuple((uids[start], uids[stop - 1]) for start, stop in spans)


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
    returns = command.returns
    if command.charset not in (None, "UTF-8") and "UTF8=ACCEPT" in session.enabled:
        # RFC 6855 3 (erratum 4029): the strings are UTF-8 once UTF8=ACCEPT is on.
        raise bad(f"CHARSET {command.charset} conflicts with UTF8=ACCEPT")
    if returns is not None and returns.partial is not None:
        raise bad("SEARCH RETURN (PARTIAL) is not supported")
    compiler = Compiler(selected, session.saved, datetime.now(UTC))
    query = compiler.key(command.criteria)
    uids: list[int] = []
    if selected.count:
        bounded = q.And((q.Uids(((1, selected.last_uid),)), query))
        uids = await session.store.search(selected.id, bounded)
    numbers = uids if command.uid else selected.uids_to_seqs(uids)
    what = "UID SEARCH" if command.uid else "SEARCH"
    if returns is None and not session.rev2:
        await session.send(responses.search(numbers))
        return Result("OK", f"{what} completed")
    options = set(returns.options) if returns is not None else {"ALL"}
    if "SAVE" in options:
        saved = uids
        if options & {"MIN", "MAX"} and not options & {"ALL", "COUNT"} and uids:
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
        responses.esearch(
            tag,
            uid=command.uid,
            min=numbers[0] if "MIN" in options and numbers else None,
            max=numbers[-1] if "MAX" in options and numbers else None,
            all=sequence.compress(numbers) if "ALL" in options else None,
            count=len(numbers) if "COUNT" in options else None,
        )
    )
    return Result("OK", f"{what} completed")
