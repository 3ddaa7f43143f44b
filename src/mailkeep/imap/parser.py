"""Command parser: a framed command (``reader.Frame``) → a ``commands.Command``.

Follows the ABNF of RFC 9051 section 9 (and RFC 3501 section 9 for what IMAP4rev1 has
that rev2 dropped: RECENT, NEW, OLD, LSUB, CHECK's meaning), plus the extension RFCs named
beside each rule. Errors are ``ParseError`` with a reason precise enough to put in the BAD
response ("expected SP after tag", "unknown FETCH attribute BODDY").

Liberal where real clients are sloppy and nothing is ambiguous: command names, keywords
and search keys in any case (``uid fetch``), a trailing space at the end of the command,
8-bit octets in quoted strings, a bare one-digit day in date-time. Strict elsewhere: a
literal must end its line, escapes in quoted strings are only ``\\"`` and ``\\\\``, numbers
must fit their ABNF width, and nothing may follow a complete command.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from datetime import date, datetime

from mailkeep.imap import commands as c
from mailkeep.imap import sequence
from mailkeep.imap.dates import (
    DATE_TIME,
    SEARCH_DATE,
    DateError,
    date_from_match,
    datetime_from_match,
)
from mailkeep.imap.grammar import (
    ASTRING_ATOM,
    ATOM,
    LIST_MAILBOX_ATOM,
    MAX_NUMBER,
    MAX_NUMBER64,
    QUOTED,
    TAG,
    unescape_quoted,
)
from mailkeep.imap.reader import ErrorKind, Frame, Literal

SEARCH_CHARSETS = ("US-ASCII", "UTF-8")
"""Charsets SEARCH/SORT/THREAD accept (RFC 9051 6.4.4: US-ASCII and UTF-8 are required);
others give ``ErrorKind.BADCHARSET`` so the session answers ``NO [BADCHARSET (...)]``."""

MAX_NESTING = 64
"""Deepest nesting of search keys (parentheses, NOT, OR) accepted."""


class ParseError(Exception):
    """A command that does not follow the grammar; ``reason`` goes into the BAD reply."""

    def __init__(self, reason: str, kind: ErrorKind = ErrorKind.SYNTAX) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.save = False
        """A SEARCH that asked for ``RETURN (SAVE)`` (RFC 5182: a NO then empties ``$``)."""


_LITERAL_HERE = re.compile(rb"(~?)\{([0-9]{1,20})\+?\}\Z")
_NUMBER = re.compile(rb"[0-9]+")
_NAME = re.compile(rb"[A-Za-z0-9._-]+")
_FETCH_NAME = re.compile(rb"[A-Za-z0-9.]+")
_SEQUENCE = sequence.SEQUENCE_SET
_FLAG = re.compile(rb"\\?" + ATOM.pattern)
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}\Z")
_SECTION_PART = re.compile(rb"[0-9]+(?:\.[0-9]+)*")
_SECTION_TEXT = re.compile(rb"(?i:HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)")
_PARTIAL = re.compile(rb"<([0-9]{1,20})(?:\.([0-9]{1,20}))?>")
_PARTIAL_RANGE = re.compile(rb"(-?)([0-9]{1,20}):(-?)([0-9]{1,20})")
_OBJECTID = re.compile(rb"[A-Za-z0-9_-]{1,255}")
_ENTRY_FLAG = re.compile(rb"/flags/\\?" + ATOM.pattern)


def _show(token: bytes) -> str:
    return token[:40].decode("utf-8", "replace")


class Cursor:
    """Position in a frame: the current line and offset, and the next literal.

    Literal octets are only ever sliced out of the frame, never copied into the line.
    """

    __slots__ = ("index", "line", "lines", "literals", "pos")

    def __init__(self, frame: Frame, start: int = 0) -> None:
        self.lines = frame.lines
        self.literals = frame.literals
        self.index = 0
        self.line = frame.lines[0]
        self.pos = start

    # --- primitives

    def peek(self) -> int:
        """The next octet, or -1 at the end of the line."""
        return self.line[self.pos] if self.pos < len(self.line) else -1

    def at_end(self) -> bool:
        return self.pos >= len(self.line) and self.index == len(self.lines) - 1

    def match(self, regex: re.Pattern[bytes]) -> re.Match[bytes] | None:
        found = regex.match(self.line, self.pos)
        if found is not None:
            self.pos = found.end()
        return found

    def found(self) -> str:
        """What stands at the cursor, for error messages."""
        if self.pos >= len(self.line):
            return "a literal" if self.index < len(self.lines) - 1 else "end of command"
        token = self.line[self.pos : self.pos + 20].split(b" ", 1)[0] or b" "
        return "SP" if token == b" " else repr(_show(token))

    def fail(self, expected: str) -> ParseError:
        return ParseError(f"expected {expected}, found {self.found()}")

    def sp(self, where: str) -> None:
        if self.peek() != 0x20:
            raise self.fail(f"SP {where}")
        self.pos += 1

    def char(self, octet: bytes, what: str) -> None:
        if self.line[self.pos : self.pos + 1] != octet:
            raise self.fail(what)
        self.pos += 1

    def try_char(self, octet: bytes) -> bool:
        if self.line[self.pos : self.pos + 1] == octet:
            self.pos += 1
            return True
        return False

    def try_sp(self) -> bool:
        return self.try_char(b" ")

    def keyword(self, what: str = "keyword") -> str:
        """An atom-like name, upper-cased."""
        found = self.match(_NAME)
        if found is None:
            raise self.fail(what)
        return found.group().decode("ascii").upper()

    def try_keyword(self, word: bytes) -> bool:
        """Consume ``word`` (case-insensitive) if it stands here as a whole token."""
        end = self.pos + len(word)
        if self.line[self.pos : end].upper() == word and (
            end == len(self.line) or self.line[end] in b" ()[]"
        ):
            self.pos = end
            return True
        return False

    def end(self) -> None:
        if self.index == len(self.lines) - 1:
            rest = self.line[self.pos :]
            if not rest.strip(b" "):
                return
        while self.peek() == 0x20:
            self.pos += 1
        raise ParseError(f"unexpected {self.found()} after the command")

    # --- strings

    def literal(self) -> Literal | None:
        """A literal announced here (at the end of the line), or None."""
        if self.peek() not in (0x7B, 0x7E):  # "{" or "~"
            return None
        found = _LITERAL_HERE.match(self.line, self.pos)
        if found is None or self.index >= len(self.literals):
            raise self.fail("a literal ('{n}' at the end of a line)")
        value = self.literals[self.index]
        self.index += 1
        self.line = self.lines[self.index]
        self.pos = 0
        return value

    def string(self, what: str = "string") -> bytes:
        """``string = quoted / literal``."""
        if self.peek() == 0x22:
            return self._quoted()
        value = self.literal()
        if value is None:
            raise self.fail(what)
        if value.binary:
            raise ParseError(f"a binary literal (~{{n}}) is not allowed as {what}")
        return value.data

    def _quoted(self) -> bytes:
        found = QUOTED.match(self.line, self.pos)
        if found is None:
            rest = self.line[self.pos + 1 :]
            if b"\\" in rest and re.search(rb'\\[^"\\]', rest):
                raise ParseError('invalid escape in quoted string (only \\" and \\\\)')
            raise ParseError("unterminated quoted string")
        self.pos = found.end()
        return unescape_quoted(found.group(1))

    def _literal_here(self) -> bool:
        """Whether a literal announcement (which the reader framed) stands here."""
        return self.peek() in (0x7B, 0x7E) and _LITERAL_HERE.match(self.line, self.pos) is not None

    def astring(self, what: str = "astring") -> bytes:
        """``astring = 1*ASTRING-CHAR / string``."""
        if self._literal_here():
            return self.string(what)
        found = self.match(ASTRING_ATOM)
        if found is not None:
            return found.group()
        return self.string(what)

    def nstring(self, what: str = "nstring") -> bytes | None:
        if self.try_keyword(b"NIL"):
            return None
        return self.string(what)

    def mailbox(self) -> bytes:
        """``mailbox = "INBOX" / astring`` (INBOX case is resolved by the session)."""
        return self.astring("mailbox name")

    def list_mailbox(self) -> bytes:
        """``list-mailbox = 1*list-char / string``."""
        if self._literal_here():
            return self.string("mailbox pattern")
        found = self.match(LIST_MAILBOX_ATOM)
        if found is not None:
            return found.group()
        return self.string("mailbox pattern")

    # --- numbers

    def number(self, what: str = "number", limit: int = MAX_NUMBER, nz: bool = False) -> int:
        found = self.match(_NUMBER)
        if found is None:
            raise self.fail(what)
        digits = found.group()
        if len(digits) > 20 or int(digits) > limit:
            raise ParseError(f"{what} {_show(digits)} is out of range")
        value = int(digits)
        if nz and value == 0:
            raise ParseError(f"{what} must not be zero")
        return value

    def sequence_set(self) -> sequence.SequenceSet:
        found = self.match(_SEQUENCE)
        if found is None:
            raise self.fail("sequence set")
        try:
            return sequence.parse(found.group())
        except sequence.SequenceSetError as exc:
            raise ParseError(str(exc)) from None

    # --- lists

    def flag(self) -> str:
        """``flag = "\\" atom / atom`` (system, extension, keyword)."""
        found = self.match(_FLAG)
        if found is None:
            raise self.fail("flag")
        return found.group().decode("ascii")

    def flag_list(self) -> tuple[str, ...]:
        """``flag-list = "(" [flag *(SP flag)] ")"``."""
        self.char(b"(", "'(' to open the flag list")
        flags: list[str] = []
        if not self.try_char(b")"):
            flags.append(self.flag())
            while self.try_sp():
                flags.append(self.flag())
            self.char(b")", "')' to close the flag list")
        return tuple(flags)

    def paren_list(self, item: Callable[[], str], what: str) -> tuple[str, ...]:
        """``"(" item *(SP item) ")"``, at least one item."""
        self.char(b"(", f"'(' to open {what}")
        items = [item()]
        while self.try_sp():
            items.append(item())
        self.char(b")", f"')' to close {what}")
        return tuple(items)


# ====================================================================== entry point


def parse_command(frame: Frame) -> tuple[str, c.Command]:
    """Parse a framed command into (tag, command); ``ParseError`` if malformed.

    ``command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF``
    """
    cursor = Cursor(frame)
    found = cursor.match(TAG)
    if found is None:
        raise ParseError("expected a tag at the start of the command")
    tag = found.group().decode("ascii")
    cursor.sp("after tag")
    name = cursor.keyword("command name")
    uid = False
    if name == "UID":
        cursor.sp("after UID")
        name = cursor.keyword("command after UID")
        if name not in _UID_COMMANDS:
            raise ParseError(f"UID {name} is not a command", ErrorKind.UNKNOWN_COMMAND)
        uid = True
    handler = _COMMANDS.get(name)
    if handler is None:
        raise ParseError(f"unknown command {name}", ErrorKind.UNKNOWN_COMMAND)
    command = handler(cursor, uid)
    cursor.end()
    return tag, command


# ====================================================================== commands


def _no_args(command: c.Command) -> Callable[[Cursor, bool], c.Command]:
    def parse(cursor: Cursor, uid: bool) -> c.Command:
        return command

    return parse


def _id(cur: Cursor, uid: bool) -> c.Id:
    """RFC 2971: ``id = "ID" SP id-params-list``;
    ``id-params-list = "(" *(string SP nstring) ")" / nil``."""
    cur.sp("after ID")
    if cur.try_keyword(b"NIL"):
        return c.Id(None)
    cur.char(b"(", "'(' or NIL after ID")
    params: list[tuple[str, str | None]] = []
    while not cur.try_char(b")"):
        if params:
            cur.sp("between ID parameters")
        key = cur.string("ID field name").decode("utf-8", "replace")
        cur.sp("after ID field name")
        value = cur.nstring("ID field value")
        params.append((key, None if value is None else value.decode("utf-8", "replace")))
        if len(params) > 30:
            raise ParseError("too many ID parameters (RFC 2971 allows 30)")
    return c.Id(tuple(params))


def _authenticate(cur: Cursor, uid: bool) -> c.Authenticate:
    """``authenticate = "AUTHENTICATE" SP auth-type [SP (base64 / "=")]`` (RFC 4959)."""
    cur.sp("after AUTHENTICATE")
    mechanism = cur.keyword("SASL mechanism name")
    initial: bytes | None = None
    if cur.try_sp():
        token = cur.line[cur.pos :].rstrip(b" ")
        cur.pos += len(token)
        initial = decode_base64(token)
    return c.Authenticate(mechanism, initial)


def decode_base64(token: bytes) -> bytes:
    """A SASL response: base64, or ``=`` for an empty one (RFC 4959 3)."""
    if token == b"=":
        return b""
    if not _BASE64.match(token) or len(token) % 4:
        raise ParseError("invalid base64 in SASL response")
    try:
        return binascii.a2b_base64(token, strict_mode=True)
    except binascii.Error:
        raise ParseError("invalid base64 in SASL response") from None


def _login(cur: Cursor, uid: bool) -> c.Login:
    """``login = "LOGIN" SP userid SP password``; both astring."""
    cur.sp("after LOGIN")
    user = cur.astring("user name")
    cur.sp("after user name")
    password = cur.astring("password")
    return c.Login(user, password)


def _enable(cur: Cursor, uid: bool) -> c.Enable:
    """``enable = "ENABLE" 1*(SP capability)`` (RFC 5161)."""
    cur.sp("after ENABLE")
    caps = [_capability(cur)]
    while cur.try_sp():
        if cur.at_end():
            break
        caps.append(_capability(cur))
    return c.Enable(tuple(caps))


def _capability(cur: Cursor) -> str:
    found = cur.match(ATOM)
    if found is None:
        raise cur.fail("capability name")
    return found.group().decode("ascii").upper()


def _select(cur: Cursor, uid: bool, readonly: bool = False) -> c.Select:
    """``select = "SELECT" SP mailbox [select-params]``;
    ``select-params = SP "(" select-param *(SP select-param) ")"``;
    ``select-param = "CONDSTORE" / "QRESYNC" SP "(" uidvalidity SP mod-sequence-value
    [SP known-uids] [SP seq-match-data] ")"`` (RFC 7162 7)."""
    what = "EXAMINE" if readonly else "SELECT"
    cur.sp(f"after {what}")
    mailbox = cur.mailbox()
    condstore = False
    qresync: c.Qresync | None = None
    if cur.try_sp() and not cur.at_end():
        cur.char(b"(", f"'(' to open {what} parameters")
        while True:
            param = cur.keyword(f"{what} parameter")
            if param == "CONDSTORE":
                condstore = True
            elif param == "QRESYNC":
                cur.sp("after QRESYNC")
                qresync = _qresync(cur)
            else:
                raise ParseError(f"unknown {what} parameter {param}")
            if not cur.try_sp():
                break
        cur.char(b")", f"')' to close {what} parameters")
    return c.Select(mailbox, readonly, condstore, qresync)


def _qresync(cur: Cursor) -> c.Qresync:
    cur.char(b"(", "'(' after QRESYNC")
    uidvalidity = cur.number("UIDVALIDITY", nz=True)
    cur.sp("after UIDVALIDITY")
    modseq = cur.number("mod-sequence-value", MAX_NUMBER64)
    known_uids = known_seq = known_seq_uids = None
    if cur.try_sp():
        if cur.peek() != 0x28:
            known_uids = _no_star(cur, "known-uids")
            if not cur.try_sp():
                cur.char(b")", "')' to close QRESYNC parameters")
                return c.Qresync(uidvalidity, modseq, known_uids)
        cur.char(b"(", "'(' to open seq-match-data")
        known_seq = _no_star(cur, "known-sequence-set")
        cur.sp("in seq-match-data")
        known_seq_uids = _no_star(cur, "known-uid-set")
        cur.char(b")", "')' to close seq-match-data")
    cur.char(b")", "')' to close QRESYNC parameters")
    return c.Qresync(uidvalidity, modseq, known_uids, known_seq, known_seq_uids)


def _no_star(cur: Cursor, what: str) -> sequence.SequenceSet:
    """RFC 7162 7: known-uids etc. are sequence sets "without *" (nor ``$``)."""
    seqset = cur.sequence_set()
    if seqset.saved or seqset.uses_star:
        raise ParseError(f"{what} must not contain '*' or '$'")
    return seqset


def _examine(cur: Cursor, uid: bool) -> c.Select:
    return _select(cur, uid, readonly=True)


def _create(cur: Cursor, uid: bool) -> c.Create:
    """``create = "CREATE" SP mailbox [create-params]``;
    ``create-param =/ "USE" SP "(" [use-attr *(SP use-attr)] ")"`` (RFC 6154 6)."""
    cur.sp("after CREATE")
    mailbox = cur.mailbox()
    uses: tuple[str, ...] = ()
    if cur.try_sp() and not cur.at_end():
        cur.char(b"(", "'(' to open CREATE parameters")
        while True:
            param = cur.keyword("CREATE parameter")
            if param != "USE":
                raise ParseError(f"unknown CREATE parameter {param}")
            cur.sp("after USE")
            cur.char(b"(", "'(' after USE")
            if not cur.try_char(b")"):
                found = [cur.flag()]
                while cur.try_sp():
                    found.append(cur.flag())
                cur.char(b")", "')' to close USE")
                uses += tuple(found)
            if not cur.try_sp():
                break
        cur.char(b")", "')' to close CREATE parameters")
    return c.Create(mailbox, uses)


def _mailbox_command(
    cls: type[c.Delete | c.Subscribe | c.Unsubscribe | c.GetQuotaRoot | c.GetAcl | c.MyRights],
    name: str,
) -> Callable[[Cursor, bool], c.Command]:
    def parse(cur: Cursor, uid: bool) -> c.Command:
        cur.sp(f"after {name}")
        return cls(cur.mailbox())

    return parse


def _rename(cur: Cursor, uid: bool) -> c.Rename:
    """``rename = "RENAME" SP mailbox SP mailbox``."""
    cur.sp("after RENAME")
    old = cur.mailbox()
    cur.sp("after the existing mailbox name")
    return c.Rename(old, cur.mailbox())


_LIST_SELECT = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
_LIST_RETURN = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "MYRIGHTS"})


def _list(cur: Cursor, uid: bool) -> c.List:
    """RFC 5258 3 / RFC 9051 9::

    list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
    list-select-opts = "(" [(*(list-select-mod-opt SP) list-select-base-opt
                       *(SP list-select-opt)) / (list-select-independent-opt
                       *(SP list-select-independent-opt))] ")"
    mbox-or-pat = list-mailbox / patterns
    patterns = "(" list-mailbox *(SP list-mailbox) ")"
    list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"
    status-option = "STATUS" SP "(" status-att *(SP status-att) ")"   ; RFC 5819
    """
    cur.sp("after LIST")
    extended = False
    select: list[str] = []
    if cur.peek() == 0x28:
        extended = True
        cur.pos += 1
        if not cur.try_char(b")"):
            select.append(cur.keyword("LIST selection option"))
            while cur.try_sp():
                select.append(cur.keyword("LIST selection option"))
            cur.char(b")", "')' to close LIST selection options")
        select = list(dict.fromkeys(select))  # RFC 9051 6.3.9: a repeated option counts once
        for option in select:
            if option not in _LIST_SELECT:
                raise ParseError(f"unknown LIST selection option {option}")
        if "RECURSIVEMATCH" in select and not ({"SUBSCRIBED", "SPECIAL-USE"} & set(select)):
            raise ParseError("RECURSIVEMATCH needs another selection option (RFC 5258 3)")
        cur.sp("after LIST selection options")
    reference = cur.mailbox()
    cur.sp("after LIST reference")
    if cur.peek() == 0x28:
        extended = True
        cur.pos += 1
        patterns = [cur.list_mailbox()]
        while cur.try_sp():
            patterns.append(cur.list_mailbox())
        cur.char(b")", "')' to close the pattern list")
    else:
        patterns = [cur.list_mailbox()]
    returns: list[str] = []
    status: tuple[str, ...] | None = None
    if cur.try_sp() and not cur.at_end():
        extended = True
        if not cur.try_keyword(b"RETURN"):
            raise cur.fail("RETURN")
        cur.sp("after RETURN")
        cur.char(b"(", "'(' after RETURN")
        first = True
        while not cur.try_char(b")"):
            if not first:
                cur.sp("between LIST return options")
            first = False
            option = cur.keyword("LIST return option")
            if option == "STATUS":
                cur.sp("after STATUS")
                status = _status_items(cur)
            elif option in _LIST_RETURN:
                if option not in returns:
                    returns.append(option)
            else:
                raise ParseError(f"unknown LIST return option {option}")
    return c.List(reference, tuple(patterns), tuple(select), tuple(returns), status, extended)


def _lsub(cur: Cursor, uid: bool) -> c.Lsub:
    """``lsub = "LSUB" SP mailbox SP list-mailbox`` (RFC 3501)."""
    cur.sp("after LSUB")
    reference = cur.mailbox()
    cur.sp("after LSUB reference")
    return c.Lsub(reference, cur.list_mailbox())


STATUS_ITEMS = frozenset(
    {
        "MESSAGES",
        "RECENT",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",
        "DELETED-STORAGE",
        "SIZE",
        "HIGHESTMODSEQ",
        "APPENDLIMIT",
        "MAILBOXID",
    }
)


def _status_items(cur: Cursor) -> tuple[str, ...]:
    """``"(" status-att *(SP status-att) ")"``; RFC 9051, RFC 7162 HIGHESTMODSEQ,
    RFC 7889 APPENDLIMIT, RFC 8474 MAILBOXID, RFC 8438 SIZE, RFC 9208 DELETED-STORAGE."""
    items = cur.paren_list(lambda: cur.keyword("status item"), "the status items")
    for item in items:
        if item not in STATUS_ITEMS:
            raise ParseError(f"unknown STATUS item {item}")
    return items


def _status(cur: Cursor, uid: bool) -> c.Status:
    """``status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"``."""
    cur.sp("after STATUS")
    mailbox = cur.mailbox()
    cur.sp("after the mailbox name")
    return c.Status(mailbox, _status_items(cur))


