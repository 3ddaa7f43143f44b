"""APPEND commands pipelined with LITERAL+ (RFC 7888) in the authenticated state share
one commit (``Session._appends_ahead``): the responses must be exactly those of running
them one by one, in order, with UIDs in the order of the commands."""

from __future__ import annotations

from mailkeep.store.api import Account
from mailkeep.store.sqlstore import SqlStore

from .conftest import message
from .support import Client


def _appends(boxes: list[str]) -> bytes:
    data = b""
    for n, box in enumerate(boxes):
        raw = message(f"pipelined {n}")
        data += b"a%d APPEND %s {%d+}\r\n%s\r\n" % (n, box.encode(), len(raw), raw)
    return data


async def test_pipelined_appends_answer_in_order(
    alice: Client, store: SqlStore, account: Account
) -> None:
    alice.send_raw(_appends(["INBOX", "INBOX", "Nowhere", "Sent", "INBOX"]) + b"z NOOP\r\n")
    lines = await alice.until("z")
    inbox = await store.get_mailbox(account.id, "INBOX")
    sent = await store.get_mailbox(account.id, "Sent")
    assert inbox is not None
    assert sent is not None
    assert lines == [
        b"a0 OK [APPENDUID %d 1] APPEND completed" % inbox.uidvalidity,
        b"a1 OK [APPENDUID %d 2] APPEND completed" % inbox.uidvalidity,
        b"a2 NO [TRYCREATE] mailbox Nowhere does not exist",
        b"a3 OK [APPENDUID %d 1] APPEND completed" % sent.uidvalidity,
        b"a4 OK [APPENDUID %d 3] APPEND completed" % inbox.uidvalidity,
        b"z OK NOOP completed",
    ]
    await alice.ok("s SELECT INBOX")
    fetched = await alice.ok("f UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (Subject)])")
    assert [line.split(b"\r\n")[1] for line in fetched] == [
        b"Subject: pipelined 0",
        b"Subject: pipelined 1",
        b"Subject: pipelined 4",
    ]


async def test_pipelined_appends_over_quota(
    alice: Client, store: SqlStore, account: Account
) -> None:
    # All are checked before any commits; the transaction checks again, exactly: the
    # second and third are refused as if each had waited for the one before.
    await store.set_quota(account.id, None, 1)
    alice.send_raw(_appends(["INBOX", "INBOX", "INBOX"]) + b"z NOOP\r\n")
    lines = await alice.until("z")
    assert lines[0].startswith(b"a0 OK [APPENDUID ")
    assert lines[1:] == [
        b"a1 NO [OVERQUOTA] mailbox is full: quota of 1 messages reached",
        b"a2 NO [OVERQUOTA] mailbox is full: quota of 1 messages reached",
        b"z OK NOOP completed",
    ]


async def test_appends_in_the_selected_state_run_one_by_one(
    alice: Client, store: SqlStore, account: Account
) -> None:
    # Each tagged OK follows the EXISTS of its own message.
    await alice.ok("s SELECT INBOX")
    alice.send_raw(_appends(["INBOX", "INBOX"]) + b"z NOOP\r\n")
    lines = await alice.until("z")
    assert [line.split(b" ")[:3] for line in lines] == [
        [b"*", b"1", b"EXISTS"],
        [b"*", b"1", b"RECENT"],
        [b"a0", b"OK", b"[APPENDUID"],
        [b"*", b"2", b"EXISTS"],
        [b"*", b"2", b"RECENT"],
        [b"a1", b"OK", b"[APPENDUID"],
        [b"z", b"OK", b"NOOP"],
    ]
