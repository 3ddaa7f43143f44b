"""Compile search and sort queries to SQL (RFC 9051 6.4.4, RFC 5256).

Text matching is case-insensitive substring matching: the searchable columns are stored
casefolded and compared with the casefolded needle; BODY and TEXT go through the full-text
index. The few predicates SQL cannot answer (an arbitrary header field, a needle too
short for the index) are answered first by a scan of this mailbox only, and replaced in the
query by the UIDs they matched, so that NOT and OR compose as usual.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32

from mailkeep.store import query as q
from mailkeep.store.ops import All, Column, Dialect, One, ReadBlob, Tx
from mailkeep.store.sql import parse_object_id, to_ranges

_COLUMN_FIELDS = {
    "from": "c.from_",
    "to": "c.to_",
    "cc": "c.cc",
    "bcc": "c.bcc",
    "subject": "c.subject",
}
_EPOCH = date(1970, 1, 1)
_DAY_EXPRESSIONS = {
    "internal": "(m.internaldate + m.internaldate_tz * 60) / 86400",
    "sent": "coalesce(c.sent_date + c.sent_tz * 60, m.internaldate + m.internaldate_tz * 60)"
    " / 86400",
    "saved": "m.savedate / 86400",
}
# The text keys are stored casefolded (lower case). RFC 5256's i;ascii-casemap (RFC 4790
# 9.2) and RFC 5957's i;unicode-casemap (RFC 5051) compare upper/title case, which orders
# "[", "\\", "]", "^", "_" and "`" after the letters, not before them: upper() restores
# that order (in SQLite, and in PostgreSQL under the columns' "C" collation, it changes
# ASCII letters only).
_SORT_EXPRESSIONS = {
    "arrival": "m.internaldate",
    "cc": "upper(c.sort_cc)",
    "date": "coalesce(c.sent_date, m.internaldate)",
    "from": "upper(c.sort_from)",
    "size": "m.size",
    "subject": "upper(c.base_subject)",
    "to": "upper(c.sort_to)",
    "displayfrom": "upper(c.display_from)",
    "displayto": "upper(c.display_to)",
}
_SOURCE = "messages m JOIN contents c ON c.id = m.content_id"


def search_tx(
    mailbox_id: int, query: q.Query, dialect: Dialect, settled: bool = True
) -> Tx[Sequence[int] | None]:
    """The UIDs matching ``query``, in order; None when ``settled`` is asked for and the
    full-text index the query needs has contents pending (the caller has them indexed
    and asks again)."""
    if settled and (yield from _index_pending(query, dialect)):
        return None
    query = yield from _answer_scans(mailbox_id, query, dialect)
    yield from _plan_for_fulltext(query, dialect)
    where, params = compile_query(query, dialect)
    source = _SOURCE
    if dialect.narrow_contents and set(_CONTENTS_COLUMN.findall(where)) <= _NARROW_COLUMNS:
        source = f"messages m JOIN contents c {dialect.narrow_contents} ON c.id = m.content_id"
    uids: Sequence[int] = yield Column(
        f"SELECT m.uid FROM {source} WHERE m.mailbox_id = ? AND ({where}) ORDER BY m.uid",
        (mailbox_id, *params),
    )
    return uids


_CONTENTS_COLUMN = re.compile(r"\bc\.\w+")
_NARROW_COLUMNS = {"c.id", *_COLUMN_FIELDS.values()}
"""What the narrow contents index holds (``Dialect.narrow_contents``)."""


def sort_tx(
    mailbox_id: int,
    keys: Sequence[q.SortKey],
    query: q.Query,
    dialect: Dialect,
    settled: bool = True,
) -> Tx[Sequence[int] | None]:
    """As ``search_tx``, ordered by ``keys``."""
    if settled and (yield from _index_pending(query, dialect)):
        return None
    query = yield from _answer_scans(mailbox_id, query, dialect)
    yield from _plan_for_fulltext(query, dialect)
    where, params = compile_query(query, dialect)
    order = [f"{_SORT_EXPRESSIONS[key.key]}{' DESC' if key.reverse else ''}" for key in keys]
    uids: Sequence[int] = yield Column(
        f"SELECT m.uid FROM {_SOURCE} WHERE m.mailbox_id = ? AND ({where})"
        f" ORDER BY {', '.join([*order, 'm.uid'])}",
        (mailbox_id, *params),
    )
    return uids


def _index_pending(query: q.Query, dialect: Dialect) -> Tx[bool]:
    """Whether ``query`` reads the full-text index while contents wait for it. Checked in
    the search's own snapshot, so the answer covers every message that snapshot holds."""
    if dialect.pending_index is None or not _uses_fulltext(query, dialect):
        return False
    row = yield One(dialect.pending_index, ())
    return bool(row and row[0])


