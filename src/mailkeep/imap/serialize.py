"""Commands → wire bytes: the inverse of ``parser``, for mailkeep's IMAP client and tests.

``serialize(tag, command)`` returns the command as segments: after each segment but the
last the client must wait for the server's ``+`` continuation (a synchronising literal
was announced). With ``literal_plus`` (the server advertised LITERAL+) non-synchronising
literals are used and there is a single segment.

Strings are written as atoms when they are atoms, quoted when they can be, and as
literals otherwise; ``parse_command(serialize(...))`` gives back an equal command.
"""

from __future__ import annotations

import binascii
from datetime import date

from mailkeep.imap import commands as c
from mailkeep.imap.dates import format_date, format_date_time
from mailkeep.imap.grammar import ASTRING_CHARS, LIST_CHARS, quote

_ASTRING_SET = frozenset(ASTRING_CHARS)
_LIST_SET = frozenset(LIST_CHARS)


class _Writer:
    def __init__(self, literal_plus: bool) -> None:
        self.literal_plus = literal_plus
        self.segments: list[bytes] = []
        self.parts: list[bytes] = []

    def raw(self, data: bytes) -> None:
        self.parts.append(data)

    def literal(self, data: bytes, *, binary: bool = False) -> None:
        plus = b"+" if self.literal_plus else b""
        self.parts.append(b"%s{%d%s}\r\n" % (b"~" if binary else b"", len(data), plus))
        if not self.literal_plus:
            self.segments.append(b"".join(self.parts))
            self.parts = []
        self.parts.append(data)

    def string(self, data: bytes) -> None:
        if len(data) < 1000 and not any(b in data for b in b"\r\n\x00") and data.isascii():
            self.raw(quote(data))
        else:
            self.literal(data)

    def astring(self, data: bytes) -> None:
        if data and all(b in _ASTRING_SET for b in data):
            self.raw(data)
        else:
            self.string(data)

    def list_mailbox(self, data: bytes) -> None:
        if data and all(b in _LIST_SET for b in data):
            self.raw(data)
        else:
            self.string(data)

    def finish(self) -> list[bytes]:
        self.parts.append(b"\r\n")
        return [*self.segments, b"".join(self.parts)]


def serialize(tag: str, command: c.Command, *, literal_plus: bool = False) -> list[bytes]:
    """The command as wire segments (see the module docstring)."""
    w = _Writer(literal_plus)
    w.raw(tag.encode("ascii") + b" ")
    _command(w, command)
    return w.finish()


def to_bytes(tag: str, command: c.Command) -> bytes:
    """All segments joined, synchronising literals included (for tests and pipelining
    into a reader)."""
    return b"".join(serialize(tag, command))


def _uid(w: _Writer, uid: bool) -> None:
    if uid:
        w.raw(b"UID ")


