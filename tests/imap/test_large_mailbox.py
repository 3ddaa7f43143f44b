"""A large mailbox: FETCH 1:* BODY.PEEK[] of many messages streams with bounded memory
(rows come in batches, bodies from the blobs), SELECT and SEARCH stay cheap.

Sizes grow with ``MAILKEEP_STRESS=long`` (``make stress``): 50,000 messages then.
"""

from __future__ import annotations

import asyncio
import os
import tracemalloc

import pytest

from mailkeep.imap.session import Services, Session
from mailkeep.mail.message import parse
from mailkeep.store.api import Account, NewMessage
from mailkeep.store.sqlstore import SqlStore

COUNT = 50_000 if os.environ.get("MAILKEEP_STRESS") == "long" else 3_000
BODY = b"x" * 2000 + b"\r\n"


class CountingTransport:
    """Reads scripted input; counts output instead of keeping it."""

    remote = "127.0.0.1"
    loopback = True
    tls = False
    can_start_tls = False

    def __init__(self, script: bytes) -> None:
        self.script = script
        self.sent = 0
        self.tail = b""

    async def read(self, within: float | None = None) -> bytes:
        data, self.script = self.script, b""
        if not data:
            await asyncio.sleep(0)
        return data

    async def write(self, data: bytes) -> None:
        self.sent += len(data)
        self.tail = (self.tail + data)[-200:]

    async def start_tls(self) -> None:  # pragma: no cover - not offered
        raise AssertionError


@pytest.mark.slow
async def test_fetch_everything_streams(
    services: Services, store: SqlStore, account: Account
) -> None:
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    batch = []
    for n in range(COUNT):
        raw = b"Subject: %d\r\n\r\n" % n + BODY
        batch.append(NewMessage(raw, parse(raw)))
        if len(batch) == 1000:
            await store.append(inbox.id, batch)
            batch = []
    if batch:
        await store.append(inbox.id, batch)
    credentials = await store.get_credentials("alice@example.org")
    assert credentials is not None
    script = (
        b"s SELECT INBOX\r\nf FETCH 1:* BODY.PEEK[]\r\nc SEARCH RETURN (COUNT) ALL\r\nz LOGOUT\r\n"
    )
    transport = CountingTransport(script)
    session = Session(services, transport)
    await session.logged_in(credentials)
    tracemalloc.start()
    try:
        await session.run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message_size = len(b"Subject: 0\r\n\r\n" + BODY)
    assert transport.sent > COUNT * message_size
    assert transport.tail.endswith(b"z OK LOGOUT completed\r\n")
    # The memory used does not grow with the mailbox: under ``make stress`` 100 MB go
    # out within the same budget.
    assert peak < 16 * 1024 * 1024, peak
