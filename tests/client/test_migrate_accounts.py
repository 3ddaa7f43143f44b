"""``mailkeep migrate`` between two accounts of one store, and between IMAP servers (Dovecot
and a ``mailkeep serve`` started here): folders with their hierarchy and special use, flags,
keywords, internal dates; idempotent, resumable, ``--dry-run``, ``--folder``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailkeep.cli import main
from mailkeep.client.connection import Endpoint, TlsMode
from mailkeep.client.imap import ImapClient
from mailkeep.client.imapwire import FileLiteral
from mailkeep.client.storeio import SPECIAL_USE, Item, StoreWriter
from mailkeep.client.sync import message_id
from mailkeep.mail.flags import flag_names
from mailkeep.store.api import FetchField
from mailkeep.store.factory import open_store

from .conftest import Dovecot, MailUser
from .syncutil import msg, server

OLD, NEW = "old@example.com", "new@example.com"
WHEN = datetime(2019, 3, 4, 5, 6, 7, tzinfo=UTC)
# {folder: {Message-ID: (sorted flags and keywords, internal date)}}
State = dict[str, dict[str, tuple[tuple[str, ...], float]]]


def cli(*args: str, code: int = 0) -> dict[str, object]:
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == code, result.output
    line = [x for x in result.output.splitlines() if x.startswith("{")][-1]
    out: dict[str, object] = json.loads(line)
    return out


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    runner = CliRunner()
    assert runner.invoke(main, ["--data", str(data), "init"]).exit_code == 0
    for address in (OLD, NEW):
        result = runner.invoke(
            main, ["--data", str(data), "user", "add", address, "--password-stdin"], input="pw\n"
        )
        assert result.exit_code == 0, result.output
    return data


async def fill(data: Path, address: str) -> None:
    """INBOX with flags and keywords, a nested folder, a special-use folder of our own."""
    store = await open_store("sqlite:store", data, pool_size=1)
    try:
        writer = await StoreWriter.open(store, address)
        inbox = await writer.mailbox("INBOX")
        await writer.append(
            inbox,
            [
                Item(msg(1), ("\\Seen", "$Important"), WHEN),
                Item(msg(2), ("\\Flagged", "\\Answered"), WHEN),
                Item(msg(3), (), None),
            ],
        )
        python = await writer.mailbox("Lists/Python")
        big = msg("big") + b"x" * (3 * 1024 * 1024) + b"\r\n"
        await writer.append(python, [Item(big, ("\\Draft", "Work"), WHEN)])
        await writer.mailbox("Empty/Child")
        old = await writer.mailbox("Old Mail", "\\Archive")
        await writer.append(old, [Item(msg("old"), ("\\Seen",), WHEN)])
    finally:
        await store.close()


async def store_state(data: Path, address: str) -> tuple[State, dict[str, str | None]]:
    """The account's messages, and {mailbox: special use} of every mailbox."""
    store = await open_store("sqlite:store", data, pool_size=1)
    try:
        account = await store.get_account(address)
        assert account is not None
        result: State = {}
        special: dict[str, str | None] = {}
        for mailbox in await store.list_mailboxes(account.id):
            special[mailbox.name] = mailbox.special_use
            snapshot = await store.snapshot(mailbox.id)
            if not snapshot.uids:
                continue
            fields = FetchField.FLAGS | FetchField.INTERNALDATE | FetchField.HEADER
            rows = await store.fetch(mailbox.id, list(snapshot.uids), fields)
            result[mailbox.name] = {
                message_id(row.header) or str(row.uid): (
                    tuple(sorted([*flag_names(row.flags), *row.keywords])),
                    row.internaldate.timestamp() if row.internaldate else 0.0,
                )
                for row in rows
            }
        return result, special
    finally:
        await store.close()


def local_migrate(data: Path, *extra: str, code: int = 0) -> dict[str, object]:
    return cli("--data", str(data), "migrate", "--from", OLD, "--to", NEW, *extra, code=code)


