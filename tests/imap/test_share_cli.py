"""``mailkeep mailbox share/unshare/shares/create``: the operator's side of sharing, and
what a grantee's IMAP session then sees."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner

from mailkeep.cli import main
from mailkeep.config import load
from mailkeep.store.factory import open_store

from .conftest import Sleeps, make_services, password_hash
from .support import Client


def run(data: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--data", str(data), *args])
    return result.exit_code, result.output


async def test_share_unshare_and_list(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, output = await asyncio.to_thread(run, data, "init", "--hostname", "mail.test")
    assert code == 0, output
    config = load(data)
    store = await open_store(config.store.url, data, pool_size=1)
    try:
        alice = await store.create_account("alice@mail.test", password_hash(), None)
        await store.create_account("bob@mail.test", password_hash(), None)
        await store.create_mailbox(alice.id, "Team")
    finally:
        await store.close()

    async def cli(*args: str) -> tuple[int, str]:
        return await asyncio.to_thread(run, data, "mailbox", *args)

    assert await cli("share", "alice@mail.test", "Team", "bob@mail.test", "lrswi") == (
        0,
        "bob@mail.test now has lrswi on alice@mail.test Team"
        " (seen as Shared/alice@mail.test/Team)\n",
    )
    assert (await cli("share", "alice@mail.test", "Team", "bob@mail.test", "+d"))[1].startswith(
        "bob@mail.test now has lrswited "
    )
    code, output = await cli("share", "alice@mail.test", "Team", "bob@mail.test", "lrQ")
    assert code == 2
    assert "uppercase rights are not allowed" in output
    code, output = await cli("share", "alice@mail.test", "Team", "nobody@mail.test", "lr")
    assert (code, output) == (1, "Error: no account nobody@mail.test\n")
    code, output = await cli("share", "alice@mail.test", "Nope", "bob@mail.test", "lr")
    assert (code, output) == (1, "Error: alice@mail.test has no mailbox Nope\n")
    assert (await cli("create", "public", "News"))[0] == 0
    assert (await cli("share", "public", "News", "anyone", "lr"))[0] == 0
    code, output = await cli("shares", "--json")
    assert code == 0
    assert json.loads(output) == [
        {
            "owner": "#public",
            "mailbox": "News",
            "grantee": "anyone",
            "rights": "lr",
            "seen_as": "Public/News",
        },
        {
            "owner": "alice@mail.test",
            "mailbox": "Team",
            "grantee": "bob@mail.test",
            "rights": "lrswited",
            "seen_as": "Shared/alice@mail.test/Team",
        },
    ]
    code, output = await cli("shares", "bob@mail.test")
    assert output.splitlines() == [
        "OWNER            MAILBOX  GRANTEE        RIGHTS",
        "alice@mail.test  Team     bob@mail.test  lrswited",
    ]
    # What bob's IMAP session sees follows the operator's commands.
    store = await open_store(config.store.url, data, pool_size=1)
    bob = Client(make_services(store, Sleeps()))
    try:
        await bob.start()
        await bob.login("bob@mail.test")
        assert await bob.ok('b1 LIST "" "*" RETURN (MYRIGHTS)') == [
            b'* LIST (\\HasNoChildren) "/" INBOX',
            b"* MYRIGHTS INBOX lrswipkxteacd",
            b'* LIST (\\HasNoChildren \\Archive) "/" Archive',
            b"* MYRIGHTS Archive lrswipkxteacd",
            b'* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
            b"* MYRIGHTS Drafts lrswipkxteacd",
            b'* LIST (\\HasNoChildren \\Junk) "/" Junk',
            b"* MYRIGHTS Junk lrswipkxteacd",
            b'* LIST (\\HasNoChildren \\Sent) "/" Sent',
            b"* MYRIGHTS Sent lrswipkxteacd",
            b'* LIST (\\HasNoChildren \\Trash) "/" Trash',
            b"* MYRIGHTS Trash lrswipkxteacd",
            b'* LIST (\\Noselect \\HasChildren) "/" Shared',
            b'* LIST (\\Noselect \\HasChildren) "/" Shared/alice@mail.test',
            b'* LIST (\\HasNoChildren) "/" Shared/alice@mail.test/Team',
            b"* MYRIGHTS Shared/alice@mail.test/Team lrswited",
            b'* LIST (\\Noselect \\HasChildren) "/" Public',
            b'* LIST (\\HasNoChildren) "/" Public/News',
            b"* MYRIGHTS Public/News lr",
        ]
        assert await cli("unshare", "alice@mail.test", "Team", "bob@mail.test") == (
            0,
            "Team of alice@mail.test is no longer shared with bob@mail.test\n",
        )
        responses = await bob.command("b2 SELECT Shared/alice@mail.test/Team")
        assert (
            responses[-1]
            == b"b2 NO [NONEXISTENT] mailbox Shared/alice@mail.test/Team does not exist"
        )
        code, output = await cli("unshare", "alice@mail.test", "Team", "bob@mail.test")
        assert code == 1
    finally:
        await bob.finish()
        await store.close()
    code, output = await cli("create", "alice@mail.test", "Shared/x")
    assert code == 2
    assert "names of IMAP namespaces" in output
