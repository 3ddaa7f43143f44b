"""Several sessions of one user on one mailbox: each sees the others' appends, flag
changes and expunges at the moments RFC 9051 7.5.1 / RFC 3501 7.4.1 allow, with correct
sequence numbers; IDLE reports at once; a second node's writes are caught up from the
log (learned from mox imapserver/expunge_test.go)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailkeep.imap.session import Services
from mailkeep.store.api import Account, FlagMode
from mailkeep.store.changes import MailboxTouched
from mailkeep.store.factory import open_store
from mailkeep.store.sqlstore import SqlStore

from .conftest import deliver, message
from .support import Client, run_transcript


@pytest.fixture
async def other(services: Services) -> AsyncIterator[Client]:
    """A second session of alice, not yet selected."""
    c = Client(services)
    await c.start()
    await c.login()
    yield c
    await c.finish()


async def fill(store: SqlStore, account: Account, count: int) -> None:
    for i in range(count):
        await deliver(store, account, message(f"message {i + 1}"))


async def test_append_flags_expunge_seen_by_other(
    alice: Client, other: Client, store: SqlStore, account: Account
) -> None:
    await fill(store, account, 3)
    await alice.ok("a SELECT INBOX")
    await other.ok("b SELECT INBOX")
    await other.ok("b1 APPEND INBOX {9+}\r\nSubject:\r\n")
    await other.ok("b2 STORE 1 +FLAGS (\\Seen)")
    await other.ok("b3 STORE 2 +FLAGS.SILENT (\\Deleted)")
    await other.ok("b4 EXPUNGE")
    await run_transcript(
        alice,
        """
        C: a1 NOOP
        S: * 2 EXPUNGE
        S: * 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))
        S: * 3 EXISTS
        S: * 2 RECENT
        S: a1 OK NOOP completed
        C: a2 FETCH 1:* UID
        S: * 1 FETCH (UID 1)
        S: * 2 FETCH (UID 3)
        S: * 3 FETCH (UID 4)
        S: a2 OK FETCH completed
        """,
    )


async def test_no_expunge_during_fetch_store_search(
    alice: Client, other: Client, store: SqlStore, account: Account
) -> None:
    await fill(store, account, 4)
    await alice.ok("a SELECT INBOX")
    await other.ok("b SELECT INBOX")
    await other.ok("b1 STORE 2 +FLAGS.SILENT (\\Deleted)")
    await other.ok("b2 EXPUNGE")
    await run_transcript(
        alice,
        """
        # Message 2 is gone, but alice has not been told: numbers stay as they were.
        C: a1 FETCH 1:4 FLAGS
        S: * 1 FETCH (FLAGS (\\Recent))
        S: * 3 FETCH (FLAGS (\\Recent))
        S: * 4 FETCH (FLAGS (\\Recent))
        S: a1 NO [EXPUNGEISSUED] some of the requested messages no longer exist
        # Its UID is the session's own knowledge: it still answers (RFC 2180 4.1.1).
        C: a1b FETCH 2 UID
        S: * 2 FETCH (UID 2)
        S: a1b OK FETCH completed
        C: a2 STORE 3 +FLAGS (\\Flagged)
        S: * 3 FETCH (FLAGS (\\Flagged \\Recent))
        S: a2 OK STORE completed
        C: a3 STORE 2:3 +FLAGS (\\Answered)
        S: * 3 FETCH (FLAGS (\\Answered \\Flagged \\Recent))
        S: a3 OK [EXPUNGEISSUED] STORE completed, but some of the messages no longer exist
        C: a4 SEARCH ALL
        S: * SEARCH 1 3 4
        S: a4 OK SEARCH completed
        C: a5 COPY 2 Sent
        S: * 2 EXPUNGE
        S: a5 NO [EXPUNGEISSUED] some of the requested messages no longer exist
        C: a6 FETCH 2 UID
        S: * 2 FETCH (UID 3)
        S: a6 OK FETCH completed
        """,
    )


@pytest.mark.parametrize(
    "command", ["UID FETCH 1:* UID", "UID SEARCH ALL", "UID STORE 1 +FLAGS (\\Seen)"]
)
async def test_uid_commands_may_expunge(
    command: str, alice: Client, other: Client, store: SqlStore, account: Account
) -> None:
    await fill(store, account, 3)
    await alice.ok("a SELECT INBOX")
    await other.ok("b SELECT INBOX")
    await other.ok("b1 STORE 2 +FLAGS.SILENT (\\Deleted)")
    await other.ok("b2 EXPUNGE")
    responses = await alice.command(f"c {command}")
    assert b"* 2 EXPUNGE" in responses
    assert responses[-1].startswith(b"c OK")
    assert responses.index(b"* 2 EXPUNGE") == len(responses) - 2  # after the data


async def test_recent_goes_to_first_session_only(
    alice: Client, other: Client, store: SqlStore, account: Account
) -> None:
    await alice.ok("a SELECT INBOX")
    await other.ok("b SELECT INBOX")
    await deliver(store, account, message())
    assert await alice.ok("a1 NOOP") == [b"* 1 EXISTS", b"* 1 RECENT"]
    assert await other.ok("b1 NOOP") == [b"* 1 EXISTS", b"* 0 RECENT"]
    assert await alice.ok("a2 FETCH 1 FLAGS") == [b"* 1 FETCH (FLAGS (\\Recent))"]
    assert await other.ok("b2 FETCH 1 FLAGS") == [b"* 1 FETCH (FLAGS ())"]


async def test_idle_reports_delivery_at_once(
    alice: Client, other: Client, store: SqlStore, account: Account
) -> None:
    await fill(store, account, 2)
    await alice.ok("a SELECT INBOX")
    await other.ok("b SELECT INBOX")
    alice.send("i IDLE")
    assert await alice.line() == b"+ idling"
    await deliver(store, account, message("new"))
    assert await alice.line(wait=2) == b"* 3 EXISTS"
    assert await alice.line(wait=2) == b"* 3 RECENT"  # all new since alice selected first
    await other.ok("b1 STORE 1 +FLAGS.SILENT (\\Deleted)")
    await other.ok("b2 EXPUNGE")
    line = await alice.line(wait=2)
    if line.startswith(b"* 1 FETCH"):  # the flag change, if IDLE woke in between
        assert line == b"* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent))"
        line = await alice.line(wait=2)
    assert line == b"* 1 EXPUNGE"
    await other.ok("b3 STORE 1 +FLAGS (\\Flagged)")
    assert await alice.line(wait=2) == b"* 1 FETCH (UID 2 FLAGS (\\Flagged \\Recent))"
    alice.send("DONE")
    assert await alice.line() == b"i OK IDLE terminated"
    assert await alice.ok("n NOOP") == []


async def test_idle_without_selection_and_bad_done(
    alice: Client, store: SqlStore, account: Account
) -> None:
    alice.send("i IDLE")
    assert await alice.line() == b"+ idling"
    await deliver(store, account, message())
    alice.send("NOT DONE")
    assert await alice.line() == b"i BAD expected DONE to end IDLE"
    assert await alice.ok("n NOOP") == []


async def test_idle_timeout(store: SqlStore, sleeps: object, account: Account) -> None:
    from mailkeep.config import LimitsConfig

    from .conftest import Sleeps, make_services

    assert isinstance(sleeps, Sleeps)
    c = Client(make_services(store, sleeps, limits=LimitsConfig(idle_timeout=1)))
    await c.start()
    await c.login()
    c.send("i IDLE")
    assert await c.line() == b"+ idling"
    assert await c.line(wait=5) == b"* BYE autologout: idle for too long"


async def test_idle_timeout_counts_client_silence_not_notifications(
    store: SqlStore, sleeps: object, account: Account
) -> None:
    """New mail reported during IDLE is the server talking: it does not keep a silent
    client's session alive past the idle timeout."""
    from mailkeep.config import LimitsConfig

    from .conftest import Sleeps, make_services

    assert isinstance(sleeps, Sleeps)
    c = Client(make_services(store, sleeps, limits=LimitsConfig(idle_timeout=2)))
    await c.start()
    await c.login()
    await c.ok("s SELECT INBOX")
    c.send("i IDLE")
    assert await c.line() == b"+ idling"
    started = asyncio.get_running_loop().time()
    for _ in range(3):
        await asyncio.sleep(0.4)
        await deliver(store, account, message())
    lines = []
    while not (line := await c.line(wait=5)).startswith(b"* BYE"):
        lines.append(line)
    assert line == b"* BYE autologout: idle for too long"
    # Two seconds after IDLE, not two seconds after the last notification (3.2 s).
    assert asyncio.get_running_loop().time() - started < 2.8
    assert b"* 3 EXISTS" in lines


