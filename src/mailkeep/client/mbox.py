"""mboxrd files: reading and writing, with flags in ``Status``/``X-Status`` as mutt keeps them.

mboxrd (https://www.loc.gov/preservation/digital/formats/fdd/fdd000385.shtml): each message
starts with a ``From `` line; a body line matching ``>*From `` gets one more ``>`` on write
and loses one on read, so any message survives the round trip unchanged. Python's
``mailbox.mbox`` quotes without unquoting (mboxo), which is why this module exists.

``Status: RO`` means seen (R) and old (O); ``X-Status`` holds ``A`` answered, ``F`` flagged,
``D`` deleted, ``T`` draft. These two fields are added on write and removed on read: they
describe the mailbox, not the message. Messages are stored with CRLF (RFC 5322) and written
with LF, as mbox files are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

_QUOTED_FROM = re.compile(rb"^>+From ")
_NEEDS_QUOTE = re.compile(rb"^>*From ")
_STATUS = re.compile(rb"^(status|x-status):[ \t]*(.*)$", re.IGNORECASE)

_X_STATUS = {"A": "\\Answered", "F": "\\Flagged", "D": "\\Deleted", "T": "\\Draft"}


@dataclass(frozen=True)
class MboxMessage:
    raw: bytes
    """The message with CRLF line ends, without the From_ line and status fields."""
    flags: tuple[str, ...]
    date: datetime | None
    """From the From_ line (asctime, UTC by convention)."""


def read_mbox(path: Path) -> Iterator[MboxMessage]:
    with open(path, "rb") as source:
        lines: list[bytes] = []
        from_line: bytes | None = None
        for line in source:
            if line.startswith(b"From "):
                if from_line is not None:
                    yield _message(from_line, lines)
                from_line, lines = line, []
                continue
            if from_line is None:
                continue  # not an mbox preamble: ignored
            lines.append(line)
        if from_line is not None:
            yield _message(from_line, lines)


def _message(from_line: bytes, lines: list[bytes]) -> MboxMessage:
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]  # the blank line that separates messages
    flags: set[str] = set()
    out: list[bytes] = []
    in_header = True
    for line in lines:
        bare = line.rstrip(b"\r\n")
        if in_header:
            if not bare:
                in_header = False
            else:
                match = _STATUS.match(bare)
                if match:
                    flags |= _status_flags(match.group(1).lower(), match.group(2))
                    continue
        if _QUOTED_FROM.match(bare):
            bare = bare[1:]
        out.append(bare + b"\r\n")
    return MboxMessage(b"".join(out), tuple(sorted(flags)), _from_date(from_line))


def _status_flags(field: bytes, value: bytes) -> set[str]:
    text = value.decode("ascii", "replace")
    if field == b"status":
        return {"\\Seen"} if "R" in text else set()
    return {flag for letter, flag in _X_STATUS.items() if letter in text}


def _from_date(line: bytes) -> datetime | None:
    words = line.decode("utf-8", "replace").split()
    try:
        return datetime.strptime(" ".join(words[-5:]), "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
    except ValueError:
        return None


def write_message(out: IO[bytes], raw: bytes, flags: Iterable[str], date: datetime | None) -> None:
    """Append one message in mboxrd form."""
    when = (date or datetime.now(UTC)).astimezone(UTC)
    out.write(f"From MAILER-DAEMON {when:%a %b %d %H:%M:%S %Y}\n".encode())
    lowered = {f.lower() for f in flags}
    status = "RO" if "\\seen" in lowered else "O"
    x_status = "".join(k for k, v in _X_STATUS.items() if v.lower() in lowered)
    in_header = True
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the message's own final line end
    for line in lines:
        bare = line.rstrip(b"\r")
        if in_header and not bare:
            out.write(f"Status: {status}\n".encode())
            if x_status:
                out.write(f"X-Status: {x_status}\n".encode())
            in_header = False
        elif in_header and _STATUS.match(bare):
            continue
        if _NEEDS_QUOTE.match(bare):
            bare = b">" + bare
        out.write(bare + b"\n")
    if in_header:  # a message without a body
        out.write(f"Status: {status}\n\n".encode())
    out.write(b"\n")
