"""FETCH and UID FETCH (RFC 9051 6.4.5, RFC 3501 6.4.5, RFC 3516 BINARY).

The store is asked for rows in batches of ``BATCH`` UIDs with only the fields the items
need (``FetchField``): ENVELOPE, BODYSTRUCTURE and headers come from data stored at
delivery, bodies stream from the blob (``sections``). Memory stays bounded whatever the
mailbox or message size.

Implicit \\Seen (RFC 9051 6.4.5): BODY[...], BINARY[...], RFC822 and RFC822.TEXT mark the
message seen in a read-write mailbox, and its FETCH response then carries FLAGS.

A message expunged by another session but not yet reported keeps its sequence number
until EXPUNGE may be sent; fetching its UID alone still answers (the session knows it),
anything else by sequence number gives no data and a tagged ``NO [EXPUNGEISSUED]`` (as
Dovecot does, RFC 2180 4.1.2); by UID it is simply gone.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from mailkeep.imap import access, responses, sequence
from mailkeep.imap import commands as c
from mailkeep.imap.dates import format_date_time
from mailkeep.imap.handlers.base import SELECTED, Result, bad, handles
from mailkeep.imap.handlers.common import message_spans, selected_mailbox
from mailkeep.imap.handlers.condstore import enable_condstore, send_vanished, vanished_earlier
from mailkeep.imap.handlers.progress import Progress
from mailkeep.imap.handlers.sections import Message, SectionData, Stream, _cut, no_nul
from mailkeep.imap.selected import SelectedMailbox, Spans
from mailkeep.mail.flags import SystemFlag
from mailkeep.mail.headers import header_selector
from mailkeep.store import query as q
from mailkeep.store.api import (
    SMALL_BLOB,
    WHOLE_BLOB,
    BlobReader,
    FetchField,
    FlagMode,
    MessageRow,
    Store,
)

if TYPE_CHECKING:
    from mailkeep.imap.session import Session

BATCH = 500
PRELOAD_OCTETS = 4 * 2**20
"""Small messages a download reads ahead per store query; two such groups at most are held
(the one being sent and the next)."""
REMOTE_PRELOAD_OCTETS = 2 * 2**20
REMOTE_PRELOAD_DEPTH = 4
"""Where every read is a round trip to a database server (``Store.remote_reads``): groups
of 2 MiB, four in flight, so that the server keeps reading while the session sends
(PostgreSQL, 5,000 messages: 300 -> 360 MB/s, less CPU; 410 -> 463 MB/s against groups
of 1 MiB once the large messages were read ahead too). On SQLite one group of 4 MiB ahead
stays cheaper (890 against 840 MB/s)."""

Render = Callable[["Session", Message, responses.FetchResponse], Awaitable[None]]
Value = Callable[["Session", MessageRow], bytes]
"""A data item's value rendered from the row alone."""

_BLOB = FetchField.BLOB | FetchField.SIZE
_PARTS = FetchField.BLOB | FetchField.STRUCTURE


def _uid(session: Session, row: MessageRow) -> bytes:
    return b"%d" % row.uid


def _flags(session: Session, row: MessageRow) -> bytes:
    return session.flag_list(row.flags, row.keywords, row.uid)


def _internaldate(session: Session, row: MessageRow) -> bytes:
    return _date(row.internaldate)


def _size(session: Session, row: MessageRow) -> bytes:
    return b"%d" % row.size


def _envelope(session: Session, row: MessageRow) -> bytes:
    return row.envelope


def _body(session: Session, row: MessageRow) -> bytes:
    return row.body


def _bodystructure(session: Session, row: MessageRow) -> bytes:
    return row.bodystructure


def _modseq(session: Session, row: MessageRow) -> bytes:
    return responses.modseq_value(row.modseq)


def _emailid(session: Session, row: MessageRow) -> bytes:
    return responses.objectid_value(row.email_id or None)


def _threadid(session: Session, row: MessageRow) -> bytes:
    return responses.objectid_value(row.thread_id or None)