def _plan_for_fulltext(query: q.Query, dialect: Dialect) -> Tx[None]:
    """What ``Dialect.fulltext_plan`` asks for, when every full-text needle agrees."""
    plans = {dialect.fulltext_plan(text) for text in _fulltext_needles(query)}
    if len(plans) == 1 and (plan := plans.pop()) is not None:
        yield One(plan, ())


def _fulltext_needles(node: q.Query) -> list[str]:
    match node:
        case q.BodyContains(text=text) | q.TextContains(text=text) if text:
            return [text]
        case q.Not(query=inner):
            return _fulltext_needles(inner)
        case q.And(queries=queries):
            return [text for part in queries for text in _fulltext_needles(part)]
        case q.Or(left=left, right=right):
            return _fulltext_needles(left) + _fulltext_needles(right)
    return []


def _uses_fulltext(query: q.Query, dialect: Dialect) -> bool:
    return any(dialect.fts_param(None, text) is not None for text in _fulltext_needles(query))


def compile_query(query: q.Query, dialect: Dialect) -> tuple[str, list[object]]:
    params: list[object] = []
    return _compile(query, dialect, params), params


def _compile(node: q.Query, dialect: Dialect, params: list[object]) -> str:
    match node:
        case q.All():
            return "1 = 1"
        case q.Uids(ranges=ranges):
            if not ranges:
                return "0 = 1"
            for low, high in ranges:
                params += [low, high]
            return "(" + " OR ".join("m.uid BETWEEN ? AND ?" for _ in ranges) + ")"
        case q.HasFlags(flags=flags, present=present):
            return f"(m.flags & {int(flags)}) = {int(flags) if present else 0}"
        case q.HasKeyword(keyword=keyword, present=present):
            params.append(f" {keyword.lower()} ")
            test = dialect.contains("(' ' || lower(m.keywords) || ' ')")
            return test if present else f"NOT {test}"
        case q.Recent(from_uid=from_uid):
            params.append(from_uid)
            return "m.uid >= ?"
        case q.HeaderContains(field=field, text=text) if field in _COLUMN_FIELDS and text:
            folded = text.casefold()
            params.append(folded)
            test = dialect.contains(_COLUMN_FIELDS[field])
            candidates = dialect.column_candidates(_COLUMN_FIELDS[field][2:], folded)
            if candidates is None:
                return test
            params.append(candidates[1])
            return f"({test} AND {candidates[0]})"
        case q.BodyContains(text=text) | q.TextContains(text=text) if not text:
            return "1 = 1"
        case q.BodyContains(text=text):
            return _fts(dialect, "body", text, params)
        case q.TextContains(text=text):
            return _fts(dialect, None, text, params)
        case q.DateCompare(which=which, op=op, day=day):
            params.append((day - _EPOCH).days)
            operator = {"before": "<", "on": "=", "since": ">="}[op]
            return f"{_DAY_EXPRESSIONS[which]} {operator} ?"
        case q.InternalAfter(instant=instant, younger=younger):
            params.append(int(instant.timestamp()))
            return f"m.internaldate {'>=' if younger else '<'} ?"
        case q.SizeCompare(larger=larger, size=size):
            params.append(size)
            return f"m.size {'>' if larger else '<'} ?"
        case q.ModseqAtLeast(modseq=modseq):
            params.append(modseq)
            return "m.modseq >= ?"
        case q.EmailId(email_id=value):
            params.append(parse_object_id(value, "M"))
            return "m.content_id = ?"
        case q.ThreadId(thread_id=value):
            params.append(parse_object_id(value, "T"))
            return "m.thread_id = ?"
        case q.Not(query=inner):
            return f"NOT ({_compile(inner, dialect, params)})"
        case q.And(queries=queries):
            if not queries:
                return "1 = 1"
            return "(" + " AND ".join(_compile(x, dialect, params) for x in queries) + ")"
        case q.Or(left=left, right=right):
            return f"({_compile(left, dialect, params)} OR {_compile(right, dialect, params)})"
    raise ValueError(f"cannot compile {node!r}")  # pragma: no cover - scans replaced first


