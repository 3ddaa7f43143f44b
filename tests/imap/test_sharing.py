"""Sharing mailboxes between users (RFC 4314 ACL, RFC 2342 namespaces, RFC 8440).

The acceptance scenario: alice grants bob ``lrswi`` on a folder; bob lists, reads and
flags there, cannot delete it or see alice's other folders, and loses access on his very
next command once alice revokes it. Around it: the ACL commands themselves, the rights
each command checks, identical answers for a mailbox that does not exist and one bob may
not see, several users working one mailbox at once, and the public namespace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from mailkeep.auth.passwords import verify_password
from mailkeep.imap.session import Services
from mailkeep.mail.flags import SystemFlag
from mailkeep.store.api import Account, FetchField
from mailkeep.store.sqlstore import SqlStore

from .conftest import deliver, message, password_hash
from .support import Client, run_transcript

BOB = "bob@example.org"
CAROL = "carol@example.org"
SHARED = "Shared/alice@example.org"
OWNER_ACL = "alice@example.org lrswipkxteacd"


@pytest.fixture
async def bob_account(store: SqlStore) -> Account:
    return await store.create_account(BOB, password_hash(), None)


class Sessions:
    """Logged-in sessions of any account, ended with the test."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.started: list[Client] = []

    async def login(self, address: str, services: Services | None = None) -> Client:
        client = Client(services or self.services)
        await client.start()
        await client.login(address)
        self.started.append(client)
        return client


@pytest.fixture
async def sessions(services: Services, bob_account: Account) -> AsyncIterator[Sessions]:
    made = Sessions(services)
    yield made
    for client in made.started:
        await client.finish()


@pytest.fixture
async def bob(sessions: Sessions) -> Client:
    return await sessions.login(BOB)


@pytest.fixture
async def team(store: SqlStore, account: Account, bob_account: Account) -> int:
    """alice's folder Team with two messages, and Private, which bob is not granted."""
    box = await store.create_mailbox(account.id, "Team")
    await store.create_mailbox(account.id, "Private")
    await deliver(store, account, message("plan"), "Team")
    await deliver(store, account, message("budget"), "Team")
    return box.id


