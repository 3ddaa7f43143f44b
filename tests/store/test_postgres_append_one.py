"""PostgreSQL appends one message in one statement that commits by itself (migration
0011, ``ops.AppendOne``): there is no COMMIT to order the appends' answers by, and
nothing to roll back once it returned."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import asyncpg
import pytest

from mailkeep.errors import QuotaExceeded
from mailkeep.mail.message import parse
from mailkeep.store import query as q
from mailkeep.store.api import NewMessage
from mailkeep.store.changes import ChangeSet
from mailkeep.store.hub import Listener
from mailkeep.store.sql import content_hash

from ._support import inbox_id, msg, raw_message
from .conftest import Backend
from .test_contract import mailbox, make_account


async def _waiting_on_a_lock(connection: asyncpg.Connection) -> int:
    return int(
        await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    )


async def test_appends_committed_in_another_order_publish_in_commit_order(
    postgresql: Backend,
) -> None:
    store = await postgresql.open()
    inbox = await inbox_id(store)
    first = msg("first")
    await store.append(inbox, [first])
    listener = Listener()
    store.hub.watch_mailbox(inbox, listener)
    holder = await asyncpg.connect(postgresql.url)
    try:
        # The contents row of ``first`` locked elsewhere: a second copy of it, sent
        # first, waits there, and a new message sent after it commits before it.
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute(
            "SELECT id FROM contents WHERE blob = $1 FOR UPDATE", content_hash(first.raw)
        )
        copy = asyncio.create_task(store.append(inbox, [first]))
        for _ in range(200):
            if await _waiting_on_a_lock(holder):
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the second copy never waited for the contents row")
        new = asyncio.create_task(store.append(inbox, [msg("new")]))
        for _ in range(200):
            if await holder.fetchval("SELECT uidnext FROM mailboxes WHERE id = $1", inbox) == 3:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the new message was never committed")
        await transaction.rollback()
        copied, added = await copy, await new
    finally:
        await holder.close()
    assert (added.uids, copied.uids) == ((2,), (3,))
    changes = [c for c in listener.drain() if isinstance(c, ChangeSet)]
    assert [(c.before, c.after) for c in changes] == [
        (added.change.before, added.change.after),
        (copied.change.before, copied.change.after),
    ]
    assert added.change.after == copied.change.before


async def test_an_append_refused_over_quota_keeps_nothing(postgresql: Backend) -> None:
    store = await postgresql.open()
    account = await make_account(store, quota_messages=1)
    inbox = (await mailbox(store, account)).id
    kept = await store.append(inbox, [msg("kept", "A new one.\r\n")])
    with pytest.raises(QuotaExceeded, match="quota of 1 messages reached"):
        await store.append(inbox, [msg("refused", "Another one.\r\n")])
    connection = await asyncpg.connect(postgresql.url)
    try:
        row = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM contents), (SELECT count(*) FROM content_refs),"
            " (SELECT count(*) FROM contents_text_pending)"
            " + (SELECT count(*) FROM contents_text), (SELECT count(*) FROM blobs),"
            " (SELECT count(*) FROM messages),"
            " (SELECT uidnext FROM mailboxes WHERE id = $1),"
            " (SELECT highestmodseq FROM mailboxes WHERE id = $1),"
            " (SELECT used_messages FROM accounts WHERE id = $2)",
            inbox,
            account.id,
        )
    finally:
        await connection.close()
    assert row is not None
    assert tuple(row) == (1, 1, 1, 1, 1, 2, kept.change.after, 1)


async def test_the_words_the_parser_found_are_the_ones_indexed(postgresql: Backend) -> None:
    store = await postgresql.open()
    inbox = await inbox_id(store)
    raw = raw_message("Quarterly zebra report", "The aardvark sleeps at noon.\r\n")
    parsed = parse(raw, words=True)
    assert parsed.words is not None
    # A word only the parser's list has: the store took the list it was given.
    planted = NewMessage(raw, replace(parsed, words=(*parsed.words, "planted")), 0, (), None)
    (uid,) = (await store.append(inbox, [planted])).uids
    await store.engine.index_pending()
    connection = await asyncpg.connect(postgresql.url)
    try:
        words = await connection.fetchval("SELECT tsvector_to_array(words) FROM contents_text")
    finally:
        await connection.close()
    assert sorted(words) == sorted((*parsed.words, "planted"))
    assert await store.search(inbox, q.BodyContains("aardvark sleeps at")) == [uid]
