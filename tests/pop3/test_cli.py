"""``mailkeep pop3 policy`` and ``mailkeep pop3 expire`` through click, on an
initialised data directory."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailkeep.cli import main
from mailkeep.mail.message import parse
from mailkeep.pop3.cli import COMMANDS
from mailkeep.store.api import NewMessage
from mailkeep.store.sqlite import SqliteEngine
from mailkeep.store.sqlstore import SqlStore

ADDRESS = "carol@example.org"
DAY = 86400


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    runner = CliRunner()
    result = runner.invoke(main, ["--data", str(data), "init"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        main, ["--data", str(data), "user", "add", ADDRESS, "--password-stdin"], input="pw\n"
    )
    assert result.exit_code == 0, result.output
    return data


def mailkeep(data: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--data", str(data), *args])
    return result.exit_code, result.output


def test_mounted() -> None:
    assert [c.name for c in COMMANDS] == ["pop3"]
    assert "pop3" in main.commands


def test_policy_show_and_set(data: Path) -> None:
    code, out = mailkeep(data, "pop3", "policy", ADDRESS)
    assert code == 0, out
    assert out == (
        f"{ADDRESS}: retention keep (server default; server: keep),"
        " retr-marks-seen yes (server default)\n"
    )
    code, out = mailkeep(
        data, "pop3", "policy", ADDRESS, "--retention", "DAYS:14", "--retr-marks-seen", "no"
    )
    assert code == 0, out
    assert out == (
        f"{ADDRESS}: retention days:14 (account; server: keep), retr-marks-seen no (account)\n"
    )
    code, out = mailkeep(data, "pop3", "policy", ADDRESS, "--retention", "default")
    assert out.startswith(f"{ADDRESS}: retention keep (server default; server: keep)")
    assert "retr-marks-seen no (account)" in out


def test_policy_errors(data: Path) -> None:
    code, out = mailkeep(data, "pop3", "policy", ADDRESS, "--retention", "days:0")
    assert code == 2
    assert "days:N" in out
    code, out = mailkeep(data, "pop3", "policy", "nobody@example.org")
    assert code == 1
    assert "no account nobody@example.org" in out


async def seed(data: Path, downloaded_days_ago: float) -> None:
    """Two messages in INBOX, the first downloaded some days ago."""
    root = data / "store"
    engine = await SqliteEngine.open(root / "mailkeep.sqlite3", root / "blobs", 1)
    store = SqlStore(engine, clock=lambda: time.time() - downloaded_days_ago * DAY)
    try:
        account = await store.get_account(ADDRESS)
        assert account is not None
        inbox = await store.get_mailbox(account.id, "INBOX")
        assert inbox is not None
        raws = [b"Subject: old\r\n\r\nx\r\n", b"Subject: new\r\n\r\ny\r\n"]
        result = await store.append(inbox.id, [NewMessage(r, parse(r)) for r in raws])
        await store.mark_downloaded(inbox.id, result.uids[:1])
    finally:
        await store.close()


def test_expire(data: Path) -> None:
    asyncio.run(seed(data, downloaded_days_ago=10))
    code, out = mailkeep(data, "pop3", "expire")
    assert (code, out) == (0, "deleted 0 messages in all\n")  # the server keeps
    mailkeep(data, "pop3", "policy", ADDRESS, "--retention", "days:7")
    code, out = mailkeep(data, "pop3", "expire", "--dry-run")
    assert (code, out) == (
        0,
        f"{ADDRESS}: would delete 1 messages\nwould delete 1 messages in all\n",
    )
    code, out = mailkeep(data, "pop3", "expire")
    assert (code, out) == (0, f"{ADDRESS}: deleted 1 messages\ndeleted 1 messages in all\n")
    code, out = mailkeep(data, "pop3", "expire")
    assert (code, out) == (0, "deleted 0 messages in all\n")