def _savedate(session: Session, row: MessageRow) -> bytes:
    return _date(row.savedate)


def _preview(session: Session, row: MessageRow) -> bytes:
    """RFC 8970 3: the preview stored at delivery; an empty string when the message has
    no text to preview. It is always available, so ``PREVIEW (LAZY)`` is the same."""
    return responses.nstring(row.preview.encode("utf-8"), utf8=session.utf8)


def _date(value: datetime | None) -> bytes:
    """INTERNALDATE, SAVEDATE (NIL when None, RFC 8514)."""
    return b"NIL" if value is None else format_date_time(value)


def _header_literal(section: c.Section, partial: tuple[int, int] | None) -> Value | None:
    """BODY[HEADER], BODY[HEADER.FIELDS (...)] and BODY[HEADER.FIELDS.NOT (...)] of the
    message itself come from the stored header with no blob to open: rendered like the
    other simple items (the same octets ``Message.body`` gives), or None for any other
    section."""
    if section.part or section.text not in ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        return None
    select = header_selector(section.fields, section.text == "HEADER.FIELDS.NOT")

    def value(session: Session, row: MessageRow) -> bytes:
        header = row.header if section.text == "HEADER" else select(row.header)
        if partial is not None:
            start, end = _cut(0, len(header), partial)
            header = header[start:end]
        data = no_nul(header)
        return b"{%d}\r\n%s" % (len(data), data)

    return value


def _simple_render(name: bytes, value: Value) -> Render:
    async def render(session: Session, m: Message, out: responses.FetchResponse) -> None:
        out.add(name, value(session, m.row))

    return render


def _rfc822(name: str, section: c.Section) -> Render:
    """RFC 3501 6.4.5: RFC822, RFC822.HEADER and RFC822.TEXT are BODY[], BODY.PEEK[HEADER]
    and BODY[TEXT] under their own names."""

    async def render(session: Session, m: Message, out: responses.FetchResponse) -> None:
        _add(out, name.encode("ascii"), await m.body(section, None))

    return render


SIMPLE: dict[str, tuple[FetchField, Value]] = {
    "UID": (FetchField(0), _uid),
    "FLAGS": (FetchField.FLAGS, _flags),
    "INTERNALDATE": (FetchField.INTERNALDATE, _internaldate),
    "RFC822.SIZE": (FetchField.SIZE, _size),
    "ENVELOPE": (FetchField.ENVELOPE, _envelope),
    "BODY": (FetchField.BODY, _body),
    "BODYSTRUCTURE": (FetchField.BODYSTRUCTURE, _bodystructure),
    "MODSEQ": (FetchField(0), _modseq),  # RFC 7162 3.1.4.1
    "EMAILID": (FetchField.OBJECTID, _emailid),  # RFC 8474 5.1
    "THREADID": (FetchField.OBJECTID, _threadid),  # RFC 8474 5.2
    "SAVEDATE": (FetchField.SAVEDATE, _savedate),  # RFC 8514 4.3
}
"""Data items rendered from the row alone (no blob, no await): these are what mail
clients fetch for every message of a folder, so a FETCH made only of them (and header
sections) takes a fast path that formats each response in one go."""

ATTRIBUTES: dict[str, tuple[FetchField, bool, Render]] = {
    **{
        name: (fields, False, _simple_render(name.encode("ascii"), value))
        for name, (fields, value) in SIMPLE.items()
    },
    "RFC822": (_BLOB, True, _rfc822("RFC822", c.Section())),
    "RFC822.HEADER": (FetchField.HEADER, False, _rfc822("RFC822.HEADER", c.Section(text="HEADER"))),
    "RFC822.TEXT": (_PARTS, True, _rfc822("RFC822.TEXT", c.Section(text="TEXT"))),
}
"""Data items without arguments: what to load, whether they set \\Seen, how to render.
Extensions add theirs (MODSEQ, EMAILID, THREADID, SAVEDATE, ...)."""


