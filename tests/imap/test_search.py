"""SEARCH and UID SEARCH: every key of RFC 3501/9051, nesting, sets and ``$``, charsets,
ESEARCH (RFC 4731), SEARCHRES (RFC 5182), WITHIN (RFC 5032), IMAP4rev2 answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailkeep.mail.message import parse
from mailkeep.store.api import Account, NewMessage
from mailkeep.store.sqlstore import SqlStore

from .conftest import deliver, message
from .support import Client, run_transcript


@pytest.fixture
async def mailbox(alice: Client, store: SqlStore, account: Account) -> Client:
    """Five messages in INBOX, selected."""
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    await store.snapshot(inbox.id)  # start the \\Recent bookkeeping before they arrive
    old = datetime(2020, 2, 1, 12, 0, tzinfo=UTC)
    specs = [
        ("Meeting agenda", "alice@example.org", "Bring the slides.\r\n", 1, (), old),
        ("Lunch?", "bob@example.org", "Pizza at noon, Müller pays.\r\n", 0, ("$Work",), old),
        ("Re: Meeting agenda", "carol@example.com", "Sorry, can't make it.\r\n", 1 | 4, (), None),
        ("Invoice", "billing@shop.example", "Total: 42 EUR\r\n" * 100, 8, (), None),
        ("Grüße aus München", "jürgen@example.de", "Servus!\r\n", 16, ("$work",), None),
    ]
    for subject, sender, body, flags, keywords, when in specs:
        raw = message(subject, body, sender=sender, extra="X-Mailer: test\r\n")
        await store.append(
            inbox.id, [NewMessage(raw, parse(raw), flags, keywords, internaldate=when)]
        )
    await alice.ok("s SELECT INBOX")
    return alice


async def ids(client: Client, criteria: str) -> list[int]:
    [response] = await client.ok(f"s SEARCH {criteria}")
    assert response.startswith(b"* SEARCH")
    return [int(n) for n in response.split()[2:]]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ("ALL", [1, 2, 3, 4, 5]),
        ("SEEN", [1, 3]),
        ("UNSEEN", [2, 4, 5]),
        ("FLAGGED", [3]),
        ("UNFLAGGED", [1, 2, 4, 5]),
        ("DELETED", [4]),
        ("UNDELETED", [1, 2, 3, 5]),
        ("DRAFT", [5]),
        ("UNDRAFT", [1, 2, 3, 4]),
        ("ANSWERED", []),
        ("UNANSWERED", [1, 2, 3, 4, 5]),
        ("RECENT", [1, 2, 3, 4, 5]),
        ("NEW", [2, 4, 5]),
        ("OLD", []),
        ("KEYWORD $work", [2, 5]),
        ("UNKEYWORD $Work", [1, 3, 4]),
        ("FROM bob", [2]),
        ("FROM EXAMPLE.ORG", [1, 2]),
        ("TO alice", [1, 2, 3, 4, 5]),
        ("CC nobody", []),
        ("BCC nobody", []),
        ("SUBJECT meeting", [1, 3]),
        ('SUBJECT "re: meeting"', [3]),
        ("HEADER X-Mailer test", [1, 2, 3, 4, 5]),
        ('HEADER X-Mailer ""', [1, 2, 3, 4, 5]),
        ('HEADER X-Nothing ""', []),
        ("BODY slides", [1]),
        ("TEXT slides", [1]),
        ("TEXT agenda", [1, 3]),
        ("LARGER 1000", [4]),
        ("SMALLER 1000", [1, 2, 3, 5]),
        ("BEFORE 1-Mar-2020", [1, 2]),
        ("ON 1-Feb-2020", [1, 2]),
        ("SINCE 2-Feb-2020", [3, 4, 5]),
        ("SENTON 7-Feb-1994", [1, 2, 3, 4, 5]),
        ("SENTON 8-Feb-1994", []),
        ("SENTBEFORE 1-Jan-1990", []),
        ("SENTSINCE 1-Jan-1990", [1, 2, 3, 4, 5]),
        ("2:4", [2, 3, 4]),
        ("2,4:*", [2, 4, 5]),
        ("UID 1:2,5", [1, 2, 5]),
        ("UID 4:*", [4, 5]),
        ("NOT SEEN", [2, 4, 5]),
        ("OR SEEN DRAFT", [1, 3, 5]),
        ("OR (SEEN FLAGGED) DELETED", [3, 4]),
        ("SEEN NOT FLAGGED", [1]),
        ("NOT (OR SEEN DELETED) 1:4", [2]),
        ("YOUNGER 86400", [3, 4, 5]),
        ("OLDER 86400", [1, 2]),
    ],
)
async def test_search_keys(mailbox: Client, criteria: str, expected: list[int]) -> None:
    assert await ids(mailbox, criteria) == expected


async def test_search_charset_and_text(mailbox: Client) -> None:
    assert await ids(mailbox, 'CHARSET UTF-8 SUBJECT "grüße"') == [5]
    assert await ids(mailbox, 'CHARSET UTF-8 BODY "müller"') == [2]
    assert await ids(mailbox, "CHARSET UTF-8 FROM {7+}\r\njürgen") == [5]
    assert await ids(mailbox, "CHARSET US-ASCII SUBJECT lunch") == [2]
    await run_transcript(
        mailbox,
        """
        C: A1 SEARCH CHARSET ISO-8859-15 SUBJECT x
        S: A1 NO [BADCHARSET (US-ASCII UTF-8)] charset ISO-8859-15 is not supported
        C: A2 SEARCH FROB
        S: A2 BAD unknown search key FROB
        C: A3 SEARCH 9
        S: * SEARCH
        S: A3 OK SEARCH completed
        """,
    )


async def test_uid_search_and_esearch(mailbox: Client) -> None:
    await mailbox.ok("x STORE 1 +FLAGS.SILENT (\\Deleted)")
    await mailbox.ok("x EXPUNGE")  # messages 1 and 4 (\\Deleted already): UIDs 2, 3, 5 left
    await run_transcript(
        mailbox,
        """
        C: A282 SEARCH RETURN (MIN COUNT) FLAGGED
        S: * ESEARCH (TAG "A282") MIN 2 COUNT 1
        S: A282 OK SEARCH completed
        C: A283 SEARCH RETURN () UNDRAFT
        S: * ESEARCH (TAG "A283") ALL 1:2
        S: A283 OK SEARCH completed
        C: A284 UID SEARCH RETURN (MIN MAX COUNT ALL) UNDRAFT
        S: * ESEARCH (TAG "A284") UID MIN 2 MAX 3 ALL 2:3 COUNT 2
        S: A284 OK UID SEARCH completed
        C: A285 SEARCH RETURN (MIN MAX ALL) ANSWERED
        S: * ESEARCH (TAG "A285")
        S: A285 OK SEARCH completed
        C: A286 SEARCH RETURN (COUNT) ANSWERED
        S: * ESEARCH (TAG "A286") COUNT 0
        S: A286 OK SEARCH completed
        C: A287 UID SEARCH SEEN
        S: * SEARCH 3
        S: A287 OK UID SEARCH completed
        """,
    )


async def test_searchres(mailbox: Client) -> None:
    await run_transcript(
        mailbox,
        """
        C: A282 SEARCH RETURN (SAVE) FLAGGED
        S: A282 OK SEARCH completed, result saved
        C: A283 FETCH $ (UID)
        S: * 3 FETCH (UID 3)
        S: A283 OK FETCH completed
        C: A284 SEARCH RETURN (SAVE MIN) UNSEEN
        S: * ESEARCH (TAG "A284") MIN 2
        S: A284 OK SEARCH completed
        C: A285 UID SEARCH UID $
        S: * SEARCH 2
        S: A285 OK UID SEARCH completed
        C: A286 SEARCH RETURN (SAVE) UNSEEN
        S: A286 OK SEARCH completed, result saved
        C: A287 SEARCH $ OR DRAFT DELETED
        S: * SEARCH 4 5
        S: A287 OK SEARCH completed
        C: A288 STORE $ +FLAGS.SILENT (\\Answered)
        S: A288 OK STORE completed
        C: A289 SEARCH RETURN (SAVE) FROBNICATE
        S: A289 BAD unknown search key FROBNICATE
        C: A290 FETCH $ UID
        S: * 2 FETCH (UID 2)
        S: * 4 FETCH (UID 4)
        S: * 5 FETCH (UID 5)
        S: A290 OK FETCH completed
        C: B283 SEARCH RETURN (SAVE) CHARSET KOI8-R TEXT {4+}
        C: XXXX
        S: B283 NO [BADCHARSET (US-ASCII UTF-8)] charset KOI8-R is not supported
        C: B284 FETCH $ UID
        S: B284 OK FETCH completed
        C: A291 UNSELECT
        S: A291 OK UNSELECT completed
        """,
    )


async def test_search_rev2_answers_esearch(
    alice: Client, store: SqlStore, account: Account
) -> None:
    await deliver(store, account, message("one"))
    await deliver(store, account, message("two"), flags=1)
    await alice.ok("e ENABLE IMAP4rev2")
    await alice.ok("s SELECT INBOX")
    await run_transcript(
        alice,
        """
        C: a SEARCH UNSEEN
        S: * ESEARCH (TAG "a") ALL 1
        S: a OK SEARCH completed
        C: b UID SEARCH ANSWERED
        S: * ESEARCH (TAG "b") UID
        S: b OK UID SEARCH completed
        """,
    )


async def test_utf8_accept_rejects_other_charsets(alice: Client) -> None:
    await alice.ok("e ENABLE UTF8=ACCEPT")
    await alice.ok("s SELECT INBOX")
    assert await alice.command("a SEARCH CHARSET US-ASCII ALL") == [
        b"a BAD CHARSET US-ASCII conflicts with UTF8=ACCEPT"
    ]
    assert await alice.command("b SEARCH CHARSET UTF-8 ALL") == [
        b"* SEARCH",
        b"b OK SEARCH completed",
    ]


async def test_search_bounded_to_the_view(alice: Client, store: SqlStore, account: Account) -> None:
    await deliver(store, account, message("one"))
    await alice.ok("s SELECT INBOX")
    await deliver(store, account, message("two"))  # not yet announced
    alice.send("a SEARCH ALL")
    assert await alice.line() == b"* SEARCH 1"
    assert await alice.line() == b"* 2 EXISTS"


async def test_within_uses_now(mailbox: Client, store: SqlStore, account: Account) -> None:
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    raw = message("an hour ago")
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    await store.append(inbox.id, [NewMessage(raw, parse(raw), internaldate=hour_ago)])
    await mailbox.ok("n NOOP")
    assert await ids(mailbox, "YOUNGER 7200 OLDER 1800") == [6]
