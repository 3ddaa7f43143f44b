"""CONDSTORE and QRESYNC (RFC 7162) as a client sees them: MODSEQ on FETCH, STORE and
SEARCH, CONDSTORE enabled by use, SELECT (QRESYNC ...) and VANISHED."""

from __future__ import annotations

import re
from collections.abc import Callable

from mailkeep.imap import resync
from mailkeep.mail.flags import SystemFlag
from mailkeep.store.api import Account, FlagMode
from mailkeep.store.sqlstore import SqlStore

from .conftest import deliver, message
from .support import Client, run_transcript


async def _inbox(store: SqlStore, account: Account) -> tuple[int, int, int]:
    box = await store.get_mailbox(account.id, "INBOX")
    assert box is not None
    return box.id, box.uidvalidity, box.highestmodseq


async def _fill(store: SqlStore, account: Account, n: int) -> list[int]:
    return [await deliver(store, account, message(f"m{i}")) for i in range(n)]


def _modseq(line: bytes) -> int:
    found = re.search(rb"MODSEQ \(?(\d+)", line)
    assert found is not None, line
    return int(found.group(1))


async def test_select_always_shows_highestmodseq(
    alice: Client, store: SqlStore, account: Account
) -> None:
    await _fill(store, account, 2)
    _, _, highest = await _inbox(store, account)
    lines = await alice.ok("a SELECT INBOX")
    assert f"* OK [HIGHESTMODSEQ {highest}] highest MODSEQ".encode() in lines
    assert any(re.fullmatch(rb"\* OK \[MAILBOXID \(F[0-9a-f]+\)\] mailbox ID", x) for x in lines)


async def test_condstore_enabled_by_fetch_modseq(
    alice: Client, store: SqlStore, account: Account
) -> None:
    """RFC 7162 3.1: FETCH MODSEQ enables CONDSTORE; the client is told HIGHESTMODSEQ once,
    and STORE responses then carry UID and MODSEQ."""
    await _fill(store, account, 3)
    await alice.ok("a SELECT INBOX")
    _, _, highest = await _inbox(store, account)
    lines = await alice.ok("b FETCH 1 (MODSEQ)")
    assert lines[0] == f"* OK [HIGHESTMODSEQ {highest}] highest MODSEQ".encode()
    assert re.fullmatch(rb"\* 1 FETCH \(MODSEQ \(\d+\)\)", lines[1])
    lines = await alice.ok("c FETCH 1 (MODSEQ)")
    assert len(lines) == 1  # told once
    lines = await alice.ok("d STORE 2 +FLAGS (\\Seen)")
    assert re.fullmatch(rb"\* 2 FETCH \(FLAGS \(\\Seen \\Recent\) UID 2 MODSEQ \(\d+\)\)", lines[0])
    assert _modseq(lines[0]) > highest


async def test_enable_condstore_and_qresync(alice: Client) -> None:
    await run_transcript(
        alice,
        """
        C: e1 ENABLE QRESYNC
        S: * ENABLED QRESYNC
        S: e1 OK ENABLE completed
        C: e2 ENABLE CONDSTORE QRESYNC
        S: * ENABLED CONDSTORE
        S: e2 OK ENABLE completed
        """,
    )
    assert alice.session is not None
    assert alice.session.condstore


async def test_store_unchangedsince(alice: Client, store: SqlStore, account: Account) -> None:
    """RFC 7162 3.1.3: messages changed after UNCHANGEDSINCE are left alone and named in
    MODIFIED; even .SILENT reports the new MODSEQ of those changed."""
    await _fill(store, account, 3)
    box_id, _, _ = await _inbox(store, account)
    await alice.ok("a SELECT INBOX")
    lines = await alice.ok("b FETCH 1:3 (MODSEQ)")
    before = {i + 1: _modseq(line) for i, line in enumerate(lines[1:])}
    await store.store_flags(box_id, [2], FlagMode.ADD, int(SystemFlag.FLAGGED), ())
    responses = await alice.command(
        f"c STORE 1:3 (UNCHANGEDSINCE {max(before.values())}) +FLAGS.SILENT (\\Deleted)"
    )
    # Message 2's own change is announced (unsolicited FETCH with MODSEQ) ...
    fetches = [r for r in responses if b"FETCH" in r]
    assert any(r.startswith(b"* 1 FETCH (UID 1 MODSEQ (") for r in fetches), fetches
    assert any(r.startswith(b"* 3 FETCH (UID 3 MODSEQ (") for r in fetches), fetches
    assert not any(r.startswith(b"* 2 FETCH (UID 2 MODSEQ") for r in fetches), fetches
    assert responses[-1] == b"c OK [MODIFIED 2] conditional STORE failed for some messages"
    flags = await alice.ok("d FETCH 1:3 (FLAGS)")
    assert b"\\Deleted" in flags[0]
    assert b"\\Deleted" not in flags[1]
    assert b"\\Deleted" in flags[2]
    uid_store = await alice.command("e UID STORE 2 (UNCHANGEDSINCE 1) -FLAGS (\\Flagged)")
    assert uid_store[-1] == b"e OK [MODIFIED 2] conditional STORE failed for some messages"


