"""State-tracking stress: many IMAP and POP3 clients on shared mailboxes, each checking
that every server reply agrees with its own actions and the protocol.

A real ``mailkeep serve`` process serves two accounts; for each, 22 IMAP sessions select
the same INBOX and run random commands (NOOP, FETCH, UID FETCH, STORE, SEARCH, APPEND,
UID EXPUNGE, UID MOVE, IDLE), 3 POP3 clients come and go on the same maildrop, and LMTP
delivers new mail throughout: 52 concurrent clients. Each IMAP client keeps its own view
of the mailbox (sequence number -> UID) from the responses alone and checks:

* ``EXISTS`` never shrinks the view; ``EXPUNGE n`` names a message the view has;
* a ``FETCH`` names a sequence number in the view, and its UID agrees with what the
  view knows; UIDs ascend with sequence numbers;
* no ``EXPUNGE`` during a FETCH, STORE or SEARCH by sequence number (RFC 9051 7.5.1);
* a keyword the client set (its own, that nobody else touches) is in every FLAGS the
  server reports for that message until it is expunged: no flag lost;
* a full ``UID FETCH 1:*`` lists exactly the view's messages;
* as Dovecot's imaptest checks: a keyword in a FETCH FLAGS was named in a ``* FLAGS``
  response first, and a STORE that set a keyword leaves it named; a message is \\Recent
  in at most one session; a message's INTERNALDATE, RFC822.SIZE and ENVELOPE never
  change between sessions; STORE is never refused, and FETCH only with "no longer
  exist" for a message expunged meanwhile;
* at the end, after a NOOP, every session of an account has the same view, equal to the
  store's.

POP3 clients check that STAT, LIST and UIDL agree, that UIDLs are unique and that a
message's RETR has exactly the size LIST announced; maildrop contention (``-ERR
[IN-USE]``) is a valid answer. The run is ~40 s in ``make test``; ``make stress``
(``MAILKEEP_STRESS=long``) runs 5 minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import time
import traceback
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mailkeep.store.factory import open_store
from mailkeep.store.names import INBOX
from tests.reliability.support import (
    Raw,
    ServerProcess,
    greeted,
    imap_command,
    imap_login,
    imap_response,
    make_data,
    start_server,
)

LONG = os.environ.get("MAILKEEP_STRESS") == "long"
DURATION = 300.0 if LONG else 40.0
IMAP_PER_USER = 22
POP3_PER_USER = 3
USERS = ("alice@example.org", "bob@example.org")

pytestmark = [pytest.mark.timeout(int(DURATION) + 240), pytest.mark.slow]


@dataclass
class Problems:
    found: list[str] = field(default_factory=list)

    def add(self, who: str, text: str) -> None:
        if len(self.found) < 200:
            self.found.append(f"{who}: {text}")


FETCH = re.compile(rb"^\* (\d+) FETCH \((.*)\)\r\n$", re.S)
UID = re.compile(rb"\bUID (\d+)")
FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
MAILBOX_FLAGS = re.compile(rb"^\* FLAGS \(([^)]*)\)\r\n$")
STATIC = re.compile(rb"(INTERNALDATE \"[^\"]*\"|RFC822\.SIZE \d+|ENVELOPE \(.*\))")
SHARED_KEYWORDS = [b"$Label%d" % n for n in range(1, 6)]


class View:
    """One IMAP session's idea of its selected mailbox, built from responses alone."""

    def __init__(self, who: str, problems: Problems, shared: Shared | None = None) -> None:
        self.who = who
        self.problems = problems
        self.shared = shared or Shared()
        self.uids: list[int | None] = []
        self.mine: set[int] = set()
        """UIDs that carry this client's own keyword."""
        self.keywords: set[str] = set()
        """Keywords named by the last ``* FLAGS`` response (lower case)."""

    def complain(self, text: str) -> None:
        self.problems.add(self.who, text)

    def apply(self, response: bytes, *, expunge_allowed: bool) -> None:
        if response.endswith(b" EXISTS\r\n") and response.startswith(b"* "):
            count = int(response.split()[1])
            if count < len(self.uids):
                self.complain(f"EXISTS {count} shrank the view of {len(self.uids)}")
                del self.uids[count:]
            self.uids.extend([None] * (count - len(self.uids)))
        elif response.endswith(b" EXPUNGE\r\n") and response.startswith(b"* "):
            seq = int(response.split()[1])
            if not expunge_allowed:
                self.complain(f"EXPUNGE {seq} during a command that forbids it")
            if not 1 <= seq <= len(self.uids):
                self.complain(f"EXPUNGE {seq} of a message not in the view ({len(self.uids)})")
                return
            uid = self.uids.pop(seq - 1)
            if uid is not None:
                self.mine.discard(uid)
        elif (match := FETCH.match(response)) is not None:
            self._fetch(int(match[1]), match[2])
        elif (match := MAILBOX_FLAGS.match(response)) is not None:
            names = {f.lower() for f in match[1].decode().split() if not f.startswith("\\")}
            if self.keywords - names:
                self.complain(f"FLAGS dropped keywords {sorted(self.keywords - names)}")
            self.keywords = names

    def _fetch(self, seq: int, items: bytes) -> None:
        if not 1 <= seq <= len(self.uids):
            self.complain(f"FETCH {seq} outside the view ({len(self.uids)})")
            return
        uid_match = UID.search(items)
        if uid_match is not None:
            uid = int(uid_match[1])
            known = self.uids[seq - 1]
            if known is None:
                lower = [u for u in self.uids[: seq - 1] if u is not None]
                higher = [u for u in self.uids[seq:] if u is not None]
                if (lower and lower[-1] >= uid) or (higher and higher[0] <= uid):
                    self.complain(f"UID {uid} at {seq} is out of order in the view")
                self.uids[seq - 1] = uid
            elif known != uid:
                self.complain(f"FETCH {seq} says UID {uid}; the view has {known}")
        current = self.uids[seq - 1]
        flags = FLAGS.search(items)
        if flags is not None:
            for name in flags[1].decode().split():
                if not name.startswith("\\") and name.lower() not in self.keywords:
                    self.complain(f"keyword used without being in FLAGS: {name}")
                if name.lower() == "\\recent" and current is not None:
                    owner = self.shared.recent.setdefault(current, self.who)
                    if owner != self.who:
                        self.complain(f"UID {current} is \\Recent here and for {owner}")
        if current is not None:
            for item in STATIC.findall(items):
                key = (current, item.split(b" ", 1)[0])
                first = self.shared.static.setdefault(key, item)
                if first != item:
                    self.complain(f"UID {current}: {item[:80]!r} was {first[:80]!r}")
        if flags is not None and current is not None and current in self.mine:
            names = {f.lower() for f in flags[1].decode().split()}
            if self.keyword.lower() not in names:
                self.complain(f"UID {current} lost keyword {self.keyword}: FLAGS {flags[1]!r}")

    keyword = ""