async def test_second_node_caught_up_from_the_log(
    alice: Client, store: SqlStore, account: Account, tmp_path: Path
) -> None:
    """Writes on another node reach this one only as a "touched" wake-up; the session
    catches up from the store's log."""
    await fill(store, account, 3)
    await alice.ok("a SELECT INBOX")
    node2 = await open_store("sqlite:store", tmp_path, pool_size=1)
    try:
        inbox = await node2.get_mailbox(account.id, "INBOX")
        assert inbox is not None
        await deliver(node2, account, message("from node 2"))
        await node2.store_flags(inbox.id, [1], FlagMode.ADD, 1, ())
        await node2.store_flags(inbox.id, [2], FlagMode.ADD, 8, ())
        await node2.expunge(inbox.id)
        assert await alice.ok("a1 NOOP") == []  # not heard of yet
        now = await node2.get_mailbox(account.id, "INBOX")
        assert now is not None
        store.hub.publish([MailboxTouched(account.id, inbox.id, now.highestmodseq)])
        await run_transcript(
            alice,
            """
            C: a2 NOOP
            S: * 2 EXPUNGE
            S: * 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))
            S: * 3 EXISTS
            S: * 3 RECENT
            S: a2 OK NOOP completed
            """,
        )
        # The expunge log trimmed away: the session compares UIDs instead.
        await node2.store_flags(inbox.id, [3], FlagMode.ADD, 8, ())
        await node2.expunge(inbox.id)
        await node2.trim_expunge_log(-1)
        later = await node2.get_mailbox(account.id, "INBOX")
        assert later is not None
        store.hub.publish([MailboxTouched(account.id, inbox.id, later.highestmodseq)])
        assert await alice.ok("a3 NOOP") == [b"* 2 EXPUNGE"]
    finally:
        await node2.close()


