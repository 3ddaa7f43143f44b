"""Header blocks (RFC 5322 2.2, 3.2.2): fields, folding, HEADER.FIELDS selection.

A header block is a sequence of lines ending at the first empty line. A line starting with
SP or HTAB continues the previous field (folding). Lines end at LF; a CR before it is part of
the line ending; a CR elsewhere is data. Lines without a colon are not fields: they are
skipped (and reported by the caller as a defect), as Dovecot does.

Field values are kept raw (no RFC 2047 decoding, folding line breaks kept as ``\\n``) because
ENVELOPE and BODYSTRUCTURE show them as written. NUL octets, which no IMAP string may carry,
are replaced by U+FFFD (UTF-8), as Dovecot does.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_NUL_REPLACEMENT = "\ufffd".encode()


@dataclass(frozen=True, slots=True)
class Field:
    name: bytes
    """The field name as written (trailing white space before the colon removed)."""
    value: bytes
    """Raw value: leading white space removed, continuation lines joined with ``\\n``."""


class Header:
    """The fields of one header block, in order, with case-insensitive lookup."""

    __slots__ = ("_first", "fields", "junk_lines")

    def __init__(self, fields: list[Field], junk_lines: int = 0) -> None:
        self.fields = fields
        self.junk_lines = junk_lines
        """Lines that were neither fields nor continuations."""
        self._first: dict[bytes, bytes] = {}
        for f in fields:
            self._first.setdefault(f.name.lower(), f.value)

    def get(self, name: bytes) -> bytes | None:
        """Value of the first field called ``name`` (lowercase), or None."""
        return self._first.get(name)

    def get_all(self, name: bytes) -> list[bytes]:
        return [f.value for f in self.fields if f.name.lower() == name]

    def __contains__(self, name: bytes) -> bool:
        return name in self._first


def _strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


def parse_header(block: bytes) -> Header:
    """Split a header block (possibly ending with its blank line) into fields."""
    if b"\x00" in block:
        block = block.replace(b"\x00", _NUL_REPLACEMENT)
    fields: list[Field] = []
    junk = 0
    name: bytes | None = None
    value: list[bytes] = []
    for raw_line in block.split(b"\n"):
        line = _strip_cr(raw_line)
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                value.append(line)
            continue
        if name is not None:
            fields.append(Field(name, b"\n".join(value)))
            name = None
        if not line:
            continue  # the blank line ending the block (or the empty tail after it)
        colon = line.find(b":")
        if colon <= 0:
            junk += 1
            continue
        name = line[:colon].rstrip(b" \t")
        value = [line[colon + 1 :].lstrip(b" \t")]
    if name is not None:
        fields.append(Field(name, b"\n".join(value)))
    return Header(fields, junk)


def unfold(value: bytes) -> bytes:
    """Remove folding line breaks (RFC 5322 2.2.3), keeping the white space after them."""
    if b"\n" not in value and b"\r" not in value:
        return value
    return value.replace(b"\r", b"").replace(b"\n", b"")


def _raw_fields(header: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """(lowercased name, raw text with line endings) per field, and the blank line that ends
    the header (empty when it has none)."""
    fields: list[tuple[bytes, bytes]] = []
    lines = header.split(b"\n")
    last = len(lines) - 1
    name = b""
    current: list[bytes] = []
    blank = b""
    for i, line in enumerate(lines):
        if i < last:
            line += b"\n"
        elif not line:
            break
        if line[:1] in (b" ", b"\t") and current:
            current.append(line)
            continue
        if current:
            fields.append((name, b"".join(current)))
            current = []
        if line in (b"\r\n", b"\n"):
            blank = line
            break
        colon = line.find(b":")
        # A line without a colon is kept as a "field" named by the whole line (Dovecot).
        name = (line[:colon] if colon > 0 else line).rstrip(b" \t\r\n").lower()
        current = [line]
    if current:
        fields.append((name, b"".join(current)))
    return fields, blank


def header_fields(header: bytes, names: Sequence[str], exclude: bool) -> bytes:
    """BODY[HEADER.FIELDS (names)] / BODY[HEADER.FIELDS.NOT (names)] (RFC 9051 6.4.5).

    Field names compare case-insensitively; folded fields are kept whole, as written; the
    blank line that ends the header is kept (a header without one, at the end of a
    truncated message, gets none: the octets are returned as they are, like Dovecot does).
    """
    wanted = {n.lower().encode("ascii", "replace") for n in names}
    fields, blank = _raw_fields(header)
    out = [text for name, text in fields if (name in wanted) != exclude]
    out.append(blank)
    return b"".join(out)


@functools.lru_cache(maxsize=256)
def header_selector(names: tuple[str, ...], exclude: bool) -> Callable[[bytes], bytes]:
    """``header_fields`` for one list of names, prepared once: a client fetches the same
    fields of every message in a folder. HEADER.FIELDS is one compiled pattern finding the
    wanted fields (with their folded lines) where ``_raw_fields`` would loop over every
    line in Python; it selects exactly the same octets."""
    if exclude or not names or not all(map(_PLAIN_NAME.fullmatch, names)):
        return functools.partial(_fields_of, names=names, exclude=exclude)
    alternatives = b"|".join(_caseless(n.encode("ascii")) for n in names)
    # Searched in LF + header: a field starts after a LF (the pattern's literal first octet
    # lets the engine skip ahead with memchr); its name is what precedes the colon (a line
    # without one is a "field" named by the whole line) with trailing blanks dropped;
    # continuation lines start with SP or HTAB. The group is the field without its last
    # LF. Letters are matched as [Xx] classes: re.IGNORECASE is several times slower.
    findall = re.compile(
        rb"\n((?:" + alternatives + rb")[ \t\r]*(?::[^\n]*)?(?:\n[ \t][^\n]*)*)(?=\n)"
    ).findall

    def select(header: bytes) -> bytes:
        if not header.endswith(b"\n"):  # a truncated header: rare, take the general path
            return header_fields(header, names, exclude)
        text = b"\n" + header
        m = _BLANK_LINE(text)  # the first empty line ends the header
        end, blank = (len(text), b"") if m is None else (m.start(), text[m.start() + 1 : m.end()])
        fields = findall(text, 0, end + 1)
        return b"\n".join(fields) + b"\n" + blank if fields else blank

    return select


def _caseless(name: bytes) -> bytes:
    """``name`` as a pattern matching it in any case (ASCII, as IMAP compares names)."""
    return b"".join(
        b"[%c%c]" % (c, c ^ 0x20) if chr(c).isalpha() else re.escape(bytes([c])) for c in name
    )


_BLANK_LINE = re.compile(rb"\n\r?\n").search
"""The LF ending the last field line and the empty line after it: one scan, not a find
for each line ending."""

_PLAIN_NAME = re.compile(r"[!-9;-~]+")
"""RFC 5322 3.6.8 field names (printable ASCII but colon); others take the general path."""


def _fields_of(header: bytes, names: Sequence[str], exclude: bool) -> bytes:
    return header_fields(header, names, exclude)