async def test_acceptance_share_read_flag_revoke(
    alice: Client, bob: Client, team: int, store: SqlStore
) -> None:
    await run_transcript(
        alice,
        """
        C: a1 SETACL Team bob@example.org lrswi
        S: a1 OK SETACL completed
        C: a2 GETACL Team
        S: * ACL Team alice@example.org lrswipkxteacd bob@example.org lrswi
        S: a2 OK GETACL completed
        """,
    )
    await run_transcript(
        bob,
        f"""
        C: b1 LIST "" "*"
        S: * LIST (\\HasNoChildren) "/" INBOX
        S: * LIST (\\HasNoChildren \\Archive) "/" Archive
        S: * LIST (\\HasNoChildren \\Drafts) "/" Drafts
        S: * LIST (\\HasNoChildren \\Junk) "/" Junk
        S: * LIST (\\HasNoChildren \\Sent) "/" Sent
        S: * LIST (\\HasNoChildren \\Trash) "/" Trash
        S: * LIST (\\Noselect \\HasChildren) "/" Shared
        S: * LIST (\\Noselect \\HasChildren) "/" {SHARED}
        S: * LIST (\\HasNoChildren) "/" {SHARED}/Team
        S: b1 OK LIST completed
        C: b2 MYRIGHTS {SHARED}/Team
        S: * MYRIGHTS {SHARED}/Team lrswi
        S: b2 OK MYRIGHTS completed
        C: b3 SELECT {SHARED}/Team
        S: * FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)
        S: * 2 EXISTS
        S: * 2 RECENT
        S: * OK [UNSEEN 1] message 1 is first unseen
        S: * OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Draft \\*)] flags permitted
        S~ \\* OK \\[UIDVALIDITY \\d+\\] UIDs valid
        S: * OK [UIDNEXT 3] predicted next UID
        S~ \\* OK \\[HIGHESTMODSEQ \\d+\\] highest MODSEQ
        S~ \\* OK \\[MAILBOXID \\(F[0-9a-f]+\\)\\] mailbox ID
        S: b3 OK [READ-WRITE] SELECT completed
        C: b4 FETCH 1 (FLAGS BODY[HEADER.FIELDS (SUBJECT)])
        S: * 1 FETCH (FLAGS (\\Seen \\Recent) BODY[HEADER.FIELDS (SUBJECT)] {{17}}
        S: Subject: plan
        S:
        S: )
        S: b4 OK FETCH completed
        C: b5 STORE 2 +FLAGS ($Important \\Flagged)
        S: * FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Important)
        S: * 2 FETCH (FLAGS (\\Flagged \\Recent $Important))
        S: b5 OK STORE completed
        C: b6 STORE 2 +FLAGS (\\Deleted)
        S: b6 NO [NOPERM] you may not change these flags in this mailbox
        C: b7 EXPUNGE
        S: b7 NO [NOPERM] you no longer have the right to expunge in this mailbox
        C: b8 DELETE {SHARED}/Team
        S: b8 NO [NOPERM] you lack the right 'x' on mailbox {SHARED}/Team
        C: b9 STATUS {SHARED}/Private (MESSAGES)
        S: b9 NO [NONEXISTENT] mailbox {SHARED}/Private does not exist
        """,
    )
    # What bob did is what alice sees.
    rows = await store.fetch(team, [1, 2], FetchField.FLAGS)
    assert [(r.flags, r.keywords) for r in rows] == [
        (int(SystemFlag.SEEN), ()),
        (int(SystemFlag.FLAGGED), ("$Important",)),
    ]
    await alice.ok("a3 DELETEACL Team bob@example.org")
    await run_transcript(
        bob,
        f"""
        C: b10 FETCH 1 FLAGS
        S: b10 NO [NOPERM] you no longer have the right to read messages in this mailbox
        C: b11 STATUS {SHARED}/Team (MESSAGES)
        S: b11 NO [NONEXISTENT] mailbox {SHARED}/Team does not exist
        C: b12 LIST "" "Shared*"
        S: b12 OK LIST completed
        """,
    )


async def test_nonexistent_and_hidden_answer_alike(
    alice: Client, bob: Client, team: int, store: SqlStore
) -> None:
    """RFC 4314 6: without a grant, bob learns nothing, not even whether alice exists."""
    hidden = f"{SHARED}/Private"
    absent = f"{SHARED}/Nothing"
    nobody = "Shared/nobody@example.org/INBOX"
    for name in (hidden, absent, nobody):
        got = []
        for command in (
            f"SELECT {name}",
            f"EXAMINE {name}",
            f"STATUS {name} (MESSAGES)",
            f"GETACL {name}",
            f"MYRIGHTS {name}",
            f"LISTRIGHTS {name} anyone",
            f"SETACL {name} bob@example.org lr",
            f"DELETE {name}",
            f"RENAME {name} {SHARED}/Elsewhere",
            f"APPEND {name} {{5+}}\r\nhello",
            f"CREATE {name}/Child",
        ):
            response = (await bob.command(f"t {command}"))[-1]
            got.append(response.replace(name.encode(), b"NAME"))
        if name == hidden:
            first = got
        else:
            assert got == first, name
    assert first[0] == b"t NO [NONEXISTENT] mailbox NAME does not exist"
    assert first[9] == b"t NO [TRYCREATE] mailbox NAME does not exist"
    assert first[10] == b"t NO [NOPERM] you may not create mailbox NAME/Child"
    listed = await bob.ok('l LIST "" "*"')
    assert not any(b"Shared" in line for line in listed)


