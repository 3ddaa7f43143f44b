"""The POP3 wire layer: command lines in, typed commands out; responses and multi-line
bodies out as octets. Pure functions and small state machines, no I/O.

Grammar (RFC 1939 section 3, RFC 2449 section 3)::

    command  = keyword *(SP param) CRLF    ; 255 octets maximum (RFC 2449 section 4)
    keyword  = 3*4VCHAR                    ; case-insensitive
    param    = 1*VCHAR
    multi-line = single-line *dot-stuffed "." CRLF

Leniency, decided here:

* Lines end at LF; a CR before it is dropped. Lines may be as long as the configured
  ``max_line`` (RFC 2449's 255 octets is a minimum a server must accept); a longer line
  is answered with ``-ERR`` and skipped, and the session goes on.
* Arguments may be separated by runs of spaces or tabs, and trailing white space is
  ignored, except for PASS: its single argument is the rest of the line after one space,
  verbatim, because passwords may contain and end with spaces (RFC 1939 section 7).
* USER takes the rest of the line (stripped), so that RFC 6856 UTF-8 names with odd
  spacing reach the authenticator whole; USER and PASS arguments must be valid UTF-8.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# ---------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class User:
    """USER name (RFC 1939 section 7)."""

    name: str


@dataclass(frozen=True, slots=True)
class Pass:
    """PASS string (RFC 1939 section 7)."""

    password: str


@dataclass(frozen=True, slots=True)
class Apop:
    """APOP name digest (RFC 1939 section 7): recognised only to be refused, since we
    keep no clear-text passwords to compute the digest with."""


@dataclass(frozen=True, slots=True)
class Auth:
    """AUTH [mechanism [initial-response]] (RFC 5034 section 4). ``initial`` is the
    base64 text as sent (``=`` for an empty response); no mechanism asks for the list
    of mechanisms (the pre-RFC 5034 form some clients still send)."""

    mechanism: str | None
    initial: bytes | None = None


@dataclass(frozen=True, slots=True)
class Stls:
    """STLS (RFC 2595 section 4)."""


@dataclass(frozen=True, slots=True)
class Capa:
    """CAPA (RFC 2449 section 5)."""


@dataclass(frozen=True, slots=True)
class Utf8:
    """UTF8 (RFC 6856 section 2.1)."""


@dataclass(frozen=True, slots=True)
class Lang:
    """LANG [language-range] (RFC 6856 section 3)."""

    range: str | None


@dataclass(frozen=True, slots=True)
class Stat:
    """STAT (RFC 1939 section 5)."""


@dataclass(frozen=True, slots=True)
class List:
    """LIST [msg] (RFC 1939 section 5)."""

    msg: int | None


@dataclass(frozen=True, slots=True)
class Retr:
    """RETR msg (RFC 1939 section 5)."""

    msg: int


@dataclass(frozen=True, slots=True)
class Dele:
    """DELE msg (RFC 1939 section 5)."""

    msg: int


@dataclass(frozen=True, slots=True)
class Noop:
    """NOOP (RFC 1939 section 5)."""


@dataclass(frozen=True, slots=True)
class Rset:
    """RSET (RFC 1939 section 5)."""


@dataclass(frozen=True, slots=True)
class Top:
    """TOP msg n (RFC 1939 section 7)."""

    msg: int
    lines: int


@dataclass(frozen=True, slots=True)
class Uidl:
    """UIDL [msg] (RFC 1939 section 7)."""

    msg: int | None


@dataclass(frozen=True, slots=True)
class Quit:
    """QUIT (RFC 1939 sections 4 and 6)."""


Command = (
    User
    | Pass
    | Apop
    | Auth
    | Stls
    | Capa
    | Utf8
    | Lang
    | Stat
    | List
    | Retr
    | Dele
    | Noop
    | Rset
    | Top
    | Uidl
    | Quit
)


_Parser = Callable[[bytes], Command]


class CommandError(Exception):
    """A line that is not a valid command; ``str()`` is the reason for ``-ERR``.
    ``keyword`` names the command when it is one we know (its arguments were wrong)."""

    def __init__(self, reason: str, keyword: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.keyword = keyword


# ---------------------------------------------------------------------------- parsing

_BLANKS = b" \t"
MAX_NUMBER = 2**63 - 1
"""Numbers above this are no message we could have; they are clamped, not refused, so
that ``RETR 99999999999999999999`` gets the usual "no such message"."""


_KEYWORD = re.compile(rb"[ \t]*([^ \t]*)(?:[ \t](.*))?", re.DOTALL)


def parse_command(line: bytes) -> Command:
    """One command line (CRLF already removed) → a command; raises CommandError."""
    match = _KEYWORD.fullmatch(line)
    assert match is not None  # the pattern matches any input
    keyword_bytes, rest = match.group(1), match.group(2) or b""
    if not keyword_bytes:
        raise CommandError("no command given")
    if not keyword_bytes.isascii() or not keyword_bytes.isalnum():
        raise CommandError("unknown command")
    keyword = keyword_bytes.decode("ascii").upper()
    parser = _PARSERS.get(keyword)
    if parser is None:
        raise CommandError("unknown command")
    try:
        return parser(rest)
    except CommandError as exc:
        raise CommandError(exc.reason, keyword) from None


def _args(rest: bytes) -> list[bytes]:
    return rest.replace(b"\t", b" ").split()


def _no_args(name: str, command: Command) -> _Parser:
    def parse(rest: bytes) -> Command:
        if _args(rest):
            raise CommandError(f"{name} takes no arguments")
        return command

    return parse


def _number(text: bytes, what: str) -> int:
    """``1*DIGIT`` as an int (RFC 1939: "msg" and "n" are decimal numbers)."""
    if not text.isdigit() or not text.isascii():
        raise CommandError(f"{what} must be a number")
    digits = text.lstrip(b"0") or b"0"
    if len(digits) > 19:
        return MAX_NUMBER
    return min(int(digits), MAX_NUMBER)


def _optional_msg(name: str, make: type[List] | type[Uidl]) -> _Parser:
    def parse(rest: bytes) -> Command:
        args = _args(rest)
        if len(args) > 1:
            raise CommandError(f"{name} takes at most one argument, a message number")
        return make(_number(args[0], "the message number") if args else None)

    return parse


def _one_msg(name: str, make: type[Retr] | type[Dele]) -> _Parser:
    def parse(rest: bytes) -> Command:
        args = _args(rest)
        if len(args) != 1:
            raise CommandError(f"{name} needs one argument, a message number")
        return make(_number(args[0], "the message number"))

    return parse


def _parse_top(rest: bytes) -> Command:
    args = _args(rest)
    if len(args) != 2:
        raise CommandError("TOP needs two arguments: a message number and a line count")
    return Top(_number(args[0], "the message number"), _number(args[1], "the line count"))


def _utf8(text: bytes, what: str) -> str:
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError(f"the {what} is not valid UTF-8") from None


def _parse_user(rest: bytes) -> Command:
    name = rest.strip(_BLANKS)
    if not name:
        raise CommandError("USER needs a user name")
    return User(_utf8(name, "user name"))


def _parse_pass(rest: bytes) -> Command:
    # RFC 1939 section 7: "a POP3 server may treat spaces in the argument as part of
    # the password, instead of as argument separators".
    if not rest:
        raise CommandError("PASS needs a password")
    return Pass(_utf8(rest, "password"))


def _parse_apop(rest: bytes) -> Command:
    return Apop()


def _parse_auth(rest: bytes) -> Command:
    args = _args(rest)
    if not args:
        return Auth(None)
    if len(args) > 2:
        raise CommandError("AUTH takes a mechanism name and an optional initial response")
    mechanism = args[0]
    if not mechanism.isascii():
        raise CommandError("the SASL mechanism name must be ASCII")
    return Auth(mechanism.decode("ascii").upper(), args[1] if len(args) == 2 else None)


def _parse_lang(rest: bytes) -> Command:
    args = _args(rest)
    if len(args) > 1:
        raise CommandError("LANG takes at most one argument, a language range")
    if not args:
        return Lang(None)
    if not args[0].isascii():
        raise CommandError("the language range must be ASCII")
    return Lang(args[0].decode("ascii"))


_PARSERS = {
    "USER": _parse_user,
    "PASS": _parse_pass,
    "APOP": _parse_apop,
    "AUTH": _parse_auth,
    "STLS": _no_args("STLS", Stls()),
    "CAPA": _no_args("CAPA", Capa()),
    "UTF8": _no_args("UTF8", Utf8()),
    "LANG": _parse_lang,
    "STAT": _no_args("STAT", Stat()),
    "LIST": _optional_msg("LIST", List),
    "RETR": _one_msg("RETR", Retr),
    "DELE": _one_msg("DELE", Dele),
    "NOOP": _no_args("NOOP", Noop()),
    "RSET": _no_args("RSET", Rset()),
    "TOP": _parse_top,
    "UIDL": _optional_msg("UIDL", Uidl),
    "QUIT": _no_args("QUIT", Quit()),
}
