"""CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, STATUS, SELECT, EXAMINE,
CLOSE, UNSELECT: RFC 9051 / RFC 3501 section 6.3 examples and the extensions."""

from __future__ import annotations

from mailkeep.store.api import Account
from mailkeep.store.sqlstore import SqlStore

from .conftest import deliver, message
from .support import Client, run_transcript


async def test_create_list_delete_rfc_example(alice: Client) -> None:
    await run_transcript(
        alice,
        """
        C: A003 CREATE owatagusiam/
        S~ A003 OK \\[MAILBOXID \\(F[0-9a-f]+\\)\\] CREATE completed
        C: A004 CREATE owatagusiam/blurdybloop
        S~ A004 OK \\[MAILBOXID \\(F[0-9a-f]+\\)\\] CREATE completed
        C: A005 CREATE blurdybloop
        S~ A005 OK \\[MAILBOXID \\(F[0-9a-f]+\\)\\] CREATE completed
        C: A006 CREATE blurdybloop
        S: A006 NO [ALREADYEXISTS] mailbox blurdybloop already exists
        C: A007 CREATE INBOX
        S: A007 NO [ALREADYEXISTS] mailbox INBOX already exists
        C: A008 CREATE foo/bar/zap
        S~ A008 OK \\[MAILBOXID \\(F[0-9a-f]+\\)\\] CREATE completed
        C: A682 LIST "" *
        S: * LIST (\\HasNoChildren) "/" INBOX
        S: * LIST (\\HasNoChildren \\Archive) "/" Archive
        S: * LIST (\\HasNoChildren \\Drafts) "/" Drafts
        S: * LIST (\\HasNoChildren \\Junk) "/" Junk
        S: * LIST (\\HasNoChildren \\Sent) "/" Sent
        S: * LIST (\\HasNoChildren \\Trash) "/" Trash
        S: * LIST (\\HasNoChildren) "/" blurdybloop
        S: * LIST (\\HasChildren) "/" foo
        S: * LIST (\\HasChildren) "/" foo/bar
        S: * LIST (\\HasNoChildren) "/" foo/bar/zap
        S: * LIST (\\HasChildren) "/" owatagusiam
        S: * LIST (\\HasNoChildren) "/" owatagusiam/blurdybloop
        S: A682 OK LIST completed
        C: A683 DELETE blurdybloop
        S: A683 OK DELETE completed
        C: A684 DELETE foo
        S: A684 NO [HASCHILDREN] mailbox foo has children: delete them first
        C: A685 DELETE foo/bar/zap
        S: A685 OK DELETE completed
        C: A686 DELETE nothere
        S: A686 NO [NONEXISTENT] mailbox nothere does not exist
        C: A687 DELETE inbox
        S: A687 NO [CANNOT] INBOX cannot be deleted
        C: A688 LIST "" foo/%
        S: * LIST (\\HasNoChildren) "/" foo/bar
        S: A688 OK LIST completed
        """,
    )


async def test_list_basic_forms(alice: Client) -> None:
    await alice.ok("a CREATE Lists/Work")
    await run_transcript(
        alice,
        """
        C: A101 LIST "" ""
        S: * LIST (\\Noselect) "/" ""
        S: A101 OK LIST completed
        C: A102 LIST "" %
        S: * LIST (\\HasNoChildren) "/" INBOX
        S: * LIST (\\HasNoChildren \\Archive) "/" Archive
        S: * LIST (\\HasNoChildren \\Drafts) "/" Drafts
        S: * LIST (\\HasNoChildren \\Junk) "/" Junk
        S: * LIST (\\HasChildren) "/" Lists
        S: * LIST (\\HasNoChildren \\Sent) "/" Sent
        S: * LIST (\\HasNoChildren \\Trash) "/" Trash
        S: A102 OK LIST completed
        C: A103 LIST Lists/ %
        S: * LIST (\\HasNoChildren) "/" Lists/Work
        S: A103 OK LIST completed
        C: A104 LIST "" inbox
        S: * LIST (\\HasNoChildren) "/" INBOX
        S: A104 OK LIST completed
        C: A105 LIST "" "In*"
        S: * LIST (\\HasNoChildren) "/" INBOX
        S: A105 OK LIST completed
        C: A106 LIST "" nothing*
        S: A106 OK LIST completed
        """,
    )


