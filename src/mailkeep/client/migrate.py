"""``mailkeep migrate``: copy every folder of one account into another, with the folder
hierarchy, special-use attributes (RFC 6154), flags, keywords and internal dates. Resumable and
idempotent: a second run copies only what arrived since.

Either end is an IMAP server (``ImapSource``, ``ImapTarget``) or an account of this mailkeep
store (``StoreSource``, ``StoreTarget``), in any combination: IMAP → mailkeep (moving a
mailbox onto this server), mailkeep → mailkeep (between two accounts), IMAP → IMAP, and
mailkeep → IMAP. Between two accounts of the same store, batches go through ``Store.copy``:
one transaction per batch that shares the stored message (contents are addressed by hash and
parsed once) and keeps flags, keywords, the internal date and its zone; nothing is read or
parsed again.

State (a SQLite file) per source and target and per source folder: UIDVALIDITY and the highest
source UID copied. Messages are copied in UID order, in batches; before each batch the target
folder's UIDNEXT and the batch's (UID, size) pairs are noted, so that after a crash the next
run can tell what of the batch arrived and neither loses nor duplicates it:

- into the store, a batch is one transaction: it committed if the target holds messages of
  every noted size from that UIDNEXT on;
- into an IMAP server, messages are appended one by one, in order: the batch's sizes found in
  order among the target's messages from that UIDNEXT on (other mail may arrive in between)
  tell how many made it.

A source folder whose UIDVALIDITY changed is copied again from the start (its old UIDs mean
nothing any more); that is reported.

Folder names: the source's hierarchy delimiter becomes ``/`` (the store's), and the target
server's delimiter on an IMAP target; INBOX stays INBOX. ``folders`` patterns match the
``/`` form. Special-use attributes are set when the target folder is created (on an IMAP
target with CREATE-SPECIAL-USE, RFC 6154 3, if offered); a folder that exists already is used
as it is.
"""

from __future__ import annotations

import fnmatch
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mailkeep.client.errors import ImapError
from mailkeep.client.imap import ImapClient
from mailkeep.client.imapwire import Fetch, FileLiteral, ListEntry, format_uid_set
from mailkeep.client.report import NoProgress, Progress, RunReport
from mailkeep.client.storeio import SPECIAL_USE, Item, StoreWriter, batches
from mailkeep.errors import NotFound
from mailkeep.mail.flags import flag_names
from mailkeep.store.api import Account, FetchField, Mailbox, Store
from mailkeep.store.names import SEPARATOR, canonical

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
SIZE_CHUNK = 5000
"""UIDs per store fetch when listing a store folder's sizes."""


@dataclass(frozen=True)
class MigrateOptions:
    folders: tuple[str, ...] = ("*",)
    dry_run: bool = False


@dataclass(frozen=True)
class Folder:
    """One source folder: its name in ``/`` form, its name at the source (``key``, also its
    key in the state), its special use and UIDVALIDITY; ``mailbox_id`` in the store."""

    name: str
    key: str
    special_use: str | None
    uidvalidity: int
    mailbox_id: int = 0


@dataclass
class _Plan:
    folder: Folder
    todo: list[tuple[int, int]]
    """(UID, size) still to copy, ascending."""


@dataclass(frozen=True)
class Pending:
    """A batch noted before it was copied: the target's UIDNEXT then, and (source UID, size)
    of each message (UIDs are unknown in states written by older versions: None)."""

    last: int
    uidnext: int
    entries: tuple[tuple[int | None, int], ...]

    def encode(self) -> str:
        return ",".join(f"{uid}:{size}" for uid, size in self.entries)

    @staticmethod
    def decode(last: int, uidnext: int, text: str) -> Pending:
        entries: list[tuple[int | None, int]] = []
        for part in filter(None, text.split(",")):
            uid, colon, size = part.rpartition(":")
            entries.append((int(uid) if colon else None, int(size)))
        return Pending(last, uidnext, tuple(entries))


