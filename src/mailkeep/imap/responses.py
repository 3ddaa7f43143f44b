"""Server responses as bytes: pure formatters, one per response of RFC 9051 7 and the
extensions mailkeep speaks. Each returns a complete line including CRLF (``Chunk`` lists
for FETCH, whose bodies may be streamed).

Strings go through the shared ``mail.imapdata.quote`` (quoted when possible, else a
literal), so ENVELOPE/BODYSTRUCTURE and responses quote alike; ``utf8`` parameters say
whether the client ENABLEd IMAP4rev2 or UTF8=ACCEPT, which decides both how mailbox names
are encoded (UTF-8 or modified UTF-7) and whether 8-bit text may be quoted.
Human-readable text is sanitised (CR, LF and NUL become spaces) so that nothing echoed
from a client can inject a response line.

Response codes (RFC 9051 7.1 and extensions) are ``bytes`` such as ``b"TRYCREATE"`` or
the result of a code function (``uidnext(42)`` → ``b"UIDNEXT 42"``); pass one as
``code=`` to ``tagged``/``untagged``.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from mailkeep.imap import sequence
from mailkeep.imap.dates import format_date_time
from mailkeep.imap.grammar import ASTRING_CHAR_SET, is_atom, literal, quote
from mailkeep.imap.mutf7 import encode_mailbox
from mailkeep.mail import imapdata

CRLF = b"\r\n"
_UNSAFE_TEXT = re.compile(rb"[\x00\r\n]")
_UTF8_QUOTABLE = re.compile(rb'[^\x00\r\n"\\]*[\x80-\xff][^\x00\r\n"\\]*\Z')


def string(value: bytes, *, utf8: bool = False) -> bytes:
    """``string = quoted / literal``, by the shared ``mail.imapdata.quote``; when the
    client speaks UTF-8 (IMAP4rev2, UTF8=ACCEPT), 8-bit text may also be quoted
    (RFC 9051 9 ``QUOTED-CHAR =/ UTF8-2 / UTF8-3 / UTF8-4``), which keeps UTF-8 mailbox
    names readable instead of turning each into a literal."""
    if utf8 and len(value) <= 1024 and _UTF8_QUOTABLE.match(value):
        return b'"' + value + b'"'
    return imapdata.quote(value)


def nstring(value: bytes | None, *, utf8: bool = False) -> bytes:
    """``nstring = string / nil``."""
    return b"NIL" if value is None else string(value, utf8=utf8)


def astring(value: bytes, *, utf8: bool = False) -> bytes:
    """``astring = 1*ASTRING-CHAR / string``: a bare atom when possible (as the RFC
    examples write mailbox names), else a string."""
    if value and all(c in ASTRING_CHAR_SET for c in value):
        return value
    return string(value, utf8=utf8)


Numbers = Iterable[int] | sequence.Ranges | bytes
"""Numbers, merged ranges, or a set already rendered (ESORT keeps the sort order)."""


# =============================================================================== status


def _text(text: str | bytes) -> bytes:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return _UNSAFE_TEXT.sub(b" ", data)


def _resp_text(text: str | bytes, code: bytes | None) -> bytes:
    """``resp-text = ["[" resp-text-code "]" SP] [text]`` (RFC 9051 9)."""
    body = _text(text)
    if code is None:
        return body
    code = _UNSAFE_TEXT.sub(b" ", code)
    return b"[" + code + b"] " + body if body else b"[" + code + b"]"


def tagged(tag: str, status: str, text: str | bytes, code: bytes | None = None) -> bytes:
    """``response-tagged = tag SP resp-cond-state CRLF``; status is OK, NO or BAD."""
    return b"%s %s %s\r\n" % (tag.encode("ascii"), status.encode("ascii"), _resp_text(text, code))


def ok(tag: str, text: str | bytes = "completed", code: bytes | None = None) -> bytes:
    return tagged(tag, "OK", text, code)


def no(tag: str, text: str | bytes, code: bytes | None = None) -> bytes:
    return tagged(tag, "NO", text, code)


def bad(tag: str | None, text: str | bytes, code: bytes | None = None) -> bytes:
    """A tagged BAD, or ``* BAD`` when the tag could not be read (RFC 9051 7.1.3)."""
    if tag is None:
        return untagged("BAD", text, code)
    return tagged(tag, "BAD", text, code)


def untagged(status: str, text: str | bytes, code: bytes | None = None) -> bytes:
    """``* OK/NO/BAD/PREAUTH/BYE [code] text``."""
    return b"* %s %s\r\n" % (status.encode("ascii"), _resp_text(text, code))


def bye(text: str | bytes, code: bytes | None = None) -> bytes:
    return untagged("BYE", text, code)


def greeting(
    text: str | bytes, capabilities: Iterable[str] | None = None, *, preauth: bool = False
) -> bytes:
    """``greeting = "*" SP (resp-cond-auth / resp-cond-bye) CRLF``, with the capability
    list in the code as RFC 9051 7.1 recommends."""
    code = capability_code(capabilities) if capabilities is not None else None
    return untagged("PREAUTH" if preauth else "OK", text, code)


def continuation(text: str | bytes = "Ready for literal data") -> bytes:
    """``continue-req = "+" SP (resp-text / base64) CRLF``."""
    return b"+ " + _text(text) + CRLF


def continuation_base64(data: bytes) -> bytes:
    """A SASL challenge (RFC 9051 6.2.2): ``+`` SP base64, or ``+ `` for an empty one."""
    return b"+ " + binascii.b2a_base64(data, newline=False) + CRLF


# =============================================================================== codes

ALERT = b"ALERT"
PARSE = b"PARSE"
READ_ONLY = b"READ-ONLY"
READ_WRITE = b"READ-WRITE"
TRYCREATE = b"TRYCREATE"
UIDNOTSTICKY = b"UIDNOTSTICKY"
NOMODSEQ = b"NOMODSEQ"
CLOSED = b"CLOSED"
OVERQUOTA = b"OVERQUOTA"
TOOBIG = b"TOOBIG"
NONEXISTENT = b"NONEXISTENT"
ALREADYEXISTS = b"ALREADYEXISTS"
CANNOT = b"CANNOT"
LIMIT = b"LIMIT"
INUSE = b"INUSE"
NOPERM = b"NOPERM"
SERVERBUG = b"SERVERBUG"
CONTACTADMIN = b"CONTACTADMIN"
AUTHENTICATIONFAILED = b"AUTHENTICATIONFAILED"
AUTHORIZATIONFAILED = b"AUTHORIZATIONFAILED"
EXPIRED = b"EXPIRED"
UNAVAILABLE = b"UNAVAILABLE"
PRIVACYREQUIRED = b"PRIVACYREQUIRED"
EXPUNGEISSUED = b"EXPUNGEISSUED"
CORRUPTION = b"CORRUPTION"
UNKNOWN_CTE = b"UNKNOWN-CTE"
HASCHILDREN = b"HASCHILDREN"
CLIENTBUG = b"CLIENTBUG"
NOTSAVED = b"NOTSAVED"
USEATTR = b"USEATTR"
COMPRESSIONACTIVE = b"COMPRESSIONACTIVE"
NOTIFICATIONOVERFLOW = b"NOTIFICATIONOVERFLOW"
METADATA_TOOMANY = b"METADATA TOOMANY"
METADATA_NOPRIVATE = b"METADATA NOPRIVATE"


def _numbers(numbers: Numbers) -> bytes:
    """Numbers, or already merged ranges (``sequence.Ranges``), as a compact set;
    ``bytes`` are already rendered."""
    if isinstance(numbers, bytes):
        return numbers
    if isinstance(numbers, tuple) and numbers and isinstance(numbers[0], tuple):
        return sequence.format_ranges(cast(sequence.Ranges, numbers))
    return sequence.format_numbers(cast(Iterable[int], numbers))


def capability_code(capabilities: Iterable[str]) -> bytes:
    return b"CAPABILITY " + " ".join(capabilities).encode("ascii")


def badcharset(charsets: Iterable[str] = ()) -> bytes:
    """``"BADCHARSET" [SP "(" charset *(SP charset) ")"]``."""
    names = [astring(name.encode("ascii")) for name in charsets]
    return b"BADCHARSET (" + b" ".join(names) + b")" if names else b"BADCHARSET"


def badevent(events: Iterable[str]) -> bytes:
    """RFC 5465 8: ``"BADEVENT" SP "(" event-name *(SP event-name) ")"``, the events the
    server supports."""
    return b"BADEVENT (" + " ".join(events).encode("ascii") + b")"


def permanentflags(flags: Iterable[str], *, new_keywords: bool = True) -> bytes:
    """``"PERMANENTFLAGS" SP "(" [flag-perm *(SP flag-perm)] ")"``; ``\\*`` when the
    client may create keywords."""
    names = list(flags) + (["\\*"] if new_keywords else [])
    return b"PERMANENTFLAGS (" + " ".join(names).encode("ascii") + b")"


def uidnext(n: int) -> bytes:
    return b"UIDNEXT %d" % n


def uidvalidity(n: int) -> bytes:
    return b"UIDVALIDITY %d" % n


def unseen(n: int) -> bytes:
    return b"UNSEEN %d" % n


def highestmodseq(n: int) -> bytes:
    return b"HIGHESTMODSEQ %d" % n


def appenduid(uidvalidity: int, uids: Numbers) -> bytes:
    """RFC 4315 / RFC 9051: ``"APPENDUID" SP nz-number SP append-uid``."""
    return b"APPENDUID %d %s" % (uidvalidity, _numbers(uids))


def copyuid(uidvalidity: int, source: Sequence[int], destination: Sequence[int]) -> bytes:
    """``"COPYUID" SP nz-number SP uid-set SP uid-set``: the two sets correspond pairwise,
    so they are written in the order given (RFC 4315 3), runs collapsed."""
    return b"COPYUID %d %s %s" % (
        uidvalidity,
        sequence.format_ordered(source),
        sequence.format_ordered(destination),
    )


def modified(numbers: Numbers) -> bytes:
    """RFC 7162 3.1.3: ``"MODIFIED" SP sequence-set``."""
    return b"MODIFIED " + _numbers(numbers)


def mailboxid_code(objectid: str) -> bytes:
    """RFC 8474: ``"MAILBOXID" SP "(" objectid ")"``."""
    return b"MAILBOXID (" + objectid.encode("ascii") + b")"


def appendlimit_code(limit: int | None) -> bytes:
    return b"APPENDLIMIT" if limit is None else b"APPENDLIMIT %d" % limit


def metadata_longentries(size: int) -> bytes:
    """RFC 5464 4.2.1: ``METADATA LONGENTRIES n``."""
    return b"METADATA LONGENTRIES %d" % size


def metadata_maxsize(size: int) -> bytes:
    return b"METADATA MAXSIZE %d" % size


def inprogress(tag: str | None = None, done: int | None = None, goal: int | None = None) -> bytes:
    """RFC 9585: ``"INPROGRESS" [SP "(" tag SP (nz-number/nil) SP (nz-number/nil) ")"]``."""
    if tag is None:
        return b"INPROGRESS"
    return b"INPROGRESS (%s %s %s)" % (
        quote(tag.encode("ascii")),
        b"NIL" if done is None else b"%d" % done,
        b"NIL" if goal is None else b"%d" % goal,
    )


# =============================================================================== data


def capability(capabilities: Iterable[str]) -> bytes:
    """``capability-data = "CAPABILITY" *(SP capability) SP "IMAP4rev2" ...``."""
    return b"* " + capability_code(capabilities) + CRLF


def flag_list(flags: Iterable[str]) -> bytes:
    """``"(" [flag *(SP flag)] ")"``; flags are atoms (keywords) or ``\\`` atoms."""
    return b"(" + " ".join(flags).encode("ascii") + b")"


def flags(flags: Iterable[str]) -> bytes:
    return b"* FLAGS " + flag_list(flags) + CRLF


def exists(n: int) -> bytes:
    return b"* %d EXISTS\r\n" % n


def recent(n: int) -> bytes:
    return b"* %d RECENT\r\n" % n


def expunge(n: int) -> bytes:
    return b"* %d EXPUNGE\r\n" % n


def vanished(uids: Numbers, *, earlier: bool = False) -> bytes:
    """RFC 7162 3.2.10: ``"VANISHED" [SP "(EARLIER)"] SP known-uids``. Very long sets
    should be split by the caller into several responses of bounded size."""
    return b"* VANISHED %s%s\r\n" % (b"(EARLIER) " if earlier else b"", _numbers(uids))


def mailbox_name(name: str, *, utf8: bool) -> bytes:
    """A mailbox name in responses: encoded per session mode, as an astring."""
    return astring(encode_mailbox(name, utf8=utf8), utf8=utf8)


def childinfo(*options: str) -> bytes:
    """RFC 5258 ``("CHILDINFO" ("SUBSCRIBED"))`` extended item (without the outer list)."""
    return b'"CHILDINFO" (' + b" ".join(quote(o.encode("ascii")) for o in options) + b")"


def oldname(name: str, *, utf8: bool) -> bytes:
    """RFC 9051 ``("OLDNAME" ("old"))`` extended item, after RENAME."""
    return b'"OLDNAME" (' + string(encode_mailbox(name, utf8=utf8), utf8=utf8) + b")"


def list_(
    attributes: Iterable[str],
    delimiter: str | None,
    name: str,
    *,
    utf8: bool,
    extended: Sequence[bytes] = (),
    command: str = "LIST",
) -> bytes:
    """RFC 9051 7.3.1 / RFC 5258::

    mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP
                   mailbox [SP mbox-list-extended]
    mbox-list-extended = "(" [mbox-list-extended-item *(SP mbox-list-extended-item)] ")"

    ``extended`` items come from ``childinfo``/``oldname``; ``command="LSUB"`` for LSUB.
    """
    delim = b"NIL" if delimiter is None else quote(delimiter.encode("ascii"))
    out = b"* %s (%s) %s %s" % (
        command.encode("ascii"),
        " ".join(attributes).encode("ascii"),
        delim,
        mailbox_name(name, utf8=utf8),
    )
    if extended:
        out += b" (" + b" ".join(extended) + b")"
    return out + CRLF


def lsub(attributes: Iterable[str], delimiter: str | None, name: str, *, utf8: bool) -> bytes:
    return list_(attributes, delimiter, name, utf8=utf8, command="LSUB")


def status(name: str, items: Sequence[tuple[str, int | str | None]], *, utf8: bool) -> bytes:
    """``"STATUS" SP mailbox SP "(" [status-att-list] ")"``; MAILBOXID takes a string
    (rendered in parentheses, RFC 8474), APPENDLIMIT may be None (NIL, RFC 7889)."""
    parts: list[bytes] = []
    for item, value in items:
        if isinstance(value, str):
            rendered = b"(" + value.encode("ascii") + b")"
        elif value is None:
            rendered = b"NIL"
        else:
            rendered = b"%d" % value
        parts.append(item.encode("ascii") + b" " + rendered)
    return b"* STATUS %s (%s)\r\n" % (mailbox_name(name, utf8=utf8), b" ".join(parts))


def search(numbers: Iterable[int], modseq: int | None = None) -> bytes:
    """``"SEARCH" *(SP nz-number) [SP "(" "MODSEQ" SP mod-sequence-value ")"]``."""
    out = b"".join(b" %d" % n for n in numbers)
    if modseq is not None:
        out += b" (MODSEQ %d)" % modseq
    return b"* SEARCH" + out + CRLF


def sort(numbers: Iterable[int], modseq: int | None = None) -> bytes:
    """RFC 5256: ``"SORT" *(SP nz-number)`` (RFC 7162 adds the MODSEQ)."""
    out = b"".join(b" %d" % n for n in numbers)
    if modseq is not None:
        out += b" (MODSEQ %d)" % modseq
    return b"* SORT" + out + CRLF


def esearch(
    tag: str | None,
    *,
    uid: bool = False,
    min: int | None = None,
    max: int | None = None,
    all: Numbers | None = None,
    count: int | None = None,
    partial: tuple[tuple[int, int], Numbers] | None = None,
    modseq: int | None = None,
) -> bytes:
    """RFC 4731 / RFC 9051 7.3.4::

    esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)
    search-correlator = SP "(" "TAG" SP tag-string ")"

    MIN/MAX/ALL are left out when None or empty (no match, RFC 4731 3.1); ``partial`` is
    (requested range, numbers), giving ``PARTIAL (1:100 NIL)`` when nothing is in it.
    """
    out = b"* ESEARCH"
    if tag is not None:
        out += b" (TAG " + quote(tag.encode("ascii")) + b")"
    if uid:
        out += b" UID"
    if min is not None:
        out += b" MIN %d" % min
    if max is not None:
        out += b" MAX %d" % max
    if all is not None:
        rendered = _numbers(all)
        if rendered:
            out += b" ALL " + rendered
    if count is not None:
        out += b" COUNT %d" % count
    if partial is not None:
        (first, last), numbers = partial
        rendered = _numbers(numbers)
        out += b" PARTIAL (%d:%d %s)" % (first, last, rendered or b"NIL")
    if modseq is not None:
        out += b" MODSEQ %d" % modseq
    return out + CRLF


@dataclass(frozen=True, slots=True)
class ThreadNode:
    """A THREAD tree node: ``number`` None for a dummy parent (RFC 5256 4)."""

    number: int | None
    children: tuple[ThreadNode, ...] = ()


def _thread_members(node: ThreadNode) -> bytes:
    """``thread-members = nz-number *(SP nz-number) [SP thread-nested]``;
    ``thread-nested = 2*thread-list``."""
    parts: list[bytes] = []
    current: ThreadNode | None = node
    while current is not None:
        if current.number is None:
            # A dummy parent: only its children are shown, as nested threads.
            parts.append(b"".join(b"(" + _thread_members(ch) + b")" for ch in current.children))
            break
        parts.append(b"%d" % current.number)
        if len(current.children) == 1:
            current = current.children[0]
        else:
            if current.children:
                parts.append(b"".join(b"(" + _thread_members(ch) + b")" for ch in current.children))
            current = None
    return b" ".join(parts)


def thread(roots: Iterable[ThreadNode]) -> bytes:
    """RFC 5256 5: ``thread-data = "THREAD" [SP 1*thread-list]``."""
    lists = b"".join(b"(" + _thread_members(root) + b")" for root in roots)
    return b"* THREAD " + lists + CRLF if lists else b"* THREAD\r\n"


Namespace = Sequence[tuple[str, str | None]] | None
"""(prefix, delimiter) pairs of one namespace class, or None for NIL."""


def namespace(personal: Namespace, other: Namespace, shared: Namespace, *, utf8: bool) -> bytes:
    """RFC 2342 / RFC 9051 7.3.5: ``"NAMESPACE" SP namespace SP namespace SP namespace``."""

    def one(spaces: Namespace) -> bytes:
        if not spaces:
            return b"NIL"
        return (
            b"("
            + b"".join(
                b"(%s %s)"
                % (
                    string(encode_mailbox(prefix, utf8=utf8), utf8=utf8),
                    b"NIL" if delim is None else quote(delim.encode("ascii")),
                )
                for prefix, delim in spaces
            )
            + b")"
        )

    return b"* NAMESPACE %s %s %s\r\n" % (one(personal), one(other), one(shared))


def id_(parameters: Sequence[tuple[str, str | None]] | None) -> bytes:
    """RFC 2971: ``"ID" SP id-params-list``."""
    if parameters is None:
        return b"* ID NIL\r\n"
    body = b" ".join(
        string(key.encode("utf-8")) + b" " + nstring(None if v is None else v.encode("utf-8"))
        for key, v in parameters
    )
    return b"* ID (" + body + b")\r\n"


def enabled(capabilities: Iterable[str]) -> bytes:
    """RFC 5161: ``"ENABLED" *(SP capability)``."""
    return b"* ENABLED" + b"".join(b" " + c.encode("ascii") for c in capabilities) + CRLF


def quota(root: str, resources: Iterable[tuple[str, int, int]], *, utf8: bool = False) -> bytes:
    """RFC 9208: ``"QUOTA" SP quota-root-name SP quota-list``; (name, usage, limit)."""
    items = b" ".join(b"%s %d %d" % (n.encode("ascii"), u, lim) for n, u, lim in resources)
    return b"* QUOTA %s (%s)\r\n" % (astring(root.encode("utf-8"), utf8=utf8), items)


def quotaroot(mailbox: str, roots: Iterable[str], *, utf8: bool) -> bytes:
    """RFC 9208: ``"QUOTAROOT" SP mailbox *(SP quota-root-name)``."""
    out = b"* QUOTAROOT " + mailbox_name(mailbox, utf8=utf8)
    for root in roots:
        out += b" " + astring(root.encode("utf-8"), utf8=utf8)
    return out + CRLF


def acl(mailbox: str, entries: Iterable[tuple[str, str]], *, utf8: bool) -> bytes:
    """RFC 4314 3.6: ``"ACL" SP mailbox *(SP identifier SP rights)``."""
    out = b"* ACL " + mailbox_name(mailbox, utf8=utf8)
    for identifier, rights in entries:
        out += b" %s %s" % (
            astring(identifier.encode("utf-8"), utf8=utf8),
            astring(rights.encode("ascii")),
        )
    return out + CRLF


def listrights(
    mailbox: str, identifier: str, required: str, optional: Iterable[str], *, utf8: bool
) -> bytes:
    """RFC 4314 3.7: ``"LISTRIGHTS" SP mailbox SP identifier SP rights *(SP rights)``."""
    out = b"* LISTRIGHTS %s %s %s" % (
        mailbox_name(mailbox, utf8=utf8),
        astring(identifier.encode("utf-8"), utf8=utf8),
        astring(required.encode("ascii")),
    )
    for rights in optional:
        out += b" " + astring(rights.encode("ascii"))
    return out + CRLF


def myrights(mailbox: str, rights: str, *, utf8: bool) -> bytes:
    """RFC 4314 3.8: ``"MYRIGHTS" SP mailbox SP rights``."""
    return b"* MYRIGHTS %s %s\r\n" % (
        mailbox_name(mailbox, utf8=utf8),
        astring(rights.encode("ascii")),
    )


def _metadata_mailbox(mailbox: str, utf8: bool) -> bytes:
    # RFC 5464's examples (and Dovecot, Cyrus) always quote the mailbox here.
    return string(encode_mailbox(mailbox, utf8=utf8), utf8=utf8)


def metadata(mailbox: str, entries: Iterable[tuple[str, bytes | None]], *, utf8: bool) -> bytes:
    """RFC 5464 4.4.1: ``"METADATA" SP mailbox SP entry-values`` ("" for the server);
    a value with NUL is sent as literal8."""
    parts: list[bytes] = []
    for entry, value in entries:
        if value is not None and b"\x00" in value:
            rendered = literal(value, binary=True)
        else:
            rendered = nstring(value, utf8=utf8)
        parts.append(astring(entry.encode("utf-8"), utf8=utf8) + b" " + rendered)
    return b"* METADATA %s (%s)\r\n" % (_metadata_mailbox(mailbox, utf8), b" ".join(parts))


def metadata_changed(mailbox: str, entries: Iterable[str], *, utf8: bool) -> bytes:
    """RFC 5464 4.4.2 unsolicited form: ``"METADATA" SP mailbox SP entry-list``."""
    names = b" ".join(astring(e.encode("utf-8"), utf8=utf8) for e in entries)
    return b"* METADATA %s %s\r\n" % (_metadata_mailbox(mailbox, utf8), names)


# =============================================================================== FETCH


@dataclass(frozen=True, slots=True)
class Streamed:
    """A literal whose ``size`` octets the server writes itself from ``source`` (a blob
    handle, a file, ...) right after the preceding chunk, so large bodies are never held
    in memory or copied. The literal header is already in the preceding chunk."""

    size: int
    source: object = field(repr=False)


Chunk = bytes | Streamed


class FetchResponse:
    """Builder for ``* n FETCH (item value ...)`` (RFC 9051 7.5.2).

    Values are rendered by the session (ENVELOPE and BODYSTRUCTURE come pre-rendered
    from delivery time); this class only joins them, wraps literals and keeps big bodies
    as separate chunks::

        fr = FetchResponse(12)
        fr.add("UID", b"4827313")
        fr.add("FLAGS", flag_list(["\\\\Seen"]))
        fr.add_stream("BODY[]", size, blob)    # or add_literal("BODY[]", data)
        for chunk in fr.chunks(): ...          # bytes, or Streamed to copy from its source
    """

    __slots__ = ("_chunks", "_current")

    def __init__(self, number: int) -> None:
        self._chunks: list[Chunk] = []
        self._current: list[bytes] = [b"* %d FETCH (" % number]

    def _name(self, name: str | bytes) -> None:
        if len(self._current) > 1 or self._chunks:
            self._current.append(b" ")
        self._current.append(name.encode("ascii") if isinstance(name, str) else name)
        self._current.append(b" ")

    def add(self, name: str | bytes, value: bytes) -> FetchResponse:
        """An item whose value is already rendered (``b"(\\\\Seen)"``, ``b"12"``, ...)."""
        self._name(name)
        self._current.append(value)
        return self

    def add_number(self, name: str | bytes, value: int) -> FetchResponse:
        return self.add(name, b"%d" % value)

    def add_date(self, name: str | bytes, value: datetime | None) -> FetchResponse:
        """INTERNALDATE, SAVEDATE (NIL when None, RFC 8514)."""
        return self.add(name, b"NIL" if value is None else format_date_time(value))

    def add_string(
        self, name: str | bytes, value: bytes | None, *, utf8: bool = False
    ) -> FetchResponse:
        """An nstring value (PREVIEW, small header sections): quoted or a literal."""
        return self.add(name, nstring(value, utf8=utf8))

    def add_literal(self, name: str | bytes, data: bytes, *, binary: bool = False) -> FetchResponse:
        """A body section as a literal (``~{n}`` literal8 when ``binary``, RFC 3516).
        ``data`` becomes its own chunk: it is not copied into the response line."""
        self._name(name)
        self._current.append(b"%s{%d}\r\n" % (b"~" if binary else b"", len(data)))
        self._flush()
        self._chunks.append(data)
        return self

    def add_stream(
        self, name: str | bytes, size: int, source: object, *, binary: bool = False
    ) -> FetchResponse:
        """A body section of ``size`` octets that the server copies from ``source``."""
        self._name(name)
        self._current.append(b"%s{%d}\r\n" % (b"~" if binary else b"", size))
        self._flush()
        self._chunks.append(Streamed(size, source))
        return self

    def _flush(self) -> None:
        self._chunks.append(b"".join(self._current))
        self._current = []

    def chunks(self) -> list[Chunk]:
        """The response in order: bytes to write, and ``Streamed`` bodies to copy."""
        return [*self._chunks, b"".join(self._current) + b")\r\n"]

    def to_bytes(self) -> bytes:
        """The whole response as one bytes object (no ``Streamed`` items allowed)."""
        out: list[bytes] = []
        for chunk in self.chunks():
            if isinstance(chunk, Streamed):
                raise TypeError("a FETCH response with streamed bodies has no single bytes form")
            out.append(chunk)
        return b"".join(out)


def modseq_value(modseq: int) -> bytes:
    """FETCH MODSEQ value: ``"(" mod-sequence-value ")"`` (RFC 7162 3.1.4.1)."""
    return b"(%d)" % modseq


def objectid_value(objectid: str | None) -> bytes:
    """FETCH EMAILID/THREADID value: ``"(" objectid ")"`` or NIL (RFC 8474)."""
    return b"NIL" if objectid is None else b"(" + objectid.encode("ascii") + b")"


def keyword_atom(keyword: str) -> bytes:
    """A keyword for a flag list; keywords are atoms by construction (the parser only
    accepts atoms), so anything else is our bug."""
    data = keyword.encode("ascii")
    if not is_atom(data.removeprefix(b"\\")):
        raise ValueError(f"flag {keyword!r} is not an atom")
    return data