def _append(cur: Cursor, uid: bool) -> c.Append:
    """RFC 9051 9, RFC 3502 (MULTIAPPEND), RFC 3516, RFC 6855::

    append         = "APPEND" SP mailbox 1*append-message
    append-message = append-opts SP append-data
    append-opts    = [SP flag-list] [SP date-time] *(SP append-ext)
    append-data    = literal / literal8 / "UTF8" SP "(" literal8 ")"
    """
    cur.sp("after APPEND")
    mailbox = cur.mailbox()
    messages = [_append_message(cur)]
    while not cur.at_end() and cur.line[cur.pos :].strip(b" "):
        messages.append(_append_message(cur))
    return c.Append(mailbox, tuple(messages))


def _append_message(cur: Cursor) -> c.AppendMessage:
    cur.sp("before the message")
    flags: tuple[str, ...] = ()
    when: datetime | None = None
    if cur.peek() == 0x28:
        flags = cur.flag_list()
        cur.sp("after the flag list")
    if cur.peek() == 0x22:
        when = _date_time(cur)
        cur.sp("after the date-time")
    if cur.try_keyword(b"UTF8"):
        cur.sp("after UTF8")
        cur.char(b"(", "'(' after UTF8")
        value = cur.literal()
        if value is None:
            raise cur.fail("a literal8 ('~{n}') in UTF8 (...)")
        cur.char(b")", "')' to close UTF8 (...)")
        return c.AppendMessage(value.data, flags, when, binary=True, utf8=True)
    value = cur.literal()
    if value is None:
        raise cur.fail("the message as a literal")
    return c.AppendMessage(value.data, flags, when, binary=value.binary)