async def test_search_modseq(alice: Client, store: SqlStore, account: Account) -> None:
    """RFC 7162 3.1.5, the ESEARCH forms as Dovecot's compliance test expects them: the
    highest MODSEQ of the messages returned (only MIN's or MAX's when alone)."""
    await _fill(store, account, 4)
    await alice.ok("a SELECT INBOX")
    await alice.ok("x FETCH 1 (MODSEQ)")
    modseqs = {}
    for n in (1, 3, 2, 4):
        lines = await alice.ok(f"s{n} STORE {n} +FLAGS (\\Seen)")
        modseqs[n] = _modseq(lines[-1])
    lines = await alice.ok("b SEARCH MODSEQ 1 1:3 SEEN")
    assert lines == [f"* SEARCH 1 2 3 (MODSEQ {modseqs[2]})".encode()]
    lines = await alice.ok(f"c SEARCH MODSEQ {modseqs[4] + 1}")
    assert lines == [b"* SEARCH"]
    cases = [
        ("(MIN)", "1:3", 1, f"MIN 1 MODSEQ {modseqs[1]}"),
        ("(MAX)", "1:3", 1, f"MAX 3 MODSEQ {modseqs[3]}"),
        ("()", "1:3", 1, f"ALL 1:3 MODSEQ {modseqs[2]}"),
        ("(MIN MAX)", "2:3", 1, f"MIN 2 MAX 3 MODSEQ {modseqs[2]}"),
        ("(ALL)", "2:3", modseqs[3], f"ALL 2:3 MODSEQ {modseqs[2]}"),
        ("(ALL)", "2:3", modseqs[2], f"ALL 2 MODSEQ {modseqs[2]}"),
        ("(COUNT)", "1:4", 1, f"COUNT 4 MODSEQ {modseqs[4]}"),
    ]
    for options, numbers, since, expected in cases:
        lines = await alice.ok(f"t SEARCH RETURN {options} {numbers} MODSEQ {since}")
        assert lines == [f'* ESEARCH (TAG "t") {expected}'.encode()], (options, lines)
    lines = await alice.ok(f"u SEARCH RETURN (ALL) 2:3 MODSEQ {modseqs[4]}")
    assert lines == [b'* ESEARCH (TAG "u")']


async def test_fetch_changedsince(alice: Client, store: SqlStore, account: Account) -> None:
    await _fill(store, account, 5)
    box_id, _, highest = await _inbox(store, account)
    await alice.ok("a SELECT INBOX")
    await store.store_flags(box_id, [2, 4], FlagMode.ADD, int(SystemFlag.ANSWERED), ())
    lines = await alice.ok(f"b FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})")
    fetches = [x for x in lines if b"FETCH" in x]
    # The two changes are first announced (unsolicited, UID and MODSEQ) by this command
    # ... or shown by it; either way exactly messages 2 and 4 appear.
    assert {int(x.split()[1]) for x in fetches} == {2, 4}
    assert all(b"MODSEQ (" in x for x in fetches)
    lines = await alice.ok(f"c UID FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})")
    assert [x.split()[1] for x in lines if b"FETCH" in x] == [b"2", b"4"]
    assert lines[0].startswith(b"* 2 FETCH (UID 2 FLAGS (\\Answered \\Recent) MODSEQ (")