@dataclass
class Shared:
    """What every session of one account must agree on, keyed by UID."""

    recent: dict[int, str] = field(default_factory=dict)
    """The one session each message was \\Recent in (RFC 3501 2.3.2)."""
    static: dict[tuple[int, bytes], bytes] = field(default_factory=dict)
    """INTERNALDATE, RFC822.SIZE and ENVELOPE as first seen."""


@dataclass
class Run:
    ports: dict[str, int]
    problems: Problems
    deadline: float
    rng: random.Random
    counts: dict[str, int] = field(default_factory=dict)
    shared: dict[str, Shared] = field(default_factory=dict)

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    @property
    def running(self) -> bool:
        return time.monotonic() < self.deadline


def message(tag: str) -> bytes:
    header = f"From: stress@test\r\nSubject: {tag}\r\nMessage-ID: <{tag}@stress>\r\n"
    return f"{header}\r\n{tag}\r\n".encode()


class ImapClient:
    def __init__(self, run: Run, user: str, number: int) -> None:
        self.run = run
        self.user = user
        self.who = f"imap {user} #{number}"
        self.view = View(self.who, run.problems, run.shared.setdefault(user, Shared()))
        self.view.keyword = f"mine{number}"
        self.client: Raw | None = None
        self.tags = 0
        self.rng = random.Random(run.rng.random())

    async def command(self, text: bytes, *, expunge_allowed: bool = True) -> list[bytes]:
        assert self.client is not None
        self.tags += 1
        tag = f"c{self.tags}"
        replies = await imap_command(self.client, tag, text, wait=60)
        for response in replies[:-1]:
            self.view.apply(response, expunge_allowed=expunge_allowed)
        status = replies[-1].split(b" ", 2)[1]
        if status == b"BAD":
            self.view.complain(f"{text[:80]!r} got {replies[-1]!r}")
        verb = text.split(b" ", 2)[1 if text.startswith(b"UID ") else 0]
        # imaptest accepts a NO to FETCH only for messages that "no longer exist", and
        # none to STORE.
        if status == b"NO" and (
            verb == b"STORE" or (verb == b"FETCH" and b"no longer exist" not in replies[-1])
        ):
            self.view.complain(f"{text[:80]!r} got {replies[-1]!r}")
        if status == b"OK" and verb == b"STORE" and b"+FLAGS" in text:
            for name in text.split(b"(", 1)[1].rstrip(b")").split():
                if not name.startswith(b"\\") and name.decode().lower() not in self.view.keywords:
                    self.view.complain(f"STORE did not name keyword {name!r} in FLAGS")
        self.run.count(text.split(b" ", 2)[0 if not text.startswith(b"UID") else 1].decode())
        return replies

    def known(self) -> list[int]:
        return [u for u in self.view.uids if u is not None]

    async def sync(self) -> None:
        """A full UID FETCH. It may leave messages without a UID: those announced by an
        EXISTS after the FETCH responses, and those another session expunged, which the
        server may omit until it can announce the EXPUNGE (RFC 2180 4.1)."""
        replies = await self.command(b"UID FETCH 1:* (UID FLAGS)")
        if not replies[-1].startswith(b"c%d OK" % self.tags):
            self.view.complain(f"UID FETCH 1:* answered {replies[-1]!r}")

    async def run_session(self) -> None:
        """Random commands until the deadline; the connection stays open for
        ``converge``."""
        self.client = await imap_login(self.run.ports["imap"], self.user)
        await self.command(b"SELECT INBOX")
        await self.sync()
        while self.run.running:
            await self.step()
            await asyncio.sleep(self.rng.random() * 0.2)

    async def converge(self) -> list[int]:
        """When everyone has stopped: a NOOP and a full UID FETCH must give this
        long-lived session every message's UID; returns its view."""
        assert self.client is not None
        try:
            await self.command(b"NOOP")
            await self.sync()
            if None in self.view.uids:
                self.view.complain(f"after NOOP and UID FETCH 1:*: {self.view.uids}")
            return self.known()
        finally:
            await self.client.close()

    async def step(self) -> None:
        rng = self.rng
        action = rng.random()
        size = len(self.view.uids)
        if action < 0.15:
            await self.command(b"NOOP")
        elif action < 0.3 and size:
            seq = rng.randint(1, size)
            await self.command(b"FETCH %d (UID FLAGS)" % seq, expunge_allowed=False)
        elif action < 0.4:
            await self.sync()
        elif action < 0.55 and self.known():
            uid = rng.choice(self.known())
            replies = await self.command(f"UID STORE {uid} +FLAGS ({self.view.keyword})".encode())
            if replies[-1].split(b" ")[1] == b"OK" and uid in self.view.uids:
                # Still ours unless the server announced it expunged meanwhile.
                self.view.mine.add(uid)
        elif action < 0.62 and size:
            seq = rng.randint(1, size)
            flag = rng.choice([b"\\Seen", b"\\Flagged", b"\\Answered", *SHARED_KEYWORDS])
            sign = rng.choice([b"+", b"-"])
            silent = rng.choice([b"", b".SILENT"])
            await self.command(
                b"STORE %d %sFLAGS%s (%s)" % (seq, sign, silent, flag), expunge_allowed=False
            )
        elif action < 0.7:
            replies = await self.command(b"SEARCH UNSEEN", expunge_allowed=False)
            for response in replies[:-1]:
                if response.startswith(b"* SEARCH"):
                    for number in response.split()[2:]:
                        if not 1 <= int(number) <= len(self.view.uids):
                            self.view.complain(f"SEARCH gave {int(number)} of {size}")
        elif action < 0.78:
            raw = message(f"{self.who}-{self.tags}".replace(" ", "_").replace("#", ""))
            await self.command(b"APPEND INBOX {%d+}\r\n" % len(raw) + raw)
        elif action < 0.86 and self.known():
            uid = rng.choice(self.known())
            await self.command(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)".encode())
            await self.command(f"UID EXPUNGE {uid}".encode())
        elif action < 0.9 and self.known():
            uid = rng.choice(self.known())
            await self.command(f"UID MOVE {uid} Archive".encode())
        elif action < 0.95:
            await self.idle()
        elif action < 0.97 and size:
            first = rng.randint(1, size)
            last = min(size, first + rng.randint(0, 5))
            await self.command(
                b"FETCH %d:%d (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)" % (first, last),
                expunge_allowed=False,
            )
        else:
            await self.command(b"UID SEARCH ALL")

    async def idle(self) -> None:
        assert self.client is not None
        self.tags += 1
        tag = f"c{self.tags}".encode()
        await self.client.send(tag + b" IDLE\r\n")
        first = await imap_response(self.client)
        if not first.startswith(b"+ "):
            self.view.complain(f"IDLE answered {first!r}")
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.rng.random()):
                while True:
                    self.view.apply(await imap_response(self.client), expunge_allowed=True)
        await self.client.send(b"DONE\r\n")
        while True:
            response = await imap_response(self.client)
            if response.startswith(tag + b" "):
                if not response.startswith(tag + b" OK"):
                    self.view.complain(f"IDLE ended with {response!r}")
                break
            self.view.apply(response, expunge_allowed=True)
        self.run.count("IDLE")


