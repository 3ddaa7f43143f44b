"""mbsync (isync) two-way synchronisation against the real server: folders, flags,
deletions, a folder created locally, over STARTTLS."""

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
        f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n\r\nBody of {subject}.\r\n"
    ).encode()


def config(server: Server, maildir: Path) -> str:
    return f"""
IMAPAccount server
Host 127.0.0.1
Port {server.imap}
User {ADDRESS}
Pass "{PASSWORD}"
SSLType STARTTLS
CertificateFile {server.cert}
AuthMechs PLAIN
Timeout 30

IMAPStore remote
Account server

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Remove Both
Expunge Both
SyncState *
"""


async def mbsync(server: Server, tmp_path: Path) -> None:
    maildir = tmp_path / "mail"
    maildir.mkdir(exist_ok=True)
    rc = tmp_path / "mbsyncrc"
    rc.write_text(config(server, maildir))
    code, out, err = await run(need("mbsync"), "-c", str(rc), "-a", limit=120)
    assert code == 0, (out + err).decode(errors="replace")


def local(tmp_path: Path, folder: str) -> dict[str, str]:
    """Local message file name → maildir flags, for one folder."""
    out = {}
    for sub in ("cur", "new"):
        for path in (tmp_path / "mail" / folder / sub).iterdir():
            out[path.name] = path.name.partition(":2,")[2]
    return out


async def server_flags(server: Server, mailbox: str) -> dict[int, int]:
    box = await server.app.store.get_mailbox(server.account.id, mailbox)
    assert box is not None
    uids = await server.uids(mailbox)
    rows = await server.app.store.fetch(box.id, uids, FetchField.FLAGS)
    return {row.uid: row.flags for row in rows}


async def test_two_way_sync(server: Server, tmp_path: Path) -> None:
    await server.deliver(message("first"))
    await server.deliver(message("second"))
    await server.deliver(message("in archive"), "Archive")
    inbox = await server.app.store.get_mailbox(server.account.id, "INBOX")
    assert inbox is not None
    from mailkeep.store.api import FlagMode

    await server.app.store.store_flags(inbox.id, [1], FlagMode.ADD, int(SystemFlag.SEEN), ())

    await mbsync(server, tmp_path)
    files = local(tmp_path, "INBOX")
    assert len(files) == 2
    assert sorted(files.values()) == ["", "S"]
    assert len(local(tmp_path, "Archive")) == 1
    assert (tmp_path / "mail" / "Sent" / "cur").is_dir()

    # Local changes: flag the unread one, delete the read one, a new folder with a message.
    inbox_dir = tmp_path / "mail" / "INBOX"
    for sub in ("cur", "new"):
        for path in list((inbox_dir / sub).iterdir()):
            base, _, flags = path.name.partition(":2,")
            if "S" in flags:
                path.unlink()
            else:
                path.rename(inbox_dir / "cur" / f"{base}:2,FS")
    folder = tmp_path / "mail" / "Local"
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True)
    (folder / "new" / "1700000000.1.host").write_bytes(message("made locally"))

    # A change on the server side too.
    await server.deliver(message("third"))

    await mbsync(server, tmp_path)
    after = await server_flags(server, "INBOX")
    assert sorted(after) == [2, 3]
    assert after[2] & SystemFlag.FLAGGED
    assert after[2] & SystemFlag.SEEN
    assert len(await server.uids("Local")) == 1
    assert len(local(tmp_path, "INBOX")) == 2

    # Nothing left to do: a third run changes nothing.
    await mbsync(server, tmp_path)
    assert sorted(await server_flags(server, "INBOX")) == [2, 3]
