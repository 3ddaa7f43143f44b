"""SORT, ESORT, THREAD and PARTIAL through a session (RFC 5256, 5267, 5957, 9394), with
the behaviours Dovecot's compliance scripts check (esort, sort-partial, search-partial)."""

from __future__ import annotations

from mailkeep.store.api import Account
from mailkeep.store.sqlstore import SqlStore

from .conftest import deliver, message
from .support import Client, run_transcript


async def _five(store: SqlStore, account: Account) -> None:
    """Five messages; arrival order 1..5, other keys disagree with it."""
    rows = [
        ("Re: zebra", "carol@example.org", "Carol <carol@example.org>", "Wed, 3 Jan 2024"),
        ("apple", "Bob <bob@example.org>", "Zed <a@example.org>", "Fri, 5 Jan 2024"),
        ("mango", "alice@example.org", "Ann <ann@example.org>", "Mon, 1 Jan 2024"),
        ("Fwd: apple", "dave@example.org", "Bob <b@example.org>", "Tue, 2 Jan 2024"),
        ("banana", "Eve <eve@example.org>", "Eve <e@example.org>", "Thu, 4 Jan 2024"),
    ]
    for i, (subject, sender, to, date) in enumerate(rows):
        await deliver(
            store,
            account,
            message(
                subject,
                body="x" * (100 * (5 - i)),
                sender=sender,
                to=to,
                date=date + " 10:00:00 +0000",
            ),
        )


async def test_sort_keys(alice: Client, store: SqlStore, account: Account) -> None:
    await _five(store, account)
    await run_transcript(
        alice,
        """
        C: a SELECT INBOX
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S: a OK [READ-WRITE] SELECT completed
        C: b SORT (SUBJECT) UTF-8 ALL
        S: * SORT 2 4 5 3 1
        S: b OK SORT completed
        C: c SORT (DATE) US-ASCII ALL
        S: * SORT 3 4 1 5 2
        S: c OK SORT completed
        C: d SORT (REVERSE DATE) US-ASCII ALL
        S: * SORT 2 5 1 4 3
        S: d OK SORT completed
        C: e SORT (SIZE) UTF-8 ALL
        S: * SORT 5 4 3 2 1
        S: e OK SORT completed
        C: f SORT (ARRIVAL) UTF-8 2:4
        S: * SORT 2 3 4
        S: f OK SORT completed
        C: g SORT (DISPLAYFROM) UTF-8 ALL
        S: * SORT 3 2 1 4 5
        S: g OK SORT completed
        C: h SORT (DISPLAYTO) UTF-8 ALL
        S: * SORT 3 4 1 5 2
        S: h OK SORT completed
        C: i UID SORT (REVERSE SUBJECT) UTF-8 NOT 3
        S: * SORT 1 5 2 4
        S: i OK UID SORT completed
        C: j SORT (SUBJECT) KOI8-R ALL
        S: j NO [BADCHARSET (US-ASCII UTF-8)] charset KOI8-R is not supported
        """,
    )


