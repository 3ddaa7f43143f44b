"""SMTP, submission and LMTP commands as frozen dataclasses, their parser, and replies.

Pure functions over bytes: ``parse_command(line)`` turns one command line (without its
line ending) into a ``Command`` or raises ``CommandError`` carrying the reply to send;
``Reply.encode()`` renders a (multi-line) reply with its RFC 3463 enhanced status code.

Leniency (what real clients send, accepted on purpose):

* ``MAIL FROM: <a@b>`` (space after the colon) and ``MAIL FROM:a@b`` (no angle brackets);
* verbs and parameter keywords in any case; trailing blanks;
* a source route ``<@relay:user@domain>`` is accepted and ignored (RFC 5321 4.1.2, C.).

Strictness: NUL octets and invalid UTF-8 in a command are syntax errors; addresses follow
RFC 5321 4.1.2 (with RFC 6531 UTF-8 allowed here; whether the transaction declared
SMTPUTF8 is the session's check) and the length limits of RFC 5321 4.5.3.1.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

# ------------------------------------------------------------------------------ replies


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply: ``code``, RFC 3463 ``status`` (``""`` for none: greeting, EHLO
    lines, 334, 354) and its text lines (RFC 5321 4.2)."""

    code: int
    status: str = ""
    lines: tuple[str, ...] = ("",)

    def encode(self) -> bytes:
        """``250-first\\r\\n250 last\\r\\n``; control characters in the text (which may
        echo client data) are replaced so a reply can never be split or forged."""
        lines = self.lines or ("",)
        out = []
        for index, text in enumerate(lines):
            separator = " " if index == len(lines) - 1 else "-"
            body = " ".join(part for part in (self.status, _printable(text)) if part)
            out.append(f"{self.code}{separator}{body}\r\n")
        return "".join(out).encode("utf-8", "replace")

    @property
    def positive(self) -> bool:
        return 200 <= self.code < 400

    @property
    def closes(self) -> bool:
        """421 ends the session (RFC 5321 3.8); 221 answers QUIT."""
        return self.code in (221, 421)


def reply(code: int, status: str, *lines: str) -> Reply:
    return Reply(code, status, lines or ("",))


def _printable(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else "?" for c in text)


class CommandError(Exception):
    """A command that cannot be accepted as written; ``reply`` says why."""

    def __init__(self, answer: Reply) -> None:
        super().__init__(answer.lines[0])
        self.reply = answer


# ------------------------------------------------------------------------------ commands


class Body(enum.Enum):
    """MAIL FROM ``BODY=`` (RFC 6152; BINARYMIME of RFC 3030 is not offered)."""

    SEVEN_BIT = "7BIT"
    EIGHT_BIT_MIME = "8BITMIME"


@dataclass(frozen=True, slots=True)
class MailParams:
    size: int | None = None
    """Declared message size, RFC 1870."""
    body: Body | None = None
    smtputf8: bool = False
    """RFC 6531: addresses and headers may be UTF-8."""
    auth: str | None = None
    """RFC 4954 section 5 ``AUTH=``: accepted and ignored (we never relay)."""


@dataclass(frozen=True, slots=True)
class Helo:
    domain: str


@dataclass(frozen=True, slots=True)
class Ehlo:
    domain: str


@dataclass(frozen=True, slots=True)
class Lhlo:
    domain: str


@dataclass(frozen=True, slots=True)
class Mail:
    address: str
    """The reverse-path without brackets; ``""`` for the null sender ``<>``."""
    params: MailParams = field(default_factory=MailParams)


@dataclass(frozen=True, slots=True)
class Rcpt:
    address: str


@dataclass(frozen=True, slots=True)
class Data:
    pass


@dataclass(frozen=True, slots=True)
class Bdat:
    """RFC 3030 CHUNKING: ``size`` octets follow the command line, taken verbatim."""

    size: int
    last: bool


@dataclass(frozen=True, slots=True)
class Rset:
    pass


@dataclass(frozen=True, slots=True)
class Noop:
    pass


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class Vrfy:
    argument: str


@dataclass(frozen=True, slots=True)
class Help:
    topic: str


@dataclass(frozen=True, slots=True)
class StartTls:
    pass


@dataclass(frozen=True, slots=True)
class Auth:
    """RFC 4954: ``initial`` is the base64 initial response as sent (``=`` for empty)."""

    mechanism: str
    initial: str | None


Command = (
    Helo
    | Ehlo
    | Lhlo
    | Mail
    | Rcpt
    | Data
    | Bdat
    | Rset
    | Noop
    | Quit
    | Vrfy
    | Help
    | StartTls
    | Auth
)

# Obsolete or unsupported verbs: "not implemented" rather than "unrecognized".
NOT_IMPLEMENTED = frozenset({"EXPN", "SEND", "SOML", "SAML", "TURN", "ETRN", "ATRN", "XCLIENT"})