async def test_acl_commands(alice: Client, bob: Client, team: int) -> None:
    await run_transcript(
        alice,
        """
        C: a1 SETACL Team Bob@Example.ORG lr
        S: a1 OK SETACL completed
        C: a2 SETACL Team bob@example.org +wd
        S: a2 OK SETACL completed
        C: a3 SETACL Team anyone l
        S: a3 OK SETACL completed
        C: a4 GETACL Team
        S: * ACL Team alice@example.org lrswipkxteacd anyone l bob@example.org lrwted
        S: a4 OK GETACL completed
        C: a5 SETACL Team bob@example.org -td
        S: a5 OK SETACL completed
        C: a6 LISTRIGHTS Team Bob
        S: * LISTRIGHTS Team Bob "" l r s w i p k x t e a c d
        S: a6 OK LISTRIGHTS completed
        C: a7 LISTRIGHTS Team alice@example.org
        S: * LISTRIGHTS Team alice@example.org lrswipkxteacd
        S: a7 OK LISTRIGHTS completed
        C: a8 SETACL Team bob@example.org lrQ
        S: a8 BAD uppercase rights are not allowed (RFC 4314 2)
        C: a9 SETACL Team bob@example.org lrq
        S: a9 BAD the 'q' right is not supported
        C: a10 SETACL Team alice@example.org l
        S: a10 NO [CANNOT] the owner always has every right; they cannot be changed
        C: a11 SETACL Team -bob@example.org w
        S: a11 NO [CANNOT] negative rights are not supported
        C: a12 MYRIGHTS Team
        S: * MYRIGHTS Team lrswipkxteacd
        S: a12 OK MYRIGHTS completed
        C: a13 DELETEACL Team anyone
        S: a13 OK DELETEACL completed
        C: a14 GETACL Team
        S: * ACL Team alice@example.org lrswipkxteacd bob@example.org lrw
        S: a14 OK GETACL completed
        C: a15 LIST "" Team RETURN (MYRIGHTS)
        S: * LIST (\\HasNoChildren) "/" Team
        S: * MYRIGHTS Team lrswipkxteacd
        S: a15 OK LIST completed
        """,
    )
    # Without "a", bob may look at his own rights but not at the list.
    await run_transcript(
        bob,
        f"""
        C: b1 GETACL {SHARED}/Team
        S: b1 NO [NOPERM] you lack the right 'a' on mailbox {SHARED}/Team
        C: b2 SETACL {SHARED}/Team carol@example.org lr
        S: b2 NO [NOPERM] you lack the right 'a' on mailbox {SHARED}/Team
        C: b3 MYRIGHTS {SHARED}/Team
        S: * MYRIGHTS {SHARED}/Team lrw
        S: b3 OK MYRIGHTS completed
        """,
    )
    await alice.ok("a16 SETACL Team bob@example.org +a")
    await run_transcript(
        bob,
        f"""
        C: b4 SETACL {SHARED}/Team carol@example.org lr
        S: b4 OK SETACL completed
        C: b5 GETACL {SHARED}/Team
        S: * ACL {SHARED}/Team {OWNER_ACL} bob@example.org lrwa carol@example.org lr
        S: b5 OK GETACL completed
        """,
    )


