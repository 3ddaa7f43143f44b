"""The MIME part tree of a stored message, with byte offsets into the raw message, and what
FETCH BODY[section] / BINARY[section] need from it.

Every :class:`Part` covers ``raw[header_start:body_end]``: its header is
``raw[header_start:body_start]`` (including the blank line that ends it, when there is one)
and its content ``raw[body_start:body_end]``. The root is the whole message. A multipart's
children are its body parts (RFC 2046 5.1: the CRLF before a boundary line belongs to the
boundary, not to the part). A message/rfc822 part has exactly one child, the embedded
message, whose header starts where the part's content starts; an encoded message/rfc822
(base64/quoted-printable, not allowed by RFC 2046 5.2.1 but seen) has none.

The tree is stored with the message as compact JSON (:func:`encode` / :func:`decode`).
"""

from __future__ import annotations

import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from mailkeep.mail.headers import header_fields

__all__ = ["Part", "decode", "decode_transfer", "encode", "header_fields", "section_range"]

_FORMAT = 1


@dataclass(slots=True)
class Part:
    header_start: int
    body_start: int
    body_end: int
    type: str = "text"
    """Lowercased media type ("text" when there is no usable Content-Type)."""
    subtype: str = "plain"
    params: tuple[tuple[str, str], ...] = ()
    """Content-Type parameters: lowercased names, RFC 2231-decoded values."""
    encoding: str = "7bit"
    """Lowercased Content-Transfer-Encoding ("7bit" when absent)."""
    children: tuple[Part, ...] = field(default=())

    @property
    def is_multipart(self) -> bool:
        return self.type == "multipart"

    @property
    def embedded(self) -> Part | None:
        """The embedded message of a message/rfc822 part, else None."""
        if self.type == "message" and self.children:
            return self.children[0]
        return None

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None

    def walk(self) -> list[Part]:
        """This part and all below it, depth first, in order."""
        out: list[Part] = []
        stack = [self]
        while stack:
            part = stack.pop()
            out.append(part)
            stack.extend(reversed(part.children))
        return out


def _to_list(part: Part) -> list[Any]:
    return [
        part.header_start,
        part.body_start,
        part.body_end,
        part.type,
        part.subtype,
        [list(p) for p in part.params],
        part.encoding,
        [_to_list(c) for c in part.children],
    ]


def _from_list(item: list[Any]) -> Part:
    hs, bs, be, type_, subtype, params, encoding, children = item
    return Part(
        hs,
        bs,
        be,
        type_,
        subtype,
        tuple((k, v) for k, v in params),
        encoding,
        tuple(_from_list(c) for c in children),
    )


def encode(root: Part) -> bytes:
    return json.dumps([_FORMAT, _to_list(root)], separators=(",", ":")).encode("ascii")


def decode(data: bytes) -> Part:
    version, tree = json.loads(data)
    if version != _FORMAT:
        raise ValueError(f"unknown structure format {version!r}")
    return _from_list(tree)


def _enter(message: Part, n: int) -> Part | None:
    """Part ``n`` of a message: its body parts if multipart, else (n=1) its body."""
    if message.is_multipart:
        return message.children[n - 1] if 1 <= n <= len(message.children) else None
    return message if n == 1 else None


def _child(part: Part, n: int) -> Part | None:
    if part.is_multipart:
        return part.children[n - 1] if 1 <= n <= len(part.children) else None
    embedded = part.embedded
    if embedded is not None:
        return _enter(embedded, n)
    return None


def find_part(root: Part, path: tuple[int, ...]) -> Part | None:
    """The part that a non-empty section part number names (RFC 9051 6.4.5)."""
    if not path:
        return None
    part = _enter(root, path[0])
    for n in path[1:]:
        if part is None:
            return None
        part = _child(part, n)
    return part


def section_range(root: Part, path: tuple[int, ...], kind: str) -> tuple[int, int] | None:
    """Octet range of BODY[path.kind] in the raw message, or None if no such section.

    ``kind`` is "" (the part's content; the whole message for an empty path), "HEADER",
    "TEXT" (for an empty path, or a message/rfc822 part: its embedded message's header or
    body) or "MIME" (a part's own MIME header; needs a part number). HEADER.FIELDS[.NOT]
    use the "HEADER" range and then :func:`header_fields`. Part 1 of a non-multipart
    message is its body; part numbers continue into embedded messages.
    """
    kind = kind.upper()
    if not path:
        if kind == "":
            return root.header_start, root.body_end
        if kind == "HEADER":
            return root.header_start, root.body_start
        if kind == "TEXT":
            return root.body_start, root.body_end
        return None
    part = find_part(root, path)
    if part is None:
        return None
    if kind == "":
        return part.body_start, part.body_end
    if kind == "MIME":
        return part.header_start, part.body_start
    embedded = part.embedded
    if embedded is None:
        return None
    if kind == "HEADER":
        return embedded.header_start, embedded.body_start
    if kind == "TEXT":
        return embedded.body_start, embedded.body_end
    return None


_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]+")
_IDENTITY = frozenset({"7bit", "8bit", "binary", ""})


def decode_base64(data: bytes) -> bytes:
    """Lenient base64: line breaks, junk and missing padding tolerated."""
    data = _NOT_BASE64.sub(b"", data)
    extra = len(data) % 4
    if extra == 1:
        data = data[:-1]
    elif extra:
        data += b"=" * (4 - extra)
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:  # pragma: no cover - cleaned input always decodes
        return b""


_QP_TRAILING_SPACE = re.compile(rb"[ \t]+(?=\r?\n|$)")


def decode_quoted_printable(data: bytes) -> bytes:
    """RFC 2045 6.7 rule (3): white space at the end of an encoded line was added in
    transport and is deleted before decoding (``=20`` and space before a soft line
    break ``=`` are kept)."""
    return binascii.a2b_qp(_QP_TRAILING_SPACE.sub(b"", data))


def decode_transfer(data: bytes, encoding: str) -> bytes | None:
    """Undo a Content-Transfer-Encoding (RFC 2045 6) for BINARY[] (RFC 3516).

    None for an encoding we do not know: the IMAP layer answers ``NO [UNKNOWN-CTE]``.
    """
    enc = encoding.strip().lower()
    if enc in _IDENTITY:
        return data
    if enc == "base64":
        return decode_base64(data)
    if enc == "quoted-printable":
        return decode_quoted_printable(data)
    return None