def _add(out: responses.FetchResponse, name: bytes, data: SectionData) -> None:
    if isinstance(data, Stream):
        out.add_stream(name, data.size, data.source, binary=data.binary and data.size > 0)
    else:
        out.add_literal(name, data, binary=b"\0" in data)


def _body_fields(section: c.Section) -> FetchField:
    if section.part:
        return _PARTS
    if section.text is None:
        return _BLOB
    if section.text == "TEXT":
        return _PARTS
    return FetchField.HEADER


class Plan:
    """What one FETCH command loads and renders, decided once for all messages."""

    def __init__(self, items: tuple[c.FetchItem, ...], uid: bool) -> None:
        self.fields = FetchField(0)
        self.sets_seen = False
        self.renders: list[Render] = []
        self.has_flags = False
        self.has_modseq = False
        self.whole = False
        """Some item sends each message whole: large ones are worth reading ahead too."""
        self.simple: list[tuple[bytes, Value]] | None = []
        """(``NAME ``, value) per item when every item is simple (see ``SIMPLE``)."""
        if uid and not any(isinstance(i, c.FetchAttr) and i.name == "UID" for i in items):
            items = (c.FetchAttr("UID"), *items)  # RFC 9051 6.4.9: UID FETCH includes UID
        for item in items:
            self._item(item)
        if FetchField.BLOB in self.fields:
            self.fields |= FetchField.SIZE  # which blobs are small enough to read ahead
        self.signature = items
        self.cacheable = self.simple is not None and all(map(_immutable, items))
        """Every item is fixed for the life of the UID: the rendered items can be kept
        (``Services.fetch_cache``)."""

    def _item(self, item: c.FetchItem) -> None:
        match item:
            case c.FetchAttr(name=name):
                if name not in ATTRIBUTES:
                    raise bad(f"FETCH item {name} is not supported")
                fields, seen, render = ATTRIBUTES[name]
                self.fields |= fields
                self.sets_seen |= seen
                self.has_flags |= name == "FLAGS"
                self.has_modseq |= name == "MODSEQ"
                self.whole |= name in ("RFC822", "RFC822.TEXT")
                self.renders.append(render)
                self._simple(name.encode("ascii"), SIMPLE.get(name, (None, None))[1])
            case c.FetchBody(section=section, partial=partial, peek=peek):
                self.fields |= _body_fields(section)
                self.sets_seen |= not peek
                self.whole |= not section.part and section.text in (None, "TEXT") and not partial
                self.renders.append(_body_render(item.response_name(), section, partial))
                self._simple(item.response_name(), _header_literal(section, partial))
            case c.FetchBinary(part=part, partial=partial, peek=peek, size=size, section=spec):
                self.simple = None
                self.fields |= _PARTS
                self.sets_seen |= not peek and not size
                self.whole |= not part and spec is None and not partial and not size
                if spec is not None:  # BINARY[1.MIME] and the like: BODY's octets
                    self.fields |= _body_fields(spec)
                    render = _binary_section_render(item.response_name(), spec, partial, size)
                else:
                    render = _binary_render(item.response_name(), part, partial, size)
                self.renders.append(render)
            case c.FetchPreview():
                self.fields |= FetchField.PREVIEW
                self.renders.append(_simple_render(b"PREVIEW", _preview))
                self._simple(b"PREVIEW", _preview)
        if self.sets_seen:
            self.fields |= FetchField.FLAGS
            self.simple = None

    def _simple(self, name: bytes, value: Value | None) -> None:
        if self.simple is not None:
            if value is None:
                self.simple = None
            else:
                self.simple.append((name + b" ", value))


IMMUTABLE = frozenset({"UID", "RFC822.SIZE", "INTERNALDATE", "ENVELOPE", "BODY", "BODYSTRUCTURE"})
"""Simple items whose value never changes for a UID (flags and MODSEQ do)."""