class MigrationState:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def get(self, source: str, folder: str) -> tuple[int, int, Pending | None]:
        """(UIDVALIDITY, last UID copied, the batch noted and not finished) of a folder."""
        row = self.db.execute(
            "SELECT uidvalidity, last_uid, pending_last, pending_uidnext, pending_sizes"
            " FROM migration WHERE source = ? AND folder = ?",
            (source, folder),
        ).fetchone()
        if row is None:
            return 0, 0, None
        validity, last_uid, pending_last, pending_uidnext, sizes = row
        pending = None
        if pending_last is not None and pending_uidnext is not None:
            pending = Pending.decode(pending_last, pending_uidnext, sizes or "")
        return validity, last_uid, pending

    def reset(self, source: str, folder: str, uidvalidity: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO migration(source, folder, uidvalidity) VALUES (?, ?, ?)",
            (source, folder, uidvalidity),
        )

    def pending(self, source: str, folder: str, batch: Pending) -> None:
        self.db.execute(
            "UPDATE migration SET pending_last = ?, pending_uidnext = ?, pending_sizes = ?"
            " WHERE source = ? AND folder = ?",
            (batch.last, batch.uidnext, batch.encode(), source, folder),
        )

    def done(self, source: str, folder: str, last: int) -> None:
        self.db.execute(
            "UPDATE migration SET last_uid = ?, pending_last = NULL, pending_uidnext = NULL,"
            " pending_sizes = NULL WHERE source = ? AND folder = ?",
            (last, source, folder),
        )


# --- the two ends -----------------------------------------------------------------------------


class Source(Protocol):
    label: str
    """Names the source in the state (with the target's label)."""

    async def folders(self) -> list[Folder]: ...

    async def sizes_after(self, folder: Folder, uid: int) -> list[tuple[int, int]]:
        """(UID, size) of the folder's messages above ``uid``, ascending."""
        ...

    async def read(self, folder: Folder, uids: Sequence[int]) -> list[tuple[int, Item]]:
        """Those of ``uids`` that still exist, ascending, with their bytes and state."""
        ...


class Target(Protocol):
    label: str
    atomic: bool
    """True when ``append`` stores a batch all or nothing."""
    created: int
    """Folders created so far."""

    async def prepare(self, name: str, special_use: str | None) -> None:
        """Make sure folder ``name`` (``/`` form) exists."""
        ...

    async def uidnext(self, name: str) -> int: ...

    async def append(self, name: str, items: Sequence[Item]) -> None: ...

    async def sizes_from(self, name: str, uid: int) -> list[int] | None:
        """Sizes of the messages at ``uid`` and above in UID order; None: no such folder."""
        ...


class ImapSource:
    """A logged-in IMAP client: every selectable folder, read with EXAMINE (nothing
    changes on the source, not even \\Seen: BODY.PEEK)."""

    def __init__(self, client: ImapClient, label: str) -> None:
        self.client = client
        self.label = label

    async def folders(self) -> list[Folder]:
        out = []
        for entry in await self.client.list_mailboxes():
            if not entry.selectable:
                continue
            status = await self.client.status(entry.name, ["UIDVALIDITY"])
            special = next((a for a in entry.attributes if a in SPECIAL_USE), None)
            out.append(Folder(slash_name(entry), entry.name, special, status.get("UIDVALIDITY", 0)))
        return out

    async def sizes_after(self, folder: Folder, uid: int) -> list[tuple[int, int]]:
        box = await self.client.select(folder.key, readonly=True)
        if not box.exists:
            return []
        found = await self.client.uid_fetch(f"{uid + 1}:*", "(UID RFC822.SIZE)")
        # "n:*" includes the highest UID even when it is below n (RFC 9051 6.4.8).
        return sorted((f.uid, f.size or 0) for f in found if f.uid is not None and f.uid > uid)

    async def read(self, folder: Folder, uids: Sequence[int]) -> list[tuple[int, Item]]:
        if self.client.mailbox is None or self.client.mailbox.name != folder.key:
            await self.client.select(folder.key, readonly=True)
        fetched: dict[int, Item] = {}

        def keep(fetch: Fetch) -> None:
            try:
                body = fetch.section()
                if fetch.uid is None or body is None:
                    return
                raw = body.read() if isinstance(body, FileLiteral) else body
                flags = tuple(f for f in fetch.flags or () if f.lower() != "\\recent")
                fetched[fetch.uid] = Item(raw, flags, fetch.internaldate)
            finally:
                fetch.close()

        await self.client.uid_fetch(
            format_uid_set(list(uids)), "(UID FLAGS INTERNALDATE BODY.PEEK[])", on_fetch=keep
        )
        return [(uid, fetched[uid]) for uid in uids if uid in fetched]  # expunged: gone


