"""``mailkeep store copy`` carries access control lists and annotations (RFC 4314, RFC
5464) from SQLite to PostgreSQL, and the copy goes on adding them."""

from __future__ import annotations

from pathlib import Path

from mailkeep.store.copy import copy_store
from mailkeep.store.factory import open_store
from mailkeep.store.sqlstore import SqlStore

from .conftest import Backend


async def _sharing(store: SqlStore) -> list[object]:
    seen: list[object] = [await store.list_metadata(None, 0)]
    for account in await store.list_accounts():
        seen.append(await store.list_metadata(None, account.id))
        for box in await store.list_mailboxes(account.id):
            seen.append((box.name, await store.get_acl(box.id)))
            seen.append(await store.list_metadata(box.id, account.id))
    return seen


async def test_copy_carries_acl_and_metadata(postgresql: Backend, tmp_path: Path) -> None:
    source = await open_store("sqlite:source", tmp_path)
    target = await postgresql.open()
    try:
        alice = await source.create_account("alice@example.org", "h", None)
        bob = await source.create_account("bob@example.org", "h", None)
        team = await source.create_mailbox(alice.id, "Team")
        await source.set_acl(team.id, "bob@example.org", "lrswi")
        await source.set_acl(team.id, "anyone", "l")
        await source.set_metadata(
            team.id,
            alice.id,
            [("/shared/comment", b"ours"), ("/private/x", b"\x00")],
            max_entries=9,
        )
        await source.set_metadata(None, bob.id, [("/private/vendor/a", b"1")], max_entries=9)
        await source.set_metadata(None, alice.id, [("/shared/admin", b"mailto:a@x")], max_entries=9)
        expected = await _sharing(source)
        report = await copy_store(source, target)
        assert report.rows["acl"] == 2
        assert report.rows["metadata"] == 4
        assert await _sharing(target) == expected
        target_team = await target.get_mailbox(alice.id, "Team")
        assert target_team is not None
        grants = await target.list_grants(["bob@example.org"])
        assert [(g.owner, g.mailbox, g.rights) for g in grants] == [
            ("alice@example.org", target_team, "lrswi")
        ]
        # New annotations get ids the copied ones do not have.
        await target.set_metadata(team.id, bob.id, [("/private/y", b"2")], max_entries=9)
        assert (await target.list_metadata(team.id, bob.id))[0] == ("/private/y", b"2")
    finally:
        await target.set_metadata(None, 0, [("/shared/admin", None)], max_entries=9)
        await source.close()
