"""offlineimap3 against the real server over implicit TLS: download, flags and deletion
propagated back."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailkeep.mail.flags import SystemFlag
from mailkeep.store.api import FetchField

from .conftest import ADDRESS, PASSWORD, Server, need, run

pytestmark = pytest.mark.interop


def message(subject: str) -> bytes:
    return (
        f"From: bob@example.org\r\nTo: {ADDRESS}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject}@example.org>\r\n\r\nBody of {subject}.\r\n"
    ).encode()


async def offlineimap(server: Server, tmp_path: Path) -> None:
    rc = tmp_path / "offlineimaprc"
    rc.write_text(
        f"""
[general]
accounts = test
metadata = {tmp_path}/meta
ui = quiet

[Account test]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {tmp_path}/mail

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = {server.imaps}
remoteuser = {ADDRESS}
remotepass = {PASSWORD}
ssl = yes
sslcacertfile = {server.cert}
folderfilter = lambda name: name in ["INBOX", "Archive"]
"""
    )
    code, out, err = await run(need("offlineimap"), "-c", str(rc), "-o", limit=120)
    assert code == 0, (out + err).decode(errors="replace")


async def test_sync_flags_and_deletion(server: Server, tmp_path: Path) -> None:
    for subject in ("one", "two", "three"):
        await server.deliver(message(subject))
    await server.deliver(message("old"), "Archive")
    await offlineimap(server, tmp_path)
    inbox = tmp_path / "mail" / "INBOX"
    files = sorted(p for sub in ("cur", "new") for p in (inbox / sub).iterdir())
    assert len(files) == 3
    assert (
        len(list((tmp_path / "mail" / "Archive" / "cur").iterdir()))
        + len(list((tmp_path / "mail" / "Archive" / "new").iterdir()))
        == 1
    )
    by_subject = {p.read_bytes().split(b"Subject: ")[1].split(b"\n")[0].strip(): p for p in files}
    by_subject[b"one"].unlink()
    two = by_subject[b"two"]
    base = two.name.partition(":2,")[0]
    two.rename(inbox / "cur" / f"{base}:2,RS")
    await offlineimap(server, tmp_path)
    box = await server.app.store.get_mailbox(server.account.id, "INBOX")
    assert box is not None
    uids = await server.uids()
    assert uids == [2, 3]
    rows = await server.app.store.fetch(box.id, uids, FetchField.FLAGS)
    assert rows[0].flags == SystemFlag.SEEN | SystemFlag.ANSWERED
    assert rows[1].flags == 0
