"""The MIME parser: raw message bytes -> tree of entities with byte offsets (RFC 2045, 2046).

One forward pass over the message. Where each entity ends is decided by boundary lines of
the multiparts that enclose it, found with one compiled regular expression per boundary
stack, so the octets of a body are scanned in C, about once each; nothing is decoded.

Boundary semantics follow Dovecot (our reference for BODYSTRUCTURE):

* a boundary line is any line that *starts* with ``--`` + boundary (trailing junk ignored);
  ``--`` + boundary + ``--`` closes the multipart;
* the innermost multipart's boundary is tried first, then the enclosing ones: an enclosing
  boundary ends the inner multiparts that were never closed;
* the line break before a boundary line belongs to the boundary (RFC 2046 5.1.1), so a
  part whose blank header line directly precedes the boundary has an empty body and a header
  without that blank line;
* a multipart with no boundary parameter, or whose boundary never appears, has no parts;
* in a multipart/digest, parts without Content-Type are message/rfc822 (RFC 2046 5.1.5);
* a message/rfc822 part is parsed as a message unless it is base64/quoted-printable encoded.

Limits (defects recorded, never an error), as Dovecot applies them: a multipart or
message/rfc822 that would nest ``max_depth`` deep is kept as an opaque
application/octet-stream leaf; the ``max_parts``-th part (counting the message itself) takes
the whole rest of the message as its content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from mailkeep.mail.headers import Header, parse_header
from mailkeep.mail.mimeparams import ContentInfo, ContentType, content_info, decode_params
from mailkeep.mail.structure import Part

_IDENTITY_ENCODINGS = frozenset({b"7bit", b"8bit", b"binary"})
_OCTET_STREAM = (b"application", b"octet-stream")
_COMPILED_DEPTH = 0
"""Boundary stacks up to this deep get one compiled alternation; deeper ones (all, by
default) are matched by ``_StackMatcher``. Compiling costs about 0.1 ms per multipart
message (a quarter of parsing a typical one), more in proportion to the stack's depth,
and a hostile message can make every multipart a new stack: 10,000 multiparts 45 deep
took 25 s of CPU for a 600 KB message. The compiled form stays as the reference the
tests compare ``_StackMatcher`` with."""


@dataclass(slots=True)
class Entity:
    """A parsed entity: its :class:`Part`, its header and Content-* data, its children."""

    part: Part
    header: Header
    content: ContentInfo
    lines: int
    """Line count of the content (LF octets), for BODYSTRUCTURE of text and messages."""
    children: list[Entity] = field(default_factory=list)


# A stop is the boundary line that ended an entity: (line start, end of the boundary
# token, level). Level counts from the outermost multipart (0). None: end of the message.
_Stop = tuple[int, int, int] | None


class _Match(Protocol):
    """What the parser uses of a match (``re.Match`` or ``_StackMatch``)."""

    def start(self) -> int: ...
    def end(self) -> int: ...
    @property
    def lastindex(self) -> int | None: ...


class _Matcher(Protocol):
    def search(self, raw: bytes, pos: int) -> _Match | None: ...
    def match(self, raw: bytes, pos: int) -> _Match | None: ...


@dataclass(frozen=True, slots=True)
class _StackMatch:
    begin: int
    finish: int
    lastindex: int | None

    def start(self) -> int:
        return self.begin

    def end(self) -> int:
        return self.finish


class _StackMatcher:
    """The compiled alternations' semantics for a deep stack, without compiling one:
    lines starting with ``--`` (and, for headers, blank lines) are found by a fixed
    pattern, then the boundary is looked up by length; the innermost boundary that is a
    prefix of the line wins (the lowest group, as in the alternation). Groups: blank line
    1 when ``blank``, then the boundaries innermost first."""

    __slots__ = ("blank", "groups", "lengths", "pattern")

    def __init__(self, stack: tuple[bytes, ...], blank: bool) -> None:
        self.blank = blank
        self.pattern = _BLANK_OR_DASH_LINE if blank else _DASH_LINE
        first = 2 if blank else 1
        self.groups: dict[bytes, int] = {}
        for index, boundary in enumerate(stack):
            self.groups.setdefault(boundary, index + first)
        self.lengths = sorted({len(b) for b in stack})

    def _boundary_at(self, raw: bytes, start: int) -> _StackMatch | None:
        found: tuple[int, int] | None = None
        for length in self.lengths:
            group = self.groups.get(raw[start + 2 : start + 2 + length])
            if group is not None and (found is None or group < found[0]):
                found = group, length
        if found is None:
            return None
        return _StackMatch(start, start + 2 + found[1], found[0])

    def search(self, raw: bytes, pos: int) -> _Match | None:
        while (m := self.pattern.search(raw, pos)) is not None:
            if self.blank and m.lastindex == 1:
                return m
            found = self._boundary_at(raw, m.start())
            if found is not None:
                return found
            pos = m.start() + 1
        return None

    def match(self, raw: bytes, pos: int) -> _Match | None:
        if (pos == 0 or raw[pos - 1] == 0x0A) and raw.startswith(b"--", pos):
            return self._boundary_at(raw, pos)
        return None


class _LineScanner:
    """``re.compile(rb"^(?:(\r?\n)|--)", re.M)`` (or one of its alternatives) without
    trying a match at every position: a pattern starting with the LF before the line
    lets the engine skip ahead to each LF at memchr speed, and a line starting the
    text is checked apart. Matches are ``_StackMatch``es of the line itself; a blank line
    is group 1."""

    __slots__ = ("blank", "dash", "pattern")

    def __init__(self, *, blank: bool, dash: bool) -> None:
        self.blank = blank
        self.dash = dash
        choices = [rb"(\r?\n)"] if blank else []
        choices += [rb"--"] if dash else []
        self.pattern = re.compile(rb"\n(?:" + b"|".join(choices) + rb")")

    def search(self, raw: bytes, pos: int) -> _StackMatch | None:
        if pos == 0:
            if self.dash and raw.startswith(b"--"):
                return _StackMatch(0, 2, None)
            if self.blank and raw[:1] == b"\n":
                return _StackMatch(0, 1, 1)
            if self.blank and raw[:2] == b"\r\n":
                return _StackMatch(0, 2, 1)
        m = self.pattern.search(raw, max(pos - 1, 0))
        if m is None:
            return None
        return _StackMatch(m.start() + 1, m.end(), m.lastindex)

    def match(self, raw: bytes, pos: int) -> _StackMatch | None:
        found = self.search(raw, pos)
        return found if found is not None and found.begin == pos else None


_BLANK_LINE = _LineScanner(blank=True, dash=False)
_BLANK_LINE_RE = re.compile(rb"^(\r?\n)", re.M)
_DASH_LINE = _LineScanner(blank=False, dash=True)
_BLANK_OR_DASH_LINE = _LineScanner(blank=True, dash=True)


class _Patterns:
    """The matchers for one boundary stack (innermost boundary first).

    See ``_COMPILED_DEPTH``."""

    __slots__ = ("boundary", "header", "stack")

    def __init__(self, stack: tuple[bytes, ...]) -> None:
        self.stack = stack
        self.boundary: _Matcher | None
        self.header: _Matcher
        if len(stack) > _COMPILED_DEPTH:
            self.boundary = _StackMatcher(stack, blank=False)
            self.header = _StackMatcher(stack, blank=True)
        elif stack:
            alternatives = b"|".join(b"(" + re.escape(b) + b")" for b in stack)
            self.boundary = re.compile(rb"^--(?:" + alternatives + rb")", re.M)
            self.header = re.compile(rb"^(?:(\r?\n)|--(?:" + alternatives + rb"))", re.M)
        elif _COMPILED_DEPTH > 0:
            self.boundary = None
            self.header = _BLANK_LINE_RE
        else:
            self.boundary = None
            self.header = _BLANK_LINE

    def level(self, group: int) -> int:
        """Level of the boundary captured by group ``group`` (1-based among boundaries)."""
        return len(self.stack) - group


class _Parser:
    def __init__(self, raw: bytes, max_parts: int, max_depth: int) -> None:
        self.raw = raw
        self.size = len(raw)
        self.max_parts = max_parts
        self.max_depth = max_depth
        self.count = 0
        self.defects: dict[str, None] = {}
        self._patterns: dict[tuple[bytes, ...], _Patterns] = {}

    def defect(self, text: str) -> None:
        self.defects.setdefault(text, None)

    def patterns(self, stack: tuple[bytes, ...]) -> _Patterns:
        found = self._patterns.get(stack)
        if found is None:
            found = self._patterns[stack] = _Patterns(stack)
        return found

    def limit(self, line_start: int, floor: int) -> int:
        """Where content ends before a boundary line: the line break before it is the
        boundary's."""
        raw = self.raw
        end = line_start
        if end >= 1 and raw[end - 1] == 0x0A:
            end -= 1
            if end >= 1 and raw[end - 1] == 0x0D:
                end -= 1
        return max(end, floor)

    def next_stop(self, pats: _Patterns, pos: int) -> _Stop:
        if pats.boundary is None:
            return None
        m = pats.boundary.search(self.raw, pos)
        if m is None:
            return None
        assert m.lastindex is not None
        return m.start(), m.end(), pats.level(m.lastindex)

    def entity(
        self, pos: int, stack: tuple[bytes, ...], depth: int, digest: bool = False
    ) -> tuple[Entity, _Stop]:
        raw = self.raw
        pats = self.patterns(stack)
        self.count += 1
        stop: _Stop = None
        known_stop = True  # the content is known to be empty, ended by ``stop``
        m = pats.header.search(raw, pos)
        if m is None:
            body_start = self.size
            if pos < self.size:
                self.defect("header not terminated by a blank line")
        elif m.lastindex == 1:
            body_start = m.end()
            known_stop = False
        else:
            assert m.lastindex is not None
            stop = m.start(), m.end(), pats.level(m.lastindex - 1)
            body_start = self.limit(m.start(), pos)
            self.defect("header not terminated by a blank line")
        header = parse_header(raw[pos:body_start])
        if header.junk_lines:
            self.defect("header line without a colon")
        info = content_info(header.get)
        if digest and info.content_type.type is None:
            info = _with_type(info, ContentType(b"message", b"rfc822", ()))
        if not known_stop and pats.boundary is not None and not info.is_multipart:
            # (a multipart's own boundary, tried first, may be the very next line)
            first = pats.boundary.match(raw, body_start)
            if first is not None:
                assert first.lastindex is not None
                stop = first.start(), first.end(), pats.level(first.lastindex)
                body_start = self.limit(body_start, pos)
                known_stop = True

        last = self.count >= self.max_parts
        if last and (info.is_multipart or info.is_message):
            info = _as_opaque(info)
        container = info.is_multipart or info.is_message
        if container and not known_stop and depth + 1 >= self.max_depth:
            self.defect("MIME nesting too deep: inner parts kept opaque")
            info = _as_opaque(info)
            container = False

        children: list[Entity] = []
        if last:
            # The last part allowed: like Dovecot, it takes the rest of the message.
            self.defect("too many MIME parts: the rest of the message is one part")
            body_end = self.size
            stop = None
        elif known_stop:
            body_end = body_start
        elif container and info.is_multipart:
            body_end, stop = self.multipart(info, body_start, stack, depth, children)
        elif container:
            encoding = (info.encoding or b"7bit").lower()
            if encoding in _IDENTITY_ENCODINGS:
                child, stop = self.entity(body_start, stack, depth + 1)
                children.append(child)
                body_end = child.part.body_end
            else:
                self.defect("message/rfc822 with a transfer encoding: not parsed")
                stop = self.next_stop(pats, body_start)
                body_end = self.size if stop is None else self.limit(stop[0], body_start)
        else:
            stop = self.next_stop(pats, body_start)
            body_end = self.size if stop is None else self.limit(stop[0], body_start)

        part = _make_part(pos, body_start, body_end, info, [c.part for c in children])
        lines = raw.count(b"\n", body_start, body_end)
        return Entity(part, header, info, lines, children), stop

    def multipart(
        self,
        info: ContentInfo,
        body_start: int,
        stack: tuple[bytes, ...],
        depth: int,
        children: list[Entity],
    ) -> tuple[int, _Stop]:
        raw = self.raw
        outer = self.patterns(stack)
        boundary = info.param(b"boundary")
        if not boundary:
            self.defect("multipart without a boundary parameter")
            stop = self.next_stop(outer, body_start)
            return (self.size if stop is None else self.limit(stop[0], body_start)), stop
        inner_stack = (boundary, *stack)
        own_level = len(stack)
        inner = self.patterns(inner_stack)
        digest = (info.content_type.subtype or b"").lower() == b"digest"
        stop = self.next_stop(inner, body_start)
        while True:
            if stop is None:
                self.defect("multipart not terminated by its closing boundary")
                end = self.size
                break
            start, token_end, level = stop
            if level != own_level:
                self.defect("multipart not terminated by its closing boundary")
                end = self.limit(start, body_start)
                break
            line_end = raw.find(b"\n", token_end)
            next_line = self.size if line_end < 0 else line_end + 1
            if raw.startswith(b"--", token_end):
                stop = self.next_stop(outer, next_line)  # the epilogue runs to here
                end = self.size if stop is None else self.limit(stop[0], body_start)
                break
            child, stop = self.entity(next_line, inner_stack, depth + 1, digest)
            children.append(child)
        if not children:
            self.defect("multipart without parts")
        return end, stop


