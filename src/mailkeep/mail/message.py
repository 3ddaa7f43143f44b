"""Parse a message once, at delivery or APPEND, into everything the protocols need later.

The result is stored beside the raw bytes (which are never changed), so that FETCH
ENVELOPE/BODYSTRUCTURE, header fetches, POP3 TOP n 0, SEARCH, SORT and THREAD are served
from stored data without re-parsing. Parsing is lenient: malformed mail is never rejected;
problems are recorded in ``defects``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
