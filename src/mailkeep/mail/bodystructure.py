"""IMAP BODY and BODYSTRUCTURE (RFC 9051 7.5.2; RFC 3501 7.4.2), rendered from entities.

    body-type-1part = (body-type-basic / body-type-msg / body-type-text) [SP body-ext-1part]
    body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
    body-fields     = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP
                      body-fld-octets
    body-ext-1part  = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc ...]]]
    body-ext-mpart  = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc ...]]]

Output follows Dovecot octet for octet (our reference):

* type, subtype, parameters and encoding as written (case kept), ``"message" "rfc822"``
  for embedded messages; no Content-Type means ``"text" "plain"``;
* text parts without a charset parameter get ``"charset" "us-ascii"`` (RFC 2045 5.2);
* a multipart without parts shows one empty text/plain part (the grammar needs one);
* an encoded message/rfc822 shows an empty envelope and an empty text/plain body;
* a single-part top-level text/plain message whose only parameter is charset=us-ascii and
  which has no other Content-* data is written in canonical lower case (Dovecot serves it
  from its "plain 7-bit" cache flag);
* sizes are octets of the stored message (Dovecot counts a bare LF as CRLF since it sends
  CRLF; we send the stored octets, so for a bare-LF message the numbers differ);
* line counts are LF octets in the content.
"""

from __future__ import annotations

from mailkeep.mail.envelope import EMPTY_ENVELOPE, render_envelope
from mailkeep.mail.imapdata import nstring_nolf, quote
from mailkeep.mail.mime import Entity
from mailkeep.mail.mimeparams import ContentInfo, Params

_DEFAULT_CHARSET = b'"charset" "us-ascii"'
_EMPTY_TEXT = b'("text" "plain" (' + _DEFAULT_CHARSET + b') NIL NIL "7bit" 0 0'
_EMPTY_EXT = b" NIL NIL NIL NIL"


def _params(params: Params, text: bool) -> bytes:
    items: list[bytes] = []
    has_charset = False
    for key, value in params:
        if key.lower() == b"charset":
            has_charset = True
        items.append(quote(key) + b" " + quote(value))
    if text and not has_charset:
        items.append(_DEFAULT_CHARSET)
    if not items:
        return b"NIL"
    return b"(" + b" ".join(items) + b")"


def _common_ext(info: ContentInfo) -> bytes:
    """body-fld-dsp SP body-fld-lang SP body-fld-loc"""
    out = [b" "]
    if info.disposition is None:
        out.append(b"NIL")
    else:
        kind, params = info.disposition
        out += [b"(", quote(kind), b" ", _params(params, False), b")"]
    out.append(b" ")
    if not info.language:
        out.append(b"NIL")
    else:
        out += [b"(", b" ".join(quote(tag) for tag in info.language), b")"]
    out.append(b" ")
    out.append(nstring_nolf(info.location))
    return b"".join(out)


def _is_plain_7bit(entity: Entity) -> bool:
    info = entity.content
    ct = info.content_type
    if ct.type is not None and ct.type.lower() != b"text":
        return False
    if ct.subtype is not None and ct.subtype.lower() != b"plain":
        return False
    if ct.params and (
        len(ct.params) != 1
        or ct.params[0][0].lower() != b"charset"
        or ct.params[0][1].lower() != b"us-ascii"
    ):
        return False
    if info.encoding is not None and info.encoding.lower() != b"7bit":
        return False
    return (
        info.id is None
        and info.description is None
        and info.md5 is None
        and info.disposition is None
        and not info.language
        and info.location is None
    )


def _write(entity: Entity, extended: bool, out: list[bytes]) -> None:
    info = entity.content
    ct = info.content_type
    if info.is_multipart:
        if entity.children:
            for child in entity.children:
                out.append(b"(")
                _write(child, extended, out)
                out.append(b")")
        else:
            out.append(_EMPTY_TEXT + (_EMPTY_EXT if extended else b"") + b")")
        out.append(b" ")
        out.append(quote(ct.subtype or b""))
        if extended:
            out.append(b" ")
            out.append(_params(ct.params, False))
            out.append(_common_ext(info))
        return

    message = info.is_message
    text = not message and info.is_text
    if message:
        out.append(b'"message" "rfc822"')
    elif ct.type is None:
        out.append(b'"text" "plain"')
    else:
        out.append(quote(ct.type) + b" " + quote(ct.subtype or b""))
    out.append(b" ")
    out.append(_params(ct.params, text))
    out.append(b" ")
    out.append(nstring_nolf(info.id))
    out.append(b" ")
    out.append(nstring_nolf(info.description))
    out.append(b" ")
    out.append(b'"7bit"' if info.encoding is None else quote(info.encoding))
    part = entity.part
    out.append(b" %d" % (part.body_end - part.body_start))
    if text:
        out.append(b" %d" % entity.lines)
    elif message:
        if entity.children:
            embedded = entity.children[0]
            out.append(b" ")
            out.append(render_envelope(embedded.header))
            out.append(b" (")
            _write(embedded, extended, out)
            out.append(b")")
        else:
            out.append(b" " + EMPTY_ENVELOPE + b" " + _EMPTY_TEXT)
            out.append((_EMPTY_EXT if extended else b"") + b")")
        out.append(b" %d" % entity.lines)
    if extended:
        out.append(b" ")
        out.append(nstring_nolf(info.md5))
        out.append(_common_ext(info))


def render_body(root: Entity, *, extended: bool) -> bytes:
    """BODYSTRUCTURE (``extended=True``) or BODY of the message whose root entity is given."""
    if not root.children and not root.content.is_multipart and _is_plain_7bit(root):
        size = root.part.body_end - root.part.body_start
        plain = b'("text" "plain" (%s) NIL NIL "7bit" %d %d' % (
            _DEFAULT_CHARSET,
            size,
            root.lines,
        )
        return plain + (_EMPTY_EXT if extended else b"") + b")"
    out: list[bytes] = [b"("]
    _write(root, extended, out)
    out.append(b")")
    return b"".join(out)
