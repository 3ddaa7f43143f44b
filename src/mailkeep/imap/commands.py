"""IMAP commands as frozen dataclasses in one union (``Command``), handled with ``match``.

Conventions:

* Mailbox names are the raw octets the client sent (``Mailbox``); a session decodes them
  with ``mailkeep.imap.mutf7.decode_mailbox(raw, utf8=...)`` because modified UTF-7 versus
  UTF-8 depends on what the client ENABLEd.
* Atoms whose case does not matter (capability names, status items, list options, sort
  keys, search key names) are upper-cased by the parser; flags and keywords keep the
  client's spelling (``mail.flags`` compares them case-insensitively).
* Sequence sets stay symbolic (``sequence.SequenceSet``); ``sequence.resolve`` turns them
  into numbers once the session knows what ``*`` and ``$`` are.
* ``uid`` is True for the ``UID`` forms; then sets hold UIDs, not sequence numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from mailkeep.imap.grammar import is_atom, quote
from mailkeep.imap.sequence import SequenceSet

Mailbox = bytes
"""A mailbox name exactly as sent (``astring``); see ``mutf7.decode_mailbox``."""


# ------------------------------------------------------------------ any state


@dataclass(frozen=True, slots=True)
class Capability:
    pass


@dataclass(frozen=True, slots=True)
class Noop:
    pass


@dataclass(frozen=True, slots=True)
class Logout:
    pass


@dataclass(frozen=True, slots=True)
class Id:
    """RFC 2971. ``parameters`` is None for ``ID NIL``; values may be None (NIL)."""

    parameters: tuple[tuple[str, str | None], ...] | None


# ------------------------------------------------------------------ not authenticated


@dataclass(frozen=True, slots=True)
class StartTls:
    pass


@dataclass(frozen=True, slots=True)
class Authenticate:
    """``mechanism`` upper-cased; ``initial_response`` is the decoded SASL-IR (RFC 4959)
    response: None when absent, ``b""`` when sent as ``=``."""

    mechanism: str
    initial_response: bytes | None = None


@dataclass(frozen=True, slots=True)
class Login:
    """Octets as sent (astring); the session decides the charset (UTF-8 in practice)."""

    username: bytes
    password: bytes = field(repr=False)


# ------------------------------------------------------------------ authenticated


@dataclass(frozen=True, slots=True)
class Enable:
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Qresync:
    """``QRESYNC (uidvalidity modseq [known-uids [(seq-match-data)]])``, RFC 7162 3.2.5."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    known_sequence: SequenceSet | None = None
    known_sequence_uids: SequenceSet | None = None


@dataclass(frozen=True, slots=True)
class Select:
    """SELECT, or EXAMINE when ``readonly``; CONDSTORE / QRESYNC parameters (RFC 7162)."""

    mailbox: Mailbox
    readonly: bool = False
    condstore: bool = False
    qresync: Qresync | None = None


@dataclass(frozen=True, slots=True)
class Create:
    """``special_use`` from ``CREATE name (USE (\\Sent ...))``, RFC 6154 3."""

    mailbox: Mailbox
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delete:
    mailbox: Mailbox


@dataclass(frozen=True, slots=True)
class Rename:
    mailbox: Mailbox
    new_name: Mailbox


@dataclass(frozen=True, slots=True)
class Subscribe:
    mailbox: Mailbox


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    mailbox: Mailbox


@dataclass(frozen=True, slots=True)
class List:
    """LIST, basic or extended (RFC 5258, RFC 6154, RFC 5819, RFC 8440).

    ``select_options``: SUBSCRIBED, REMOTE, RECURSIVEMATCH, SPECIAL-USE (upper-case).
    ``return_options``: SUBSCRIBED, CHILDREN, SPECIAL-USE, MYRIGHTS (STATUS is separate).
    ``return_status``: the STATUS items of ``RETURN (STATUS (...))``, or None.
    ``extended`` is True when any LIST-EXTENDED syntax was used (selection options,
    a pattern list or RETURN), which changes what the server must send (RFC 5258 3).
    """

    reference: Mailbox
    patterns: tuple[bytes, ...]
    select_options: tuple[str, ...] = ()
    return_options: tuple[str, ...] = ()
    return_status: tuple[str, ...] | None = None
    extended: bool = False


