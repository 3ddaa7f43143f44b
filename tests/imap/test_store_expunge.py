"""STORE, EXPUNGE, UID EXPUNGE, CLOSE, COPY, MOVE (RFC 9051 6.4, RFC 4315, RFC 6851)."""

from __future__ import annotations

from mailkeep.store.api import Account
from mailkeep.store.sqlstore import SqlStore

from .conftest import deliver, message
from .support import Client, run_transcript


async def fill(store: SqlStore, account: Account, count: int, mailbox: str = "INBOX") -> None:
    for i in range(count):
        await deliver(store, account, message(f"message {i + 1}"), mailbox)


async def test_store_rfc_example(alice: Client, store: SqlStore, account: Account) -> None:
    await fill(store, account, 4)
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    store.claim_recent(inbox.id, inbox.uidnext)  # old mail, as in the RFC: not \Recent
    await alice.ok("s SELECT INBOX")
    await run_transcript(
        alice,
        """
        C: A003 STORE 2:4 +FLAGS (\\Deleted)
        S: * 2 FETCH (FLAGS (\\Deleted))
        S: * 3 FETCH (FLAGS (\\Deleted))
        S: * 4 FETCH (FLAGS (\\Deleted))
        S: A003 OK STORE completed
        C: A004 STORE 2 FLAGS.SILENT (\\Seen $Label1)
        # A new keyword is announced in FLAGS (RFC 9051 7.3.5), even by a silent STORE.
        S: * FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Label1)
        S: A004 OK STORE completed
        C: A005 FETCH 2 FLAGS
        S: * 2 FETCH (FLAGS (\\Seen $Label1))
        S: A005 OK FETCH completed
        C: A006 UID STORE 2:3 -FLAGS (\\Deleted $label1)
        S: * 2 FETCH (FLAGS (\\Seen) UID 2)
        S: * 3 FETCH (FLAGS () UID 3)
        S: A006 OK UID STORE completed
        C: A007 STORE 1 +FLAGS \\Flagged \\Answered
        S: * 1 FETCH (FLAGS (\\Answered \\Flagged))
        S: A007 OK STORE completed
        C: A008 STORE 1 +FLAGS (\\Recent)
        S: A008 BAD flag \\Recent cannot be set
        C: A009 STORE 5 +FLAGS (\\Seen)
        S: A009 BAD message 5 does not exist (the mailbox has 4)
        C: A010 STORE 1 +FLAGS (\\Answered)
        S: * 1 FETCH (FLAGS (\\Answered \\Flagged))
        S: A010 OK STORE completed
        """,
    )


async def test_expunge_rfc_example(alice: Client, store: SqlStore, account: Account) -> None:
    await fill(store, account, 11)
    await alice.ok("s SELECT INBOX")
    await alice.ok("d STORE 3,4,7,11 +FLAGS.SILENT (\\Deleted)")
    await run_transcript(
        alice,
        """
        C: A202 EXPUNGE
        S: * 3 EXPUNGE
        S: * 3 EXPUNGE
        S: * 5 EXPUNGE
        S: * 8 EXPUNGE
        S: A202 OK EXPUNGE completed
        C: A203 FETCH 1:* UID
        S: * 1 FETCH (UID 1)
        S: * 2 FETCH (UID 2)
        S: * 3 FETCH (UID 5)
        S: * 4 FETCH (UID 6)
        S: * 5 FETCH (UID 8)
        S: * 6 FETCH (UID 9)
        S: * 7 FETCH (UID 10)
        S: A203 OK FETCH completed
        """,
    )


