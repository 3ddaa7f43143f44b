"""Acceptance: a device that cached a 50,000-message mailbox comes back after another
device changed flags on 100 messages and expunged 50; SELECT (QRESYNC ...) tells it
exactly those changes (RFC 7162 3.2.5), from the expunge log and, once the log has been
trimmed, by comparing known UIDs (with seq-match data).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mailkeep.mail.message import parse
from mailkeep.store.api import Account, NewMessage
from mailkeep.store.sqlstore import SqlStore

from .support import Client

COUNT = 50_000
BATCH = 2_500
DISTINCT = 500
"""Distinct message contents, cycled: every message is its own row (UID, flags, MODSEQ),
but the store keeps one blob per content, so set-up does not cost 100,000 fsyncs."""


async def _fill(store: SqlStore, account: Account) -> None:
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    contents = []
    for n in range(DISTINCT):
        raw = b"From: a@example.org\r\nSubject: message %d\r\n\r\nbody %d\r\n" % (n, n)
        contents.append(NewMessage(raw, parse(raw)))
    for start in range(0, COUNT, BATCH):
        await store.append(inbox.id, [contents[n % DISTINCT] for n in range(start, start + BATCH)])


def _parse_select(lines: list[bytes]) -> tuple[int, int, int]:
    text = b"\n".join(lines)
    exists = re.search(rb"\* (\d+) EXISTS", text)
    validity = re.search(rb"UIDVALIDITY (\d+)", text)
    modseq = re.search(rb"HIGHESTMODSEQ (\d+)", text)
    assert exists
    assert validity
    assert modseq
    return int(exists.group(1)), int(validity.group(1)), int(modseq.group(1))


def _vanished(lines: list[bytes]) -> set[int]:
    out: set[int] = set()
    for line in lines:
        if line.startswith(b"* VANISHED (EARLIER) "):
            for part in line.split()[-1].split(b","):
                low, _, high = part.partition(b":")
                out.update(range(int(low), int(high or low) + 1))
    return out


def _fetched(lines: list[bytes]) -> dict[int, bytes]:
    out = {}
    for line in lines:
        found = re.match(rb"\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\) MODSEQ \(\d+\)\)", line)
        if found:
            out[int(found.group(1))] = found.group(2)
    return out


async def test_qresync_after_changes_in_a_large_mailbox(
    new_client: Callable[..., Client], store: SqlStore, account: Account
) -> None:
    await _fill(store, account)
    device = new_client()
    await device.start()
    await device.login()
    await device.ok("e ENABLE QRESYNC")
    exists, uidvalidity, modseq = _parse_select(await device.ok("s SELECT INBOX"))
    assert exists == COUNT
    await device.ok("l LOGOUT")

    flagged = list(range(7, COUNT, COUNT // 100))[:100]  # spread over the mailbox
    doomed = list(range(11, COUNT, COUNT // 50))[:50]
    assert not set(flagged) & set(doomed)
    other = new_client()
    await other.start()
    await other.login()
    await other.ok("s SELECT INBOX")
    await other.ok("f UID STORE " + ",".join(map(str, flagged)) + " +FLAGS.SILENT (\\Flagged)")
    await other.ok("d UID STORE " + ",".join(map(str, doomed)) + " +FLAGS.SILENT (\\Deleted)")
    await other.ok("x EXPUNGE")
    await other.ok("l LOGOUT")

    back = new_client()
    await back.start()
    await back.login()
    await back.ok("e ENABLE QRESYNC")
    lines = await back.ok(f"s SELECT INBOX (QRESYNC ({uidvalidity} {modseq} 1:{COUNT}))")
    assert _parse_select(lines)[0] == COUNT - 50
    assert _vanished(lines) == set(doomed)
    changed = _fetched(lines)
    assert set(changed) == set(flagged)
    assert all(b"\\Flagged" in flags for flags in changed.values())
    # Nothing else: the usual SELECT responses, the VANISHED line and the 100 FETCHes.
    assert len(lines) < 15 + 100
    await back.ok("l LOGOUT")

    # The expunge log is trimmed (store.expunge_log_days): the same answer, found by
    # comparing what the client knows, narrowed by seq-match data (message 5 is still
    # UID 5, so nothing below it is even looked at).
    await store.trim_expunge_log(-1)
    again = new_client()
    await again.start()
    await again.login()
    await again.ok("e ENABLE QRESYNC")
    lines = await again.ok(
        f"s EXAMINE INBOX (QRESYNC ({uidvalidity} {modseq} 1:{COUNT} (5,{COUNT} 5,{COUNT})))"
    )
    assert _vanished(lines) == set(doomed)
    assert set(_fetched(lines)) == set(flagged)
    await again.ok("l LOGOUT")
