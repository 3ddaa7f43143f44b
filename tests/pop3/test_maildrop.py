"""What a POP3 session does to the store: snapshots, streaming, deletion at QUIT, the
view of other sessions, \\Seen and download times, UIDL stability."""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import cast

import pytest

from mailkeep.config import Pop3Config
from mailkeep.mail.flags import SystemFlag
from mailkeep.pop3.session import Send, Session, Stream
from mailkeep.store.api import Account, FetchField, FlagMode
from mailkeep.store.changes import ChangeSet
from mailkeep.store.hub import Listener
from mailkeep.store.ops import Exec, Tx
from mailkeep.store.sqlite import SqliteEngine
from mailkeep.store.sqlstore import SqlStore

from .conftest import Driver, add_account, deliver, new_session


async def inbox_id(store: SqlStore, account: Account) -> int:
    mailbox = await store.get_mailbox(account.id, "INBOX")
    assert mailbox is not None
    return mailbox.id


async def inbox_uids(store: SqlStore, account: Account) -> list[int]:
    return list((await store.snapshot(await inbox_id(store, account))).uids)


def message(subject: str, body: bytes = b"Hello\r\n") -> bytes:
    return f"From: a@example.org\r\nSubject: {subject}\r\n\r\n".encode() + body


async def logged_in(store: SqlStore, pop3: Pop3Config | None = None) -> Driver:
    driver = Driver(new_session(store, pop3=pop3))
    await driver.login()
    return driver


async def remove_blob(store: SqlStore, blob: str) -> None:
    """Lose a message's body (a disk fault): its row in the database or its file."""

    def delete_row() -> Tx[None]:
        yield Exec("DELETE FROM inline_blobs WHERE hash = ?", (blob,))

    engine = cast(SqliteEngine, store.engine)
    await engine.write(delete_row())
    engine.blobs.path(blob).unlink(missing_ok=True)


# ---------------------------------------------------------------------------- RETR, TOP


@pytest.mark.parametrize(
    "raw",
    [
        message("dots", b".starts with a dot\r\n..two\r\n.\r\nend\r\n"),
        message("no final CRLF", b"last line"),
        b"Subject: bare LF\n\n.line\nend\n",
        b"Subject: header only\r\n",
    ],
)
async def test_retr_sends_the_stored_octets(store: SqlStore, account: Account, raw: bytes) -> None:
    await deliver(store, account, raw)
    driver = await logged_in(store)
    assert await driver.command("LIST 1") == f"+OK 1 {len(raw)}\r\n".encode()
    reply = await driver.command("RETR 1")
    head, _, rest = reply.partition(b"\r\n")
    assert head == f"+OK {len(raw)} octets".encode()
    assert rest.endswith(b"\r\n.\r\n")
    body = rest[: -len(b".\r\n")]
    lines = body.split(b"\n")
    unstuffed = b"\n".join(line[1:] if line.startswith(b".") else line for line in lines)
    assert unstuffed in {raw, raw + b"\r\n"}
    assert unstuffed == raw or not raw.endswith(b"\r\n")


async def test_retr_streams_a_large_message_in_chunks(store: SqlStore, account: Account) -> None:
    line = b"." + b"x" * 76 + b"\r\n"
    raw = message("big", line * 40000)  # about 3 MB, every line dot-stuffed
    await deliver(store, account, raw)
    session = new_session(store)
    driver = Driver(session)
    await driver.login()
    session.receive_data(b"RETR 1\r\n")
    actions = await session.next_actions()
    assert actions is not None
    (stream,) = actions
    assert isinstance(stream, Stream)
    assert stream.head == f"+OK {len(raw)} octets\r\n".encode()
    digest = hashlib.sha256()
    sizes = []
    async for piece in stream.body:
        sizes.append(len(piece))
        digest.update(piece)
    expected = raw.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    assert digest.hexdigest() == hashlib.sha256(expected).hexdigest()
    assert len(sizes) > 40
    assert max(sizes) <= 65536 * 2