async def test_uid_expunge(alice: Client, store: SqlStore, account: Account) -> None:
    await fill(store, account, 5)
    await alice.ok("s SELECT INBOX")
    await alice.ok("d STORE 1:5 +FLAGS.SILENT (\\Deleted)")
    await run_transcript(
        alice,
        """
        C: A003 UID EXPUNGE 3:4,9
        S: * 3 EXPUNGE
        S: * 3 EXPUNGE
        S: A003 OK UID EXPUNGE completed
        C: A004 EXAMINE INBOX
        S: * FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)
        S: * 3 EXISTS
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S: A004 OK [READ-ONLY] EXAMINE completed
        C: A005 EXPUNGE
        S: A005 NO the mailbox is read-only (EXAMINE): nothing can be expunged
        C: A006 STORE 1 +FLAGS (\\Seen)
        S: A006 NO the mailbox is read-only (EXAMINE): flags cannot be changed
        C: A007 CLOSE
        S: A007 OK CLOSE completed
        C: A008 STATUS INBOX (MESSAGES)
        S: * STATUS INBOX (MESSAGES 3)
        S: A008 OK STATUS completed
        C: A009 SELECT INBOX
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S: A009 OK [READ-WRITE] SELECT completed
        C: A010 CLOSE
        S: A010 OK CLOSE completed
        C: A011 STATUS INBOX (MESSAGES)
        S: * STATUS INBOX (MESSAGES 0)
        S: A011 OK STATUS completed
        """,
    )


async def test_copy_and_move(alice: Client, store: SqlStore, account: Account) -> None:
    await fill(store, account, 4)
    await alice.ok("c CREATE Target")
    target = await store.get_mailbox(account.id, "Target")
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert target is not None
    assert inbox is not None
    await alice.ok("s SELECT INBOX")
    await run_transcript(
        alice,
        """
        C: A003 COPY 2:4 MEETING
        S: A003 NO [TRYCREATE] mailbox MEETING does not exist
        C: A004 COPY 2:4 Target
        S: A004 OK [COPYUID {{v}} 2:4 1:3] COPY completed
        C: A005 UID COPY 4,1 Target
        S: A005 OK [COPYUID {{v}} 1,4 4:5] UID COPY completed
        C: A006 UID COPY 99 Target
        S: A006 OK UID COPY completed, no messages
        C: a UID MOVE 2:3 Target
        S: * OK [COPYUID {{v}} 2:3 6:7] moved
        S: * 2 EXPUNGE
        S: * 2 EXPUNGE
        S: a OK UID MOVE completed
        C: b MOVE 1 Target
        S: * OK [COPYUID {{v}} 1 8] moved
        S: * 1 EXPUNGE
        S: b OK MOVE completed
        C: c MOVE 1 INBOX
        S: * OK [COPYUID {{i}} 4 5] moved
        S: * 1 EXPUNGE
        S: * 1 EXISTS
        S: * 1 RECENT
        S: c OK MOVE completed
        C: d STATUS Target (MESSAGES)
        S: * STATUS Target (MESSAGES 8)
        S: d OK STATUS completed
        """,
        {"v": target.uidvalidity, "i": inbox.uidvalidity},
    )


async def test_copy_into_selected_mailbox(alice: Client, store: SqlStore, account: Account) -> None:
    await fill(store, account, 2)
    await alice.ok("s SELECT INBOX")
    responses = await alice.command("c COPY 1:2 INBOX")
    assert responses[:2] == [b"* 4 EXISTS", b"* 4 RECENT"]  # 1:2 from SELECT, 3:4 copies
    assert responses[2].startswith(b"c OK [COPYUID ")


async def test_quota_on_copy(alice: Client, store: SqlStore, account: Account) -> None:
    await fill(store, account, 2)
    await store.set_quota(account.id, None, 3)
    await alice.ok("s SELECT INBOX")
    [refused] = await alice.command("c COPY 1:2 Sent")
    assert refused.startswith(b"c NO [OVERQUOTA] ")


async def test_sequence_ranges_with_star(alice: Client, store: SqlStore, account: Account) -> None:
    await fill(store, account, 3)
    await alice.ok("s SELECT INBOX")
    assert await alice.ok("a FETCH 5:* UID") == [b"* 3 FETCH (UID 3)"]
    assert await alice.ok("b FETCH *:2 UID") == [b"* 2 FETCH (UID 2)", b"* 3 FETCH (UID 3)"]
    assert await alice.command("c FETCH 2:4 UID") == [
        b"c BAD message 4 does not exist (the mailbox has 3)"
    ]
    await alice.ok("e SELECT Drafts")
    assert await alice.ok("d FETCH 1:* UID") == []
    assert await alice.command("f FETCH 1 UID") == [
        b"f BAD message 1 does not exist (the mailbox has 0)"
    ]