class StoreSource:
    """An account of this mailkeep store, read through the store API (nothing changes)."""

    def __init__(self, store: Store, account: Account) -> None:
        self.store = store
        self.account = account
        self.label = f"local:{account.address}"

    @classmethod
    async def open(cls, store: Store, address: str) -> StoreSource:
        account = await store.get_account(address)
        if account is None:
            raise NotFound(f"no mailkeep account {address}")
        return cls(store, account)

    async def folders(self) -> list[Folder]:
        return [
            Folder(box.name, box.name, box.special_use, box.uidvalidity, box.id)
            for box in await self.store.list_mailboxes(self.account.id)
        ]

    async def sizes_after(self, folder: Folder, uid: int) -> list[tuple[int, int]]:
        snapshot = await self.store.snapshot(folder.mailbox_id)
        uids = [u for u in snapshot.uids if u > uid]
        out: list[tuple[int, int]] = []
        for start in range(0, len(uids), SIZE_CHUNK):
            rows = await self.store.fetch(
                folder.mailbox_id, uids[start : start + SIZE_CHUNK], FetchField.SIZE
            )
            out.extend((row.uid, row.size) for row in rows)
        return out

    async def read(self, folder: Folder, uids: Sequence[int]) -> list[tuple[int, Item]]:
        fields = FetchField.FLAGS | FetchField.INTERNALDATE | FetchField.BLOB
        out = []
        for row in await self.store.fetch(folder.mailbox_id, uids, fields):
            reader = await self.store.open_blob(row.blob)
            try:
                raw = await reader.read(0, reader.size)
            finally:
                await reader.close()
            flags = (*flag_names(row.flags), *row.keywords)
            out.append((row.uid, Item(raw, flags, row.internaldate)))
        return out


class StoreTarget:
    """An account of this mailkeep store; a batch is one append transaction."""

    atomic = True

    def __init__(self, writer: StoreWriter) -> None:
        self.writer = writer
        self.store = writer.store
        self.label = writer.account.address
        self.created = 0

    @classmethod
    async def open(cls, store: Store, address: str) -> StoreTarget:
        return cls(await StoreWriter.open(store, address))

    async def mailbox(self, name: str) -> Mailbox:
        return await self.writer.mailbox(name)

    async def prepare(self, name: str, special_use: str | None) -> None:
        parts = canonical(name).split(SEPARATOR)
        for depth in range(1, len(parts) + 1):  # the writer creates missing parents too
            level = SEPARATOR.join(parts[:depth])
            if await self.store.get_mailbox(self.writer.account.id, level) is None:
                self.created += 1
        await self.writer.mailbox(name, special_use)

    async def uidnext(self, name: str) -> int:
        mailbox = await self.writer.mailbox(name)
        return (await self.store.get_mailbox_by_id(mailbox.id) or mailbox).uidnext

    async def append(self, name: str, items: Sequence[Item]) -> None:
        await self.writer.append(await self.writer.mailbox(name), list(items))

    async def sizes_from(self, name: str, uid: int) -> list[int] | None:
        mailbox = await self.store.get_mailbox(self.writer.account.id, canonical(name))
        if mailbox is None:
            return None
        snapshot = await self.store.snapshot(mailbox.id)
        newer = [u for u in snapshot.uids if u >= uid]
        return [row.size for row in await self.store.fetch(mailbox.id, newer, FetchField.SIZE)]


