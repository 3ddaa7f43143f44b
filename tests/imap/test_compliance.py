"""Behaviours an independent IMAP compliance suite (Dovecot's imaptest) checks, found by
running its kind of scenario against us: \\Recent in a re-created mailbox, BINARY with
BODY's section forms and an offset-only partial, quoted-printable trailing white space."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mailkeep.imap.session import Services
from mailkeep.mail.structure import decode_quoted_printable
from mailkeep.store.api import Account
from mailkeep.store.sqlstore import SqlStore

from .conftest import deliver, message
from .support import Client


@pytest.fixture
async def other(services: Services) -> AsyncIterator[Client]:
    """A second session of alice's, logged in."""
    client = Client(services)
    await client.start()
    await client.login()
    yield client
    await client.finish()


NESTED = (
    b"From: user@example.org\r\n"
    b"Mime-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="xx"\r\n'
    b"\r\n"
    b"--xx\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"first part\r\n"
    b"--xx\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: inner@example.org\r\n"
    b"Subject: inner\r\n"
    b"\r\n"
    b"inner body\r\n"
    b"--xx--\r\n"
)


async def test_recreated_mailbox_gives_recent_to_first_selecting_session(alice: Client) -> None:
    # The first session to select a mailbox after messages arrive sees them \Recent
    # (RFC 3501 2.3.2), also when a mailbox of that name (and, in SQLite, of that row
    # id) was selected and deleted before.
    await alice.ok("a CREATE box")
    await alice.ok("a APPEND box {5+}\r\nhello")
    await alice.ok("a SELECT box")
    await alice.ok("a UNSELECT")
    await alice.ok("a DELETE box")
    await alice.ok("a CREATE box")
    await alice.ok("a APPEND box {6+}\r\nhello1")
    await alice.ok("a APPEND box {6+}\r\nhello2")
    untagged = await alice.ok("a SELECT box")
    assert b"* 2 EXISTS" in untagged
    assert b"* 2 RECENT" in untagged
    fetched = await alice.ok("a FETCH 1:2 FLAGS")
    assert fetched == [b"* 1 FETCH (FLAGS (\\Recent))", b"* 2 FETCH (FLAGS (\\Recent))"]
    # A second session gets none of them.
    await alice.ok("a UNSELECT")
    untagged = await alice.ok("a SELECT box")
    assert b"* 0 RECENT" in untagged


async def test_binary_accepts_body_section_forms(
    alice: Client, store: SqlStore, account: Account
) -> None:
    # RFC 3516 allows part numbers only; like Dovecot we answer BINARY[1.MIME],
    # BINARY[2.HEADER], BINARY[TEXT] with BODY[]'s octets (headers are never encoded).
    await deliver(store, account, NESTED)
    await alice.ok("a SELECT INBOX")
    got = await alice.ok("a FETCH 1 (BINARY.PEEK[1.MIME] BINARY.SIZE[1.MIME])")
    mime = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    assert got == [
        b"* 1 FETCH (BINARY[1.MIME] {%d}\r\n%s BINARY.SIZE[1.MIME] %d)"
        % (len(mime), mime, len(mime))
    ]
    got = await alice.ok("a FETCH 1 (BINARY.PEEK[2.HEADER.FIELDS (subject)])")
    assert got == [b"* 1 FETCH (BINARY[2.HEADER.FIELDS (subject)] {18}\r\nSubject: inner\r\n\r\n)"]
    got = await alice.ok("a FETCH 1 (BINARY.SIZE[2.TEXT] BINARY.SIZE[TEXT])")
    text = NESTED.index(b"\r\n\r\n") + 4
    assert got == [
        b"* 1 FETCH (BINARY.SIZE[2.TEXT] 10 BINARY.SIZE[TEXT] %d)" % (len(NESTED) - text)
    ]
    # BINARY with a section-text still sets \Seen unless PEEK.
    got = await alice.ok("a FETCH 1 BINARY[2.TEXT]")
    assert got == [b"* 1 FETCH (BINARY[2.TEXT] {10}\r\ninner body FLAGS (\\Seen \\Recent))"]
    bad = await alice.command("a FETCH 1 BINARY[1.BOGUS]")
    assert bad[-1].startswith(b"a BAD ")