async def test_rights_of_each_command(
    alice: Client, bob: Client, team: int, store: SqlStore, account: Account
) -> None:
    """RFC 4314 4, right by right."""
    await alice.ok("a1 SETACL Team bob@example.org lr")
    await alice.ok("a2 SETACL INBOX bob@example.org lrs")
    await run_transcript(
        bob,
        f"""
        # "lr" alone: read-only, nothing to set, nothing to append.
        C: b1 SELECT {SHARED}/Team
        S: * FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)
        S: * 2 EXISTS
        S: * 2 RECENT
        S: * OK [UNSEEN 1] message 1 is first unseen
        S: * OK [PERMANENTFLAGS ()] flags permitted
        S~ \\* OK \\[UIDVALIDITY \\d+\\] UIDs valid
        S: * OK [UIDNEXT 3] predicted next UID
        S~ \\* OK \\[HIGHESTMODSEQ \\d+\\] highest MODSEQ
        S~ \\* OK \\[MAILBOXID \\(F[0-9a-f]+\\)\\] mailbox ID
        S: b1 OK [READ-ONLY] SELECT completed
        C: b2 FETCH 1 BODY[TEXT]
        S: * 1 FETCH (BODY[TEXT] {{14}}
        S: Hello there.
        S: )
        S: b2 OK FETCH completed
        C: b3 STORE 1 +FLAGS (\\Seen)
        S: b3 NO the mailbox is read-only (EXAMINE): flags cannot be changed
        C: b4 APPEND {SHARED}/Team {{9+}}
        C: Subject:
        S: b4 NO [NOPERM] you lack the right 'i' on mailbox {SHARED}/Team
        C: b5 COPY 1 {SHARED}/INBOX
        S: b5 NO [NOPERM] you lack the right 'i' on mailbox {SHARED}/INBOX
        C: b6 COPY 1 INBOX
        S~ b6 OK \\[COPYUID \\d+ 1 1\\] COPY completed
        C: b7 MOVE 2 INBOX
        S: b7 NO the mailbox is read-only (EXAMINE): messages cannot be moved out
        C: b8 CREATE {SHARED}/Team/Sub
        S: b8 NO [NOPERM] you may not create mailbox {SHARED}/Team/Sub
        C: b9 CREATE {SHARED}/Top
        S: b9 NO [NOPERM] you may not create mailbox {SHARED}/Top
        C: b10 CLOSE
        S: b10 OK CLOSE completed
        """,
    )
    # Reading without "s" did not set \Seen; the copy in bob's INBOX is his.
    rows = await store.fetch(team, [1], FetchField.FLAGS)
    assert rows[0].flags == 0
    # Appending keeps only the flags the rights allow (RFC 4314 4): "s" on alice's INBOX.
    await alice.ok("a3 SETACL INBOX bob@example.org +i")
    await bob.ok(f"b11 APPEND {SHARED}/INBOX (\\Seen \\Flagged $Tag) {{9+}}\r\nSubject:\r\n")
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    (row,) = await store.fetch(inbox.id, [inbox.uidnext - 1], FetchField.FLAGS)
    assert (row.flags, row.keywords) == (int(SystemFlag.SEEN), ())
    # "k" lets bob create below Team; the new folder inherits Team's ACL, so he sees it.
    await alice.ok("a4 SETACL Team bob@example.org +kxte")
    await run_transcript(
        bob,
        f"""
        C: b12 CREATE {SHARED}/Team/Sub
        S~ b12 OK \\[MAILBOXID \\(F[0-9a-f]+\\)\\] CREATE completed
        C: b13 MYRIGHTS {SHARED}/Team/Sub
        S: * MYRIGHTS {SHARED}/Team/Sub lrkxtecd
        S: b13 OK MYRIGHTS completed
        C: b14 RENAME {SHARED}/Team/Sub {SHARED}/Team/Renamed
        S: b14 OK RENAME completed
        C: b15 RENAME {SHARED}/Team/Renamed Mine
        S: b15 NO [CANNOT] a mailbox cannot be renamed into another namespace
        C: b16 DELETE {SHARED}/Team/Renamed
        S: b16 OK DELETE completed
        C: b17 SELECT {SHARED}/Team
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S: * OK [PERMANENTFLAGS (\\Deleted)] flags permitted
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S: b17 OK [READ-WRITE] SELECT completed
        C: b18 STORE 1:2 +FLAGS.SILENT (\\Deleted \\Seen)
        S: b18 OK STORE completed
        C: b19 EXPUNGE
        S: * 1 EXPUNGE
        S: * 1 EXPUNGE
        S: b19 OK EXPUNGE completed
        """,
    )
    assert [m.name for m in await store.list_mailboxes(account.id) if "Team" in m.name] == ["Team"]


