"""METADATA and METADATA-SERVER (RFC 5464): the RFC's examples, private versus shared
entries between users, the limits and their response codes, rights."""

from __future__ import annotations

import dataclasses

from mailkeep.imap.session import Services
from mailkeep.store.api import Account
from mailkeep.store.sqlstore import SqlStore

from .conftest import password_hash
from .support import Client, run_transcript


async def test_mailbox_entries_rfc_examples(alice: Client) -> None:
    await run_transcript(
        alice,
        """
        C: a1 SETMETADATA INBOX (/private/comment "My own comment")
        S: a1 OK SETMETADATA completed
        C: a2 SETMETADATA INBOX (/Shared/Comment "Shared comment" /shared/vendor/x/y {3+}
        C: 1 2)
        S: a2 OK SETMETADATA completed
        C: a3 GETMETADATA "INBOX" /private/comment
        S: * METADATA "INBOX" (/private/comment "My own comment")
        S: a3 OK GETMETADATA completed
        C: a4 GETMETADATA "INBOX" (/shared/comment /private/comment /shared/no)
        S: * METADATA "INBOX" (/shared/comment {{shared}} /private/comment {{mine}} /shared/no NIL)
        S: a4 OK GETMETADATA completed
        C: a5 GETMETADATA (DEPTH 1) INBOX /shared
        S: * METADATA "INBOX" (/shared/comment "Shared comment")
        S: a5 OK GETMETADATA completed
        C: a6 GETMETADATA (DEPTH infinity) INBOX /shared
        S: * METADATA "INBOX" (/shared/comment "Shared comment" /shared/vendor/x/y "1 2")
        S: a6 OK GETMETADATA completed
        C: a7 GETMETADATA (MAXSIZE 5 DEPTH infinity) INBOX (/shared /private)
        S: * METADATA "INBOX" (/shared/vendor/x/y "1 2")
        S: a7 OK [METADATA LONGENTRIES 14] GETMETADATA completed
        C: a8 SETMETADATA INBOX (/private/comment NIL)
        S: a8 OK SETMETADATA completed
        C: a9 GETMETADATA INBOX /private/comment
        S: * METADATA "INBOX" (/private/comment NIL)
        S: a9 OK GETMETADATA completed
        C: a10 SETMETADATA INBOX (/comment "x")
        S: a10 BAD entry name /comment does not begin with /private/ or /shared/
        C: a11 SETMETADATA Nothing (/shared/comment "x")
        S: a11 NO [NONEXISTENT] mailbox Nothing does not exist
        C: a12 SETMETADATA INBOX (/private/bin ~{3}
        S: + Ready for literal data
        C: a\x00b)
        S: a12 OK SETMETADATA completed
        """,
        {"mine": '"My own comment"', "shared": '"Shared comment"'},
    )
    responses = await alice.ok("a13 GETMETADATA INBOX /private/bin")
    assert responses == [b'* METADATA "INBOX" (/private/bin ~{3}\r\na\x00b)']


async def test_limits(alice: Client) -> None:
    big = "x" * (64 * 1024 + 1)
    responses = await alice.command(f"a1 SETMETADATA INBOX (/shared/big {{{len(big)}+}}\r\n{big})")
    assert responses[-1] == b"a1 NO [METADATA MAXSIZE 65536] values are limited to 65536 octets"
    many = " ".join(f'/shared/e{i} "v"' for i in range(101))
    responses = await alice.command(f"a2 SETMETADATA INBOX ({many})")
    assert responses[-1] == b"a2 NO [METADATA TOOMANY] at most 100 annotations are allowed here"
    # None was set: all or nothing.
    assert await alice.ok("a3 GETMETADATA (DEPTH 1) INBOX /shared") == []


