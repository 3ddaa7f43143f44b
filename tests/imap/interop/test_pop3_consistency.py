"""POP3 and IMAP serve one store: a message deleted over POP3 is expunged for an IMAP
session that has the mailbox selected (DESIGN.md)."""

from __future__ import annotations

import asyncio
import imaplib
import poplib

from .conftest import ADDRESS, PASSWORD, Server

MESSAGE = b"From: bob@example.org\r\nTo: alice@example.org\r\nSubject: %d\r\n\r\nHello.\r\n"


async def test_pop3_delete_seen_by_imap_session(server: Server) -> None:
    for n in range(3):
        await server.deliver(MESSAGE % n)

    def dialogue() -> list[bytes]:
        with imaplib.IMAP4("127.0.0.1", server.imap) as imap:
            imap.login(ADDRESS, PASSWORD)
            imap.select("INBOX")
            pop = poplib.POP3("127.0.0.1", server.pop3)
            pop.user(ADDRESS)
            pop.pass_(PASSWORD)
            assert pop.stat()[0] == 3
            pop.dele(2)
            pop.quit()
            imap.noop()
            expunged = [e for e in imap.response("EXPUNGE")[1] if e is not None]
            status, data = imap.fetch("1:*", "(UID)")
            assert status == "OK"
            assert [d for d in data if isinstance(d, bytes)] == [b"1 (UID 1)", b"2 (UID 3)"]
            return expunged

    assert await asyncio.to_thread(dialogue) == [b"2"]
    assert await server.uids() == [1, 3]