def _immutable(item: c.FetchItem) -> bool:
    # BODY.PEEK[HEADER...] is the only FetchBody a simple plan holds (``_header_literal``).
    return isinstance(item, c.FetchBody) or (
        isinstance(item, c.FetchAttr) and item.name in IMMUTABLE
    )


def _body_render(name: bytes, section: c.Section, partial: tuple[int, int] | None) -> Render:
    async def render(session: Session, m: Message, out: responses.FetchResponse) -> None:
        _add(out, name, await m.body(section, partial))

    return render


def _binary_render(
    name: bytes, part: tuple[int, ...], partial: tuple[int, int] | None, size: bool
) -> Render:
    async def render(session: Session, m: Message, out: responses.FetchResponse) -> None:
        if size:
            out.add_number(name, await m.binary_size(part))
        else:
            _add(out, name, await m.binary(part, partial))

    return render


def _binary_section_render(
    name: bytes, section: c.Section, partial: tuple[int, int] | None, size: bool
) -> Render:
    async def render(session: Session, m: Message, out: responses.FetchResponse) -> None:
        if size:
            data = await m.body(section, None)
            out.add_number(name, data.size if isinstance(data, Stream) else len(data))
        else:
            _add(out, name, await m.body(section, partial))

    return render


@handles(c.Fetch, SELECTED, expunge_ok=False)
async def fetch(session: Session, tag: str, command: c.Fetch) -> Result:
    selected = selected_mailbox(session)
    if command.vanished and "QRESYNC" not in session.enabled:
        raise bad("VANISHED needs ENABLE QRESYNC first (RFC 7162 3.2.6)")
    spans = message_spans(session, command.sequence, command.uid)
    items = command.items
    if command.changedsince is not None and not any(
        isinstance(i, c.FetchAttr) and i.name == "MODSEQ" for i in items
    ):
        items = (*items, c.FetchAttr("MODSEQ"))  # RFC 7162 3.1.4.1: CHANGEDSINCE shows MODSEQ
    plan = Plan(items, command.uid)
    if plan.has_modseq:
        await enable_condstore(session)  # RFC 7162 3.1: FETCH MODSEQ / CHANGEDSINCE
    if command.vanished and command.changedsince is not None:
        # RFC 7162 3.2.6: the UIDs of the set expunged since CHANGEDSINCE, first.
        known = sequence.resolve(command.sequence, max(selected.uidnext - 1, selected.last_uid))
        gone = await vanished_earlier(session, selected, command.changedsince, known)
        if gone:
            await send_vanished(session, gone, earlier=True)
    if command.changedsince is not None and spans:
        spans = await _changed_spans(session, spans, command.changedsince)
    if command.partial is not None:
        spans = partial_spans(spans, command.partial)
    # RFC 4314 4: "r" to read (checked on every command, so that a revocation counts at
    # once); fetching a body sets \Seen only with the "s" right.
    rights = await access.require_selected(session, "r", "read messages")
    mark_seen = plan.sets_seen and not selected.readonly and "s" in rights
    missing = False
    progress = Progress(session, tag, SelectedMailbox.span_count(spans))
    sent = 0
    for first, uids in selected.batches(spans, BATCH):
        await progress.tick(sent)  # RFC 9585
        sent += len(uids)
        if plan.fields == FetchField(0) and not plan.has_modseq and plan.simple is not None:
            # FETCH n UID needs nothing stored: the UIDs are the session's own. A message
            # another session expunged, not yet reported here, still answers (RFC 2180
            # 4.1.1), as imaptest's 'expunge' script expects of FETCH n UID.
            rows = [MessageRow(uid, 0) for uid in uids]
        elif plan.cacheable:
            data, answered = await _render_cached(session, plan, first, uids)
            missing = missing or answered < len(uids)
            await session.send(data)
            continue
        else:
            rows = await session.store.fetch(selected.id, uids, plan.fields)
        missing = missing or len(rows) < len(uids)
        if plan.simple is not None:
            await session.send(_render_simple(session, plan.simple, first, uids, rows))
            continue
        newly_seen: set[int] = set()
        if mark_seen:
            rows, newly_seen = await _mark_seen(session, rows)
        position = 0
        preload = 0
        if FetchField.BLOB in plan.fields:
            preload = WHOLE_BLOB if plan.whole else SMALL_BLOB
        async with aclosing(_with_readers(session.store, rows, preload)) as messages:
            async for row, reader in messages:
                while uids[position] != row.uid:
                    position += 1
                message = Message(session.store, row, reader)
                try:
                    await _send(session, plan, first + position + 1, message, newly_seen)
                finally:
                    await message.close()
    if missing and not command.uid:
        return Result(
            "NO", "some of the requested messages no longer exist", responses.EXPUNGEISSUED
        )
    return Result("OK", "FETCH completed")


