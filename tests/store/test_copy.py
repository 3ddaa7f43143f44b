"""``mailkeep store copy``: SQLite to PostgreSQL and back, and clients notice nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mailkeep.cli import main
from mailkeep.errors import ConfigError
from mailkeep.mail.flags import SystemFlag
from mailkeep.pop3.session import Maildrop
from mailkeep.store import query as q
from mailkeep.store.api import FetchField, FlagMode
from mailkeep.store.copy import copy_store
from mailkeep.store.factory import open_store
from mailkeep.store.sqlstore import SqlStore

from ._support import blob_bytes, msg, new, raw_message
from .conftest import Backend, _empty

SEEN = int(SystemFlag.SEEN)
DELETED = int(SystemFlag.DELETED)
EVERYTHING = FetchField(0)
for _field in FetchField:
    EVERYTHING |= _field

QUERIES: list[q.Query] = [
    q.BodyContains("żółw"),
    q.TextContains("ab"),
    q.HeaderContains("subject", "report"),
    q.HeaderContains("x-tag", "blue"),
    q.Not(q.HasFlags(SEEN)),
]


async def fill(store: SqlStore) -> None:
    """A store with a bit of everything a client can see."""
    alice = await store.create_account(
        "alice@example.org", "$argon2id$alice", "4096$s$k$v", quota_bytes=10_000_000
    )
    bob = await store.create_account("bob@example.org", "$argon2id$bob", None, quota_messages=50)
    await store.set_account_setting(alice.id, "pop3.retention", "7d")
    await store.set_account_setting(bob.id, "lang", "sk")
    gone = await store.create_mailbox(alice.id, "Gone")
    await store.delete_mailbox(gone.id)  # UIDVALIDITY counter above every mailbox's
    lists = await store.create_mailbox(alice.id, "Lists/Python")
    await store.subscribe(alice.id, "Lists/Python", True)
    await store.subscribe(alice.id, "Not/There", True)
    await store.subscribe(alice.id, "Junk", False)
    await store.rename_mailbox(alice.id, "Lists", "Groups")
    inbox = await store.get_mailbox(alice.id, "INBOX")
    bob_inbox = await store.get_mailbox(bob.id, "INBOX")
    assert inbox is not None
    assert bob_inbox is not None
    shared = raw_message("Quarterly report", "Żółw, ab cd.\r\n", message_id="<r@example.org>")
    zone = timezone(timedelta(hours=-3, minutes=-30))
    await store.append(
        inbox.id,
        [
            new(
                shared,
                flags=SEEN,
                keywords=("$Work",),
                internaldate=datetime(2020, 1, 2, tzinfo=zone),
            ),
            msg("Re: Quarterly report", "ok\r\n", in_reply_to="<r@example.org>"),
            msg("Tagged", "x\r\n", headers=[("X-Tag", "blue")], flags=DELETED),
            msg("Large", "".join(f"line {i} of a long message\r\n" for i in range(20_000))),
            msg("Old", "to be collected\r\n"),
        ],
    )
    await store.append(bob_inbox.id, [new(shared)])
    await store.expunge(inbox.id)  # uid 3
    await store.trim_expunge_log(-1)  # the log now starts after that expunge
    await store.remove(inbox.id, [5])  # logged
    await store.collect_garbage()  # a contents id is gone for good
    await store.store_flags(inbox.id, [2], FlagMode.ADD, SEEN, ["$Answered"])
    await store.mark_downloaded(inbox.id, [1, 2])
    await store.copy(inbox.id, [1, 2], lists.id)
    await store.copy(inbox.id, [4], lists.id, move=True)


async def visible_state(store: SqlStore) -> dict[str, Any]:
    """Everything IMAP and POP3 clients can observe, and what the server keeps for them."""
    state: dict[str, Any] = {}
    for account in await store.list_accounts():
        credentials = await store.get_credentials(account.address)
        boxes = {}
        for box in await store.list_mailboxes(account.id):
            snapshot = await store.snapshot(box.id)
            rows = await store.fetch(box.id, list(snapshot.uids), EVERYTHING)
            drop = Maildrop(box, snapshot.uids, [r.size for r in rows])
            changes = await store.changes_since(box.id, 0)
            boxes[box.name] = {
                "mailbox": box,
                "status": await store.mailbox_status(box.id),
                "first_unseen": snapshot.first_unseen_uid,
                "rows": rows,
                "bodies": [await blob_bytes(store, r.blob) for r in rows],
                "uidls": [drop.uidl(i) for i in range(len(rows))],
                "expunged": (changes.expunged, changes.expunge_log_complete),
                "later": await store.changes_since(box.id, box.highestmodseq - 2),
                "search": [await store.search(box.id, query) for query in QUERIES],
                "sort": await store.sort(box.id, [q.SortKey("subject")], q.All()),
            }
        state[account.address] = {
            "account": account,
            "credentials": credentials,
            "subscriptions": await store.list_subscriptions(account.id),
            "mailboxes": boxes,
        }
    return state


async def test_copy_round_trip_sqlite_postgresql_sqlite(
    postgresql: Backend, tmp_path: Path
) -> None:
    source = await open_store("sqlite:first", tmp_path)
    await fill(source)
    expected = await visible_state(source)
    assert expected["alice@example.org"]["mailboxes"]["INBOX"]["expunged"] == ((4, 5), False)
    middle = await postgresql.open()
    first = await copy_store(source, middle)
    assert first.rows["messages"] == 6
    assert first.missing_blobs == ()
    assert await visible_state(middle) == expected
    back = await open_store("sqlite:second", tmp_path)
    phases: list[tuple[str, int, int]] = []
    await copy_store(middle, back, progress=lambda *p: phases.append(p))
    assert ("messages", 6, 6) in phases
    assert await visible_state(back) == expected
    # The copies go on where the original left off.
    for store in (source, middle, back):
        alice = await store.get_account("alice@example.org")
        assert alice is not None
        inbox = await store.get_mailbox(alice.id, "INBOX")
        assert inbox is not None
        appended = await store.append(inbox.id, [msg("after the copy")])
        assert appended.uids == (inbox.uidnext,)
        assert appended.change.after == inbox.highestmodseq + 1
        made = await store.create_mailbox(alice.id, "New")
        assert made.uidvalidity > max(
            m.uidvalidity for m in await store.list_mailboxes(alice.id) if m.name != "New"
        )
    ids = []
    for store in (source, middle, back):
        alice = await store.get_account("alice@example.org")
        assert alice is not None
        inbox = await store.get_mailbox(alice.id, "INBOX")
        assert inbox is not None
        (row,) = await store.fetch(inbox.id, [inbox.uidnext - 1], FetchField.OBJECTID)
        ids.append(row.email_id)
    assert len(set(ids)) == 1  # the same new EMAILID everywhere: none was reused
    await source.close()
    await back.close()


async def test_copy_refuses_a_target_that_is_not_empty(postgresql: Backend, tmp_path: Path) -> None:
    source = await open_store("sqlite:source", tmp_path)
    target = await postgresql.open()
    try:
        await target.create_account("someone@example.org", "h", None)
        with pytest.raises(ConfigError, match="not empty"):
            await copy_store(source, target)
    finally:
        await source.close()


def test_store_copy_command(postgresql_url: str, tmp_path: Path) -> None:
    async def prepare() -> dict[str, Any]:
        await _empty(postgresql_url)
        store = await open_store("sqlite:store", tmp_path)
        try:
            await fill(store)
            return await visible_state(store)
        finally:
            await store.close()

    expected = asyncio.run(prepare())
    result = CliRunner().invoke(
        main,
        [
            "--data",
            str(tmp_path),
            "store",
            "copy",
            "--from",
            "sqlite:store",
            "--to",
            postgresql_url,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "copied" in result.output
    assert "store.url" in result.output

    async def check() -> dict[str, Any]:
        store = await open_store(postgresql_url, tmp_path)
        try:
            return await visible_state(store)
        finally:
            await store.close()

    assert asyncio.run(check()) == expected
    again = CliRunner().invoke(
        main,
        [
            "--data",
            str(tmp_path),
            "store",
            "copy",
            "--from",
            "sqlite:store",
            "--to",
            postgresql_url,
        ],
    )
    assert again.exit_code == 1
    assert "not empty" in again.output
