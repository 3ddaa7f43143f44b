"""Moving mail into and out of a mailkeep account through the store interface:
``mailkeep import maildir|mbox PATH --to ADDRESS`` and
``mailkeep export ADDRESS maildir|mbox PATH``; ``StoreWriter`` is shared with ``migrate``.

Maildir: the Maildir++ layout of ``maildir.py`` (root = INBOX, ``.A.B`` = ``A/B``); a plain
Maildir without subfolders is INBOX. Flags from the info letters, INTERNALDATE from the file's
mtime, both ways.

mbox (mboxrd: ``>From`` lines quoted on export and unquoted on import): a file is one
folder (INBOX unless ``folder`` names another); a directory holds one mbox file per folder,
nested directories for the hierarchy (mutt's layout). A folder that has both messages and
subfolders is written as ``NAME.mbox`` beside the directory ``NAME/``; on import a
``.mbox`` suffix is dropped from folder names. Flags are kept in ``Status``
(``R`` seen, ``O`` old) and ``X-Status`` (``A`` answered, ``F`` flagged, ``D`` deleted,
``T`` draft) as mutt writes them; INTERNALDATE from the ``From `` line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from mailkeep.client import flagmap
from mailkeep.client.maildir import INBOX, MaildirStore
from mailkeep.client.mbox import read_mbox, write_message
from mailkeep.client.report import NoProgress, Progress, RunReport
from mailkeep.errors import NotFound
from mailkeep.mail.flags import flag_names, split_flags
from mailkeep.mail.message import parse
from mailkeep.store.api import Account, FetchField, Mailbox, NewMessage, Store
from mailkeep.store.names import SEPARATOR, canonical

BATCH_MESSAGES = 200
BATCH_OCTETS = 32 * 1024 * 1024
SPECIAL_USE = ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", "\\All", "\\Flagged")


@dataclass(frozen=True)
class Item:
    """One message to store: raw bytes, IMAP flag names, INTERNALDATE."""

    raw: bytes
    flags: tuple[str, ...]
    internaldate: datetime | None


class StoreWriter:
    """Appends messages into one account, a batch per store transaction."""

    def __init__(self, store: Store, account: Account) -> None:
        self.store = store
        self.account = account
        self._mailboxes: dict[str, Mailbox] = {}

    @classmethod
    async def open(cls, store: Store, address: str) -> StoreWriter:
        account = await store.get_account(address)
        if account is None:
            raise NotFound(f"no mailkeep account {address} (create it with 'mailkeep user add')")
        return cls(store, account)

    async def mailbox(self, name: str, special_use: str | None = None) -> Mailbox:
        name = canonical(name)
        if name in self._mailboxes:
            return self._mailboxes[name]
        found = await self.store.get_mailbox(self.account.id, name)
        if found is None:
            parts = name.split(SEPARATOR)
            for depth in range(1, len(parts)):  # parents first, as IMAP CREATE would
                parent = SEPARATOR.join(parts[:depth])
                if await self.store.get_mailbox(self.account.id, parent) is None:
                    await self.store.create_mailbox(self.account.id, parent)
            found = await self.store.create_mailbox(self.account.id, name, special_use)
        self._mailboxes[name] = found
        return found

    async def append(self, mailbox: Mailbox, items: list[Item]) -> tuple[int, ...]:
        messages = []
        for item in items:
            system, keywords = split_flags(item.flags)
            messages.append(
                NewMessage(item.raw, parse(item.raw), int(system), keywords, item.internaldate)
            )
        result = await self.store.append(mailbox.id, messages)
        return result.uids


def batches(items: list[tuple[int, int]]) -> Iterator[list[tuple[int, int]]]:
    """Split (id, size) pairs into batches bounded by count and octets."""
    batch: list[tuple[int, int]] = []
    octets = 0
    for item in items:
        if batch and (len(batch) >= BATCH_MESSAGES or octets + item[1] > BATCH_OCTETS):
            yield batch
            batch, octets = [], 0
        batch.append(item)
        octets += item[1]
    if batch:
        yield batch


# --- import ---------------------------------------------------------------------------------


def _maildir_items(root: Path) -> Iterator[tuple[str, Path, str]]:
    """(folder name, file, letters) for every message of a Maildir++ tree."""
    store = MaildirStore(root)
    for folder, box in sorted(store.folders().items()):
        name = "INBOX" if folder == INBOX else SEPARATOR.join(folder)
        for message in sorted(box.messages().values(), key=lambda m: m.key):
            yield name, message.path, message.flags


def _mbox_files(path: Path, folder: str | None) -> Iterator[tuple[str, Path]]:
    if path.is_file():
        yield folder or "INBOX", path
        return
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        relative = file.relative_to(path).with_suffix("") if file.suffix == ".mbox" else None
        name = SEPARATOR.join((relative or file.relative_to(path)).parts)
        prefix = f"{folder}{SEPARATOR}" if folder else ""
        yield prefix + name, file


async def import_mail(
    store: Store,
    address: str,
    kind: str,
    path: Path,
    *,
    folder: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RunReport:
    """Import a Maildir++ tree or mbox file/directory into an account."""
    progress = progress or NoProgress()
    writer = await StoreWriter.open(store, address)
    report = RunReport(dry_run=dry_run)
    pending: dict[str, list[Item]] = {}
    octets: dict[str, int] = {}

    async def flush(name: str) -> None:
        items = pending.pop(name, [])
        octets.pop(name, None)
        if items and not dry_run:
            await writer.append(await writer.mailbox(name), items)

    async def add(name: str, item: Item) -> None:
        report.new += 1
        report.bytes += len(item.raw)
        progress.advance(1, len(item.raw))
        pending.setdefault(name, []).append(item)
        octets[name] = octets.get(name, 0) + len(item.raw)
        if len(pending[name]) >= BATCH_MESSAGES or octets[name] >= BATCH_OCTETS:
            await flush(name)

    if kind == "maildir":
        entries = list(_maildir_items(path))
        progress.start("import", len(entries), sum(p.stat().st_size for _, p, _ in entries))
        for name, file, letters in entries:
            when = datetime.fromtimestamp(file.stat().st_mtime, UTC)
            flags = tuple(flagmap.imap_from_letters(letters))
            target = name if folder is None else f"{folder}{SEPARATOR}{name}"
            await add(target, Item(file.read_bytes(), flags, when))
    elif kind == "mbox":
        files = list(_mbox_files(path, folder))
        progress.start("import", 0, sum(f.stat().st_size for _, f in files))
        for name, file in files:
            for message in read_mbox(file):
                await add(name, Item(message.raw, message.flags, message.date))
    else:
        raise ValueError(f"unknown import format {kind!r}")
    for name in list(pending):
        await flush(name)
    if not dry_run:
        await store.index_pending()
    progress.finish()
    return report


# --- export -----------------------------------------------------------------------------------


async def export_mail(
    store: Store,
    address: str,
    kind: str,
    path: Path,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RunReport:
    """Write every mailbox of an account as Maildir++ or mbox files (one per mailbox)."""
    progress = progress or NoProgress()
    account = await store.get_account(address)
    if account is None:
        raise NotFound(f"no mailkeep account {address}")
    report = RunReport(dry_run=dry_run)
    mailboxes = await store.list_mailboxes(account.id)
    statuses = [await store.mailbox_status(m.id) for m in mailboxes]
    progress.start("export", sum(s.messages for s in statuses), sum(s.size for s in statuses))
    maildirs = MaildirStore(path)
    parents = {m.name.rsplit(SEPARATOR, 1)[0] for m in mailboxes if SEPARATOR in m.name}
    for mailbox in mailboxes:
        snapshot = await store.snapshot(mailbox.id)
        folder = INBOX if mailbox.name == "INBOX" else tuple(mailbox.name.split(SEPARATOR))
        if dry_run:
            report.new += len(snapshot.uids)
            continue
        mbox: IO[bytes] | None = None
        if kind == "maildir":
            box = maildirs.create_folder(folder)
        elif kind == "mbox":
            if mailbox.name in parents and not snapshot.uids:
                continue  # only a directory level
            file = path.joinpath(*mailbox.name.split(SEPARATOR))
            if mailbox.name in parents:  # the name is the children's directory
                file = file.with_name(file.name + ".mbox")
            file.parent.mkdir(parents=True, exist_ok=True)
            mbox = file.open("ab")
        else:
            raise ValueError(f"unknown export format {kind!r}")
        try:
            fields = FetchField.FLAGS | FetchField.INTERNALDATE | FetchField.SIZE | FetchField.BLOB
            for start in range(0, len(snapshot.uids), BATCH_MESSAGES):
                chunk = list(snapshot.uids[start : start + BATCH_MESSAGES])
                for row in await store.fetch(mailbox.id, chunk, fields):
                    reader = await store.open_blob(row.blob)
                    try:
                        raw = await reader.read(0, reader.size)
                    finally:
                        await reader.close()
                    names = flag_names(row.flags)
                    when = row.internaldate.timestamp() if row.internaldate else None
                    if mbox is None:
                        box.deliver(
                            raw,
                            flagmap.letters_from_imap(names),
                            mtime=when,
                            to_new=not names,
                        )
                    else:
                        write_message(mbox, raw, names, row.internaldate)
                    report.new += 1
                    report.bytes += len(raw)
                    progress.advance(1, len(raw))
        finally:
            if mbox is not None:
                mbox.flush()
                os.fsync(mbox.fileno())
                mbox.close()
    progress.finish()
    return report
