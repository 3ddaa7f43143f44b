"""Several mailkeep nodes on one PostgreSQL database, as two stores in one process.

Each store has its own connection pool, listener connection and node id, exactly as two
``mailkeep serve`` processes would; nothing is shared between them but the database.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable

import asyncpg
import pytest

from mailkeep.errors import AlreadyExists, QuotaExceeded
from mailkeep.mail.flags import SystemFlag
from mailkeep.store.api import FetchField, FlagMode
from mailkeep.store.changes import Change, ChangeSet, MailboxEvent, MailboxTouched
from mailkeep.store.hub import Listener
from mailkeep.store.sqlstore import SqlStore

from ._support import blob_bytes, msg, new, raw_message
from .conftest import Backend

SEEN = int(SystemFlag.SEEN)


async def two_nodes(postgresql: Backend) -> tuple[SqlStore, SqlStore]:
    return await postgresql.open(), await postgresql.open()


async def wait_for(
    listener: Listener,
    *wanted: Callable[[Change], bool],
    timeout: float = 1.0,  # noqa: ASYNC109 - the deadline is what the test asserts
) -> list[Change]:
    """Changes delivered until each of ``wanted`` matched one; fails after ``timeout``
    seconds (the promise: another node's commit is seen within a second)."""
    seen: list[Change] = []
    deadline = time.monotonic() + timeout
    while True:
        seen += listener.drain()
        if all(any(w(c) for c in seen) for w in wanted):
            return seen
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"nothing matching within {timeout}s; got {seen}")
        if listener.has_pending:
            continue
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        listener.on_deliver = functools.partial(_wake, woken)
        try:
            await asyncio.wait_for(woken, remaining)
        except TimeoutError:
            pass
        finally:
            listener.on_deliver = None


def _wake(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)


async def test_appends_from_two_nodes_get_distinct_uids(postgresql: Backend) -> None:
    a, b = await two_nodes(postgresql)
    account = await a.create_account("alice@example.org", "h", None)
    inbox = await b.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    results = await asyncio.gather(
        *(node.append(inbox.id, [msg(f"{i}")]) for i in range(40) for node in (a, b))
    )
    assert sorted(uid for r in results for uid in r.uids) == list(range(1, 81))
    modseqs = [r.change.after for r in results]
    assert len(set(modseqs)) == 80
    for node in (a, b):
        box = await node.get_mailbox_by_id(inbox.id)
        assert box is not None
        assert (box.uidnext, box.highestmodseq) == (81, max(modseqs))


async def test_other_nodes_commits_wake_watchers_within_a_second(postgresql: Backend) -> None:
    a, b = await two_nodes(postgresql)
    account = await a.create_account("alice@example.org", "h", None)
    inbox = await a.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    listener = Listener()
    b.hub.watch_mailbox(inbox.id, listener)

    def touched(modseq: int) -> Callable[[Change], bool]:
        return lambda c: isinstance(c, MailboxTouched) and c.highestmodseq == modseq

    appended = await a.append(inbox.id, [msg("delivered on node A")])
    await wait_for(listener, touched(appended.change.after))
    caught_up = await b.changes_since(inbox.id, appended.change.before)
    assert [s.uid for s in caught_up.changed] == [1]

    flagged = await a.store_flags(inbox.id, [1], FlagMode.ADD, SEEN, [])
    await wait_for(listener, touched(flagged.change.after))
    assert [
        (s.uid, s.flags) for s in (await b.changes_since(inbox.id, appended.change.after)).changed
    ] == [(1, SEEN)]

    removed = await a.remove(inbox.id, [1])
    await wait_for(listener, touched(removed.after))
    assert (await b.changes_since(inbox.id, flagged.change.after)).expunged == (1,)


async def test_a_node_does_not_hear_its_own_commits_twice(postgresql: Backend) -> None:
    a, b = await two_nodes(postgresql)
    account = await a.create_account("alice@example.org", "h", None)
    inbox = await a.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    own, other = Listener(), Listener()
    a.hub.watch_mailbox(inbox.id, own)
    b.hub.watch_mailbox(inbox.id, other)
    appended = await a.append(inbox.id, [msg()])
    await wait_for(other, lambda c: isinstance(c, MailboxTouched))
    await asyncio.sleep(0.3)  # A's own notification has arrived by now, if it were heard
    assert own.drain() == [appended.change]


async def test_mailbox_events_reach_other_nodes(postgresql: Backend) -> None:
    a, b = await two_nodes(postgresql)
    account = await a.create_account("alice@example.org", "h", None)
    listener = Listener()
    b.hub.watch_account(account.id, listener)
    created = await a.create_mailbox(account.id, "Lists/Python")

    def event(kind: str, name: str) -> Callable[[Change], bool]:
        return lambda c: isinstance(c, MailboxEvent) and (c.kind, c.name) == (kind, name)

    await wait_for(listener, event("created", "Lists/Python"))
    await a.rename_mailbox(account.id, "Lists", "Groups")
    seen = await wait_for(listener, event("renamed", "Groups/Python"), event("renamed", "Groups"))
    renamed = [c for c in seen if isinstance(c, MailboxEvent) and c.kind == "renamed"]
    assert {(c.name, c.old_name) for c in renamed} == {
        ("Groups", "Lists"),
        ("Groups/Python", "Lists/Python"),
    }
    await a.delete_mailbox(created.id)
    await wait_for(listener, event("deleted", "Groups/Python"))


async def test_maildrop_lock_holds_across_nodes(postgresql: Backend) -> None:
    a, b = await two_nodes(postgresql)
    account = await a.create_account("alice@example.org", "h", None)
    async with a.maildrop_lock(account.id) as held:
        assert held
        async with b.maildrop_lock(account.id) as second:
            assert not second
    async with b.maildrop_lock(account.id) as later:
        assert later