async def test_vanished_replaces_expunge(alice: Client, store: SqlStore, account: Account) -> None:
    await _fill(store, account, 5)
    box_id, _, _ = await _inbox(store, account)
    await alice.ok("e ENABLE QRESYNC")
    await alice.ok("a SELECT INBOX")
    await alice.ok("b STORE 2:3,5 +FLAGS.SILENT (\\Deleted)")
    lines = await alice.ok("c EXPUNGE")
    assert lines == [b"* VANISHED 2:3,5"]
    await store.store_flags(box_id, [1], FlagMode.ADD, int(SystemFlag.DELETED), ())
    await store.expunge(box_id)
    lines = await alice.ok("d NOOP")
    assert lines == [b"* VANISHED 1"]


async def test_qresync_select(alice: Client, store: SqlStore, account: Account) -> None:
    """RFC 7162 3.2.5: VANISHED (EARLIER) for what was expunged, then FETCH (UID FLAGS
    MODSEQ) for what changed since the client's MODSEQ."""
    uids = await _fill(store, account, 10)
    box_id, uidvalidity, highest = await _inbox(store, account)
    await store.store_flags(box_id, [uids[1], uids[7]], FlagMode.ADD, int(SystemFlag.SEEN), ())
    await store.store_flags(box_id, uids[3:5], FlagMode.ADD, int(SystemFlag.DELETED), ())
    await store.expunge(box_id)
    await run_transcript(
        alice,
        f"""
        C: q1 SELECT INBOX (QRESYNC ({uidvalidity} {highest}))
        S: q1 BAD ENABLE QRESYNC before using the QRESYNC parameter
        C: e ENABLE QRESYNC
        S: * ENABLED QRESYNC
        S: e OK ENABLE completed
        C: q2 SELECT INBOX (QRESYNC ({uidvalidity} {highest}))
        S: * FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)
        S: * 8 EXISTS
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S: * VANISHED (EARLIER) 4:5
        S~ \\* 2 FETCH \\(UID 2 FLAGS \\(\\\\Seen[^)]*\\) MODSEQ \\(\\d+\\)\\)
        S~ \\* 6 FETCH \\(UID 8 FLAGS \\(\\\\Seen[^)]*\\) MODSEQ \\(\\d+\\)\\)
        S: q2 OK [READ-WRITE] SELECT completed
        C: q3 EXAMINE INBOX (QRESYNC ({uidvalidity} {highest} 1:3,5:7))
        S: * OK [CLOSED] previous mailbox is now closed
        S: * FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)
        S: * 8 EXISTS
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S: * VANISHED (EARLIER) 5
        S~ \\* 2 FETCH \\(UID 2 FLAGS \\(\\\\Seen[^)]*\\) MODSEQ \\(\\d+\\)\\)
        S: q3 OK [READ-ONLY] EXAMINE completed
        C: q4 EXAMINE INBOX (QRESYNC ({uidvalidity + 1} {highest}))
        S: * OK [CLOSED] previous mailbox is now closed
        S: * FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)
        S: * 8 EXISTS
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S: q4 OK [READ-ONLY] EXAMINE completed
        """,
    )


async def test_qresync_after_expunge_log_trimmed(
    alice: Client, store: SqlStore, account: Account
) -> None:
    """The log no longer reaches the client's MODSEQ: VANISHED (EARLIER) is found by
    comparing what the client knows with what is there, narrowed by seq-match data."""
    uids = await _fill(store, account, 10)
    box_id, uidvalidity, highest = await _inbox(store, account)
    await store.store_flags(box_id, [uids[2], uids[8]], FlagMode.ADD, int(SystemFlag.DELETED), ())
    await store.expunge(box_id)
    assert await store.trim_expunge_log(-1) == 1
    changes = await store.changes_since(box_id, highest)
    assert not changes.expunge_log_complete
    await alice.ok("e ENABLE QRESYNC")
    lines = await alice.ok(f"a EXAMINE INBOX (QRESYNC ({uidvalidity} {highest} 1:10))")
    assert b"* VANISHED (EARLIER) 3,9" in lines
    # seq-match: the client's message 2 is still UID 2, so nothing below it needs telling;
    # message 5 is no longer UID 5 (UID 3 went), so the proof stops at UID 2.
    lines = await alice.ok(f"b EXAMINE INBOX (QRESYNC ({uidvalidity} {highest} 1:10 (2,5 2,5)))")
    assert b"* VANISHED (EARLIER) 3,9" in lines
    # The client's message 8 is UID 9 (gone now); its message 7 is UID 8, now message 6.
    lines = await alice.ok(f"c EXAMINE INBOX (QRESYNC ({uidvalidity} {highest} 4:10 (7 8)))")
    assert b"* VANISHED (EARLIER) 9" in lines
    # Without known UIDs every UID below UIDNEXT that is missing is reported.
    lines = await alice.ok(f"d EXAMINE INBOX (QRESYNC ({uidvalidity} {highest}))")
    assert b"* VANISHED (EARLIER) 3,9" in lines