async def test_partial_with_origin_only_runs_to_the_end(
    alice: Client, store: SqlStore, account: Account
) -> None:
    # <origin> without .octets is not RFC syntax; Dovecot reads it as "to the end" and
    # imaptest's BINARY scripts send it.
    await deliver(store, account, message(body="0123456789\r\n"))
    await alice.ok("a SELECT INBOX")
    got = await alice.ok("a FETCH 1 (BODY.PEEK[TEXT]<4> BINARY.PEEK[1]<8>)")
    assert got == [b"* 1 FETCH (BODY[TEXT]<4> {8}\r\n456789\r\n BINARY[1]<8> {4}\r\n89\r\n)"]
    got = await alice.ok("a FETCH 1 BODY.PEEK[TEXT]<40>")
    assert got == [b"* 1 FETCH (BODY[TEXT]<40> {0}\r\n)"]


def test_quoted_printable_drops_trailing_white_space() -> None:
    # RFC 2045 6.7 rule (3): trailing white space on an encoded line was added in
    # transport; "=20" and white space before a soft line break stay.
    encoded = b"foo b  \r\nbar=20\r\nx \t=\r\ny\t\r\nend "
    assert decode_quoted_printable(encoded) == b"foo b\r\nbar \r\nx \ty\r\nend"


async def test_binary_quoted_printable_size_matches_content(
    alice: Client, store: SqlStore, account: Account
) -> None:
    raw = message(
        body="line one   \r\nline=20two\r\n",
        extra="Mime-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n",
    )
    await deliver(store, account, raw)
    await alice.ok("a SELECT INBOX")
    got = await alice.ok("a FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])")
    assert got == [b"* 1 FETCH (BINARY.SIZE[1] 20 BINARY[1] {20}\r\nline one\r\nline two\r\n)"]


async def test_sort_compares_upper_case_so_brackets_follow_letters(
    alice: Client, store: SqlStore, account: Account
) -> None:
    # i;ascii-casemap (RFC 4790 9.2, used by RFC 5256 SORT) compares upper case: "[" and
    # "_" (0x5B, 0x5F) come after "Z", so after every subject that begins with a letter.
    subjects = ("_", "b", "[list]", "A", "Re: [fwd: c]", "`q")
    senders = ("_", "b", "zz", "A", "y", "`q")
    for subject, sender in zip(subjects, senders, strict=True):
        await deliver(store, account, message(subject=subject, sender=f"{sender}@x.org"))
    await alice.ok("a SELECT INBOX")
    assert await alice.ok("a SORT (SUBJECT) UTF-8 ALL") == [b"* SORT 4 2 5 3 1 6"]
    assert await alice.ok("a SORT (REVERSE SUBJECT) UTF-8 ALL") == [b"* SORT 6 1 3 5 2 4"]
    # FROM compares the sender's mailbox the same way.
    assert await alice.ok("a SORT (FROM) UTF-8 ALL") == [b"* SORT 4 2 5 3 1 6"]


async def test_search_key_beyond_the_mailbox_matches_nothing(
    alice: Client, store: SqlStore, account: Account
) -> None:
    # A sequence set in SEARCH criteria filters: numbers past the last message match
    # nothing (OK, empty), as imaptest's 'esearch' script expects; FETCH keeps the BAD.
    for n in range(3):
        await deliver(store, account, message(subject=f"m{n}"))
    await alice.ok("a SELECT INBOX")
    assert await alice.ok("a SEARCH 1000") == [b"* SEARCH"]
    assert await alice.ok("a SEARCH 2,5:7") == [b"* SEARCH 2"]
    assert await alice.ok("a SEARCH 2:1000") == [b"* SEARCH 2 3"]
    assert await alice.ok("a SEARCH RETURN (COUNT) 1000") == [b'* ESEARCH (TAG "a") COUNT 0']
    assert await alice.ok("a SEARCH RETURN (MIN MAX) 1000") == [b'* ESEARCH (TAG "a")']
    assert await alice.ok("a UID SEARCH RETURN () 1000") == [b'* ESEARCH (TAG "a") UID']
    assert await alice.ok("a SEARCH OR 1000 1") == [b"* SEARCH 1"]
    responses = await alice.command("a FETCH 1000 FLAGS")
    assert responses[-1].startswith(b"a BAD ")


