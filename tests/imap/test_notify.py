"""NOTIFY (RFC 5465): what a session hears unasked, between commands, about the selected
mailbox and the others, mailbox names, subscriptions, annotations and shared mailboxes;
the command's rules; overflow. Modelled on what Dovecot's imaptest ``notify`` script
checks (initial STATUS) and on the RFC's examples."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mailkeep.imap import notify
from mailkeep.imap.session import Services
from mailkeep.store.api import Account
from mailkeep.store.sqlstore import SqlStore

from .conftest import deliver, message, password_hash
from .support import Client, run_transcript


@pytest.fixture
async def other(services: Services) -> AsyncIterator[Client]:
    """A second session of alice, the one that makes the changes."""
    c = Client(services)
    await c.start()
    await c.login()
    yield c
    await c.finish()


async def _status_values(store: SqlStore, account: Account, name: str) -> tuple[int, int, int]:
    box = await store.get_mailbox(account.id, name)
    assert box is not None
    return box.uidnext, box.uidvalidity, box.highestmodseq


async def test_initial_status_as_imaptest_expects(
    alice: Client, store: SqlStore, account: Account
) -> None:
    await store.create_mailbox(account.id, "Box2")
    await deliver(store, account, message(), "Box2")
    uidnext, uidvalidity, modseq = await _status_values(store, account, "Box2")
    await run_transcript(
        alice,
        """
        C: a1 NOTIFY SET STATUS (mailboxes Box2 (MessageNew MessageExpunge))
        S: * STATUS Box2 (MESSAGES 1 UIDNEXT {{uidnext}} UIDVALIDITY {{uidvalidity}})
        S: a1 OK NOTIFY completed
        C: a2 NOTIFY SET STATUS (mailboxes Box2 (MessageNew MessageExpunge FlagChange))
        S: * STATUS Box2 (MESSAGES 1 {{next_valid}} HIGHESTMODSEQ {{modseq}})
        S: a2 OK NOTIFY completed
        C: a3 NOTIFY SET (mailboxes Box2 (MessageNew MessageExpunge FlagChange))
        S: a3 OK NOTIFY completed
        C: a4 NOTIFY NONE
        S: a4 OK NOTIFY completed: no notifications
        """,
        {
            "uidnext": uidnext,
            "uidvalidity": uidvalidity,
            "modseq": modseq,
            "next_valid": f"UIDNEXT {uidnext} UIDVALIDITY {uidvalidity}",
        },
    )


async def test_command_rules(alice: Client) -> None:
    await run_transcript(
        alice,
        """
        C: a1 NOTIFY SET (personal (MessageNew))
        S: a1 BAD MessageNew and MessageExpunge go together (RFC 5465 5)
        C: a2 NOTIFY SET (personal (FlagChange))
        S: a2 BAD FlagChange and AnnotationChange need MessageNew and MessageExpunge
        C: a3 NOTIFY SET (selected (MailboxName))
        S: a3 BAD SELECTED takes message events only (RFC 5465 6.1)
        C: a4 NOTIFY SET (personal (MessageNew (UID) MessageExpunge))
        S: a4 BAD FETCH attributes are for the selected mailbox's MessageNew only
        C: a5 NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed NONE)
        S: a5 BAD only one of SELECTED and SELECTED-DELAYED may be given
        C: a6 NOTIFY SET (personal (MailboxName Teleport))
        S: a6 NO [BADEVENT ({{supported}})] unsupported NOTIFY event TELEPORT
        C: a7 NOTIFY SET (personal NONE) (inboxes (MessageNew MessageExpunge AnnotationChange))
        S: a7 OK NOTIFY completed
        """,
        {"supported": " ".join(notify.SUPPORTED)},
    )


async def test_other_mailboxes_between_commands(
    alice: Client, other: Client, store: SqlStore, account: Account
) -> None:
    await store.create_mailbox(account.id, "Lists/Lemonade")
    await alice.ok("a1 SELECT INBOX")
    await alice.ok("a2 NOTIFY SET (subtree Lists (MessageNew MessageExpunge FlagChange))")
    uid = await deliver(store, account, message("news"), "Lists/Lemonade")
    # No command in progress: the STATUS comes at once.
    assert await alice.line() == b"* STATUS Lists/Lemonade (MESSAGES 1 UIDNEXT 2)"
    await other.ok("b1 SELECT Lists/Lemonade")
    await other.ok(f"b2 UID STORE {uid} +FLAGS (\\Seen)")
    _, uidvalidity, modseq = await _status_values(store, account, "Lists/Lemonade")
    assert await alice.line() == (
        b"* STATUS Lists/Lemonade (UIDVALIDITY %d UNSEEN 0 HIGHESTMODSEQ %d)"
        % (uidvalidity, modseq)
    )
    await deliver(store, account, message("inbox news"))  # the selected one: no SELECTED
    await other.ok("b3 EXPUNGE")  # nothing to expunge: no change at all
    assert await alice.quiet() == b""
    await run_transcript(
        alice,
        """
        C: a3 NOOP
        S: * 1 EXISTS
        S: * 1 RECENT
        S: a3 OK NOOP completed
        C: a4 NOTIFY NONE
        S: a4 OK NOTIFY completed: no notifications
        """,
    )
    await deliver(store, account, message("unheard"), "Lists/Lemonade")
    assert await alice.quiet() == b""


async def test_selected_mailbox_with_fetch_attributes(
    alice: Client, other: Client, store: SqlStore, account: Account
) -> None:
    await deliver(store, account, message("first"))
    await alice.ok("a1 SELECT INBOX")
    await alice.ok(
        "a2 NOTIFY SET (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
        " MessageExpunge FlagChange))"
    )
    await deliver(store, account, message("second"))
    assert await alice.line() == b"* 2 EXISTS"
    assert await alice.line() == b"* 2 RECENT"
    assert await alice.response() == (
        b"* 2 FETCH (UID 2 BODY[HEADER.FIELDS (SUBJECT)] {19}\r\nSubject: second\r\n\r\n)"
    )
    await other.ok("b1 SELECT INBOX")
    await other.ok("b2 STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert await alice.line() == b"* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent))"
    await other.ok("b3 EXPUNGE")
    assert await alice.line() == b"* 1 EXPUNGE"  # SELECTED: at once, MSNs shift


async def test_selected_delayed_keeps_expunges_for_a_command(
    alice: Client, other: Client, store: SqlStore, account: Account
) -> None:
    await deliver(store, account, message("first"))
    await alice.ok("a1 SELECT INBOX")
    await alice.ok("a2 NOTIFY SET (selected-delayed (MessageNew MessageExpunge))")
    await other.ok("b1 SELECT INBOX")
    await other.ok("b2 STORE 1 +FLAGS.SILENT (\\Deleted)")
    await other.ok("b3 EXPUNGE")
    await deliver(store, account, message("second"))
    lines: list[bytes] = []
    while not lines or lines[-1] != b"* 2 RECENT":
        lines.append(await alice.line())
    assert b"* 2 EXISTS" in lines
    assert not any(b"EXPUNGE" in line for line in lines)
    await run_transcript(
        alice,
        """
        C: a3 FETCH 1:2 FLAGS
        S: * 2 FETCH (FLAGS (\\Recent))
        S: a3 NO [EXPUNGEISSUED] some of the requested messages no longer exist
        C: a4 NOOP
        S: * 1 EXPUNGE
        S: a4 OK NOOP completed
        """,
    )


async def test_mailbox_names_and_subscriptions(alice: Client, other: Client) -> None:
    await alice.ok("a1 NOTIFY SET (personal (MailboxName SubscriptionChange))")
    await other.ok("b1 CREATE Projects/2026")
    assert await alice.line() == b'* LIST (\\HasChildren) "/" Projects'
    assert await alice.line() == b'* LIST (\\HasNoChildren) "/" Projects/2026'
    assert await alice.line() == b'* LIST (\\HasChildren) "/" Projects'
    await other.ok("b2 RENAME Projects Work")
    assert await alice.line() == b'* LIST (\\HasChildren) "/" Work ("OLDNAME" ("Projects"))'
    await other.ok("b3 SUBSCRIBE Work/2026")
    assert await alice.line() == b'* LIST (\\HasNoChildren \\Subscribed) "/" Work/2026'
    await other.ok("b4 DELETE Work/2026")
    assert await alice.line() == b'* LIST (\\NonExistent \\Subscribed) "/" Work/2026'
    assert await alice.line() == b'* LIST (\\HasNoChildren) "/" Work'
    # What alice's own session does is not echoed back to it.
    await alice.ok("a2 CREATE Mine")
    await alice.ok("a3 UNSUBSCRIBE Work/2026")
    await alice.ok("a4 NOOP")
    assert await alice.quiet() == b""


async def test_annotations(services: Services, alice: Client, other: Client) -> None:
    await alice.ok(
        "a1 NOTIFY SET (mailboxes INBOX (MailboxMetadataChange)) (personal (ServerMetadataChange))"
    )
    await other.ok('b1 SETMETADATA INBOX (/shared/comment "hi")')
    assert await alice.line() == b'* METADATA "INBOX" /shared/comment'
    await other.ok('b2 SETMETADATA Sent (/shared/comment "not watched")')
    await other.ok('b3 SETMETADATA "" (/private/vendor/x "1")')
    assert await alice.line() == b'* METADATA "" /private/vendor/x'
    assert await alice.quiet() == b""


async def test_shared_mailboxes_appear_change_and_disappear(
    services: Services, alice: Client, store: SqlStore, account: Account
) -> None:
    await store.create_account("bob@example.org", password_hash(), None)
    await store.create_mailbox(account.id, "Team")
    await store.create_mailbox(account.id, "Secret")
    bob = Client(services)
    await bob.start()
    await bob.login("bob@example.org")
    try:
        await bob.ok('b1 NOTIFY SET (subtree "Shared" (MessageNew MessageExpunge MailboxName))')
        await alice.ok("a1 SETACL Team bob@example.org lr")
        assert await bob.line() == b'* LIST (\\HasNoChildren) "/" Shared/alice@example.org/Team'
        await deliver(store, account, message("for the team"), "Team")
        assert await bob.line() == b"* STATUS Shared/alice@example.org/Team (MESSAGES 1 UIDNEXT 2)"
        # Nothing of what bob may not see.
        await deliver(store, account, message("secret"), "Secret")
        await alice.ok("a2 RENAME Secret Hidden")
        await alice.ok("a3 DELETE Hidden")
        assert await bob.quiet() == b""
        await alice.ok("a4 DELETEACL Team bob@example.org")
        assert await bob.line() == b'* LIST (\\NonExistent) "/" Shared/alice@example.org/Team'
        await deliver(store, account, message("not for bob"), "Team")
        assert await bob.quiet() == b""
    finally:
        await bob.finish()


async def test_idle_sends_what_notify_asks(
    alice: Client, other: Client, store: SqlStore, account: Account
) -> None:
    await store.create_mailbox(account.id, "Other")
    await alice.ok("a1 SELECT INBOX")
    await alice.ok("a2 NOTIFY SET (personal (MessageNew MessageExpunge))")
    alice.send("a3 IDLE")
    assert await alice.line() == b"+ idling"
    await deliver(store, account, message("elsewhere"), "Other")
    assert await alice.line() == b"* STATUS Other (MESSAGES 1 UIDNEXT 2)"
    await deliver(store, account, message("here"))  # selected, not asked for
    assert await alice.quiet() == b""
    alice.send("DONE")
    assert await alice.until("a3") == [b"a3 OK IDLE terminated"]
    # The selected mailbox is told at the next command, as without NOTIFY.
    assert await alice.ok("a4 NOOP") == [b"* 1 EXISTS", b"* 1 RECENT"]


async def test_overflow_turns_notifications_off(
    alice: Client, other: Client, store: SqlStore, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "OVERFLOW", 3)
    for child in ("a", "b", "c", "d"):
        await store.create_mailbox(account.id, f"Tree/{child}")
    await alice.ok("a1 NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))")
    # One transaction, five changes at once: more than the session may fall behind by.
    await other.ok("b1 RENAME Tree Forest")
    assert await alice.line() == (
        b"* OK [NOTIFICATIONOVERFLOW] too many changes at once: notifications are off"
    )
    assert alice.session is not None
    assert alice.session.notify is None
    await deliver(store, account, message("after"), "Sent")
    assert await alice.quiet() == b""


async def test_named_mailbox_without_read_right_is_no_access(
    services: Services, alice: Client, store: SqlStore, account: Account
) -> None:
    """RFC 5465 3.1: a named mailbox the user may list but not read: \\NoAccess."""
    await store.create_account("bob@example.org", password_hash(), None)
    await store.create_mailbox(account.id, "Board")
    await alice.ok("a1 SETACL Board bob@example.org l")
    bob = Client(services)
    await bob.start()
    await bob.login("bob@example.org")
    try:
        await run_transcript(
            bob,
            """
            C: b1 NOTIFY SET STATUS (mailboxes ({{board}} Nothing) (MessageNew MessageExpunge))
            S: * LIST (\\NoAccess) "/" {{board}}
            S: b1 OK NOTIFY completed
            """,
            {"board": "Shared/alice@example.org/Board"},
        )
    finally:
        await bob.finish()
