"""Message data for FETCH: BODY[section]<partial> and BINARY[part] (RFC 9051 6.4.5,
RFC 3516), from the stored header and part tree, streamed from the blob.

Nothing here loads a large message whole: a section of ``STREAM_AT`` octets or more
becomes a ``Stream`` that the session copies from the blob in chunks; BINARY decodes
transfer encodings incrementally (``TransferDecoder``), one pass to learn the decoded
size (a literal announces it first) and one to send.

Decisions:

* A section that does not exist (``BODY[4]`` of a two-part message, ``BODY[1.HEADER]``
  of a part that is not a message) is returned as an empty string, as Dovecot does
  (RFC 9051 6.4.5 leaves it open).
* A leaf part has a part 1, itself (as a non-multipart message does, RFC 9051 6.4.5):
  ``BODY[2.1]`` of a text part is ``BODY[2]``, as in Dovecot.
* A NUL octet cannot be sent in a literal (RFC 9051 4.3, ``CHAR8``) and BODY[] has no
  literal8 form, so BODY sections show NUL as 0x80, octet for octet (sizes unchanged;
  Dovecot stores it so). BINARY sends the octets as they are, as literal8.
* ``BINARY[]`` is the whole message as stored; ``BINARY[n]`` is part ``n`` with its
  Content-Transfer-Encoding undone; an encoding we do not know gives ``NO
  [UNKNOWN-CTE]`` (RFC 3516 4.2). Decoded data containing NUL goes out as ``~{n}``.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from mailkeep.imap import commands as c
from mailkeep.imap import responses
from mailkeep.imap.handlers.base import no
from mailkeep.mail import structure
from mailkeep.mail.headers import header_fields
from mailkeep.store.api import BlobReader, MessageRow, Store

STREAM_AT = 64 * 1024
"""Sections at least this large are streamed from the blob instead of read first."""
DECODE_IN_MEMORY = 1024 * 1024
"""Parts up to this size are decoded for BINARY in memory; larger ones in two passes."""
CHUNK = 64 * 1024


# ---------------------------------------------------------------------------- decoding

_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]+")


class TransferDecoder:
    """Incremental Content-Transfer-Encoding decoding: feeding the data in any pieces
    gives what ``mail.structure.decode_transfer`` gives for the whole."""

    def feed(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


class _Base64(TransferDecoder):
    """Lenient like ``structure.decode_base64``: junk dropped, missing padding added."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> bytes:
        data = self._rest + _NOT_BASE64.sub(b"", data)
        whole = len(data) // 4 * 4
        self._rest = data[whole:]
        return binascii.a2b_base64(data[:whole]) if whole else b""

    def finish(self) -> bytes:
        rest, self._rest = self._rest, b""
        if len(rest) < 2:
            return b""
        return binascii.a2b_base64(rest + b"=" * (4 - len(rest)))


