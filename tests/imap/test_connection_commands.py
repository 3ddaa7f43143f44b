"""COMPRESS=DEFLATE (RFC 4978), UNAUTHENTICATE (RFC 8437), REPLACE (RFC 8508) and
INPROGRESS (RFC 9585)."""

from __future__ import annotations

import asyncio
import zlib

import pytest

from mailkeep.imap.handlers import fetch, progress
from mailkeep.store.api import Account
from mailkeep.store.sqlstore import SqlStore

from .conftest import deliver, message
from .support import Client


class Deflated:
    """The client's side of a compressed connection over the memory transport."""

    def __init__(self, client: Client, start: int) -> None:
        self.client = client
        self.start = start
        self.deflate = zlib.compressobj(wbits=-15)
        self.inflate = zlib.decompressobj(wbits=-15)
        self.text = b""

    def send(self, line: bytes) -> None:
        data = self.deflate.compress(line + b"\r\n") + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.client.send_raw(data)

    async def until(self, tag: bytes) -> list[bytes]:
        async with asyncio.timeout(10):
            while not any(x.startswith(tag + b" ") for x in self.text.split(b"\r\n")):
                await asyncio.sleep(0.01)
                output = self.client.transport.output
                self.text += self.inflate.decompress(bytes(output[self.start :]))
                self.start = len(output)
        lines = self.text.split(b"\r\n")
        end = next(i for i, x in enumerate(lines) if x.startswith(tag + b" "))
        self.text = b"\r\n".join(lines[end + 1 :])
        return lines[: end + 1]


async def test_compress_deflate(alice: Client) -> None:
    caps = await alice.ok("c CAPABILITY")
    assert b"COMPRESS=DEFLATE" in caps[0]
    # The first compressed command arrives together with COMPRESS itself.
    early = zlib.compressobj(wbits=-15)
    alice.send_raw(
        b"z COMPRESS DEFLATE\r\n" + early.compress(b"a NOOP\r\n") + early.flush(zlib.Z_SYNC_FLUSH)
    )
    assert await alice.line() == b"z OK DEFLATE active"
    ok = b"z OK DEFLATE active\r\n"
    client = Deflated(alice, bytes(alice.transport.output).index(ok) + len(ok))
    client.deflate = early
    assert await client.until(b"a") == [b"a OK NOOP completed"]
    client.send(b"b COMPRESS DEFLATE")
    assert await client.until(b"b") == [b"b NO [COMPRESSIONACTIVE] compression is already active"]
    client.send(b'd LIST "" INBOX')
    assert await client.until(b"d") == [
        b'* LIST (\\HasNoChildren) "/" INBOX',
        b"d OK LIST completed",
    ]
    client.send(b"e COMPRESS GZIP")
    assert (await client.until(b"e"))[-1].startswith(b"e NO")


async def test_unauthenticate(alice: Client, store: SqlStore, account: Account) -> None:
    await deliver(store, account, message("one"))
    await alice.ok("e ENABLE QRESYNC")
    await alice.ok("s SELECT INBOX")
    assert await alice.ok("u UNAUTHENTICATE") == []
    assert alice.session is not None
    assert alice.session.selected is None
    assert not alice.session.enabled
    refused = await alice.command("f FETCH 1 FLAGS")
    assert refused[-1] == b"f BAD log in first (LOGIN or AUTHENTICATE)"
    caps = await alice.ok("c CAPABILITY")
    assert b"AUTH=" in caps[0]
    await alice.login()
    assert await alice.ok("e ENABLE QRESYNC") == [b"* ENABLED QRESYNC"]


async def test_replace(alice: Client, store: SqlStore, account: Account) -> None:
    for n in range(3):
        await deliver(store, account, message(f"draft {n}"))
    await alice.ok("s SELECT INBOX")
    new = message("draft 1, edited")
    alice.send(b"r REPLACE 2 INBOX {%d+}" % len(new))
    alice.send_raw(new + b"\r\n")
    lines = await alice.until("r")
    assert lines[0].startswith(b"* OK [APPENDUID ")
    assert lines[0].endswith(b" 4] replacement message ready")
    assert lines[1:] == [b"* 2 EXPUNGE", b"* 3 EXISTS", b"* 3 RECENT", b"r OK REPLACE completed"]
    subjects = await alice.ok("f FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (Subject)])")
    assert [line.split(b"\r\n")[1] for line in subjects] == [
        b"Subject: draft 0",
        b"Subject: draft 2",
        b"Subject: draft 1, edited",
    ]
    alice.send(b"u UID REPLACE 99 INBOX {%d+}" % len(new))
    alice.send_raw(new + b"\r\n")
    assert (await alice.until("u"))[-1].startswith(b"u NO [NONEXISTENT]")
    alice.send(b"v REPLACE 1 Nowhere {%d+}" % len(new))
    alice.send_raw(new + b"\r\n")
    assert (await alice.until("v"))[-1].startswith(b"v NO [TRYCREATE]")
    await alice.ok("x EXAMINE INBOX")
    alice.send(b"w REPLACE 1 INBOX {%d+}" % len(new))
    alice.send_raw(new + b"\r\n")
    assert (await alice.until("w"))[-1].startswith(b"w NO the mailbox is read-only")


async def test_inprogress(
    alice: Client, store: SqlStore, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 9585: a long FETCH says how far it got; a long store query says it is busy."""
    for n in range(3):
        await deliver(store, account, message(f"m{n}"))
    caps = await alice.ok("c CAPABILITY")
    assert b" INPROGRESS" in caps[0]
    await alice.ok("s SELECT INBOX")
    monkeypatch.setattr(progress, "INTERVAL", 0.0)
    monkeypatch.setattr(fetch, "BATCH", 1)
    lines = await alice.ok("f FETCH 1:3 (UID)")
    assert lines == [
        b"* 1 FETCH (UID 1)",
        b'* OK [INPROGRESS ("f" 1 3)] still working',
        b"* 2 FETCH (UID 2)",
        b'* OK [INPROGRESS ("f" 2 3)] still working',
        b"* 3 FETCH (UID 3)",
    ]
    monkeypatch.setattr(progress, "INTERVAL", 0.01)
    assert alice.session is not None
    result = await progress.awaiting(alice.session, "t", asyncio.sleep(0.05, result=5))
    assert result == 5
    assert await alice.line() == b'* OK [INPROGRESS ("t" NIL NIL)] still working'