@dataclass(frozen=True, slots=True)
class Lsub:
    reference: Mailbox
    pattern: bytes


@dataclass(frozen=True, slots=True)
class Namespace:
    pass


@dataclass(frozen=True, slots=True)
class Status:
    """``items`` upper-cased: MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE
    HIGHESTMODSEQ APPENDLIMIT MAILBOXID."""

    mailbox: Mailbox
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of APPEND (several with MULTIAPPEND, RFC 3502).

    ``binary``: sent as ``~{n}`` (RFC 3516; may contain NUL). ``utf8``: sent in the
    ``UTF8 (~{n})`` form of RFC 6855 / RFC 9051 (``binary`` is then True too).
    """

    data: bytes = field(repr=False)
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None
    binary: bool = False
    utf8: bool = False


@dataclass(frozen=True, slots=True)
class Append:
    mailbox: Mailbox
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True, slots=True)
class Idle:
    pass


@dataclass(frozen=True, slots=True)
class GetQuota:
    root: bytes


@dataclass(frozen=True, slots=True)
class GetQuotaRoot:
    mailbox: Mailbox


@dataclass(frozen=True, slots=True)
class SetQuota:
    """``limits``: (resource upper-cased, limit) pairs, RFC 9208 4.1.3."""

    root: bytes
    limits: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class SetAcl:
    """RFC 4314 3.1: ``rights`` may start with ``+`` or ``-``."""

    mailbox: Mailbox
    identifier: bytes
    rights: str


@dataclass(frozen=True, slots=True)
class DeleteAcl:
    mailbox: Mailbox
    identifier: bytes


@dataclass(frozen=True, slots=True)
class GetAcl:
    mailbox: Mailbox


@dataclass(frozen=True, slots=True)
class ListRights:
    mailbox: Mailbox
    identifier: bytes


@dataclass(frozen=True, slots=True)
class MyRights:
    mailbox: Mailbox


@dataclass(frozen=True, slots=True)
class GetMetadata:
    """RFC 5464 4.2; ``mailbox`` is ``b""`` for server annotations. ``depth`` is
    ``"0"``, ``"1"`` or ``"INFINITY"``."""

    mailbox: Mailbox
    entries: tuple[str, ...]
    maxsize: int | None = None
    depth: str = "0"


@dataclass(frozen=True, slots=True)
class SetMetadata:
    """RFC 5464 4.3; a None value removes the entry."""

    mailbox: Mailbox
    entries: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class NotifyEvent:
    """``name`` as sent canonical case (MessageNew, FlagChange, ...); ``fetch`` only for
    MessageNew."""

    name: str
    fetch: tuple[FetchItem, ...] = ()


@dataclass(frozen=True, slots=True)
class NotifyGroup:
    """``filter``: SELECTED, SELECTED-DELAYED, INBOXES, PERSONAL, SUBSCRIBED, SUBTREE,
    MAILBOXES; ``mailboxes`` for the last two; ``events`` None means NONE."""

    filter: str
    events: tuple[NotifyEvent, ...] | None
    mailboxes: tuple[Mailbox, ...] = ()


@dataclass(frozen=True, slots=True)
class Notify:
    """RFC 5465: ``NOTIFY NONE`` has ``groups`` None."""

    groups: tuple[NotifyGroup, ...] | None
    status: bool = False


@dataclass(frozen=True, slots=True)
class Compress:
    mechanism: str


@dataclass(frozen=True, slots=True)
class Unauthenticate:
    pass


# ------------------------------------------------------------------ selected


@dataclass(frozen=True, slots=True)
class Check:
    pass


@dataclass(frozen=True, slots=True)
class Close:
    pass


@dataclass(frozen=True, slots=True)
class Unselect:
    pass


@dataclass(frozen=True, slots=True)
class Expunge:
    """EXPUNGE, or ``UID EXPUNGE uid-set`` (RFC 4315) when ``uids`` is set."""

    uids: SequenceSet | None = None


# --- search program (RFC 9051 6.4.4, RFC 3501 6.4.4, and extensions)


@dataclass(frozen=True, slots=True)
class SearchFlag:
    """A key without argument: ALL ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN
    UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN SAVEDATESUPPORTED."""

    name: str


@dataclass(frozen=True, slots=True)
class SearchText:
    """BCC BODY CC FROM SUBJECT TEXT TO, EMAILID, THREADID: decoded with the charset."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchHeader:
    field: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchKeyword:
    """KEYWORD (``present``) or UNKEYWORD."""

    keyword: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class SearchDate:
    """BEFORE ON SINCE SENTBEFORE SENTON SENTSINCE SAVEDBEFORE SAVEDON SAVEDSINCE."""

    name: str
    day: date


