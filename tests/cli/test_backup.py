"""Operational safety: online backup, restore, and the integrity check."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailkeep.cli import main
from mailkeep.datadir import DEMO_ADDRESS
from mailkeep.mail.message import parse
from mailkeep.store.api import FetchField, NewMessage
from mailkeep.store.backup import exclusive, gc_paused
from mailkeep.store.factory import open_store


def run(data: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--data", str(data), *args])
    return result.exit_code, result.output


def message(n: int) -> bytes:
    """Odd messages are larger than the store keeps in its database: they are files."""
    body = f"body {n}\r\n" + ("z" * 98 + "\r\n") * (2000 if n % 2 else 0)
    return f"Subject: message {n}\r\nMessage-ID: <{n}@test>\r\n\r\n{body}".encode()


def blob_files(data: Path) -> list[Path]:
    return list((data / "store" / "blobs").glob("??/??/*"))


def inline_blobs(data: Path) -> list[str]:
    with sqlite3.connect(data / "store" / "mailkeep.sqlite3") as db:
        return [row[0] for row in db.execute("SELECT hash FROM inline_blobs")]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    assert run(directory, "init", "--demo")[0] == 0
    return directory


async def _append(data: Path, count: int) -> None:
    store = await open_store("sqlite:store", data)
    try:
        account = await store.get_account(DEMO_ADDRESS)
        assert account is not None
        inbox = await store.get_mailbox(account.id, "INBOX")
        assert inbox is not None
        for n in range(count):
            await store.append(inbox.id, [NewMessage(message(n), parse(message(n)))])
    finally:
        await store.close()


async def _messages(data: Path) -> list[bytes]:
    store = await open_store("sqlite:store", data)
    try:
        account = await store.get_account(DEMO_ADDRESS)
        assert account is not None
        inbox = await store.get_mailbox(account.id, "INBOX")
        assert inbox is not None
        uids = list((await store.snapshot(inbox.id)).uids)
        raws = []
        for row in await store.fetch(inbox.id, uids, FetchField.BLOB):
            reader = await store.open_blob(row.blob)
            raws.append(await reader.read(0, reader.size))
            await reader.close()
        return raws
    finally:
        await store.close()


def test_backup_while_open_and_restore(data: Path, tmp_path: Path) -> None:
    asyncio.run(_append(data, 5))
    assert (len(blob_files(data)), len(inline_blobs(data))) == (2, 3)

    async def backup_while_serving() -> tuple[int, str]:
        store = await open_store("sqlite:store", data)  # a running server's store
        try:
            return await asyncio.to_thread(run, data, "backup", str(tmp_path / "bk"))
        finally:
            await store.close()

    code, output = asyncio.run(backup_while_serving())
    assert code == 0, output
    assert "1 accounts, 5 messages" in output
    code, output = run(data, "backup", str(tmp_path / "bk"))
    assert code == 1
    assert "not empty" in output

    other = tmp_path / "other"
    assert run(other, "init")[0] == 0
    code, output = run(other, "restore", str(tmp_path / "bk"))
    assert code == 1
    assert "--force" in output
    code, output = run(other, "restore", str(tmp_path / "bk"), "--force")
    assert code == 0, output
    assert asyncio.run(_messages(other)) == [message(n) for n in range(5)]
    assert run(other, "check")[1] == "store is consistent\n"


def test_restore_refuses_while_a_server_runs(data: Path, tmp_path: Path) -> None:
    assert run(data, "backup", str(tmp_path / "bk"))[0] == 0
    with exclusive(data):
        code, output = run(data, "restore", str(tmp_path / "bk"), "--force")
    assert code == 1
    assert "server is running" in output


def test_restore_refuses_a_non_backup(data: Path, tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    code, output = run(data, "restore", str(tmp_path / "junk"), "--force")
    assert code == 1
    assert "not a mailkeep backup" in output


def test_check_finds_and_repairs(data: Path) -> None:
    asyncio.run(_append(data, 3))
    assert run(data, "check") == (0, "store is consistent\n")
    orphan = data / "store" / "blobs" / "ab" / "cd" / ("abcd" + "0" * 60)
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by a crash")
    with sqlite3.connect(data / "store" / "mailkeep.sqlite3") as db:
        db.execute("UPDATE accounts SET used_bytes = 1, used_messages = 99")
        db.execute("UPDATE mailboxes SET uidnext = 2 WHERE name = 'INBOX'")
    code, output = run(data, "check")
    assert code == 1
    assert f"orphan blob {orphan.name}" in output
    assert "usage 1 octets / 99 messages stored" in output
    assert "UIDNEXT 2 <= UID 3" in output
    code, output = run(data, "check", "--repair")
    assert code == 0, output
    assert not orphan.exists()
    assert run(data, "check") == (0, "store is consistent\n")
    with sqlite3.connect(data / "store" / "mailkeep.sqlite3") as db:
        assert db.execute("SELECT uidnext FROM mailboxes WHERE name = 'INBOX'").fetchone() == (4,)


def test_check_reports_a_missing_blob(data: Path) -> None:
    asyncio.run(_append(data, 2))
    (blob,) = blob_files(data)
    blob.unlink()
    (inline,) = inline_blobs(data)
    with sqlite3.connect(data / "store" / "mailkeep.sqlite3") as db:
        db.execute("DELETE FROM inline_blobs WHERE hash = ?", (inline,))
    code, output = run(data, "check", "--repair")
    assert code == 1
    assert f"missing blob {blob.name} used by 1 message(s)" in output
    assert f"missing blob {inline} used by 1 message(s)" in output


def test_collector_waits_for_a_running_backup(data: Path) -> None:
    async def scenario() -> tuple[int, int]:
        store = await open_store("sqlite:store", data)
        try:
            account = await store.get_account(DEMO_ADDRESS)
            assert account is not None
            inbox = await store.get_mailbox(account.id, "INBOX")
            assert inbox is not None
            await store.append(inbox.id, [NewMessage(message(1), parse(message(1)))])
            await store.remove(inbox.id, [1])
            with gc_paused(data / "store"):
                during = await store.collect_garbage()
            after = await store.collect_garbage()
            return during, after
        finally:
            await store.close()

    during, after = asyncio.run(scenario())
    assert (during, after) == (0, 1)
    assert blob_files(data) == []


def test_over_quota_append_leaves_no_blob(data: Path) -> None:
    assert run(data, "user", "quota", DEMO_ADDRESS, "10")[0] == 0
    with pytest.raises(Exception, match="full"):
        asyncio.run(_append(data, 1))
    assert (blob_files(data), inline_blobs(data)) == ([], [])
    assert run(data, "check") == (0, "store is consistent\n")
