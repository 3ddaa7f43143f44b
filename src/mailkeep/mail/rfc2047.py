"""RFC 2047 encoded-words in unstructured header text, decoded leniently to ``str``.

    encoded-word = "=?" charset ["*" language] "?" encoding "?" encoded-text "?="

Leniency, as mail readers do it: encoded-words are recognised inside words too; white space
between two encoded-words is dropped (RFC 2047 6.2); adjacent encoded-words in the same
charset are joined before decoding, so a multi-octet character split across two words
survives; bad base64 is repaired or skipped; unknown charsets fall back to UTF-8/latin-1.
Text outside encoded-words is raw UTF-8 (RFC 6532) or, failing that, windows-1252.
"""

from __future__ import annotations

import binascii
import re

from mailkeep.mail.charsets import decode_text, decode_unknown

_ENCODED_WORD = re.compile(rb"=\?([^?\s]*)\?([bBqQ])\?([^?\r\n]*)\?=")
_ONLY_SPACE = re.compile(rb"[ \t\r\n]*")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


def _q_decode(text: bytes) -> bytes:
    text = text.replace(b"_", b" ")
    return _QP_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), text)


def b_decode(text: bytes) -> bytes:
    """Lenient base64: ignore non-alphabet octets, ignore a dangling sextet."""
    text = _NOT_BASE64.sub(b"", text)
    extra = len(text) % 4
    if extra == 1:
        text = text[:-1]
    elif extra:
        text += b"=" * (4 - extra)
    try:
        return binascii.a2b_base64(text)
    except binascii.Error:
        return b""


def decode_words(value: bytes) -> str:
    """Decode a header value (raw octets, possibly folded) to text."""
    if b"\n" in value or b"\r" in value:
        value = value.replace(b"\r", b"").replace(b"\n", b"")
    if b"=?" not in value:
        return decode_unknown(value)
    out: list[str] = []
    pending_charset: bytes | None = None
    pending: bytearray = bytearray()
    pos = 0
    for m in _ENCODED_WORD.finditer(value):
        between = value[pos : m.start()]
        adjacent = pending_charset is not None and _ONLY_SPACE.fullmatch(between) is not None
        charset = m.group(1).split(b"*", 1)[0].lower()
        if not adjacent or charset != pending_charset:
            if pending_charset is not None:
                out.append(decode_text(bytes(pending), pending_charset.decode("latin-1")))
                pending.clear()
            if not adjacent:
                out.append(decode_unknown(between))
            pending_charset = charset
        if m.group(2) in (b"b", b"B"):
            pending += b_decode(m.group(3))
        else:
            pending += _q_decode(m.group(3))
        pos = m.end()
    if pending_charset is not None:
        out.append(decode_text(bytes(pending), pending_charset.decode("latin-1")))
    out.append(decode_unknown(value[pos:]))
    return "".join(out)