async def pop3_client(run: Run, user: str, number: int) -> None:
    who = f"pop3 {user} #{number}"
    rng = random.Random(run.rng.random())
    problems = run.problems
    while run.running:
        await asyncio.sleep(1 + rng.random() * 3)
        client = await greeted(run.ports["pop3"], "pop3")
        try:
            await client.send(f"USER {user}\r\nPASS correct horse\r\n".encode())
            await client.line()
            answer = await client.line()
            if answer.startswith(b"-ERR [IN-USE]"):
                run.count("pop3 in-use")
                continue
            if not answer.startswith(b"+OK"):
                problems.add(who, f"PASS answered {answer!r}")
                continue
            await client.send(b"STAT\r\nLIST\r\nUIDL\r\n")
            stat = (await client.line()).split()
            listed = (await client.until(b".\r\n"))[1:-1]
            uidls = (await client.until(b".\r\n"))[1:-1]
            count = int(stat[1])
            sizes = {int(line.split()[0]): int(line.split()[1]) for line in listed}
            ids = [line.split()[1] for line in uidls]
            if not count == len(sizes) == len(ids):
                problems.add(who, f"STAT {count}, LIST {len(sizes)}, UIDL {len(ids)}")
            if len(set(ids)) != len(ids):
                problems.add(who, "UIDL repeats an id")
            if int(stat[2]) != sum(sizes.values()):
                problems.add(who, f"STAT size {int(stat[2])} != LIST sum {sum(sizes.values())}")
            for n in rng.sample(sorted(sizes), min(3, len(sizes))):
                await client.send(b"RETR %d\r\n" % n)
                status = await client.line(wait=60)
                if status.startswith(b"-ERR"):
                    # Expunged over IMAP since this session's snapshot: a fair answer.
                    run.count("pop3 retr of expunged")
                    continue
                if not status.startswith(b"+OK"):
                    problems.add(who, f"RETR {n} answered {status!r}")
                    break
                lines = (await client.until(b".\r\n", wait=60))[:-1]
                body = b"".join(line[1:] if line.startswith(b"..") else line for line in lines)
                if len(body) != sizes[n]:
                    problems.add(who, f"RETR {n}: {len(body)} octets, LIST said {sizes[n]}")
                if rng.random() < 0.3:
                    await client.send(b"DELE %d\r\n" % n)
                    if not (await client.line()).startswith(b"+OK"):
                        problems.add(who, f"DELE {n} refused")
            await client.send(b"QUIT\r\n")
            if not (await client.line()).startswith(b"+OK"):
                problems.add(who, "QUIT failed")
            run.count("pop3 session")
        finally:
            await client.close()