class ImapTarget:
    """A logged-in IMAP client: folders created with CREATE (and USE, RFC 6154 3), messages
    appended one by one with their flags and INTERNALDATE (RFC 9051 6.3.12)."""

    atomic = False

    def __init__(self, client: ImapClient, label: str) -> None:
        self.client = client
        self.label = label
        self.created = 0
        self._delimiter: str | None = None
        self._existing: set[str] | None = None

    async def _names(self) -> set[str]:
        if self._existing is None:
            entries = await self.client.list_mailboxes()
            self._existing = {slash_name(e) for e in entries}
            root = await self.client.list_mailboxes("", "")
            self._delimiter = next((e.delimiter for e in root if e.delimiter), None)
        return self._existing

    def wire_name(self, name: str) -> str:
        """``/`` form → the server's form (its hierarchy delimiter)."""
        if self._delimiter and self._delimiter != SEPARATOR:
            return name.replace(SEPARATOR, self._delimiter)
        return name

    async def prepare(self, name: str, special_use: str | None) -> None:
        existing = await self._names()
        parts = name.split(SEPARATOR)
        for depth in range(1, len(parts) + 1):  # parents first, so the hierarchy is real
            level = SEPARATOR.join(parts[:depth])
            if level in existing or level.upper() == "INBOX":
                continue
            use = special_use if depth == len(parts) else None
            await self._create(self.wire_name(level), use)
            existing.add(level)
            self.created += 1

    async def _create(self, wire: str, special_use: str | None) -> None:
        if special_use and self.client.has("CREATE-SPECIAL-USE"):
            try:
                await self.client.command(
                    b"CREATE", self.client.mailbox_arg(wire), f"(USE ({special_use}))".encode()
                )
                return
            except ImapError:
                pass  # e.g. [USEATTR]: the target has that special use elsewhere already
        await self.client.create(wire)

    async def uidnext(self, name: str) -> int:
        await self._names()
        return (await self.client.status(self.wire_name(name), ["UIDNEXT"])).get("UIDNEXT", 0)

    async def append(self, name: str, items: Sequence[Item]) -> None:
        wire = self.wire_name(name)
        for item in items:
            await self.client.append(
                wire, item.raw, flags=item.flags, internaldate=item.internaldate
            )

    async def sizes_from(self, name: str, uid: int) -> list[int] | None:
        existing = await self._names()
        if name not in existing:
            return None
        box = await self.client.select(self.wire_name(name), readonly=True)
        found: list[tuple[int, int]] = []
        if box.exists:
            fetches = await self.client.uid_fetch(f"{uid}:*", "(UID RFC822.SIZE)")
            found = sorted((f.uid, f.size or 0) for f in fetches if f.uid and f.uid >= uid)
        await self.client.unselect()
        return [size for _, size in found]


# --- the copy -------------------------------------------------------------------------------


async def migrate(
    source: Source,
    target: Target,
    state: MigrationState,
    options: MigrateOptions,
    progress: Progress | None = None,
) -> RunReport:
    """Copy what is not copied yet from ``source`` into ``target``."""
    progress = progress or NoProgress()
    key = f"{source.label}->{target.label}"
    report = RunReport(dry_run=options.dry_run)
    plans = await _plan(source, target, state, key, options, report)
    total = sum(size for plan in plans for _, size in plan.todo)
    progress.start("migrate", sum(len(plan.todo) for plan in plans), total)
    direct = _same_store(source, target)
    for plan in plans:
        folder = plan.folder
        if options.dry_run:
            report.new += len(plan.todo)
            report.bytes += sum(size for _, size in plan.todo)
            continue
        await target.prepare(folder.name, folder.special_use)
        for batch in batches(plan.todo):
            uids = [uid for uid, _ in batch]
            before = await target.uidnext(folder.name)
            if direct is not None:
                # The sizes of what exists now: one expunged since the plan is not expected.
                rows = await direct.store.fetch(folder.mailbox_id, uids, FetchField.SIZE)
                entries = [(row.uid, row.size) for row in rows]
                state.pending(key, folder.key, Pending(uids[-1], before, tuple(entries)))
                mailbox = await direct.mailbox(folder.name)
                result = await direct.store.copy(folder.mailbox_id, uids, mailbox.id)
                copied = set(result.source_uids)
                octets = sum(size for uid, size in entries if uid in copied)
                count = len(copied)
            else:
                items = await source.read(folder, uids)
                entries = [(uid, len(item.raw)) for uid, item in items]
                state.pending(key, folder.key, Pending(uids[-1], before, tuple(entries)))
                if items:
                    await target.append(folder.name, [item for _, item in items])
                octets = sum(size for _, size in entries)
                count = len(items)
            state.done(key, folder.key, uids[-1])
            report.new += count
            report.bytes += octets
            progress.advance(count, octets)
    report.folders = target.created
    progress.finish()
    return report


