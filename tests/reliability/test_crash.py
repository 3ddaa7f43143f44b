"""Crash consistency: mixed load, SIGKILL at random moments, a checker after each restart.

DESIGN.md, Durability: whatever was acknowledged survives a ``kill -9``; nothing that was
not acknowledged is half-visible; UIDs and MODSEQs never go backwards; blobs and rows
agree. A real ``mailkeep serve`` runs on a data directory; concurrently

* LMTP delivers to alice and bob (acknowledged: ``250`` per recipient);
* an IMAP session APPENDs to alice's Drafts (``OK [APPENDUID]``);
* an IMAP session on alice's INBOX adds keywords (UID STORE), expunges (UID EXPUNGE) and
  moves to Archive (UID MOVE), each acknowledged by its tagged OK;
* a POP3 session on bob's INBOX marks messages deleted and QUITs (``+OK`` to QUIT).

Every client records what was acknowledged, and what it merely tried. After a number
of acknowledgements plus a random delay the server is SIGKILLed; with the server down the
checker reads the store directly:

* every acknowledged delivery/APPEND is present (unless its removal was also tried),
  exactly once across the account's mailboxes, complete to the octet;
* every stored message is one a client sent, never twice (a MOVE is atomic);
* acknowledged removals are gone; acknowledged keywords are set;
* per mailbox: UIDVALIDITY unchanged, UIDNEXT and HIGHESTMODSEQ never lower than before
  the crash, UIDNEXT above every UID and every acknowledged APPENDUID, HIGHESTMODSEQ at
  least every message's MODSEQ;
* ``mailkeep check`` reports nothing but orphan blobs (bodies of unacknowledged
  writes), which ``check --repair`` removes, after which it is clean.

The seed is in the failure message; ``MAILKEEP_STRESS=long`` runs more rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mailkeep.store.api import FetchField
from mailkeep.store.factory import open_store

from .support import (
    PASSWORD,
    Gone,
    Raw,
    ServerProcess,
    greeted,
    imap_command,
    imap_login,
    make_data,
    pop3_login,
    run_cli,
    start_server,
)

LONG = os.environ.get("MAILKEEP_STRESS") == "long"
ROUNDS = 10 if LONG else 3
pytestmark = [pytest.mark.timeout(900 if LONG else 240), pytest.mark.slow]

ALICE = "alice@example.org"
BOB = "bob@example.org"
USERS = (ALICE, BOB)
BROKEN = (ConnectionError, OSError, asyncio.IncompleteReadError, Gone, TimeoutError)


def message(mid: str) -> bytes:
    """The exact message sent for ``mid`` (its size varies with it)."""
    size = 100 + int(hashlib.sha256(mid.encode()).hexdigest()[:5], 16) % 20_000
    line = (mid + " ").encode() * 3 + b"\r\n"
    body = line * (size // len(line) + 1)
    return (
        f"From: load@sender.example\r\nMessage-ID: <{mid}@load>\r\nSubject: {mid}\r\n\r\n"
    ).encode() + body


def mid_of(raw: bytes) -> str:
    found = re.search(rb"Message-ID: <([^@>]+)@load>", raw.split(b"\r\n\r\n", 1)[0])
    assert found, f"no Message-ID in {raw[:300]!r}"
    return found[1].decode()


def body_of(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[1]


@dataclass
class Ledger:
    """What clients were told (acknowledged) and what they only tried."""

    sent: set[str] = field(default_factory=set)
    stored: dict[str, set[str]] = field(default_factory=lambda: {u: set() for u in USERS})
    """Acknowledged deliveries and APPENDs, per account."""
    removed: dict[str, set[str]] = field(default_factory=lambda: {u: set() for u in USERS})
    """Acknowledged expunges and POP3 deletions."""
    tried_removal: dict[str, set[str]] = field(default_factory=lambda: {u: set() for u in USERS})
    keywords: dict[str, set[str]] = field(default_factory=dict)
    """Acknowledged keywords per Message-ID, on alice's copy."""
    appenduids: dict[str, int] = field(default_factory=dict)
    """Highest acknowledged UID per alice mailbox (APPENDUID, COPYUID)."""
    acks: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    target: int = 0

    def ack(self) -> None:
        self.acks += 1
        if self.acks >= self.target:
            self.reached.set()

    def saw_uid(self, mailbox: str, uid: int) -> None:
        self.appenduids[mailbox] = max(self.appenduids.get(mailbox, 0), uid)