async def test_list_extended_subscribed_recursivematch(alice: Client) -> None:
    # The hierarchy of RFC 9051 6.3.9.8 (Fruit/Peach subscribed but deleted).
    for name in ("Fruit/Apple", "Fruit/Banana", "Fruit/Peach", "Tofu", "Vegetable/Broccoli"):
        await alice.ok(f"c CREATE {name}")
    await alice.ok("c CREATE Vegetable/Corn")
    for name in ("Fruit/Banana", "Fruit/Peach", "Vegetable", "Vegetable/Broccoli"):
        await alice.ok(f"s SUBSCRIBE {name}")
    await alice.ok("d DELETE Fruit/Peach")
    for name in ("Archive", "Drafts", "Junk", "Sent", "Trash"):
        await alice.ok(f"u UNSUBSCRIBE {name}")
    await run_transcript(
        alice,
        """
        C: A02 LIST (SUBSCRIBED) "" "*"
        S: * LIST (\\HasNoChildren \\Subscribed) "/" INBOX
        S: * LIST (\\HasNoChildren \\Subscribed) "/" Fruit/Banana
        S: * LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" Fruit/Peach
        S: * LIST (\\HasChildren \\Subscribed) "/" Vegetable
        S: * LIST (\\HasNoChildren \\Subscribed) "/" Vegetable/Broccoli
        S: A02 OK LIST completed
        C: A03 LIST () "" "%" RETURN (CHILDREN)
        S: * LIST (\\HasNoChildren) "/" INBOX
        S: * LIST (\\HasNoChildren \\Archive) "/" Archive
        S: * LIST (\\HasNoChildren \\Drafts) "/" Drafts
        S: * LIST (\\HasChildren) "/" Fruit
        S: * LIST (\\HasNoChildren \\Junk) "/" Junk
        S: * LIST (\\HasNoChildren \\Sent) "/" Sent
        S: * LIST (\\HasNoChildren) "/" Tofu
        S: * LIST (\\HasNoChildren \\Trash) "/" Trash
        S: * LIST (\\HasChildren) "/" Vegetable
        S: A03 OK LIST completed
        C: A07 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"
        S: * LIST (\\HasNoChildren \\Subscribed) "/" INBOX
        S: * LIST (\\HasChildren) "/" Fruit ("CHILDINFO" ("SUBSCRIBED"))
        S: * LIST (\\HasChildren \\Subscribed) "/" Vegetable ("CHILDINFO" ("SUBSCRIBED"))
        S: A07 OK LIST completed
        C: A08 LIST (SUBSCRIBED) "" "%"
        S: * LIST (\\HasNoChildren \\Subscribed) "/" INBOX
        S: * LIST (\\HasChildren \\Subscribed) "/" Vegetable
        S: A08 OK LIST completed
        C: A09 LIST (RECURSIVEMATCH) "" "%"
        S: A09 BAD RECURSIVEMATCH needs another selection option (RFC 5258 3)
        C: A10 LIST "" ("Tofu" "Veg*")
        S: * LIST (\\HasNoChildren) "/" Tofu
        S: * LIST (\\HasChildren) "/" Vegetable
        S: * LIST (\\HasNoChildren) "/" Vegetable/Broccoli
        S: * LIST (\\HasNoChildren) "/" Vegetable/Corn
        S: A10 OK LIST completed
        C: A11 LIST (SPECIAL-USE) "" "*"
        S: * LIST (\\HasNoChildren \\Archive) "/" Archive
        S: * LIST (\\HasNoChildren \\Drafts) "/" Drafts
        S: * LIST (\\HasNoChildren \\Junk) "/" Junk
        S: * LIST (\\HasNoChildren \\Sent) "/" Sent
        S: * LIST (\\HasNoChildren \\Trash) "/" Trash
        S: A11 OK LIST completed
        C: A12 LSUB "" "*"
        S: * LSUB () "/" INBOX
        S: * LSUB () "/" Fruit/Banana
        S: * LSUB () "/" Fruit/Peach
        S: * LSUB () "/" Vegetable
        S: * LSUB () "/" Vegetable/Broccoli
        S: A12 OK LSUB completed
        C: A13 LSUB "" "%"
        S: * LSUB () "/" INBOX
        S: * LSUB (\\Noselect) "/" Fruit
        S: * LSUB () "/" Vegetable
        S: A13 OK LSUB completed
        """,
    )