async def test_fetch_uid_of_a_message_expunged_elsewhere_still_answers(
    alice: Client, other: Client, store: SqlStore, account: Account
) -> None:
    # imaptest 'expunge': another session expunges the last message; until this session
    # is told, FETCH n UID answers from the session's own view (RFC 2180 4.1.1), and the
    # next NOOP reports the EXPUNGE.
    for n in range(3):
        await deliver(store, account, message(subject=f"m{n}"))
    await alice.ok("a SELECT INBOX")
    await other.ok("b SELECT INBOX")
    await other.ok("b STORE 3 +FLAGS.SILENT (\\Deleted)")
    await other.ok("b EXPUNGE")
    assert await alice.ok("a FETCH 3 UID") == [b"* 3 FETCH (UID 3)"]
    assert await alice.ok("a NOOP") == [b"* 3 EXPUNGE"]
    assert (await alice.command("a FETCH 3 UID"))[-1].startswith(b"a BAD ")


async def test_keywords_are_announced_in_flags_before_a_fetch_shows_them(
    alice: Client, other: Client, store: SqlStore, account: Account
) -> None:
    # RFC 9051 7.3.5: FLAGS names the flags that apply to the mailbox; imaptest checks
    # that every keyword a FETCH shows was first named in a FLAGS response.
    await deliver(store, account, message(subject="one"), keywords=("$Work",))
    await deliver(store, account, message(subject="two"))
    untagged = await alice.ok("a SELECT INBOX")
    assert untagged[0] == b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Work)"
    await other.ok("b SELECT INBOX")
    await other.ok("b STORE 2 +FLAGS (NewOne $work)")
    assert await alice.ok("a NOOP") == [
        b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Work NewOne)",
        b"* 2 FETCH (UID 2 FLAGS (\\Recent $work NewOne))",
    ]
    # Known keywords are not announced again; a message arriving with a new one is.
    assert await alice.ok("a FETCH 1:2 FLAGS") == [
        b"* 1 FETCH (FLAGS (\\Recent $Work))",
        b"* 2 FETCH (FLAGS (\\Recent $work NewOne))",
    ]
    await alice.ok("a APPEND INBOX (Third) {5+}\r\nhello")
    got = await alice.ok("a FETCH 3 (UID FLAGS)")
    assert got[-2:] == [
        b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Work NewOne Third)",
        b"* 3 FETCH (UID 3 FLAGS (\\Recent Third))",
    ]


async def test_store_on_a_message_expunged_elsewhere_answers_ok(
    alice: Client, other: Client, store: SqlStore, account: Account
) -> None:
    # RFC 2180 4.2 lets STORE answer OK or NO; imaptest's stress mode counts a NO to
    # STORE as a failure and Dovecot answers OK: the other messages change, the code
    # says that some were gone.
    for n in range(3):
        await deliver(store, account, message(subject=f"m{n}"))
    await alice.ok("a SELECT INBOX")
    await other.ok("b SELECT INBOX")
    await other.ok("b STORE 3 +FLAGS.SILENT (\\Deleted)")
    await other.ok("b EXPUNGE")
    responses = await alice.command("a STORE 2:3 +FLAGS (\\Flagged)")
    assert responses == [
        b"* 2 FETCH (FLAGS (\\Flagged \\Recent))",
        b"a OK [EXPUNGEISSUED] STORE completed, but some of the messages no longer exist",
    ]


async def test_silent_store_announces_its_new_keywords(
    alice: Client, store: SqlStore, account: Account
) -> None:
    # imaptest checks, when STORE completes, that each keyword it set was named in FLAGS.
    await deliver(store, account, message())
    await alice.ok("a SELECT INBOX")
    assert await alice.ok("a STORE 1 +FLAGS.SILENT (Fresh)") == [
        b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft Fresh)"
    ]
    assert await alice.ok("a STORE 1 +FLAGS.SILENT (Fresh)") == []
    assert await alice.ok("a STORE 1 -FLAGS.SILENT (Other)") == []