async def test_esort_and_partial(alice: Client, store: SqlStore, account: Account) -> None:
    await _five(store, account)
    await alice.ok("a SELECT INBOX")
    await run_transcript(
        alice,
        """
        C: b SORT RETURN (MIN) (ARRIVAL) US-ASCII 1:5
        S: * ESEARCH (TAG "b") MIN 1
        S: b OK SORT completed
        C: c SORT RETURN (MAX) (ARRIVAL) US-ASCII 1:5
        S: * ESEARCH (TAG "c") MAX 5
        S: c OK SORT completed
        C: d SORT RETURN (ALL) (ARRIVAL) US-ASCII 1:5
        S: * ESEARCH (TAG "d") ALL 1:5
        S: d OK SORT completed
        C: e SORT RETURN (COUNT) (ARRIVAL) US-ASCII 1:5
        S: * ESEARCH (TAG "e") COUNT 5
        S: e OK SORT completed
        C: f SORT RETURN (MIN MAX ALL) (DATE) US-ASCII ALL
        S: * ESEARCH (TAG "f") MIN 3 MAX 2 ALL 3:4,1,5,2
        S: f OK SORT completed
        C: g SORT RETURN (PARTIAL 2:4) (REVERSE DATE) US-ASCII ALL
        S: * ESEARCH (TAG "g") PARTIAL (2:4 5,1,4)
        S: g OK SORT completed
        C: h SORT RETURN (PARTIAL 4:2) (ARRIVAL) US-ASCII ALL
        S: * ESEARCH (TAG "h") PARTIAL (2:4 2:4)
        S: h OK SORT completed
        C: i UID SORT RETURN (PARTIAL -1:-2) (DATE) US-ASCII ALL
        S: * ESEARCH (TAG "i") UID PARTIAL (-1:-2 5,2)
        S: i OK UID SORT completed
        C: j SEARCH RETURN (PARTIAL 1:1) ALL
        S: * ESEARCH (TAG "j") PARTIAL (1:1 1)
        S: j OK SEARCH completed
        C: k SEARCH RETURN (PARTIAL 1:6) ALL
        S: * ESEARCH (TAG "k") PARTIAL (1:6 1:5)
        S: k OK SEARCH completed
        C: l SEARCH RETURN (PARTIAL 7:9) ALL
        S: * ESEARCH (TAG "l") PARTIAL (7:9 NIL)
        S: l OK SEARCH completed
        C: m UID SEARCH RETURN (PARTIAL -2:-1 COUNT) ALL
        S: * ESEARCH (TAG "m") UID COUNT 5 PARTIAL (-1:-2 4:5)
        S: m OK UID SEARCH completed
        C: n SEARCH RETURN (PARTIAL 1) ALL
        S~ n BAD .*
        C: o SEARCH RETURN (PARTIAL 1:*) ALL
        S~ o BAD .*
        C: p SEARCH RETURN (SAVE PARTIAL 2:3) ALL
        S: * ESEARCH (TAG "p") PARTIAL (2:3 2:3)
        S: p OK SEARCH completed
        C: q FETCH $ (UID)
        S: * 2 FETCH (UID 2)
        S: * 3 FETCH (UID 3)
        S: q OK FETCH completed
        C: r UID FETCH 1:* (UID) (PARTIAL -1:-2)
        S: * 4 FETCH (UID 4)
        S: * 5 FETCH (UID 5)
        S: r OK FETCH completed
        C: s FETCH 2:* (UID) (PARTIAL 2:3)
        S: * 3 FETCH (UID 3)
        S: * 4 FETCH (UID 4)
        S: s OK FETCH completed
        """,
    )


async def test_thread(alice: Client, store: SqlStore, account: Account) -> None:
    mails = [
        ("hello", "<a@x>", ""),
        ("Re: hello", "<b@x>", "References: <a@x>\r\n"),
        ("other", "<c@x>", ""),
        ("Re: hello", "<d@x>", "In-Reply-To: <a@x>\r\n"),
        ("Re: hello", "<e@x>", "References: <a@x> <b@x>\r\n"),
        ("Re: other", "<f@x>", ""),
    ]
    for day, (subject, msg_id, extra) in enumerate(mails, 1):
        await deliver(
            store,
            account,
            message(
                subject,
                date=f"Mon, {day} Jan 2024 10:00:00 +0000",
                extra=f"Message-ID: {msg_id}\r\n{extra}",
            ),
        )
    await alice.ok("a SELECT INBOX")
    await run_transcript(
        alice,
        """
        C: b THREAD REFERENCES UTF-8 ALL
        S: * THREAD (1 (2 5)(4))(3 6)
        S: b OK THREAD completed
        C: c UID THREAD REFERENCES US-ASCII NOT 2
        S: * THREAD (1 (4)(5))(3 6)
        S: c OK UID THREAD completed
        C: d THREAD ORDEREDSUBJECT UTF-8 ALL
        S: * THREAD (1 (2)(4)(5))(3 6)
        S: d OK THREAD completed
        C: e THREAD REFERENCES UTF-8 SUBJECT nothing
        S: * THREAD
        S: e OK THREAD completed
        C: f THREAD WHATEVER UTF-8 ALL
        S: f BAD unknown threading algorithm WHATEVER (use REFERENCES)
        """,
    )
