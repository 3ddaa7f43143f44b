"""The store contract: every backend must pass every test here, unchanged.

Each test runs once per backend (the ``store``/``backend`` fixtures in conftest); nothing
here knows which backend it talks to.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from mailkeep.errors import AlreadyExists, InvalidName, NotFound, QuotaExceeded
from mailkeep.mail.flags import SystemFlag
from mailkeep.mail.message import parse
from mailkeep.store import query as q
from mailkeep.store import sql
from mailkeep.store.api import (
    Account,
    AppendResult,
    BlobReader,
    FetchField,
    FlagMode,
    Mailbox,
)
from mailkeep.store.changes import (
    SERVER_CHANNEL,
    ChangeSet,
    MailboxEvent,
    MetadataChanged,
    RightsChanged,
)
from mailkeep.store.hub import Listener
from mailkeep.store.metadata import TooManyEntries
from mailkeep.store.ops import One, Tx
from mailkeep.store.sqlstore import QUOTA_PRECHECK_OCTETS, SqlStore

from ._support import blob_bytes, msg, new, raw_message
from .conftest import Backend

SEEN = int(SystemFlag.SEEN)
ANSWERED = int(SystemFlag.ANSWERED)
FLAGGED = int(SystemFlag.FLAGGED)
DELETED = int(SystemFlag.DELETED)
DRAFT = int(SystemFlag.DRAFT)

ARGON = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
SCRAM = "4096$c2FsdA==$c3RvcmVk$c2VydmVy"


async def make_account(
    store: SqlStore,
    address: str = "alice@example.org",
    *,
    quota_bytes: int | None = None,
    quota_messages: int | None = None,
) -> Account:
    return await store.create_account(
        address, ARGON, SCRAM, quota_bytes=quota_bytes, quota_messages=quota_messages
    )


async def mailbox(store: SqlStore, account: Account, name: str = "INBOX") -> Mailbox:
    found = await store.get_mailbox(account.id, name)
    assert found is not None, name
    return found


async def setup_inbox(store: SqlStore) -> tuple[Account, Mailbox]:
    account = await make_account(store)
    return account, await mailbox(store, account)


# ---------------------------------------------------------------------------- accounts


async def test_create_account_makes_default_mailboxes_and_subscriptions(store: SqlStore) -> None:
    account = await store.create_account("  Alice@Example.ORG ", ARGON, SCRAM)
    assert account.address == "alice@example.org"
    assert (account.used_bytes, account.used_messages) == (0, 0)
    boxes = {m.name: m.special_use for m in await store.list_mailboxes(account.id)}
    assert boxes == {
        "INBOX": None,
        "Sent": "\\Sent",
        "Drafts": "\\Drafts",
        "Trash": "\\Trash",
        "Junk": "\\Junk",
        "Archive": "\\Archive",
    }
    assert sorted(await store.list_subscriptions(account.id)) == sorted(boxes)
    assert await store.get_account("ALICE@example.org") == account
    assert await store.get_account_by_id(account.id) == account


async def test_create_account_twice_is_refused_whatever_the_case(store: SqlStore) -> None:
    await make_account(store)
    with pytest.raises(AlreadyExists):
        await make_account(store, "ALICE@EXAMPLE.ORG")
    assert len(await store.list_accounts()) == 1


@pytest.mark.parametrize("address", ["", "   ", "a b@example.org", "tab\t@x", "x" * 400])
async def test_create_account_refuses_malformed_addresses(store: SqlStore, address: str) -> None:
    with pytest.raises(InvalidName):
        await make_account(store, address)
    assert await store.list_accounts() == []


async def test_list_accounts_is_sorted_by_address(store: SqlStore) -> None:
    for address in ["carol@x.org", "alice@x.org", "bob@x.org"]:
        await make_account(store, address)
    assert [a.address for a in await store.list_accounts()] == [
        "alice@x.org",
        "bob@x.org",
        "carol@x.org",
    ]


async def test_credentials_are_read_and_replaced(store: SqlStore) -> None:
    account = await make_account(store)
    credentials = await store.get_credentials("Alice@example.org")
    assert credentials is not None
    assert (credentials.account_id, credentials.address) == (account.id, "alice@example.org")
    assert (credentials.password_hash, credentials.scram_sha256) == (ARGON, SCRAM)
    await store.set_credentials(account.id, "$argon2id$new", None)
    credentials = await store.get_credentials("alice@example.org")
    assert credentials is not None
    assert (credentials.password_hash, credentials.scram_sha256) == ("$argon2id$new", None)
    assert await store.get_credentials("nobody@example.org") is None
    with pytest.raises(NotFound):
        await store.set_credentials(account.id + 1000, ARGON, None)


async def test_quota_is_set_and_reported(store: SqlStore) -> None:
    account = await make_account(store, quota_bytes=10_000, quota_messages=5)
    assert (account.quota_bytes, account.quota_messages) == (10_000, 5)
    await store.set_quota(account.id, None, 7)
    changed = await store.get_account_by_id(account.id)
    assert changed is not None
    assert (changed.quota_bytes, changed.quota_messages) == (None, 7)
    with pytest.raises(NotFound):
        await store.set_quota(account.id + 1000, 1, 1)


async def test_settings_are_set_replaced_and_removed(store: SqlStore) -> None:
    account = await make_account(store)
    await store.set_account_setting(account.id, "pop3.leave", "7d")
    await store.set_account_setting(account.id, "lang", "pl")
    await store.set_account_setting(account.id, "lang", "sk")
    found = await store.get_account_by_id(account.id)
    assert found is not None
    assert found.settings == {"pop3.leave": "7d", "lang": "sk"}
    await store.set_account_setting(account.id, "pop3.leave", None)
    found = await store.get_account("alice@example.org")
    assert found is not None
    assert found.settings == {"lang": "sk"}


async def test_accounts_are_listed_with_their_settings(store: SqlStore) -> None:
    # One statement reads accounts and settings (a row per setting): each account gets
    # its own, and one without any gets none.
    alice = await make_account(store)
    await make_account(store, "bob@example.org")
    carol = await make_account(store, "carol@example.org")
    await store.set_account_setting(carol.id, "lang", "sk")
    await store.set_account_setting(alice.id, "lang", "pl")
    await store.set_account_setting(alice.id, "pop3.leave", "7d")
    listed = [(a.address, a.settings) for a in await store.list_accounts()]
    assert listed == [
        ("alice@example.org", {"lang": "pl", "pop3.leave": "7d"}),
        ("bob@example.org", {}),
        ("carol@example.org", {"lang": "sk"}),
    ]


async def test_delete_account_removes_its_mail_and_usage(store: SqlStore) -> None:
    account, inbox = await setup_inbox(store)
    other = await make_account(store, "bob@example.org")
    shared = raw_message("shared")
    await store.append(inbox.id, [new(shared), msg("private")])
    bob_inbox = await mailbox(store, other)
    await store.append(bob_inbox.id, [new(shared)])
    rows = await store.fetch(inbox.id, [1, 2], FetchField.BLOB)
    await store.delete_account(account.id)
    assert await store.get_account("alice@example.org") is None
    assert await store.get_credentials("alice@example.org") is None
    assert await store.list_mailboxes(account.id) == []
    assert await store.get_mailbox_by_id(inbox.id) is None
    await store.collect_garbage()
    reader = await store.open_blob(rows[0].blob)  # still Bob's
    await reader.close()
    with pytest.raises(NotFound):
        await store.open_blob(rows[1].blob)
    bob = await store.get_account_by_id(other.id)
    assert bob is not None
    assert (bob.used_messages, bob.used_bytes) == (1, len(shared))
    with pytest.raises(NotFound):
        await store.delete_account(account.id)
    again = await make_account(store)
    assert again.id != account.id
    assert (await mailbox(store, again)).uidvalidity > inbox.uidvalidity


# ---------------------------------------------------------------------------- mailboxes


async def test_create_mailbox_creates_missing_parents(store: SqlStore) -> None:
    account = await make_account(store)
    listener = Listener()
    store.hub.watch_account(account.id, listener)
    created = await store.create_mailbox(account.id, "Projects/2024/Q1")
    assert created.name == "Projects/2024/Q1"
    assert (created.uidnext, created.highestmodseq) == (1, 1)
    names = [m.name for m in await store.list_mailboxes(account.id)]
    assert {"Projects", "Projects/2024", "Projects/2024/Q1"} <= set(names)
    assert names == sorted(names)
    events = [c for c in listener.drain() if isinstance(c, MailboxEvent)]
    assert [(e.kind, e.name) for e in events] == [
        ("created", "Projects"),
        ("created", "Projects/2024"),
        ("created", "Projects/2024/Q1"),
    ]
    child = await store.create_mailbox(account.id, "Projects/Other", "\\Archive")
    assert child.special_use == "\\Archive"


@pytest.mark.parametrize(
    "name", ["", "/a", "a/", "a//b", "a*", "b%", " a", "a/ b", "x\x01y", "a/../b", "x" * 1001]
)
async def test_create_mailbox_refuses_invalid_names(store: SqlStore, name: str) -> None:
    account = await make_account(store)
    before = await store.list_mailboxes(account.id)
    with pytest.raises(InvalidName):
        await store.create_mailbox(account.id, name)
    assert await store.list_mailboxes(account.id) == before


async def test_create_existing_mailbox_is_refused(store: SqlStore) -> None:
    account = await make_account(store)
    await store.create_mailbox(account.id, "Lists")
    with pytest.raises(AlreadyExists):
        await store.create_mailbox(account.id, "Lists")
    with pytest.raises(AlreadyExists):
        await store.create_mailbox(account.id, "inbox")
    # Other names are case-sensitive; INBOX is not (RFC 9051 5.1).
    await store.create_mailbox(account.id, "lists")
    inbox = await store.get_mailbox(account.id, "iNbOx")
    assert inbox is not None
    assert inbox.name == "INBOX"
    made = await store.create_mailbox(account.id, "Inbox/Sub")
    assert made.name == "INBOX/Sub"


async def test_uidvalidity_strictly_increases_and_changes_on_recreate(store: SqlStore) -> None:
    account = await make_account(store)
    seen = [m.uidvalidity for m in await store.list_mailboxes(account.id)]
    first = await store.create_mailbox(account.id, "A")
    second = await store.create_mailbox(account.id, "B")
    assert max(seen) < first.uidvalidity < second.uidvalidity
    await store.delete_mailbox(first.id)
    again = await store.create_mailbox(account.id, "A")
    assert again.uidvalidity > second.uidvalidity
    assert again.id != first.id


async def test_delete_mailbox_releases_usage_and_keeps_subscription(store: SqlStore) -> None:
    account = await make_account(store)
    box = await store.create_mailbox(account.id, "Old")
    await store.subscribe(account.id, "Old", True)
    first, second = msg("one"), msg("two")
    await store.append(box.id, [first, second])
    await store.store_flags(box.id, [1], FlagMode.ADD, SystemFlag.DELETED, [])
    await store.expunge(box.id)
    await store.delete_mailbox(box.id)
    assert await store.get_mailbox(account.id, "Old") is None
    # Its expunge log goes with it (no foreign key cascades it on PostgreSQL, 0012).
    assert await store.engine.read(_expunge_log_size(box.id)) == 0
    after = await store.get_account_by_id(account.id)
    assert after is not None
    assert (after.used_bytes, after.used_messages) == (0, 0)
    # RFC 9051 6.3.9: deleting a mailbox does not unsubscribe it.
    assert "Old" in await store.list_subscriptions(account.id)
    with pytest.raises(NotFound):
        await store.delete_mailbox(box.id)
    with pytest.raises(NotFound):
        await store.append(box.id, [msg()])


def _expunge_log_size(mailbox_id: int) -> Tx[int]:
    row = yield One("SELECT count(*) FROM expunged WHERE mailbox_id = ?", (mailbox_id,))
    return int(row[0])


async def test_rename_moves_children_and_subscriptions(store: SqlStore) -> None:
    account = await make_account(store)
    parent = await store.create_mailbox(account.id, "Work")
    child = await store.create_mailbox(account.id, "Work/Reports")
    await store.create_mailbox(account.id, "Workshop")  # a prefix, not a child
    await store.subscribe(account.id, "Work/Reports", True)
    await store.append(child.id, [msg("report")])
    await store.rename_mailbox(account.id, "Work", "Archive/2023/Work")
    names = {m.name for m in await store.list_mailboxes(account.id)}
    assert {"Archive/2023", "Archive/2023/Work", "Archive/2023/Work/Reports", "Workshop"} <= names
    assert "Work" not in names
    assert "Work/Reports" not in names
    moved = await mailbox(store, account, "Archive/2023/Work/Reports")
    assert (moved.id, moved.uidvalidity) == (child.id, child.uidvalidity)
    assert [r.uid for r in await store.fetch(moved.id, [1], FetchField.FLAGS)] == [1]
    assert (await mailbox(store, account, "Archive/2023/Work")).id == parent.id
    subscriptions = await store.list_subscriptions(account.id)
    assert "Archive/2023/Work/Reports" in subscriptions
    assert "Work/Reports" not in subscriptions


async def test_rename_onto_a_subscribed_name(store: SqlStore) -> None:
    """A subscription may name a mailbox that does not exist; renaming a subscribed
    mailbox to that name keeps one subscription (found by fuzzing RENAME)."""
    account = await make_account(store)
    await store.create_mailbox(account.id, "old")
    await store.subscribe(account.id, "old", True)
    await store.subscribe(account.id, "new", True)
    await store.create_mailbox(account.id, "lone")
    await store.rename_mailbox(account.id, "old", "new")
    await store.rename_mailbox(account.id, "lone", "other")
    subscriptions = await store.list_subscriptions(account.id)
    assert subscriptions.count("new") == 1
    assert "old" not in subscriptions
    assert "other" not in subscriptions


async def test_rename_keeps_names_that_differ_only_in_case(store: SqlStore) -> None:
    account = await make_account(store)
    await store.create_mailbox(account.id, "foo/a")
    await store.create_mailbox(account.id, "Foo/b")
    await store.rename_mailbox(account.id, "foo", "bar")
    names = {m.name for m in await store.list_mailboxes(account.id)}
    assert {"bar", "bar/a", "Foo", "Foo/b"} <= names
    assert not {"foo", "foo/a", "bar/b"} & names


async def test_rename_inbox_moves_its_messages_and_leaves_it_empty(store: SqlStore) -> None:
    account, inbox = await setup_inbox(store)
    await store.create_mailbox(account.id, "INBOX/Child")
    await store.append(inbox.id, [msg("a", flags=SEEN), msg("b", keywords=("$Work",))])
    await store.rename_mailbox(account.id, "inbox", "Old Mail")
    kept = await mailbox(store, account, "INBOX")
    assert kept.id == inbox.id
    assert kept.uidvalidity == inbox.uidvalidity
    assert (await store.mailbox_status(kept.id)).messages == 0
    assert kept.uidnext == 3  # UIDs are never reused, even in an emptied INBOX
    old = await mailbox(store, account, "Old Mail")
    rows = await store.fetch(old.id, [1, 2], FetchField.FLAGS)
    assert [(r.uid, r.flags, r.keywords) for r in rows] == [(1, SEEN, ()), (2, 0, ("$Work",))]
    # RFC 9051 6.3.6: INBOX's inferiors stay where they are.
    assert await store.get_mailbox(account.id, "INBOX/Child") is not None
    usage = await store.get_account_by_id(account.id)
    assert usage is not None
    assert usage.used_messages == 2


async def test_rename_conflicts(store: SqlStore) -> None:
    account = await make_account(store)
    await store.create_mailbox(account.id, "A/x")
    await store.create_mailbox(account.id, "B")
    await store.create_mailbox(account.id, "C/x")
    with pytest.raises(AlreadyExists):
        await store.rename_mailbox(account.id, "A", "B")
    with pytest.raises(NotFound):
        await store.rename_mailbox(account.id, "Nope", "Z")
    with pytest.raises(InvalidName):
        await store.rename_mailbox(account.id, "A", "A/x/deeper")
    with pytest.raises(InvalidName):
        await store.rename_mailbox(account.id, "A", "bad*name")
    with pytest.raises(AlreadyExists):
        await store.rename_mailbox(account.id, "A/x", "C/x")
    names = {m.name for m in await store.list_mailboxes(account.id)}
    assert {"A", "A/x", "B", "C", "C/x"} <= names


async def test_subscriptions(store: SqlStore) -> None:
    account = await make_account(store)
    listener = Listener()
    store.hub.watch_account(account.id, listener)
    await store.subscribe(account.id, "Not/Yet/Created", True)
    await store.subscribe(account.id, "Not/Yet/Created", True)
    await store.subscribe(account.id, "Junk", False)
    await store.subscribe(account.id, "inbox/x", True)
    subscriptions = await store.list_subscriptions(account.id)
    assert "Not/Yet/Created" in subscriptions
    assert "INBOX/x" in subscriptions
    assert "Junk" not in subscriptions
    assert subscriptions == sorted(subscriptions)
    events = [(e.kind, e.name) for e in listener.drain() if isinstance(e, MailboxEvent)]
    assert events == [
        ("subscribed", "Not/Yet/Created"),
        ("unsubscribed", "Junk"),
        ("subscribed", "INBOX/x"),
    ]


async def test_special_use_and_status(store: SqlStore) -> None:
    account = await make_account(store)
    box = await store.create_mailbox(account.id, "Spam")
    await store.set_special_use(box.id, "\\Junk")
    assert (await mailbox(store, account, "Spam")).special_use == "\\Junk"
    with pytest.raises(NotFound):
        await store.set_special_use(box.id + 1000, None)
    messages = [msg("a", flags=SEEN), msg("b", flags=DELETED), msg("c", flags=SEEN | DELETED)]
    await store.append(box.id, messages)
    status = await store.mailbox_status(box.id)
    assert (status.messages, status.unseen, status.deleted) == (3, 1, 2)
    assert status.size == sum(len(m.raw) for m in messages)
    assert status.mailbox.uidnext == 4


# ---------------------------------------------------------------------------- append


async def test_append_assigns_increasing_uids_and_modseqs(store: SqlStore) -> None:
    _account, inbox = await setup_inbox(store)
    first = await store.append(inbox.id, [msg("one")])
    second = await store.append(inbox.id, [msg("two"), msg("three")])
    assert first.uids == (1,)
    assert second.uids == (2, 3)
    assert first.mailbox.highestmodseq < second.mailbox.highestmodseq
    assert second.mailbox.uidnext == 4
    assert second.change.before == first.change.after
    assert [s.uid for s in second.change.appended] == [2, 3]
    assert {s.modseq for s in second.change.appended} == {second.mailbox.highestmodseq}
    fresh = await store.get_mailbox_by_id(inbox.id)
    assert fresh == second.mailbox


async def test_uids_are_never_reused_after_expunge(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    await store.append(inbox.id, [msg("a"), msg("b"), msg("c", flags=DELETED)])
    await store.expunge(inbox.id)
    result = await store.append(inbox.id, [msg("d")])
    assert result.uids == (4,)
    await store.remove(inbox.id, [1, 2, 4])
    assert (await store.append(inbox.id, [msg("e")])).uids == (5,)


async def test_modseq_strictly_increases_and_never_goes_back(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    highest = [inbox.highestmodseq]

    async def record() -> None:
        box = await store.get_mailbox_by_id(inbox.id)
        assert box is not None
        highest.append(box.highestmodseq)

    await store.append(inbox.id, [msg("a"), msg("b")])
    await record()
    await store.store_flags(inbox.id, [1], FlagMode.ADD, SEEN, ())
    await record()
    await store.store_flags(inbox.id, [2], FlagMode.ADD, DELETED, ())
    await record()
    await store.expunge(inbox.id)
    await record()
    await store.append(inbox.id, [msg("c")])
    await record()
    assert all(a < b for a, b in itertools.pairwise(highest))
    rows = await store.fetch(inbox.id, [1, 3], FetchField.FLAGS)
    assert all(r.modseq <= highest[-1] for r in rows)
    assert rows[-1].modseq == highest[-1]


async def test_append_each_is_each_append_in_order(store: SqlStore) -> None:
    account = await make_account(store, quota_messages=4)
    inbox = await mailbox(store, account)
    listener = Listener()
    store.hub.watch_mailbox(inbox.id, listener)
    same = msg("twice")
    results = await store.append_each(
        [
            (inbox.id, [msg("one")]),
            (inbox.id + 1000, [msg("nowhere")]),
            (inbox.id, [same, msg("three")]),
            (inbox.id, [same]),  # the same content again: one more reference
            (inbox.id, [msg("over")]),  # over the quota of four messages
        ]
    )
    first, gone, second, third, over = results
    assert not isinstance(first, Exception)
    assert not isinstance(second, Exception)
    assert not isinstance(third, Exception)
    assert (first.uids, second.uids, third.uids) == ((1,), (2, 3), (4,))
    assert isinstance(gone, NotFound)
    assert isinstance(over, QuotaExceeded)
    assert (await store.mailbox_status(inbox.id)).messages == 4
    assert [c.after for c in listener.drain() if isinstance(c, ChangeSet)] == [
        first.change.after,
        second.change.after,
        third.change.after,
    ]


async def test_append_each_commits_once(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without group commit (PostgreSQL) the appends are one transaction; each keeps its
    own UIDs, MODSEQ and change, published in order."""
    _, inbox = await setup_inbox(store)
    listener = Listener()
    store.hub.watch_mailbox(inbox.id, listener)
    writes: list[object] = []
    real_write = store.engine.write

    async def write(tx: Any, **options: Any) -> Any:
        writes.append(tx)
        return await real_write(tx, **options)

    monkeypatch.setattr(store.engine, "write", write)
    results = await store.append_each(
        [(inbox.id, [msg("a")]), (inbox.id, [msg("b")]), (inbox.id, [msg("c"), msg("d")])]
    )
    assert len(writes) == (3 if store.engine.group_commit else 1)
    assert all(isinstance(r, AppendResult) for r in results)
    done = [r for r in results if isinstance(r, AppendResult)]
    assert [r.uids for r in done] == [(1,), (2,), (3, 4)]
    assert [r.change.after for r in done] == [inbox.highestmodseq + n for n in (1, 2, 3)]
    assert [c.after for c in listener.drain() if isinstance(c, ChangeSet)] == [
        r.change.after for r in done
    ]
    rows = await store.fetch(inbox.id, [1, 2, 3, 4], FetchField.ENVELOPE)
    assert [row.uid for row in rows] == [1, 2, 3, 4]