def _date_time(cur: Cursor) -> datetime:
    found = cur.match(DATE_TIME)
    if found is None:
        raise cur.fail('date-time like "17-Jul-1996 02:44:25 -0700"')
    try:
        return datetime_from_match(found)
    except DateError as exc:
        raise ParseError(str(exc)) from None


def _expunge(cur: Cursor, uid: bool) -> c.Expunge:
    """``expunge = "EXPUNGE"``; ``uid-expunge = "UID" SP "EXPUNGE" SP sequence-set``."""
    if not uid:
        return c.Expunge()
    cur.sp("after UID EXPUNGE")
    return c.Expunge(cur.sequence_set())


def _copy_or_move(cls: type[c.Copy | c.Move], name: str) -> Callable[[Cursor, bool], c.Command]:
    """``copy = "COPY" SP sequence-set SP mailbox``; ``move = "MOVE" SP sequence-set SP
    mailbox`` (RFC 6851)."""

    def parse(cur: Cursor, uid: bool) -> c.Command:
        cur.sp(f"after {name}")
        seqset = cur.sequence_set()
        cur.sp("after the sequence set")
        return cls(seqset, cur.mailbox(), uid)

    return parse


# ---------------------------------------------------------------------- FETCH

_FETCH_SIMPLE = frozenset(
    {
        "FLAGS",
        "INTERNALDATE",
        "RFC822.SIZE",
        "ENVELOPE",
        "BODY",
        "BODYSTRUCTURE",
        "UID",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.TEXT",
        "MODSEQ",
        "EMAILID",
        "THREADID",
        "SAVEDATE",
    }
)
_MACROS: dict[str, tuple[c.FetchItem, ...]] = {
    "ALL": tuple(c.FetchAttr(n) for n in ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE")),
    "FAST": tuple(c.FetchAttr(n) for n in ("FLAGS", "INTERNALDATE", "RFC822.SIZE")),
    "FULL": tuple(
        c.FetchAttr(n) for n in ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY")
    ),
}


def _fetch(cur: Cursor, uid: bool) -> c.Fetch:
    """RFC 9051 9, RFC 7162 (CHANGEDSINCE, VANISHED), RFC 9394 (PARTIAL)::

    fetch           = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" /
                      fetch-att / "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]
    fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"
    fetch-modifier  = "CHANGEDSINCE" SP mod-sequence-value / "VANISHED" /
                      "PARTIAL" SP partial-range
    """
    cur.sp("after FETCH")
    seqset = cur.sequence_set()
    cur.sp("after the sequence set")
    if cur.try_char(b"("):
        items = [fetch_att(cur)]
        while cur.try_sp():
            items.append(fetch_att(cur))
        cur.char(b")", "')' to close the FETCH attributes")
    else:
        start = cur.pos
        name = cur.match(_FETCH_NAME)
        macro = _MACROS.get(name.group().decode("ascii").upper()) if name else None
        if macro is not None and cur.peek() in (-1, 0x20):
            items = list(macro)
        else:
            cur.pos = start
            items = [fetch_att(cur)]
    changedsince: int | None = None
    vanished = False
    partial: tuple[int, int] | None = None
    if cur.try_sp() and not cur.at_end():
        cur.char(b"(", "'(' to open FETCH modifiers")
        while True:
            modifier = cur.keyword("FETCH modifier")
            if modifier == "CHANGEDSINCE":
                cur.sp("after CHANGEDSINCE")
                changedsince = cur.number("mod-sequence-value", MAX_NUMBER64)
            elif modifier == "VANISHED":
                vanished = True
            elif modifier == "PARTIAL":
                cur.sp("after PARTIAL")
                partial = _partial_range(cur)
            else:
                raise ParseError(f"unknown FETCH modifier {modifier}")
            if not cur.try_sp():
                break
        cur.char(b")", "')' to close FETCH modifiers")
    if vanished and (not uid or changedsince is None):
        raise ParseError("VANISHED needs UID FETCH with CHANGEDSINCE (RFC 7162 3.2.6)")
    return c.Fetch(seqset, tuple(items), uid, changedsince, vanished, partial)


def fetch_att(cur: Cursor) -> c.FetchItem:
    """RFC 9051 9 ``fetch-att`` (plus MODSEQ RFC 7162, EMAILID/THREADID RFC 8474,
    SAVEDATE RFC 8514, PREVIEW RFC 8970)::

    fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" / "RFC822" [".HEADER" / ".TEXT"] /
                "RFC822.SIZE" / "BODY" ["STRUCTURE"] / "UID" /
                "BODY" section [partial] / "BODY.PEEK" section [partial] /
                "BINARY" [".PEEK"] section-binary [partial] / "BINARY.SIZE" section-binary
    partial   = "<" number64 "." nz-number64 ">"
    """
    found = cur.match(_FETCH_NAME)
    if found is None:
        raise cur.fail("FETCH attribute")
    name = found.group().decode("ascii").upper()
    if cur.peek() == 0x5B:  # "["
        if name in ("BODY", "BODY.PEEK"):
            section = _section(cur)
            return c.FetchBody(section, _partial(cur), peek=name == "BODY.PEEK")
        if name in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):
            part, spec = _section_binary(cur)
            if name == "BINARY.SIZE":
                return c.FetchBinary(part, size=True, section=spec)
            return c.FetchBinary(part, _partial(cur), peek=name == "BINARY.PEEK", section=spec)
        raise ParseError(f"FETCH attribute {name} takes no section")
    if name in _FETCH_SIMPLE:
        return c.FetchAttr(name)
    if name == "PREVIEW":
        lazy = False
        if cur.line[cur.pos : cur.pos + 2] == b" (":
            cur.pos += 2
            modifier = cur.keyword("PREVIEW modifier")
            if modifier != "LAZY":
                raise ParseError(f"unknown PREVIEW modifier {modifier}")
            cur.char(b")", "')' after LAZY")
            lazy = True
        return c.FetchPreview(lazy)
    if name in ("BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE"):
        raise cur.fail(f"'[' after {name}")
    if name in _MACROS:
        raise ParseError(f"FETCH macro {name} must be used alone, not in a list")
    raise ParseError(f"unknown FETCH attribute {_show(found.group())}")