# ------------------------------------------------------------------------------ parser

MAX_PATH = 256
"""RFC 5321 4.5.3.1.3: a path, with its angle brackets, is at most 256 octets."""
MAX_LOCAL_PART = 64
MAX_DOMAIN = 255
MAX_BDAT_DIGITS = 18

# RFC 5321 4.1.2 (with RFC 6531 3.3: UTF-8 allowed in atext and sub-domains):
#   Dot-string = Atom *("." Atom); Atom = 1*atext
#   Quoted-string = DQUOTE *QcontentSMTP DQUOTE
#   Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]
#   address-literal = "[" ( IPv4 / IPv6 / General-address-literal ) "]"
_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\U0010ffff]"
_DOT_STRING = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_QUOTED = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e])*"'
_LET_DIG = r"[A-Za-z0-9\u0080-\U0010ffff]"
_SUB_DOMAIN = rf"{_LET_DIG}(?:[A-Za-z0-9\-\u0080-\U0010ffff]*{_LET_DIG})?"
_DOMAIN = rf"{_SUB_DOMAIN}(?:\.{_SUB_DOMAIN})*"
_LITERAL = r"\[[\x21-\x5a\x5e-\x7e]+\]"
_MAILBOX = re.compile(rf"(?P<local>{_DOT_STRING}|{_QUOTED})@(?P<domain>{_DOMAIN}|{_LITERAL})")
_ROUTE = re.compile(rf"@{_DOMAIN}(?:,@{_DOMAIN})*:")
# esmtp-param = esmtp-keyword ["=" esmtp-value] (RFC 5321 4.1.2; UTF-8 per RFC 6531)
_PARAM = re.compile(r"(?P<key>[A-Za-z0-9][A-Za-z0-9\-]*)(?:=(?P<value>[^\x00-\x20=\x7f]+))?")


def syntax_error(text: str) -> CommandError:
    return CommandError(reply(501, "5.5.4", text))


def address_error(text: str) -> CommandError:
    return CommandError(reply(501, "5.1.3", text))


def parse_command(line: bytes) -> Command:
    """One command line, without CRLF. Raises ``CommandError`` with the reply to send."""
    if b"\x00" in line:
        raise CommandError(reply(500, "5.5.2", "NUL octet in command"))
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError(reply(500, "5.5.2", "command is not valid UTF-8")) from None
    text = text.rstrip(" \t\r")
    verb, _, rest = text.lstrip(" ").partition(" ")
    verb = verb.upper()
    rest = rest.strip(" \t")
    match verb:
        case "HELO":
            return Helo(_domain_argument(verb, rest))
        case "EHLO":
            return Ehlo(_domain_argument(verb, rest))
        case "LHLO":
            return Lhlo(_domain_argument(verb, rest))
        case "MAIL":
            address, params = _path_command(rest, "FROM:", null_ok=True)
            return Mail(address, _mail_params(params))
        case "RCPT":
            address, params = _path_command(rest, "TO:", null_ok=False)
            if params:
                # DSN (RFC 3461) is not offered: NOTIFY/ORCPT are not recognised.
                names = ", ".join(p.partition("=")[0].upper() for p in params)
                raise CommandError(
                    reply(555, "5.5.4", f"RCPT TO parameters not supported: {names}")
                )
            return Rcpt(address)
        case "DATA":
            _no_argument(verb, rest)
            return Data()
        case "BDAT":
            return _bdat(rest)
        case "RSET":
            _no_argument(verb, rest)
            return Rset()
        case "NOOP":
            return Noop()  # RFC 5321 4.1.1.9: an argument is allowed and ignored
        case "QUIT":
            return Quit()  # lenient: a client that wants to go may go
        case "VRFY":
            if not rest:
                raise syntax_error("VRFY needs an argument")
            return Vrfy(rest)
        case "HELP":
            return Help(rest)
        case "STARTTLS":
            _no_argument(verb, rest)
            return StartTls()
        case "AUTH":
            return _auth(rest)
        case _ if verb in NOT_IMPLEMENTED:
            raise CommandError(reply(502, "5.5.1", f"{verb} is not implemented"))
        case "":
            raise CommandError(reply(500, "5.5.2", "empty command"))
        case _:
            shown = verb if len(verb) <= 20 and verb.isascii() else verb[:20] + "..."
            raise CommandError(reply(500, "5.5.2", f"command not recognized: {shown}"))


def _no_argument(verb: str, rest: str) -> None:
    if rest:
        raise syntax_error(f"{verb} takes no arguments")