def _same_store(source: Source, target: Target) -> StoreTarget | None:
    """The target, when source and target are accounts of one store (copy, do not read)."""
    if isinstance(source, StoreSource) and isinstance(target, StoreTarget):
        return target if source.store is target.store else None
    return None


async def migrate_imap(
    client: ImapClient,
    store: Store,
    address: str,
    state: MigrationState,
    source: str,
    options: MigrateOptions,
    progress: Progress | None = None,
) -> RunReport:
    """IMAP → mailkeep account (``source`` names the IMAP end in the state: keep it stable
    between runs, e.g. ``user@host:port``)."""
    return await migrate(
        ImapSource(client, source), await StoreTarget.open(store, address), state, options, progress
    )


async def _plan(
    source: Source,
    target: Target,
    state: MigrationState,
    key: str,
    options: MigrateOptions,
    report: RunReport,
) -> list[_Plan]:
    plans = []
    for folder in sorted(await source.folders(), key=lambda f: (f.name != "INBOX", f.name)):
        if not any(fnmatch.fnmatchcase(folder.name, p) for p in options.folders):
            continue
        known_validity, last_uid, pending = state.get(key, folder.key)
        if known_validity != folder.uidvalidity:
            if known_validity:
                report.notes.append(f"{folder.name}: UIDVALIDITY changed, copying it again")
            last_uid = 0
            if not options.dry_run:
                state.reset(key, folder.key, folder.uidvalidity)
        elif pending is not None:
            last_uid = await _settle(target, folder.name, pending, last_uid)
            if not options.dry_run:
                state.done(key, folder.key, last_uid)
        plans.append(_Plan(folder, await source.sizes_after(folder, last_uid)))
    return plans


async def _settle(target: Target, name: str, pending: Pending, last_uid: int) -> int:
    """The last source UID known copied, after a run that stopped inside ``pending``."""
    arrived = await target.sizes_from(name, pending.uidnext)
    expected = [size for _, size in pending.entries]
    if arrived is None or not expected:
        return last_uid
    if target.atomic:  # all or nothing: committed if every size is there
        missing = Counter(expected) - Counter(arrived)
        return pending.last if not missing else last_uid
    found = _in_order(expected, arrived)
    if found == len(expected):
        return pending.last
    uid = pending.entries[found - 1][0] if found else None
    return uid if uid is not None else last_uid


def _in_order(expected: Sequence[int], arrived: Sequence[int]) -> int:
    """How many of ``expected`` (from the first) appear in order within ``arrived``."""
    k = 0
    for size in arrived:
        if k < len(expected) and size == expected[k]:
            k += 1
    return k


def slash_name(entry: ListEntry) -> str:
    """A LIST answer's name in ``/`` form; INBOX spelled so."""
    if entry.name.upper() == "INBOX":
        return "INBOX"
    if entry.delimiter and entry.delimiter != SEPARATOR:
        return canonical(SEPARATOR.join(entry.name.split(entry.delimiter)))
    return canonical(entry.name)
