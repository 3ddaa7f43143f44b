"""Response formatting, byte for byte against the S: lines of the RFC examples."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mailkeep.imap import responses as r
from mailkeep.imap.responses import FetchResponse, Streamed, ThreadNode

PDT = timezone(timedelta(hours=-7))

CASES: list[tuple[bytes, bytes]] = [
    # RFC 9051 / RFC 3501 section 7 and 6
    (
        r.capability(["IMAP4rev2", "STARTTLS", "AUTH=GSSAPI", "LOGINDISABLED"]),
        b"* CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI LOGINDISABLED\r\n",
    ),
    (r.exists(172), b"* 172 EXISTS\r\n"),
    (r.recent(1), b"* 1 RECENT\r\n"),
    (r.expunge(3), b"* 3 EXPUNGE\r\n"),
    (
        r.flags(["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]),
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
    ),
    (
        r.untagged("OK", "Limited", r.permanentflags(["\\Deleted", "\\Seen"])),
        b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n",
    ),
    (
        r.untagged("OK", "Message 12 is first unseen", r.unseen(12)),
        b"* OK [UNSEEN 12] Message 12 is first unseen\r\n",
    ),
    (
        r.untagged("OK", "UIDs valid", r.uidvalidity(3857529045)),
        b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
    ),
    (
        r.untagged("OK", "Predicted next UID", r.uidnext(4392)),
        b"* OK [UIDNEXT 4392] Predicted next UID\r\n",
    ),
    (r.ok("A142", "SELECT completed", r.READ_WRITE), b"A142 OK [READ-WRITE] SELECT completed\r\n"),
    (r.ok("A932", "EXAMINE completed", r.READ_ONLY), b"A932 OK [READ-ONLY] EXAMINE completed\r\n"),
    (r.no("A003", "APPEND failed", r.TRYCREATE), b"A003 NO [TRYCREATE] APPEND failed\r\n"),
    (
        r.untagged("OK", "System shutdown in 10 minutes", r.ALERT),
        b"* OK [ALERT] System shutdown in 10 minutes\r\n",
    ),
    (r.bye("IMAP4rev2 Server logging out"), b"* BYE IMAP4rev2 Server logging out\r\n"),
    (r.bad(None, "Empty command line"), b"* BAD Empty command line\r\n"),
    (r.bad("A443", "Missing argument"), b"A443 BAD Missing argument\r\n"),
    (
        r.continuation("Ready for additional command text"),
        b"+ Ready for additional command text\r\n",
    ),
    (r.continuation_base64(b""), b"+ \r\n"),
    (
        r.greeting("IMAP4rev2 server ready", ["IMAP4rev2", "STARTTLS"]),
        b"* OK [CAPABILITY IMAP4rev2 STARTTLS] IMAP4rev2 server ready\r\n",
    ),
    (
        r.list_(["\\Noselect"], "/", "~/Mail/foo", utf8=False),
        b'* LIST (\\Noselect) "/" ~/Mail/foo\r\n',
    ),
    (
        r.list_([], ".", "#news.comp.mail.misc", utf8=False),
        b'* LIST () "." #news.comp.mail.misc\r\n',
    ),
    (r.list_(["\\Noselect"], "/", "", utf8=False), b'* LIST (\\Noselect) "/" ""\r\n'),
    (r.list_(["\\Noselect"], None, "", utf8=False), b'* LIST (\\Noselect) NIL ""\r\n'),
    (
        r.lsub([], ".", "#news.comp.mail.mime", utf8=False),
        b'* LSUB () "." #news.comp.mail.mime\r\n',
    ),
    (
        r.list_([], "/", "Foo", utf8=False, extended=[r.childinfo("SUBSCRIBED")]),
        b'* LIST () "/" Foo ("CHILDINFO" ("SUBSCRIBED"))\r\n',
    ),
    (
        r.list_([], "/", "NewMailbox", utf8=True, extended=[r.oldname("OldMailbox", utf8=True)]),
        b'* LIST () "/" NewMailbox ("OLDNAME" ("OldMailbox"))\r\n',
    ),
    (
        r.list_(["\\HasNoChildren"], "/", "Entwürfe", utf8=False),
        b'* LIST (\\HasNoChildren) "/" Entw&APw-rfe\r\n',
    ),
    (
        r.list_(["\\HasNoChildren"], "/", "Entwürfe", utf8=True),
        b'* LIST (\\HasNoChildren) "/" "Entw\xc3\xbcrfe"\r\n',
    ),
    (r.list_([], "/", "a b", utf8=False), b'* LIST () "/" "a b"\r\n'),
    (
        r.status("blurdybloop", [("MESSAGES", 231), ("UIDNEXT", 44292)], utf8=False),
        b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n",
    ),
    (
        r.status("foo", [("MAILBOXID", "F2212ea87-6097-4256-9d51-71338625")], utf8=False),
        b"* STATUS foo (MAILBOXID (F2212ea87-6097-4256-9d51-71338625))\r\n",
    ),
    (r.search([2, 84, 882]), b"* SEARCH 2 84 882\r\n"),
    (r.search([]), b"* SEARCH\r\n"),
    (r.search([2, 5, 6], modseq=917162500), b"* SEARCH 2 5 6 (MODSEQ 917162500)\r\n"),
    (r.esearch("A282", min=2, count=3), b'* ESEARCH (TAG "A282") MIN 2 COUNT 3\r\n'),
    (r.esearch("A283", all=[2, 10, 11]), b'* ESEARCH (TAG "A283") ALL 2,10:11\r\n'),
    (r.esearch("A284", min=4), b'* ESEARCH (TAG "A284") MIN 4\r\n'),
    (
        r.esearch("A285", uid=True, min=7, max=3800),
        b'* ESEARCH (TAG "A285") UID MIN 7 MAX 3800\r\n',
    ),
    (r.esearch("A286", count=15), b'* ESEARCH (TAG "A286") COUNT 15\r\n'),
    (r.esearch("A287", all=[]), b'* ESEARCH (TAG "A287")\r\n'),
    (
        r.esearch("03", uid=True, partial=((-1, -100), [200, 201, 202, 250])),
        b'* ESEARCH (TAG "03") UID PARTIAL (-1:-100 200:202,250)\r\n',
    ),
    (r.esearch("04", partial=((1, 10), [])), b'* ESEARCH (TAG "04") PARTIAL (1:10 NIL)\r\n'),
    (
        r.esearch("a", all=((1, 3), (5, 5)), modseq=1236),
        b'* ESEARCH (TAG "a") ALL 1:3,5 MODSEQ 1236\r\n',
    ),
    (r.sort([2, 84, 882]), b"* SORT 2 84 882\r\n"),
    (
        r.thread(
            [
                ThreadNode(2),
                ThreadNode(
                    3,
                    (
                        ThreadNode(
                            6,
                            (
                                ThreadNode(4, (ThreadNode(23),)),
                                ThreadNode(44, (ThreadNode(7, (ThreadNode(96),)),)),
                            ),
                        ),
                    ),
                ),
            ]
        ),
        b"* THREAD (2)(3 6 (4 23)(44 7 96))\r\n",
    ),
    (r.thread([ThreadNode(None, (ThreadNode(3), ThreadNode(5)))]), b"* THREAD ((3)(5))\r\n"),
    (r.thread([]), b"* THREAD\r\n"),
    (r.namespace([("", "/")], None, None, utf8=False), b'* NAMESPACE (("" "/")) NIL NIL\r\n'),
    (
        r.namespace(
            [("", "/")],
            [("~", "/")],
            [("#shared/", "/"), ("#public/", "/"), ("#ftp/", "/"), ("#news.", ".")],
            utf8=False,
        ),
        b'* NAMESPACE (("" "/")) (("~" "/")) '
        b'(("#shared/" "/")("#public/" "/")("#ftp/" "/")("#news." "."))\r\n',
    ),
    (
        r.id_([("name", "Cyrus"), ("version", "1.5"), ("os", "sunos"), ("os-version", "5.5")]),
        b'* ID ("name" "Cyrus" "version" "1.5" "os" "sunos" "os-version" "5.5")\r\n',
    ),
    (r.id_(None), b"* ID NIL\r\n"),
    (r.enabled(["X-GOOD-IDEA"]), b"* ENABLED X-GOOD-IDEA\r\n"),
    (r.enabled([]), b"* ENABLED\r\n"),
    (r.quota("", [("STORAGE", 10, 512)]), b'* QUOTA "" (STORAGE 10 512)\r\n'),
    (r.quotaroot("INBOX", [""], utf8=False), b'* QUOTAROOT INBOX ""\r\n'),
    (r.quotaroot("comp.mail.mime", [], utf8=False), b"* QUOTAROOT comp.mail.mime\r\n"),
    (r.acl("INBOX", [("Fred", "rwipsldexta")], utf8=False), b"* ACL INBOX Fred rwipsldexta\r\n"),
    (
        r.listrights("~/Mail/saved", "smith", "la", ["r", "swicdkxte"], utf8=False),
        b"* LISTRIGHTS ~/Mail/saved smith la r swicdkxte\r\n",
    ),
    (r.myrights("INBOX", "rwiptsldaex", utf8=False), b"* MYRIGHTS INBOX rwiptsldaex\r\n"),
    (
        r.metadata("INBOX", [("/private/comment", b"My own comment")], utf8=False),
        b'* METADATA "INBOX" (/private/comment "My own comment")\r\n',
    ),
    (
        r.metadata("", [("/shared/comment", None)], utf8=False),
        b'* METADATA "" (/shared/comment NIL)\r\n',
    ),
    (r.metadata_changed("", ["/shared/comment"], utf8=False), b'* METADATA "" /shared/comment\r\n'),
    (
        r.vanished(((41, 41), (43, 116), (118, 118), (120, 211), (214, 540)), earlier=True),
        b"* VANISHED (EARLIER) 41,43:116,118,120:211,214:540\r\n",
    ),
    (r.vanished([405, 407, 408, 409, 410]), b"* VANISHED 405,407:410\r\n"),
    (
        r.ok("A003", "APPEND completed", r.appenduid(38505, [3955])),
        b"A003 OK [APPENDUID 38505 3955] APPEND completed\r\n",
    ),
    (
        r.ok("A004", "Done", r.copyuid(38505, [304, 319, 320], [3956, 3957, 3958])),
        b"A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
    ),
    (
        r.ok("a103", "Conditional STORE failed", r.modified([7, 9])),
        b"a103 OK [MODIFIED 7,9] Conditional STORE failed\r\n",
    ),
    (
        r.untagged("OK", "Highest", r.highestmodseq(715194045007)),
        b"* OK [HIGHESTMODSEQ 715194045007] Highest\r\n",
    ),
    (r.untagged("OK", "Sorry, no modseqs", r.NOMODSEQ), b"* OK [NOMODSEQ] Sorry, no modseqs\r\n"),
    (
        r.untagged("OK", "Previous mailbox closed", r.CLOSED),
        b"* OK [CLOSED] Previous mailbox closed\r\n",
    ),
    (
        r.no("A011", "Unsupported charset", r.badcharset(["UTF-8", "US-ASCII"])),
        b"A011 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n",
    ),
    (
        r.no("a", "Authentication failed", r.AUTHENTICATIONFAILED),
        b"a NO [AUTHENTICATIONFAILED] Authentication failed\r\n",
    ),
    (r.no("a", "too big", r.TOOBIG), b"a NO [TOOBIG] too big\r\n"),
    (r.no("a", "", r.metadata_longentries(2199)), b"a NO [METADATA LONGENTRIES 2199]\r\n"),
    (r.ok("a", "", r.mailboxid_code("F2212ea87")), b"a OK [MAILBOXID (F2212ea87)]\r\n"),
    (
        r.untagged("OK", "Working", r.inprogress("A1", 10, None)),
        b'* OK [INPROGRESS ("A1" 10 NIL)] Working\r\n',
    ),
]


@pytest.mark.parametrize(("rendered", "expected"), CASES, ids=lambda v: v[:30].decode("latin-1"))
def test_rfc_example_bytes(rendered: bytes, expected: bytes) -> None:
    assert rendered == expected


def test_text_cannot_inject_lines() -> None:
    assert (
        r.bad("a", "unknown command FOO\r\n* OK fake")
        == b"a BAD unknown command FOO  * OK fake\r\n"
    )


def test_fetch_response_small() -> None:
    fr = FetchResponse(12)
    fr.add("FLAGS", r.flag_list(["\\Seen"]))
    fr.add_date("INTERNALDATE", datetime(1996, 7, 17, 2, 44, 25, tzinfo=PDT))
    fr.add_number("RFC822.SIZE", 4286)
    assert fr.to_bytes() == (
        b'* 12 FETCH (FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" '
        b"RFC822.SIZE 4286)\r\n"
    )
    assert FetchResponse(23).add("FLAGS", b"(\\Seen)").add_number("UID", 4827313).to_bytes() == (
        b"* 23 FETCH (FLAGS (\\Seen) UID 4827313)\r\n"
    )
    assert (
        FetchResponse(1)
        .add_number("UID", 4)
        .add("MODSEQ", r.modseq_value(65402))
        .add("FLAGS", b"(\\Seen)")
        .to_bytes()
        == b"* 1 FETCH (UID 4 MODSEQ (65402) FLAGS (\\Seen))\r\n"
    )


def test_fetch_response_literal_is_a_separate_chunk() -> None:
    body = b"x" * 100_000
    fr = FetchResponse(3).add_number("UID", 9).add_literal("BODY[]", body).add("FLAGS", b"()")
    chunks = fr.chunks()
    assert chunks[0] == b"* 3 FETCH (UID 9 BODY[] {100000}\r\n"
    assert chunks[1] is body  # not copied
    assert chunks[2] == b" FLAGS ())\r\n"
    assert fr.to_bytes() == b"".join(c for c in chunks if isinstance(c, bytes))


def test_fetch_response_streamed_body() -> None:
    source = object()
    fr = FetchResponse(7).add_stream("BINARY[1]", 5000, source, binary=True)
    assert fr.chunks() == [b"* 7 FETCH (BINARY[1] ~{5000}\r\n", Streamed(5000, source), b")\r\n"]
    with pytest.raises(TypeError):
        fr.to_bytes()


def test_fetch_nstring_values() -> None:
    fr = (
        FetchResponse(1)
        .add_string("PREVIEW", b"Hi there")
        .add("EMAILID", r.objectid_value("M6d99ac3275bb4e"))
    )
    fr.add("THREADID", r.objectid_value(None)).add_date("SAVEDATE", None)
    assert fr.to_bytes() == (
        b'* 1 FETCH (PREVIEW "Hi there" EMAILID (M6d99ac3275bb4e) THREADID NIL SAVEDATE NIL)\r\n'
    )
    assert FetchResponse(2).add_string("BODY[1]", b"a\r\nb").to_bytes() == (
        b"* 2 FETCH (BODY[1] {4}\r\na\r\nb)\r\n"
    )


def test_metadata_value_with_nul_is_literal8() -> None:
    assert r.metadata("INBOX", [("/shared/x", b"a\x00b")], utf8=False) == (
        b'* METADATA "INBOX" (/shared/x ~{3}\r\na\x00b)\r\n'
    )


def test_eight_bit_strings_need_literal_before_utf8() -> None:
    assert (
        r.status("Entwürfe", [("MESSAGES", 1)], utf8=False)
        == b"* STATUS Entw&APw-rfe (MESSAGES 1)\r\n"
    )
    assert r.quota("Ü", [], utf8=False) == b"* QUOTA {2}\r\n\xc3\x9c ()\r\n"