async def test_multiappend_is_atomic_under_quota(store: SqlStore) -> None:
    account = await make_account(store, quota_messages=2)
    inbox = await mailbox(store, account)
    listener = Listener()
    store.hub.watch_mailbox(inbox.id, listener)
    with pytest.raises(QuotaExceeded):
        await store.append(inbox.id, [msg("a"), msg("b"), msg("c")])
    after = await store.get_mailbox_by_id(inbox.id)
    assert after == inbox
    assert (await store.mailbox_status(inbox.id)).messages == 0
    usage = await store.get_account_by_id(account.id)
    assert usage is not None
    assert (usage.used_bytes, usage.used_messages) == (0, 0)
    assert not listener.has_pending
    # Small messages are refused by the transaction, after their blobs were written:
    # they are discarded again.
    assert await store.engine.list_blobs() == []
    assert (await store.append(inbox.id, [msg("a"), msg("b")])).uids == (1, 2)


async def test_a_large_append_over_quota_writes_no_blob(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    large = msg("large", "y" * QUOTA_PRECHECK_OCTETS)
    account = await make_account(store, quota_bytes=QUOTA_PRECHECK_OCTETS)
    inbox = await mailbox(store, account)
    writes: list[object] = []
    real_put, real_write = store.engine.put_blob, store.engine.write

    async def put(blob: str, data: bytes) -> None:
        writes.append(blob)
        await real_put(blob, data)

    async def write(tx: Any, **options: Any) -> Any:
        writes.append(tx)  # PostgreSQL stores one message's blob with its append
        return await real_write(tx, **options)

    monkeypatch.setattr(store.engine, "put_blob", put)
    monkeypatch.setattr(store.engine, "write", write)
    with pytest.raises(QuotaExceeded):
        await store.append(inbox.id, [large])
    assert writes == []
    await store.append(inbox.id, [large], check_quota=False)
    assert len(await store.engine.list_blobs()) == 1


async def test_byte_quota_counts_message_sizes(store: SqlStore) -> None:
    small, large = msg("small"), msg("large", "x" * 2000)
    account = await make_account(store, quota_bytes=len(small.raw) + 100)
    inbox = await mailbox(store, account)
    await store.append(inbox.id, [small])
    with pytest.raises(QuotaExceeded):
        await store.append(inbox.id, [large])
    # Delivery may bypass the check (the protocol layer decides).
    await store.append(inbox.id, [large], check_quota=False)
    usage = await store.get_account_by_id(account.id)
    assert usage is not None
    assert usage.used_bytes == len(small.raw) + len(large.raw)
    assert usage.used_messages == 2


async def test_identical_messages_are_stored_once(store: SqlStore) -> None:
    account, inbox = await setup_inbox(store)
    sent = await mailbox(store, account, "Sent")
    raw = raw_message("twice")
    await store.append(inbox.id, [new(raw)])
    await store.append(sent.id, [new(raw, flags=SEEN)])
    fields = FetchField.BLOB | FetchField.OBJECTID | FetchField.FLAGS
    (a,) = await store.fetch(inbox.id, [1], fields)
    (b,) = await store.fetch(sent.id, [1], fields)
    assert a.blob == b.blob
    assert a.email_id == b.email_id
    assert (a.flags, b.flags) == (0, SEEN)
    usage = await store.get_account_by_id(account.id)
    assert usage is not None
    assert (usage.used_messages, usage.used_bytes) == (2, 2 * len(raw))
    assert await blob_bytes(store, a.blob) == raw


async def test_internaldate_keeps_its_zone(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    zones = [timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)), UTC]
    moments = [datetime(2021, 3, 4, 5, 6, 7, tzinfo=zone) for zone in zones]
    await store.append(inbox.id, [msg(str(i), internaldate=m) for i, m in enumerate(moments)])
    before = datetime.now(UTC).replace(microsecond=0)
    await store.append(inbox.id, [msg("now")])
    rows = await store.fetch(inbox.id, [1, 2, 3, 4], FetchField.INTERNALDATE)
    for row, moment in zip(rows, moments, strict=False):
        assert row.internaldate == moment
        assert row.internaldate is not None
        assert row.internaldate.utcoffset() == moment.utcoffset()
    now = rows[3].internaldate
    assert now is not None
    assert before - timedelta(seconds=1) <= now <= datetime.now(UTC) + timedelta(seconds=1)