def test_between_two_accounts_copies_everything_once(data_dir: Path) -> None:
    asyncio.run(fill(data_dir, OLD))
    before, _ = asyncio.run(store_state(data_dir, NEW))
    assert before == {}
    dry = local_migrate(data_dir, "--dry-run")
    assert (dry["new"], dry["dry_run"]) == (5, True)
    assert asyncio.run(store_state(data_dir, NEW))[0] == {}

    out = local_migrate(data_dir)
    assert out["new"] == 5
    assert int(str(out["bytes"])) > 3 * 1024 * 1024
    assert out["folders"] == 5  # Empty, Empty/Child, Lists, Lists/Python, Old Mail
    old_state, old_special = asyncio.run(store_state(data_dir, OLD))
    new_state, new_special = asyncio.run(store_state(data_dir, NEW))
    assert new_state == old_state
    assert new_state["INBOX"]["<1@example.org>"] == (("$Important", "\\Seen"), WHEN.timestamp())
    assert new_state["Lists/Python"]["<big@example.org>"] == (("Work", "\\Draft"), WHEN.timestamp())
    # The hierarchy (empty folders too) and the special uses are there.
    assert new_special == old_special
    assert {"Lists", "Empty", "Empty/Child"} <= new_special.keys()
    assert new_special["Old Mail"] == "\\Archive"

    # Idempotent; incremental.
    assert local_migrate(data_dir)["new"] == 0
    asyncio.run(add_one(data_dir, OLD, "INBOX", msg(4)))
    assert local_migrate(data_dir)["new"] == 1
    assert len(asyncio.run(store_state(data_dir, NEW))[0]["INBOX"]) == 4


async def add_one(data: Path, address: str, folder: str, raw: bytes) -> None:
    store = await open_store("sqlite:store", data, pool_size=1)
    try:
        writer = await StoreWriter.open(store, address)
        await writer.append(await writer.mailbox(folder), [Item(raw, (), None)])
    finally:
        await store.close()


def test_between_two_accounts_folder_filter(data_dir: Path) -> None:
    asyncio.run(fill(data_dir, OLD))
    out = local_migrate(data_dir, "--folder", "Lists/*")
    assert out["new"] == 1
    state, special = asyncio.run(store_state(data_dir, NEW))
    assert set(state) == {"Lists/Python"}
    assert "Old Mail" not in special


def test_between_two_accounts_resumes_an_interrupted_batch(data_dir: Path) -> None:
    asyncio.run(fill(data_dir, OLD))
    assert local_migrate(data_dir)["new"] == 5
    db = sqlite3.connect(data_dir / "migrate-state.sqlite")
    (key,) = db.execute("SELECT DISTINCT source FROM migration").fetchone()
    assert key == f"local:{OLD}->{NEW}"
    sizes = ",".join(f"{n}:{len(msg(n))}" for n in (1, 2, 3))
    # As if the run had died after the store committed the INBOX batch (UIDs 1-3, appended
    # from target UID 1 on) but before it was noted: nothing is copied again.
    changed = db.execute(
        "UPDATE migration SET last_uid = 0, pending_last = 3, pending_uidnext = 1,"
        " pending_sizes = ? WHERE folder = 'INBOX'",
        (sizes,),
    ).rowcount
    db.commit()
    assert changed == 1
    assert local_migrate(data_dir)["new"] == 0
    # As if it had died before the commit: the target has nothing from UID 1000 on.
    db.execute(
        "UPDATE migration SET last_uid = 1, pending_last = 3, pending_uidnext = 1000,"
        " pending_sizes = ? WHERE folder = 'INBOX'",
        (sizes,),
    )
    db.commit()
    db.close()
    # UIDs 2 and 3 copied again (duplicates here only because the state lied about the past).
    assert local_migrate(data_dir)["new"] == 2


def test_migrate_refuses_the_same_account_and_bad_ends(data_dir: Path) -> None:
    result = CliRunner().invoke(
        main, ["--data", str(data_dir), "migrate", "--from", OLD, "--to", OLD.upper()]
    )
    assert result.exit_code == 2
    assert cli("--data", str(data_dir), "migrate", "--from", "nobody", "--to", NEW, code=3)["error"]
    out = cli("--data", str(data_dir), "migrate", "--from", "x@example.com", "--to", NEW, code=3)
    assert "no mailkeep account x@example.com" in str(out["error"])


# --- IMAP to IMAP ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MailkeepServer:
    data: Path
    port: int
    address: str
    password: str


