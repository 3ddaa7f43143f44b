"""neomutt, driven without a person: it runs on a pseudo-terminal and its keys are pushed
with ``-e 'push ...'``; what it did is checked on the server afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
from pathlib import Path

import pytest

from mailkeep.mail.flags import SystemFlag
from mailkeep.store.api import FetchField

from .conftest import ADDRESS, PASSWORD, Server, need

pytestmark = pytest.mark.interop


def message(subject: str) -> bytes:
    return (
        f"From: bob@example.org\r\nTo: {ADDRESS}\r\nSubject: {subject}\r\n"
        f"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\nBody of {subject}.\r\n"
    ).encode()


async def neomutt(server: Server, tmp_path: Path, keys: str, limit: float = 60) -> bytes:
    """Run neomutt on INBOX, push ``keys``; return what it drew on the terminal."""
    rc = tmp_path / "neomuttrc"
    rc.write_text(
        f"""
set folder = "imap://127.0.0.1:{server.imap}/"
set imap_user = "{ADDRESS}"
set imap_pass = "{PASSWORD}"
set spoolfile = "+INBOX"
set ssl_starttls = no
set ssl_force_tls = no
set header_cache = ""
set message_cachedir = ""
set confirmappend = no
set confirmcreate = no
set delete = yes
set move = no
set record = ""
set mark_old = no
set timeout = 1
"""
    )
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm", COLUMNS="120", LINES="40", HOME=str(tmp_path))
    process = await asyncio.create_subprocess_exec(
        need("neomutt"),
        "-n",
        "-F",
        str(rc),
        "-e",
        f"push '{keys}'",
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    screen = bytearray()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def readable() -> None:
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(master)
            done.set()
        screen.extend(data)

    loop.add_reader(master, readable)
    try:
        await asyncio.wait_for(process.wait(), limit)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"neomutt did not finish: {bytes(screen[-2000:])!r}") from None
    finally:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 2)
        loop.remove_reader(master)
        os.close(master)
    assert process.returncode == 0, bytes(screen[-2000:])
    return bytes(screen)


async def test_neomutt_reads_flags_moves_and_deletes(server: Server, tmp_path: Path) -> None:
    for subject in ("keep me", "move me", "delete me"):
        await server.deliver(message(subject))
    keys = (
        "<search>flag me<enter>"  # nothing matches: stays on message 1
        "<flag-message>"
        "<tag-pattern>~s move<enter><tag-prefix><save-message>=Archive<enter>"
        "<tag-pattern>~s delete<enter><tag-prefix><delete-message>"
        "<sync-mailbox><quit>"
    )
    await neomutt(server, tmp_path, keys)
    inbox = await server.app.store.get_mailbox(server.account.id, "INBOX")
    assert inbox is not None
    uids = await server.uids()
    assert uids == [1]
    [row] = await server.app.store.fetch(inbox.id, uids, FetchField.FLAGS)
    assert row.flags & SystemFlag.FLAGGED
    assert len(await server.uids("Archive")) == 1
