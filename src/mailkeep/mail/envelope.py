"""IMAP ENVELOPE (RFC 9051 7.5.2; RFC 3501 7.4.2).

    envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP
               env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"
    address  = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"

Values are the raw header text (no RFC 2047 decoding, as the RFC requires). Sender and
Reply-To default to From when absent (RFC 9051 7.5.2). Rendering follows Dovecot: date,
In-Reply-To and Message-ID unfolded; subject and display names "for humans" (white space
collapsed); an empty address list is NIL.
"""

from __future__ import annotations

from mailkeep.mail.address import Address, parse_addresses
from mailkeep.mail.headers import Header
from mailkeep.mail.imapdata import nstring, nstring_nolf, string_for_humans

EMPTY_ENVELOPE = b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def render_addresses(addresses: list[Address]) -> bytes:
    if not addresses:
        return b"NIL"
    out = [b"("]
    for a in addresses:
        out.append(b"(")
        out.append(b"NIL" if a.name is None else string_for_humans(a.name))
        out.append(b" ")
        out.append(nstring(a.route))
        out.append(b" ")
        out.append(nstring(a.mailbox))
        out.append(b" ")
        out.append(nstring(a.domain))
        out.append(b")")
    out.append(b")")
    return b"".join(out)


ADDRESS_FIELDS = (b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc")


def envelope_addresses(header: Header) -> dict[bytes, list[Address]]:
    """The address fields of ENVELOPE, parsed (with ENVELOPE's placeholders)."""
    return {name: parse_addresses(header.get(name)) for name in ADDRESS_FIELDS}


def render_envelope(header: Header, addresses: dict[bytes, list[Address]] | None = None) -> bytes:
    """ENVELOPE of a header; ``addresses`` saves re-parsing when the caller has them."""
    get = header.get
    if addresses is None:
        addresses = envelope_addresses(header)
    subject = get(b"subject")
    from_ = render_addresses(addresses[b"from"])
    # An absent or empty Sender:/Reply-To: shows From.
    sender = render_addresses(addresses[b"sender"])
    reply_to = render_addresses(addresses[b"reply-to"])
    parts = [
        nstring_nolf(get(b"date")),
        b"NIL" if subject is None else string_for_humans(subject),
        from_,
        from_ if sender == b"NIL" else sender,
        from_ if reply_to == b"NIL" else reply_to,
        render_addresses(addresses[b"to"]),
        render_addresses(addresses[b"cc"]),
        render_addresses(addresses[b"bcc"]),
        nstring_nolf(get(b"in-reply-to")),
        nstring_nolf(get(b"message-id")),
    ]
    return b"(" + b" ".join(parts) + b")"
