"""``mailkeep migrate``: copy every folder of an IMAP account into a mailkeep account through
the store, with flags, keywords and INTERNALDATE. Resumable and idempotent.

Per source folder the state database remembers UIDVALIDITY and the highest UID copied.
Messages are copied in UID order, a batch per store transaction; before each batch the
target mailbox's UIDNEXT is noted, so after a crash the next run can tell whether the
batch's transaction committed (the target then holds messages of exactly those sizes from
that UID on) and neither loses nor duplicates it. A source folder whose UIDVALIDITY changed
is copied again from the start (its old UIDs mean nothing any more); that is reported.

Folder names: the source hierarchy delimiter becomes the store's ``/``; INBOX stays INBOX;
special-use attributes (RFC 6154) are carried over when the target mailbox is created.
"""

from __future__ import annotations

import fnmatch
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from mailkeep.client.imap import ImapClient
from mailkeep.client.imapwire import Fetch, FileLiteral, ListEntry, format_uid_set
from mailkeep.client.report import NoProgress, Progress, RunReport
from mailkeep.client.storeio import SPECIAL_USE, Item, StoreWriter, batches
from mailkeep.store.api import FetchField, Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS migration (
    source TEXT NOT NULL,
    folder TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    last_uid INTEGER NOT NULL DEFAULT 0,
    pending_last INTEGER,
    pending_uidnext INTEGER,
    pending_sizes TEXT,
    PRIMARY KEY (source, folder)
);
"""


@dataclass(frozen=True)
class MigrateOptions:
    folders: tuple[str, ...] = ("*",)
    dry_run: bool = False


@dataclass
class _Plan:
    entry: ListEntry
    target: str
    uidvalidity: int
    todo: list[tuple[int, int]]
    """(UID, RFC822.SIZE) still to copy."""


class MigrationState:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def get(self, source: str, folder: str) -> tuple[int, int, int | None, int | None, str | None]:
        row = self.db.execute(
            "SELECT uidvalidity, last_uid, pending_last, pending_uidnext, pending_sizes"
            " FROM migration WHERE source = ? AND folder = ?",
            (source, folder),
        ).fetchone()
        return (0, 0, None, None, None) if row is None else tuple(row)

    def reset(self, source: str, folder: str, uidvalidity: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO migration(source, folder, uidvalidity) VALUES (?, ?, ?)",
            (source, folder, uidvalidity),
        )

    def pending(self, source: str, folder: str, last: int, uidnext: int, sizes: list[int]) -> None:
        self.db.execute(
            "UPDATE migration SET pending_last = ?, pending_uidnext = ?, pending_sizes = ?"
            " WHERE source = ? AND folder = ?",
            (last, uidnext, ",".join(map(str, sizes)), source, folder),
        )

    def done(self, source: str, folder: str, last: int) -> None:
        self.db.execute(
            "UPDATE migration SET last_uid = ?, pending_last = NULL, pending_uidnext = NULL,"
            " pending_sizes = NULL WHERE source = ? AND folder = ?",
            (last, source, folder),
        )


async def migrate_imap(
    client: ImapClient,
    store: Store,
    address: str,
    state: MigrationState,
    source: str,
    options: MigrateOptions,
    progress: Progress | None = None,
) -> RunReport:
    """Copy what is not copied yet from the logged-in ``client`` into ``address``."""
    progress = progress or NoProgress()
    writer = await StoreWriter.open(store, address)
    report = RunReport(dry_run=options.dry_run)
    plans = await _plan(client, writer, state, source, options, report)
    total = sum(size for plan in plans for _, size in plan.todo)
    progress.start("migrate", sum(len(plan.todo) for plan in plans), total)
    for plan in plans:
        special = next((a for a in plan.entry.attributes if a in SPECIAL_USE), None)
        if options.dry_run:
            report.new += len(plan.todo)
            report.bytes += sum(size for _, size in plan.todo)
            continue
        mailbox = await writer.mailbox(plan.target, special)
        await client.select(plan.entry.name, readonly=True)
        for batch in batches(plan.todo):
            uids = [uid for uid, _ in batch]
            fetched: dict[int, Item] = {}

            def keep(fetch: Fetch, fetched: dict[int, Item] = fetched) -> None:
                try:
                    body = fetch.section()
                    if fetch.uid is None or body is None:
                        return
                    raw = body.read() if isinstance(body, FileLiteral) else body
                    flags = tuple(f for f in fetch.flags or () if f.lower() != "\\recent")
                    fetched[fetch.uid] = Item(raw, flags, fetch.internaldate)
                finally:
                    fetch.close()

            await client.uid_fetch(
                format_uid_set(uids), "(UID FLAGS INTERNALDATE BODY.PEEK[])", on_fetch=keep
            )
            items = [fetched[uid] for uid in uids if uid in fetched]  # expunged meanwhile: gone
            before = (await store.get_mailbox_by_id(mailbox.id) or mailbox).uidnext
            state.pending(source, plan.entry.name, uids[-1], before, [len(i.raw) for i in items])
            if items:
                await writer.append(mailbox, items)
            state.done(source, plan.entry.name, uids[-1])
            octets = sum(len(i.raw) for i in items)
            report.new += len(items)
            report.bytes += octets
            progress.advance(len(items), octets)
    progress.finish()
    return report


async def _plan(
    client: ImapClient,
    writer: StoreWriter,
    state: MigrationState,
    source: str,
    options: MigrateOptions,
    report: RunReport,
) -> list[_Plan]:
    plans = []
    for entry in await client.list_mailboxes():
        if not entry.selectable:
            continue
        target = _target_name(entry)
        if not any(fnmatch.fnmatchcase(target, p) for p in options.folders):
            continue
        box = await client.select(entry.name, readonly=True)
        uidvalidity = box.uidvalidity or 0
        known_validity, last_uid, pending_last, pending_uidnext, pending_sizes = state.get(
            source, entry.name
        )
        if known_validity != uidvalidity:
            if known_validity:
                report.notes.append(f"{entry.name}: UIDVALIDITY changed, copying it again")
            last_uid = 0
            if not options.dry_run:
                state.reset(source, entry.name, uidvalidity)
        elif pending_last is not None and pending_uidnext is not None:
            # An interrupted batch: did its store transaction commit?
            committed = await _batch_committed(writer, target, pending_uidnext, pending_sizes or "")
            if committed:
                last_uid = pending_last
            if not options.dry_run:
                state.done(source, entry.name, last_uid)
        todo: list[tuple[int, int]] = []
        if box.exists:
            for fetch in await client.uid_fetch(f"{last_uid + 1}:*", "(UID RFC822.SIZE)"):
                if fetch.uid is not None and fetch.uid > last_uid:
                    todo.append((fetch.uid, fetch.size or 0))
        todo.sort()
        plans.append(_Plan(entry, target, uidvalidity, todo))
    return plans


async def _batch_committed(writer: StoreWriter, target: str, uidnext: int, sizes: str) -> bool:
    """Whether the target holds, from ``uidnext`` on, messages of every recorded size: the
    interrupted batch's transaction committed (appends are atomic)."""
    store = writer.store
    mailbox = await store.get_mailbox(writer.account.id, target)
    expected = [int(s) for s in sizes.split(",") if s]
    if mailbox is None or not expected:
        return False
    snapshot = await store.snapshot(mailbox.id)
    newer = [uid for uid in snapshot.uids if uid >= uidnext]
    remaining = sorted(row.size for row in await store.fetch(mailbox.id, newer, FetchField.SIZE))
    for size in expected:
        if size not in remaining:
            return False
        remaining.remove(size)
    return True


def _target_name(entry: ListEntry) -> str:
    if entry.name.upper() == "INBOX":
        return "INBOX"
    if entry.delimiter and entry.delimiter != "/":
        return "/".join(entry.name.split(entry.delimiter))
    return entry.name