class _QuotedPrintable(TransferDecoder):
    """Decoded a line at a time: soft line breaks never straddle two pieces."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> bytes:
        data = self._rest + data
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        return structure.decode_quoted_printable(data[:cut]) if cut else b""

    def finish(self) -> bytes:
        rest, self._rest = self._rest, b""
        return structure.decode_quoted_printable(rest) if rest else b""


_IDENTITY = frozenset({"7bit", "8bit", "binary", ""})


def transfer_decoder(encoding: str) -> TransferDecoder | None:
    """A decoder for ``encoding``, or None when we do not know it (UNKNOWN-CTE)."""
    name = encoding.strip().lower()
    if name in _IDENTITY:
        return TransferDecoder()
    if name == "base64":
        return _Base64()
    if name == "quoted-printable":
        return _QuotedPrintable()
    return None


# ---------------------------------------------------------------------------- data


@dataclass
class Stream:
    """A section sent as a literal copied from its source (``responses.Streamed``)."""

    size: int
    source: BlobRange | DecodedRange
    binary: bool = False


SectionData = bytes | Stream


class BlobRange:
    """``length`` octets of a blob from ``start`` (a ``session.StreamSource``); NUL shown
    as 0x80 unless ``binary``."""

    def __init__(self, reader: BlobReader, start: int, length: int, *, binary: bool) -> None:
        self.reader = reader
        self.start = start
        self.length = length
        self.binary = binary

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self.reader.chunks(self.start, self.length, CHUNK):
            yield chunk if self.binary else no_nul(chunk)


def no_nul(data: bytes) -> bytes:
    return data.replace(b"\0", b"\x80") if b"\0" in data else data


class DecodedRange:
    """The decoded octets ``[origin, origin + size)`` of a blob range."""

    def __init__(
        self, reader: BlobReader, start: int, end: int, encoding: str, origin: int, size: int
    ) -> None:
        self.reader = reader
        self.start = start
        self.end = end
        self.encoding = encoding
        self.origin = origin
        self.size = size

    async def chunks(self) -> AsyncIterator[bytes]:
        skip, left = self.origin, self.size
        async for data in decoded(self.reader, self.start, self.end, self.encoding):
            if skip:
                if len(data) <= skip:
                    skip -= len(data)
                    continue
                data, skip = data[skip:], 0
            if len(data) >= left:
                yield data[:left]
                return
            left -= len(data)
            yield data


async def decoded(reader: BlobReader, start: int, end: int, encoding: str) -> AsyncIterator[bytes]:
    decoder = transfer_decoder(encoding)
    assert decoder is not None
    async for chunk in reader.chunks(start, end - start, CHUNK):
        out = decoder.feed(chunk)
        if out:
            yield out
    tail = decoder.finish()
    if tail:
        yield tail


class Message:
    """One fetched message: its row, and the blob and part tree opened when needed."""

    def __init__(self, store: Store, row: MessageRow, reader: BlobReader | None = None) -> None:
        self.store = store
        self.row = row
        self._reader = reader
        """Opened when first needed, unless given (read ahead with others)."""
        self._root: structure.Part | None = None

    async def reader(self) -> BlobReader:
        if self._reader is None:
            self._reader = await self.store.open_blob(self.row.blob)
        return self._reader

    def root(self) -> structure.Part:
        if self._root is None:
            self._root = structure.decode(self.row.structure)
        return self._root

    async def read(self, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        return await (await self.reader()).read(start, end - start)

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
            self._reader = None

    async def span(
        self, start: int, end: int, partial: tuple[int, int] | None, *, binary: bool = False
    ) -> SectionData:
        """Octets ``[start, end)`` of the raw message, cut to ``partial``; NUL as 0x80
        unless ``binary``."""
        start, end = _cut(start, end, partial)
        if end - start >= STREAM_AT:
            reader = await self.reader()
            source = BlobRange(reader, start, end - start, binary=binary)
            return Stream(end - start, source, binary=binary)
        data = await self.read(start, end)
        return data if binary else no_nul(data)

    async def body(self, section: c.Section, partial: tuple[int, int] | None) -> SectionData:
        """``BODY[section]<partial>`` (RFC 9051 6.4.5)."""
        text, part = section.text, section.part
        if not part and text in (None, "TEXT"):
            if text is None:
                return await self.span(0, (await self.reader()).size, partial)
            root = self.root()
            return await self.span(root.body_start, root.body_end, partial)
        if not part:
            header = self.row.header
        else:
            kind = "HEADER" if text and text.startswith("HEADER") else text or ""
            found = section_range(self.root(), part, kind)
            if found is None:
                return b""
            if kind != "HEADER":
                return await self.span(found[0], found[1], partial)
            header = await self.read(*found)
        if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            header = header_fields(header, section.fields, text == "HEADER.FIELDS.NOT")
        start, end = _cut(0, len(header), partial)
        return no_nul(header[start:end])

    async def binary(self, part: tuple[int, ...], partial: tuple[int, int] | None) -> SectionData:
        """``BINARY[part]<partial>`` (RFC 3516 4.1)."""
        if not part:
            return await self.span(0, (await self.reader()).size, partial, binary=True)
        found = find_part(self.root(), part)
        if found is None:
            return b""
        encoding = found.encoding if not found.is_multipart else "7bit"
        if transfer_decoder(encoding) is None:
            raise no(
                f"unknown Content-Transfer-Encoding {encoding!r} in part "
                + ".".join(map(str, part)),
                responses.UNKNOWN_CTE,
            )
        start, end = found.body_start, found.body_end
        if end - start <= DECODE_IN_MEMORY:
            data = structure.decode_transfer(await self.read(start, end), encoding) or b""
            first, last = _cut(0, len(data), partial)
            return data[first:last]
        size, has_nul = 0, False
        async for chunk in decoded(await self.reader(), start, end, encoding):
            size += len(chunk)
            has_nul = has_nul or b"\0" in chunk
        first, last = _cut(0, size, partial)
        source = DecodedRange(await self.reader(), start, end, encoding, first, last - first)
        return Stream(last - first, source, binary=has_nul)

    async def binary_size(self, part: tuple[int, ...]) -> int:
        """``BINARY.SIZE[part]``: the size ``BINARY[part]`` would have."""
        data = await self.binary(part, None)
        return data.size if isinstance(data, Stream) else len(data)


def _leaf_itself(root: structure.Part, path: tuple[int, ...]) -> tuple[int, ...] | None:
    """For ``n.1`` of a leaf body part ``n`` of a multipart: the path ``n`` (Dovecot's
    reading: such a part, like a non-multipart message, has a part 1, itself). A message
    (the root, or one embedded in message/rfc822) has no part 1.1 when it is not
    multipart."""
    if len(path) < 2 or path[-1] != 1:
        return None
    container = root if len(path) == 2 else structure.find_part(root, path[:-2])
    if container is not None and container.embedded is not None:
        container = container.embedded
    if container is None or not container.is_multipart:
        return None
    part = structure.find_part(root, path[:-1])
    if part is None or part.is_multipart or part.type == "message":
        return None
    return path[:-1]


def find_part(root: structure.Part, path: tuple[int, ...]) -> structure.Part | None:
    found = structure.find_part(root, path)
    if found is None and (leaf := _leaf_itself(root, path)) is not None:
        return find_part(root, leaf)
    return found


def section_range(root: structure.Part, path: tuple[int, ...], kind: str) -> tuple[int, int] | None:
    found = structure.section_range(root, path, kind)
    if found is None and (leaf := _leaf_itself(root, path)) is not None:
        return section_range(root, leaf, kind)
    return found


def _cut(start: int, end: int, partial: tuple[int, int] | None) -> tuple[int, int]:
    """RFC 9051 6.4.5: ``<origin.octets>`` counts from the section's first octet; an
    origin past its end gives an empty string."""
    if partial is None:
        return start, end
    origin, length = partial
    first = min(end, start + origin)
    return first, min(end, first + length)