# ---------------------------------------------------------------------------- snapshot


async def test_snapshot_lists_uids_first_unseen_and_recent(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    await store.append(inbox.id, [msg("a", flags=SEEN), msg("b", flags=SEEN), msg("c")])
    await store.store_flags(inbox.id, [2], FlagMode.ADD, DELETED, ())
    await store.expunge(inbox.id)
    peek = await store.snapshot(inbox.id)
    assert peek.recent_from_uid == 1  # new messages are \Recent for the first claimer
    first = await store.snapshot(inbox.id, claim_recent=True)
    assert list(first.uids) == [1, 3]
    assert first.first_unseen_uid == 3
    assert first.mailbox.uidnext == 4
    assert first.recent_from_uid == 1
    assert store.recent_boundary(inbox.id, 4) == 4
    await store.append(inbox.id, [msg("d", flags=SEEN), msg("e", flags=SEEN)])
    claimer = await store.snapshot(inbox.id, claim_recent=True)
    assert list(claimer.uids) == [1, 3, 4, 5]
    assert claimer.recent_from_uid == 4
    other = await store.snapshot(inbox.id)
    assert other.recent_from_uid == 6
    await store.store_flags(inbox.id, [3], FlagMode.ADD, SEEN, ())
    assert (await store.snapshot(inbox.id)).first_unseen_uid is None
    with pytest.raises(NotFound):
        await store.snapshot(inbox.id + 1000)


async def test_a_snapshot_read_before_a_claim_does_not_give_recent_again(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SELECT whose read saw the mailbox before a delivery, finished after another
    session claimed the delivery as \\Recent: the message is \\Recent for that other
    session only (the claim never moves back)."""
    _, inbox = await setup_inbox(store)
    first = await store.snapshot(inbox.id, claim_recent=True)
    # B's read, early
    stale = await store.engine.read(sql.snapshot_tx(inbox.id, store.engine.dialect))
    await store.append(inbox.id, [msg("new")])
    assert store.claim_recent(inbox.id, 2) == first.mailbox.uidnext  # A: UID 1 is its
    read = store.engine.read

    async def read_once(tx: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(store.engine, "read", read)
        tx.close()
        return stale

    monkeypatch.setattr(store.engine, "read", read_once)
    late = await store.snapshot(inbox.id, claim_recent=True)  # B's SELECT ends now
    assert late.mailbox.uidnext == 1
    assert store.claim_recent(inbox.id, 2) == 2  # B hears of UID 1: not \Recent for B


# ---------------------------------------------------------------------------- fetch


async def test_fetch_every_field(store: SqlStore) -> None:
    account, inbox = await setup_inbox(store)
    raw = raw_message(
        "Zażółć gęślą jaźń",
        "Dobrý deň, žltý kôň.\r\n",
        message_id="<first@example.org>",
        cc="Carol <carol@example.com>",
    )
    parsed = parse(raw)
    moment = datetime(2022, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=1)))
    await store.append(
        inbox.id, [new(raw, flags=SEEN | FLAGGED, keywords=("$Label1",), internaldate=moment)]
    )
    everything = FetchField(0)
    for field in FetchField:
        everything |= field
    (row,) = await store.fetch(inbox.id, [1], everything)
    assert (row.uid, row.flags, row.keywords) == (1, SEEN | FLAGGED, ("$Label1",))
    assert row.modseq == (await mailbox(store, account)).highestmodseq
    assert row.internaldate == moment
    assert row.size == len(raw) == parsed.size
    assert row.envelope == parsed.envelope
    assert row.body == parsed.body
    assert row.bodystructure == parsed.bodystructure
    assert row.structure == parsed.structure
    assert row.header == parsed.header
    assert row.preview == parsed.preview
    assert row.email_id.startswith("M")
    assert row.thread_id.startswith("T")
    assert row.savedate is not None
    assert abs(row.savedate - datetime.now(UTC)) < timedelta(minutes=1)
    assert row.downloaded_at is None
    assert await blob_bytes(store, row.blob) == raw
    # Only what was asked for is loaded.
    (flags_only,) = await store.fetch(inbox.id, [1], FetchField.FLAGS)
    assert (flags_only.envelope, flags_only.blob, flags_only.size) == (b"", "", 0)
    (size_only,) = await store.fetch(inbox.id, [1], FetchField.SIZE)
    assert (size_only.flags, size_only.size) == (0, len(raw))


async def test_fetch_returns_existing_uids_in_order(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    await store.append(inbox.id, [msg(str(i)) for i in range(150)])
    await store.remove(inbox.id, list(range(2, 151, 2)))
    rows = await store.fetch(inbox.id, [149, 3, 2, 1, 999], FetchField.SIZE)
    assert [r.uid for r in rows] == [1, 3, 149]
    # Many separate UIDs (more ranges than one statement lists) give the same answer.
    wanted = list(range(1, 160))
    rows = await store.fetch(inbox.id, wanted, FetchField.FLAGS)
    assert [r.uid for r in rows] == list(range(1, 151, 2))
    assert await store.fetch(inbox.id, [], FetchField.FLAGS) == []


async def test_pop3_download_marks(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    await store.append(inbox.id, [msg("a"), msg("b")])
    await store.mark_downloaded(inbox.id, [1])
    first = await store.fetch(inbox.id, [1, 2], FetchField.POP3)
    assert first[0].downloaded_at is not None
    assert first[1].downloaded_at is None
    await asyncio.sleep(1.1)
    await store.mark_downloaded(inbox.id, [1, 2])
    second = await store.fetch(inbox.id, [1, 2], FetchField.POP3)
    assert second[0].downloaded_at == first[0].downloaded_at  # the first download counts
    assert second[1].downloaded_at is not None


async def test_thread_ids_follow_references(store: SqlStore) -> None:
    account, inbox = await setup_inbox(store)
    sent = await mailbox(store, account, "Sent")
    await store.append(inbox.id, [msg("Question", message_id="<q@example.org>")])
    await store.append(
        sent.id,
        [msg("Re: Question", message_id="<a@example.org>", in_reply_to="<q@example.org>")],
    )
    await store.append(
        inbox.id,
        [
            msg(
                "Re: Re: Question",
                message_id="<b@example.org>",
                references="<q@example.org> <a@example.org>",
            ),
            msg("Unrelated", message_id="<u@example.org>"),
        ],
    )
    rows = await store.fetch(inbox.id, [1, 2, 3], FetchField.OBJECTID)
    (reply,) = await store.fetch(sent.id, [1], FetchField.OBJECTID)
    assert rows[0].thread_id == reply.thread_id == rows[1].thread_id
    assert rows[2].thread_id != rows[0].thread_id
    assert len({r.email_id for r in [*rows, reply]}) == 4


# ---------------------------------------------------------------------------- flags


async def test_store_flags_modes(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    await store.append(inbox.id, [msg("a"), msg("b", flags=SEEN)])
    added = await store.store_flags(inbox.id, [1, 2], FlagMode.ADD, FLAGGED, ["$Work"])
    assert [(s.uid, s.flags, s.keywords) for s in added.change.changed] == [
        (1, FLAGGED, ("$Work",)),
        (2, SEEN | FLAGGED, ("$Work",)),
    ]
    removed = await store.store_flags(inbox.id, [2], FlagMode.REMOVE, SEEN, ["$Work"])
    assert [(s.uid, s.flags, s.keywords) for s in removed.change.changed] == [(2, FLAGGED, ())]
    replaced = await store.store_flags(
        inbox.id, [1, 2], FlagMode.REPLACE, ANSWERED | DRAFT, ["b", "A"]
    )
    assert {s.uid for s in replaced.change.changed} == {1, 2}
    rows = await store.fetch(inbox.id, [1, 2], FetchField.FLAGS)
    assert [(r.flags, r.keywords) for r in rows] == [(ANSWERED | DRAFT, ("A", "b"))] * 2
    assert all(r.modseq == replaced.change.after for r in rows)
    cleared = await store.store_flags(inbox.id, [1], FlagMode.REPLACE, 0, [])
    assert [(s.flags, s.keywords) for s in cleared.change.changed] == [(0, ())]
    # As the IMAP session passes them: an IntFlag, which PostgreSQL's array of the
    # batch's new flags must not take for a sequence.
    flagged = await store.store_flags(inbox.id, [1, 2], FlagMode.ADD, SystemFlag.FLAGGED, [])
    assert {s.uid for s in flagged.change.changed} == {1, 2}
    rows = await store.fetch(inbox.id, [1, 2], FetchField.FLAGS)
    assert [r.flags for r in rows] == [FLAGGED, ANSWERED | DRAFT | FLAGGED]


async def test_store_flags_answers_every_message_found_as_left(store: SqlStore) -> None:
    """``FlagResult.found``, what STORE reports without reading the messages again: each
    message of the set that exists, in UID order, changed or not, refused or not."""
    _, inbox = await setup_inbox(store)
    appended = await store.append(inbox.id, [msg("a"), msg("b", flags=SEEN), msg("c")])
    before = appended.mailbox.highestmodseq
    flagged = await store.store_flags(inbox.id, [3], FlagMode.ADD, FLAGGED, [])
    result = await store.store_flags(
        inbox.id, [1, 2, 3, 42], FlagMode.ADD, SEEN, ["$Work"], unchanged_since=before
    )
    after = result.change.after
    assert result.failed_unchangedsince == (3,)
    assert [(s.uid, s.modseq, s.flags, s.keywords) for s in result.found] == [
        (1, after, SEEN, ("$Work",)),
        (2, after, SEEN, ("$Work",)),
        (3, flagged.change.after, FLAGGED, ()),
    ]
    rows = await store.fetch(inbox.id, [1, 2, 3], FetchField.FLAGS)
    assert [(r.uid, r.modseq, r.flags, r.keywords) for r in rows] == [
        (s.uid, s.modseq, s.flags, s.keywords) for s in result.found
    ]
    unchanged = await store.store_flags(inbox.id, [1], FlagMode.ADD, SEEN, [])
    assert [(s.uid, s.modseq) for s in unchanged.found] == [(1, after)]


async def test_keywords_are_case_insensitive(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    await store.append(inbox.id, [msg("a", keywords=("$Forwarded", "$forwarded", "Todo"))])
    (row,) = await store.fetch(inbox.id, [1], FetchField.FLAGS)
    assert row.keywords == ("$Forwarded", "Todo")
    same = await store.store_flags(inbox.id, [1], FlagMode.ADD, 0, ["$FORWARDED", "TODO"])
    assert same.change.changed == ()
    gone = await store.store_flags(inbox.id, [1], FlagMode.REMOVE, 0, ["$FORWARDED"])
    assert [s.keywords for s in gone.change.changed] == [("Todo",)]
    assert await store.search(inbox.id, q.HasKeyword("todo")) == [1]
    assert await store.search(inbox.id, q.HasKeyword("$forwarded")) == []


async def test_no_op_flag_change_does_not_bump_modseq(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    appended = await store.append(inbox.id, [msg("a", flags=SEEN)])
    listener = Listener()
    store.hub.watch_mailbox(inbox.id, listener)
    result = await store.store_flags(inbox.id, [1], FlagMode.ADD, SEEN, [])
    assert result.change.changed == ()
    assert result.change.before == result.change.after == appended.mailbox.highestmodseq
    assert (await mailbox(store, await _owner(store, inbox))).highestmodseq == (
        appended.mailbox.highestmodseq
    )
    missing = await store.store_flags(inbox.id, [42], FlagMode.ADD, SEEN, [])
    assert missing.change.changed == ()
    assert not listener.has_pending


async def _owner(store: SqlStore, box: Mailbox) -> Account:
    account = await store.get_account_by_id(box.account_id)
    assert account is not None
    return account


async def test_unchangedsince_reports_failures(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    appended = await store.append(inbox.id, [msg("a"), msg("b"), msg("c")])
    base = appended.mailbox.highestmodseq
    await store.store_flags(inbox.id, [2], FlagMode.ADD, FLAGGED, [])
    # RFC 7162 3.1.3: messages changed after UNCHANGEDSINCE are not touched.
    result = await store.store_flags(
        inbox.id, [1, 2, 3], FlagMode.ADD, SEEN, [], unchanged_since=base
    )
    assert result.failed_unchangedsince == (2,)
    assert [s.uid for s in result.change.changed] == [1, 3]
    rows = await store.fetch(inbox.id, [1, 2, 3], FetchField.FLAGS)
    assert [r.flags for r in rows] == [SEEN, FLAGGED, SEEN]
    zero = await store.store_flags(inbox.id, [1], FlagMode.ADD, DELETED, [], unchanged_since=0)
    assert zero.failed_unchangedsince == (1,)


# ---------------------------------------------------------------------------- expunge


async def test_expunge_removes_only_deleted_messages(store: SqlStore) -> None:
    account, inbox = await setup_inbox(store)
    messages = [msg("a", flags=DELETED), msg("b"), msg("c", flags=DELETED), msg("d", flags=DELETED)]
    await store.append(inbox.id, messages)
    partial = await store.expunge(inbox.id, [1, 2, 3])
    assert partial.expunged == (1, 3)
    assert list((await store.snapshot(inbox.id)).uids) == [2, 4]
    rest = await store.expunge(inbox.id)
    assert rest.expunged == (4,)
    assert rest.after > partial.after
    nothing = await store.expunge(inbox.id)
    assert nothing.expunged == ()
    assert nothing.after == rest.after
    usage = await store.get_account_by_id(account.id)
    assert usage is not None
    assert (usage.used_messages, usage.used_bytes) == (1, len(messages[1].raw))


async def test_remove_expunges_exactly_the_given_uids(store: SqlStore) -> None:
    account, inbox = await setup_inbox(store)
    await store.append(inbox.id, [msg("a"), msg("b", flags=DELETED), msg("c", flags=SEEN)])
    change = await store.remove(inbox.id, [1, 3, 7])
    assert change.expunged == (1, 3)
    assert list((await store.snapshot(inbox.id)).uids) == [2]
    usage = await store.get_account_by_id(account.id)
    assert usage is not None
    assert usage.used_messages == 1


# ---------------------------------------------------------------------------- changes


async def test_changes_since_reports_changes_and_expunges(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    start = (await store.append(inbox.id, [msg("a"), msg("b"), msg("c")])).mailbox.highestmodseq
    flagged = await store.store_flags(inbox.id, [1], FlagMode.ADD, SEEN, [])
    await store.remove(inbox.id, [2])
    appended = await store.append(inbox.id, [msg("d")])
    changes = await store.changes_since(inbox.id, start)
    assert changes.highestmodseq == appended.mailbox.highestmodseq
    assert changes.uidnext == 5
    assert [(s.uid, s.flags) for s in changes.changed] == [(1, SEEN), (4, 0)]
    assert changes.expunged == (2,)
    assert changes.expunge_log_complete
    later = await store.changes_since(inbox.id, flagged.change.after)
    assert [s.uid for s in later.changed] == [4]
    assert later.expunged == (2,)
    everything = await store.changes_since(inbox.id, 0)
    assert [s.uid for s in everything.changed] == [1, 3, 4]
    none = await store.changes_since(inbox.id, changes.highestmodseq)
    assert (none.changed, none.expunged) == ((), ())
    with pytest.raises(NotFound):
        await store.changes_since(inbox.id + 1000, 0)


async def test_changes_since_finds_every_change_before_and_after_compaction(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL finds what changed since a MODSEQ through created_modseq and the
    flag_changes log (merged by compact_flag_log), or reads the mailbox whole when that
    names many; SQLite through its index on MODSEQ. Each answers exactly the messages
    whose MODSEQ is above it, for every MODSEQ."""
    account, inbox = await setup_inbox(store)
    other = await store.create_mailbox(account.id, "Other")
    await store.append(other.id, [msg(f"o{i}") for i in range(4)])
    steps = 3 * sql.FLAG_LOG_KEEP
    await store.append(inbox.id, [msg(f"m{i}") for i in range(12)])
    await store.append(inbox.id, [msg(f"s{i}") for i in range(steps)])  # changed once each
    for step in range(steps):
        await store.store_flags(inbox.id, [13 + step], FlagMode.ADD, SEEN, [])
        if step >= steps - sql.FLAG_LOG_KEEP - 2:
            continue  # the newest log rows, and the first merged one, name one message
        uids = list(range(1 + step % 7, 13 + step // 9, 1 + step % 3))
        flag = (SEEN, FLAGGED, DELETED)[step % 3]
        mode = (FlagMode.REPLACE, FlagMode.ADD, FlagMode.REMOVE)[step % 5 % 3]
        await store.store_flags(inbox.id, uids, mode, flag, [f"$K{step % 4}"])
        if step % 9 == 0:
            await store.append(inbox.id, [msg(f"n{step}")])
        if step % 23 == 0:
            await store.copy(other.id, [1 + step % 4], inbox.id)
        if step % 31 == 0:
            await store.remove(inbox.id, [2 + step // 31])
    merged = await store.compact_flag_log()
    assert merged == (1 if store.engine.dialect.logs_flag_changes else 0)
    await store.store_flags(inbox.id, [3], FlagMode.ADD, ANSWERED, [])

    snapshot = await store.snapshot(inbox.id)
    rows = await store.fetch(inbox.id, list(snapshot.uids), FetchField.FLAGS)
    modseqs = {r.uid: r.modseq for r in rows}
    for lookups in (True, False):
        monkeypatch.setattr(sql, "few_enough", lambda candidates, uidnext, answer=lookups: answer)
        for since in range(snapshot.mailbox.highestmodseq + 1):
            changes = await store.changes_since(inbox.id, since)
            expected = [uid for uid, modseq in sorted(modseqs.items()) if modseq > since]
            assert [s.uid for s in changes.changed] == expected, (lookups, since)
            assert all(s.modseq == modseqs[s.uid] for s in changes.changed)
    assert await store.compact_flag_log() == 0  # merged already


async def test_trimmed_expunge_log_is_reported_incomplete(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    await store.append(inbox.id, [msg("a"), msg("b"), msg("c")])
    before = (await store.remove(inbox.id, [1])).before
    after = (await store.remove(inbox.id, [2])).after
    assert (await store.changes_since(inbox.id, before)).expunged == (1, 2)
    assert await store.trim_expunge_log(-1) >= 1  # everything logged before tomorrow
    trimmed = await store.changes_since(inbox.id, before)
    assert trimmed.expunged == ()
    assert not trimmed.expunge_log_complete
    assert (await store.changes_since(inbox.id, after)).expunge_log_complete
    assert (await store.remove(inbox.id, [3])).expunged == (3,)
    newer = await store.changes_since(inbox.id, after)
    assert (newer.expunged, newer.expunge_log_complete) == ((3,), True)


# ---------------------------------------------------------------------------- copy, move


async def test_copy_keeps_flags_and_emailid(store: SqlStore) -> None:
    account, inbox = await setup_inbox(store)
    archive = await mailbox(store, account, "Archive")
    await store.append(archive.id, [msg("already there")])
    await store.append(
        inbox.id, [msg("a", flags=SEEN, keywords=("$Work",)), msg("b"), msg("c", flags=FLAGGED)]
    )
    result = await store.copy(inbox.id, [3, 1, 9], archive.id)
    assert result.source_uids == (1, 3)
    assert result.target_uids == (2, 3)
    assert result.target.uidnext == 4
    fields = FetchField.FLAGS | FetchField.OBJECTID | FetchField.SIZE
    originals = await store.fetch(inbox.id, [1, 3], fields)
    copies = await store.fetch(archive.id, [2, 3], fields)
    assert [(r.flags, r.keywords, r.email_id, r.size) for r in copies] == [
        (r.flags, r.keywords, r.email_id, r.size) for r in originals
    ]
    assert list((await store.snapshot(inbox.id)).uids) == [1, 2, 3]
    usage = await store.get_account_by_id(account.id)
    assert usage is not None
    assert usage.used_messages == 6
    (change,) = result.changes
    assert change.mailbox_id == archive.id
    assert [s.uid for s in change.appended] == [2, 3]
    same = await store.copy(inbox.id, [2], inbox.id)
    assert same.target_uids == (4,)
    assert (await store.copy(inbox.id, [77], archive.id)).target_uids == ()


async def test_copy_respects_quota(store: SqlStore) -> None:
    account = await make_account(store, quota_messages=3)
    inbox = await mailbox(store, account)
    trash = await mailbox(store, account, "Trash")
    await store.append(inbox.id, [msg("a"), msg("b")])
    with pytest.raises(QuotaExceeded):
        await store.copy(inbox.id, [1, 2], trash.id)
    assert (await store.mailbox_status(trash.id)).messages == 0
    # A move within the account adds nothing and so needs no room.
    await store.append(inbox.id, [msg("c")])
    moved = await store.copy(inbox.id, [1, 2, 3], trash.id, move=True)
    assert moved.target_uids == (1, 2, 3)


async def test_move_within_account(store: SqlStore) -> None:
    account, inbox = await setup_inbox(store)
    junk = await mailbox(store, account, "Junk")
    await store.append(inbox.id, [msg("a", flags=SEEN), msg("b"), msg("c")])
    ids = await store.fetch(inbox.id, [1, 3], FetchField.OBJECTID)
    result = await store.copy(inbox.id, [1, 3], junk.id, move=True)
    assert (result.source_uids, result.target_uids) == ((1, 3), (1, 2))
    removed, added = result.changes
    assert (removed.mailbox_id, removed.expunged) == (inbox.id, (1, 3))
    assert (added.mailbox_id, [s.uid for s in added.appended]) == (junk.id, [1, 2])
    assert list((await store.snapshot(inbox.id)).uids) == [2]
    moved = await store.fetch(junk.id, [1, 2], FetchField.OBJECTID | FetchField.FLAGS)
    assert [r.email_id for r in moved] == [r.email_id for r in ids]
    assert moved[0].flags == SEEN
    usage = await store.get_account_by_id(account.id)
    assert usage is not None
    assert usage.used_messages == 3
    assert (await store.changes_since(inbox.id, 0)).expunged == (1, 3)


async def test_move_within_one_mailbox_renumbers_atomically(store: SqlStore) -> None:
    account, inbox = await setup_inbox(store)
    await store.append(inbox.id, [msg("a", flags=SEEN), msg("b")])
    before = await store.get_mailbox_by_id(inbox.id)
    assert before is not None
    result = await store.copy(inbox.id, [1], inbox.id, move=True)
    assert (result.source_uids, result.target_uids) == ((1,), (3,))
    added, removed = result.changes
    assert [s.uid for s in added.appended] == [3]
    assert removed.expunged == (1,)
    assert added.before == before.highestmodseq
    assert removed.before == added.after
    assert result.target.highestmodseq == removed.after
    assert result.target.uidnext == 4
    assert list((await store.snapshot(inbox.id)).uids) == [2, 3]
    (row,) = await store.fetch(inbox.id, [3], FetchField.FLAGS)
    assert row.flags == SEEN
    usage = await store.get_account_by_id(account.id)
    assert usage is not None
    assert usage.used_messages == 2


async def test_move_across_accounts_moves_usage(store: SqlStore) -> None:
    alice, alice_inbox = await setup_inbox(store)
    bob = await make_account(store, "bob@example.org", quota_messages=1)
    bob_inbox = await mailbox(store, bob)
    first, second = msg("a"), msg("b")
    await store.append(alice_inbox.id, [first, second])
    with pytest.raises(QuotaExceeded):
        await store.copy(alice_inbox.id, [1, 2], bob_inbox.id, move=True)
    await store.copy(alice_inbox.id, [1], bob_inbox.id, move=True)
    a = await store.get_account_by_id(alice.id)
    b = await store.get_account_by_id(bob.id)
    assert a is not None
    assert b is not None
    assert (a.used_messages, a.used_bytes) == (1, len(second.raw))
    assert (b.used_messages, b.used_bytes) == (1, len(first.raw))


# ---------------------------------------------------------------------------- search


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
async def corpus(store: SqlStore) -> tuple[SqlStore, Mailbox]:
    """Five messages with everything SEARCH looks at."""
    account, inbox = await setup_inbox(store)
    messages = [
        msg(
            "Zażółć gęślą jaźń",
            "Pchnąć w tę łódź jeża lub ośm skrzyń fig.\r\nZAŻÓŁĆ GĘŚLĄ JAŹŃ\r\n",
            sender="Paweł Nowak <pawel@example.pl>",
            to="Alice <alice@example.org>",
            date="Sat, 01 Jun 2024 23:30:00 -0700",
            message_id="<pl@example.pl>",
            headers=[("X-Mailer", "Thunderbird 115"), ("List-Id", "<polski.lists.example>")],
            flags=SEEN,
            internaldate=_dt("2024-06-02T08:00:00+02:00"),
        ),
        msg(
            "Žltý kôň",
            "Príliš žltučký kôň úpel ďábelské ódy.\r\nŽLUŤOUČKÝ KŮŇ\r\n",
            sender="Ján Novák <jan@example.sk>",
            to="Bob <bob@example.net>",
            cc="Alice <alice@example.org>",
            date="Mon, 03 Jun 2024 00:15:00 +0200",
            flags=SEEN | FLAGGED,
            keywords=("$Work",),
            internaldate=_dt("2024-06-03T00:30:00+02:00"),
        ),
        msg(
            "Meeting notes",
            "We met at the café.\r\nAction items: ab, cd.\r\n" + "filler line\r\n" * 40,
            sender="Carol <carol@example.com>",
            to="Dave <dave@example.com>",
            bcc="Secret <secret@example.com>",
            date="Tue, 04 Jun 2024 09:00:00 +0000",
            keywords=("Todo",),
            headers=[("X-Mailer", "mutt")],
            internaldate=_dt("2024-06-04T09:00:00+00:00"),
        ),
        msg(
            "Re: Meeting notes",
            "Thanks!\r\n",
            sender="Dave <dave@example.com>",
            to="Carol <carol@example.com>",
            date=None,
            flags=ANSWERED | DELETED,
            in_reply_to="<notes@example.com>",
            internaldate=_dt("2024-06-05T12:00:00-05:00"),
        ),
        msg(
            "Invoice 100% paid_in_full",
            "Amount: 100% [paid_in_full] \\o/\r\n",
            sender="Billing <billing@example.com>",
            to="alice@example.org",
            date="Thu, 06 Jun 2024 10:00:00 +0000",
            flags=DRAFT,
            internaldate=_dt("2024-06-06T10:00:00+00:00"),
        ),
    ]
    await store.append(inbox.id, messages)
    del account
    return store, inbox


_SEARCHES: list[tuple[str, q.Query, list[int]]] = [
    ("all", q.All(), [1, 2, 3, 4, 5]),
    ("uids", q.Uids(((2, 3), (5, 9))), [2, 3, 5]),
    ("no uids", q.Uids(()), []),
    ("seen", q.HasFlags(SEEN), [1, 2]),
    ("unseen", q.HasFlags(SEEN, present=False), [3, 4, 5]),
    ("seen and flagged", q.HasFlags(SEEN | FLAGGED), [2]),
    ("deleted", q.HasFlags(DELETED), [4]),
    ("draft", q.HasFlags(DRAFT), [5]),
    ("answered", q.HasFlags(ANSWERED), [4]),
    ("keyword", q.HasKeyword("$work"), [2]),
    ("unkeyword", q.HasKeyword("TODO", present=False), [1, 2, 4, 5]),
    ("keyword prefix is not a match", q.HasKeyword("$Wor"), []),
    ("recent", q.Recent(4), [4, 5]),
    ("subject non-ascii, other case", q.HeaderContains("subject", "ZAŻÓŁĆ"), [1]),
    ("subject slovak", q.HeaderContains("subject", "ŽLTÝ"), [2]),
    ("subject substring", q.HeaderContains("subject", "eeting not"), [3, 4]),
    ("from name", q.HeaderContains("from", "nowak"), [1]),
    ("from address", q.HeaderContains("from", "@EXAMPLE.SK"), [2]),
    ("to", q.HeaderContains("to", "carol"), [4]),
    ("cc", q.HeaderContains("cc", "alice"), [2]),
    ("bcc", q.HeaderContains("bcc", "secret"), [3]),
    ("subject with LIKE wildcards", q.HeaderContains("subject", "100% paid_"), [5]),
    ("wildcards are literal", q.HeaderContains("subject", "1_0"), []),
    ("other header", q.HeaderContains("x-mailer", "THUNDERBIRD"), [1]),
    ("other header present", q.HeaderContains("x-mailer", ""), [1, 3]),
    ("message-id", q.HeaderContains("message-id", "pl@example"), [1]),
    ("in-reply-to", q.HeaderContains("in-reply-to", "notes@"), [4]),
    ("absent header", q.HeaderContains("x-nothing", ""), []),
    ("body polish other case", q.BodyContains("ŁÓDŹ JEŻA"), [1]),
    ("body polish upper in text", q.BodyContains("zażółć gęślą"), [1]),
    ("body slovak", q.BodyContains("žluťoučký kůň"), [2]),
    ("body accented", q.BodyContains("CAFÉ"), [3]),
    ("body short needle", q.BodyContains("ab"), [3]),
    ("body one letter", q.BodyContains("ż"), [1]),
    ("body one letter, other z", q.BodyContains("Ž"), [2]),
    ("body is not headers", q.BodyContains("Meeting"), []),
    ("body across words", q.BodyContains("ms: ab, c"), [3]),
    ("body wildcards literal", q.BodyContains("100% [paid_in"), [5]),
    ("body backslash", q.BodyContains("\\o/"), [5]),
    ("body percent only", q.BodyContains("%"), [5]),
    ("body no match", q.BodyContains("nonexistent words here"), []),
    ("body empty", q.BodyContains(""), [1, 2, 3, 4, 5]),
    ("text in header", q.TextContains("thunderbird"), [1]),
    ("text in body", q.TextContains("THANKS"), [4]),
    ("text short", q.TextContains("ó"), [1, 2]),
    ("text either", q.TextContains("carol"), [3, 4]),
    ("before internal", q.DateCompare("internal", "before", date(2024, 6, 3)), [1]),
    ("on internal local day", q.DateCompare("internal", "on", date(2024, 6, 3)), [2]),
    ("since internal", q.DateCompare("internal", "since", date(2024, 6, 5)), [4, 5]),
    ("sent on sender's day", q.DateCompare("sent", "on", date(2024, 6, 1)), [1]),
    ("sent on with positive zone", q.DateCompare("sent", "on", date(2024, 6, 3)), [2]),
    ("sent before", q.DateCompare("sent", "before", date(2024, 6, 4)), [1, 2]),
    ("sent falls back to internal", q.DateCompare("sent", "on", date(2024, 6, 5)), [4]),
    (
        "younger",
        q.InternalAfter(_dt("2024-06-04T09:00:00+00:00"), younger=True),
        [3, 4, 5],
    ),
    ("older", q.InternalAfter(_dt("2024-06-04T09:00:00+00:00"), younger=False), [1, 2]),
    ("larger", q.SizeCompare(larger=True, size=700), [3]),
    ("smaller", q.SizeCompare(larger=False, size=400), [2, 4, 5]),
    ("not", q.Not(q.HasFlags(SEEN)), [3, 4, 5]),
    ("and", q.And((q.HasFlags(SEEN), q.BodyContains("kůň"))), [2]),
    ("empty and", q.And(()), [1, 2, 3, 4, 5]),
    ("or", q.Or(q.HasFlags(DRAFT), q.HeaderContains("x-mailer", "mutt")), [3, 5]),
    (
        "nested not/or with scans",
        q.Not(q.Or(q.HeaderContains("x-mailer", ""), q.And((q.BodyContains("a"), q.All())))),
        [2],
    ),
    (
        "not of short needle",
        q.And((q.Not(q.BodyContains("ż")), q.Not(q.HasFlags(DELETED)))),
        [2, 3, 5],
    ),
    (
        "or of header scan and fts",
        q.Or(q.HeaderContains("list-id", "polski"), q.TextContains("ďábelské")),
        [1, 2],
    ),
    ("not not", q.Not(q.Not(q.Uids(((1, 1),)))), [1]),
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [(query, expected) for _, query, expected in _SEARCHES],
    ids=[name for name, _, _ in _SEARCHES],
)
async def test_search(
    corpus: tuple[SqlStore, Mailbox], query: q.Query, expected: list[int]
) -> None:
    store, inbox = corpus
    assert await store.search(inbox.id, query) == expected


async def test_search_by_size_modseq_and_object_ids(corpus: tuple[SqlStore, Mailbox]) -> None:
    store, inbox = corpus
    rows = await store.fetch(inbox.id, [1, 2, 3, 4, 5], FetchField.SIZE | FetchField.OBJECTID)
    sizes = {r.uid: r.size for r in rows}
    middle = sorted(sizes.values())[2]
    larger = [uid for uid, size in sizes.items() if size > middle]
    assert await store.search(inbox.id, q.SizeCompare(larger=True, size=middle)) == larger
    assert await store.search(inbox.id, q.SizeCompare(larger=False, size=middle)) == sorted(
        uid for uid, size in sizes.items() if size < middle
    )
    changed = await store.store_flags(inbox.id, [2, 4], FlagMode.ADD, DRAFT, [])
    assert await store.search(inbox.id, q.ModseqAtLeast(changed.change.after)) == [2, 4]
    assert await store.search(inbox.id, q.ModseqAtLeast(0)) == [1, 2, 3, 4, 5]
    assert await store.search(inbox.id, q.EmailId(rows[2].email_id)) == [3]
    assert await store.search(inbox.id, q.EmailId("nonsense")) == []
    assert await store.search(inbox.id, q.ThreadId(rows[0].thread_id)) == [1]
    assert await store.search(inbox.id, q.ThreadId("T")) == []


async def test_search_is_limited_to_the_mailbox(store: SqlStore) -> None:
    account, inbox = await setup_inbox(store)
    other = await mailbox(store, account, "Archive")
    await store.append(inbox.id, [msg("needle", "haystack with a needle")])
    await store.append(other.id, [msg("x", "another needle"), msg("y", "nothing")])
    assert await store.search(other.id, q.BodyContains("needle")) == [1]
    assert await store.search(other.id, q.BodyContains("ne")) == [1]
    assert await store.search(other.id, q.HeaderContains("subject", "needle")) == []


async def test_search_finds_text_of_large_messages(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    words = " ".join(f"word{i}" for i in range(60_000))
    await store.append(inbox.id, [msg("big", words + " Ünïcödé tail\r\n"), msg("small")])
    assert await store.search(inbox.id, q.BodyContains("word59999 ünïcödé")) == [1]
    assert await store.search(inbox.id, q.BodyContains("word 59999")) == []
    assert await store.search(inbox.id, q.BodyContains("rd12345 word12346 wo")) == [1]


_SORT_MESSAGES = [
    # subject, from, to, cc, date, size padding, internaldate
    ("Re: beta", "Zed <zed@b.example>", "Amy <amy@z.example>", "c@x", "2024-01-03", 10),
    ("alpha", "Bea <bea@a.example>", "zoe@y.example", "a@x", "2024-01-01", 300),
    ("Fwd: Gamma", "ann@c.example", "Yan <yan@a.example>", "b@x", "2024-01-02", 50),
]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("arrival", [2, 3, 1]),
        ("date", [2, 3, 1]),
        ("size", [1, 3, 2]),
        ("subject", [2, 1, 3]),
        ("from", [3, 2, 1]),
        ("to", [1, 3, 2]),
        ("cc", [2, 3, 1]),
        ("displayfrom", [3, 2, 1]),
        ("displayto", [1, 3, 2]),
    ],
)
async def test_sort_every_key(store: SqlStore, key: str, expected: list[int]) -> None:
    _, inbox = await setup_inbox(store)
    for subject, sender, to, cc, day, padding in _SORT_MESSAGES:
        moment = _dt(f"{day}T12:00:00+00:00")
        await store.append(
            inbox.id,
            [
                msg(
                    subject,
                    "x" * padding,
                    sender=sender,
                    to=to,
                    cc=cc,
                    date=moment.strftime("%a, %d %b %Y %H:%M:%S +0000"),
                    internaldate=moment,
                )
            ],
        )
    assert await store.sort(inbox.id, [q.SortKey(key)], q.All()) == expected
    reverse = await store.sort(inbox.id, [q.SortKey(key, reverse=True)], q.All())
    assert reverse == expected[::-1]
    assert await store.sort(inbox.id, [q.SortKey(key)], q.Uids(((1, 2),))) == [
        u for u in expected if u <= 2
    ]


async def test_sort_ties_fall_back_to_later_keys_then_uid(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    await store.append(
        inbox.id,
        [msg("same", "aaaa"), msg("same", "a"), msg("other", "aa"), msg("same", "a")],
    )
    keys = [q.SortKey("subject"), q.SortKey("size", reverse=True)]
    assert await store.sort(inbox.id, keys, q.All()) == [3, 1, 2, 4]
    assert await store.sort(inbox.id, [q.SortKey("subject")], q.BodyContains("aa")) == [3, 1]


# ---------------------------------------------------------------------------- blobs


async def _stored_large(store: SqlStore, lines: int, at_least: int) -> tuple[bytes, BlobReader]:
    """A message of ``lines`` numbered lines (over ``at_least`` octets), appended to a
    new INBOX, and its blob opened."""
    _, inbox = await setup_inbox(store)
    body = "".join(f"{i:07d} line of a rather large message\r\n" for i in range(lines))
    raw = raw_message("large", body)
    assert len(raw) > at_least
    await store.append(inbox.id, [new(raw)])
    (row,) = await store.fetch(inbox.id, [1], FetchField.BLOB)
    return raw, await store.open_blob(row.blob)


async def test_blob_reader_reads_ranges(store: SqlStore) -> None:
    raw, reader = await _stored_large(store, 20_000, 700_000)
    try:
        assert reader.size == len(raw)
        assert await reader.read(0, 10) == raw[:10]
        for offset, length in [(0, len(raw)), (5, 100), (262_100, 200), (300_000, 400_000)]:
            assert await reader.read(offset, length) == raw[offset : offset + length]
        assert await reader.read(len(raw) - 5, 100) == raw[-5:]
        assert await reader.read(len(raw), 10) == b""
        parts = [part async for part in reader.chunks(1000, 500_000, chunk=65536)]
        assert b"".join(parts) == raw[1000:501_000]
        assert all(len(p) <= 65536 for p in parts)
    finally:
        await reader.close()
    with pytest.raises(NotFound):
        await store.open_blob("0" * 64)


async def test_blob_reader_streams_ranges(store: SqlStore) -> None:
    # Over 1 MiB: PostgreSQL streams it in more than one group of stored chunks, each
    # read while the one before is consumed.
    raw, reader = await _stored_large(store, 35_000, 1_300_000)
    try:
        for offset, length, chunk in [
            (0, len(raw), 65536),
            (262_143, 1_100_000, 100_000),
            (1_048_570, 20, 3),
            (len(raw) - 10, 100, 7),
            (len(raw), 10, 5),
        ]:
            parts = [part async for part in reader.chunks(offset, length, chunk=chunk)]
            assert b"".join(parts) == raw[offset : offset + length]
            assert all(0 < len(p) <= chunk for p in parts)
        # A consumer that stops early (a client gone mid-download) leaves nothing behind.
        stream = reader.chunks(0, len(raw), chunk=65536)
        assert await anext(stream) == raw[:65536]
        await stream.aclose()  # type: ignore[attr-defined]
    finally:
        await reader.close()


async def test_empty_and_tiny_messages_round_trip(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    for raw in [b"", b"x", b"Subject: only a header\r\n"]:
        await store.append(inbox.id, [new(raw)])
    rows = await store.fetch(inbox.id, [1, 2, 3], FetchField.BLOB | FetchField.SIZE)
    for row, raw in zip(rows, [b"", b"x", b"Subject: only a header\r\n"], strict=True):
        assert row.size == len(raw)
        reader = await store.open_blob(row.blob)
        try:
            assert reader.size == len(raw)
            assert await reader.read(0, 100) == raw
        finally:
            await reader.close()


async def test_open_small_blobs_reads_many_at_once(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    small = [raw_message(f"small {i}", f"body {i}\r\n") for i in range(3)]
    large = raw_message("large", "x" * 78 + "\r\n" * 1 + ("y" * 78 + "\r\n") * 6_000)
    assert len(large) > 300_000  # above both stores' single-read size
    await store.append(inbox.id, [new(raw) for raw in [*small, large]])
    rows = await store.fetch(inbox.id, [1, 2, 3, 4], FetchField.BLOB)
    blobs = [row.blob for row in rows]
    readers = await store.open_small_blobs([*blobs, blobs[0], "0" * 64])
    # The small ones, each once; an unknown name is left to open_blob, and so is the
    # large one where the store streams it from a file (SQLite), not where every read is
    # a round trip (PostgreSQL: read whole, every chunk in order).
    assert set(readers) == set(blobs if store.remote_reads else blobs[:3])
    if store.remote_reads:
        assert await readers[blobs[3]].read(0, len(large)) == large
    for blob, raw in zip(blobs[:3], small, strict=True):
        assert readers[blob].size == len(raw)
        assert await readers[blob].read(0, len(raw) + 10) == raw
        assert b"".join([c async for c in readers[blob].chunks(3, 10, chunk=4)]) == raw[3:13]
    assert await store.open_small_blobs([]) == {}


# ---------------------------------------------------------------------------- collection


async def _blob_exists(store: SqlStore, blob: str) -> bool:
    try:
        reader = await store.open_blob(blob)
    except NotFound:
        return False
    await reader.close()
    return True


async def test_expunging_many_messages_releases_every_content(store: SqlStore) -> None:
    """More messages than one lookup of unreferenced contents takes (``_ID_BATCH``),
    half of them with a copy elsewhere that keeps their contents."""
    account, inbox = await setup_inbox(store)
    archive = await mailbox(store, account, "Archive")
    count = 1100
    await store.append(inbox.id, [msg(f"note {i}", f"Body {i}\r\n") for i in range(count)])
    kept = list(range(2, count + 1, 2))
    await store.copy(inbox.id, kept, archive.id)
    await store.remove(inbox.id, list(range(1, count + 1)))
    collected = 0
    while found := await store.collect_garbage():  # it collects a batch at a time
        collected += found
    assert collected == count - len(kept)
    rows = await store.fetch(archive.id, list(range(1, len(kept) + 1)), FetchField.BLOB)
    assert [await _blob_exists(store, row.blob) for row in rows] == [True] * len(kept)


async def test_garbage_collection_keeps_referenced_blobs(store: SqlStore) -> None:
    account, inbox = await setup_inbox(store)
    archive = await mailbox(store, account, "Archive")
    raw = raw_message("kept while referenced", "Unique body 1\r\n")
    await store.append(inbox.id, [new(raw), msg("other")])
    await store.copy(inbox.id, [1], archive.id)
    (row,) = await store.fetch(inbox.id, [1], FetchField.BLOB)
    await store.remove(inbox.id, [1])
    await store.collect_garbage()
    assert await _blob_exists(store, row.blob)
    assert await store.search(archive.id, q.BodyContains("unique body")) == [1]
    await store.remove(archive.id, [1])
    assert await store.collect_garbage() == 1
    assert not await _blob_exists(store, row.blob)
    assert await store.collect_garbage() == 0
    # The same message again: a new copy of the blob, searchable again.
    await store.append(archive.id, [new(raw)])
    (again,) = await store.fetch(archive.id, [2], FetchField.BLOB)
    assert again.blob == row.blob
    assert await _blob_exists(store, row.blob)
    assert await store.search(archive.id, q.BodyContains("unique body")) == [2]


async def test_reappend_before_collection_keeps_the_blob(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    raw = raw_message("back again", "Body that comes back\r\n")
    await store.append(inbox.id, [new(raw)])
    (row,) = await store.fetch(inbox.id, [1], FetchField.BLOB)
    await store.remove(inbox.id, [1])
    await store.append(inbox.id, [new(raw)])
    await store.collect_garbage()
    assert await _blob_exists(store, row.blob)
    assert await blob_bytes(store, row.blob) == raw
    assert await store.search(inbox.id, q.BodyContains("comes back")) == [2]


async def test_reappend_during_collection_is_safe(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    for round_ in range(15):
        raw = raw_message(f"round {round_}", f"Body of round {round_}\r\n")
        await store.append(inbox.id, [new(raw)])
        uid = (await store.snapshot(inbox.id)).uids[-1]
        await store.remove(inbox.id, [uid])
        await asyncio.gather(store.collect_garbage(), store.append(inbox.id, [new(raw)]))
        last = (await store.snapshot(inbox.id)).uids[-1]
        (row,) = await store.fetch(inbox.id, [last], FetchField.BLOB)
        assert await blob_bytes(store, row.blob) == raw
        await store.collect_garbage()
        assert await _blob_exists(store, row.blob)


async def test_an_append_whose_blob_is_gone_writes_it_again(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blob collected between being written and the append's transaction: the
    transaction finds it missing, inserts nothing, and the append writes the blob again
    and succeeds (here the first write is lost instead, which looks the same). Two
    messages: PostgreSQL stores one message's blob with its append."""
    _, inbox = await setup_inbox(store)
    real_put = store.engine.put_blob
    writes: list[str] = []

    async def put_losing_the_first(blob: str, data: bytes) -> None:
        writes.append(blob)
        if len(writes) > 1:
            await real_put(blob, data)

    monkeypatch.setattr(store.engine, "put_blob", put_losing_the_first)
    raw = raw_message("written twice", "The body that came back.\r\n")
    result = await store.append(inbox.id, [new(raw), msg("another")])
    assert writes == [writes[0], writes[1], writes[0], writes[1]]
    rows = await store.fetch(inbox.id, list(result.uids), FetchField.BLOB)
    assert await blob_bytes(store, rows[0].blob) == raw
    assert await store.search(inbox.id, q.BodyContains("came back")) == [result.uids[0]]
    account = await store.get_account_by_id(inbox.account_id)
    assert account is not None
    assert account.used_messages == 2


# ---------------------------------------------------------------------------- hub


async def test_changes_are_published_after_commit_in_order(store: SqlStore) -> None:
    account, inbox = await setup_inbox(store)
    listener = Listener()
    store.hub.watch_mailbox(inbox.id, listener)
    appended = await store.append(inbox.id, [msg("a"), msg("b", flags=DELETED)])
    # Published by the time the write returns, and readable by then.
    (first,) = listener.drain()
    assert first == appended.change
    assert list((await store.snapshot(inbox.id)).uids) == [1, 2]
    await store.store_flags(inbox.id, [1], FlagMode.ADD, SEEN, [])
    await store.expunge(inbox.id)
    await store.copy(inbox.id, [1], inbox.id)
    changes = [c for c in listener.drain() if isinstance(c, ChangeSet)]
    assert [bool(c.changed) for c in changes] == [True, False, False]
    assert changes[1].expunged == (2,)
    assert [s.uid for s in changes[2].appended] == [3]
    chain = [first, *changes]
    assert all(a.after == b.before for a, b in itertools.pairwise(chain))
    assert chain[-1].after == (await mailbox(store, account)).highestmodseq
    store.hub.unwatch_mailbox(inbox.id, listener)
    await store.append(inbox.id, [msg("c")])
    assert not listener.has_pending


async def test_concurrent_writes_publish_in_commit_order(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    listener = Listener()
    store.hub.watch_mailbox(inbox.id, listener)
    await asyncio.gather(*(store.append(inbox.id, [msg(str(i))]) for i in range(20)))
    changes = [c for c in listener.drain() if isinstance(c, ChangeSet)]
    assert len(changes) == 20
    assert all(a.after == b.before for a, b in itertools.pairwise(changes))


# ---------------------------------------------------------------------------- concurrency


async def test_concurrent_appends_get_distinct_uids(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    results = await asyncio.gather(*(store.append(inbox.id, [msg(f"m{i}")]) for i in range(100)))
    uids = sorted(uid for r in results for uid in r.uids)
    assert uids == list(range(1, 101))
    modseqs = sorted(r.change.after for r in results)
    assert len(set(modseqs)) == 100
    box = await store.get_mailbox_by_id(inbox.id)
    assert box is not None
    assert (box.uidnext, box.highestmodseq) == (101, modseqs[-1])
    assert (await store.mailbox_status(inbox.id)).messages == 100


async def test_concurrent_flag_changes_are_all_kept(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    start = (await store.append(inbox.id, [msg("a"), msg("b")])).mailbox.highestmodseq
    keywords = [f"k{i:02d}" for i in range(40)]
    await asyncio.gather(
        *(store.store_flags(inbox.id, [1, 2], FlagMode.ADD, 0, [k]) for k in keywords)
    )
    rows = await store.fetch(inbox.id, [1, 2], FetchField.FLAGS)
    assert [r.keywords for r in rows] == [tuple(keywords)] * 2
    box = await store.get_mailbox_by_id(inbox.id)
    assert box is not None
    assert box.highestmodseq == start + 40


async def test_concurrent_appends_never_overshoot_quota(store: SqlStore) -> None:
    account = await make_account(store, quota_messages=10)
    inbox = await mailbox(store, account)
    results = await asyncio.gather(
        *(store.append(inbox.id, [msg(f"m{i}")]) for i in range(25)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 10
    assert all(isinstance(r, QuotaExceeded) for r in results if isinstance(r, BaseException))
    usage = await store.get_account_by_id(account.id)
    assert usage is not None
    assert usage.used_messages == 10


# ---------------------------------------------------------------------------- lifecycle


async def test_data_persists_across_reopen(backend: Backend) -> None:
    store = await backend.open()
    account, inbox = await setup_inbox(store)
    await store.set_account_setting(account.id, "k", "v")
    raw = raw_message("persisted", "Still here after a restart\r\n")
    appended = await store.append(inbox.id, [new(raw, flags=SEEN, keywords=("$Kept",))])
    await store.remove(inbox.id, [])  # no-op writes are fine too
    await backend.close(store)
    again = await backend.open()
    account_again = await again.get_account("alice@example.org")
    assert account_again is not None
    assert account_again.settings == {"k": "v"}
    box = await again.get_mailbox_by_id(inbox.id)
    assert box == appended.mailbox
    (row,) = await again.fetch(inbox.id, [1], FetchField.FLAGS | FetchField.BLOB)
    assert (row.flags, row.keywords) == (SEEN, ("$Kept",))
    assert await blob_bytes(again, row.blob) == raw
    assert await again.search(inbox.id, q.BodyContains("after a restart")) == [1]


async def test_maildrop_lock_is_exclusive(store: SqlStore) -> None:
    alice, _ = await setup_inbox(store)
    bob = await make_account(store, "bob@example.org")
    async with store.maildrop_lock(alice.id) as first:
        assert first
        async with store.maildrop_lock(alice.id) as second:
            assert not second
        async with store.maildrop_lock(bob.id) as other:
            assert other
    async with store.maildrop_lock(alice.id) as again:
        assert again


# ---------------------------------------------------------------------------- sharing


async def test_acl_entries_are_set_modified_listed_and_removed(store: SqlStore) -> None:
    alice, inbox = await setup_inbox(store)
    assert await store.get_acl(inbox.id) == []
    assert await store.set_acl(inbox.id, "bob@example.org", "rlwsi") == "lrswi"
    assert await store.set_acl(inbox.id, "anyone", "l") == "l"
    assert await store.set_acl(inbox.id, "bob@example.org", "te", FlagMode.ADD) == "lrswite"
    assert await store.set_acl(inbox.id, "bob@example.org", "wq", FlagMode.REMOVE) == "lrsite"
    assert await store.get_acl(inbox.id) == [("anyone", "l"), ("bob@example.org", "lrsite")]
    assert await store.acl_rights(inbox.id, ["bob@example.org", "carol@example.org"]) == [
        ("bob@example.org", "lrsite")
    ]
    # An entry left with no rights is gone; deleting twice says so.
    assert await store.set_acl(inbox.id, "anyone", "") == ""
    assert await store.delete_acl(inbox.id, "bob@example.org")
    assert not await store.delete_acl(inbox.id, "bob@example.org")
    assert await store.get_acl(inbox.id) == []
    gone = await store.create_mailbox(alice.id, "Gone")
    await store.delete_mailbox(gone.id)
    with pytest.raises(NotFound):
        await store.set_acl(gone.id, "bob@example.org", "lr")


async def test_grants_list_mailboxes_shared_with_an_identifier(store: SqlStore) -> None:
    alice, inbox = await setup_inbox(store)
    carol = await make_account(store, "carol@example.org")
    work = await store.create_mailbox(alice.id, "Work")
    notes = await store.create_mailbox(carol.id, "Notes")
    await store.set_acl(work.id, "bob@example.org", "lr")
    await store.set_acl(notes.id, "anyone", "l")
    await store.set_acl(inbox.id, "dave@example.org", "lr")
    grants = await store.list_grants(["bob@example.org", "anyone"])
    assert [(g.owner, g.mailbox.name, g.identifier, g.rights) for g in grants] == [
        ("alice@example.org", "Work", "bob@example.org", "lr"),
        ("carol@example.org", "Notes", "anyone", "l"),
    ]
    assert grants[0].mailbox == work
    assert await store.list_grants([]) == []


async def test_new_mailboxes_inherit_their_parents_acl(store: SqlStore) -> None:
    alice, _ = await setup_inbox(store)
    team = await store.create_mailbox(alice.id, "Team")
    await store.set_acl(team.id, "bob@example.org", "lrswik")
    child = await store.create_mailbox(alice.id, "Team/Plans/2030")
    parent = await mailbox(store, alice, "Team/Plans")
    for box in (parent, child):
        assert await store.get_acl(box.id) == [("bob@example.org", "lrswik")]
    top = await store.create_mailbox(alice.id, "Elsewhere")
    assert await store.get_acl(top.id) == []
    # Renaming keeps the list (RFC 4314 4: RENAME does not change ACLs).
    await store.rename_mailbox(alice.id, "Team", "Crew")
    renamed = await mailbox(store, alice, "Crew/Plans/2030")
    assert await store.get_acl(renamed.id) == [("bob@example.org", "lrswik")]


async def test_deleting_removes_acl_entries_and_annotations(store: SqlStore) -> None:
    alice, inbox = await setup_inbox(store)
    bob = await make_account(store, "bob@example.org")
    work = await store.create_mailbox(alice.id, "Work")
    bob_box = await mailbox(store, bob)
    await store.set_acl(work.id, "bob@example.org", "lr")
    await store.set_acl(inbox.id, "bob@example.org", "lr")
    await store.set_acl(bob_box.id, "alice@example.org", "lr")
    await store.set_metadata(work.id, alice.id, [("/shared/comment", b"w")], max_entries=10)
    await store.set_metadata(inbox.id, bob.id, [("/private/comment", b"b")], max_entries=10)
    await store.set_metadata(None, bob.id, [("/private/vendor/x", b"1")], max_entries=10)
    await store.delete_mailbox(work.id)
    assert [g.mailbox.name for g in await store.list_grants(["bob@example.org"])] == ["INBOX"]
    assert await store.list_metadata(work.id, alice.id) == []
    await store.delete_account(bob.id)
    # Rights granted to bob and bob's private annotations of alice's INBOX are gone.
    assert await store.get_acl(inbox.id) == []
    assert await store.list_metadata(inbox.id, bob.id) == []
    assert await store.list_metadata(None, bob.id) == []
    await store.delete_account(alice.id)
    assert await store.list_grants(["alice@example.org", "bob@example.org"]) == []


async def test_acl_changes_are_published_to_owner_and_grantee(store: SqlStore) -> None:
    alice, inbox = await setup_inbox(store)
    bob = await make_account(store, "bob@example.org")
    owner, grantee, other = Listener(), Listener(), Listener()
    store.hub.watch_account(alice.id, owner)
    store.hub.watch_account(bob.id, grantee)
    store.hub.watch_mailbox(inbox.id, other)
    await store.set_acl(inbox.id, "bob@example.org", "lr")
    await store.set_acl(inbox.id, "bob@example.org", "lr")  # no change: nothing published
    await store.set_acl(inbox.id, "nobody@example.org", "l")
    expected_owner = [
        RightsChanged(alice.id, inbox.id, "bob@example.org"),
        RightsChanged(alice.id, inbox.id, "nobody@example.org"),
    ]
    assert owner.drain() == expected_owner
    assert grantee.drain() == [RightsChanged(bob.id, inbox.id, "bob@example.org")]
    assert other.drain() == [
        RightsChanged(alice.id, inbox.id, "bob@example.org"),
        RightsChanged(bob.id, inbox.id, "bob@example.org"),
        RightsChanged(alice.id, inbox.id, "nobody@example.org"),
    ]
    await store.delete_acl(inbox.id, "bob@example.org")
    assert grantee.drain() == [RightsChanged(bob.id, inbox.id, "bob@example.org")]


async def test_mailbox_events_name_their_mailbox_for_its_watchers(store: SqlStore) -> None:
    alice, _ = await setup_inbox(store)
    work = await store.create_mailbox(alice.id, "Work")
    watcher = Listener()
    store.hub.watch_mailbox(work.id, watcher)
    await store.rename_mailbox(alice.id, "Work", "Job")
    await store.create_mailbox(alice.id, "Unrelated")
    await store.delete_mailbox(work.id)
    events = [c for c in watcher.drain() if isinstance(c, MailboxEvent)]
    assert [(e.kind, e.name, e.old_name, e.mailbox_id) for e in events] == [
        ("renamed", "Job", "Work", work.id),
        ("deleted", "Job", None, work.id),
    ]


async def test_metadata_private_and_shared_entries(store: SqlStore) -> None:
    alice, inbox = await setup_inbox(store)
    bob = await make_account(store, "bob@example.org")
    changed = await store.set_metadata(
        inbox.id,
        alice.id,
        [("/shared/comment", b"team inbox"), ("/private/comment", b"mine\x00binary")],
        max_entries=10,
    )
    assert changed == ["/shared/comment", "/private/comment"]
    await store.set_metadata(inbox.id, bob.id, [("/private/comment", b"bob's")], max_entries=10)
    assert await store.list_metadata(inbox.id, alice.id) == [
        ("/private/comment", b"mine\x00binary"),
        ("/shared/comment", b"team inbox"),
    ]
    assert await store.list_metadata(inbox.id, bob.id) == [
        ("/private/comment", b"bob's"),
        ("/shared/comment", b"team inbox"),
    ]
    # Setting the same value changes nothing; None removes; removing nothing is fine.
    assert (
        await store.set_metadata(
            inbox.id, alice.id, [("/shared/comment", b"team inbox")], max_entries=10
        )
        == []
    )
    assert await store.set_metadata(
        inbox.id, alice.id, [("/shared/comment", None), ("/shared/absent", None)], max_entries=10
    ) == ["/shared/comment"]
    assert await store.list_metadata(inbox.id, bob.id) == [("/private/comment", b"bob's")]


async def test_metadata_limit_refuses_the_whole_command(store: SqlStore) -> None:
    alice, inbox = await setup_inbox(store)
    await store.set_metadata(
        inbox.id, alice.id, [(f"/shared/e{i}", b"x") for i in range(3)], max_entries=4
    )
    with pytest.raises(TooManyEntries):
        await store.set_metadata(
            inbox.id, alice.id, [("/shared/e9", b"y"), ("/shared/e8", b"z")], max_entries=4
        )
    assert [e for e, _ in await store.list_metadata(inbox.id, alice.id)] == [
        "/shared/e0",
        "/shared/e1",
        "/shared/e2",
    ]
    # Private entries are counted apart, per user; replacing one adds nothing.
    await store.set_metadata(inbox.id, alice.id, [("/private/p", b"1")], max_entries=4)
    await store.set_metadata(inbox.id, alice.id, [("/shared/e0", b"new")], max_entries=3)


async def test_server_metadata(store: SqlStore) -> None:
    alice, _ = await setup_inbox(store)
    bob = await make_account(store, "bob@example.org")
    listener, server = Listener(), Listener()
    store.hub.watch_account(bob.id, listener)
    store.hub.watch_account(SERVER_CHANNEL, server)
    try:
        await store.set_metadata(None, alice.id, [("/shared/admin", b"mailto:a@x")], max_entries=5)
        await store.set_metadata(None, bob.id, [("/private/vendor/x/y", b"1")], max_entries=5)
        assert await store.list_metadata(None, bob.id) == [
            ("/private/vendor/x/y", b"1"),
            ("/shared/admin", b"mailto:a@x"),
        ]
        assert await store.list_metadata(None, alice.id) == [("/shared/admin", b"mailto:a@x")]
        assert server.drain() == [MetadataChanged(SERVER_CHANNEL, None, ("/shared/admin",))]
        assert listener.drain() == [
            MetadataChanged(bob.id, None, ("/private/vendor/x/y",), private_to=bob.id)
        ]
    finally:
        # Server entries belong to no account: leave the store as the next test expects.
        await store.set_metadata(None, alice.id, [("/shared/admin", None)], max_entries=5)


async def test_flag_rights_mask_store_and_copy(store: SqlStore) -> None:
    alice, inbox = await setup_inbox(store)
    other = await store.create_mailbox(alice.id, "Other")
    await store.append(inbox.id, [msg("one", flags=SEEN | DELETED, keywords=("$Work",))])
    # Only \Seen may change: \Deleted and the keyword stay whatever the mode.
    await store.store_flags(
        inbox.id, [1], FlagMode.REPLACE, FLAGGED, ["$New"], flag_mask=SEEN, keywords_allowed=False
    )
    (row,) = await store.fetch(inbox.id, [1], FetchField.FLAGS)
    assert (row.flags, row.keywords) == (DELETED, ("$Work",))
    await store.store_flags(inbox.id, [1], FlagMode.ADD, SEEN | FLAGGED, [], flag_mask=SEEN)
    (row,) = await store.fetch(inbox.id, [1], FetchField.FLAGS)
    assert row.flags == SEEN | DELETED
    result = await store.copy(inbox.id, [1], other.id, flag_mask=SEEN, keywords_allowed=False)
    (copied,) = await store.fetch(other.id, list(result.target_uids), FetchField.FLAGS)
    assert (copied.flags, copied.keywords) == (SEEN, ())
    assert result.changes[0].appended[0].flags == SEEN


async def test_status_reports_the_size_of_deleted_messages(store: SqlStore) -> None:
    _, inbox = await setup_inbox(store)
    await store.append(inbox.id, [msg("a"), msg("bb", flags=DELETED), msg("ccc", flags=DELETED)])
    rows = await store.fetch(inbox.id, [1, 2, 3], FetchField.SIZE)
    status = await store.mailbox_status(inbox.id)
    assert status.deleted == 2
    assert status.deleted_size == rows[1].size + rows[2].size
