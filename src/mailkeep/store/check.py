"""Store integrity: verify that rows, counters and blobs agree, and repair what can be.

What is checked (``mailkeep check``), and what ``--repair`` does:

* every contents row's blob exists — a missing blob cannot be repaired (restore from a
  backup); it is reported with the messages that need it;
* blobs no row names (and not waiting in ``garbage``) — orphans, left by a crash between
  a blob's write and its transaction: deleted;
* contents reference counts equal the messages that use them — recounted;
* contents nothing refers to — moved to ``garbage`` for the collector;
* each account's usage equals the sum of its messages — recomputed;
* each mailbox's UIDNEXT is above its UIDs and HIGHESTMODSEQ at least its MODSEQs —
  raised (never lowered: UIDs and MODSEQs must not go backwards).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mailkeep.store.ops import All, DeleteBlob, Exec, Many, One, Tx
from mailkeep.store.sql import drop_unreferenced


@dataclass
class Report:
    missing_blobs: list[tuple[str, int]] = field(default_factory=list)
    """(blob, messages using it)."""
    orphan_blobs: list[str] = field(default_factory=list)
    wrong_refs: list[tuple[int, int, int]] = field(default_factory=list)
    """(content id, stored refs, actual)."""
    unreferenced_contents: list[int] = field(default_factory=list)
    wrong_usage: list[tuple[str, int, int, int, int]] = field(default_factory=list)
    """(address, stored bytes, actual bytes, stored messages, actual messages)."""
    behind_mailboxes: list[tuple[int, str]] = field(default_factory=list)
    """(mailbox id, what is behind)."""
    repaired: bool = False

    @property
    def clean(self) -> bool:
        return not (
            self.missing_blobs
            or self.orphan_blobs
            or self.wrong_refs
            or self.unreferenced_contents
            or self.wrong_usage
            or self.behind_mailboxes
        )

    def lines(self) -> list[str]:
        out = []
        for blob, users in self.missing_blobs:
            out.append(f"missing blob {blob} used by {users} message(s): restore from a backup")
        for blob in self.orphan_blobs:
            out.append(f"orphan blob {blob}" + (" (deleted)" if self.repaired else ""))
        for content_id, stored, actual in self.wrong_refs:
            out.append(f"contents {content_id}: {stored} references stored, {actual} actual")
        for content_id in self.unreferenced_contents:
            out.append(f"contents {content_id} is used by no message")
        for address, stored_b, actual_b, stored_m, actual_m in self.wrong_usage:
            out.append(
                f"{address}: usage {stored_b} octets / {stored_m} messages stored,"
                f" {actual_b} / {actual_m} actual"
            )
        for mailbox_id, what in self.behind_mailboxes:
            out.append(f"mailbox {mailbox_id}: {what}")
        return out


def inspect_tx(blobs_on_disk: Iterable[str]) -> Tx[Report]:
    report = Report()
    rows = yield All(
        "SELECT c.blob, count(m.uid) FROM contents c LEFT JOIN messages m"
        " ON m.content_id = c.id GROUP BY c.id, c.blob"
    )
    present = set(blobs_on_disk)
    referenced = {blob for blob, _ in rows}
    garbage = {blob for (blob,) in (yield All("SELECT blob FROM garbage"))}
    report.missing_blobs = [(blob, users) for blob, users in rows if blob not in present]
    report.orphan_blobs = sorted(present - referenced - garbage)
    refs = yield All(
        "SELECT c.id, coalesce(r.refs, 0),"
        " (SELECT count(*) FROM messages m WHERE m.content_id = c.id)"
        " FROM contents c LEFT JOIN content_refs r ON r.content_id = c.id"
    )
    report.wrong_refs = [(cid, stored, actual) for cid, stored, actual in refs if stored != actual]
    report.unreferenced_contents = [cid for cid, _, actual in refs if actual == 0]
    usage = yield All(
        "SELECT a.address, a.used_bytes, coalesce(sum(m.size), 0), a.used_messages,"
        " count(m.uid) FROM accounts a LEFT JOIN mailboxes b ON b.account_id = a.id"
        " LEFT JOIN messages m ON m.mailbox_id = b.id"
        " GROUP BY a.id, a.address, a.used_bytes, a.used_messages"
    )
    report.wrong_usage = [
        (address, sb, ab, sm, am) for address, sb, ab, sm, am in usage if (sb, sm) != (ab, am)
    ]
    heads = yield All(
        "SELECT b.id, b.uidnext, b.highestmodseq, max(m.uid), max(m.modseq), max(e.uid),"
        " max(e.modseq) FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id"
        " LEFT JOIN expunged e ON e.mailbox_id = b.id"
        " GROUP BY b.id, b.uidnext, b.highestmodseq"
    )
    for mailbox_id, uidnext, highest, max_uid, max_modseq, max_e_uid, max_e_modseq in heads:
        top_uid = max(max_uid or 0, max_e_uid or 0)
        top_modseq = max(max_modseq or 0, max_e_modseq or 0)
        if uidnext <= top_uid:
            report.behind_mailboxes.append((mailbox_id, f"UIDNEXT {uidnext} <= UID {top_uid}"))
        if highest < top_modseq:
            report.behind_mailboxes.append(
                (mailbox_id, f"HIGHESTMODSEQ {highest} < MODSEQ {top_modseq}")
            )
    return report


def repair_tx(report: Report, now: int) -> Tx[None]:
    """Repair what ``report`` found; every decision is re-checked inside this write
    transaction, because the store kept running since the inspection."""
    for blob in report.orphan_blobs:
        named = yield One(
            "SELECT 1 FROM contents WHERE blob = ? UNION ALL SELECT 1 FROM garbage WHERE blob = ?",
            (blob, blob),
        )
        if named is None:
            yield DeleteBlob(blob)
    ids = [(cid,) for cid, _, _ in report.wrong_refs] + [
        (cid,) for cid in report.unreferenced_contents
    ]
    yield Many("DELETE FROM content_refs WHERE content_id = ?", ids)
    yield Many(
        "INSERT INTO content_refs (content_id, refs)"
        " SELECT ?, count(*) FROM messages WHERE content_id = ?",
        [(cid, cid) for (cid,) in ids],
    )
    yield from drop_unreferenced(now, [cid for (cid,) in ids])
    yield Exec(
        "UPDATE accounts SET"
        " used_bytes = (SELECT coalesce(sum(m.size), 0) FROM mailboxes b JOIN messages m"
        "   ON m.mailbox_id = b.id WHERE b.account_id = accounts.id),"
        " used_messages = (SELECT count(*) FROM mailboxes b JOIN messages m"
        "   ON m.mailbox_id = b.id WHERE b.account_id = accounts.id)"
    )
    for mailbox_id in {mailbox_id for mailbox_id, _ in report.behind_mailboxes}:
        row = yield One(
            "SELECT b.uidnext, b.highestmodseq,"
            " (SELECT max(uid) FROM messages WHERE mailbox_id = b.id),"
            " (SELECT max(modseq) FROM messages WHERE mailbox_id = b.id),"
            " (SELECT max(uid) FROM expunged WHERE mailbox_id = b.id),"
            " (SELECT max(modseq) FROM expunged WHERE mailbox_id = b.id)"
            " FROM mailboxes b WHERE b.id = ?",
            (mailbox_id,),
        )
        if row is None:
            continue
        uidnext, highest, *tops = (v or 0 for v in row)
        yield Exec(
            "UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?",
            (
                max(uidnext, tops[0] + 1, tops[2] + 1),
                max(highest, tops[1], tops[3]),
                mailbox_id,
            ),
        )
    report.repaired = True
