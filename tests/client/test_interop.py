"""Real clients on the same data: neomutt reads (and changes) the Maildir that
``mailkeep sync`` wrote; mbsync (isync) and ``mailkeep sync`` agree on the server state."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from mailkeep.client.maildir import INBOX, MaildirStore

from .conftest import MailUser
from .syncutil import local_state, msg, remote_state, run_sync, server

pytestmark = pytest.mark.interop


async def seed(user: MailUser) -> None:
    client = await server(user)
    await client.append("INBOX", msg("seen"), flags=["\\Seen"])
    await client.append("INBOX", msg("flagged"), flags=["\\Flagged", "\\Seen"])
    await client.append("INBOX", msg("unread"))
    await client.append("INBOX", msg("replied"), flags=["\\Answered", "\\Seen"])
    await client.create("Work")
    await client.append("Work", msg("work"), flags=["\\Seen"])
    await client.logout()


def neomutt(tmp_path: Path, mailbox: Path, keys: str) -> None:
    """Run neomutt on a pseudo-terminal with ``keys`` pushed, until it quits."""
    if shutil.which("neomutt") is None:
        pytest.skip("neomutt is not installed (scripts/test-deps.sh installs it)")
    rc = tmp_path / "neomuttrc"
    rc.write_text(
        f'set folder="{mailbox}"\nset spoolfile="{mailbox}"\nset mbox_type=Maildir\n'
        "set quit=yes\nset wait_key=no\nset pipe_split=yes\nset mark_old=no\nset move=no\n"
        'set beep=no\nset header_cache=""\nset delete=yes\nset maildir_trash=no\n'
    )
    command = ["neomutt", "-n", "-F", str(rc), "-f", str(mailbox), "-e", f'push "{keys}"']
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.environ["TERM"] = "xterm"
        os.execvp(command[0], command)
    deadline = time.monotonic() + 30
    screen = b""
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    break
                if not data:
                    break
                screen += data
        else:
            os.kill(pid, 9)
            pytest.fail(f"neomutt did not quit: {screen[-2000:]!r}")
    finally:
        os.waitpid(pid, 0)
        os.close(fd)


def matching(tmp_path: Path, mailbox: Path, pattern: str) -> set[str]:
    """Message-IDs of the messages neomutt finds with a search pattern (~F, ~N, ...)."""
    out = tmp_path / "matches.txt"
    out.write_text("")
    neomutt(
        tmp_path,
        mailbox,
        f"<tag-pattern>{pattern}<enter><tag-prefix><pipe-message>grep -i message-id >> {out}"
        "<enter><quit>",
    )
    return {line.split(":", 1)[1].strip() for line in out.read_text().splitlines() if line}


async def test_neomutt_reads_and_changes_the_synced_maildir(
    mail_user: MailUser, tmp_path: Path
) -> None:
    await seed(mail_user)
    root = tmp_path / "Mail"
    await run_sync(mail_user, root)
    assert matching(tmp_path, root, "~A") == {
        "<seen@example.org>",
        "<flagged@example.org>",
        "<unread@example.org>",
        "<replied@example.org>",
    }
    assert matching(tmp_path, root, "~F") == {"<flagged@example.org>"}
    assert matching(tmp_path, root, "~U") == {"<unread@example.org>"}
    assert matching(tmp_path, root, "~Q") == {"<replied@example.org>"}
    assert matching(tmp_path, root / ".Work", "~R") == {"<work@example.org>"}
    # neomutt changes the Maildir: flag the unread message, delete the seen one.
    neomutt(
        tmp_path,
        root,
        "<search>~U<enter><flag-message><search>~s seen<enter><delete-message><sync-mailbox><quit>",
    )
    await run_sync(mail_user, root)
    remote = await remote_state(mail_user)
    assert remote["INBOX"] == {
        "<flagged@example.org>": "FS",
        "<unread@example.org>": "F",
        "<replied@example.org>": "RS",
    }
    assert local_state(root) == remote


def mbsync(tmp_path: Path, user: MailUser, root: Path) -> None:
    if shutil.which("mbsync") is None:
        pytest.skip("mbsync is not installed (scripts/test-deps.sh installs isync)")
    root.mkdir(exist_ok=True)
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        f"IMAPAccount test\nHost 127.0.0.1\nPort {user.server.imap_port}\nUser {user.name}\n"
        f"Pass {user.password}\nSSLType None\nAuthMechs LOGIN\n\n"
        "IMAPStore remote\nAccount test\n\n"
        f"MaildirStore local\nInbox {root}\nSubFolders Maildir++\n\n"
        "Channel test\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nRemove Both\n"
        "Expunge Both\nSyncState *\nSync All\n"
    )
    result = subprocess.run(
        ["mbsync", "-c", str(rc), "-a", "-q"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


async def test_mbsync_and_mailkeep_agree(mail_user: MailUser, tmp_path: Path) -> None:
    await seed(mail_user)
    ours = tmp_path / "Mail"
    theirs = tmp_path / "Mbsync"
    await run_sync(mail_user, ours)
    mbsync(tmp_path, mail_user, theirs)
    assert local_state(theirs) == local_state(ours) == await remote_state(mail_user)
    # A change made through mbsync reaches mailkeep, and one made through mailkeep
    # reaches mbsync.
    box = MaildirStore(theirs).folder(INBOX)
    unread = next(m for m in box.messages().values() if b"<unread@" in m.path.read_bytes())
    box.set_flags(unread, "FS")
    mbsync(tmp_path, mail_user, theirs)
    MaildirStore(ours).folder(("Work",)).deliver(msg("from-mailkeep"), "S")
    await run_sync(mail_user, ours)
    mbsync(tmp_path, mail_user, theirs)
    remote = await remote_state(mail_user)
    assert remote["INBOX"]["<unread@example.org>"] == "FS"
    assert remote["Work"]["<from-mailkeep@example.org>"] == "S"
    assert local_state(theirs) == local_state(ours) == remote
