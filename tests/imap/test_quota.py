"""QUOTA (RFC 9208): the numbers IMAP shows are the ones ``mailkeep user list`` shows and
delivery enforces; GETQUOTA/GETQUOTAROOT/SETQUOTA; OVERQUOTA on APPEND, COPY and MOVE."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from pathlib import Path

from click.testing import CliRunner

from mailkeep.cli import main
from mailkeep.config import load
from mailkeep.imap.session import Services
from mailkeep.smtp.delivery import Delivery, Envelope, Status
from mailkeep.store.api import Account
from mailkeep.store.factory import open_store
from mailkeep.store.sqlstore import SqlStore

from .conftest import Sleeps, deliver, make_services, message, password_hash
from .support import Client, run_transcript

_QUOTA = re.compile(rb'\* QUOTA "" \(STORAGE (\d+) (\d+) MESSAGE (\d+) (\d+)\)')


def _cli(data: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--data", str(data), *args])
    assert result.exit_code == 0, result.output
    return result.output


async def test_numbers_match_user_list_and_delivery(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await asyncio.to_thread(_cli, data, "init", "--hostname", "mail.test")
    config = load(data)
    store = await open_store(config.store.url, data, pool_size=1)
    client = Client(make_services(store, Sleeps()))
    try:
        account = await store.create_account(
            "alice@mail.test", password_hash(), None, quota_bytes=6000, quota_messages=5
        )
        delivery = Delivery(store, "mail.test")
        envelope = Envelope("bob@example.org", "client.test")
        for subject in ("one", "two"):
            (outcome,) = await delivery.deliver(message(subject), envelope, ["alice@mail.test"])
            assert outcome.delivered
        await client.start()
        await client.login("alice@mail.test")
        responses = await client.ok("q GETQUOTAROOT INBOX")
        assert responses[0] == b'* QUOTAROOT INBOX ""'
        match = _QUOTA.fullmatch(responses[1])
        assert match is not None, responses
        storage, storage_limit, count, count_limit = (int(g) for g in match.groups())
        listed = json.loads(await asyncio.to_thread(_cli, data, "user", "list", "--json"))
        (row,) = [r for r in listed if r["address"] == "alice@mail.test"]
        assert storage == -(-row["used_bytes"] // 1024)
        assert storage_limit == -(-row["quota_bytes"] // 1024) == 6
        assert (count, count_limit) == (row["messages"], row["quota_messages"]) == (2, 5)
        # The boundary is the same octet for APPEND and for delivery.
        room = row["quota_bytes"] - row["used_bytes"]
        over = b"Subject: x\r\n\r\n" + b"y" * (room - 13)
        assert len(over) == room + 1
        refused = await client.command(b"a APPEND INBOX {%d+}\r\n%s" % (len(over), over))
        assert refused[-1].startswith(b"a NO [OVERQUOTA] ")
        (late,) = await delivery.deliver(message("big", "z" * room), envelope, ["alice@mail.test"])
        assert late.status is Status.OVER_QUOTA
        exact = over[:-1]
        await client.ok(b"b APPEND INBOX {%d+}\r\n%s" % (len(exact), exact))
        full = await store.get_account_by_id(account.id)
        assert full is not None
        assert full.used_bytes == full.quota_bytes
        responses = await client.ok('q GETQUOTA ""')
        assert responses == [b'* QUOTA "" (STORAGE 6 6 MESSAGE 3 5)']
    finally:
        await client.finish()
        await store.close()


async def test_quota_commands(alice: Client, store: SqlStore, account: Account) -> None:
    await deliver(store, account, message("one"))
    await run_transcript(
        alice,
        """
        # No limits: no root to report.
        C: a1 GETQUOTAROOT INBOX
        S: * QUOTAROOT INBOX
        S: a1 OK GETQUOTAROOT completed
        C: a2 GETQUOTA ""
        S: a2 NO [NONEXISTENT] quota root '' has no limits
        C: a3 SETQUOTA "" (STORAGE 100)
        S: a3 NO [NOPERM] only administrators may set quotas
        C: a4 GETQUOTA bob@example.org
        S: a4 NO [NONEXISTENT] there is no quota root 'bob@example.org'
        C: a5 GETQUOTAROOT Nothing
        S: a5 NO [NONEXISTENT] mailbox Nothing does not exist
        """,
    )
    await store.set_quota(account.id, 1_000_000, None)
    await run_transcript(
        alice,
        """
        C: a6 GETQUOTAROOT Sent
        S: * QUOTAROOT Sent ""
        S: * QUOTA "" (STORAGE 1 977)
        S: a6 OK GETQUOTAROOT completed
        """,
    )


async def test_setquota_by_an_admin(services: Services, store: SqlStore, account: Account) -> None:
    bob = await store.create_account("bob@example.org", password_hash(), None)
    admin = Client(dataclasses.replace(services, admins=frozenset({"alice@example.org"})))
    await admin.start()
    await admin.login()
    try:
        await run_transcript(
            admin,
            """
            C: a1 SETQUOTA bob@example.org (STORAGE 512 MESSAGE 10)
            S: * QUOTA bob@example.org (STORAGE 0 512 MESSAGE 0 10)
            S: a1 OK SETQUOTA completed
            C: a2 SETQUOTA bob@example.org (MESSAGE 20)
            S: * QUOTA bob@example.org (MESSAGE 0 20)
            S: a2 OK SETQUOTA completed
            C: a3 SETQUOTA bob@example.org (FOO 1)
            S: a3 NO [CANNOT] resource FOO is not supported here
            C: a4 SETQUOTA "" (STORAGE 1 STORAGE 2)
            S: a4 BAD a resource is named twice
            C: a5 SETQUOTA nobody@example.org (STORAGE 1)
            S: a5 NO [NONEXISTENT] there is no quota root 'nobody@example.org'
            C: a6 SETQUOTA bob@example.org ()
            S: a6 OK SETQUOTA completed
            """,
        )
        updated = await store.get_account_by_id(bob.id)
        assert updated is not None
        assert (updated.quota_bytes, updated.quota_messages) == (None, None)
    finally:
        await admin.finish()


async def test_overquota_on_copy_and_move(alice: Client, store: SqlStore, account: Account) -> None:
    await deliver(store, account, message("one"))
    usage = await store.get_account_by_id(account.id)
    assert usage is not None
    await store.set_quota(account.id, None, usage.used_messages)
    await alice.ok("s SELECT INBOX")
    await run_transcript(
        alice,
        """
        C: c1 COPY 1 Archive
        S: c1 NO [OVERQUOTA] mailbox is full: quota of 1 messages reached
        C: c2 STATUS INBOX (DELETED DELETED-STORAGE)
        S: * STATUS INBOX (DELETED 0 DELETED-STORAGE 0)
        S: c2 OK STATUS completed
        C: c3 STORE 1 +FLAGS.SILENT (\\Deleted)
        S: c3 OK STORE completed
        C: c4 STATUS INBOX (DELETED DELETED-STORAGE)
        S: * STATUS INBOX (DELETED 1 DELETED-STORAGE 1)
        S: c4 OK STATUS completed
        """,
    )
    # MOVE within the account frees as much as it takes: it is not refused.
    await alice.ok("m MOVE 1 Archive")