async def test_list_status(alice: Client, store: SqlStore, account: Account) -> None:
    await deliver(store, account, message("one"))
    await deliver(store, account, message("two"), flags=1)
    responses = await alice.ok('a LIST "" "INBOX" RETURN (STATUS (MESSAGES UNSEEN))')
    assert responses == [
        b'* LIST (\\HasNoChildren) "/" INBOX',
        b"* STATUS INBOX (MESSAGES 2 UNSEEN 1)",
    ]


async def test_status(alice: Client, store: SqlStore, account: Account) -> None:
    await deliver(store, account, message("one"))
    await deliver(store, account, message("two"), flags=1 | 8)
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    await run_transcript(
        alice,
        """
        C: A042 STATUS inbox (UIDNEXT MESSAGES)
        S: * STATUS INBOX (UIDNEXT 3 MESSAGES 2)
        S: A042 OK STATUS completed
        C: A043 STATUS INBOX (UNSEEN DELETED RECENT UIDVALIDITY)
        S: * STATUS INBOX (UNSEEN 1 DELETED 1 RECENT 2 UIDVALIDITY {{uidvalidity}})
        S: A043 OK STATUS completed
        C: A044 STATUS INBOX (MAILBOXID)
        S~ \\* STATUS INBOX \\(MAILBOXID \\(F[0-9a-f]+\\)\\)
        S: A044 OK STATUS completed
        C: A045 STATUS Nowhere (MESSAGES)
        S: A045 NO [NONEXISTENT] mailbox Nowhere does not exist
        """,
        {"uidvalidity": inbox.uidvalidity},
    )
    size = await alice.ok("a STATUS INBOX (SIZE APPENDLIMIT)")
    assert size[0].startswith(b"* STATUS INBOX (SIZE ")
    assert size[0].endswith(b" APPENDLIMIT 52428800)")


async def test_rename(alice: Client, store: SqlStore, account: Account) -> None:
    await deliver(store, account, message("one"))
    await run_transcript(
        alice,
        """
        C: A1 CREATE foo/bar
        S~ A1 OK \\[MAILBOXID \\(F[0-9a-f]+\\)\\] CREATE completed
        C: A684 RENAME foo zowie
        S: A684 OK RENAME completed
        C: A685 LIST "" z*
        S: * LIST (\\HasChildren) "/" zowie
        S: * LIST (\\HasNoChildren) "/" zowie/bar
        S: A685 OK LIST completed
        C: A686 RENAME nothere x
        S: A686 NO [NONEXISTENT] mailbox nothere does not exist
        C: A687 RENAME zowie Sent
        S: A687 NO [ALREADYEXISTS] mailbox Sent already exists
        C: Z433 RENAME INBOX old-mail
        S: Z433 OK RENAME completed
        C: Z434 STATUS INBOX (MESSAGES)
        S: * STATUS INBOX (MESSAGES 0)
        S: Z434 OK STATUS completed
        C: Z435 STATUS old-mail (MESSAGES)
        S: * STATUS old-mail (MESSAGES 1)
        S: Z435 OK STATUS completed
        """,
    )


