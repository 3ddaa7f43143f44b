"""``mailkeep sync`` against Dovecot, with CONDSTORE/QRESYNC and with the fallback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailkeep.client.errors import NetworkError
from mailkeep.client.maildir import INBOX, MaildirStore
from mailkeep.client.statedb import MessageRow, StateDB
from mailkeep.client.sync import SyncOptions, sync_account

from .conftest import MailUser, account_for
from .syncutil import counts, local_state, msg, remote_state, run_sync, server

pytestmark = pytest.mark.parametrize("qresync", [True, False], ids=["qresync", "plain"])


async def seed(user: MailUser) -> None:
    client = await server(user)
    await client.append("INBOX", msg(1), flags=["\\Seen"])
    await client.append("INBOX", msg(2), flags=["\\Flagged", "$Label1"])
    await client.append("INBOX", msg(3))
    await client.create("Work")
    await client.create("Work.Reports")
    await client.append("Work", msg("w1"), flags=["\\Answered", "\\Seen"])
    await client.append("Work.Reports", msg("r1"), flags=["\\Draft"])
    await client.logout()


async def test_first_sync_then_idempotent(
    mail_user: MailUser, tmp_path: Path, qresync: bool
) -> None:
    await seed(mail_user)
    root = tmp_path / "Mail"
    report = await run_sync(mail_user, root, qresync)
    assert report.new == 5
    assert local_state(root) == await remote_state(mail_user)
    assert local_state(root)["INBOX"] == {
        "<1@example.org>": "S",
        "<2@example.org>": "F",
        "<3@example.org>": "",
    }
    assert set(os.listdir(root)) >= {".Work", ".Work.Reports", "cur", "new", "tmp"}
    # The unflagged message is in new/, the others in cur/ with their info.
    assert len(os.listdir(root / "new")) == 1
    assert counts(await run_sync(mail_user, root, qresync)) == (0, 0, 0, 0)
    again = await run_sync(mail_user, root, qresync)
    assert counts(again) == (0, 0, 0, 0)
    # With QRESYNC an unchanged folder costs one STATUS and no SELECT.
    if qresync:
        assert again.details == {"folders_unchanged": 3}
    else:
        assert again.details == {"folders_selected": 3}


async def test_local_changes_are_pushed(mail_user: MailUser, tmp_path: Path, qresync: bool) -> None:
    await seed(mail_user)
    root = tmp_path / "Mail"
    await run_sync(mail_user, root, qresync)
    store = MaildirStore(root)
    inbox = store.folder(INBOX)
    by_id = {
        m.path.read_bytes().split(b"Message-ID: ")[1][:16]: m for m in inbox.messages().values()
    }
    inbox.set_flags(by_id[b"<3@example.org>\r"], "RS")
    inbox.remove(by_id[b"<1@example.org>\r"])
    inbox.deliver(msg("local-new"), "S")
    store.folder(("Work",)).deliver(msg("local-draft"), "D")
    report = await run_sync(mail_user, root, qresync)
    assert counts(report) == (2, 1, 1, 0)
    remote = await remote_state(mail_user)
    assert remote["INBOX"] == {
        "<2@example.org>": "F",
        "<3@example.org>": "RS",
        "<local-new@example.org>": "S",
    }
    assert remote["Work"]["<local-draft@example.org>"] == "D"
    assert local_state(root) == remote
    assert counts(await run_sync(mail_user, root, qresync)) == (0, 0, 0, 0)


async def test_remote_changes_are_pulled(
    mail_user: MailUser, tmp_path: Path, qresync: bool
) -> None:
    await seed(mail_user)
    root = tmp_path / "Mail"
    await run_sync(mail_user, root, qresync)
    client = await server(mail_user)
    await client.select("INBOX")
    await client.uid_store("1", "-FLAGS", ["\\Seen"])
    await client.uid_store("3", "+FLAGS", ["\\Flagged"])
    await client.uid_store("2", "+FLAGS", ["\\Deleted"])
    await client.uid_expunge("2")
    await client.append("INBOX", msg(4), flags=["\\Seen"])
    await client.logout()
    mail_user.deliver(msg(5))
    report = await run_sync(mail_user, root, qresync)
    assert counts(report) == (2, 2, 1, 0)
    remote = await remote_state(mail_user)
    assert local_state(root) == remote
    assert remote["INBOX"] == {
        "<1@example.org>": "",
        "<3@example.org>": "F",
        "<4@example.org>": "S",
        "<5@example.org>": "",
    }
    assert counts(await run_sync(mail_user, root, qresync)) == (0, 0, 0, 0)


async def test_flag_changes_on_both_sides_merge_and_deletion_wins(
    mail_user: MailUser, tmp_path: Path, qresync: bool
) -> None:
    await seed(mail_user)
    root = tmp_path / "Mail"
    await run_sync(mail_user, root, qresync)
    inbox = MaildirStore(root).folder(INBOX)
    messages = {
        m.path.read_bytes().split(b"Message-ID: <")[1][:1]: m for m in inbox.messages().values()
    }
    inbox.set_flags(messages[b"3"], "F")  # local: +F on 3
    inbox.set_flags(messages[b"2"], "FR")  # local: +R on 2, which the server deletes
    client = await server(mail_user)
    await client.select("INBOX")
    await client.uid_store("3", "+FLAGS", ["\\Seen"])  # remote: +S on 3
    await client.uid_store("2", "+FLAGS", ["\\Deleted"])
    await client.uid_expunge("2")
    await client.logout()
    await run_sync(mail_user, root, qresync)
    remote = await remote_state(mail_user)
    assert remote["INBOX"] == {"<1@example.org>": "S", "<3@example.org>": "FS"}
    assert local_state(root) == remote


async def test_folder_changes_both_ways(mail_user: MailUser, tmp_path: Path, qresync: bool) -> None:
    await seed(mail_user)
    root = tmp_path / "Mail"
    await run_sync(mail_user, root, qresync)
    store = MaildirStore(root)
    # Local: create a folder with a message, rename Work.Reports → Work.Archive.
    store.create_folder(("Lists",)).deliver(msg("l1"), "S")
    store.rename_folder(("Work", "Reports"), ("Work", "Archive"))
    # Remote: create a folder with a message.
    client = await server(mail_user)
    await client.create("Remote")
    await client.append("Remote", msg("rm1"))
    await client.logout()
    report = await run_sync(mail_user, root, qresync)
    assert report.folders == 3
    remote = await remote_state(mail_user)
    assert set(remote) == {"INBOX", "Work", "Work/Archive", "Lists", "Remote"}
    assert remote["Work/Archive"] == {"<r1@example.org>": "D"}
    assert local_state(root) == remote
    assert counts(await run_sync(mail_user, root, qresync)) == (0, 0, 0, 0)
    # Remote rename of a parent: its child follows locally; local deletion of an unchanged
    # folder deletes it on the server.
    client = await server(mail_user)
    await client.rename("Work", "Job")
    await client.logout()
    store.delete_folder(("Lists",))
    report = await run_sync(mail_user, root, qresync)
    remote = await remote_state(mail_user)
    assert set(remote) == {"INBOX", "Job", "Job/Archive", "Remote"}
    assert local_state(root) == remote
    # Remote deletion of an unchanged folder deletes it locally.
    client = await server(mail_user)
    await client.delete("Remote")
    await client.logout()
    await run_sync(mail_user, root, qresync)
    assert "Remote" not in local_state(root)
    assert local_state(root) == await remote_state(mail_user)
    assert counts(await run_sync(mail_user, root, qresync)) == (0, 0, 0, 0)


async def test_deleted_folder_with_changes_on_other_side_is_kept(
    mail_user: MailUser, tmp_path: Path, qresync: bool
) -> None:
    await seed(mail_user)
    root = tmp_path / "Mail"
    await run_sync(mail_user, root, qresync)
    MaildirStore(root).delete_folder(("Work", "Reports"))
    client = await server(mail_user)
    await client.append("Work.Reports", msg("r2"))
    await client.logout()
    report = await run_sync(mail_user, root, qresync)
    assert report.notes == ["folder Work.Reports: deleted locally, kept on the server"]
    remote = await remote_state(mail_user)
    assert remote["Work/Reports"] == {"<r1@example.org>": "D", "<r2@example.org>": ""}
    assert local_state(root) == remote


async def test_offline_changes_are_pushed_later(
    mail_user: MailUser, tmp_path: Path, qresync: bool
) -> None:
    await seed(mail_user)
    root = tmp_path / "Mail"
    await run_sync(mail_user, root, qresync)
    MaildirStore(root).folder(INBOX).deliver(msg("offline"), "S")
    offline = account_for(mail_user, root, port=1)
    with pytest.raises(NetworkError):
        await sync_account(offline, mail_user.password, SyncOptions(use_qresync=qresync))
    await run_sync(mail_user, root, qresync)
    assert (await remote_state(mail_user))["INBOX"]["<offline@example.org>"] == "S"


async def test_dry_run_changes_nothing(mail_user: MailUser, tmp_path: Path, qresync: bool) -> None:
    await seed(mail_user)
    root = tmp_path / "Mail"
    before = await remote_state(mail_user)
    report = await run_sync(mail_user, root, qresync, dry_run=True)
    assert report.new == 5
    assert all(not messages for messages in local_state(root).values())
    assert await remote_state(mail_user) == before


async def test_folder_selection(mail_user: MailUser, tmp_path: Path, qresync: bool) -> None:
    await seed(mail_user)
    root = tmp_path / "Mail"
    await run_sync(mail_user, root, qresync, folders=("Work*",))
    assert set(local_state(root)) == {"INBOX", "Work", "Work/Reports"}
    assert local_state(root)["INBOX"] == {}
    assert (await remote_state(mail_user))["INBOX"]  # untouched on the server


async def test_mass_deletion_needs_confirmation(
    mail_user: MailUser, tmp_path: Path, qresync: bool
) -> None:
    client = await server(mail_user)
    for n in range(12):
        await client.append("INBOX", msg(n))
    await client.logout()
    root = tmp_path / "Mail"
    await run_sync(mail_user, root, qresync)
    inbox = MaildirStore(root).folder(INBOX)
    for message in inbox.messages().values():
        inbox.remove(message)
    asked: list[str] = []

    def refuse(question: str) -> bool:
        asked.append(question)
        return False

    report = await run_sync(mail_user, root, qresync, confirm=refuse)
    assert asked
    assert report.skipped
    assert len((await remote_state(mail_user))["INBOX"]) == 12
    report = await run_sync(mail_user, root, qresync, confirm=lambda q: True)
    assert report.deleted == 12
    assert (await remote_state(mail_user))["INBOX"] == {}


async def test_uidvalidity_change_rematches_messages(
    mail_user: MailUser, tmp_path: Path, qresync: bool
) -> None:
    await seed(mail_user)
    root = tmp_path / "Mail"
    await run_sync(mail_user, root, qresync)
    keys_before = set(MaildirStore(root).folder(("Work",)).messages())
    # The server loses the folder and gets it back with new UIDs (a restore, a migration).
    client = await server(mail_user)
    await client.delete("Work")
    await client.create("Work")
    await client.append("Work", msg("w1"), flags=["\\Answered", "\\Seen"])
    await client.append("Work", msg("w2"))
    await client.logout()
    report = await run_sync(mail_user, root, qresync)
    assert any("UIDVALIDITY" in s for s in report.notes)
    assert report.new == 1
    work = MaildirStore(root).folder(("Work",)).messages()
    assert keys_before < set(work)  # the matched message kept its file
    assert local_state(root) == await remote_state(mail_user)
    assert counts(await run_sync(mail_user, root, qresync)) == (0, 0, 0, 0)


async def test_interrupted_transfers_resume_without_duplicates(
    mail_user: MailUser, tmp_path: Path, qresync: bool
) -> None:
    await seed(mail_user)
    root = tmp_path / "Mail"
    await run_sync(mail_user, root, qresync)
    # A local message was APPENDed but the run died before recording its UID ...
    account = account_for(mail_user, root)
    inbox = MaildirStore(root).folder(INBOX)
    appended = inbox.deliver(msg("half-up"), "S")
    client = await server(mail_user)
    status = await client.status("INBOX", ["UIDNEXT"])
    with appended.path.open("rb") as source:
        await client.append("INBOX", source, size=appended.size, flags=["\\Seen"])
    await client.logout()
    with StateDB(account.state) as state:
        folder = next(f for f in state.folders() if f.remote == "INBOX")
        state.put_message(
            MessageRow(folder.id, appended.key, None, "S", "", "appending", status["UIDNEXT"])
        )
    # ... and a remote message was being downloaded when it died (file not written).
    client = await server(mail_user)
    await client.append("INBOX", msg("half-down"))
    await client.logout()
    report = await run_sync(mail_user, root, qresync)
    assert report.new == 1  # half-down only; half-up was found on the server
    remote = await remote_state(mail_user)
    assert local_state(root) == remote
    client = await server(mail_user)
    assert (await client.status("INBOX", ["MESSAGES"]))["MESSAGES"] == 5  # no duplicate
    await client.logout()
    assert len(inbox.messages()) == 5
    assert counts(await run_sync(mail_user, root, qresync)) == (0, 0, 0, 0)


async def test_large_message_both_ways(mail_user: MailUser, tmp_path: Path, qresync: bool) -> None:
    # Bigger than the spool threshold: streamed through a temporary file, never in memory.
    attachment = b"".join(
        b"%07d abcdefghijklmnopqrstuvwxyz0123456789\r\n" % i for i in range(120_000)
    )
    big = msg("big") + attachment
    client = await server(mail_user)
    await client.append("INBOX", big, flags=["\\Seen"])
    await client.logout()
    root = tmp_path / "Mail"
    report = await run_sync(mail_user, root, qresync)
    assert report.bytes >= len(big)
    (local,) = MaildirStore(root).folder(INBOX).messages().values()
    assert local.path.read_bytes() == big
    store = MaildirStore(root).create_folder(("Big",))
    store.deliver(big, "F")
    await run_sync(mail_user, root, qresync)
    client = await server(mail_user)
    await client.select("Big")
    (fetch,) = await client.uid_fetch("1", "(BODY.PEEK[])")
    body = fetch.section()
    assert body is not None
    assert (body if isinstance(body, bytes) else body.read()) == big
    fetch.close()
    await client.logout()