@dataclass
class Load:
    port: dict[str, int]
    ledger: Ledger
    rng: random.Random
    prefix: str
    counter: int = 0

    def new_mid(self) -> str:
        self.counter += 1
        mid = f"{self.prefix}m{self.counter}"
        self.ledger.sent.add(mid)
        return mid


async def lmtp_worker(load: Load) -> None:
    ledger = load.ledger
    client = await greeted(load.port["lmtp"], "lmtp")
    try:
        await client.send(b"LHLO load.test\r\n")
        await client.until(b"250 ")
        while True:
            mid = load.new_mid()
            rcpts = [u for u in USERS if load.rng.random() < 0.7] or [ALICE]
            await client.send(
                b"MAIL FROM:<load@sender.example>\r\n"
                + b"".join(b"RCPT TO:<%s>\r\n" % r.encode() for r in rcpts)
                + b"DATA\r\n"
            )
            for _ in range(len(rcpts) + 2):
                if not await client.line():
                    return
            await client.send(message(mid) + b".\r\n")
            for recipient in rcpts:
                answer = await client.line()
                if not answer:
                    return
                assert answer.startswith(b"250 "), answer
                ledger.stored[recipient].add(mid)
                ledger.ack()
    except BROKEN:
        return
    finally:
        await client.close()


async def append_worker(load: Load) -> None:
    ledger = load.ledger
    try:
        client = await imap_login(load.port["imap"], ALICE)
    except BROKEN:
        return
    try:
        n = 0
        while True:
            n += 1
            mid = load.new_mid()
            raw = message(mid)
            reply = await imap_command(
                client, f"a{n}", b"APPEND Drafts (\\Seen) {%d+}\r\n" % len(raw) + raw
            )
            tagged = reply[-1]
            assert tagged.startswith(f"a{n} OK".encode()), reply
            appenduid = re.search(rb"\[APPENDUID \d+ (\d+)\]", tagged)
            assert appenduid, tagged
            ledger.saw_uid("Drafts", int(appenduid[1]))
            ledger.stored[ALICE].add(mid)
            ledger.ack()
    except BROKEN:
        return
    finally:
        await client.close()


async def inbox_uids(client: Raw, tag: str) -> dict[int, str]:
    """UID -> Message-ID of everything in the selected mailbox."""
    reply = await imap_command(
        client, tag, b"UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
    )
    assert reply[-1].startswith(f"{tag} OK".encode()), reply[-1]
    found = {}
    for response in reply[:-1]:
        uid = re.search(rb"UID (\d+)", response)
        mid = re.search(rb"Message-ID: <([^@>]+)@load>", response)
        if uid and mid:
            found[int(uid[1])] = mid[1].decode()
    return found