def _domain_argument(verb: str, rest: str) -> str:
    """HELO/EHLO/LHLO domain or address literal. Clients send all sorts of names here
    (bare host names, unbracketed IPs): anything non-empty is accepted and only the first
    word kept, for the Received header; it is never used for a decision."""
    if not rest:
        raise syntax_error(f"{verb} needs your domain name or address literal")
    return rest.split()[0][:MAX_DOMAIN]


def _path_command(rest: str, keyword: str, *, null_ok: bool) -> tuple[str, list[str]]:
    """``FROM:<path> params`` / ``TO:<path> params`` → (address, params)."""
    if rest[: len(keyword)].upper() != keyword:
        verb = "MAIL FROM" if keyword == "FROM:" else "RCPT TO"
        raise syntax_error(f"syntax: {verb}:<address> [parameters]")
    rest = rest[len(keyword) :].lstrip(" ")
    if rest.startswith("<"):
        end = rest.find(">")
        if end < 0:
            raise address_error("missing > after the address")
        path, params = rest[1:end], rest[end + 1 :]
        if params and not params.startswith(" "):
            raise syntax_error("expected a space after the address")
        if end + 1 > MAX_PATH:
            raise address_error(f"address longer than {MAX_PATH - 2} octets")
    else:
        path, _, params = rest.partition(" ")
        if len(path) > MAX_PATH - 2:
            raise address_error(f"address longer than {MAX_PATH - 2} octets")
    return _mailbox(path, null_ok=null_ok), params.split()


def _mailbox(path: str, *, null_ok: bool) -> str:
    if not path:
        if null_ok:
            return ""
        raise address_error("an empty address is not a recipient")
    route = _ROUTE.match(path)
    if route:
        path = path[route.end() :]
    if not null_ok and path.lower() == "postmaster":
        return "postmaster"  # RFC 5321 4.1.1.3: <Postmaster> without a domain
    found = _MAILBOX.fullmatch(path)
    if found is None:
        raise address_error(f"bad address syntax: <{_shorten(path)}>")
    if len(found["local"].encode()) > MAX_LOCAL_PART:
        raise address_error(f"local part longer than {MAX_LOCAL_PART} octets")
    if len(found["domain"].encode()) > MAX_DOMAIN:
        raise address_error(f"domain longer than {MAX_DOMAIN} octets")
    return path


def _shorten(text: str) -> str:
    return text if len(text) <= 64 else text[:64] + "..."


def _mail_params(params: list[str]) -> MailParams:
    """RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8, RFC 4954 AUTH."""
    seen: set[str] = set()
    size: int | None = None
    body: Body | None = None
    smtputf8 = False
    auth: str | None = None
    for param in params:
        found = _PARAM.fullmatch(param)
        if found is None:
            raise syntax_error(f"bad MAIL FROM parameter: {_shorten(param)}")
        key, value = found["key"].upper(), found["value"]
        if key in seen:
            raise syntax_error(f"parameter {key} given twice")
        seen.add(key)
        match key:
            case "SIZE":
                if value is None or not value.isdigit() or not value.isascii() or len(value) > 20:
                    raise syntax_error("SIZE needs a number of octets")
                size = int(value)
            case "BODY":
                try:
                    body = Body((value or "").upper())
                except ValueError:
                    raise CommandError(
                        reply(555, "5.5.4", f"BODY={value} is not supported (7BIT, 8BITMIME)")
                    ) from None
            case "SMTPUTF8":
                if value is not None:
                    raise syntax_error("SMTPUTF8 takes no value")
                smtputf8 = True
            case "AUTH":
                if value is None:
                    raise syntax_error("AUTH= needs a value")
                auth = value
            case _:
                raise CommandError(reply(555, "5.5.4", f"MAIL FROM parameter {key} not supported"))
    return MailParams(size, body, smtputf8, auth)


def _bdat(rest: str) -> Bdat:
    """RFC 3030: ``BDAT SP chunk-size [SP end-marker]``, end-marker = "LAST"."""
    words = rest.split()
    if not 1 <= len(words) <= 2 or not (words[0].isascii() and words[0].isdigit()):
        raise syntax_error("syntax: BDAT octets [LAST]")
    if len(words[0]) > MAX_BDAT_DIGITS:
        raise syntax_error("BDAT chunk size out of range")
    last = len(words) == 2
    if last and words[1].upper() != "LAST":
        raise syntax_error("syntax: BDAT octets [LAST]")
    return Bdat(int(words[0]), last)


def _auth(rest: str) -> Auth:
    """RFC 4954 section 4: ``AUTH mechanism [initial-response]``."""
    words = rest.split()
    if not 1 <= len(words) <= 2:
        raise syntax_error("syntax: AUTH mechanism [initial-response]")
    mechanism = words[0].upper()
    if not re.fullmatch(r"[A-Z0-9\-_]{1,20}", mechanism):
        raise syntax_error("bad SASL mechanism name")
    return Auth(mechanism, words[1] if len(words) == 2 else None)
