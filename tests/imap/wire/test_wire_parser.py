"""Command parsing: every command example of RFC 3501/9051 sections 6 and of the
extension RFCs parses, to the expected dataclass where given, and round-trips through the
serializer; malformed commands give a precise reason."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from mailkeep.imap import commands as c
from mailkeep.imap.reader import ErrorKind
from mailkeep.imap.sequence import STAR, SequenceSet
from mailkeep.imap.serialize import to_bytes

from ._support import error, parse

MSG = b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nSubject: afternoon meeting\r\n\r\nHello\r\n"

# Command lines from the RFCs' examples (C: lines, tags as in the RFC). Literals are
# written out with their data.
RFC_EXAMPLES: list[bytes] = [
    # RFC 3501 / RFC 9051 6.1
    b"a001 CAPABILITY",
    b"a002 NOOP",
    b"a047 NOOP",
    b"A023 LOGOUT",
    # 6.2
    b"a002 STARTTLS",
    b"A001 AUTHENTICATE GSSAPI",
    b"a001 LOGIN SMITH SESAME",
    # 6.3
    b"A142 SELECT INBOX",
    b"A932 EXAMINE blurdybloop",
    b"A003 CREATE owatagusiam/",
    b"A004 CREATE owatagusiam/blurdybloop",
    b'A682 LIST "" *',
    b"A683 DELETE blurdybloop",
    b"A684 DELETE foo",
    b"A685 DELETE foo/bar",
    b'A686 LIST "" foo/%',
    b"A683 RENAME blurdybloop sarasoop",
    b"A684 RENAME foo zowie",
    b"Z433 RENAME INBOX old-mail",
    b"A002 SUBSCRIBE #news.comp.mail.mime",
    b"A002 UNSUBSCRIBE #news.comp.mail.mime",
    b'A101 LIST "" ""',
    b'A102 LIST #news.comp.mail.misc ""',
    b'A103 LIST /usr/staff/jones ""',
    b"A202 LIST ~/Mail/ %",
    b'A002 LSUB "#news." "comp.mail.*"',
    b'A003 LSUB "#news." "comp.%"',
    b"A042 STATUS blurdybloop (UIDNEXT MESSAGES)",
    b"A003 APPEND saved-messages (\\Seen) {%d}\r\n%s" % (len(MSG), MSG),
    b'A02 LIST (SUBSCRIBED) "" "*"',
    b'A03 LIST () "" "%" RETURN (CHILDREN)',
    b'A04 LIST (REMOTE) "" "%" RETURN (CHILDREN)',
    b'A05 LIST (REMOTE SUBSCRIBED) "" "*"',
    b'A06 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"',
    b'A11 LIST "" ("INBOX" "Drafts" "Sent/%")',
    b'A01 LIST "" % RETURN (STATUS (MESSAGES UNSEEN))',
    b'A02 LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (STATUS (MESSAGES))',
    b"ns1 NAMESPACE",
    b"A001 ENABLE IMAP4rev2",
    b"t2 ENABLE CONDSTORE X-GOOD-IDEA",
    b"A283 IDLE",
    # 6.4
    b"FXXZ CHECK",
    b"A341 CLOSE",
    b"A342 UNSELECT",
    b"A202 EXPUNGE",
    b"A003 UID EXPUNGE 3000:3002",
    b'A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"',
    b'A283 SEARCH TEXT "string not in mailbox"',
    b"A284 SEARCH CHARSET UTF-8 TEXT {6}\r\n\xe6\x97\xa5\xe6\x9c\xac",
    b'A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"',
    b'A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"',
    b"A285 UID SEARCH RETURN (MIN MAX) 1:5000",
    b"A286 SEARCH CHARSET UTF-8 TEXT {12}\r\n\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",
    b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])",
    b"A003 STORE 2:4 +FLAGS (\\Deleted)",
    b"A003 COPY 2:4 MEETING",
    b"A999 UID FETCH 4827313:4828442 FLAGS",
    b"a UID MOVE 42:69 foo",
    b"A002 MOVE 2:4 meeting",
    # RFC 9051 6.4.4 search examples
    b'A284 SEARCH OR (FROM Smith) (SUBJECT "hi there")',
    b"A285 SEARCH KEYWORD $Forwarded UNKEYWORD $Junk",
    b"A286 SEARCH HEADER Message-ID <abc@example.org> LARGER 1000 SMALLER 2000",
    b'A287 SEARCH SENTBEFORE 1-Feb-1994 SENTON 1-Feb-1994 SENTSINCE "1-Feb-1994"',
    b"A288 SEARCH 1:5,7,9:* UID 3:* ANSWERED DELETED DRAFT SEEN UNANSWERED UNDELETED",
    b"A289 SEARCH NEW OLD RECENT UNDRAFT UNFLAGGED UNSEEN ALL BCC x CC y TO z BODY w ON 2-Feb-1994",
    # RFC 2971
    b'a023 ID ("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited")',
    b"a024 ID NIL",
    # RFC 4959, RFC 8437, RFC 4978
    b"a01 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=",
    b"a02 AUTHENTICATE EXTERNAL =",
    b"a UNAUTHENTICATE",
    b"a COMPRESS DEFLATE",
    # RFC 3502 MULTIAPPEND, RFC 3516 BINARY, RFC 6855 UTF8
    b'A003 APPEND saved-messages (\\Seen) {%d}\r\n%s (\\Seen) " 7-Feb-1994 22:43:04 -0800" '
    b"{%d}\r\n%s" % (len(MSG), MSG, len(MSG), MSG),
    b"A004 APPEND Drafts (\\Seen) ~{13}\r\nHello\x00World!\r",
    b"A005 APPEND saved-messages (\\Seen) UTF8 (~{%d}\r\n%s)" % (len(MSG), MSG),
    b"a1 FETCH 1 (BINARY.PEEK[1.2])",
    b"a2 FETCH 1 (BINARY[1]<0.100> BINARY.SIZE[1])",
    # RFC 7162 CONDSTORE/QRESYNC
    b"a103 UID STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)",
    b"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)",
    b'a SEARCH MODSEQ "/flags/\\\\draft" all 620162338',
    b"a SEARCH OR NOT MODSEQ 720162338 LARGER 50000 NOT MODSEQ 720162338",
    b"A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
    b"B01 SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541))",
    b"A04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,"
    b"9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))",
    b"a SELECT INBOX (CONDSTORE)",
    b"s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)",
    b"a1 FETCH 1:* (UID MODSEQ FLAGS)",
    b"a STATUS INBOX (HIGHESTMODSEQ MESSAGES)",
    # RFC 4314 ACL
    b"A001 SETACL INBOX/Drafts Chris +cda",
    b"A002 GETACL INBOX",
    b"a LISTRIGHTS ~/Mail/saved smith",
    b"A003 MYRIGHTS INBOX",
    b"A035 DELETEACL INBOX/Drafts Chris",
    # RFC 9208 QUOTA
    b'G0001 GETQUOTA "!partition/sda4"',
    b"G0002 GETQUOTAROOT INBOX",
    b'S0000 SETQUOTA "" (STORAGE 512)',
    # RFC 5464 METADATA
    b'a GETMETADATA "" /shared/comment',
    b'a GETMETADATA "INBOX" /private/comment',
    b'a GETMETADATA "INBOX" (/shared/comment /private/comment)',
    b'a GETMETADATA (MAXSIZE 1024) "INBOX" /private/comment',
    b'a GETMETADATA (DEPTH 1) "INBOX" (/private/filters/values)',
    b"a SETMETADATA INBOX (/private/comment {33}\r\nMy new comment across\r\ntwo lines.)",
    b"a SETMETADATA INBOX (/private/comment NIL)",
    b'a SETMETADATA INBOX (/private/comment "My new comment" '
    b'/shared/comment "This one is for you!")',
    # RFC 5256 SORT/THREAD, RFC 5267 ESORT, RFC 5957 DISPLAY
    b"A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994",
    b"A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL",
    b'A284 SORT (SUBJECT) US-ASCII TEXT "not in mailbox"',
    b"A285 UID SORT RETURN (COUNT MIN) (DATE) UTF-8 ALL",
    b"B112 SORT (DISPLAYFROM) UTF-8 ALL",
    b"A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000",
    b'A284 THREAD ORDEREDSUBJECT US-ASCII TEXT "gewp"',
    b"A285 UID THREAD REFERENCES US-ASCII ALL",
    # RFC 5465 NOTIFY, lowercase as in the RFC; its example omits the parentheses that
    # its own ABNF puts around the events (an erratum), so they are added here.
    b"a notify set status (selected (MessageNew (uid body.peek[header.fields (from to subject)])"
    b" MessageExpunge)) (subtree Lists (MessageNew))",
    b"a NOTIFY NONE",
    b"b NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange)) (personal NONE)",
    b"c NOTIFY SET (mailboxes (INBOX Sent) (MessageNew)) (inboxes (MailboxName))",
    # RFC 6154 SPECIAL-USE
    b't1 CREATE "Everything" (USE (\\All))',
    b't3 LIST (SPECIAL-USE) "" "*"',
    b't2 LIST "" "%" RETURN (SPECIAL-USE)',
    # RFC 5032 WITHIN, RFC 8514 SAVEDATE, RFC 8474 OBJECTID, RFC 8970 PREVIEW
    b"a1 SEARCH UNSEEN YOUNGER 259200",
    b"a2 SEARCH OLDER 3600",
    b"a101 SEARCH SAVEDBEFORE 12-Mar-2017 SAVEDATESUPPORTED",
    b"a102 SEARCH SAVEDON 12-Mar-2017 SAVEDSINCE 1-Mar-2017",
    b"a103 FETCH 1:* (SAVEDATE)",
    b"27 SEARCH EMAILID M6d99ac3275bb4e",
    b"28 UID SEARCH THREADID T64b478a75b7ea9",
    b"29 FETCH 1:* (EMAILID THREADID)",
    b"30 STATUS foo (MAILBOXID)",
    b"A1 FETCH 1 (PREVIEW (LAZY))",
    b"A2 FETCH 1:3 (UID PREVIEW)",
    # RFC 5182 SEARCHRES, RFC 9394 PARTIAL
    b'A282 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"',
    b"A283 FETCH $ (UID INTERNALDATE FLAGS RFC822.SIZE)",
    b"A284 UID SEARCH OR $ 1:4,9 UNSEEN",
    b"03 UID SEARCH RETURN (PARTIAL -1:-100) UNDELETED UNKEYWORD $Junk",
    b"04 UID SEARCH RETURN (COUNT PARTIAL 1:500) UNDELETED",
    b"05 UID FETCH 1:* (FLAGS) (PARTIAL -1:-30)",
    # RFC 8508 REPLACE, RFC 8438 SIZE, RFC 7889 APPENDLIMIT
    b"A003 REPLACE 4 Drafts (\\Seen \\Draft) {%d}\r\n%s" % (len(MSG), MSG),
    b"A004 UID REPLACE 2004 Drafts {%d+}\r\n%s" % (len(MSG), MSG),
    b"a STATUS INBOX (SIZE APPENDLIMIT DELETED UNSEEN UIDVALIDITY RECENT)",
    # More RFC 9051 examples (sections 6 and 7.1, including lowercase ones)
    b"A01 STARTTLS",
    b"A03 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=",
    b"a1 ENABLE CONDSTORE",
    b"A005 CREATE NonNormalized",
    b"A687 DELETE foo",
    b'A86 LIST "" %',
    b"1001 RENAME X Y",
    b"1002 SUBSCRIBE Y",
    b'A01 LIST "" "*"',
    b'A06 LIST (REMOTE) "" "*" RETURN (SUBSCRIBED)',
    b'C04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)',
    b'D03 LIST (RECURSIVEMATCH SUBSCRIBED) "" "*2"',
    b'a1 LIST "" ("foo")',
    b'a2 LIST (SUBSCRIBED) "" "foo/*"',
    b'a3 LIST (SUBSCRIBED RECURSIVEMATCH) "" foo RETURN (CHILDREN)',
    b'a1 LIST (REMOTE) "" *',
    b'a2 LIST () "" %',
    b'a3.1 LIST "" (% music/rock)',
    b'A002 CREATE "INBOX.Sent Mail"',
    b'A003 LIST (SPECIAL-USE) "#mh/" "*"',
    b'A002 LIST "" "Other Users/%"',
    b'A003 LIST "" "#Users/Mike/%"',
    b'A002 LIST "" "~mark/%"',
    b"A003 APPEND saved-messages (\\Seen) {%d+}\r\n%s" % (len(MSG), MSG),
    b"A005 UID COPY 305:310 meeting",
    b"A006 COPY 2 funny",
    b"A003 FETCH 4 ALL",
    b"A284 SEARCH RETURN (MIN) UNSEEN",
    b"A286 SEARCH RETURN (COUNT) DELETED",
    b"A283 FETCH $ (UID INTERNALDATE FLAGS BODY.PEEK[HEADER])",
    b"A301 UID SEARCH UID $ SMALLER 4096",
    b"A301 UID SEARCH $ SMALLER 4096",
    b"P283 SEARCH CHARSET UTF-8 (OR $ 1,3000:3021) TEXT {8+}\r\n\xd0\xbc\xd0\xb0\xd1\x82\xd1\x8c",
    b'E283 COPY $ "Other Messages"',
    b"F284 STORE $ +FLAGS.Silent (\\Deleted)",
    b'C285 SEARCH RETURN (MAX SAVE MIN) SINCE 12-Feb-2006 NOT FROM "Smith"',
    b"A999 UID SEARCH 1:100 UID 443:557",
    b"o356 RENAME this that",
    b'b LOGIN "fred" "foo"',
    b'l create "///////"',
    b'k1 select "/archive/projects/experiment-iv"',
    b'k2 status "/archive/projects/experiment-iv" (messages)',
    b"h search from maria@example.com",
    b"m356 DELETE Notes",
    b"m STORE 42 FLAGS f1 f2 f3 f4 f5",
    b"n1 uid copy 1:* oldmail",
    b"A222 COPY 1:2 owatagusiam",
    b"A001 LOGIN fred blurdybloop",
    # FETCH macros and every attribute
    b"a FETCH 1 ALL",
    b"a FETCH 1:2 FAST",
    b"a FETCH * FULL",
    b"a FETCH 1 (ENVELOPE BODY BODYSTRUCTURE RFC822 RFC822.HEADER RFC822.TEXT INTERNALDATE)",
    b"a FETCH 1 (BODY[] BODY[1.2.MIME] BODY[2.TEXT]<0.2048> BODY.PEEK[HEADER.FIELDS.NOT (X-A)])",
]


@pytest.mark.parametrize("line", RFC_EXAMPLES, ids=lambda b: b[:40].decode("latin-1"))
def test_rfc_example_parses_and_round_trips(line: bytes) -> None:
    command = parse(line)
    assert parse(to_bytes("t", command)) == command


def _tz(hours: int) -> timezone:
    return timezone(timedelta(hours=hours))


EXPECTED: list[tuple[bytes, c.Command]] = [
    (b"a001 LOGIN SMITH SESAME", c.Login(b"SMITH", b"SESAME")),
    (b'a LOGIN "fred \\"q\\"" {3}\r\nx\\y', c.Login(b'fred "q"', b"x\\y")),
    (b"A142 select inbox", c.Select(b"inbox")),
    (b"A932 EXAMINE blurdybloop", c.Select(b"blurdybloop", readonly=True)),
    (
        b"A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
        c.Select(
            b"INBOX",
            qresync=c.Qresync(
                67890007,
                20050715194045000,
                SequenceSet(((41, 41), (43, 211), (214, 541))),
            ),
        ),
    ),
    (
        b"A04 SELECT INBOX (QRESYNC (1 2 (5000,7500 15000,22500)))",
        c.Select(
            b"INBOX",
            qresync=c.Qresync(
                1,
                2,
                None,
                SequenceSet(((5000, 5000), (7500, 7500))),
                SequenceSet(((15000, 15000), (22500, 22500))),
            ),
        ),
    ),
    (
        b"a uid fetch 1:* flags",
        c.Fetch(SequenceSet(((1, STAR),)), (c.FetchAttr("FLAGS"),), uid=True),
    ),
    (
        b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])",
        c.Fetch(
            SequenceSet(((2, 4),)),
            (c.FetchAttr("FLAGS"), c.FetchBody(c.Section((), "HEADER.FIELDS", ("DATE", "FROM")))),
        ),
    ),
    (
        b"a FETCH 5:2 (BODY.PEEK[1.2.HEADER]<10.20> BINARY[3]) (CHANGEDSINCE 7)",
        c.Fetch(
            SequenceSet(((5, 2),)),
            (c.FetchBody(c.Section((1, 2), "HEADER"), (10, 20), peek=True), c.FetchBinary((3,))),
            changedsince=7,
        ),
    ),
    (
        b"a FETCH 1 FAST",
        c.Fetch(
            SequenceSet(((1, 1),)),
            (c.FetchAttr("FLAGS"), c.FetchAttr("INTERNALDATE"), c.FetchAttr("RFC822.SIZE")),
        ),
    ),
    (
        b"A003 STORE 2:4 +FLAGS (\\Deleted)",
        c.Store(SequenceSet(((2, 4),)), "+", ("\\Deleted",)),
    ),
    (
        b"a103 UID STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)",
        c.Store(
            SequenceSet(((7, 7), (5, 5), (9, 9))),
            "+",
            ("\\Deleted",),
            uid=True,
            silent=True,
            unchangedsince=320162338,
        ),
    ),
    (b"a STORE 1 FLAGS \\Seen $Label1", c.Store(SequenceSet(((1, 1),)), "", ("\\Seen", "$Label1"))),
    (b"a STORE 1 -FLAGS ()", c.Store(SequenceSet(((1, 1),)), "-", ())),
    (
        b'A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"',
        c.Search(
            c.SearchAnd(
                (
                    c.SearchFlag("FLAGGED"),
                    c.SearchDate("SINCE", date(1994, 2, 1)),
                    c.SearchNot(c.SearchText("FROM", "Smith")),
                )
            )
        ),
    ),
    (
        b"A283 SEARCH RETURN () FLAGGED",
        c.Search(c.SearchFlag("FLAGGED"), returns=c.SearchReturn(("ALL",))),
    ),
    (
        b"03 UID SEARCH RETURN (PARTIAL -1:-100) UNDELETED",
        c.Search(
            c.SearchFlag("UNDELETED"),
            uid=True,
            returns=c.SearchReturn(("PARTIAL",), (-1, -100)),
        ),
    ),
    (
        b"A284 SEARCH CHARSET UTF-8 TEXT {6}\r\n\xe6\x97\xa5\xe6\x9c\xac",
        c.Search(c.SearchText("TEXT", "日本"), charset="UTF-8"),
    ),
    (
        b'a SEARCH OR (FROM a (TO b)) NOT UID 1:* MODSEQ "/flags/\\\\draft" all 6',
        c.Search(
            c.SearchAnd(
                (
                    c.SearchOr(
                        c.SearchAnd((c.SearchText("FROM", "a"), c.SearchText("TO", "b"))),
                        c.SearchNot(c.SearchSet(SequenceSet(((1, STAR),)), uid=True)),
                    ),
                    c.SearchModseq(6, ("/flags/\\draft", "all")),
                )
            )
        ),
    ),
    (b"a SEARCH $", c.Search(c.SearchSet(SequenceSet(saved=True)))),
    (b"a SEARCH younger 60", c.Search(c.SearchNumber("YOUNGER", 60))),
    (
        b'A003 APPEND saved (\\Seen) " 7-Feb-1994 21:52:25 -0800" {5}\r\nhello',
        c.Append(
            b"saved",
            (
                c.AppendMessage(
                    b"hello", ("\\Seen",), datetime(1994, 2, 7, 21, 52, 25, tzinfo=_tz(-8))
                ),
            ),
        ),
    ),
    (
        b"A004 APPEND Drafts ~{3}\r\na\x00b {2+}\r\nxy",
        c.Append(b"Drafts", (c.AppendMessage(b"a\x00b", binary=True), c.AppendMessage(b"xy"))),
    ),
    (
        b"A005 APPEND x UTF8 (~{2}\r\nhi)",
        c.Append(b"x", (c.AppendMessage(b"hi", binary=True, utf8=True),)),
    ),
    (
        b'a LIST "" ("INBOX" "Sent/%") RETURN (CHILDREN STATUS (MESSAGES))',
        c.List(b"", (b"INBOX", b"Sent/%"), (), ("CHILDREN",), ("MESSAGES",), True),
    ),
    (b'a LIST "" *', c.List(b"", (b"*",))),
    (b"a LIST ~/Mail/ %", c.List(b"~/Mail/", (b"%",))),
    (b't1 CREATE "Everything" (USE (\\All))', c.Create(b"Everything", ("\\All",))),
    (b"a STATUS blurdybloop (UIDNEXT messages)", c.Status(b"blurdybloop", ("UIDNEXT", "MESSAGES"))),
    (
        b"a01 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=",
        c.Authenticate("PLAIN", b"test\x00test\x00test"),
    ),
    (b"a02 AUTHENTICATE EXTERNAL =", c.Authenticate("EXTERNAL", b"")),
    (b"a ID NIL", c.Id(None)),
    (b'a ID ("name" "x" "os" NIL)', c.Id((("name", "x"), ("os", None)))),
    (b"t2 ENABLE condstore X-GOOD-IDEA", c.Enable(("CONDSTORE", "X-GOOD-IDEA"))),
    (b"A003 UID EXPUNGE 3000:3002", c.Expunge(SequenceSet(((3000, 3002),)))),
    (b'S0000 SETQUOTA "" (STORAGE 512)', c.SetQuota(b"", (("STORAGE", 512),))),
    (b"A001 SETACL INBOX/Drafts Chris +cda", c.SetAcl(b"INBOX/Drafts", b"Chris", "+cda")),
    (
        b'a GETMETADATA (MAXSIZE 1024 DEPTH infinity) "INBOX" (/private/comment /shared/x)',
        c.GetMetadata(b"INBOX", ("/private/comment", "/shared/x"), 1024, "INFINITY"),
    ),
    (
        b"a SETMETADATA INBOX (/private/comment NIL /shared/x ~{2}\r\n\x00\x01)",
        c.SetMetadata(b"INBOX", (("/private/comment", None), ("/shared/x", b"\x00\x01"))),
    ),
    (
        b"A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL",
        c.Sort(
            (c.SortCriterion("SUBJECT"), c.SortCriterion("DATE", reverse=True)),
            "UTF-8",
            c.SearchFlag("ALL"),
        ),
    ),
    (
        b"A285 UID THREAD REFERENCES US-ASCII ALL",
        c.Thread("REFERENCES", "US-ASCII", c.SearchFlag("ALL"), uid=True),
    ),
    (
        b"a NOTIFY SET STATUS (selected (MessageNew (UID) MessageExpunge)) (subtree Lists NONE)",
        c.Notify(
            (
                c.NotifyGroup(
                    "SELECTED",
                    (
                        c.NotifyEvent("MessageNew", (c.FetchAttr("UID"),)),
                        c.NotifyEvent("MessageExpunge"),
                    ),
                ),
                c.NotifyGroup("SUBTREE", None, (b"Lists",)),
            ),
            status=True,
        ),
    ),
    (b"a SETACL Team bob ", c.SetAcl(b"Team", b"bob", "")),  # as Python's IMAPClient sends
    (
        # RFC 5465 8: ``event-ext = atom``; the command refuses it with NO [BADEVENT].
        b"a NOTIFY SET (personal (MailboxName Boom))",
        c.Notify(
            (c.NotifyGroup("PERSONAL", (c.NotifyEvent("MailboxName"), c.NotifyEvent("BOOM"))),)
        ),
    ),
    (
        b"A003 REPLACE 4 Drafts (\\Draft) {2}\r\nhi",
        c.Replace(4, b"Drafts", c.AppendMessage(b"hi", ("\\Draft",))),
    ),
    (b"a COPY 2:4 MEETING", c.Copy(SequenceSet(((2, 4),)), b"MEETING")),
    (b"a UID MOVE 42:69 foo", c.Move(SequenceSet(((42, 69),)), b"foo", uid=True)),
    (b"a NOOP ", c.Noop()),
    (b"a FETCH 1 (PREVIEW (LAZY))", c.Fetch(SequenceSet(((1, 1),)), (c.FetchPreview(lazy=True),))),
]


@pytest.mark.parametrize(("line", "expected"), EXPECTED, ids=lambda v: repr(v)[:40])
def test_parses_to(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected
    assert parse(to_bytes("t", expected)) == expected


MALFORMED: list[tuple[bytes, str]] = [
    (b"+tag NOOP", "expected a tag"),
    (b"a1", "expected SP after tag"),
    (b"a1  NOOP", "expected command name"),
    (b"a1 FROB", "unknown command FROB"),
    (b"a1 UID NOOP", "UID NOOP is not a command"),
    (b"a1 NOOP extra", "unexpected 'extra' after the command"),
    (b"a1 FETCH 1 BODDY", "unknown FETCH attribute BODDY"),
    (b"a1 FETCH 1 (FLAGS", "expected ')' to close the FETCH attributes"),
    (b"a1 FETCH 0 FLAGS", "out of range"),
    (b"a1 FETCH 1 (ALL)", "FETCH macro ALL must be used alone"),
    (b"a1 FETCH 1 BODY[HEADER.FIELDS]", "expected SP after HEADER.FIELDS"),
    (b"a1 FETCH 1 BODY[MIME]", "MIME needs a part number"),
    (b"a1 FETCH 1 BODY[1]<0.0>", "length must be non-zero"),
    (b"a1 FETCH 1 BINARY[1.BOGUS]", "HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT or MIME"),
    (b"a1 FETCH 1 FLAGS (FOO)", "unknown FETCH modifier FOO"),
    (b"a1 FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)", "VANISHED needs UID FETCH"),
    (b"a1 FETCH x FLAGS", "expected sequence set, found 'x'"),
    (b"a1 SEARCH FOO", "unknown search key FOO"),
    (b"a1 SEARCH SINCE 31-Feb-2020", "invalid date"),
    (b"a1 SEARCH SINCE 1-Fev-2020", "unknown month"),
    (b"a1 SEARCH (SEEN", "expected ')' to close the search key list"),
    (b"a1 SEARCH OR SEEN", "expected SP between the keys of OR"),
    (b"a1 SEARCH RETURN (FOO) ALL", "unknown RETURN option FOO"),
    (b"a1 SEARCH RETURN (ALL PARTIAL 1:5) ALL", "mutually exclusive"),
    (b"a1 SEARCH RETURN (PARTIAL 1:-5) ALL", "both be positive or both negative"),
    (b"a1 SEARCH " + b"(" * 100 + b"ALL" + b")" * 100, "nested deeper"),
    (b'a1 SEARCH FROM "unterminated', "unterminated quoted string"),
    (b'a1 SEARCH FROM "bad \\q escape"', "invalid escape in quoted string"),
    (b"a1 STORE 1 +FLAG (\\Seen)", "unknown STORE data item +FLAG"),
    (b"a1 STORE 1 (UNCHANGEDSINCE x) FLAGS ()", "expected mod-sequence-valzer"),
    (b"a1 SELECT", "expected SP after SELECT"),
    (b"a1 SELECT INBOX (FOO)", "unknown SELECT parameter FOO"),
    (b"a1 SELECT INBOX (QRESYNC (0 1))", "UIDVALIDITY must not be zero"),
    (b"a1 SELECT INBOX (QRESYNC (1 1 1:*))", "must not contain '*'"),
    (b'a1 LIST (RECURSIVEMATCH) "" *', "RECURSIVEMATCH needs another selection option"),
    (b'a1 LIST (FOO) "" *', "unknown LIST selection option FOO"),
    (b'a1 LIST "" * RETURN (BAR)', "unknown LIST return option BAR"),
    (b"a1 STATUS INBOX (MESSAGES FOO)", "unknown STATUS item FOO"),
    (b"a1 STATUS INBOX ()", "expected status item"),
    (b"a1 APPEND INBOX", "expected SP before the message"),
    (b'a1 APPEND INBOX (\\Seen) "bad date" {1}\r\nx', "expected date-time"),
    (b"a1 APPEND INBOX (\\Seen)", "expected SP after the flag list"),
    (b"a1 APPEND INBOX hello", "expected the message as a literal"),
    (b"a1 LOGIN user", "expected SP after user name"),
    (b"a1 LOGIN ~{1}\r\nx pass", "binary literal"),
    (b"a1 AUTHENTICATE PLAIN ***", "invalid base64"),
    (b"a1 SORT (SUBJECT) UTF-8", "expected SP after the charset"),
    (b"a1 SORT (SUBJEKT) UTF-8 ALL", "unknown sort key SUBJEKT"),
    (b"a1 THREAD REFERENCES", "expected SP after the threading algorithm"),
    (b"a1 GETMETADATA (DEPTH 2) INBOX /x", "invalid DEPTH 2"),
    (b"a1 GETMETADATA INBOX shared", "invalid metadata entry name"),
    (b"a1 NOTIFY SET (everything (MessageNew))", "unknown NOTIFY mailbox filter EVERYTHING"),
    (b'a1 ID ("a")', "expected SP after ID field name"),
    (b"a1 CREATE x (SIZE 4)", "unknown CREATE parameter SIZE"),
    (b"a1 REPLACE 0 Drafts {1}\r\nx", "message number must not be zero"),
    (b"a1 FETCH 4294967296 FLAGS", "out of range"),
    (b"A442 XPIG-LATIN", "unknown command XPIG-LATIN"),
    (b"a FETCH 1 BODY[]<" + b"9" * 5000 + b".1>", "expected partial like <0.1024>"),
    (b"a SEARCH RETURN (PARTIAL 1:" + b"9" * 5000 + b") ALL", "32-bit"),
    (b"a FETCH " + b"9" * 5000 + b" FLAGS", "out of range"),
    (b"a FETCH 1 BODY[" + b"9" * 5000 + b"]", "must be a non-zero number"),
    (b"a SELECT x (QRESYNC (" + b"9" * 5000 + b" 1))", "out of range"),
    (b"B283 SEARCH RETURN (SAVE) CHARSET KOI8-R (OR $ 1,3000:3021) TEXT {4}\r\nXXXX", "KOI8-R"),
]


@pytest.mark.parametrize(("line", "reason"), MALFORMED, ids=lambda v: repr(v)[:40])
def test_malformed_command_gives_reason(line: bytes, reason: str) -> None:
    err = error(line)
    assert reason in err.reason
    assert err.kind in (ErrorKind.SYNTAX, ErrorKind.UNKNOWN_COMMAND, ErrorKind.BADCHARSET)


def test_error_keeps_tag_and_command_name() -> None:
    err = error(b"A17 uid fetch 1 BODDY")
    assert (err.tag, err.command) == ("A17", "FETCH")
    assert error(b"* NOOP").tag is None


def test_unknown_command_kind() -> None:
    assert error(b"a X-FOO").kind is ErrorKind.UNKNOWN_COMMAND


def test_unsupported_charset_is_badcharset() -> None:
    err = error(b"a SEARCH CHARSET KOI8-R TEXT foo")
    assert err.kind is ErrorKind.BADCHARSET
    assert "KOI8-R" in err.reason


def test_search_string_must_match_charset() -> None:
    assert "not valid US-ASCII" in error(b'a SEARCH CHARSET US-ASCII TEXT "\xc3\xa9"').reason


def test_liberal_lowercase_everywhere() -> None:
    cmd = parse(b'a uid search return (min) charset utf-8 or seen (not from "x") since 1-feb-1994')
    assert isinstance(cmd, c.Search)
    assert cmd.uid
    assert cmd.charset == "UTF-8"
    assert cmd.returns == c.SearchReturn(("MIN",))


def test_one_digit_day_in_date_time_is_accepted() -> None:
    cmd = parse(b'a APPEND x "7-Feb-1994 21:52:25 +0000" {1}\r\nm')
    assert isinstance(cmd, c.Append)
    assert cmd.messages[0].internal_date == datetime(1994, 2, 7, 21, 52, 25, tzinfo=UTC)


def test_flags_keep_their_spelling() -> None:
    cmd = parse(b"a STORE 1 +FLAGS ($label1 \\seen)")
    assert isinstance(cmd, c.Store)
    assert cmd.flags == ("$label1", "\\seen")


def test_section_response_names() -> None:
    cmd = parse(
        b"a FETCH 1 (BODY.PEEK[HEADER.FIELDS (date from)]<0.100> BINARY.SIZE[1.2] BINARY[]<5.6>)"
    )
    assert isinstance(cmd, c.Fetch)
    body, size, binary = cmd.items
    assert isinstance(body, c.FetchBody)
    assert isinstance(size, c.FetchBinary)
    assert isinstance(binary, c.FetchBinary)
    assert body.response_name() == b"BODY[HEADER.FIELDS (date from)]<0>"
    assert size.response_name() == b"BINARY.SIZE[1.2]"
    assert binary.response_name() == b"BINARY[]<5>"