async def janitor_worker(load: Load) -> None:
    """STORE keywords, EXPUNGE and MOVE on alice's INBOX."""
    ledger, rng = load.ledger, load.rng
    try:
        client = await imap_login(load.port["imap"], ALICE)
    except BROKEN:
        return
    try:
        reply = await imap_command(client, "s", b"SELECT INBOX")
        assert reply[-1].startswith(b"s OK"), reply
        n = 0
        while True:
            n += 1
            uids = await inbox_uids(client, f"f{n}")
            if not uids:
                await asyncio.sleep(0.05)
                continue
            uid = rng.choice(sorted(uids))
            mid = uids[uid]
            action = rng.random()
            if action < 0.5:
                keyword = f"{load.prefix}k{n}"
                reply = await imap_command(
                    client, f"k{n}", f"UID STORE {uid} +FLAGS.SILENT ({keyword})".encode()
                )
                assert reply[-1].startswith(f"k{n} OK".encode()), reply
                ledger.keywords.setdefault(mid, set()).add(keyword)
                ledger.ack()
            elif action < 0.8:
                ledger.tried_removal[ALICE].add(mid)
                reply = await imap_command(
                    client, f"d{n}", f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)".encode()
                )
                assert reply[-1].startswith(f"d{n} OK".encode()), reply
                reply = await imap_command(client, f"e{n}", f"UID EXPUNGE {uid}".encode())
                assert reply[-1].startswith(f"e{n} OK".encode()), reply
                ledger.removed[ALICE].add(mid)
                ledger.ack()
            else:
                reply = await imap_command(client, f"m{n}", f"UID MOVE {uid} Archive".encode())
                assert reply[-1].startswith(f"m{n} OK".encode()), reply
                copyuid = re.search(rb"\[COPYUID \d+ \d+ (\d+)\]", b"".join(reply))
                assert copyuid, reply
                ledger.saw_uid("Archive", int(copyuid[1]))
                ledger.ack()
    except BROKEN:
        return
    finally:
        await client.close()


async def pop3_worker(load: Load) -> None:
    """Bob downloads headers and deletes some messages, QUIT after QUIT."""
    ledger, rng = load.ledger, load.rng
    while True:
        try:
            client = await pop3_login(load.port["pop3"], BOB)
        except BROKEN:
            return
        try:
            await client.send(b"UIDL\r\n")
            count = len(await client.until(b".\r\n")) - 2
            deleted = []
            for number in range(1, count + 1):
                if rng.random() < 0.3:
                    await client.send(b"TOP %d 0\r\n" % number)
                    header = b"".join(await client.until(b".\r\n"))  # Gone if killed
                    mid = mid_of(header)
                    await client.send(b"DELE %d\r\n" % number)
                    answer = await client.line()
                    if not answer:
                        return
                    assert answer.startswith(b"+OK"), answer
                    deleted.append(mid)
            ledger.tried_removal[BOB].update(deleted)
            await client.send(b"QUIT\r\n")
            answer = await client.line()
            if not answer:
                return
            assert answer.startswith(b"+OK"), answer
            ledger.removed[BOB].update(deleted)
            ledger.ack()
        except BROKEN:
            return
        finally:
            await client.close()
        await asyncio.sleep(0.05)


@dataclass
class Marks:
    """Per mailbox (account, name): UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ last seen."""

    seen: dict[tuple[str, str], tuple[int, int, int]] = field(default_factory=dict)