async def deliverer(run: Run) -> None:
    client = await greeted(run.ports["lmtp"], "lmtp")
    rng = random.Random(run.rng.random())
    try:
        await client.send(b"LHLO stress.test\r\n")
        await client.until(b"250 ")
        n = 0
        while run.running:
            n += 1
            await client.send(
                b"MAIL FROM:<s@stress.test>\r\n"
                + b"".join(b"RCPT TO:<%s>\r\n" % u.encode() for u in USERS)
                + b"DATA\r\n"
            )
            await client.until(b"354")
            await client.send(message(f"lmtp{n}") + b".\r\n")
            for _ in USERS:
                reply = await client.line()
                if not reply.startswith(b"250"):
                    run.problems.add("lmtp", f"delivery answered {reply!r}")
            run.count("delivery")
            await asyncio.sleep(rng.random() * 0.3)
    finally:
        await client.close()


async def guarded(who: str, work: Awaitable[None]) -> None:
    """Name the client and the place when one fails."""
    try:
        await work
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)
        lines = [f"{f.name}:{f.lineno}" for f in where[-6:]]
        raise AssertionError(f"{who}: {exc!r} at {' < '.join(reversed(lines))}") from exc


async def stored_uids(data: Path, user: str) -> list[int]:
    store = await open_store("sqlite:store", data, pool_size=1)
    try:
        account = await store.get_account(user)
        assert account is not None
        mailbox = await store.get_mailbox(account.id, INBOX)
        assert mailbox is not None
        return list((await store.snapshot(mailbox.id)).uids)
    finally:
        await store.close()