async def _send(
    session: Session, plan: Plan, number: int, message: Message, newly_seen: set[int]
) -> None:
    out = responses.FetchResponse(number)
    for render in plan.renders:
        await render(session, message, out)
    row = message.row
    if row.uid in newly_seen:
        # RFC 9051 6.4.5 (FLAGS), RFC 7162 3.1 (MODSEQ once CONDSTORE is on).
        if not plan.has_flags:
            out.add("FLAGS", _flags(session, row))
        if session.condstore and not plan.has_modseq:
            out.add("MODSEQ", _modseq(session, row))
    await session.send_chunks(out.chunks())


def _preload_groups(rows: list[MessageRow], size: int, limit: int) -> list[list[MessageRow]]:
    """The rows in runs whose messages of at most ``limit`` octets (those read ahead)
    come to about ``size`` octets."""
    groups: list[list[MessageRow]] = []
    group: list[MessageRow] = []
    octets = 0
    for row in rows:
        group.append(row)
        if row.size <= limit:
            octets += row.size
        if octets >= size:
            groups.append(group)
            group, octets = [], 0
    if group:
        groups.append(group)
    return groups


async def _with_readers(
    store: Store, rows: list[MessageRow], preload: int
) -> AsyncGenerator[tuple[MessageRow, BlobReader | None], None]:
    """Each row, with its blob's reader when the store read it ahead: the messages of at
    most ``preload`` octets of a group in one query (``Store.open_small_blobs``), the
    next groups' queries running while this group is sent. A row without one opens its
    blob itself."""
    if not preload or not rows:
        for row in rows:
            yield row, None
        return

    def load(group: list[MessageRow]) -> asyncio.Future[dict[str, BlobReader]]:
        small = [row.blob for row in group if row.size <= preload]
        return asyncio.ensure_future(store.open_small_blobs(small))

    octets, depth = (
        (REMOTE_PRELOAD_OCTETS, REMOTE_PRELOAD_DEPTH) if store.remote_reads else (PRELOAD_OCTETS, 1)
    )
    groups = _preload_groups(rows, octets, preload)
    ahead = collections.deque(load(group) for group in groups[:depth])
    try:
        for i, group in enumerate(groups):
            readers = await ahead.popleft()
            if i + depth < len(groups):
                ahead.append(load(groups[i + depth]))
            for row in group:
                yield row, readers.get(row.blob)
    finally:
        for future in ahead:
            if not future.cancel() and not future.cancelled():
                future.exception()  # seen here: a failure after ours is not logged as lost


def _render_simple(
    session: Session,
    simple: list[tuple[bytes, Value]],
    first: int,
    uids: Sequence[int],
    rows: list[MessageRow],
) -> bytes:
    """The FETCH responses of one batch as one bytes object: no per-message awaits or
    builders (the items need nothing but the row), each response one ``%`` of a template
    (``* %d FETCH (UID %s FLAGS %s ...)``)."""
    names = [name.replace(b"%", b"%%") + b"%s" for name, _ in simple]  # names echo the client
    template = b"* %d FETCH (" + b" ".join(names) + b")\r\n"
    values = [value for _, value in simple]
    out = []
    position = 0
    for row in rows:
        while uids[position] != row.uid:
            position += 1
        out.append(template % (first + position + 1, *[value(session, row) for value in values]))
    return b"".join(out)