def _section(cur: Cursor) -> c.Section:
    """``section = "[" [section-spec] "]"``;
    ``section-spec = section-msgtext / (section-part ["." section-text])``;
    ``section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"``;
    ``section-text = section-msgtext / "MIME"``."""
    cur.pos += 1  # "["
    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()
    found = cur.match(_SECTION_PART)
    if found is not None:
        part = _part_numbers(found.group())
        if cur.try_char(b"."):
            text = _section_text(cur)
    elif cur.peek() != 0x5D:
        text = _section_text(cur)
    if text == "MIME" and not part:
        raise ParseError("MIME needs a part number (RFC 9051 6.4.5)")
    if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        cur.sp(f"after {text}")
        fields = cur.paren_list(
            # The client's spelling is kept: the response echoes it (fields compare
            # case-insensitively when the header is cut).
            lambda: cur.astring("header field name").decode("ascii", "replace"),
            "the header field list",
        )
    cur.char(b"]", "']' to close the section")
    return c.Section(part, text, fields)


def _section_text(cur: Cursor) -> str:
    found = cur.match(_SECTION_TEXT)
    if found is None:
        raise cur.fail("HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT or MIME")
    return found.group().decode("ascii").upper()


def _part_numbers(text: bytes) -> tuple[int, ...]:
    numbers = []
    for digits in text.split(b"."):
        if len(digits) > 10 or not 0 < int(digits) <= MAX_NUMBER:
            raise ParseError(f"section part {_show(digits)} must be a non-zero number")
        numbers.append(int(digits))
    return tuple(numbers)