async def test_uid_fetch_vanished(alice: Client, store: SqlStore, account: Account) -> None:
    uids = await _fill(store, account, 6)
    box_id, _, highest = await _inbox(store, account)
    await alice.ok("a SELECT INBOX")
    lines = await alice.command(f"b UID FETCH 1:* FLAGS (CHANGEDSINCE {highest} VANISHED)")
    assert lines[-1].startswith(b"b BAD")  # RFC 7162 3.2.6: needs QRESYNC enabled
    await alice.ok("e ENABLE QRESYNC")
    await alice.ok("a SELECT INBOX")
    await store.store_flags(box_id, uids[1:3], FlagMode.ADD, int(SystemFlag.DELETED), ())
    await store.expunge(box_id)
    await alice.ok("n NOOP")  # the session hears of the expunge: VANISHED 2:3
    await store.store_flags(box_id, [uids[4]], FlagMode.ADD, int(SystemFlag.FLAGGED), ())
    lines = await alice.ok(f"c UID FETCH 1:4,6 FLAGS (CHANGEDSINCE {highest} VANISHED)")
    # Nothing in the set changed; UID 5's change is announced on its own.
    assert lines[0] == b"* VANISHED (EARLIER) 2:3"
    assert len(lines) == 2
    assert re.fullmatch(rb"\* 3 FETCH \(UID 5 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)", lines[1])


async def test_two_sessions_resync(
    alice: Client, new_client: Callable[..., Client], store: SqlStore, account: Account
) -> None:
    """A second device changes flags and expunges; the first comes back with QRESYNC and
    learns exactly that."""
    await _fill(store, account, 8)
    _, uidvalidity, _ = await _inbox(store, account)
    await alice.ok("e ENABLE QRESYNC")
    lines = await alice.ok("a SELECT INBOX")
    highest = next(_modseq(x) for x in lines if b"HIGHESTMODSEQ" in x)
    await alice.ok("b LOGOUT")
    other = new_client()
    await other.start()
    await other.login()
    await other.ok("c SELECT INBOX")
    await other.ok("d STORE 1,8 +FLAGS (\\Flagged)")
    await other.ok("f STORE 3 +FLAGS (\\Deleted)")
    await other.ok("g EXPUNGE")
    await other.finish()
    back = new_client()
    await back.start()
    await back.login()
    await back.ok("e ENABLE QRESYNC")
    lines = await back.ok(f"h SELECT INBOX (QRESYNC ({uidvalidity} {highest} 1:8))")
    assert b"* VANISHED (EARLIER) 3" in lines
    changed = [x for x in lines if b" FETCH " in x]
    assert [x.split()[1] for x in changed] == [b"1", b"7"]
    assert all(b"\\Flagged" in x for x in changed)
    await back.finish()


def test_missing_ranges() -> None:
    assert resync.missing(((1, 10),), [2, 3, 7]) == ((1, 1), (4, 6), (8, 10))
    assert resync.missing(((1, 3), (5, 5)), [1, 2, 3, 5]) == ()
    assert resync.missing(((4, 4_000_000),), [4, 5]) == ((6, 4_000_000),)
    assert resync.missing((), [1]) == ()


def test_matched_floor() -> None:
    view = [1, 2, 4, 7, 9]
    assert resync.matched_floor(view, ((1, 2),), ((1, 2),)) == 2
    assert resync.matched_floor(view, ((2, 2), (4, 4)), ((2, 2), (7, 7))) == 7
    assert resync.matched_floor(view, ((4, 4),), ((8, 8),)) == 0  # no longer matches
    assert resync.matched_floor(view, ((1, 2),), ((1, 1),)) == 0  # malformed
    assert resync.above(((1, 10), (12, 14)), 11) == ((12, 14),)
