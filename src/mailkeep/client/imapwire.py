"""IMAP client wire layer without I/O: server bytes in, typed responses out (RFC 9051 7).

``ResponseReader.receive_data(bytes)`` buffers; ``next_response()`` returns one complete
response or None. A response line ending in ``{N}`` announces a literal of N octets
(RFC 9051 4.3); large literals (message bodies) are spooled to an anonymous temporary file
as they arrive, so a 100 MB message never sits in memory. The parser is lenient where
servers differ harmlessly (bare LF line ends, atoms with ``]`` in response codes) and
strict where a mistake would corrupt data (literal lengths).

Values inside responses are: ``str`` for atoms (numbers too), ``bytes`` for quoted strings
and small literals, ``FileLiteral`` for large literals, ``None`` for NIL, ``list`` for
parenthesised lists.
"""

from __future__ import annotations

import base64
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import IO, Any, TypeAlias

from mailkeep.client.errors import ProtocolError

SPOOL_THRESHOLD = 256 * 1024
"""Literals at least this large are written to a temporary file instead of memory."""
MAX_LINE = 8 * 1024 * 1024
"""Longest response line (outside literals) we accept before calling the server broken."""


class FileLiteral:
    """A literal spooled to an anonymous temporary file; close it when done."""

    def __init__(self, size: int, spool_dir: str | None = None) -> None:
        self.size = size
        self.file: IO[bytes] = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 (owned)

    def read(self) -> bytes:
        self.file.seek(0)
        return self.file.read()

    def copy_to(self, target: IO[bytes], chunk: int = 1024 * 1024) -> None:
        self.file.seek(0)
        while data := self.file.read(chunk):
            target.write(data)

    def close(self) -> None:
        self.file.close()

    def __repr__(self) -> str:
        return f"FileLiteral(size={self.size})"


Value: TypeAlias = "str | bytes | FileLiteral | list[Value] | None"