def _section_binary(cur: Cursor) -> tuple[tuple[int, ...], c.Section | None]:
    """``section-binary = "[" [section-part] "]"`` (RFC 3516), and, as Dovecot accepts
    them, BODY's section forms (``[1.MIME]``, ``[2.HEADER]``, ``[TEXT]``): the part
    numbers, and the whole section when it has a section-text (see ``c.FetchBinary``)."""
    section = _section(cur)
    return section.part, (section if section.text is not None else None)


def _partial(cur: Cursor) -> tuple[int, int] | None:
    if cur.peek() != 0x3C:  # "<"
        return None
    found = cur.match(_PARTIAL)
    if found is None:
        raise cur.fail("partial like <0.1024>")
    # RFC 3501/9051 require ``<origin.octets>``. We also accept ``<origin>`` alone,
    # meaning "from origin to the end", as Dovecot does: imaptest's BINARY scripts send
    # it (BINARY.PEEK[5]<15>), and a lenient reading of a form no RFC gives another
    # meaning costs nothing. The response names ``<origin>`` either way.
    origin = int(found.group(1))
    length = MAX_NUMBER64 if found.group(2) is None else int(found.group(2))
    if origin > MAX_NUMBER64 or not 0 < length <= MAX_NUMBER64:
        raise ParseError("partial origin or length out of range (length must be non-zero)")
    return origin, length


def _partial_range(cur: Cursor) -> tuple[int, int]:
    """RFC 9394: ``partial-range = partial-range-first / partial-range-last``;
    ``partial-range-first = nz-number ":" nz-number``;
    ``partial-range-last = MINUS nz-number ":" MINUS nz-number``."""
    found = cur.match(_PARTIAL_RANGE)
    if found is None:
        raise cur.fail("partial range like 1:100 or -1:-100")
    sign1, a, sign2, b = found.groups()
    if sign1 != sign2:
        raise ParseError("partial range ends must both be positive or both negative")
    first, last = int(a), int(b)
    if not (0 < first <= MAX_NUMBER and 0 < last <= MAX_NUMBER):
        raise ParseError("partial range numbers must be non-zero 32-bit numbers")
    if sign1:
        return -first, -last
    return first, last


# ---------------------------------------------------------------------- STORE


def _store(cur: Cursor, uid: bool) -> c.Store:
    """RFC 9051 9, RFC 7162 (UNCHANGEDSINCE)::

    store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags
    store-modifiers = SP "(" store-modifier *(SP store-modifier) ")"
    store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))
    """
    cur.sp("after STORE")
    seqset = cur.sequence_set()
    cur.sp("after the sequence set")
    unchangedsince: int | None = None
    if cur.try_char(b"("):
        while True:
            modifier = cur.keyword("STORE modifier")
            if modifier != "UNCHANGEDSINCE":
                raise ParseError(f"unknown STORE modifier {modifier}")
            cur.sp("after UNCHANGEDSINCE")
            unchangedsince = cur.number("mod-sequence-valzer", MAX_NUMBER64)
            if not cur.try_sp():
                break
        cur.char(b")", "')' to close STORE modifiers")
        cur.sp("after STORE modifiers")
    action = ""
    if cur.peek() in (0x2B, 0x2D):
        action = chr(cur.peek())
        cur.pos += 1
    item = cur.keyword("FLAGS, +FLAGS or -FLAGS")
    if item not in ("FLAGS", "FLAGS.SILENT"):
        raise ParseError(f"unknown STORE data item {action}{item} (expected [+|-]FLAGS[.SILENT])")
    cur.sp(f"after {action}{item}")
    if cur.peek() == 0x28:
        flags = cur.flag_list()
    else:
        found = [cur.flag()]
        while cur.try_sp():
            if cur.at_end():
                break
            found.append(cur.flag())
        flags = tuple(found)
    return c.Store(seqset, action, flags, uid, item.endswith(".SILENT"), unchangedsince)


# ---------------------------------------------------------------------- SEARCH


def _search(cur: Cursor, uid: bool) -> c.Search:
    """RFC 9051 9, RFC 4731 (ESEARCH), RFC 5182 (SAVE), RFC 9394 (PARTIAL)::

    search            = "SEARCH" [search-return-opts] SP search-program
    search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"
    search-program    = ["CHARSET" SP charset SP] search-key *(SP search-key)
    """
    cur.sp("after SEARCH")
    returns: c.SearchReturn | None = None
    if cur.try_keyword(b"RETURN"):
        cur.sp("after RETURN")
        returns = _search_return(cur)
        cur.sp("after the RETURN options")
    charset: str | None = None
    if cur.try_keyword(b"CHARSET"):
        cur.sp("after CHARSET")
        try:
            charset = _charset(cur)
        except ParseError as exc:
            exc.save = returns is not None and "SAVE" in returns.options
            raise
        cur.sp("after the charset")
    criteria = _search_keys(cur, charset or "UTF-8")
    return c.Search(criteria, uid, charset, returns)


_RETURN_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})


def _search_return(cur: Cursor) -> c.SearchReturn:
    cur.char(b"(", "'(' after RETURN")
    options: list[str] = []
    partial: tuple[int, int] | None = None
    while not cur.try_char(b")"):
        if options or partial:
            cur.sp("between RETURN options")
        option = cur.keyword("RETURN option")
        if option == "PARTIAL":
            cur.sp("after PARTIAL")
            partial = _partial_range(cur)
        elif option in _RETURN_OPTIONS:
            if option not in options:
                options.append(option)
        else:
            raise ParseError(f"unknown RETURN option {option}")
    if not options and partial is None:
        options = ["ALL"]  # RFC 4731 3.1: RETURN () is RETURN (ALL)
    if partial is not None:
        options.append("PARTIAL")
        if "ALL" in options:
            raise ParseError("RETURN options PARTIAL and ALL are mutually exclusive (RFC 9394)")
    return c.SearchReturn(tuple(options), partial)


