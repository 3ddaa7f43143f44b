"""How PostgreSQL runs read transactions: one snapshot for a read of several statements,
no transaction at all for a point read (one round trip instead of three)."""

from __future__ import annotations

from mailkeep.store.ops import One, Tx

from .conftest import Backend


def isolation_tx() -> Tx[str]:
    row = yield One("SELECT current_setting('transaction_isolation')", ())
    return str(row[0])


async def test_point_reads_run_outside_a_transaction(postgresql: Backend) -> None:
    store = await postgresql.open()
    try:
        assert await store.engine.read(isolation_tx()) == "repeatable read"
        assert await store.engine.read(isolation_tx(), point=True) == "read committed"
    finally:
        await postgresql.close(store)