async def test_many_sessions_stay_consistent(
    services: Services, store: SqlStore, account: Account
) -> None:
    """Three sessions append, flag and expunge concurrently; afterwards each one's view,
    after a NOOP, equals the store."""
    clients = [Client(services) for _ in range(3)]
    for c in clients:
        await c.start()
        await c.login()
        await c.ok("s SELECT INBOX")

    async def work(c: Client, n: int) -> None:
        for i in range(5):
            await c.ok(f"a{i} APPEND INBOX {{{9 + 1}+}}\r\nSubject: {n}\r\n")
            await c.command(f"f{i} STORE 1:* +FLAGS (\\Seen)")
            await c.command(f"d{i} STORE {1 + i % 2} +FLAGS.SILENT (\\Deleted)")
            await c.ok(f"e{i} EXPUNGE")

    await asyncio.gather(*(work(c, n) for n, c in enumerate(clients)))
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    expected = list((await store.snapshot(inbox.id)).uids)
    for c in clients:
        await c.ok("n NOOP")
        fetched = await c.ok("u FETCH 1:* UID")
        assert [int(r.split()[-1].rstrip(b")")) for r in fetched] == expected
        await c.finish()


async def test_cached_fetch_items_follow_expunges_and_a_recreated_mailbox(
    alice: Client, other: Client, store: SqlStore, account: Account
) -> None:
    """Items that never change for a UID are answered from the server's FETCH cache the
    second time; a message expunged meanwhile still gets no data, and a mailbox deleted
    and created again under the same name (a new UIDVALIDITY) none of the old answers."""
    await alice.ok("a0 CREATE Box")
    for i in range(3):
        await deliver(store, account, message(f"old {i}"), "Box")
    await alice.ok("a SELECT Box")
    first = await alice.ok("a1 FETCH 1:3 (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert len(first) == 3
    assert await alice.ok("a2 FETCH 1:3 (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])") == (
        first
    )
    await other.ok("b SELECT Box")
    await other.ok("b1 STORE 2 +FLAGS.SILENT (\\Deleted)")
    await other.ok("b2 EXPUNGE")
    await run_transcript(
        alice,
        """
        C: a3 FETCH 2 (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])
        S: a3 NO [EXPUNGEISSUED] some of the requested messages no longer exist
        """,
    )
    await alice.ok("a4 CLOSE")
    await other.ok("b3 CLOSE")
    await alice.ok("a5 DELETE Box")
    await alice.ok("a6 CREATE Box")
    for i in range(3):
        await deliver(store, account, message(f"new {i}"), "Box")
    await alice.ok("a7 SELECT Box")
    again = await alice.ok("a8 FETCH 1:3 (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert len(again) == 3
    assert all(b"Subject: new" in line for line in again), again