@pytest.fixture
def mailkeep_server(tmp_path: Path) -> Iterator[MailkeepServer]:
    """``mailkeep serve`` with IMAP on a kernel-chosen loopback port and one account."""
    data = tmp_path / "served"
    runner = CliRunner()
    assert runner.invoke(main, ["--data", str(data), "init"]).exit_code == 0
    result = runner.invoke(
        main, ["--data", str(data), "user", "add", NEW, "--password-stdin"], input="secret\n"
    )
    assert result.exit_code == 0, result.output
    off = [f"--{name}=off" for name in ("imaps", "pop3", "pop3s", "smtp", "submission", "lmtp")]
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "mailkeep", "--data", str(data), "serve"),
            *("--imap=127.0.0.1:0", *off, "--submissions=off", "--http=off"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        assert process.stdout is not None
        port = 0
        while not port:
            line = process.stdout.readline().decode()
            assert line, "mailkeep serve exited early"
            found = re.match(r"\s+imap\s+127\.0\.0\.1:(\d+)", line)
            port = int(found.group(1)) if found else 0
        yield MailkeepServer(data, port, NEW, "secret")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


ImapState = dict[str, dict[str, tuple[tuple[str, ...], str]]]


async def imap_state(
    port: int, user: str, password: str
) -> tuple[ImapState, dict[str, tuple[str, ...]]]:
    """{folder in / form: {Message-ID: (flags, INTERNALDATE)}}, and every folder's
    special-use attributes."""
    client = await ImapClient.connect(Endpoint("127.0.0.1", port, TlsMode.NONE, timeout=20))
    await client.login(user, password)
    try:
        result: ImapState = {}
        listed: dict[str, tuple[str, ...]] = {}
        for entry in await client.list_mailboxes():
            name = "/".join(entry.name.split(entry.delimiter or "/"))
            listed[name] = tuple(sorted(a for a in entry.attributes if a in SPECIAL_USE))
            if not entry.selectable:
                continue
            box = await client.select(entry.name, readonly=True)
            if not box.exists:
                continue
            items = "(UID FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
            for fetch in await client.uid_fetch("1:*", items):
                head = fetch.section("BODY[HEADER.FIELDS (MESSAGE-ID)]")
                data = head.read() if isinstance(head, FileLiteral) else head or b""
                flags = tuple(sorted(f for f in fetch.flags or () if f != "\\Recent"))
                when = fetch.internaldate.isoformat() if fetch.internaldate else ""
                result.setdefault(name, {})[message_id(data) or "?"] = (flags, when)
        return result, listed
    finally:
        await client.logout()


async def seed_dovecot(user: MailUser) -> None:
    client = await server(user)
    await client.append("INBOX", msg(1), flags=["\\Seen", "$Important"], internaldate=WHEN)
    await client.append("INBOX", msg(2), flags=["\\Flagged", "\\Answered"], internaldate=WHEN)
    await client.create("Lists")
    await client.create("Lists.Python")
    await client.append("Lists.Python", msg("py"), flags=["\\Draft"], internaldate=WHEN)
    await client.logout()


def imap_migrate(
    user: MailUser, target: MailkeepServer, state: Path, code: int = 0
) -> dict[str, object]:
    return cli(
        "migrate",
        "--from",
        f"imap+plain://{user.name}@127.0.0.1:{user.server.imap_port}",
        "--password-command",
        f"printf %s {user.password}",
        "--to",
        f"imap+plain://{target.address}@127.0.0.1:{target.port}",
        "--to-password-command",
        f"printf %s {target.password}",
        "--state",
        str(state),
        code=code,
    )


async def test_imap_to_imap_dovecot_into_mailkeep(
    mail_user: MailUser, mailkeep_server: MailkeepServer, tmp_path: Path
) -> None:
    await seed_dovecot(mail_user)
    state = tmp_path / "state.sqlite"
    out = await asyncio.to_thread(imap_migrate, mail_user, mailkeep_server, state)
    assert out["new"] == 3
    source, _ = await imap_state(mail_user.server.imap_port, mail_user.name, mail_user.password)
    target, listed = await imap_state(
        mailkeep_server.port, mailkeep_server.address, mailkeep_server.password
    )
    assert target == source
    assert target["INBOX"]["<1@example.org>"][0] == ("$Important", "\\Seen")
    assert {"Lists", "Lists/Python"} <= listed.keys()

    # Idempotent; then resumable: as if the run had died after appending 1 of 2 messages.
    assert (await asyncio.to_thread(imap_migrate, mail_user, mailkeep_server, state))["new"] == 0
    client = await ImapClient.connect(
        Endpoint("127.0.0.1", mailkeep_server.port, TlsMode.NONE, timeout=20)
    )
    await client.login(mailkeep_server.address, mailkeep_server.password)
    box = await client.select("INBOX")
    assert box.uidnext == 3
    await client.uid_store("2", "+FLAGS", ["\\Deleted"])
    await client.expunge()
    await client.logout()
    db = sqlite3.connect(state)
    sizes = f"1:{len(msg(1))},2:{len(msg(2))}"
    changed = db.execute(
        "UPDATE migration SET last_uid = 0, pending_last = 2, pending_uidnext = 1,"
        " pending_sizes = ? WHERE folder = 'INBOX'",
        (sizes,),
    ).rowcount
    db.commit()
    db.close()
    assert changed == 1
    out = await asyncio.to_thread(imap_migrate, mail_user, mailkeep_server, state)
    assert out["new"] == 1  # only message 2: message 1 had arrived
    target, _ = await imap_state(
        mailkeep_server.port, mailkeep_server.address, mailkeep_server.password
    )
    assert target == source


async def test_mailkeep_account_into_dovecot(
    data_dir: Path, mail_user: MailUser, tmp_path: Path
) -> None:
    """mailkeep → IMAP: the local account's folders appear on Dovecot with its delimiter."""
    await fill(data_dir, OLD)
    login = await server(mail_user)  # Dovecot creates the home at the first login
    await login.logout()
    out = await asyncio.to_thread(
        cli,
        "--data",
        str(data_dir),
        "migrate",
        "--from",
        OLD,
        "--to",
        f"imap+plain://{mail_user.name}@127.0.0.1:{mail_user.server.imap_port}",
        "--to-password-command",
        f"printf %s {mail_user.password}",
    )
    assert out["new"] == 5
    target, listed = await imap_state(
        mail_user.server.imap_port, mail_user.name, mail_user.password
    )
    local, _ = await store_state(data_dir, OLD)
    assert {k: set(v) for k, v in target.items()} == {k: set(v) for k, v in local.items()}
    assert target["Lists/Python"]["<big@example.org>"] == (
        ("Work", "\\Draft"),
        WHEN.isoformat(),
    )
    assert {"Empty/Child", "Lists/Python", "Old Mail"} <= listed.keys()


async def test_mailkeep_account_into_mailkeep_server_keeps_special_use(
    data_dir: Path, mailkeep_server: MailkeepServer
) -> None:
    """Over IMAP, a special-use folder is created with CREATE ... (USE ...) (RFC 6154 3)."""
    await fill(data_dir, OLD)
    out = await asyncio.to_thread(
        cli,
        "--data",
        str(data_dir),
        "migrate",
        "--from",
        OLD,
        "--to",
        f"imap+plain://{mailkeep_server.address}@127.0.0.1:{mailkeep_server.port}",
        "--to-password-command",
        f"printf %s {mailkeep_server.password}",
        "--folder",
        "Old Mail",
    )
    assert out["new"] == 1
    assert out["folders"] == 1
    target, listed = await imap_state(
        mailkeep_server.port, mailkeep_server.address, mailkeep_server.password
    )
    assert listed["Old Mail"] == ("\\Archive",)
    assert target["Old Mail"]["<old@example.org>"] == (("\\Seen",), WHEN.isoformat())


def test_import_and_export_of_an_unknown_account_are_configuration_errors(
    data_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "empty.mbox").write_bytes(b"")
    data = str(data_dir)
    out = cli(
        "--data", data, "import", "mbox", str(tmp_path / "empty.mbox"), "--to", "x@y.z", code=3
    )
    assert "no mailkeep account x@y.z" in str(out["error"])
    out = cli("--data", data, "export", "x@y.z", "mbox", str(tmp_path / "out"), code=3)
    assert "no mailkeep account x@y.z" in str(out["error"])


async def test_imap_to_imap_between_two_dovecot_users(dovecot: Dovecot, tmp_path: Path) -> None:
    """Both ends with the "." delimiter: Lists.Python arrives as Lists.Python."""
    source = MailUser(dovecot, "u399", "pw-u399")  # from the pool's end: never a test's user
    target = MailUser(dovecot, "u400", "pw-u400")
    await seed_dovecot(source)
    login = await server(target)
    await login.logout()

    def run() -> dict[str, object]:
        return cli(
            "migrate",
            "--from",
            f"imap+plain://{source.name}@127.0.0.1:{dovecot.imap_port}",
            "--password-command",
            f"printf %s {source.password}",
            "--to",
            f"imap+plain://{target.name}@127.0.0.1:{dovecot.imap_port}",
            "--to-password-command",
            f"printf %s {target.password}",
            "--state",
            str(tmp_path / "state.sqlite"),
        )

    assert (await asyncio.to_thread(run))["new"] == 3
    assert (await asyncio.to_thread(run))["new"] == 0
    before, _ = await imap_state(dovecot.imap_port, source.name, source.password)
    after, listed = await imap_state(dovecot.imap_port, target.name, target.password)
    assert after == before
    assert {"INBOX", "Lists", "Lists/Python"} <= listed.keys()
