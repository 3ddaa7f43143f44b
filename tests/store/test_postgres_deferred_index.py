"""PostgreSQL indexes a message's text after acknowledging it (migration 0010): a delivery
leaves the text in ``contents_text_pending``, and the delivering node moves it into
``contents_text`` (the trigram and word indexes) in the first pause. What a user sees must
not depend on whether it got there yet."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import asyncpg
import pytest

from mailkeep.store import postgres
from mailkeep.store import query as q
from mailkeep.store.ops import Tx

from ._support import inbox_id, msg
from .conftest import Backend


async def _counts(url: str) -> tuple[int, int]:
    """Texts pending and indexed."""
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM contents_text_pending),"
            " (SELECT count(*) FROM contents_text)"
        )
    finally:
        await connection.close()
    assert row is not None
    return int(row[0]), int(row[1])


async def _until_indexed(url: str, indexed: int) -> None:
    for _ in range(200):
        if await _counts(url) == (0, indexed):
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"texts (pending, indexed) still {await _counts(url)} after 10 s")


@pytest.fixture
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """The node's indexer waits for a pause that does not come."""
    monkeypatch.setattr(postgres, "INDEX_IDLE", 3600.0)


@pytest.mark.usefixtures("no_pause")
async def test_searches_find_messages_not_indexed_yet(postgresql: Backend) -> None:
    store = await postgresql.open()
    inbox = await inbox_id(store)
    first, second = (
        await store.append(
            inbox,
            [
                msg("Quarterly zebra report", "The aardvark sleeps.\r\n"),
                msg("Lunch", "Nothing about animals.\r\n"),
            ],
        )
    ).uids
    assert await _counts(postgresql.url) == (2, 0)
    assert await store.search(inbox, q.BodyContains("AARDVARK")) == [first]
    assert await _counts(postgresql.url) == (0, 2)
    await store.append(inbox, [msg("Animals again", "An aardvark and a zebra.\r\n")])
    assert await store.search(inbox, q.TextContains("zebra")) == [first, second + 1]
    assert await store.search(inbox, q.BodyContains("nothing about")) == [second]


async def test_the_node_indexes_in_the_first_pause(postgresql: Backend) -> None:
    store = await postgresql.open()
    inbox = await inbox_id(store)
    await store.append(inbox, [msg(f"note {n}", f"Body number {n}.\r\n") for n in range(3)])
    await _until_indexed(postgresql.url, 3)


async def test_a_backlog_is_indexed_without_a_pause(
    postgresql: Backend, monkeypatch: pytest.MonkeyPatch, no_pause: None
) -> None:
    monkeypatch.setattr(postgres, "INDEX_BACKLOG", 3)
    store = await postgresql.open()
    inbox = await inbox_id(store)
    await store.append(inbox, [msg("one"), msg("two")])
    await asyncio.sleep(0.2)
    assert await _counts(postgresql.url) == (2, 0)  # below the backlog: waits for a pause
    await store.append(inbox, [msg("three")])
    await _until_indexed(postgresql.url, 3)


async def test_the_indexer_stops_when_appends_come_again(
    postgresql: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of deliveries pauses for a moment now and then: the indexer then indexes
    one batch, not all that is pending, and waits for the next pause."""
    monkeypatch.setattr(postgres, "INDEX_BATCH", 2)
    monkeypatch.setattr(postgres, "INDEX_IDLE", 0.05)
    store = await postgresql.open()
    engine = cast(postgres.PostgresEngine, store.engine)
    write, batch = engine.write, postgres._index_batch_tx
    batches: list[Tx[int]] = []

    def counted_batch(*, skip_locked: bool) -> Tx[int]:
        batches.append(batch(skip_locked=skip_locked))
        return batches[-1]

    async def write_then_append(tx: Tx[Any], **options: Any) -> Any:
        indexing = any(tx is b for b in batches)
        result = await write(tx, **options)
        if indexing:  # an append comes in while the first batch is indexed
            monkeypatch.setattr(postgres, "INDEX_IDLE", 3600.0)
            engine.appended(1)
        return result

    monkeypatch.setattr(postgres, "_index_batch_tx", counted_batch)
    monkeypatch.setattr(engine, "write", write_then_append)
    inbox = await inbox_id(store)
    await store.append(inbox, [msg(f"note {n}") for n in range(7)])
    await asyncio.sleep(0.5)
    assert await _counts(postgresql.url) == (5, 2)
    await store.index_pending()
    assert await _counts(postgresql.url) == (0, 7)


@pytest.mark.usefixtures("no_pause")
async def test_pending_text_goes_with_its_collected_message(postgresql: Backend) -> None:
    store = await postgresql.open()
    inbox = await inbox_id(store)
    await store.append(inbox, [msg("kept", "Stays here.\r\n"), msg("gone", "Goes away.\r\n")])
    await store.remove(inbox, [2])
    await store.collect_garbage()
    assert await _counts(postgresql.url) == (1, 0)
    assert await store.search(inbox, q.BodyContains("away")) == []
    assert await store.search(inbox, q.BodyContains("stays")) == [1]
    assert await _counts(postgresql.url) == (0, 1)


async def test_indexers_of_two_nodes_and_a_collection_agree(postgresql: Backend) -> None:
    """Two nodes index (one in its pauses, one for a search) while messages are collected:
    every text is indexed once, a collected one not at all, and nothing fails."""
    node, other = await postgresql.open(), await postgresql.open()
    inbox = await inbox_id(node)
    count = 3 * postgres.INDEX_BATCH
    for start in range(0, count, 64):
        await node.append(
            inbox, [msg(f"m{n}", f"Word{n} here.\r\n") for n in range(start, start + 64)]
        )
    doomed = list(range(2, count + 1, 3))
    await node.remove(inbox, doomed)
    await asyncio.gather(node.collect_garbage(), other.index_pending(), node.index_pending())
    await node.collect_garbage()
    await other.index_pending()
    await _until_indexed(postgresql.url, count - len(doomed))
    assert await other.search(inbox, q.BodyContains("word0 ")) == [1]
    assert await other.search(inbox, q.BodyContains("here")) == [
        uid for uid in range(1, count + 1) if uid not in doomed
    ]


async def test_a_node_indexes_what_another_process_delivered(
    postgresql: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mailkeep deliver`` (or a node that stops) may be gone before its first pause: the
    nodes that hear of its delivery index the text."""
    await postgresql.open()  # the server
    deliverer = await postgresql.open()
    monkeypatch.setattr(deliverer.engine, "_index_soon", lambda count: None)
    inbox = await inbox_id(deliverer)
    await deliverer.append(inbox, [msg("from a pipe", "Delivered by another process.\r\n")])
    await postgresql.close(deliverer)
    await _until_indexed(postgresql.url, 1)