async def _render_cached(
    session: Session, plan: Plan, first: int, uids: Sequence[int]
) -> tuple[bytes, int]:
    """The FETCH responses of one batch of a cacheable plan, each message's items from
    ``Services.fetch_cache`` when an earlier FETCH rendered them, else loaded and kept; and how
    many messages answered (one expunged meanwhile does not)."""
    assert plan.simple is not None
    selected = selected_mailbox(session)
    key = (selected.id, selected.uidvalidity, plan.signature)
    cache = session.services.fetch_cache
    kept = cache.segment(key)
    found = [None if selected.is_expunged(uid) else kept.get(uid) for uid in uids]
    misses = [uid for uid, items in zip(uids, found, strict=True) if items is None]
    if misses:
        rows = {r.uid: r for r in await session.store.fetch(selected.id, misses, plan.fields)}
        for i, uid in enumerate(uids):
            row = rows.get(uid) if found[i] is None else None
            if row is not None:
                items = b" ".join([name + value(session, row) for name, value in plan.simple])
                cache.put(key, uid, items)
                found[i] = items
    out = [
        b"* %d FETCH (%s)\r\n" % (first + i + 1, items)
        for i, items in enumerate(found)
        if items is not None
    ]
    return b"".join(out), len(out)


async def _changed_spans(session: Session, spans: Spans, changedsince: int) -> Spans:
    """The part of ``spans`` whose MODSEQ is above ``changedsince`` (RFC 7162 3.1.4.1),
    asked of the store in one query rather than by loading every row."""
    selected = selected_mailbox(session)
    ranges = tuple((selected.uids[start], selected.uids[stop - 1]) for start, stop in spans)
    found = await session.store.search(
        selected.id, q.And((q.Uids(ranges), q.ModseqAtLeast(changedsince + 1)))
    )
    # The ranges cover exactly the spans' UIDs: spans are runs of the view.
    return selected.uid_positions(found)


def partial_spans(spans: Spans, partial: tuple[int, int]) -> Spans:
    """RFC 9394 3.1: the ``first:last`` messages of the set in order (``-1:-n`` counting
    from the end); the ends may come in either order."""
    total = SelectedMailbox.span_count(spans)
    first, last = partial
    low, high = min(abs(first), abs(last)), max(abs(first), abs(last))
    if first < 0:
        low, high = total - high + 1, total - low + 1
    low, high = max(low, 1), min(high, total)
    out: Spans = []
    seen = 0
    for start, stop in spans:
        # Positions seen+1 .. seen+(stop-start) of the set are indexes start .. stop-1.
        a = max(low, seen + 1)
        b = min(high, seen + stop - start)
        if a <= b:
            out.append((start + a - seen - 1, start + b - seen))
        seen += stop - start
    return out


async def _mark_seen(session: Session, rows: list[MessageRow]) -> tuple[list[MessageRow], set[int]]:
    """Set \\Seen on the rows that lack it; return the rows as they are now and the UIDs
    whose flags changed (their FETCH response must show FLAGS)."""
    unseen = [row.uid for row in rows if not row.flags & SystemFlag.SEEN]
    if not unseen:
        return rows, set()
    selected = selected_mailbox(session)
    result = await session.store.store_flags(
        selected.id, unseen, FlagMode.ADD, int(SystemFlag.SEEN), ()
    )
    states = {state.uid: state for state in result.change.changed}
    await session.absorb()
    for state in states.values():
        selected.reported(state.uid, state.modseq)
    updated = [
        row
        if row.uid not in states
        else _with_flags(
            row, states[row.uid].flags, states[row.uid].keywords, states[row.uid].modseq
        )
        for row in rows
    ]
    return updated, set(states)


def _with_flags(row: MessageRow, flags: int, keywords: tuple[str, ...], modseq: int) -> MessageRow:
    return replace(row, flags=flags, keywords=keywords, modseq=modseq)