async def test_subscribe_unsubscribe(alice: Client) -> None:
    await run_transcript(
        alice,
        """
        C: A002 SUBSCRIBE #news.comp.mail.mime
        S: A002 OK SUBSCRIBE completed
        C: A003 UNSUBSCRIBE #news.comp.mail.mime
        S: A003 OK UNSUBSCRIBE completed
        C: A004 UNSUBSCRIBE never-subscribed
        S: A004 OK UNSUBSCRIBE completed
        C: A005 SUBSCRIBE "bad//name"
        S: A005 NO [CANNOT] mailbox name has an empty level (leading, trailing or // )
        """,
    )


async def test_create_special_use(alice: Client) -> None:
    await run_transcript(
        alice,
        """
        C: t1 CREATE MySpecial (USE (\\Drafts \\Sent))
        S: t1 NO [USEATTR] a mailbox can have only one special use here
        C: t2 CREATE MySpecial (USE (\\All))
        S: t2 NO [USEATTR] cannot create a \\All mailbox
        C: t3 CREATE MyOutbox (USE (\\Sent))
        S~ t3 OK \\[MAILBOXID \\(F[0-9a-f]+\\)\\] CREATE completed
        C: t4 LIST "" MyOutbox
        S: * LIST (\\HasNoChildren \\Sent) "/" MyOutbox
        S: t4 OK LIST completed
        """,
    )


async def test_mailbox_names_modified_utf7_and_utf8(alice: Client) -> None:
    await run_transcript(
        alice,
        """
        C: a1 CREATE "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        S~ a1 OK \\[MAILBOXID \\(F[0-9a-f]+\\)\\] CREATE completed
        C: a2 LIST "~peter/mail/" *
        S: * LIST (\\HasChildren) "/" ~peter/mail/&U,BTFw-
        S: * LIST (\\HasNoChildren) "/" ~peter/mail/&U,BTFw-/&ZeVnLIqe-
        S: a2 OK LIST completed
        C: a3 CREATE "bad&name"
        S~ a3 NO \\[CANNOT\\] .*
        C: a4 ENABLE UTF8=ACCEPT
        S: * ENABLED UTF8=ACCEPT
        S: a4 OK ENABLE completed
        C: a5 LIST "~peter/mail/" *
        S: * LIST (\\HasChildren) "/" "~peter/mail/台北"
        S: * LIST (\\HasNoChildren) "/" "~peter/mail/台北/日本語"
        S: a5 OK LIST completed
        """,
    )


async def test_select_examine_rfc3501(alice: Client, store: SqlStore, account: Account) -> None:
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    # \\Recent is per process and starts with the first look at the mailbox.
    await store.snapshot(inbox.id)
    await deliver(store, account, message("one"), flags=1)
    await deliver(store, account, message("two"))
    await run_transcript(
        alice,
        """
        C: A142 SELECT INBOX
        S: * FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)
        S: * 2 EXISTS
        S: * 2 RECENT
        S: * OK [UNSEEN 2] message 2 is first unseen
        S: * OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft \\*)] flags permitted
        S: * OK [UIDVALIDITY {{v}}] UIDs valid
        S: * OK [UIDNEXT 3] predicted next UID
        S~ \\* OK \\[HIGHESTMODSEQ \\d+\\] highest MODSEQ
        S~ \\* OK \\[MAILBOXID \\(F[0-9a-f]+\\)\\] mailbox ID
        S: A142 OK [READ-WRITE] SELECT completed
        C: A932 EXAMINE INBOX
        S: * FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)
        S: * 2 EXISTS
        S: * 0 RECENT
        S: * OK [UNSEEN 2] message 2 is first unseen
        S: * OK [PERMANENTFLAGS ()] flags permitted
        S: * OK [UIDVALIDITY {{v}}] UIDs valid
        S: * OK [UIDNEXT 3] predicted next UID
        S~ \\* OK \\[HIGHESTMODSEQ \\d+\\] highest MODSEQ
        S~ \\* OK \\[MAILBOXID \\(F[0-9a-f]+\\)\\] mailbox ID
        S: A932 OK [READ-ONLY] EXAMINE completed
        C: A933 SELECT nothere
        S: A933 NO [NONEXISTENT] mailbox nothere does not exist
        C: A934 CLOSE
        S: A934 BAD no mailbox selected (SELECT or EXAMINE first)
        """,
        {"v": inbox.uidvalidity},
    )