async def test_many_clients_see_consistent_state(tmp_path: Path) -> None:
    seed = int(os.environ.get("MAILKEEP_SEED", random.randrange(1 << 30)))
    data = await make_data(
        tmp_path / "data",
        USERS,
        top={"domains": ["example.org"]},
        limits={"connections_per_address": 500},
    )
    server: ServerProcess = await start_server(data, ("imap", "pop3", "lmtp"))
    problems = Problems()
    try:
        run = Run(server.ports, problems, time.monotonic() + 3600, random.Random(seed))
        imap = [ImapClient(run, u, n) for u in USERS for n in range(IMAP_PER_USER)]
        # Log in one after another (argon2 is deliberately slow), then start the clock.
        sessions = []
        for client in imap:
            sessions.append(asyncio.create_task(guarded(client.who, client.run_session())))
            await asyncio.sleep(0.3)
        run.deadline = time.monotonic() + DURATION
        others = [
            asyncio.create_task(guarded(f"pop3 {u} #{n}", pop3_client(run, u, n)))
            for u in USERS
            for n in range(POP3_PER_USER)
        ]
        others.append(asyncio.create_task(guarded("lmtp", deliverer(run))))
        results = await asyncio.gather(*sessions, *others, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, f"seed {seed}: clients failed: {errors[:5]!r}"
        for user in USERS:
            stored = await stored_uids(data, user)
            for client in imap:
                if client.user == user and await client.converge() != stored:
                    problems.add(client.who, f"final view differs from the store's {stored}")
        assert run.counts.get("delivery", 0) > 10, run.counts
        assert run.counts.get("pop3 session", 0) > 0, run.counts
        assert run.counts.get("IDLE", 0) > 0, run.counts
    finally:
        await server.stop()
    assert not problems.found, f"seed {seed}: " + "\n".join(problems.found[:50])
    assert "Traceback" not in server.log_text(), server.log_text()[-5000:]


def test_view_reports_what_imaptest_would() -> None:
    """The checks above can fail: fed the replies of a broken server, views complain."""
    problems = Problems()
    shared = Shared()
    one, two = View("one", problems, shared), View("two", problems, shared)
    for view in (one, two):
        view.apply(b"* FLAGS (\\Seen $Known)\r\n", expunge_allowed=True)
        view.apply(b"* 2 EXISTS\r\n", expunge_allowed=True)
    one.apply(b"* 1 FETCH (UID 7 FLAGS (\\Recent $Known))\r\n", expunge_allowed=True)
    assert problems.found == []
    one.apply(b"* 2 FETCH (UID 8 FLAGS (Unannounced))\r\n", expunge_allowed=True)
    two.apply(b"* 1 FETCH (UID 7 FLAGS (\\Recent))\r\n", expunge_allowed=True)
    one.apply(
        b'* 1 FETCH (UID 7 INTERNALDATE "01-Jan-2026 10:00:00 +0000")\r\n', expunge_allowed=True
    )
    two.apply(
        b'* 1 FETCH (UID 7 INTERNALDATE "01-Jan-2026 10:00:01 +0000")\r\n', expunge_allowed=True
    )
    two.apply(b"* FLAGS (\\Seen)\r\n", expunge_allowed=True)
    assert [p.split(": ", 1)[1][:30] for p in problems.found] == [
        "keyword used without being in ",
        "UID 7 is \\Recent here and for ",
        "UID 7: b'INTERNALDATE \"01-Jan-",
        "FLAGS dropped keywords ['$know",
    ]