def _with_type(info: ContentInfo, content_type: ContentType) -> ContentInfo:
    return ContentInfo(
        content_type,
        info.encoding,
        info.id,
        info.description,
        info.md5,
        info.disposition,
        info.language,
        info.location,
    )


def _as_opaque(info: ContentInfo) -> ContentInfo:
    params = info.content_type.params
    return _with_type(info, ContentType(*_OCTET_STREAM, params))


def _make_part(
    header_start: int, body_start: int, body_end: int, info: ContentInfo, children: list[Part]
) -> Part:
    ct = info.content_type
    if ct.type is None:
        type_, subtype = "text", "plain"
    else:
        type_ = ct.type.decode("latin-1").lower()
        subtype = (ct.subtype or b"").decode("latin-1").lower()
    encoding = (info.encoding or b"7bit").decode("latin-1").lower()
    return Part(
        header_start,
        body_start,
        body_end,
        type_,
        subtype,
        decode_params(ct.params),
        encoding,
        tuple(children),
    )


@dataclass(frozen=True, slots=True)
class MimeTree:
    root: Entity
    defects: tuple[str, ...]


def parse_mime(raw: bytes, *, max_parts: int = 10_000, max_depth: int = 50) -> MimeTree:
    """Parse ``raw`` into entities. Never raises on any input."""
    parser = _Parser(raw, max(1, max_parts), max(1, min(max_depth, 200)))
    root, _stop = parser.entity(0, (), 0)
    return MimeTree(root, tuple(parser.defects))