async def test_several_users_on_one_mailbox(
    alice: Client, bob: Client, team: int, store: SqlStore, account: Account
) -> None:
    """Each sees the other's flag changes, appends and expunges as they happen."""
    await alice.ok("a1 SETACL Team bob@example.org lrswite")
    await alice.ok("a2 SELECT Team")
    await bob.ok(f"b1 SELECT {SHARED}/Team")
    await bob.ok("b2 STORE 1 +FLAGS.SILENT (\\Answered)")
    await run_transcript(
        alice,
        """
        C: a3 NOOP
        S: * 1 FETCH (UID 1 FLAGS (\\Answered \\Recent))
        S: a3 OK NOOP completed
        """,
    )
    bob.send("b3 IDLE")
    assert await bob.line() == b"+ idling"
    await alice.ok("a4 STORE 2 +FLAGS.SILENT (\\Deleted)")
    await alice.ok("a5 EXPUNGE")
    await deliver(store, account, message("news"), "Team")
    told = [await bob.line()]
    while told[-1] != b"* 2 EXISTS":
        told.append(await bob.line())
    assert b"* 2 EXPUNGE" in told
    bob.send("DONE")
    assert (await bob.until("b3"))[-1] == b"b3 OK IDLE terminated"
    # Deleting the mailbox under bob's feet ends his session as it does alice's own.
    await alice.ok("a6 UNSELECT")
    await alice.ok("a7 DELETE Team")
    assert (await bob.command("b4 NOOP"))[-1] == b"b4 OK NOOP completed"
    assert await bob.line() == b"* BYE the selected mailbox was deleted"


async def test_quota_of_the_owner_applies(
    alice: Client, bob: Client, team: int, store: SqlStore, account: Account
) -> None:
    await alice.ok("a1 SETACL Team bob@example.org lri")
    usage = await store.get_account_by_id(account.id)
    assert usage is not None
    await store.set_quota(account.id, usage.used_bytes + 20, None)
    responses = await bob.command(f"b1 APPEND {SHARED}/Team {{30+}}\r\n{'x' * 28}\r\n")
    assert responses[-1].startswith(b"b1 NO [OVERQUOTA] ")


async def test_public_namespace(services: Services, store: SqlStore, sessions: Sessions) -> None:
    admin_services = dataclasses.replace(services, admins=frozenset({"alice@example.org"}))
    admin = await sessions.login("alice@example.org", admin_services)
    bob = await sessions.login(BOB, admin_services)
    await run_transcript(
        bob,
        """
        C: b1 CREATE Public/News
        S: b1 NO [NOPERM] you may not create mailbox Public/News
        C: b2 NAMESPACE
        S: * NAMESPACE (("" "/")) (("Shared/" "/")) (("Public/" "/"))
        S: b2 OK NAMESPACE completed
        """,
    )
    await run_transcript(
        admin,
        """
        C: a1 CREATE Public/News
        S~ a1 OK \\[MAILBOXID \\(F[0-9a-f]+\\)\\] CREATE completed
        C: a2 SETACL Public/News anyone lr
        S: a2 OK SETACL completed
        C: a3 GETACL Public/News
        S: * ACL Public/News anyone lr
        S: a3 OK GETACL completed
        C: a4 APPEND Public/News {9+}
        C: Subject:
        S~ a4 OK \\[APPENDUID \\d+ 1\\] APPEND completed
        """,
    )
    await run_transcript(
        bob,
        """
        C: b3 LIST "" "Public*"
        S: * LIST (\\Noselect \\HasChildren) "/" Public
        S: * LIST (\\HasNoChildren) "/" Public/News
        S: b3 OK LIST completed
        C: b4 STATUS Public/News (MESSAGES)
        S: * STATUS Public/News (MESSAGES 1)
        S: b4 OK STATUS completed
        C: b5 DELETE Public/News
        S: b5 NO [NOPERM] you lack the right 'x' on mailbox Public/News
        """,
    )
    # The public pseudo-account cannot log in: no password verifies against its hash.
    credentials = await store.get_credentials("#public")
    assert credentials is not None
    assert not verify_password(credentials.password_hash, "")