def _command(w: _Writer, cmd: c.Command) -> None:
    match cmd:
        case c.Capability():
            w.raw(b"CAPABILITY")
        case c.Noop():
            w.raw(b"NOOP")
        case c.Logout():
            w.raw(b"LOGOUT")
        case c.StartTls():
            w.raw(b"STARTTLS")
        case c.Namespace():
            w.raw(b"NAMESPACE")
        case c.Idle():
            w.raw(b"IDLE")
        case c.Check():
            w.raw(b"CHECK")
        case c.Close():
            w.raw(b"CLOSE")
        case c.Unselect():
            w.raw(b"UNSELECT")
        case c.Unauthenticate():
            w.raw(b"UNAUTHENTICATE")
        case c.Id(id_params):
            w.raw(b"ID ")
            if id_params is None:
                w.raw(b"NIL")
            else:
                w.raw(b"(")
                for i, (key, id_value) in enumerate(id_params):
                    if i:
                        w.raw(b" ")
                    w.string(key.encode())
                    w.raw(b" ")
                    if id_value is None:
                        w.raw(b"NIL")
                    else:
                        w.string(id_value.encode())
                w.raw(b")")
        case c.Authenticate(mechanism, initial):
            w.raw(b"AUTHENTICATE " + mechanism.encode("ascii"))
            if initial is not None:
                w.raw(b" " + (binascii.b2a_base64(initial, newline=False) or b"="))
        case c.Login(user, password):
            w.raw(b"LOGIN ")
            w.astring(user)
            w.raw(b" ")
            w.astring(password)
        case c.Enable(caps):
            w.raw(b"ENABLE " + " ".join(caps).encode("ascii"))
        case c.Select(mailbox, readonly, condstore, qresync):
            w.raw(b"EXAMINE " if readonly else b"SELECT ")
            w.astring(mailbox)
            params: list[bytes] = []
            if condstore:
                params.append(b"CONDSTORE")
            if qresync is not None:
                q = b"QRESYNC (%d %d" % (qresync.uidvalidity, qresync.modseq)
                if qresync.known_uids is not None:
                    q += b" " + bytes(qresync.known_uids)
                if qresync.known_sequence is not None and qresync.known_sequence_uids:
                    q += b" (%s %s)" % (
                        bytes(qresync.known_sequence),
                        bytes(qresync.known_sequence_uids),
                    )
                params.append(q + b")")
            if params:
                w.raw(b" (" + b" ".join(params) + b")")
        case c.Create(mailbox, uses):
            w.raw(b"CREATE ")
            w.astring(mailbox)
            if uses:
                w.raw(b" (USE (" + " ".join(uses).encode("ascii") + b"))")
        case c.Delete(mailbox):
            w.raw(b"DELETE ")
            w.astring(mailbox)
        case c.Rename(old, new):
            w.raw(b"RENAME ")
            w.astring(old)
            w.raw(b" ")
            w.astring(new)
        case c.Subscribe(mailbox):
            w.raw(b"SUBSCRIBE ")
            w.astring(mailbox)
        case c.Unsubscribe(mailbox):
            w.raw(b"UNSUBSCRIBE ")
            w.astring(mailbox)
        case c.List():
            _list(w, cmd)
        case c.Lsub(reference, pattern):
            w.raw(b"LSUB ")
            w.astring(reference)
            w.raw(b" ")
            w.list_mailbox(pattern)
        case c.Status(mailbox, items):
            w.raw(b"STATUS ")
            w.astring(mailbox)
            w.raw(b" (" + " ".join(items).encode("ascii") + b")")
        case c.Append(mailbox, messages):
            w.raw(b"APPEND ")
            w.astring(mailbox)
            for message in messages:
                _append_message(w, message)
        case c.Replace(number, mailbox, message, uid):
            _uid(w, uid)
            w.raw(b"REPLACE %d " % number)
            w.astring(mailbox)
            _append_message(w, message)
        case c.Expunge(uids):
            if uids is None:
                w.raw(b"EXPUNGE")
            else:
                w.raw(b"UID EXPUNGE " + bytes(uids))
        case c.Search(criteria, uid, charset, returns):
            _uid(w, uid)
            w.raw(b"SEARCH")
            if returns is not None:
                w.raw(b" " + _returns(returns))
            if charset is not None:
                w.raw(b" CHARSET " + charset.encode("ascii"))
            w.raw(b" ")
            _search_top(w, criteria)
        case c.Fetch():
            _fetch(w, cmd)
        case c.Store(seqset, action, flags, uid, silent, unchangedsince):
            _uid(w, uid)
            w.raw(b"STORE " + bytes(seqset) + b" ")
            if unchangedsince is not None:
                w.raw(b"(UNCHANGEDSINCE %d) " % unchangedsince)
            w.raw(action.encode("ascii") + b"FLAGS" + (b".SILENT" if silent else b""))
            w.raw(b" (" + " ".join(flags).encode("ascii") + b")")
        case c.Copy(seqset, mailbox, uid) | c.Move(seqset, mailbox, uid):
            _uid(w, uid)
            w.raw(b"COPY " if isinstance(cmd, c.Copy) else b"MOVE ")
            w.raw(bytes(seqset) + b" ")
            w.astring(mailbox)
        case c.Sort(criteria, charset, search, uid, returns):
            _uid(w, uid)
            w.raw(b"SORT ")
            if returns is not None:
                w.raw(_returns(returns) + b" ")
            keys = [(b"REVERSE " if k.reverse else b"") + k.key.encode("ascii") for k in criteria]
            w.raw(b"(" + b" ".join(keys) + b") " + charset.encode("ascii") + b" ")
            _search_top(w, search)
        case c.Thread(algorithm, charset, search, uid):
            _uid(w, uid)
            w.raw(b"THREAD %s %s " % (algorithm.encode("ascii"), charset.encode("ascii")))
            _search_top(w, search)
        case c.GetQuota(root):
            w.raw(b"GETQUOTA ")
            w.astring(root)
        case c.GetQuotaRoot(mailbox):
            w.raw(b"GETQUOTAROOT ")
            w.astring(mailbox)
        case c.SetQuota(root, limits):
            w.raw(b"SETQUOTA ")
            w.astring(root)
            w.raw(b" (" + b" ".join(b"%s %d" % (n.encode("ascii"), v) for n, v in limits) + b")")
        case c.SetAcl(mailbox, identifier, rights):
            w.raw(b"SETACL ")
            w.astring(mailbox)
            w.raw(b" ")
            w.astring(identifier)
            w.raw(b" ")
            w.astring(rights.encode("ascii"))
        case c.DeleteAcl(mailbox, identifier) | c.ListRights(mailbox, identifier):
            w.raw(b"DELETEACL " if isinstance(cmd, c.DeleteAcl) else b"LISTRIGHTS ")
            w.astring(mailbox)
            w.raw(b" ")
            w.astring(identifier)
        case c.GetAcl(mailbox):
            w.raw(b"GETACL ")
            w.astring(mailbox)
        case c.MyRights(mailbox):
            w.raw(b"MYRIGHTS ")
            w.astring(mailbox)
        case c.GetMetadata(mailbox, entries, maxsize, depth):
            w.raw(b"GETMETADATA ")
            options = []
            if maxsize is not None:
                options.append(b"MAXSIZE %d" % maxsize)
            if depth != "0":
                options.append(b"DEPTH " + depth.encode("ascii"))
            if options:
                w.raw(b"(" + b" ".join(options) + b") ")
            w.astring(mailbox)
            w.raw(b" (")
            for i, entry in enumerate(entries):
                if i:
                    w.raw(b" ")
                w.astring(entry.encode())
            w.raw(b")")
        case c.SetMetadata(mailbox, meta_values):
            w.raw(b"SETMETADATA ")
            w.astring(mailbox)
            w.raw(b" (")
            for i, (entry, meta_value) in enumerate(meta_values):
                if i:
                    w.raw(b" ")
                w.astring(entry.encode())
                w.raw(b" ")
                if meta_value is None:
                    w.raw(b"NIL")
                elif b"\x00" in meta_value:
                    w.literal(meta_value, binary=True)
                else:
                    w.string(meta_value)
            w.raw(b")")
        case c.Notify(groups, status):
            _notify(w, groups, status)
        case c.Compress(mechanism):
            w.raw(b"COMPRESS " + mechanism.encode("ascii"))


