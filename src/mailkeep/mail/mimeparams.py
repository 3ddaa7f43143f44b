"""MIME header values: Content-Type, Content-Transfer-Encoding, Content-Disposition,
Content-Language and their parameters (RFC 2045 5.1, 6.1; RFC 2183; RFC 3282; RFC 2231).

Two views of the parameters are produced:

* ``raw_params`` as BODYSTRUCTURE shows them, the way Dovecot does: names and values as
  written; RFC 2231 continuations (``name*0``, ``name*1*``) merged into one ``name`` or
  ``name*`` parameter (still percent-encoded), listed after the ordinary parameters, sorted
  by name; a broken parameter is skipped.
* ``decode_params`` for our own use (charset, filename search): lowercased names, RFC 2231
  charset/percent decoding applied, values as ``str``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from mailkeep.mail.charsets import decode_text
from mailkeep.mail.lexer import Lexer

Params = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class ContentType:
    type: bytes | None
    """Main type as written; None when there is no Content-Type at all."""
    subtype: bytes | None
    params: Params


def _parse_params(lex: Lexer) -> Params:
    """``*(";" parameter)`` with RFC 2231 continuation merging."""
    plain: list[tuple[bytes, bytes]] = []
    continued: list[tuple[bytes, int, bool, bytes]] = []
    while True:
        ret, key, value = _parse_param(lex)
        if ret == 0:
            break
        if ret < 0:
            if lex.at_end():
                break
            lex.pos += 1
            continue
        star = key.find(b"*")
        if star < 0:
            plain.append((key, value))
            continue
        rest = key[star + 1 :]
        if not rest:  # "name*": one extended (charset'language'value) parameter
            index, extended = 0, True
        else:
            digits = len(rest) - len(rest.lstrip(b"0123456789"))
            index = int(rest[:digits]) if digits else 0
            rest = rest[digits:]
            extended = rest.startswith(b"*")
            if extended:
                rest = rest[1:]
        if rest:
            plain.append((key, value))
        else:
            continued.append((key[:star], index, extended, value))
    if not continued:
        return tuple(plain)
    continued.sort(key=lambda c: (c[0], c[1]))
    i = 0
    while i < len(continued):
        name = continued[i][0]
        j = i
        while j < len(continued) and continued[j][0].lower() == name.lower():
            j += 1
        group = continued[i:j]
        complete = all(c[1] == n for n, c in enumerate(group))
        any_extended = any(c[2] for c in group)
        if not complete:
            for key, index, extended, value in group:
                suffix = b"*%d*" % index if extended else b"*%d" % index
                plain.append((key + suffix, value))
        else:
            merged = bytearray(b"''" if any_extended and not group[0][2] else b"")
            for _key, _index, extended, value in group:
                if any_extended and not extended:
                    merged += value.replace(b"%", b"%25")
                else:
                    merged += value
            plain.append((name + b"*" if any_extended else name, bytes(merged)))
        i = j
    return tuple(plain)


def _parse_param(lex: Lexer) -> tuple[int, bytes, bytes]:
    if lex.at_end():
        return 0, b"", b""
    if lex.peek() != 0x3B:  # ;
        return -1, b"", b""
    lex.pos += 1
    if lex.skip_lwsp() <= 0:
        return -1, b"", b""
    key = bytearray()
    if lex.mime_token(key) <= 0:
        return -1, b"", b""
    if lex.peek() != 0x3D:  # =
        return -1, b"", b""
    lex.pos += 1
    value = bytearray()
    ret = lex.skip_lwsp()
    if ret <= 0:
        pass  # no value: an empty one
    elif lex.peek() == 0x22:
        ret = lex.quoted_string(value)
    elif lex.peek() == 0x3D:
        # name==?utf-8?b?...?= (broken, but common): take up to ; or white space
        start = lex.pos
        while not lex.at_end() and lex.data[lex.pos] not in b"; \t\r\n":
            lex.pos += 1
        value += lex.data[start : lex.pos]
    else:
        ret = lex.mime_token(value)
    return (-1 if ret < 0 else 1), bytes(key), bytes(value)


def parse_content_type(value: bytes | None) -> ContentType:
    """``type "/" subtype *(";" parameter)``; parameters are skipped when the type is broken."""
    if value is None:
        return ContentType(None, None, ())
    lex = Lexer(value)
    lex.skip_lwsp()
    main = bytearray()
    ok = lex.skip_lwsp() > 0 and lex.mime_token(main) > 0 and lex.peek() == 0x2F
    if not ok:
        return ContentType(bytes(main), None, ())
    lex.pos += 1
    sub = bytearray()
    if lex.skip_lwsp() <= 0:
        return ContentType(bytes(main), b"", ())
    if lex.mime_token(sub) < 0:
        return ContentType(bytes(main), bytes(sub), ())
    return ContentType(bytes(main), bytes(sub), _parse_params(lex))


def parse_transfer_encoding(value: bytes | None) -> bytes | None:
    """The encoding token as written, None when absent or not a single token."""
    if value is None:
        return None
    lex = Lexer(value)
    lex.skip_lwsp()
    token = bytearray()
    if lex.mime_token(token) >= 0 and lex.skip_lwsp() == 0 and token:
        return bytes(token)
    return None


def parse_disposition(value: bytes | None) -> tuple[bytes, Params] | None:
    if value is None:
        return None
    lex = Lexer(value)
    lex.skip_lwsp()
    token = bytearray()
    if lex.mime_token(token) < 0:
        return None
    return bytes(token), _parse_params(lex)


def parse_language(value: bytes | None) -> tuple[bytes, ...]:
    """``1#Language-tag``; stops at the first thing that is not an atom."""
    if value is None:
        return ()
    lex = Lexer(value)
    lex.skip_lwsp()
    tags: list[bytes] = []
    while True:
        tag = bytearray()
        if lex.atom(tag) < 0:
            break
        tags.append(bytes(tag))
        if lex.peek() != 0x2C:  # ,
            break
        lex.pos += 1
        lex.skip_lwsp()
    return tuple(tags)