def _charset(cur: Cursor) -> str:
    """``charset = atom / quoted``."""
    if cur.peek() == 0x22:
        raw = cur.string("charset")
    else:
        found = cur.match(ATOM)
        if found is None:
            raise cur.fail("charset")
        raw = found.group()
    name = raw.decode("ascii", "replace").upper()
    if name not in SEARCH_CHARSETS:
        raise ParseError(f"charset {name} is not supported", ErrorKind.BADCHARSET)
    return name


def _search_keys(cur: Cursor, charset: str) -> c.SearchKey:
    keys = [_search_key(cur, charset, 0)]
    while cur.try_sp():
        if cur.at_end():
            break
        keys.append(_search_key(cur, charset, 0))
    return keys[0] if len(keys) == 1 else c.SearchAnd(tuple(keys))


_FLAG_KEYS = frozenset(
    {
        "ALL",
        "ANSWERED",
        "DELETED",
        "DRAFT",
        "FLAGGED",
        "NEW",
        "OLD",
        "RECENT",
        "SEEN",
        "UNANSWERED",
        "UNDELETED",
        "UNDRAFT",
        "UNFLAGGED",
        "UNSEEN",
        "SAVEDATESUPPORTED",
    }
)
_TEXT_KEYS = frozenset({"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"})
_DATE_KEYS = frozenset(
    {
        "BEFORE",
        "ON",
        "SINCE",
        "SENTBEFORE",
        "SENTON",
        "SENTSINCE",
        "SAVEDBEFORE",
        "SAVEDON",
        "SAVEDSINCE",
    }
)
_SEARCH_WORD = re.compile(rb"[A-Za-z][A-Za-z0-9]*")


def _search_key(cur: Cursor, charset: str, depth: int) -> c.SearchKey:
    """RFC 9051 9 ``search-key`` with RFC 3501's NEW/OLD/RECENT, RFC 5032 OLDER/YOUNGER,
    RFC 7162 MODSEQ, RFC 8514 SAVED*, RFC 8474 EMAILID/THREADID, RFC 5182 ``$``::

    search-key = "ALL" / "ANSWERED" / "BCC" SP astring / "BEFORE" SP date /
                 "BODY" SP astring / "CC" SP astring / "DELETED" / "FLAGGED" /
                 "FROM" SP astring / "KEYWORD" SP flag-keyword / "ON" SP date /
                 "SEEN" / "SINCE" SP date / "SUBJECT" SP astring / "TEXT" SP astring /
                 "TO" SP astring / "UNANSWERED" / "UNDELETED" / "UNFLAGGED" /
                 "UNKEYWORD" SP flag-keyword / "UNSEEN" / "DRAFT" /
                 "HEADER" SP header-fld-name SP astring / "LARGER" SP number64 /
                 "NOT" SP search-key / "OR" SP search-key SP search-key /
                 "SENTBEFORE" SP date / "SENTON" SP date / "SENTSINCE" SP date /
                 "SMALLER" SP number64 / "UID" SP sequence-set / "UNDRAFT" /
                 sequence-set / "(" search-key *(SP search-key) ")"
    """
    if depth > MAX_NESTING:
        raise ParseError(f"search program nested deeper than {MAX_NESTING}")
    octet = cur.peek()
    if octet == 0x28:  # "("
        cur.pos += 1
        keys = [_search_key(cur, charset, depth + 1)]
        while cur.try_sp():
            keys.append(_search_key(cur, charset, depth + 1))
        cur.char(b")", "')' to close the search key list")
        return keys[0] if len(keys) == 1 else c.SearchAnd(tuple(keys))
    if octet == 0x2A or octet == 0x24 or 0x30 <= octet <= 0x39:  # "*", "$", digit
        return c.SearchSet(cur.sequence_set())
    found = cur.match(_SEARCH_WORD)
    if found is None:
        raise cur.fail("search key")
    name = found.group().decode("ascii").upper()
    if name in _FLAG_KEYS:
        return c.SearchFlag(name)
    if name in _TEXT_KEYS:
        cur.sp(f"after {name}")
        return c.SearchText(name, _search_string(cur, charset))
    if name in _DATE_KEYS:
        cur.sp(f"after {name}")
        return c.SearchDate(name, _search_date(cur))
    if name in ("LARGER", "SMALLER"):
        cur.sp(f"after {name}")
        return c.SearchNumber(name, cur.number("size", MAX_NUMBER64))
    if name in ("OLDER", "YOUNGER"):
        cur.sp(f"after {name}")
        return c.SearchNumber(name, cur.number("interval", MAX_NUMBER, nz=True))
    if name in ("KEYWORD", "UNKEYWORD"):
        cur.sp(f"after {name}")
        found = cur.match(ATOM)
        if found is None:
            raise cur.fail("keyword")
        return c.SearchKeyword(found.group().decode("ascii"), name == "KEYWORD")
    if name == "HEADER":
        cur.sp("after HEADER")
        field = cur.astring("header field name").decode("ascii", "replace")
        cur.sp("after the header field name")
        return c.SearchHeader(field, _search_string(cur, charset))
    if name == "NOT":
        cur.sp("after NOT")
        return c.SearchNot(_search_key(cur, charset, depth + 1))
    if name == "OR":
        cur.sp("after OR")
        left = _search_key(cur, charset, depth + 1)
        cur.sp("between the keys of OR")
        return c.SearchOr(left, _search_key(cur, charset, depth + 1))
    if name == "UID":
        cur.sp("after UID")
        return c.SearchSet(cur.sequence_set(), uid=True)
    if name == "MODSEQ":
        return _search_modseq(cur)
    if name in ("EMAILID", "THREADID"):
        cur.sp(f"after {name}")
        found = cur.match(_OBJECTID)
        if found is None:
            raise cur.fail("object id (RFC 8474: 1*255 letters, digits, '_' or '-')")
        return c.SearchText(name, found.group().decode("ascii"))
    raise ParseError(f"unknown search key {name}")


def _search_string(cur: Cursor, charset: str) -> str:
    raw = cur.astring("search string")
    try:
        return raw.decode("ascii" if charset == "US-ASCII" else "utf-8")
    except UnicodeDecodeError:
        raise ParseError(f"search string is not valid {charset}") from None


def _search_date(cur: Cursor) -> date:
    found = cur.match(SEARCH_DATE)
    if found is None:
        raise cur.fail("date like 1-Feb-1994")
    try:
        return date_from_match(found)
    except DateError as exc:
        raise ParseError(str(exc)) from None


def _search_modseq(cur: Cursor) -> c.SearchModseq:
    """RFC 7162 7: ``search-modsequence = "MODSEQ" [search-modseq-ext] SP
    mod-sequence-valzer``; ``search-modseq-ext = SP entry-name SP entry-type-req``;
    ``entry-type-req = "priv" / "shared" / "all"``."""
    cur.sp("after MODSEQ")
    entry: tuple[str, str] | None = None
    if cur.peek() == 0x22:
        raw = cur.string("entry name")
        if not _ENTRY_FLAG.fullmatch(raw):
            raise ParseError(f'invalid entry name {_show(raw)} (expected "/flags/<flag>")')
        name = raw.decode("ascii")
        cur.sp("after the entry name")
        kind = cur.keyword("entry type (priv, shared or all)").lower()
        if kind not in ("priv", "shared", "all"):
            raise ParseError(f"unknown entry type {kind} (priv, shared or all)")
        entry = (name, kind)
        cur.sp("after the entry type")
    return c.SearchModseq(cur.number("mod-sequence-valzer", MAX_NUMBER64), entry)


