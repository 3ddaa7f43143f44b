"""Acceptance check: an LMTP ``250`` means the message is on disk (DESIGN.md, Durability).

``mailkeep serve`` runs as a subprocess on a temporary data directory; several LMTP
connections deliver a burst of messages (each with a unique Message-ID, to two
recipients, sizes from a few hundred octets to tens of kilobytes) and the server is
killed with SIGKILL in the middle, at three different moments, restarting in between.
Then: every message that got a 250 for a recipient is in that recipient's INBOX exactly
once; every stored message is one the clients sent, complete to the last octet (nothing
half-visible), never twice; and the account usage the CLI reports matches what is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
import smtplib
import sys
from collections import Counter
from pathlib import Path

import pytest

from mailkeep.store.api import FetchField
from mailkeep.store.factory import open_store
from mailkeep.store.names import INBOX

pytestmark = pytest.mark.timeout(120)

MAILKEEP = (sys.executable, "-m", "mailkeep")
RECIPIENTS = ("alice@example.org", "bob@example.org")
OTHER_LISTENERS = ("imap", "imaps", "pop3", "pop3s", "smtp", "submission", "submissions", "http")
CONNECTIONS = 4
KILL_AT = ((1, 0.0), (25, 0.05), (80, 0.13))
"""When to kill, per round: after this many 250s in the round, plus a delay in seconds
(progress-based, so a loaded test machine does not make the kill land before any 250)."""


def message(message_id: str) -> bytes:
    """The exact message sent for ``message_id`` (its size varies with the id)."""
    size = 200 + int(hashlib.sha256(message_id.encode()).hexdigest()[:6], 16) % 60_000
    line = (message_id + " ").encode() * 4 + b"\r\n"
    body = line * (size // len(line) + 1)
    return (
        f"From: burst@sender.example\r\nMessage-ID: <{message_id}@burst>\r\n"
        f"Subject: {message_id}\r\n\r\n"
    ).encode() + body


def message_id_of(raw: bytes) -> str:
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.startswith(b"Message-ID: <"):
            return line[len(b"Message-ID: <") :].split(b"@", 1)[0].decode()
    raise AssertionError(f"no Message-ID in {raw[:300]!r}")


async def run_cli(data: Path, *args: str, stdin: bytes = b"") -> str:
    process = await asyncio.create_subprocess_exec(
        *MAILKEEP,
        "--data",
        str(data),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def start_server(data: Path, log: Path) -> tuple[asyncio.subprocess.Process, int]:
    off = [arg for name in OTHER_LISTENERS for arg in (f"--{name}", "off")]
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            *MAILKEEP,
            "--data",
            str(data),
            "serve",
            "--lmtp",
            "127.0.0.1:0",
            *off,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    assert process.stdout is not None
    async with asyncio.timeout(30):
        while line := (await process.stdout.readline()).decode():
            words = line.split()
            if words and words[0] == "lmtp":
                return process, int(words[1].rpartition(":")[2])
    process.kill()
    raise AssertionError(f"the server did not start; see {log}")


class Progress:
    """What the clients sent and which recipients acknowledged it; ``reach`` waits for a
    number of acknowledgements."""

    def __init__(self) -> None:
        self.acked: dict[str, set[str]] = {r: set() for r in RECIPIENTS}
        self.sent: set[str] = set()
        self.count = 0
        self._target = 0
        self._reached = asyncio.Event()

    def ack(self, recipient: str, message_id: str) -> None:
        self.acked[recipient].add(message_id)
        self.count += 1
        if self.count >= self._target:
            self._reached.set()

    async def reach(self, count: int) -> None:
        self._target = count
        self._reached.clear()
        if self.count < count:
            await self._reached.wait()


async def burst(port: int, name: str, progress: Progress) -> int:
    """Deliver messages over one LMTP connection until the server goes away."""
    count = 0
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return count
    try:
        await reader.readline()
        writer.write(b"LHLO burst.example\r\n")
        while not (await reader.readline()).startswith(b"250 "):
            pass
        while True:
            message_id = f"{name}-{count}"
            count += 1
            rcpts = b"".join(b"RCPT TO:<%s>\r\n" % r.encode() for r in RECIPIENTS)
            writer.write(b"MAIL FROM:<burst@sender.example>\r\n" + rcpts + b"DATA\r\n")
            replies = [await reader.readline() for _ in range(len(RECIPIENTS) + 2)]
            if not replies[-1].startswith(b"354"):
                return count
            progress.sent.add(message_id)
            writer.write(message(message_id) + b".\r\n")
            for recipient in RECIPIENTS:
                answer = await reader.readline()
                if not answer:
                    return count
                assert answer.startswith(b"250 "), answer
                progress.ack(recipient, message_id)
    except (ConnectionError, asyncio.IncompleteReadError):
        return count
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def stored(data: Path) -> dict[str, list[bytes]]:
    store = await open_store("sqlite:store", data, pool_size=1)
    try:
        result: dict[str, list[bytes]] = {}
        for address in RECIPIENTS:
            account = await store.get_account(address)
            assert account is not None
            mailbox = await store.get_mailbox(account.id, INBOX)
            assert mailbox is not None
            snapshot = await store.snapshot(mailbox.id)
            rows = await store.fetch(mailbox.id, list(snapshot.uids), FetchField.BLOB)
            raws = []
            for row in rows:
                blob = await store.open_blob(row.blob)
                try:
                    raws.append(await blob.read(0, blob.size))
                finally:
                    await blob.close()
            result[address] = raws
        return result
    finally:
        await store.close()


@pytest.mark.slow
async def test_every_acknowledged_message_survives_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = tmp_path / "server.log"
    await run_cli(data, "init", "--hostname", "mx.test")
    for address in RECIPIENTS:
        await run_cli(data, "user", "add", address, "--password-stdin", stdin=b"secret\n")

    progress = Progress()
    acked, sent = progress.acked, progress.sent
    for round_number, (acks, delay) in enumerate(KILL_AT):
        process, port = await start_server(data, log)
        try:
            clients = [
                asyncio.create_task(burst(port, f"r{round_number}c{n}", progress))
                for n in range(CONNECTIONS)
            ]
            async with asyncio.timeout(60):
                await progress.reach(progress.count + acks)
            await asyncio.sleep(delay)
            assert all(not c.done() for c in clients), "a client stopped before the kill"
        finally:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        counts = await asyncio.gather(*clients)
        assert min(counts) > 0

    # The server starts again on the crashed store and delivers.
    process, port = await start_server(data, log)
    try:

        def deliver_one() -> dict[str, tuple[int, bytes]]:
            with smtplib.LMTP("127.0.0.1", port) as client:
                return client.sendmail("burst@sender.example", [RECIPIENTS[0]], message("after"))

        assert await asyncio.to_thread(deliver_one) == {}
        acked[RECIPIENTS[0]].add("after")
        sent.add("after")
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)

    messages = await stored(data)
    usage = {a["address"]: a for a in json.loads(await run_cli(data, "user", "list", "--json"))}
    for address in RECIPIENTS:
        ids = Counter(message_id_of(raw) for raw in messages[address])
        duplicates = {i: n for i, n in ids.items() if n > 1}
        assert not duplicates, f"{address}: stored twice: {duplicates}"
        missing = acked[address] - set(ids)
        assert not missing, f"{address}: acknowledged but lost: {sorted(missing)}"
        assert set(ids) <= sent, f"{address}: messages nobody sent: {set(ids) - sent}"
        for raw in messages[address]:
            original = message(message_id_of(raw))
            assert raw.endswith(b"\r\n\r\n" + original.split(b"\r\n\r\n", 1)[1])
            assert original.split(b"\r\n\r\n", 1)[0] in raw
        assert usage[address]["messages"] == len(messages[address])
        assert usage[address]["used_bytes"] == sum(len(raw) for raw in messages[address])