def decode_params(params: Params) -> tuple[tuple[str, str], ...]:
    """Lowercased names without the RFC 2231 ``*``; extended values charset-decoded."""
    out: list[tuple[str, str]] = []
    for key, value in params:
        name = key.decode("ascii", "replace").lower()
        if name.endswith("*") and name.count("*") == 1:
            name = name[:-1]
            parts = value.split(b"'", 2)
            if len(parts) == 3:
                charset, _lang, encoded = parts
                text = decode_text(unquote_to_bytes(encoded), charset.decode("ascii", "replace"))
            else:
                text = decode_text(unquote_to_bytes(value), "us-ascii")
        else:
            text = decode_text(value, "utf-8")
        out.append((name, text))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ContentInfo:
    """The Content-* fields of one entity, parsed but as written (BODYSTRUCTURE shows them
    so). The first occurrence of each field counts."""

    content_type: ContentType
    encoding: bytes | None
    id: bytes | None
    description: bytes | None
    md5: bytes | None
    disposition: tuple[bytes, Params] | None
    language: tuple[bytes, ...]
    location: bytes | None

    @property
    def is_multipart(self) -> bool:
        return (self.content_type.type or b"").lower() == b"multipart"

    @property
    def is_message(self) -> bool:
        ct = self.content_type
        return (ct.type or b"").lower() == b"message" and (ct.subtype or b"").lower() == b"rfc822"

    @property
    def is_text(self) -> bool:
        ct = self.content_type
        return ct.type is None or ct.type.lower() == b"text"

    def param(self, name: bytes) -> bytes | None:
        for key, value in self.content_type.params:
            if key.lower() == name:
                return value
        return None


def content_info(get: Callable[[bytes], bytes | None]) -> ContentInfo:
    """Parse the Content-* fields found by ``get(lowercase name)``."""
    return ContentInfo(
        content_type=parse_content_type(get(b"content-type")),
        encoding=parse_transfer_encoding(get(b"content-transfer-encoding")),
        id=get(b"content-id"),
        description=get(b"content-description"),
        md5=get(b"content-md5"),
        disposition=parse_disposition(get(b"content-disposition")),
        language=parse_language(get(b"content-language")),
        location=get(b"content-location"),
    )