def _list(w: _Writer, cmd: c.List) -> None:
    options = [o.encode("ascii") for o in cmd.return_options]
    if cmd.return_status is not None:
        options.append(b"STATUS (" + " ".join(cmd.return_status).encode("ascii") + b")")
    w.raw(b"LIST ")
    if cmd.select_options:
        w.raw(b"(" + " ".join(cmd.select_options).encode("ascii") + b") ")
    w.astring(cmd.reference)
    w.raw(b" ")
    if len(cmd.patterns) == 1 and not (cmd.extended and not cmd.select_options and not options):
        w.list_mailbox(cmd.patterns[0])
    else:
        w.raw(b"(")
        for i, pattern in enumerate(cmd.patterns):
            if i:
                w.raw(b" ")
            w.list_mailbox(pattern)
        w.raw(b")")
    if options:
        w.raw(b" RETURN (" + b" ".join(options) + b")")


def _append_message(w: _Writer, message: c.AppendMessage) -> None:
    w.raw(b" ")
    if message.flags:
        w.raw(b"(" + " ".join(message.flags).encode("ascii") + b") ")
    if message.internal_date is not None:
        w.raw(format_date_time(message.internal_date) + b" ")
    if message.utf8:
        w.raw(b"UTF8 (")
        w.literal(message.data, binary=True)
        w.raw(b")")
    else:
        w.literal(message.data, binary=message.binary)


def _returns(returns: c.SearchReturn) -> bytes:
    options = []
    for option in returns.options:
        if option == "PARTIAL" and returns.partial is not None:
            first, last = returns.partial
            options.append(b"PARTIAL %d:%d" % (first, last))
        else:
            options.append(option.encode("ascii"))
    return b"RETURN (" + b" ".join(options) + b")"


def _search_top(w: _Writer, key: c.SearchKey) -> None:
    if isinstance(key, c.SearchAnd):
        for i, sub in enumerate(key.keys):
            if i:
                w.raw(b" ")
            _search_key(w, sub)
    else:
        _search_key(w, key)


