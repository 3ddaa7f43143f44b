"""The 1,000,000-message scale checks in minutes: ``python -m bench.scale``.

``make bench BENCH_ARGS=--full`` builds a real million-message mailbox (hours of delivery
and indexing) and runs every workload on it. LOGIN+SELECT and the memory of a selected
session depend on the number of messages, not on what they contain, so this builds the
mailbox another way: a few hundred corpus messages delivered over LMTP, then their message
rows cloned in SQL up to N (each clone with its own UID, MODSEQ and date, sharing its
original's stored contents), on mailkeep's SQLite store. It measures:

- LOGIN+SELECT INBOX: the first after the server starts (every UID is read) and the median
  of the next 20 (the store keeps a large mailbox's UIDs and reads only what changed);
- the server's memory (PSS) growth per selected session, over 10 sessions;
- the same after a delivery that every session is told of.

Targets (issue 7): LOGIN+SELECT under 200 ms, under 20 MB per selected session.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import time
from pathlib import Path

from bench.corpus import Corpus, CorpusSpec
from bench.procstat import memory
from bench.proto.imap import ImapClient
from bench.proto.lmtp import LmtpClient
from bench.servers import REPO, Endpoints, Mailkeep

SEEDED = 300
"""Messages delivered for real; the others are clones of their rows."""
WARM_RUNS = 20
SESSIONS = 10


def clone_rows(database: Path, total: int) -> None:
    """Grow the INBOX of the only account to ``total`` messages by cloning its rows."""
    db = sqlite3.connect(database, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        (mailbox, seeded) = db.execute(
            "SELECT b.id, count(m.uid) FROM mailboxes b JOIN messages m ON m.mailbox_id = b.id"
            " WHERE b.name = 'INBOX' GROUP BY b.id"
        ).fetchone()
        db.execute(
            "WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internaldate,"
            " internaldate_tz, savedate, size, content_id, thread_id)"
            " SELECT m.mailbox_id, n.i, n.i, m.flags, m.keywords, m.internaldate + n.i,"
            " m.internaldate_tz, m.savedate, m.size, m.content_id, m.thread_id"
            " FROM n JOIN messages m ON m.mailbox_id = ? AND m.uid = 1 + n.i % ?",
            (seeded + 1, total, mailbox, seeded),
        )
        highest = db.execute("SELECT max(modseq) FROM messages WHERE mailbox_id = ?", (mailbox,))
        db.execute(
            "UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?",
            (total + 1, max(total, highest.fetchone()[0]) + 1, mailbox),
        )
        db.execute(
            "UPDATE content_refs SET refs ="
            " (SELECT count(*) FROM messages m WHERE m.content_id = content_refs.content_id)"
        )
        db.execute(
            "UPDATE accounts SET (used_messages, used_bytes) ="
            " (SELECT count(*), sum(size) FROM messages WHERE mailbox_id = ?)",
            (mailbox,),
        )
        db.execute("COMMIT")
    finally:
        db.close()


async def seed(endpoints: Endpoints, count: int) -> None:
    corpus = Corpus(CorpusSpec(size=count))
    lmtp = await LmtpClient.connect(endpoints.host, endpoints.lmtp)
    for message in corpus.messages():
        await lmtp.deliver(message, endpoints.rcpt)
    await lmtp.quit()


async def login_select(endpoints: Endpoints) -> tuple[ImapClient, float, int]:
    started = time.perf_counter()
    client = await ImapClient.connect(endpoints.host, endpoints.imap)
    await client.login(endpoints.user, endpoints.password)
    box = await client.select("INBOX")
    return client, time.perf_counter() - started, box.exists


async def measure(server: Mailkeep, total: int) -> dict[str, float]:
    e = server.endpoints
    client, first, exists = await login_select(e)
    await client.logout()
    if exists != total:
        raise SystemExit(f"the INBOX holds {exists} messages, not {total}")
    warm = []
    for _ in range(WARM_RUNS):
        client, elapsed, _ = await login_select(e)
        warm.append(elapsed)
        await client.logout()
    before = memory(server.pid).pss
    sessions = [(await login_select(e))[0] for _ in range(SESSIONS)]
    await asyncio.sleep(1)
    selected = memory(server.pid).pss
    lmtp = await LmtpClient.connect(e.host, e.lmtp)
    await lmtp.deliver(Corpus(CorpusSpec(size=1)).message(0), e.rcpt)
    await lmtp.quit()
    for session in sessions:
        await session.command(b"NOOP")  # each session takes the new message into its view
    after_delivery = memory(server.pid).pss
    for session in sessions:
        await session.logout()
    return {
        "first_login_select_ms": first * 1000,
        "login_select_ms": statistics.median(warm) * 1000,
        "mb_per_session": (selected - before) / SESSIONS / 2**20,
        "mb_per_session_after_delivery": (after_delivery - before) / SESSIONS / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/tmp/scale")
    options = parser.parse_args()
    if options.messages < SEEDED:
        parser.error(f"--messages must be at least {SEEDED}")
    server = Mailkeep(options.out)
    try:
        server.reset()
        asyncio.run(seed(server.endpoints, SEEDED))
        server.stop()
        started = time.perf_counter()
        clone_rows(server.data / "store/mailkeep.sqlite3", options.messages)
        print(f"{options.messages:,} messages in INBOX ({time.perf_counter() - started:.0f} s)")
        server.start()
        result = asyncio.run(measure(server, options.messages))
    finally:
        server.stop()
    print(f"LOGIN+SELECT, first after start: {result['first_login_select_ms']:.0f} ms")
    verdict = "met" if result["login_select_ms"] < 200 else "NOT met"
    print(f"LOGIN+SELECT, median of {WARM_RUNS}: {result['login_select_ms']:.1f} ms ({verdict})")
    verdict = "met" if result["mb_per_session_after_delivery"] < 20 else "NOT met"
    print(
        f"memory per selected session: {result['mb_per_session']:.2f} MB,"
        f" {result['mb_per_session_after_delivery']:.2f} MB after a delivery ({verdict})"
    )


if __name__ == "__main__":
    main()
