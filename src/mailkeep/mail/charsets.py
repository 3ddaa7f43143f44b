"""Charset decoding for search text: never raises, always returns ``str``.

Declared charsets are looked up among Python's text codecs (with the usual web/mail aliases:
ISO-8859-1 and US-ASCII are decoded as windows-1252/UTF-8, as real-world senders mean them,
cf. the WHATWG Encoding Standard). Unknown or missing charsets: UTF-8 when the octets are valid
UTF-8, else windows-1252 (which, like latin-1, accepts every octet).
"""

from __future__ import annotations

import codecs
from functools import lru_cache

# Codecs that are not charsets a mail could legitimately declare.
_REFUSED = frozenset(
    {"unicode_escape", "raw_unicode_escape", "idna", "punycode", "undefined", "mbcs", "oem"}
)
# Names that senders use loosely: decode with the superset they almost always mean.
_SUPERSETS = {"latin-1": "cp1252", "iso8859-1": "cp1252", "gb2312": "gb18030"}


@lru_cache(maxsize=256)
def codec_for(charset: str) -> str | None:
    """The Python codec name for a MIME charset, or None if unknown/unsuitable."""
    name = charset.strip().strip('"').lower()
    if not name or len(name) > 40:
        return None
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED:
        return None
    if info.name == "ascii":  # 8-bit text labelled us-ascii: treat as undeclared
        return None
    return _SUPERSETS.get(info.name, info.name)


def decode_unknown(data: bytes) -> str:
    """UTF-8 if valid, else windows-1252 (undefined octets map through latin-1)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def decode_text(data: bytes, charset: str | None) -> str:
    """Decode ``data`` declared as ``charset``; errors become U+FFFD, never an exception."""
    codec = codec_for(charset) if charset else None
    if codec is None:
        return decode_unknown(data)
    try:
        return data.decode(codec, "replace")
    except Exception:  # a codec that fails even with errors="replace"
        return decode_unknown(data)