@dataclass(frozen=True, slots=True)
class SearchNumber:
    """LARGER SMALLER (octets), OLDER YOUNGER (seconds, RFC 5032)."""

    name: str
    value: int


@dataclass(frozen=True, slots=True)
class SearchSet:
    """A bare sequence set (``uid`` False) or ``UID set``."""

    sequence: SequenceSet
    uid: bool = False


@dataclass(frozen=True, slots=True)
class SearchModseq:
    """RFC 7162 3.1.5: ``entry`` is (entry-name, "priv"/"shared"/"all") when given."""

    modseq: int
    entry: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class SearchNot:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchOr:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchAnd:
    """A parenthesised list, and the top-level list of keys."""

    keys: tuple[SearchKey, ...]


SearchKey = (
    SearchFlag
    | SearchText
    | SearchHeader
    | SearchKeyword
    | SearchDate
    | SearchNumber
    | SearchSet
    | SearchModseq
    | SearchNot
    | SearchOr
    | SearchAnd
)


@dataclass(frozen=True, slots=True)
class SearchReturn:
    """ESEARCH ``RETURN (...)`` options (RFC 4731, RFC 5182 SAVE, RFC 9394 PARTIAL),
    upper-cased, in order. ``RETURN ()`` means ``ALL`` (RFC 4731 3.1) and is stored so.
    ``partial`` is the PARTIAL range: (first, last), negative for counting from the end."""

    options: tuple[str, ...]
    partial: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Search:
    """``charset`` is upper-cased (None: not given, i.e. US-ASCII or UTF-8 in rev2)."""

    criteria: SearchKey
    uid: bool = False
    charset: str | None = None
    returns: SearchReturn | None = None


# --- fetch


@dataclass(frozen=True, slots=True)
class FetchAttr:
    """An item without arguments: FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY
    BODYSTRUCTURE UID RFC822 RFC822.HEADER RFC822.TEXT MODSEQ EMAILID THREADID SAVEDATE."""

    name: str


@dataclass(frozen=True, slots=True)
class Section:
    """``section-spec``: ``part`` numbers, then ``text`` (None, HEADER, HEADER.FIELDS,
    HEADER.FIELDS.NOT, TEXT, MIME) and ``fields`` for HEADER.FIELDS, spelled as the client
    sent them (the response echoes them; they compare case-insensitively)."""

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()

    def __bytes__(self) -> bytes:
        pieces = [b".".join(b"%d" % p for p in self.part)] if self.part else []
        if self.text:
            pieces.append(self.text.encode("ascii"))
        spec = b".".join(pieces)
        if self.fields:
            spec += b" (" + b" ".join(_field_name(f) for f in self.fields) + b")"
        return spec


def _field_name(name: str) -> bytes:
    """A header field name as an astring: an atom as it is, anything else quoted."""
    data = name.encode("ascii", "replace")
    return data if data and is_atom(data) else quote(data)


