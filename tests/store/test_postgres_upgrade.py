"""A PostgreSQL store made before migration 0013 keeps answering what changed since a
MODSEQ after it: its messages get a created_modseq, MODSEQ loses its index, and the
append function writes the new column."""

from __future__ import annotations

import asyncpg
import pytest

from mailkeep.store import migrations
from mailkeep.store.api import FetchField, FlagMode
from mailkeep.store.sqlstore import SqlStore

from ._support import inbox_id, msg
from .conftest import Backend

SEEN = 1


async def _expect_exact_changes(store: SqlStore, mailbox: int) -> None:
    snapshot = await store.snapshot(mailbox)
    rows = await store.fetch(mailbox, list(snapshot.uids), FetchField.FLAGS)
    for since in range(snapshot.mailbox.highestmodseq + 1):
        changes = await store.changes_since(mailbox, since)
        assert [s.uid for s in changes.changed] == [r.uid for r in rows if r.modseq > since]


async def test_a_store_from_before_0013_finds_its_changes(
    postgresql: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = await asyncpg.connect(postgresql.url)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        everything = migrations.available
        monkeypatch.setattr(
            migrations, "available", lambda dialect: [m for m in everything(dialect) if m[0] < 13]
        )
        old = await postgresql.open()
        inbox = await inbox_id(old)
        for i in range(6):  # one at a time: through 0011's mailkeep_append_one
            await old.append(inbox, [msg(f"m{i}")])
        await postgresql.close(old)
        # Flags changed as the code before 0013 did: a new MODSEQ in the row.
        await connection.execute(
            "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = $1", inbox
        )
        await connection.execute(
            "UPDATE messages SET flags = 1, modseq = (SELECT highestmodseq FROM mailboxes"
            " WHERE id = $1) WHERE mailbox_id = $1 AND uid IN (2, 4)",
            inbox,
        )

        monkeypatch.setattr(migrations, "available", everything)
        store = await postgresql.open()
        await _expect_exact_changes(store, inbox)
        await store.append(inbox, [msg("after")])
        await store.store_flags(inbox, [1, 4], FlagMode.ADD, SEEN + 2, [])
        await _expect_exact_changes(store, inbox)
        indexes = await connection.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'messages' ORDER BY 1"
        )
    finally:
        await connection.close()
    assert [r[0] for r in indexes] == [
        "messages_by_content",
        "messages_by_created_modseq",
        "messages_pkey",
    ]
