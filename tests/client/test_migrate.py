"""``mailkeep migrate`` (IMAP → store), ``import`` and ``export`` through the main command."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailkeep.cli import main
from mailkeep.client import flagmap
from mailkeep.client.maildir import INBOX, MaildirStore
from mailkeep.client.mbox import read_mbox, write_message
from mailkeep.client.sync import message_id
from mailkeep.mail.flags import flag_names
from mailkeep.store.api import FetchField
from mailkeep.store.factory import open_store

from .conftest import MailUser
from .syncutil import msg, remote_state, server

ADDRESS = "me@example.com"
State = dict[str, dict[str, tuple[str, float]]]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    runner = CliRunner()
    result = runner.invoke(main, ["--data", str(data), "init"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        main, ["--data", str(data), "user", "add", ADDRESS, "--password-stdin"], input="pw\n"
    )
    assert result.exit_code == 0, result.output
    return data


def mailkeep(data: Path, *args: str) -> dict[str, object]:
    result = CliRunner().invoke(main, ["--data", str(data), *args, "--json"])
    assert result.exit_code == 0, result.output
    data_out: dict[str, object] = json.loads(result.output.splitlines()[-1])
    return data_out


def migrate(data: Path, user: MailUser) -> dict[str, object]:
    url = f"imap+plain://{user.name}@127.0.0.1:{user.server.imap_port}"
    return mailkeep(
        data,
        "migrate",
        "--from",
        url,
        "--to",
        ADDRESS,
        "--password-command",
        f"printf %s {user.password}",
    )


async def store_state(data: Path, dates: bool = True) -> State:
    """{mailbox: {Message-ID: (flag letters, internaldate)}} of the account, non-empty only."""
    store = await open_store("sqlite:store", data, pool_size=1)
    try:
        account = await store.get_account(ADDRESS)
        assert account is not None
        result: State = {}
        for mailbox in await store.list_mailboxes(account.id):
            snapshot = await store.snapshot(mailbox.id)
            if not snapshot.uids:
                continue
            fields = FetchField.FLAGS | FetchField.INTERNALDATE | FetchField.HEADER
            rows = await store.fetch(mailbox.id, list(snapshot.uids), fields)
            result[mailbox.name] = {
                message_id(row.header) or str(row.uid): (
                    flagmap.letters_from_imap(flag_names(row.flags)),
                    row.internaldate.timestamp() if row.internaldate and dates else 0.0,
                )
                for row in rows
            }
        return result
    finally:
        await store.close()


async def test_migrate_preserves_folders_flags_dates_and_resumes(
    mail_user: MailUser, data_dir: Path
) -> None:
    client = await server(mail_user)
    when = datetime(2019, 3, 4, 5, 6, 7, tzinfo=UTC)
    await client.append("INBOX", msg(1), flags=["\\Seen", "$Important"], internaldate=when)
    await client.append("INBOX", msg(2), flags=["\\Flagged", "\\Answered"], internaldate=when)
    await client.create("Lists")
    await client.create("Lists.Python")
    big = msg("big") + b"x" * (3 * 1024 * 1024) + b"\r\n"
    await client.append("Lists.Python", big, flags=["\\Draft"], internaldate=when)
    await client.logout()
    out = await asyncio.to_thread(migrate, data_dir, mail_user)
    assert out["new"] == 3
    state = await store_state(data_dir)
    assert state == {
        "INBOX": {
            "<1@example.org>": ("S", when.timestamp()),
            "<2@example.org>": ("FR", when.timestamp()),
        },
        "Lists/Python": {"<big@example.org>": ("D", when.timestamp())},
    }
    # Idempotent, and incremental: only what arrived since is copied.
    assert (await asyncio.to_thread(migrate, data_dir, mail_user))["new"] == 0
    mail_user.deliver(msg(3))
    assert (await asyncio.to_thread(migrate, data_dir, mail_user))["new"] == 1
    assert set((await store_state(data_dir))["INBOX"]) == {f"<{n}@example.org>" for n in (1, 2, 3)}


async def test_migrate_interrupted_batch(mail_user: MailUser, data_dir: Path) -> None:
    client = await server(mail_user)
    for n in range(5):
        await client.append("INBOX", msg(n))
    await client.logout()
    await asyncio.to_thread(migrate, data_dir, mail_user)
    db = sqlite3.connect(data_dir / "migrate-state.sqlite")
    # As if the run had died after the store committed the batch but before it was noted:
    # the batch (UIDs 1-5, appended from target UID 1 on) is pending, last_uid is 0.
    sizes = ",".join(str(len(msg(n))) for n in range(5))
    db.execute(
        "UPDATE migration SET last_uid = 0, pending_last = 5, pending_uidnext = 1,"
        " pending_sizes = ? WHERE folder = 'INBOX'",
        (sizes,),
    )
    db.commit()
    assert (await asyncio.to_thread(migrate, data_dir, mail_user))["new"] == 0
    # As if it had died before the commit: pending from a UIDNEXT with nothing after it.
    db.execute(
        "UPDATE migration SET last_uid = 3, pending_last = 5, pending_uidnext = 1000,"
        " pending_sizes = ? WHERE folder = 'INBOX'",
        (sizes,),
    )
    db.commit()
    db.close()
    assert (await asyncio.to_thread(migrate, data_dir, mail_user))[
        "new"
    ] == 2  # UIDs 4 and 5 copied again
    # (they are duplicates here only because the simulated state lied about the past)


def test_import_export_round_trip_maildir_and_mbox(data_dir: Path, tmp_path: Path) -> None:
    source = MaildirStore(tmp_path / "Source")
    source.ensure()
    source.folder(INBOX).deliver(msg("a"), "S", mtime=1_600_000_000)
    source.folder(INBOX).deliver(
        msg("b") + b"From the start of a line\r\n>From quoted\r\n",
        "",
        mtime=1_600_000_100,
        to_new=True,
    )
    source.create_folder(("Projects", "X")).deliver(msg("c"), "FR", mtime=1_600_000_200)
    out = mailkeep(data_dir, "import", "maildir", str(tmp_path / "Source"), "--to", ADDRESS)
    assert out["new"] == 3
    state = asyncio.run(store_state(data_dir))
    assert state == {
        "INBOX": {
            "<a@example.org>": ("S", 1_600_000_000.0),
            "<b@example.org>": ("", 1_600_000_100.0),
        },
        "Projects/X": {"<c@example.org>": ("FR", 1_600_000_200.0)},
    }
    # Export as Maildir: byte-identical messages, same flags and dates.
    mailkeep(data_dir, "export", ADDRESS, "maildir", str(tmp_path / "Out"))
    exported = MaildirStore(tmp_path / "Out")
    originals = {m.path.read_bytes() for _, m in source.walk()}
    assert {m.path.read_bytes() for _, m in exported.walk()} == originals
    assert {("/".join(f), m.flags, m.mtime) for f, m in exported.walk()} == {
        ("INBOX", "S", 1_600_000_000.0),
        ("INBOX", "", 1_600_000_100.0),
        ("Projects/X", "FR", 1_600_000_200.0),
    }
    # Export as mbox and import that into a second folder tree: same messages again.
    mailkeep(data_dir, "export", ADDRESS, "mbox", str(tmp_path / "Mbox"))
    assert {m.raw for m in read_mbox(tmp_path / "Mbox" / "INBOX")} | {
        m.raw for m in read_mbox(tmp_path / "Mbox" / "Projects" / "X")
    } == originals
    out = mailkeep(
        data_dir, "import", "mbox", str(tmp_path / "Mbox"), "--to", ADDRESS, "--folder", "Again"
    )
    assert out["new"] == 3
    state = asyncio.run(store_state(data_dir))
    assert state["Again/INBOX"] == state["INBOX"]
    assert state["Again/Projects/X"] == state["Projects/X"]


def test_mbox_round_trip_quotes_from_lines(tmp_path: Path) -> None:
    raw = b"Subject: q\r\n\r\nFrom me\r\n>From you\r\n>>From them\r\nend\r\n"
    path = tmp_path / "box"
    with path.open("wb") as out:
        write_message(out, raw, ["\\Seen", "\\Flagged"], datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
        write_message(out, b"Subject: second\r\n\r\nbody\r\n", [], None)
    text = path.read_bytes()
    assert b"\n>From me\n>>From you\n>>>From them\n" in text
    assert b"Status: RO\nX-Status: F\n" in text
    first, second = read_mbox(path)
    assert first.raw == raw
    assert first.flags == ("\\Flagged", "\\Seen")
    assert first.date == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert second.raw == b"Subject: second\r\n\r\nbody\r\n"
    assert second.flags == ()


def test_export_refuses_a_non_empty_target(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "Full").mkdir()
    (tmp_path / "Full" / "x").write_text("x")
    result = CliRunner().invoke(
        main, ["--data", str(data_dir), "export", ADDRESS, "maildir", str(tmp_path / "Full")]
    )
    assert result.exit_code == 3


@pytest.mark.slow
async def test_migrate_ten_thousand_messages(mail_user: MailUser, data_dir: Path) -> None:
    """10,000 messages and a large attachment, written straight into Dovecot's Maildir."""
    login = await server(mail_user)  # makes Dovecot create the home directory
    await login.logout()
    home = mail_user.server.user_home(mail_user.name) / "Maildir"
    cur = home / "cur"
    cur.mkdir(parents=True, exist_ok=True)
    base = 1_500_000_000
    for n in range(10_000):
        letters = "S" if n % 3 else "FS" if n % 2 else ""
        path = cur / f"{base + n}.M{n}P1.host:2,{letters}"
        path.write_bytes(msg(n))
        os.utime(path, (base + n, base + n))
    big = msg("big") + (b"A" * 76 + b"\r\n") * 200_000  # about 15 MB
    path = cur / f"{base + 10_000}.Mbig.host:2,S"
    path.write_bytes(big)
    for entry in (home, cur, *cur.iterdir()):
        os.chown(entry, mail_user.server.uid, mail_user.server.gid)
    started = time.monotonic()
    out = await asyncio.to_thread(migrate, data_dir, mail_user)
    assert out["new"] == 10_001
    assert int(str(out["bytes"])) > len(big)
    state = await store_state(data_dir)
    remote = await remote_state(mail_user)
    assert {k: v[0] for k, v in state["INBOX"].items()} == remote["INBOX"]
    assert state["INBOX"]["<17@example.org>"][1] == base + 17
    assert (await asyncio.to_thread(migrate, data_dir, mail_user))["new"] == 0
    assert time.monotonic() - started < 600