async def test_select_rev2(alice: Client, store: SqlStore, account: Account) -> None:
    await deliver(store, account, message("one"))
    drafts = await store.get_mailbox(account.id, "Drafts")
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert drafts is not None
    assert inbox is not None
    await run_transcript(
        alice,
        """
        C: e ENABLE IMAP4rev2
        S: * ENABLED IMAP4rev2
        S: e OK ENABLE completed
        C: A142 SELECT INBOX
        S: * FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)
        S: * 1 EXISTS
        S: * OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft \\*)] flags permitted
        S: * OK [UIDVALIDITY {{v}}] UIDs valid
        S: * OK [UIDNEXT 2] predicted next UID
        S~ \\* OK \\[HIGHESTMODSEQ \\d+\\] highest MODSEQ
        S~ \\* OK \\[MAILBOXID \\(F[0-9a-f]+\\)\\] mailbox ID
        S: * LIST () "/" INBOX
        S: A142 OK [READ-WRITE] SELECT completed
        C: A143 SELECT Drafts
        S: * OK [CLOSED] previous mailbox is now closed
        S: * FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)
        S: * 0 EXISTS
        S: * OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft \\*)] flags permitted
        S: * OK [UIDVALIDITY {{d}}] UIDs valid
        S: * OK [UIDNEXT 1] predicted next UID
        S~ \\* OK \\[HIGHESTMODSEQ \\d+\\] highest MODSEQ
        S~ \\* OK \\[MAILBOXID \\(F[0-9a-f]+\\)\\] mailbox ID
        S: * LIST () "/" Drafts
        S: A143 OK [READ-WRITE] SELECT completed
        C: A144 UNSELECT
        S: A144 OK UNSELECT completed
        C: A145 UNSELECT
        S: A145 BAD no mailbox selected (SELECT or EXAMINE first)
        """,
        {"v": inbox.uidvalidity, "d": drafts.uidvalidity},
    )


async def test_failed_select_leaves_selected_state(alice: Client) -> None:
    await alice.ok("a SELECT INBOX")
    assert (await alice.command("b SELECT nothere"))[-1].startswith(b"b NO [NONEXISTENT]")
    assert await alice.command("c CLOSE") == [
        b"c BAD no mailbox selected (SELECT or EXAMINE first)"
    ]


async def test_delete_selected_mailbox(alice: Client) -> None:
    await alice.ok("a CREATE Temp")
    await alice.ok("b SELECT Temp")
    assert await alice.command("c DELETE Temp") == [
        b"* OK [CLOSED] mailbox closed",
        b"c OK DELETE completed",
    ]
    assert await alice.command("d NOOP") == [b"d OK NOOP completed"]


async def test_mailbox_deleted_by_another_session(
    alice: Client, new_client: object, services: object
) -> None:
    from .support import Client as C

    await alice.ok("a CREATE Temp")
    await alice.ok("b SELECT Temp")
    other = C(alice.services)
    await other.start()
    await other.login()
    await other.ok("x DELETE Temp")
    assert await alice.command("c NOOP") == [b"c OK NOOP completed"]
    assert await alice.line() == b"* BYE the selected mailbox was deleted"
    await other.finish()


async def test_mailbox_deleted_while_idling(alice: Client) -> None:
    from .support import Client as C

    await alice.ok("a CREATE Temp")
    await alice.ok("b SELECT Temp")
    alice.send("i IDLE")
    assert await alice.line() == b"+ idling"
    other = C(alice.services)
    await other.start()
    await other.login()
    await other.ok("x DELETE Temp")
    assert await alice.line() == b"* BYE the selected mailbox was deleted"
    assert alice.task is not None
    await alice.task
    await other.finish()