@dataclass(frozen=True, slots=True)
class FetchBody:
    """``BODY[section]<origin.octets>`` or ``BODY.PEEK[...]``."""

    section: Section = Section()
    partial: tuple[int, int] | None = None
    peek: bool = False

    def response_name(self) -> bytes:
        """The name the FETCH response uses: ``BODY[section]<origin>`` (RFC 9051 7.5.2)."""
        name = b"BODY[" + bytes(self.section) + b"]"
        return name + b"<%d>" % self.partial[0] if self.partial else name


@dataclass(frozen=True, slots=True)
class FetchBinary:
    """``BINARY[part]<partial>``, ``BINARY.PEEK``, or ``BINARY.SIZE[part]`` (RFC 3516).

    ``section`` is set when a section-text followed the part numbers (``BINARY[1.MIME]``,
    ``BINARY.SIZE[2.HEADER]``, ``BINARY[TEXT]``): RFC 3516 allows part numbers only, but
    Dovecot accepts the BODY[] forms and imaptest's BINARY scripts use them. Headers are
    never transfer-encoded, so such a section is answered with BODY[section]'s octets."""

    part: tuple[int, ...] = ()
    partial: tuple[int, int] | None = None
    peek: bool = False
    size: bool = False
    section: Section | None = None

    def response_name(self) -> bytes:
        part = b".".join(b"%d" % p for p in self.part)
        if self.section is not None:
            part = bytes(self.section)
        if self.size:
            return b"BINARY.SIZE[" + part + b"]"
        name = b"BINARY[" + part + b"]"
        return name + b"<%d>" % self.partial[0] if self.partial else name


@dataclass(frozen=True, slots=True)
class FetchPreview:
    """``PREVIEW`` or ``PREVIEW (LAZY)``, RFC 8970."""

    lazy: bool = False


FetchItem = FetchAttr | FetchBody | FetchBinary | FetchPreview


@dataclass(frozen=True, slots=True)
class Fetch:
    """``changedsince``/``vanished`` are the RFC 7162 modifiers; ``partial`` is RFC 9394's.
    Macros (ALL FAST FULL) are expanded into their items."""

    sequence: SequenceSet
    items: tuple[FetchItem, ...]
    uid: bool = False
    changedsince: int | None = None
    vanished: bool = False
    partial: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Store:
    """``action``: ``"+"`` add, ``"-"`` remove, ``""`` replace."""

    sequence: SequenceSet
    action: str
    flags: tuple[str, ...]
    uid: bool = False
    silent: bool = False
    unchangedsince: int | None = None


@dataclass(frozen=True, slots=True)
class Copy:
    sequence: SequenceSet
    mailbox: Mailbox
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Move:
    sequence: SequenceSet
    mailbox: Mailbox
    uid: bool = False


@dataclass(frozen=True, slots=True)
class SortCriterion:
    """ARRIVAL CC DATE FROM SIZE SUBJECT TO DISPLAYFROM DISPLAYTO, maybe REVERSE."""

    key: str
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class Sort:
    criteria: tuple[SortCriterion, ...]
    charset: str
    search: SearchKey
    uid: bool = False
    returns: SearchReturn | None = None


@dataclass(frozen=True, slots=True)
class Thread:
    algorithm: str
    charset: str
    search: SearchKey
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Replace:
    """RFC 8508: replace message ``number`` (a UID when ``uid``) with ``message``."""

    number: int
    mailbox: Mailbox
    message: AppendMessage
    uid: bool = False


Command = (
    Capability
    | Noop
    | Logout
    | Id
    | StartTls
    | Authenticate
    | Login
    | Enable
    | Select
    | Create
    | Delete
    | Rename
    | Subscribe
    | Unsubscribe
    | List
    | Lsub
    | Namespace
    | Status
    | Append
    | Idle
    | GetQuota
    | GetQuotaRoot
    | SetQuota
    | SetAcl
    | DeleteAcl
    | GetAcl
    | ListRights
    | MyRights
    | GetMetadata
    | SetMetadata
    | Notify
    | Compress
    | Unauthenticate
    | Check
    | Close
    | Unselect
    | Expunge
    | Search
    | Fetch
    | Store
    | Copy
    | Move
    | Sort
    | Thread
    | Replace
)