async def verify(data: Path, ledger: Ledger, marks: Marks, where: str) -> None:
    store = await open_store("sqlite:store", data, pool_size=1)
    try:
        for user in USERS:
            account = await store.get_account(user)
            assert account is not None
            found: Counter[str] = Counter()
            for mailbox in await store.list_mailboxes(account.id):
                key = (user, mailbox.name)
                before = marks.seen.get(key)
                now = (mailbox.uidvalidity, mailbox.uidnext, mailbox.highestmodseq)
                if before is not None:
                    assert now[0] == before[0], f"{where}: {key} UIDVALIDITY changed"
                    assert now[1] >= before[1], f"{where}: {key} UIDNEXT went back {before}"
                    assert now[2] >= before[2], f"{where}: {key} MODSEQ went back {before}"
                marks.seen[key] = now
                if user == ALICE:
                    acked_uid = ledger.appenduids.get(mailbox.name, 0)
                    assert mailbox.uidnext > acked_uid, f"{where}: {key} UIDNEXT {now[1]}"
                snapshot = await store.snapshot(mailbox.id)
                rows = await store.fetch(
                    mailbox.id, list(snapshot.uids), FetchField.BLOB | FetchField.FLAGS
                )
                for row in rows:
                    assert row.uid < mailbox.uidnext, f"{where}: {key} UID {row.uid} >= UIDNEXT"
                    assert row.modseq <= mailbox.highestmodseq, f"{where}: {key} MODSEQ"
                    reader = await store.open_blob(row.blob)
                    try:
                        raw = await reader.read(0, reader.size)
                    finally:
                        await reader.close()
                    mid = mid_of(raw)
                    assert mid in ledger.sent, f"{where}: {key} holds {mid}, never sent"
                    assert body_of(raw) == body_of(message(mid)), f"{where}: {mid} damaged"
                    found[mid] += 1
                    assert mid not in ledger.removed[user], f"{where}: {user} {mid} removed"
                    keywords = ledger.keywords.get(mid, set()) if user == ALICE else set()
                    acked = {k.lower() for k in keywords}
                    lost = acked - {k.lower() for k in row.keywords}
                    assert not lost, f"{where}: {mid} lost keywords {lost}"
            twice = {mid: n for mid, n in found.items() if n > 1}
            assert not twice, f"{where}: {user} has messages twice: {twice}"
            expected = ledger.stored[user] - ledger.tried_removal[user]
            lost = expected - set(found)
            assert not lost, f"{where}: {user} lost acknowledged {sorted(lost)[:10]}"
    finally:
        await store.close()
    status, output = await run_cli(data, "check")
    problems = [
        line
        for line in output.splitlines()
        if line.strip() and not line.startswith(("orphan blob", "store is consistent", "Error"))
    ]
    assert not problems, f"{where}: mailkeep check: {output}"
    if status != 0:
        status, output = await run_cli(data, "check", "--repair")
        assert status == 0, f"{where}: check --repair: {output}"
        status, output = await run_cli(data, "check")
        assert status == 0, f"{where}: check after repair: {output}"


async def test_sigkill_under_mixed_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    seed = int(os.environ.get("MAILKEEP_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    data = await make_data(tmp_path / "data", USERS, top={"domains": ["example.org"]})
    ledger = Ledger()
    marks = Marks()
    await verify(data, ledger, marks, f"seed {seed}, before")
    for round_number in range(ROUNDS):
        where = f"seed {seed}, round {round_number}"
        server: ServerProcess = await start_server(
            data, ("imap", "pop3", "lmtp"), log=tmp_path / "server.log"
        )
        load = Load(server.ports, ledger, rng, f"r{round_number}")
        workers = [
            asyncio.create_task(worker(load))
            for worker in (lmtp_worker, lmtp_worker, append_worker, janitor_worker, pop3_worker)
        ]
        try:
            ledger.target = ledger.acks + rng.randrange(10, 60)
            ledger.reached.clear()
            async with asyncio.timeout(90):
                await ledger.reached.wait()
            await asyncio.sleep(rng.random() * 0.3)
            for task in workers:
                if task.done():
                    task.result()  # a worker's assertion fails the test here
        finally:
            await server.kill()
            async with asyncio.timeout(60):
                results = await asyncio.gather(*workers, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, f"{where}: {failures!r}"
        await verify(data, ledger, marks, where)
    # Last: the server starts on the crashed store and serves normally.
    server = await start_server(data, ("imap", "pop3", "lmtp"), log=tmp_path / "server.log")
    try:
        client = await imap_login(server.ports["imap"], ALICE, PASSWORD)
        reply = await imap_command(client, "s", b"SELECT INBOX")
        assert reply[-1].startswith(b"s OK")
        await client.close()
    finally:
        await server.stop()
    await verify(data, ledger, marks, f"seed {seed}, after a clean stop")
    assert ledger.acks > ROUNDS * 10
    with contextlib.suppress(FileNotFoundError):
        assert "Traceback" not in (tmp_path / "server.log").read_text()