def as_bytes(value: Value) -> bytes:
    """A string value (atom, quoted, literal, spooled literal) as bytes."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, FileLiteral):
        return value.read()
    if value is None:
        return b""
    raise ProtocolError(f"expected a string, got a list: {value!r}")


def as_text(value: Value) -> str:
    return as_bytes(value).decode("utf-8", "replace")


def as_int(value: Value) -> int:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ProtocolError(f"expected a number, got {value!r}")


# --- typed responses ------------------------------------------------------------------


@dataclass(frozen=True)
class Continuation:
    """``+ text`` (RFC 9051 7.5): the server waits for a literal or SASL data."""

    text: str


@dataclass(frozen=True)
class Tagged:
    """The tagged completion of a command (RFC 9051 7.1)."""

    tag: str
    status: str
    code: str | None
    code_args: tuple[Value, ...]
    text: str


@dataclass(frozen=True)
class Condition:
    """Untagged OK/NO/BAD/BYE/PREAUTH (RFC 9051 7.1), e.g. ``* OK [UIDVALIDITY 3] ...``."""

    status: str
    code: str | None
    code_args: tuple[Value, ...]
    text: str


@dataclass(frozen=True)
class Capability:
    names: frozenset[str]


@dataclass(frozen=True)
class Enabled:
    names: frozenset[str]


@dataclass(frozen=True)
class Exists:
    count: int


@dataclass(frozen=True)
class Recent:
    count: int


@dataclass(frozen=True)
class Expunge:
    seq: int


@dataclass(frozen=True)
class Flags:
    flags: tuple[str, ...]


@dataclass(frozen=True)
class ListEntry:
    """One LIST/LSUB answer (RFC 9051 7.3.1); ``name`` is decoded from modified UTF-7."""

    attributes: frozenset[str]
    delimiter: str | None
    name: str

    @property
    def selectable(self) -> bool:
        lowered = {a.lower() for a in self.attributes}
        return not lowered & {"\\noselect", "\\nonexistent"}


@dataclass(frozen=True)
class Search:
    """SEARCH answer, with the RFC 7162 3.1.5 ``(MODSEQ n)`` suffix if present."""

    numbers: tuple[int, ...]
    modseq: int | None = None


@dataclass(frozen=True)
class Vanished:
    """RFC 7162 3.2.10: UIDs expunged, ``earlier`` when answering QRESYNC/CHANGEDSINCE."""

    earlier: bool
    uids: tuple[int, ...]


@dataclass(frozen=True)
class Status:
    mailbox: str
    items: dict[str, int]


@dataclass(frozen=True)
class Namespace:
    """RFC 2342: (prefix, delimiter) pairs per class."""

    personal: tuple[tuple[str, str | None], ...]
    other: tuple[tuple[str, str | None], ...]
    shared: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class Fetch:
    """One FETCH answer (RFC 9051 7.5.2). ``attrs`` maps upper-cased item names (``UID``,
    ``FLAGS``, ``BODY[]``, ``BODY[HEADER.FIELDS (MESSAGE-ID)]``...) to their values."""

    seq: int
    attrs: dict[str, Value] = field(default_factory=dict)

    @property
    def uid(self) -> int | None:
        value = self.attrs.get("UID")
        return as_int(value) if value is not None else None

    @property
    def flags(self) -> tuple[str, ...] | None:
        value = self.attrs.get("FLAGS")
        if value is None:
            return None
        if not isinstance(value, list):
            raise ProtocolError(f"FLAGS is not a list: {value!r}")
        return tuple(as_text(v) for v in value)

    @property
    def modseq(self) -> int | None:
        value = self.attrs.get("MODSEQ")
        if isinstance(value, list) and value:
            return as_int(value[0])
        return None

    @property
    def size(self) -> int | None:
        value = self.attrs.get("RFC822.SIZE")
        return as_int(value) if value is not None else None

    @property
    def internaldate(self) -> datetime | None:
        value = self.attrs.get("INTERNALDATE")
        return parse_datetime(as_text(value)) if value is not None else None

    def section(self, name: str = "BODY[]") -> bytes | FileLiteral | None:
        """A body section; ``BODY.PEEK[...]`` is answered as ``BODY[...]``."""
        value = self.attrs.get(name.upper().replace("BODY.PEEK[", "BODY["))
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, list):
            raise ProtocolError(f"{name} is a list")
        return value

    def close(self) -> None:
        """Release spooled literals."""
        for value in self.attrs.values():
            if isinstance(value, FileLiteral):
                value.close()


@dataclass(frozen=True)
class OtherUntagged:
    """Any other untagged response, kept raw for callers that know it."""

    name: str
    number: int | None
    args: tuple[Value, ...]


Untagged: TypeAlias = (
    "Condition | Capability | Enabled | Exists | Recent | Expunge | Flags | ListEntry"
    " | Search | Vanished | Status | Namespace | Fetch | OtherUntagged"
)
Response: TypeAlias = "Continuation | Tagged | Untagged"

# --- the reader ------------------------------------------------------------------------

_LITERAL_AT_END = re.compile(rb"\{(\d+)\}\r?\n$")


class ResponseReader:
    """Sans-I/O response framing (RFC 9051 4.3 literals, 2.2.2 lines)."""

    def __init__(self, spool_dir: str | None = None) -> None:
        self._buffer = bytearray()
        self._parts: list[bytes | FileLiteral] = []
        self._literal_left = 0
        self._literal_memory: bytearray | None = None
        self._literal_file: FileLiteral | None = None
        self._spool_dir = spool_dir
        self.closed = False

    def receive_data(self, data: bytes) -> None:
        if not data:
            self.closed = True
        self._buffer += data

    def next_response(self) -> Response | None:
        while True:
            if self._literal_left:
                if not self._take_literal():
                    return None
                continue
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    raise ProtocolError("response line too long")
                return None
            line = bytes(self._buffer[: end + 1])
            del self._buffer[: end + 1]
            match = _LITERAL_AT_END.search(line)
            if match:
                size = int(match.group(1))
                self._parts.append(line[: match.start()] + b"{" + match.group(1) + b"}")
                self._start_literal(size)
                continue
            self._parts.append(line.rstrip(b"\r\n"))
            parts, self._parts = self._parts, []
            return parse_response(parts)

    def _start_literal(self, size: int) -> None:
        self._literal_left = size
        if size >= SPOOL_THRESHOLD:
            self._literal_file = FileLiteral(size, self._spool_dir)
        else:
            self._literal_memory = bytearray()
        if size == 0:
            self._finish_literal()

    def _take_literal(self) -> bool:
        chunk = bytes(self._buffer[: self._literal_left])
        del self._buffer[: len(chunk)]
        self._literal_left -= len(chunk)
        if self._literal_file is not None:
            self._literal_file.file.write(chunk)
        elif self._literal_memory is not None:
            self._literal_memory += chunk
        if self._literal_left:
            return False
        self._finish_literal()
        return True

    def _finish_literal(self) -> None:
        if self._literal_file is not None:
            self._literal_file.file.flush()
            self._parts.append(self._literal_file)
        else:
            self._parts.append(bytes(self._literal_memory or b""))
        self._literal_file = None
        self._literal_memory = None
        self._literal_left = 0


# --- parsing one response ------------------------------------------------------------


class _Tokens:
    """A cursor over a response: text parts with ``{N}`` markers, each followed by its
    literal."""

    def __init__(self, parts: list[bytes | FileLiteral]) -> None:
        self.parts = parts
        self.index = 0
        self.pos = 0

    @property
    def text(self) -> bytes:
        part = self.parts[self.index]
        assert isinstance(part, bytes)
        return part

    def peek(self) -> int | None:
        text = self.text
        return text[self.pos] if self.pos < len(text) else None

    def skip_spaces(self) -> None:
        text = self.text
        while self.pos < len(text) and text[self.pos] == 0x20:
            self.pos += 1

    def rest(self) -> str:
        """The remainder of the current line as text (resp-text has no literals)."""
        value = self.text[self.pos :].decode("utf-8", "replace")
        self.pos = len(self.text)
        return value

    def value(self) -> Value:
        self.skip_spaces()
        char = self.peek()
        if char is None:
            raise ProtocolError(f"unexpected end of response: {self.parts!r}")
        if char == ord("("):
            self.pos += 1
            items: list[Value] = []
            while True:
                self.skip_spaces()
                if self.peek() == ord(")"):
                    self.pos += 1
                    return items
                if self.peek() is None and self.index >= len(self.parts) - 1:
                    raise ProtocolError("unterminated list in response")
                items.append(self.value())
        if char == ord('"'):
            return self._quoted()
        if char == ord("{"):
            return self._literal()
        return self._atom()

    def _quoted(self) -> bytes:
        text = self.text
        out = bytearray()
        pos = self.pos + 1
        while pos < len(text):
            char = text[pos]
            if char == 0x5C and pos + 1 < len(text):  # backslash quotes " and \
                out.append(text[pos + 1])
                pos += 2
                continue
            if char == 0x22:
                self.pos = pos + 1
                return bytes(out)
            out.append(char)
            pos += 1
        raise ProtocolError("unterminated quoted string in response")

    def _literal(self) -> bytes | FileLiteral:
        close = self.text.find(b"}", self.pos)
        if close != len(self.text) - 1 or self.index + 2 >= len(self.parts):
            raise ProtocolError("literal marker not at end of line")
        literal = self.parts[self.index + 1]
        self.index += 2
        self.pos = 0
        return literal

    def _atom(self) -> str | None:
        text = self.text
        start = pos = self.pos
        depth = 0
        while pos < len(text):
            char = text[pos]
            if char == ord("["):
                depth += 1
            elif char == ord("]"):
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and char in b' ()"{':
                break
            pos += 1
        if pos == start:
            raise ProtocolError(f"unexpected character {chr(text[pos])!r} in response")
        self.pos = pos
        atom = text[start:pos].decode("utf-8", "replace")
        return None if atom.upper() == "NIL" else atom


_CONDITIONS = {"OK", "NO", "BAD", "BYE", "PREAUTH"}


def parse_response(parts: list[bytes | FileLiteral]) -> Response:
    tokens = _Tokens(parts)
    first = tokens.text
    if first.startswith(b"+"):
        return Continuation(first[1:].strip().decode("utf-8", "replace"))
    tag = tokens.value()
    if not isinstance(tag, str):
        raise ProtocolError(f"response does not start with a tag: {first!r}")
    tokens.skip_spaces()
    if tag != "*":
        status = _atom_upper(tokens)
        code, args, text = _resp_text(tokens)
        return Tagged(tag, status, code, args, text)
    word = _atom_upper(tokens)
    if word in _CONDITIONS:
        code, args, text = _resp_text(tokens)
        return Condition(word, code, args, text)
    if word.isdigit():
        number = int(word)
        name = _atom_upper(tokens)
        return _numbered(number, name, tokens)
    return _named(word, tokens)


def _atom_upper(tokens: _Tokens) -> str:
    value = tokens.value()
    if not isinstance(value, str):
        raise ProtocolError(f"expected an atom, got {value!r}")
    return value.upper()


def _resp_text(tokens: _Tokens) -> tuple[str | None, tuple[Value, ...], str]:
    """resp-text = ["[" resp-text-code "]" SP] text (RFC 9051 9)."""
    tokens.skip_spaces()
    if tokens.peek() != ord("["):
        return None, (), tokens.rest().strip()
    tokens.pos += 1
    code = _atom_upper(tokens)
    args: list[Value] = []
    while True:
        tokens.skip_spaces()
        char = tokens.peek()
        if char is None:
            break
        if char == ord("]"):
            tokens.pos += 1
            break
        args.append(tokens.value())
    return code, tuple(args), tokens.rest().strip()


def _rest_values(tokens: _Tokens) -> list[Value]:
    values: list[Value] = []
    while True:
        tokens.skip_spaces()
        if tokens.peek() is None and tokens.index >= len(tokens.parts) - 1:
            return values
        values.append(tokens.value())


def _numbered(number: int, name: str, tokens: _Tokens) -> Untagged:
    if name == "EXISTS":
        return Exists(number)
    if name == "RECENT":
        return Recent(number)
    if name == "EXPUNGE":
        return Expunge(number)
    if name == "FETCH":
        values = _rest_values(tokens)
        if len(values) != 1 or not isinstance(values[0], list):
            raise ProtocolError(f"malformed FETCH response: {values!r}")
        items = values[0]
        attrs: dict[str, Value] = {}
        for key, value in zip(items[::2], items[1::2], strict=False):
            if not isinstance(key, str):
                raise ProtocolError(f"malformed FETCH item name {key!r}")
            attrs[_fetch_key(key)] = value
        return Fetch(number, attrs)
    return OtherUntagged(name, number, tuple(_rest_values(tokens)))


def _fetch_key(key: str) -> str:
    """Upper-case a FETCH item name, dropping a partial ``<origin>``."""
    key = key.upper()
    if key.endswith(">") and "<" in key:
        key = key[: key.rindex("<")]
    return key


def _named(name: str, tokens: _Tokens) -> Untagged:
    values = _rest_values(tokens)
    if name == "CAPABILITY":
        return Capability(frozenset(as_text(v).upper() for v in values))
    if name == "ENABLED":
        return Enabled(frozenset(as_text(v).upper() for v in values))
    if name == "FLAGS" and values and isinstance(values[0], list):
        return Flags(tuple(as_text(v) for v in values[0]))
    if name in {"LIST", "LSUB"} and len(values) >= 3 and isinstance(values[0], list):
        delimiter = None if values[1] is None else as_text(values[1])
        name_text = as_text(values[2])
        return ListEntry(
            frozenset(as_text(v) for v in values[0]),
            delimiter,
            decode_mailbox(name_text),
        )
    if name in {"SEARCH", "SORT"}:
        numbers: list[int] = []
        modseq = None
        for value in values:
            if isinstance(value, list):
                if len(value) == 2 and as_text(value[0]).upper() == "MODSEQ":
                    modseq = as_int(value[1])
            else:
                numbers.append(as_int(value))
        return Search(tuple(numbers), modseq)
    if name == "VANISHED":
        earlier = bool(values) and isinstance(values[0], list)
        if earlier:
            values = values[1:]
        uids = parse_uid_set(as_text(values[0])) if values else ()
        return Vanished(earlier, uids)
    if name == "STATUS" and len(values) == 2 and isinstance(values[1], list):
        items = values[1]
        return Status(
            decode_mailbox(as_text(values[0])),
            {as_text(k).upper(): as_int(v) for k, v in zip(items[::2], items[1::2], strict=False)},
        )
    if name == "NAMESPACE" and len(values) == 3:
        return Namespace(*(_namespace_part(v) for v in values))
    return OtherUntagged(name, None, tuple(values))


def _namespace_part(value: Value) -> tuple[tuple[str, str | None], ...]:
    if not isinstance(value, list):
        return ()
    result = []
    for entry in value:
        if isinstance(entry, list) and len(entry) >= 2:
            delimiter = None if entry[1] is None else as_text(entry[1])
            result.append((decode_mailbox(as_text(entry[0])), delimiter))
    return tuple(result)


# --- sets, dates, strings, mailbox names ----------------------------------------------


def parse_uid_set(text: str) -> tuple[int, ...]:
    """``1:3,7`` → (1, 2, 3, 7). ``*`` is not meaningful in server answers."""
    result: list[int] = []
    for piece in text.split(","):
        if not piece:
            continue
        low, _, high = piece.partition(":")
        if high:
            a, b = sorted((int(low), int(high)))
            result.extend(range(a, b + 1))
        else:
            result.append(int(low))
    return tuple(result)


def format_uid_set(uids: Iterable[int]) -> str:
    """Compress numbers into a sequence-set (RFC 9051 9 ``sequence-set``)."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("empty UID set")
    ranges: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        ranges.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    ranges.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(ranges)


