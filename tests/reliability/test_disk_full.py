"""Disk full: deliveries get a temporary failure, sessions go on, nothing is corrupted, and
after space is freed everything works and ``mailkeep check`` is clean.

The data directory is a small tmpfs mounted for the test (root is needed; the test is
skipped, saying why, where mounting is impossible). A filler file takes most of the
space, so the store fills up quickly; deleting it frees the space again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import (
    ServerProcess,
    alive,
    greeted,
    imap_command,
    imap_login,
    make_data,
    pop3_login,
    run_cli,
    start_server,
)

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

ALICE = "alice@example.org"
SIZE_MB = 24


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path, leave: int) -> None:
    """Write a filler file until only ``leave`` octets are free."""
    free = shutil.disk_usage(path.parent).free
    with path.open("wb") as filler:
        remaining = max(0, free - leave)
        chunk = b"\0" * (1024 * 1024)
        while remaining > 0:
            written = filler.write(chunk[: min(len(chunk), remaining)])
            remaining -= written


def message(n: int) -> bytes:
    body = (b"filling the disk %d " % n) * 2000 + b"\r\n"
    return b"Subject: fill %d\r\nMessage-ID: <fill%d@test>\r\n\r\n" % (n, n) + body


async def deliver(server: ServerProcess, n: int) -> bytes:
    client = await greeted(server.ports["lmtp"], "lmtp")
    try:
        await client.send(b"LHLO fill.test\r\n")
        await client.until(b"250 ")
        await client.send(f"MAIL FROM:<f@fill.test>\r\nRCPT TO:<{ALICE}>\r\nDATA\r\n".encode())
        replies = await client.until(b"354 ")
        assert replies[-1].startswith(b"354")
        await client.send(message(n) + b".\r\n")
        return await client.line(wait=60)
    finally:
        await client.close()


async def test_disk_full_is_a_temporary_failure(small_disk: Path) -> None:
    data = await make_data(small_disk / "data", (ALICE,), top={"domains": ["example.org"]})
    server = await start_server(data, ("imap", "pop3", "lmtp"), log=small_disk.parent / "log")
    try:
        imap = await imap_login(server.ports["imap"], ALICE)
        assert (await imap_command(imap, "s", b"SELECT INBOX"))[-1].startswith(b"s OK")
        pop3 = await pop3_login(server.ports["pop3"], ALICE)
        await pop3.send(b"QUIT\r\n")
        await pop3.close()
        await asyncio.to_thread(fill, small_disk / "filler", 2 * 1024 * 1024)
        accepted, refused = [], []
        for n in range(200):
            reply = await deliver(server, n)
            if reply.startswith(b"250"):
                accepted.append(n)
            else:
                assert reply.startswith(b"4"), f"a full disk must be temporary: {reply!r}"
                refused.append(n)
                if len(refused) >= 3:
                    break
        assert refused, "the disk never filled"
        # The session that was open before goes on, and says no to an APPEND.
        replies = await imap_command(imap, "n", b"NOOP")
        assert replies[-1].startswith(b"n OK"), replies
        raw = message(999)
        replies = await imap_command(imap, "a", b"APPEND INBOX {%d+}\r\n" % len(raw) + raw)
        assert replies[-1].startswith(b"a NO"), replies
        replies = await imap_command(imap, "f", b"UID FETCH 1:* (UID RFC822.SIZE)")
        assert replies[-1].startswith(b"f OK"), replies
        assert sum(1 for r in replies if b" FETCH " in r) >= len(accepted)
        await imap.close()
        assert server.alive
        # Space comes back: everything works again.
        await asyncio.to_thread((small_disk / "filler").unlink)
        reply = await deliver(server, 1000)
        assert reply.startswith(b"250"), reply
        await alive(server, ALICE)
        pop3 = await pop3_login(server.ports["pop3"], ALICE)
        await pop3.send(b"STAT\r\n")
        stat = await pop3.line()
        assert int(stat.split()[1]) == len(accepted) + 1, stat
        await pop3.send(b"QUIT\r\n")
        await pop3.close()
    finally:
        await server.stop()
    status, output = await run_cli(data, "check")
    if status != 0:
        # Only the bodies of refused deliveries may be left over (orphans).
        problems = [line for line in output.splitlines() if not line.startswith("orphan blob")]
        assert problems == ["Error: the store has problems; run with --repair"], output
        status, output = await run_cli(data, "check", "--repair")
        assert status == 0, output
        status, output = await run_cli(data, "check")
    assert status == 0, output
    with contextlib.suppress(FileNotFoundError):
        assert "Traceback" not in (small_disk.parent / "log").read_text()
