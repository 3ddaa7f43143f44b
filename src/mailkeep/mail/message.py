"""Parse a message once, at delivery or APPEND, into everything the protocols need later.

The result is stored beside the raw bytes (which are never changed), so that FETCH
ENVELOPE/BODYSTRUCTURE, header fetches, POP3 TOP n 0, SEARCH, SORT and THREAD are served
from stored data without re-parsing. Parsing is lenient: malformed mail is never rejected;
problems are recorded in ``defects``.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from mailkeep.mail.address import display_key, search_text, sort_key
from mailkeep.mail.bodystructure import render_body
from mailkeep.mail.envelope import EMPTY_ENVELOPE, envelope_addresses, render_envelope
from mailkeep.mail.headers import Header, unfold
from mailkeep.mail.mime import parse_mime
from mailkeep.mail.rfc2047 import decode_words
from mailkeep.mail.structure import Part, encode
from mailkeep.mail.subject import base_subject
from mailkeep.mail.text import extract
from mailkeep.mail.words import fold_text


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    size: int
    """Octets of the raw message (RFC822.SIZE)."""
    header: bytes
    """The raw top-level header block, including the blank line that ends it (if any)."""
    envelope: bytes
    """The IMAP ENVELOPE, rendered as an IMAP parenthesised list (RFC 9051 7.5.2)."""
    body: bytes
    """The IMAP BODY (BODYSTRUCTURE without extension data), rendered."""
    bodystructure: bytes
    """The IMAP BODYSTRUCTURE with extension data, rendered."""
    structure: bytes
    """The MIME part tree with byte offsets, encoded by ``mail.structure.encode``."""
    sent_date: datetime | None
    """The Date: header as an aware datetime, None when missing or unparseable."""
    subject: str
    """Subject, RFC 2047-decoded and unfolded."""
    base_subject: str
    """RFC 5256 section 2.1 base subject, for SORT SUBJECT and THREAD."""
    from_: str
    to: str
    cc: str
    bcc: str
    """Address headers decoded for searching: ``Name <addr>, Name2 <addr2>``."""
    sort_from: str
    sort_to: str
    sort_cc: str
    """RFC 5256 sort keys: the addr-mailbox of the first address, lowercased."""
    display_from: str
    display_to: str
    """RFC 5957 DISPLAYFROM/DISPLAYTO sort keys: display name or else the address."""
    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    """Message-ID, In-Reply-To and References msg-ids (with angle brackets)."""
    header_text: str
    """All header fields, unfolded and decoded, one ``Name: value`` per line (TEXT search)."""
    body_text: str
    """Decoded text of the text/* parts (HTML reduced to text), for BODY/TEXT search."""
    preview: str
    """RFC 8970 preview: at most 200 characters of the first text, whitespace collapsed."""
    defects: tuple[str, ...] = ()
    """What was wrong with the message, for logs and `mailkeep check`; never fatal."""
    words: tuple[str, ...] | None = None
    """The distinct whole words of the header and body text (``words.fold_text``), sorted, when
    the parse was asked for them (for a PostgreSQL store) and they are few enough to
    index; else None, and a store that wants them finds them itself."""


INLINE_PARSE_LIMIT = 256 * 1024
"""Messages up to this size parse in about a millisecond (the bench corpus averages 24 KB):
callers on an event loop parse them in place, as a hop to a worker thread costs about as
much and the GIL gives no parallelism; larger ones go to a thread so that one big message
does not stall the other sessions."""

_MSG_ID = re.compile(rb"<[^<>]*>")
_DATE_ERRORS = (TypeError, ValueError, OverflowError, IndexError)


def to_crlf(raw: bytes) -> bytes:
    """Turn bare LF line endings into CRLF (RFC 5322 2.1 wants CRLF; IMAP clients expect
    it). For the store to apply before :func:`parse` if it normalises on delivery."""
    if raw.count(b"\n") == raw.count(b"\r\n"):
        return raw
    return re.sub(rb"(?<!\r)\n", b"\r\n", raw)


def _text(value: bytes | None) -> str:
    return "" if value is None else decode_words(value).strip()


def _msg_ids(value: bytes | None) -> list[str]:
    if value is None:
        return []
    return [m.decode("utf-8", "replace") for m in _MSG_ID.findall(unfold(value))]


def _first_msg_id(value: bytes | None) -> str:
    """The first ``<msg-id>``; a value without angle brackets is taken as it stands."""
    ids = _msg_ids(value)
    if ids:
        return ids[0]
    return "" if value is None else unfold(value).strip().decode("utf-8", "replace")


def parse_date(value: bytes | None) -> datetime | None:
    """RFC 5322 3.3 date-time as an aware datetime (UTC when the zone is -0000/missing)."""
    if value is None:
        return None
    text = unfold(value).decode("latin-1").strip()
    if not text or len(text) > 200:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except _DATE_ERRORS:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _header_text(header: Header) -> str:
    return "\n".join(
        f"{field.name.decode('utf-8', 'replace')}: {decode_words(field.value).strip()}"
        for field in header.fields
    )


def _raw_defects(raw: bytes) -> list[str]:
    defects = []
    if not raw:
        defects.append("empty message")
    if b"\x00" in raw:
        defects.append("NUL octets")
    if raw.count(b"\n") != raw.count(b"\r\n"):
        defects.append("bare LF line endings")
    return defects


def parse(
    raw: bytes, *, max_parts: int = 10_000, max_depth: int = 50, words: bool = False
) -> ParsedMessage:
    """Parse a message once, for everything FETCH/SEARCH/SORT/THREAD/POP3 need later.

    Never raises and never rejects: malformed input gives a best-effort result, with what
    was wrong in ``defects``. Beyond ``max_parts`` MIME parts or ``max_depth`` nested
    containers (capped at 200), the rest is kept as an opaque part. ``words``: find the
    text's whole words too (``ParsedMessage.words``).
    """
    try:
        return _parse(raw, max_parts, max_depth, words)
    except Exception as exc:  # a bug of ours must not lose mail: store it unparsed
        return unparsed(raw, f"internal parser error: {type(exc).__name__}")


def _parse(raw: bytes, max_parts: int, max_depth: int, words: bool) -> ParsedMessage:
    tree = parse_mime(raw, max_parts=max_parts, max_depth=max_depth)
    root = tree.root
    header = root.header
    get = header.get
    subject = _text(get(b"subject"))
    addresses = envelope_addresses(header)
    from_, to, cc = addresses[b"from"], addresses[b"to"], addresses[b"cc"]
    body_text, preview = extract(raw, root)
    header_text = _header_text(header)
    found = fold_text(header_text, body_text)[2] if words else None
    return ParsedMessage(
        size=len(raw),
        header=raw[: root.part.body_start],
        envelope=render_envelope(header, addresses),
        body=render_body(root, extended=False),
        bodystructure=render_body(root, extended=True),
        structure=encode(root.part),
        sent_date=parse_date(get(b"date")),
        subject=subject,
        base_subject=base_subject(subject),
        from_=search_text(from_),
        to=search_text(to),
        cc=search_text(cc),
        bcc=search_text(addresses[b"bcc"]),
        sort_from=sort_key(from_),
        sort_to=sort_key(to),
        sort_cc=sort_key(cc),
        display_from=display_key(from_),
        display_to=display_key(to),
        message_id=_first_msg_id(get(b"message-id")),
        in_reply_to=_first_msg_id(get(b"in-reply-to")),
        references=tuple(_msg_ids(get(b"references"))),
        header_text=header_text,
        body_text=body_text,
        preview=preview,
        defects=tuple(_raw_defects(raw) + list(tree.defects)),
        words=None if found is None else tuple(sorted(found)),
    )


def unparsed(raw: bytes, defect: str) -> ParsedMessage:
    """The fallback: the whole message as one opaque text/plain body."""
    root = Part(0, 0, len(raw))
    return ParsedMessage(
        size=len(raw),
        header=b"",
        envelope=EMPTY_ENVELOPE,
        body=b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d %d)'
        % (len(raw), raw.count(b"\n")),
        bodystructure=b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d %d'
        b" NIL NIL NIL NIL)" % (len(raw), raw.count(b"\n")),
        structure=encode(root),
        sent_date=None,
        subject="",
        base_subject="",
        from_="",
        to="",
        cc="",
        bcc="",
        sort_from="",
        sort_to="",
        sort_cc="",
        display_from="",
        display_to="",
        message_id="",
        in_reply_to="",
        references=(),
        header_text="",
        body_text="",
        preview="",
        defects=(defect,),
    )