_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def parse_datetime(text: str) -> datetime:
    """date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone."""
    try:
        day, month, rest = text.strip().split("-", 2)
        year, clock, zone = rest.split(" ")
        hour, minute, second = (int(x) for x in clock.split(":"))
        sign = -1 if zone[0] == "-" else 1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])) * sign
        return datetime(
            int(year),
            _MONTHS.index(month.capitalize()) + 1,
            int(day),
            hour,
            minute,
            second,
            tzinfo=timezone(offset),
        )
    except (ValueError, IndexError):
        raise ProtocolError(f"malformed date-time {text!r}") from None


def format_datetime(moment: datetime) -> str:
    """An aware or naive (taken as UTC) datetime as an IMAP date-time, quoted."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    zone = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    month = _MONTHS[moment.month - 1]
    return f'"{moment.day:02d}-{month}-{moment.year:04d} {moment:%H:%M:%S} {zone}"'


_ATOM_SAFE = re.compile(r"^[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|~]+$")


def quote(text: str | bytes) -> bytes:
    """An astring for a command: atom when safe, quoted string otherwise.

    Callers must send text with CR, LF or NUL (or non-ASCII without UTF8=ACCEPT) as a
    literal instead; ``needs_literal`` tells when.
    """
    raw = text.encode() if isinstance(text, str) else text
    if raw and _ATOM_SAFE.match(raw.decode("latin-1")):
        return raw
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def needs_literal(raw: bytes) -> bool:
    return any(b in raw for b in (b"\r", b"\n", b"\0")) or any(c > 0x7F for c in raw)


def encode_mailbox(name: str) -> str:
    """Modified UTF-7 (RFC 3501 5.1.3): printable ASCII stays, ``&`` is ``&-``, the rest is
    UTF-16BE in modified base64 between ``&`` and ``-``."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def decode_mailbox(name: str) -> str:
    """Inverse of ``encode_mailbox``; names that are not valid mUTF-7 are kept as they are
    (servers with UTF8=ACCEPT send UTF-8)."""
    if "&" not in name:
        return name
    out: list[str] = []
    pos = 0
    while pos < len(name):
        amp = name.find("&", pos)
        if amp < 0:
            out.append(name[pos:])
            break
        out.append(name[pos:amp])
        dash = name.find("-", amp)
        if dash < 0:
            return name
        chunk = name[amp + 1 : dash]
        if not chunk:
            out.append("&")
        else:
            padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
            try:
                out.append(base64.b64decode(padded).decode("utf-16-be"))
            except (ValueError, UnicodeDecodeError):
                return name
        pos = dash + 1
    return "".join(out)


def code_int(response: Tagged | Condition, index: int = 0) -> int | None:
    """A numeric response-code argument, e.g. ``[UIDNEXT 7]``."""
    if len(response.code_args) > index:
        value = response.code_args[index]
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def values_text(values: Iterable[Any]) -> list[str]:
    return [as_text(v) for v in values]
