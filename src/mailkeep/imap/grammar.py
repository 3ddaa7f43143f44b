"""IMAP lexical grammar: character classes, token regexes, and string rendering.

Everything here is bytes-level and stateless, shared by the parser (client → server) and
the response formatters (server → client). The ABNF is quoted from RFC 9051 section 9
(which RFC 3501 section 9 matches for these rules)::

    ATOM-CHAR       = <any CHAR except atom-specials>
    atom-specials   = "(" / ")" / "{" / SP / CTL / list-wildcards /
                      quoted-specials / resp-specials
    list-wildcards  = "%" / "*"
    quoted-specials = DQUOTE / "\\"
    resp-specials   = "]"
    ASTRING-CHAR    = ATOM-CHAR / resp-specials
    tag             = 1*<any ASTRING-CHAR except "+">
    quoted          = DQUOTE *QUOTED-CHAR DQUOTE
    QUOTED-CHAR     = <any TEXT-CHAR except quoted-specials> /
                      "\\" quoted-specials / UTF8-2 / UTF8-3 / UTF8-4
    literal         = "{" number64 ["+"] "}" CRLF *CHAR8
    literal8        = "~{" number64 "}" CRLF *OCTET
    number          = 1*DIGIT        ; unsigned 32-bit
    number64        = 1*DIGIT        ; unsigned 63-bit
"""

from __future__ import annotations

import re

_SPECIALS = b'(){ %*"\\]'
ATOM_CHARS: bytes = bytes(c for c in range(0x21, 0x7F) if c not in _SPECIALS)
"""Every ATOM-CHAR (printable ASCII less the atom-specials)."""
ASTRING_CHARS: bytes = ATOM_CHARS + b"]"
TAG_CHARS: bytes = bytes(c for c in ASTRING_CHARS if c != ord("+"))
LIST_CHARS: bytes = ASTRING_CHARS + b"%*"
"""list-char = ATOM-CHAR / list-wildcards / resp-specials (RFC 9051 9)."""


def _cls(chars: bytes) -> bytes:
    return b"[" + b"".join(re.escape(bytes([c])) for c in chars) + b"]"


ATOM = re.compile(_cls(ATOM_CHARS) + b"+")
ASTRING_ATOM = re.compile(_cls(ASTRING_CHARS) + b"+")
TAG = re.compile(_cls(TAG_CHARS) + b"+")
LIST_MAILBOX_ATOM = re.compile(_cls(LIST_CHARS) + b"+")
QUOTED = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
"""A whole quoted string; 8-bit octets are accepted (UTF8-2..4 in IMAP4rev2, and real
IMAP4rev1 clients send them in passwords), CR, LF and NUL are not."""
QUOTED_ESCAPE = re.compile(rb'\\(["\\])')
LITERAL_TAIL = re.compile(rb"(~?)\{([0-9]{1,20})([+-]?)\}\Z")
"""A literal announcement ending a line: ``{n}``, ``{n+}`` (LITERAL+/-) or ``~{n}``
(literal8). ``{n-}`` is not in any RFC; it is matched so that it can be refused clearly."""
NUMBER = re.compile(rb"[0-9]+")
SP = 0x20

MAX_NUMBER = 0xFFFFFFFF
"""number: unsigned 32-bit."""
MAX_NUMBER64 = 0x7FFFFFFFFFFFFFFF
"""number64: unsigned 63-bit (RFC 9051 9; mod-sequence-value of RFC 7162)."""

ASTRING_CHAR_SET = frozenset(ASTRING_CHARS)
_QUOTABLE = re.compile(rb"[^\r\n\x00]*\Z")
_ASCII_QUOTABLE = re.compile(rb"[\x01-\x09\x0b\x0c\x0e-\x7f]*\Z")
_NEEDS_ESCAPE = re.compile(rb'(["\\])')


def unescape_quoted(inner: bytes) -> bytes:
    """The value of a quoted string given the text between its quotes."""
    if b"\\" not in inner:
        return inner
    return QUOTED_ESCAPE.sub(rb"\1", inner)


def is_atom(value: bytes) -> bool:
    return bool(value) and ATOM.fullmatch(value) is not None


def quote(value: bytes) -> bytes:
    """``value`` as a quoted string, always; the caller makes sure it has no CR, LF or
    NUL (``mail.imapdata.quote`` chooses between quoted and literal)."""
    return b'"' + _NEEDS_ESCAPE.sub(rb"\\\1", value) + b'"'


def literal(value: bytes, *, binary: bool = False) -> bytes:
    """``value`` as a literal (``~{n}`` literal8 when ``binary``, RFC 3516)."""
    return b"%s{%d}\r\n%s" % (b"~" if binary else b"", len(value), value)


def parse_number(digits: bytes, limit: int = MAX_NUMBER) -> int | None:
    """A decimal number within ``limit``, or None if it overflows (RFC 9051 9)."""
    if len(digits) > 20:
        return None
    value = int(digits)
    return value if value <= limit else None