async def test_consecutive_retr_reads_small_messages_ahead(
    store: SqlStore, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where reads are remote, a run of RETRs reads the small messages ahead in groups
    (``open_small_blobs``), the next group while the current one is sent; every RETR
    still sends its own message, whatever comes between (a deleted message, a large one,
    a body stored twice, going back)."""
    from mailkeep.pop3 import readahead

    monkeypatch.setattr(readahead, "GROUP_OCTETS", 200)
    monkeypatch.setattr(readahead, "WHOLE_BLOB", 4000)
    monkeypatch.setattr(store, "remote_reads", True)
    groups: list[int] = []
    open_small_blobs = store.open_small_blobs

    async def counted(blobs: list[str]) -> dict[str, object]:
        groups.append(len(blobs))
        return dict(await open_small_blobs(blobs))

    monkeypatch.setattr(store, "open_small_blobs", counted)
    raws = [message(f"m{i}", b"line\r\n" * (i * 5 + 1)) for i in range(8)]
    raws[5] = message("large", b"." + b"y" * 76 + b"\r\n" * 4000)  # above WHOLE_BLOB: read alone
    raws[6] = raws[1]  # one blob for two messages
    await deliver(store, account, *raws)
    driver = await logged_in(store)
    assert (await driver.command("DELE 3")).startswith(b"+OK")

    def retr_reply(raw: bytes) -> bytes:
        stuffed = raw.replace(b"\r\n.", b"\r\n..")
        return b"+OK %d octets\r\n%s.\r\n" % (len(raw), stuffed)

    for step, n in enumerate([1, 2, 3, 4, 5, 6, 7, 8, 2]):
        reply = await driver.command(f"RETR {n}")
        if n == 3:
            assert reply.startswith(b"-ERR")
        else:
            assert reply == retr_reply(raws[n - 1]), n
        if step == 1:  # the run starts: its group is read, and the next is on its way
            for _ in range(100):
                if len(groups) == 2:
                    break
                await asyncio.sleep(0.01)
            assert len(groups) == 2
    assert len(groups) > 2  # read ahead, in more than two groups
    assert sum(groups) < 2 * len(raws)


async def test_index_answers_without_blobs(store: SqlStore, account: Account) -> None:
    """LIST, UIDL, STAT and TOP n 0 come from the index: they work with the blobs gone
    (and RETR then says the message is unavailable, without crashing)."""
    raws = [message("one"), message("two", b"body\r\n" * 3)]
    await deliver(store, account, *raws)
    rows = await store.fetch(
        await inbox_id(store, account), await inbox_uids(store, account), FetchField.BLOB
    )
    for row in rows:
        await remove_blob(store, row.blob)
    driver = await logged_in(store)
    assert await driver.command("STAT") == f"+OK 2 {sum(map(len, raws))}\r\n".encode()
    assert (await driver.command("LIST")).count(b"\r\n") == 4
    assert (await driver.command("UIDL")).count(b"\r\n") == 4
    header = raws[1].partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
    assert await driver.command("TOP 2 0") == b"+OK Top of message follows\r\n" + header + b".\r\n"
    assert await driver.command("RETR 1") == (
        b"-ERR Message 1 no longer exists: it was deleted by another session\r\n"
    )
    assert await driver.command("NOOP") == b"+OK\r\n"


async def test_top_lines(store: SqlStore, account: Account) -> None:
    body = b"".join(b"line %d\r\n" % i for i in range(1, 10001))
    raw = message("top", body)
    await deliver(store, account, raw)
    driver = await logged_in(store)
    header = raw[: raw.index(b"\r\n\r\n") + 4]
    for n, expected in [(0, b""), (1, b"line 1\r\n"), (3, b"line 1\r\nline 2\r\nline 3\r\n")]:
        reply = await driver.command(f"TOP 1 {n}")
        assert reply == b"+OK Top of message follows\r\n" + header + expected + b".\r\n"
    reply = await driver.command("TOP 1 99999999")
    assert reply == b"+OK Top of message follows\r\n" + raw + b".\r\n"
    # TOP is no download: nothing is marked.
    rows = await store.fetch(
        await inbox_id(store, account), await inbox_uids(store, account), FetchField.FLAGS
    )
    assert rows[0].flags == 0


# ---------------------------------------------------------------------------- snapshot, QUIT


async def test_snapshot_at_login(store: SqlStore, account: Account) -> None:
    """Mail delivered during a session is not in it; the next session has it."""
    await deliver(store, account, message("early"))
    driver = await logged_in(store)
    await deliver(store, account, message("late"))
    assert await driver.command("STAT") == f"+OK 1 {len(message('early'))}\r\n".encode()
    assert await driver.command("RETR 2") == (
        b"-ERR No such message, only 1 messages in maildrop\r\n"
    )
    await driver.command("QUIT")
    driver = await logged_in(store)
    assert (await driver.command("STAT")).startswith(b"+OK 2 ")


async def test_quit_removes_marked_messages_and_others_see_it(
    store: SqlStore, account: Account
) -> None:
    uids = await deliver(store, account, message("a"), message("b"), message("c"))
    mailbox = await inbox_id(store, account)
    listener = Listener()
    store.hub.watch_mailbox(mailbox, listener)
    driver = await logged_in(store)
    await driver.command("DELE 1")
    await driver.command("DELE 3")
    assert not listener.has_pending  # DELE only marks
    reply = await driver.command("QUIT")
    assert reply == b"+OK pop.example.org POP3 server signing off (1 messages left)\r\n"
    (change,) = listener.drain()
    assert isinstance(change, ChangeSet)
    assert change.expunged == (uids[0], uids[2])
    assert await inbox_uids(store, account) == [uids[1]]
    assert (await store.changes_since(mailbox, change.before)).expunged == (uids[0], uids[2])


async def test_dropped_connection_deletes_nothing(store: SqlStore, account: Account) -> None:
    uids = await deliver(store, account, message("a"), message("b"))
    driver = await logged_in(store, Pop3Config(retention="delete-after-retr"))
    await driver.command("RETR 1")
    await driver.command("DELE 2")
    await driver.session.close()
    assert await inbox_uids(store, account) == uids
    # ... and the next session can lock the maildrop.
    await logged_in(store)


async def test_rset_unmarks(store: SqlStore, account: Account) -> None:
    uids = await deliver(store, account, message("a"), message("b"))
    driver = await logged_in(store)
    await driver.command("DELE 1")
    await driver.command("DELE 2")
    assert await driver.command("STAT") == b"+OK 0 0\r\n"
    await driver.command("RSET")
    await driver.command("QUIT")
    assert await inbox_uids(store, account) == uids


async def test_messages_expunged_by_imap_meanwhile(store: SqlStore, account: Account) -> None:
    """RETR of a message another session expunged answers -ERR; QUIT still removes
    what it can."""
    uids = await deliver(store, account, message("a"), message("b"), message("c"))
    mailbox = await inbox_id(store, account)
    driver = await logged_in(store)
    await store.store_flags(mailbox, [uids[0], uids[1]], FlagMode.ADD, SystemFlag.DELETED, ())
    await store.expunge(mailbox)  # as an IMAP EXPUNGE would
    assert await driver.command("RETR 1") == (
        b"-ERR Message 1 no longer exists: it was deleted by another session\r\n"
    )
    assert await driver.command("TOP 2 0") == (
        b"-ERR Message 2 no longer exists: it was deleted by another session\r\n"
    )
    assert await driver.command("LIST 1") == f"+OK 1 {len(message('a'))}\r\n".encode()
    assert await driver.command("DELE 1") == b"+OK Message 1 deleted\r\n"
    assert await driver.command("DELE 3") == b"+OK Message 3 deleted\r\n"
    assert (await driver.command("QUIT")).startswith(b"+OK")
    assert await inbox_uids(store, account) == []


async def test_sessions_of_other_accounts_are_independent(
    store: SqlStore, account: Account
) -> None:
    other = await add_account(store, "bob@example.org")
    await deliver(store, other, message("for bob"))
    alice = await logged_in(store)
    bob = Driver(new_session(store))
    await bob.login("bob@example.org")
    assert await alice.command("STAT") == b"+OK 0 0\r\n"
    assert (await bob.command("STAT")).startswith(b"+OK 1 ")


# ---------------------------------------------------------------------------- UIDL


async def test_uidl_is_stable_and_unique(store: SqlStore, account: Account) -> None:
    await deliver(store, account, message("a"), message("a"), message("b"))
    first = await (await logged_in(store)).command("UIDL")
    listing = first.split(b"\r\n")[1:-2]
    uidls = [line.split(b" ")[1] for line in listing]
    assert len(set(uidls)) == 3  # identical messages still get distinct UIDLs
    assert all(len(u) == 16 and u.isalnum() for u in uidls)
    mailbox = await inbox_id(store, account)
    uids = await inbox_uids(store, account)
    await store.store_flags(mailbox, uids, FlagMode.ADD, SystemFlag.FLAGGED, ())
    driver = await logged_in(store)
    assert await driver.command("UIDL") == first
    await driver.command("DELE 1")
    await driver.command("QUIT")
    await deliver(store, account, message("a"))
    second = await (await logged_in(store)).command("UIDL")
    new_uidls = [line.split(b" ")[1] for line in second.split(b"\r\n")[1:-2]]
    assert new_uidls[:2] == uidls[1:]
    assert new_uidls[2] not in uidls  # never reused


# ---------------------------------------------------------------------------- policies


async def downloaded_and_flags(store: SqlStore, account: Account) -> list[tuple[bool, int]]:
    mailbox = await inbox_id(store, account)
    rows = await store.fetch(
        mailbox, await inbox_uids(store, account), FetchField.POP3 | FetchField.FLAGS
    )
    return [(row.downloaded_at is not None, row.flags) for row in rows]


async def test_retr_marks_seen_and_downloaded(store: SqlStore, account: Account) -> None:
    await deliver(store, account, message("a"), message("b"))
    driver = await logged_in(store)
    await driver.command("RETR 2")
    assert await downloaded_and_flags(store, account) == [(False, 0), (True, SystemFlag.SEEN)]


async def test_retr_marks_seen_can_be_off(store: SqlStore, account: Account) -> None:
    await deliver(store, account, message("a"))
    driver = await logged_in(store, Pop3Config(retr_marks_seen=False))
    await driver.command("RETR 1")
    assert await downloaded_and_flags(store, account) == [(True, 0)]
    await driver.command("QUIT")
    await store.set_account_setting(account.id, "pop3.retr-marks-seen", "yes")
    await deliver(store, account, message("b"))
    driver = await logged_in(store, Pop3Config(retr_marks_seen=False))
    await driver.command("RETR 2")
    assert await downloaded_and_flags(store, account) == [(True, 0), (True, SystemFlag.SEEN)]


async def test_interrupted_retr_is_no_download(store: SqlStore, account: Account) -> None:
    await deliver(store, account, message("a", b"x\r\n" * 100000))
    session: Session = new_session(store, pop3=Pop3Config(retention="delete-after-retr"))
    driver = Driver(session)
    await driver.login()
    session.receive_data(b"RETR 1\r\n")
    actions = await session.next_actions()
    assert actions is not None
    assert isinstance(actions[0], Stream)
    body = actions[0].body
    await body.__anext__()
    await body.aclose()
    session.receive_data(b"QUIT\r\n")
    actions = await session.next_actions()
    assert actions is not None
    assert isinstance(actions[0], Send)
    assert actions[0].data.endswith(b"(1 messages left)\r\n")
    assert await downloaded_and_flags(store, account) == [(False, 0)]


async def test_delete_after_retr(store: SqlStore, account: Account) -> None:
    uids = await deliver(store, account, message("a"), message("b"), message("c"))
    driver = await logged_in(store, Pop3Config(retention="delete-after-retr"))
    capa = await driver.command("CAPA")
    assert b"\r\nEXPIRE 0\r\n" in capa
    await driver.command("RETR 1")
    await driver.command("TOP 2 5")
    await driver.command("RETR 3")
    await driver.command("RSET")  # does not undo the implicit DELE (EXPIRE 0)
    assert await driver.command("QUIT") == (
        b"+OK pop.example.org POP3 server signing off (1 messages left)\r\n"
    )
    assert await inbox_uids(store, account) == [uids[1]]


async def test_delete_after_retr_per_account(store: SqlStore, account: Account) -> None:
    uids = await deliver(store, account, message("a"), message("b"))
    await store.set_account_setting(account.id, "pop3.retention", "delete-after-retr")
    driver = await logged_in(store)  # the server keeps by default
    await driver.command("RETR 2")
    await driver.command("QUIT")
    assert await inbox_uids(store, account) == [uids[0]]


async def test_whole_message_top_counts_as_download(store: SqlStore, account: Account) -> None:
    """fetchmail's keep mode fetches with TOP n 99999999: that starts the days:N clock
    but sets no \\Seen and is no RETR for delete-after-retr."""
    raw = message("a", b"one\r\ntwo\r\n")
    uids = await deliver(store, account, raw, message("b", b"one\r\ntwo\r\n"))
    driver = await logged_in(store, Pop3Config(retention="delete-after-retr"))
    await driver.command("TOP 1 2")
    await driver.command("TOP 2 1")
    await driver.command("TOP 2 0")
    assert await downloaded_and_flags(store, account) == [(True, 0), (False, 0)]
    await driver.command("QUIT")
    assert await inbox_uids(store, account) == uids


async def test_top_of_a_message_without_body(store: SqlStore, account: Account) -> None:
    """A message that is all header, not ending in CR LF: TOP sends it whole from the
    index, whatever the line count, and that counts as a download (days:N)."""
    raw = b"Subject: no body\r\nFrom: a@example.com"
    await deliver(store, account, raw)
    (row,) = await store.fetch(
        await inbox_id(store, account), await inbox_uids(store, account), FetchField.BLOB
    )
    await remove_blob(store, row.blob)
    driver = await logged_in(store)
    for n in (0, 5):
        reply = await driver.command(f"TOP 1 {n}")
        assert reply == b"+OK Top of message follows\r\n" + raw + b"\r\n.\r\n"
    assert await downloaded_and_flags(store, account) == [(True, 0)]


def open_files() -> int:
    """Open blob files of this process (other fds come and go with threads and tests)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += "/blobs/" in target
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc")
async def test_unsent_body_releases_its_blob(store: SqlStore, account: Account) -> None:
    """A body dropped before its first chunk (the connection failed while the status
    line was written) still closes the blob it opened (a file: larger than the store
    keeps in its database)."""
    await deliver(store, account, message("a", b"x\r\n" * 50_000))
    session = new_session(store)
    driver = Driver(session)
    await driver.login()
    before = open_files()
    for command in (b"RETR 1\r\n", b"TOP 1 5\r\n"):
        session.receive_data(command)
        actions = await session.next_actions()
        assert actions is not None
        (stream,) = actions
        assert isinstance(stream, Stream)
        assert open_files() == before + 1
        await stream.body.aclose()
        assert open_files() == before