async def test_quota_is_exact_across_nodes(postgresql: Backend) -> None:
    a, b = await two_nodes(postgresql)
    account = await a.create_account("alice@example.org", "h", None, quota_messages=12)
    inbox = await a.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    outcomes = await asyncio.gather(
        *(node.append(inbox.id, [msg(f"{i}")]) for i in range(15) for node in (a, b)),
        return_exceptions=True,
    )
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(f, QuotaExceeded) for f in failures)
    assert len(outcomes) - len(failures) == 12
    usage = await b.get_account_by_id(account.id)
    assert usage is not None
    assert usage.used_messages == 12
    assert (await b.mailbox_status(inbox.id)).messages == 12


async def test_flag_changes_from_two_nodes_are_all_kept(postgresql: Backend) -> None:
    a, b = await two_nodes(postgresql)
    account = await a.create_account("alice@example.org", "h", None)
    inbox = await a.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    start = (await a.append(inbox.id, [msg()])).mailbox.highestmodseq
    keywords = [f"k{i:02d}" for i in range(30)]
    await asyncio.gather(
        *(
            (a if i % 2 else b).store_flags(inbox.id, [1], FlagMode.ADD, 0, [k])
            for i, k in enumerate(keywords)
        )
    )
    (row,) = await b.fetch(inbox.id, [1], FetchField.FLAGS)
    assert row.keywords == tuple(keywords)
    assert row.modseq == start + 30


async def test_moves_in_opposite_directions_on_two_nodes_all_succeed(
    postgresql: Backend,
) -> None:
    a, b = await two_nodes(postgresql)
    account = await a.create_account("alice@example.org", "h", None)
    inbox = await a.get_mailbox(account.id, "INBOX")
    archive = await a.get_mailbox(account.id, "Archive")
    assert inbox is not None
    assert archive is not None
    await a.append(inbox.id, [msg(f"i{i}") for i in range(20)])
    await a.append(archive.id, [msg(f"a{i}") for i in range(20)])
    # Each move locks both mailboxes, in opposite orders: deadlocks are detected by
    # PostgreSQL and the loser is run again.
    await asyncio.gather(
        *(a.copy(inbox.id, [uid], archive.id, move=True) for uid in range(1, 21)),
        *(b.copy(archive.id, [uid], inbox.id, move=True) for uid in range(1, 21)),
    )
    inbox_status = await b.mailbox_status(inbox.id)
    archive_status = await b.mailbox_status(archive.id)
    assert inbox_status.messages + archive_status.messages == 40
    usage = await a.get_account_by_id(account.id)
    assert usage is not None
    assert usage.used_messages == 40


async def test_same_account_created_on_two_nodes_at_once(postgresql: Backend) -> None:
    a, b = await two_nodes(postgresql)
    outcomes = await asyncio.gather(
        a.create_account("alice@example.org", "h", None),
        b.create_account("Alice@example.org", "h", None),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["Account", "AlreadyExists"]
    assert any(isinstance(o, AlreadyExists) for o in outcomes)
    assert len(await a.list_accounts()) == 1
    boxes = await b.list_mailboxes((await a.list_accounts())[0].id)
    assert len(boxes) == 6
    assert len({m.uidvalidity for m in boxes}) == 6


async def test_mailboxes_created_on_two_nodes_get_distinct_uidvalidity(
    postgresql: Backend,
) -> None:
    a, b = await two_nodes(postgresql)
    account = await a.create_account("alice@example.org", "h", None)
    created = await asyncio.gather(
        *((a if i % 2 else b).create_mailbox(account.id, f"Box{i}") for i in range(20))
    )
    assert len({m.uidvalidity for m in created}) == 20


async def test_collection_on_one_node_while_another_appends(postgresql: Backend) -> None:
    a, b = await two_nodes(postgresql)
    account = await a.create_account("alice@example.org", "h", None)
    inbox = await a.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    for round_ in range(10):
        raw = raw_message(f"round {round_}")
        appended = await a.append(inbox.id, [new(raw)])
        await a.remove(inbox.id, list(appended.uids))
        again, _ = await asyncio.gather(b.append(inbox.id, [new(raw)]), a.collect_garbage())
        await a.collect_garbage()
        (row,) = await a.fetch(inbox.id, list(again.uids), FetchField.BLOB)
        assert await blob_bytes(a, row.blob) == raw


async def test_a_node_that_lost_its_listening_connection_catches_up(
    postgresql: Backend,
) -> None:
    a, b = await two_nodes(postgresql)
    account = await a.create_account("alice@example.org", "h", None)
    inbox = await a.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    listener = Listener()
    b.hub.watch_mailbox(inbox.id, listener)
    admin = await asyncpg.connect(postgresql.url)
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'mailkeep-listen' AND datname = current_database()"
        )
    finally:
        await admin.close()
    assert killed == 2
    missed = await a.append(inbox.id, [msg("while B was deaf")])
    # B reconnects and touches every mailbox: its sessions check the log.
    await wait_for(
        listener,
        lambda c: isinstance(c, MailboxTouched) and c.highestmodseq >= missed.change.after,
        timeout=5.0,
    )
    listener.drain()
    later = await a.append(inbox.id, [msg("after B came back")])
    await wait_for(
        listener,
        lambda c: isinstance(c, MailboxTouched) and c.highestmodseq == later.change.after,
    )
    own = Listener()
    a.hub.watch_mailbox(inbox.id, own)
    change = (await b.append(inbox.id, [msg("from B")])).change
    seen = await wait_for(own, lambda c: isinstance(c, MailboxTouched))
    assert not any(isinstance(c, ChangeSet) for c in seen)
    assert any(isinstance(c, MailboxTouched) and c.highestmodseq == change.after for c in seen)
