"""Clients that resynchronise cheaply against mailkeep: ``mailkeep sync`` with QRESYNC
(an unchanged folder costs one STATUS, no SELECT; changes come from SELECT (QRESYNC)), and
Python's imapclient using SORT and THREAD (RFC 5256)."""

from __future__ import annotations

import asyncio
import zlib
from pathlib import Path

import imapclient

from mailkeep.client.accounts import Account
from mailkeep.client.connection import TlsMode
from mailkeep.client.sync import SyncOptions, sync_account
from mailkeep.mail.flags import SystemFlag
from mailkeep.store.api import FlagMode

from .conftest import ADDRESS, PASSWORD, Server


def _message(n: int, subject: str, extra: str = "") -> bytes:
    return (
        f"From: a@example.org\r\nTo: {ADDRESS}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{n}@example.org>\r\nDate: Mon, {n} Jan 2024 10:00:00 +0000\r\n"
        f"{extra}\r\nBody of {n}.\r\n"
    ).encode()


def _account(server: Server, local: Path) -> Account:
    return Account(
        name="test",
        protocol="imap",
        server="127.0.0.1",
        port=server.imap,
        tls=TlsMode.NONE,
        user=ADDRESS,
        local=local,
        state=local.with_name(local.name + ".mailkeep.sqlite"),
        password_command=f"printf %s '{PASSWORD}'",
        timeout=20.0,
    )


async def test_mailkeep_sync_uses_qresync(server: Server, tmp_path: Path) -> None:
    for n in range(1, 4):
        await server.deliver(_message(n, f"m{n}"))
    account = _account(server, tmp_path / "Mail")
    first = await sync_account(account, PASSWORD, SyncOptions())
    assert first.new == 3
    # Nothing changed: every folder is skipped after STATUS (one round trip each).
    again = await sync_account(account, PASSWORD, SyncOptions())
    assert (again.new, again.changed, again.deleted) == (0, 0, 0)
    assert again.details == {
        "folders_unchanged": len(await server.app.store.list_mailboxes(server.account.id))
    }
    # A flag change and an expunge elsewhere arrive through SELECT (QRESYNC).
    box = await server.app.store.get_mailbox(server.account.id, "INBOX")
    assert box is not None
    await server.app.store.store_flags(box.id, [1], FlagMode.ADD, int(SystemFlag.FLAGGED), ())
    await server.app.store.remove(box.id, [2])
    changed = await sync_account(account, PASSWORD, SyncOptions())
    assert (changed.changed, changed.deleted) == (1, 1)
    assert changed.details.get("folders_unchanged") == again.details["folders_unchanged"] - 1


def _imapclient_sort_and_thread(port: int) -> tuple[list[int], list[int], tuple[object, ...]]:
    client = imapclient.IMAPClient("127.0.0.1", port=port, ssl=False, timeout=20)
    try:
        client.login(ADDRESS, PASSWORD)
        assert b"THREAD=REFERENCES" in client.capabilities()
        client.select_folder("INBOX")
        by_subject = client.sort(["SUBJECT"])
        by_date = client.sort(["REVERSE DATE"], ["NOT", "DELETED"])
        threads = client.thread("REFERENCES")
        return by_subject, by_date, tuple(threads)
    finally:
        client.logout()


async def test_imapclient_sort_and_thread(server: Server) -> None:
    await server.deliver(_message(1, "banana"))
    await server.deliver(_message(2, "Re: banana", "In-Reply-To: <1@example.org>\r\n"))
    await server.deliver(_message(3, "apple"))
    by_subject, by_date, threads = await asyncio.to_thread(_imapclient_sort_and_thread, server.imap)
    assert by_subject == [3, 1, 2]  # UIDs: imapclient sorts by UID
    assert by_date == [3, 2, 1]
    assert threads == ((1, 2), (3,))


async def test_compress_over_a_real_socket(server: Server) -> None:
    """COMPRESS=DEFLATE through the listener's real connection (RFC 4978)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.imap)
    try:
        assert (await reader.readline()).startswith(b"* OK")
        writer.write(f'a LOGIN {ADDRESS} "{PASSWORD}"\r\nz COMPRESS DEFLATE\r\n'.encode())
        while not (line := await reader.readline()).startswith(b"z "):
            pass
        assert line == b"z OK DEFLATE active\r\n"
        deflate, inflate = zlib.compressobj(wbits=-15), zlib.decompressobj(wbits=-15)
        writer.write(deflate.compress(b"n NOOP\r\nl LOGOUT\r\n") + deflate.flush(zlib.Z_SYNC_FLUSH))
        text = b""
        async with asyncio.timeout(10):
            while b"l OK" not in text:
                data = await reader.read(4096)
                assert data, text
                text += inflate.decompress(data)
        assert b"n OK NOOP completed\r\n* BYE" in text
    finally:
        writer.close()