def _date(day: date) -> bytes:
    return format_date(day)


def _search_key(w: _Writer, key: c.SearchKey) -> None:
    match key:
        case c.SearchFlag(name):
            w.raw(name.encode("ascii"))
        case c.SearchText(name, value):
            w.raw(name.encode("ascii") + b" ")
            if name in ("EMAILID", "THREADID"):
                w.raw(value.encode("ascii"))
            else:
                w.astring(value.encode("utf-8"))
        case c.SearchHeader(field_name, value):
            w.raw(b"HEADER ")
            w.astring(field_name.encode("ascii"))
            w.raw(b" ")
            w.astring(value.encode("utf-8"))
        case c.SearchKeyword(keyword, present):
            w.raw((b"KEYWORD " if present else b"UNKEYWORD ") + keyword.encode("ascii"))
        case c.SearchDate(name, day):
            w.raw(name.encode("ascii") + b" " + _date(day))
        case c.SearchNumber(name, value):
            w.raw(b"%s %d" % (name.encode("ascii"), value))
        case c.SearchSet(seqset, uid):
            w.raw((b"UID " if uid else b"") + bytes(seqset))
        case c.SearchModseq(modseq, entry):
            w.raw(b"MODSEQ ")
            if entry is not None:
                w.raw(quote(entry[0].encode("ascii")) + b" " + entry[1].encode("ascii") + b" ")
            w.raw(b"%d" % modseq)
        case c.SearchNot(inner):
            w.raw(b"NOT ")
            _search_key(w, inner)
        case c.SearchOr(left, right):
            w.raw(b"OR ")
            _search_key(w, left)
            w.raw(b" ")
            _search_key(w, right)
        case c.SearchAnd():
            w.raw(b"(")
            _search_top(w, key)
            w.raw(b")")


def fetch_item(item: c.FetchItem) -> bytes:
    """One ``fetch-att`` as the client writes it."""
    match item:
        case c.FetchAttr(name):
            return name.encode("ascii")
        case c.FetchBody(section, partial, peek):
            out = (b"BODY.PEEK[" if peek else b"BODY[") + bytes(section) + b"]"
            return out + (b"<%d.%d>" % partial if partial else b"")
        case c.FetchBinary(part, partial, peek, size):
            prefix = b"BINARY.SIZE[" if size else b"BINARY.PEEK[" if peek else b"BINARY["
            out = prefix + b".".join(b"%d" % p for p in part) + b"]"
            return out + (b"<%d.%d>" % partial if partial else b"")
        case c.FetchPreview(lazy):
            return b"PREVIEW (LAZY)" if lazy else b"PREVIEW"


def _fetch(w: _Writer, cmd: c.Fetch) -> None:
    _uid(w, cmd.uid)
    w.raw(b"FETCH " + bytes(cmd.sequence) + b" (")
    w.raw(b" ".join(fetch_item(item) for item in cmd.items) + b")")
    modifiers = []
    if cmd.changedsince is not None:
        modifiers.append(b"CHANGEDSINCE %d" % cmd.changedsince)
    if cmd.vanished:
        modifiers.append(b"VANISHED")
    if cmd.partial is not None:
        modifiers.append(b"PARTIAL %d:%d" % cmd.partial)
    if modifiers:
        w.raw(b" (" + b" ".join(modifiers) + b")")


def _notify(w: _Writer, groups: tuple[c.NotifyGroup, ...] | None, status: bool) -> None:
    if groups is None:
        w.raw(b"NOTIFY NONE")
        return
    w.raw(b"NOTIFY SET" + (b" STATUS" if status else b""))
    for group in groups:
        w.raw(b" (" + group.filter.encode("ascii"))
        if group.filter in ("SUBTREE", "MAILBOXES"):
            w.raw(b" (")
            for i, mailbox in enumerate(group.mailboxes):
                if i:
                    w.raw(b" ")
                w.astring(mailbox)
            w.raw(b")")
        if group.events is None:
            w.raw(b" NONE)")
            continue
        events = []
        for event in group.events:
            text = event.name.encode("ascii")
            if event.fetch:
                text += b" (" + b" ".join(fetch_item(i) for i in event.fetch) + b")"
            events.append(text)
        w.raw(b" (" + b" ".join(events) + b"))")