async def test_shared_quota_root_list_status_and_copy_flags(
    alice: Client, bob: Client, team: int, store: SqlStore, account: Account
) -> None:
    """A shared mailbox counts against its owner's quota root; LIST-STATUS covers it;
    COPY into it keeps only the flags the rights allow (RFC 4314 4)."""
    await store.set_quota(account.id, None, 50)
    await alice.ok("a1 SETACL Team bob@example.org lrsi")
    await run_transcript(
        bob,
        f"""
        C: b1 GETQUOTAROOT {SHARED}/Team
        S: * QUOTAROOT {SHARED}/Team alice@example.org
        S: * QUOTA alice@example.org (MESSAGE 2 50)
        S: b1 OK GETQUOTAROOT completed
        C: b2 GETQUOTA alice@example.org
        S: * QUOTA alice@example.org (MESSAGE 2 50)
        S: b2 OK GETQUOTA completed
        C: b3 LIST "" "Shared/*" RETURN (STATUS (MESSAGES UNSEEN))
        S: * LIST (\\Noselect \\HasChildren) "/" {SHARED}
        S: * LIST (\\HasNoChildren) "/" {SHARED}/Team
        S: * STATUS {SHARED}/Team (MESSAGES 2 UNSEEN 2)
        S: b3 OK LIST completed
        C: b4 APPEND INBOX (\\Seen \\Flagged $Tag) {{9+}}
        C: Subject:
        S~ b4 OK \\[APPENDUID \\d+ 1\\] APPEND completed
        C: b5 SELECT INBOX
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S: b5 OK [READ-WRITE] SELECT completed
        C: b6 COPY 1 {SHARED}/Team
        S~ b6 OK \\[COPYUID \\d+ 1 3\\] COPY completed
        """,
    )
    (row,) = await store.fetch(team, [3], FetchField.FLAGS)
    assert (row.flags, row.keywords) == (int(SystemFlag.SEEN), ())
    await store.create_account(CAROL, password_hash(), None)
    carol = Client(bob.services)
    await carol.start()
    await carol.login(CAROL)
    try:
        responses = await carol.command("c1 GETQUOTA alice@example.org")
        assert responses == [b"c1 NO [NONEXISTENT] there is no quota root 'alice@example.org'"]
    finally:
        await carol.finish()


async def test_special_uses_stay_with_their_owner(alice: Client, bob: Client, team: int) -> None:
    """alice's Sent, shared, is not bob's Sent folder: no \\Sent on it for him."""
    await alice.ok("a1 SETACL Sent bob@example.org lr")
    await run_transcript(
        bob,
        f"""
        C: b1 LIST "" "Shared/*"
        S: * LIST (\\Noselect \\HasChildren) "/" {SHARED}
        S: * LIST (\\HasNoChildren) "/" {SHARED}/Sent
        S: b1 OK LIST completed
        C: b2 LIST (SPECIAL-USE) "" "*"
        S: * LIST (\\HasNoChildren \\Archive) "/" Archive
        S: * LIST (\\HasNoChildren \\Drafts) "/" Drafts
        S: * LIST (\\HasNoChildren \\Junk) "/" Junk
        S: * LIST (\\HasNoChildren \\Sent) "/" Sent
        S: * LIST (\\HasNoChildren \\Trash) "/" Trash
        S: b2 OK LIST completed
        """,
    )


async def test_replace_needs_the_rights_of_append_and_expunge(
    alice: Client, bob: Client, team: int, store: SqlStore
) -> None:
    """RFC 8508 / RFC 4314 4: REPLACE is APPEND ("i") plus \\Deleted and EXPUNGE ("te")."""
    await alice.ok("a1 SETACL Team bob@example.org lrsi")
    await bob.ok(f"b1 SELECT {SHARED}/Team")
    responses = await bob.command(f"b2 UID REPLACE 1 {SHARED}/Team {{9+}}\r\nSubject:\r\n")
    assert responses[-1] == (
        b"b2 NO [NOPERM] you no longer have the right to replace messages in this mailbox"
    )
    assert [r.uid for r in await store.fetch(team, [1, 2], FetchField.FLAGS)] == [1, 2]
    await alice.ok("a2 SETACL Team bob@example.org +te")
    await bob.ok(f"b3 UID REPLACE 1 {SHARED}/Team {{9+}}\r\nSubject:\r\n")
    assert [r.uid for r in await store.fetch(team, [1, 2, 3], FetchField.FLAGS)] == [2, 3]
