"""PostgreSQL's planner is kept informed and pointed at the full-text indexes.

Left to itself the planner prefers reading every stored text to the trigram indexes (it
prices LIKE on a body at one operator, not at the detoasting of each body), and until
autovacuum's next look (a minute) it plans a mailbox filled just now as nearly empty
(``PostgresDialect.fulltext_plan``, ``PostgresEngine.appended``).
"""

from __future__ import annotations

import asyncio
from typing import cast

import asyncpg
import pytest

from mailkeep.store import postgres, search
from mailkeep.store import query as q
from mailkeep.store.ops import Column
from mailkeep.store.postgres import PostgresEngine, _params, to_postgres

from ._support import inbox_id, msg
from .conftest import Backend


async def plan_of(engine: PostgresEngine, mailbox: int, query: q.Query) -> str:
    """EXPLAIN of the final query of a search, in the search's own transaction."""
    tx = search.search_tx(mailbox, query, engine.dialect)
    async with (
        engine._pool.acquire() as connection,
        connection.transaction(isolation="repeatable_read", readonly=True),
    ):
        op = next(tx)
        while not isinstance(op, Column):
            op = tx.send(await engine._execute(connection, op))
        rows = await connection.fetch("EXPLAIN " + to_postgres(op.sql), *_params(op.params))
    return "\n".join(row[0] for row in rows)


async def analyzed(engine: PostgresEngine) -> None:
    for _ in range(200):
        if engine._analyzing is None:
            return
        await asyncio.sleep(0.05)
    pytest.fail("the statistics were not refreshed within 10 s")


async def test_appends_refresh_the_statistics(
    postgresql: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "ANALYZE_AFTER", 5)
    store = await postgresql.open()
    try:
        mailbox = await inbox_id(store)
        await store.append(mailbox, [msg(f"m{i}") for i in range(4)])
        assert cast(PostgresEngine, store.engine)._analyzing is None  # not yet
        await store.append(mailbox, [msg("m4")])
        await analyzed(cast(PostgresEngine, store.engine))
    finally:
        await postgresql.close(store)
    connection = await asyncpg.connect(postgresql.url)
    try:
        rows = await connection.fetchval(
            "SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass"
        )
    finally:
        await connection.close()
    assert rows == 5


async def test_body_and_text_searches_use_the_trigram_indexes(postgresql: Backend) -> None:
    store = await postgresql.open()
    try:
        mailbox = await inbox_id(store)
        minutes = "Minutes of the weekly meeting, item {i}: nothing decided.\r\n"
        await store.append(
            mailbox, [msg(f"Week {i}", minutes.format(i=i) * 40) for i in range(1000)]
        )
        engine = cast(PostgresEngine, store.engine)
        await analyzed(engine)
        await store.index_pending()  # as a search has it done before it looks
        body = await plan_of(engine, mailbox, q.BodyContains("item 17:"))
        text = await plan_of(engine, mailbox, q.TextContains("week 17"))
        short = await plan_of(engine, mailbox, q.BodyContains("it"))
        assert await store.search(mailbox, q.BodyContains("item 17:")) == [18]
    finally:
        await postgresql.close(store)
    assert "contents_text_body_trgm" in body, body
    assert "contents_text_headers_trgm" in text, text
    assert "contents_text_body_trgm" in text, text
    assert "trgm" not in short, short  # too short for trigrams: the mailbox's own rows
