"""IMAP string and nstring rendering (RFC 9051 4.3, 4.5), shared by ENVELOPE/BODYSTRUCTURE
and the IMAP response formatter.

    string          = quoted / literal
    quoted          = DQUOTE *QUOTED-CHAR DQUOTE
    QUOTED-CHAR     = <any TEXT-CHAR except quoted-specials> / "\\" quoted-specials
    literal         = "{" number64 ["+"] "}" CRLF *CHAR8
    nstring         = string / nil

Choice between quoted and literal follows Dovecot (``imap_append_nstring``): a value is
sent as a literal when it holds CR, LF, NUL or 8-bit octets (not allowed in a quoted
string), or more than four characters that would need escaping (a literal is then easier
to read and no longer); otherwise it is quoted, with ``"`` and ``\\`` escaped.
"""

from __future__ import annotations

import re

# Octets that force a literal: NUL, CR, LF and anything 8-bit.
_NEEDS_LITERAL = re.compile(rb"[\x00\r\n\x80-\xff]")
_MAX_ESCAPES = 4


def _as_bytes(value: bytes | str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return value


def literal(value: bytes | str) -> bytes:
    """``{n}\\r\\n`` followed by the octets: always safe, whatever the content."""
    data = _as_bytes(value)
    return b"{%d}\r\n%s" % (len(data), data)


def quote(value: bytes | str) -> bytes:
    """Render ``value`` as an IMAP string: quoted when that is possible and readable,
    else a literal. ``str`` values are encoded as UTF-8."""
    data = _as_bytes(value)
    if _NEEDS_LITERAL.search(data) is not None:
        return literal(data)
    escapes = data.count(b'"') + data.count(b"\\")
    if escapes == 0:
        return b'"' + data + b'"'
    if escapes > _MAX_ESCAPES:
        return literal(data)
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def nstring(value: bytes | str | None) -> bytes:
    """``NIL`` for None, else :func:`quote`."""
    if value is None:
        return b"NIL"
    return quote(value)


_LINE_BREAK = re.compile(rb"\r?\n|\r")
_BREAK_BEFORE_TEXT = re.compile(rb"[\r\n]+(?=[^ \t\r\n])")
_LWSP_RUN = re.compile(rb"[ \t\r\n]+")
_NEEDS_HUMAN_FIX = re.compile(rb'[\x00\t\r\n"\\\x80-\xff]|  |^ | $')


def nstring_nolf(value: bytes | str | None) -> bytes:
    """Like :func:`nstring` but with CR and LF removed first, as Dovecot does for header
    values in ENVELOPE and BODYSTRUCTURE: a fold's white space is kept, and a line break
    directly followed by text becomes one space."""
    if value is None:
        return b"NIL"
    data = _as_bytes(value)
    if b"\r" in data or b"\n" in data:
        data = _BREAK_BEFORE_TEXT.sub(b" ", data).replace(b"\r", b"").replace(b"\n", b"")
    return quote(data)


def string_for_humans(value: bytes | str) -> bytes:
    """A header text meant to be read (ENVELOPE subject, display names), as Dovecot writes
    it: runs of white space and line breaks become one space, leading/trailing white space
    is dropped, NUL becomes 0x80; sent quoted when nothing needed changing, else as a
    literal (also when it has 8-bit octets or quoted-specials)."""
    data = _as_bytes(value)
    if _NEEDS_HUMAN_FIX.search(data) is None:
        return b'"' + data + b'"'
    cleaned = _LWSP_RUN.sub(b" ", data).strip(b" ").replace(b"\x00", b"\x80")
    if not cleaned:
        return b'""'
    return literal(cleaned)