async def test_server_entries(services: Services, store: SqlStore, alice: Client) -> None:
    await store.create_account("bob@example.org", password_hash(), None)
    admin = Client(dataclasses.replace(services, admins=frozenset({"bob@example.org"})))
    await admin.start()
    await admin.login("bob@example.org")
    try:
        await run_transcript(
            alice,
            """
            C: a1 SETMETADATA "" (/shared/admin "mailto:x@example.org")
            S: a1 NO [NOPERM] only administrators may set shared server annotations
            C: a2 SETMETADATA "" (/private/vendor/app/theme "dark")
            S: a2 OK SETMETADATA completed
            """,
        )
        await run_transcript(
            admin,
            """
            C: b1 SETMETADATA "" (/shared/admin "mailto:postmaster@example.org")
            S: b1 OK SETMETADATA completed
            C: b2 GETMETADATA (DEPTH infinity) "" (/private /shared)
            S: * METADATA "" (/shared/admin "mailto:postmaster@example.org")
            S: b2 OK GETMETADATA completed
            """,
        )
        await run_transcript(
            alice,
            """
            C: a3 GETMETADATA (DEPTH infinity) "" (/shared /private)
            S: * METADATA "" (/shared/admin "{{admin}}" /private/vendor/app/theme "dark")
            S: a3 OK GETMETADATA completed
            """,
            {"admin": "mailto:postmaster@example.org"},
        )
    finally:
        await admin.finish()
        await store.set_metadata(None, 0, [("/shared/admin", None)], max_entries=1)


async def test_private_and_shared_between_users(
    services: Services, store: SqlStore, account: Account, alice: Client
) -> None:
    await store.create_account("bob@example.org", password_hash(), None)
    await store.create_account("carol@example.org", password_hash(), None)
    await store.create_mailbox(account.id, "Team")
    await alice.ok("a1 SETACL Team bob@example.org lr")
    await alice.ok("a2 SETACL Team carol@example.org lp")
    await alice.ok('a3 SETMETADATA Team (/shared/comment "for the team" /private/comment "mine")')
    bob = Client(services)
    await bob.start()
    await bob.login("bob@example.org")
    carol = Client(services)
    await carol.start()
    await carol.login("carol@example.org")
    try:
        await run_transcript(
            bob,
            """
            C: b1 GETMETADATA Shared/alice@example.org/Team (/shared/comment /private/comment)
            S: * METADATA "{{team}}" (/shared/comment "for the team" /private/comment NIL)
            S: b1 OK GETMETADATA completed
            C: b2 SETMETADATA Shared/alice@example.org/Team (/private/comment "bob's")
            S: b2 OK SETMETADATA completed
            C: b3 GETMETADATA Shared/alice@example.org/Private /shared/comment
            S: b3 NO [NONEXISTENT] mailbox Shared/alice@example.org/Private does not exist
            """,
            {"team": "Shared/alice@example.org/Team"},
        )
        await run_transcript(
            alice,
            """
            C: a4 GETMETADATA Team /private/comment
            S: * METADATA "Team" (/private/comment "mine")
            S: a4 OK GETMETADATA completed
            C: a5 DELETEACL Team bob@example.org
            S: a5 OK DELETEACL completed
            """,
        )
        await run_transcript(
            bob,
            """
            C: b4 GETMETADATA Shared/alice@example.org/Team /shared/comment
            S: b4 NO [NONEXISTENT] mailbox Shared/alice@example.org/Team does not exist
            """,
        )
        await run_transcript(
            carol,
            """
            C: c1 GETMETADATA Shared/alice@example.org/Team /shared/comment
            S: * METADATA "Shared/alice@example.org/Team" (/shared/comment "for the team")
            S: c1 OK GETMETADATA completed
            """,
        )
        await alice.ok("a6 SETACL Team carol@example.org l")
        await run_transcript(
            carol,
            """
            C: c2 GETMETADATA Shared/alice@example.org/Team /shared/comment
            S: c2 NO [NOPERM] you may not read or write annotations of Shared/alice@example.org/Team
            """,
        )
    finally:
        await bob.finish()
        await carol.finish()
    # DELETE takes the mailbox's annotations along.
    team = await store.get_mailbox(account.id, "Team")
    assert team is not None
    await alice.ok("a7 DELETE Team")
    assert await store.list_metadata(team.id, account.id) == []