# ---------------------------------------------------------------------- SORT, THREAD

SORT_KEYS = frozenset(
    {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"}
)


def _sort(cur: Cursor, uid: bool) -> c.Sort:
    """RFC 5256 5, RFC 5267 (ESORT), RFC 5957 (DISPLAYFROM/DISPLAYTO)::

    sort = ["UID" SP] "SORT" [search-return-opts] SP sort-criteria SP search-criteria
    sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"
    sort-criterion = ["REVERSE" SP] sort-key
    search-criteria = charset 1*(SP search-key)
    """
    cur.sp("after SORT")
    returns: c.SearchReturn | None = None
    if cur.try_keyword(b"RETURN"):
        cur.sp("after RETURN")
        returns = _search_return(cur)
        cur.sp("after the RETURN options")
    cur.char(b"(", "'(' to open the sort criteria")
    criteria = [_sort_criterion(cur)]
    while cur.try_sp():
        criteria.append(_sort_criterion(cur))
    cur.char(b")", "')' to close the sort criteria")
    cur.sp("after the sort criteria")
    charset = _charset(cur)
    cur.sp("after the charset")
    return c.Sort(tuple(criteria), charset, _search_keys(cur, charset), uid, returns)


def _sort_criterion(cur: Cursor) -> c.SortCriterion:
    key = cur.keyword("sort key")
    reverse = key == "REVERSE"
    if reverse:
        cur.sp("after REVERSE")
        key = cur.keyword("sort key")
    if key not in SORT_KEYS:
        raise ParseError(f"unknown sort key {key}")
    return c.SortCriterion(key, reverse)


def _thread(cur: Cursor, uid: bool) -> c.Thread:
    """RFC 5256 5: ``thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria``."""
    cur.sp("after THREAD")
    algorithm = cur.keyword("threading algorithm")
    cur.sp("after the threading algorithm")
    charset = _charset(cur)
    cur.sp("after the charset")
    return c.Thread(algorithm, charset, _search_keys(cur, charset), uid)


# ---------------------------------------------------------------------- QUOTA, ACL, METADATA


def _getquota(cur: Cursor, uid: bool) -> c.GetQuota:
    """RFC 9208 7: ``getquota = "GETQUOTA" SP quota-root-name``."""
    cur.sp("after GETQUOTA")
    return c.GetQuota(cur.astring("quota root"))


def _setquota(cur: Cursor, uid: bool) -> c.SetQuota:
    """RFC 9208 7: ``setquota = "SETQUOTA" SP quota-root-name SP setquota-list``;
    ``setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")"``;
    ``setquota-resource = resource-name SP resource-limit``."""
    cur.sp("after SETQUOTA")
    root = cur.astring("quota root")
    cur.sp("after the quota root")
    cur.char(b"(", "'(' to open the quota limits")
    limits: list[tuple[str, int]] = []
    while not cur.try_char(b")"):
        if limits:
            cur.sp("between quota limits")
        resource = cur.keyword("resource name")
        cur.sp("after the resource name")
        limits.append((resource, cur.number("resource limit", MAX_NUMBER64)))
    return c.SetQuota(root, tuple(limits))


def _setacl(cur: Cursor, uid: bool) -> c.SetAcl:
    """RFC 4314 5: ``setacl = "SETACL" SP mailbox SP identifier SP mod-rights``."""
    cur.sp("after SETACL")
    mailbox = cur.mailbox()
    cur.sp("after the mailbox name")
    identifier = cur.astring("identifier")
    cur.sp("after the identifier")
    if cur.at_end():
        # Python's IMAPClient sends empty rights unquoted ("SETACL box who "), its way
        # of removing an entry: read as "" (no rights) rather than refused.
        return c.SetAcl(mailbox, identifier, "")
    rights = cur.astring("rights").decode("ascii", "replace")
    return c.SetAcl(mailbox, identifier, rights)


def _mailbox_identifier(
    cls: type[c.DeleteAcl | c.ListRights], name: str
) -> Callable[[Cursor, bool], c.Command]:
    """``deleteacl = "DELETEACL" SP mailbox SP identifier``;
    ``listrights = "LISTRIGHTS" SP mailbox SP identifier``."""

    def parse(cur: Cursor, uid: bool) -> c.Command:
        cur.sp(f"after {name}")
        mailbox = cur.mailbox()
        cur.sp("after the mailbox name")
        return cls(mailbox, cur.astring("identifier"))

    return parse


def _entry(cur: Cursor) -> str:
    """RFC 5464 5: ``entry = astring`` (slash-separated path; ``*``/``%`` not allowed)."""
    raw = cur.astring("metadata entry name")
    text = raw.decode("utf-8", "replace")
    if not raw.startswith(b"/") or b"//" in raw or raw.endswith(b"/") or b"*" in raw:
        raise ParseError(f"invalid metadata entry name {_show(raw)}")
    return text


def _getmetadata(cur: Cursor, uid: bool) -> c.GetMetadata:
    """RFC 5464 5::

    getmetadata = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries
    getmetadata-options = "(" getmetadata-option *(SP getmetadata-option) ")"
    getmetadata-option = "MAXSIZE" SP number / "DEPTH" SP ("0" / "1" / "infinity")
    entries = entry / "(" entry *(SP entry) ")"
    """
    cur.sp("after GETMETADATA")
    maxsize: int | None = None
    depth = "0"
    if cur.try_char(b"("):
        while True:
            option = cur.keyword("GETMETADATA option")
            cur.sp(f"after {option}")
            if option == "MAXSIZE":
                maxsize = cur.number("MAXSIZE")
            elif option == "DEPTH":
                depth = cur.keyword("depth (0, 1 or infinity)")
                if depth not in ("0", "1", "INFINITY"):
                    raise ParseError(f"invalid DEPTH {depth} (0, 1 or infinity)")
            else:
                raise ParseError(f"unknown GETMETADATA option {option}")
            if not cur.try_sp():
                break
        cur.char(b")", "')' to close GETMETADATA options")
        cur.sp("after GETMETADATA options")
    mailbox = cur.mailbox()
    cur.sp("after the mailbox name")
    if cur.peek() == 0x28:
        entries = cur.paren_list(lambda: _entry(cur), "the entry list")
    else:
        entries = (_entry(cur),)
    return c.GetMetadata(mailbox, entries, maxsize, depth)


def _setmetadata(cur: Cursor, uid: bool) -> c.SetMetadata:
    """RFC 5464 5: ``setmetadata = "SETMETADATA" SP mailbox SP entry-values``;
    ``entry-values = "(" entry-value *(SP entry-value) ")"``;
    ``entry-value = entry SP value``; ``value = nstring / literal8``."""
    cur.sp("after SETMETADATA")
    mailbox = cur.mailbox()
    cur.sp("after the mailbox name")
    cur.char(b"(", "'(' to open the entry values")
    values: list[tuple[str, bytes | None]] = []
    while True:
        entry = _entry(cur)
        cur.sp("after the entry name")
        value: bytes | None
        if cur.peek() == 0x7E:
            literal = cur.literal()
            assert literal is not None
            value = literal.data
        else:
            value = cur.nstring("metadata value")
        values.append((entry, value))
        if not cur.try_sp():
            break
    cur.char(b")", "')' to close the entry values")
    return c.SetMetadata(mailbox, tuple(values))


# ---------------------------------------------------------------------- NOTIFY, misc

_NOTIFY_EVENTS = {
    name.upper(): name
    for name in (
        "MessageNew",
        "MessageExpunge",
        "FlagChange",
        "AnnotationChange",
        "MailboxName",
        "SubscriptionChange",
        "MailboxMetadataChange",
        "ServerMetadataChange",
    )
}
_NOTIFY_FILTERS = frozenset(
    {"SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED", "SUBTREE", "MAILBOXES"}
)


def _notify(cur: Cursor, uid: bool) -> c.Notify:
    """RFC 5465 8::

    notify = "NOTIFY" SP (notify-set / notify-none)
    notify-set = "SET" [SP "STATUS"] SP event-groups
    event-group = "(" filter-mailboxes SP events ")"
    filter-mailboxes = "selected" / "selected-delayed" / "inboxes" / "personal" /
                       "subscribed" / ("subtree" SP one-or-more-mailbox) /
                       ("mailboxes" SP one-or-more-mailbox)
    events = ("(" event *(SP event) ")") / "NONE"
    message-event = ("MessageNew" [SP "(" fetch-att *(SP fetch-att) ")"]) /
                    "MessageExpunge" / "FlagChange" / "AnnotationChange"
    """
    cur.sp("after NOTIFY")
    verb = cur.keyword("SET or NONE")
    if verb == "NONE":
        return c.Notify(None)
    if verb != "SET":
        raise ParseError(f"expected SET or NONE after NOTIFY, found {verb}")
    cur.sp("after SET")
    status = cur.try_keyword(b"STATUS")
    if status:
        cur.sp("after STATUS")
    groups = [_notify_group(cur)]
    while cur.try_sp():
        groups.append(_notify_group(cur))
    return c.Notify(tuple(groups), status)


def _notify_group(cur: Cursor) -> c.NotifyGroup:
    cur.char(b"(", "'(' to open an event group")
    kind = cur.keyword("mailbox filter")
    if kind not in _NOTIFY_FILTERS:
        raise ParseError(f"unknown NOTIFY mailbox filter {kind}")
    mailboxes: tuple[bytes, ...] = ()
    if kind in ("SUBTREE", "MAILBOXES"):
        cur.sp(f"after {kind}")
        if cur.try_char(b"("):
            found = [cur.mailbox()]
            while cur.try_sp():
                found.append(cur.mailbox())
            cur.char(b")", "')' to close the mailbox list")
            mailboxes = tuple(found)
        else:
            mailboxes = (cur.mailbox(),)
    cur.sp("after the mailbox filter")
    events: tuple[c.NotifyEvent, ...] | None = None
    if not cur.try_keyword(b"NONE"):
        cur.char(b"(", "'(' to open the events, or NONE")
        found_events = [_notify_event(cur)]
        while cur.try_sp():
            found_events.append(_notify_event(cur))
        cur.char(b")", "')' to close the events")
        events = tuple(found_events)
    cur.char(b")", "')' to close the event group")
    return c.NotifyGroup(kind, events, mailboxes)


def _notify_event(cur: Cursor) -> c.NotifyEvent:
    """``event = message-event / mailbox-event / user-event / event-ext`` with
    ``event-ext = atom``: an event this server does not know is syntactically fine and
    is refused by the command (``NO [BADEVENT ...]``, RFC 5465 3.1), so it passes here in
    upper case."""
    key = cur.keyword("event name")
    name = _NOTIFY_EVENTS.get(key, key)
    fetch: tuple[c.FetchItem, ...] = ()
    if name == "MessageNew" and cur.line[cur.pos : cur.pos + 2] == b" (":
        cur.pos += 2
        items = [fetch_att(cur)]
        while cur.try_sp():
            items.append(fetch_att(cur))
        cur.char(b")", "')' to close the MessageNew attributes")
        fetch = tuple(items)
    return c.NotifyEvent(name, fetch)


def _compress(cur: Cursor, uid: bool) -> c.Compress:
    """RFC 4978: ``compress = "COMPRESS" SP algorithm``."""
    cur.sp("after COMPRESS")
    return c.Compress(cur.keyword("compression algorithm"))


def _replace(cur: Cursor, uid: bool) -> c.Replace:
    """RFC 8508 6: ``replace = "REPLACE" SP seq-number SP mailbox append-message``."""
    cur.sp("after REPLACE")
    number = cur.number("message number", nz=True)
    cur.sp("after the message number")
    mailbox = cur.mailbox()
    message = _append_message(cur)
    return c.Replace(number, mailbox, message, uid)


_COMMANDS: dict[str, Callable[[Cursor, bool], c.Command]] = {
    "CAPABILITY": _no_args(c.Capability()),
    "NOOP": _no_args(c.Noop()),
    "LOGOUT": _no_args(c.Logout()),
    "STARTTLS": _no_args(c.StartTls()),
    "NAMESPACE": _no_args(c.Namespace()),
    "IDLE": _no_args(c.Idle()),
    "CHECK": _no_args(c.Check()),
    "CLOSE": _no_args(c.Close()),
    "UNSELECT": _no_args(c.Unselect()),
    "UNAUTHENTICATE": _no_args(c.Unauthenticate()),
    "ID": _id,
    "AUTHENTICATE": _authenticate,
    "LOGIN": _login,
    "ENABLE": _enable,
    "SELECT": _select,
    "EXAMINE": _examine,
    "CREATE": _create,
    "DELETE": _mailbox_command(c.Delete, "DELETE"),
    "RENAME": _rename,
    "SUBSCRIBE": _mailbox_command(c.Subscribe, "SUBSCRIBE"),
    "UNSUBSCRIBE": _mailbox_command(c.Unsubscribe, "UNSUBSCRIBE"),
    "LIST": _list,
    "LSUB": _lsub,
    "STATUS": _status,
    "APPEND": _append,
    "EXPUNGE": _expunge,
    "SEARCH": _search,
    "FETCH": _fetch,
    "STORE": _store,
    "COPY": _copy_or_move(c.Copy, "COPY"),
    "MOVE": _copy_or_move(c.Move, "MOVE"),
    "SORT": _sort,
    "THREAD": _thread,
    "GETQUOTA": _getquota,
    "GETQUOTAROOT": _mailbox_command(c.GetQuotaRoot, "GETQUOTAROOT"),
    "SETQUOTA": _setquota,
    "SETACL": _setacl,
    "DELETEACL": _mailbox_identifier(c.DeleteAcl, "DELETEACL"),
    "GETACL": _mailbox_command(c.GetAcl, "GETACL"),
    "LISTRIGHTS": _mailbox_identifier(c.ListRights, "LISTRIGHTS"),
    "MYRIGHTS": _mailbox_command(c.MyRights, "MYRIGHTS"),
    "GETMETADATA": _getmetadata,
    "SETMETADATA": _setmetadata,
    "NOTIFY": _notify,
    "COMPRESS": _compress,
    "REPLACE": _replace,
}
_UID_COMMANDS = frozenset(
    {"COPY", "MOVE", "FETCH", "SEARCH", "STORE", "EXPUNGE", "SORT", "THREAD", "REPLACE"}
)
COMMAND_NAMES = frozenset(_COMMANDS)
"""Every command name the parser knows (for the session's state table and tests)."""