def _fts(dialect: Dialect, column: str | None, text: str, params: list[object]) -> str:
    param = dialect.fts_param(column, text)
    if param is None:  # pragma: no cover - _answer_scans replaced it
        raise ValueError(text)
    params.append(param)
    return dialect.fts_match(column)


def _answer_scans(mailbox_id: int, node: q.Query, dialect: Dialect) -> Tx[q.Query]:
    """Replace predicates SQL cannot answer by the UIDs a scan found for them."""
    match node:
        case q.HeaderContains(field=field, text=text) if field not in _COLUMN_FIELDS or not text:
            rows = yield All(
                f"SELECT m.uid, c.header FROM {_SOURCE} WHERE m.mailbox_id = ?", (mailbox_id,)
            )
            needle = text.casefold()
            hits = [uid for uid, header in rows if _header_contains(bytes(header), field, needle)]
            return q.Uids(tuple(to_ranges(hits)))
        case q.BodyContains(text=text) | q.TextContains(text=text) if (
            text and dialect.fts_param(None, text) is None
        ):
            return (yield from _scan_text(mailbox_id, isinstance(node, q.TextContains), text))
        case q.Not(query=inner):
            return q.Not((yield from _answer_scans(mailbox_id, inner, dialect)))
        case q.And(queries=queries):
            parts = []
            for part in queries:
                parts.append((yield from _answer_scans(mailbox_id, part, dialect)))
            return q.And(tuple(parts))
        case q.Or(left=left, right=right):
            new_left = yield from _answer_scans(mailbox_id, left, dialect)
            new_right = yield from _answer_scans(mailbox_id, right, dialect)
            return q.Or(new_left, new_right)
    return node


def _scan_text(mailbox_id: int, with_headers: bool, text: str) -> Tx[q.Query]:
    from mailkeep.mail.message import parse  # deferred: only this rare path parses

    rows = yield All(f"SELECT m.uid, c.blob FROM {_SOURCE} WHERE m.mailbox_id = ?", (mailbox_id,))
    needle = text.casefold()
    hits = []
    for uid, blob in rows:
        parsed = parse((yield ReadBlob(blob)))
        haystack = parsed.body_text + ("\n" + parsed.header_text if with_headers else "")
        if needle in haystack.casefold():
            hits.append(uid)
    return q.Uids(tuple(to_ranges(hits)))


_HEADER_PARSER = BytesHeaderParser(policy=compat32)


def _header_contains(header: bytes, field: str, needle: str) -> bool:
    """Does a ``field`` header contain ``needle`` (casefolded)? Empty needle: present."""
    message = _HEADER_PARSER.parsebytes(header)
    for value in message.get_all(field, []):
        if not needle:
            return True
        if needle in _decode(value).casefold():
            return True
    return False


def _decode(value: object) -> str:
    try:
        return str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError):
        return str(value)
