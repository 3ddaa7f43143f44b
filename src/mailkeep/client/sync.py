"""``mailkeep sync``: two-way synchronisation of IMAP folders with a local Maildir++ tree.

The state database holds, per folder and message, what both sides agreed on at the end of the
last sync. Each side's changes are what differs from it; both are applied to the other side.

Rules (also in ``mailkeep sync --help``):

- **New messages** go both ways: remote → Maildir (``new/`` when unflagged, ``cur/``
  otherwise, file mtime = INTERNALDATE), local → server with APPEND (flags, INTERNALDATE =
  file mtime), the UID taken from UIDPLUS's APPENDUID.
- **Flags** merge three-way (``flagmap.merge``): a flag set or cleared on one side since the
  last sync is set or cleared on the other; changes on both sides combine. Synced letters:
  S R F T D (``T`` is ``\\Deleted``). IMAP keywords are kept in the state database only.
- **Deletions** win over flag changes: a message deleted on one side is deleted on the other
  (remotely ``\\Deleted`` + ``UID EXPUNGE`` of exactly that UID). A run that would delete
  more than half of a folder's messages (at least 10) asks ``confirm`` first; refused
  deletions are skipped and asked again next time.
- **Folders**: created on one side → created on the other. Renamed locally (same directory
  inode) → RENAME on the server; renamed on the server (same UIDVALIDITY) → renamed locally.
  Deleted on one side → deleted on the other only if the other side has no changes since the
  last sync and ``confirm`` agrees; otherwise the folder is recreated where it was deleted
  (changes win over a folder deletion).
- **UIDVALIDITY change** (the server renumbered the folder): messages are matched again by
  Message-ID and size; matched ones keep their local file, the rest are copied as new.
- **CONDSTORE/QRESYNC** (RFC 7162) when the server offers them and ``use_qresync`` is on: one
  pipelined STATUS per folder tells whether anything changed on the server (nothing to do
  when HIGHESTMODSEQ, UIDNEXT and UIDVALIDITY are as stored and the Maildir is unchanged);
  otherwise SELECT (QRESYNC ...) returns only what changed. Without them (or with
  ``use_qresync=False``): SELECT and ``UID FETCH 1:* (FLAGS)``, compared with the state.
- **Interruption**: a download is recorded with its key before it is written, an upload
  with the mailbox's UIDNEXT before it is sent; the next run finishes or finds them
  (by Message-ID among UIDs from that hint) instead of copying twice. HIGHESTMODSEQ is
  stored only when a folder finished, so an interrupted folder is compared again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from mailkeep.client import flagmap
from mailkeep.client.accounts import Account
from mailkeep.client.errors import ImapError, ProtocolError
from mailkeep.client.imap import ImapClient, MailboxState, QresyncParams
from mailkeep.client.imapwire import Fetch, FileLiteral, ListEntry, Status, format_uid_set
from mailkeep.client.login import open_imap
from mailkeep.client.maildir import INBOX, FolderName, Maildir, MaildirStore, MessageFile
from mailkeep.client.report import NoProgress, Progress, RunReport
from mailkeep.client.statedb import FolderRow, MessageRow, StateDB

MASS_DELETE_FRACTION = 0.5
MASS_DELETE_MINIMUM = 10
FETCH_ITEMS = "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class SyncOptions:
    folders: tuple[str, ...] = ("*",)
    """fnmatch patterns over folder paths written with ``/`` (``INBOX``, ``Lists/*``)."""
    use_qresync: bool = True
    """Use CONDSTORE/QRESYNC when offered; False forces the UID/flag comparison."""
    dry_run: bool = False
    confirm: Callable[[str], bool] | None = None
    """Asked before a folder deletion or a mass deletion; None means yes."""


@dataclass
class _Remote:
    name: str
    entry: ListEntry
    status: dict[str, int] = field(default_factory=dict)


async def sync_account(
    account: Account,
    password: str,
    options: SyncOptions,
    progress: Progress | None = None,
) -> RunReport:
    store = MaildirStore(account.local)
    store.ensure()
    with StateDB(account.state) as state:
        client = await open_imap(account, password, spool_dir=str(account.local / "tmp"))
        try:
            syncer = Syncer(client, store, state, options, progress or NoProgress())
            report = await syncer.run()
        except BaseException:
            await client.close()
            raise
        await client.logout()
        return report


class Syncer:
    def __init__(
        self,
        client: ImapClient,
        store: MaildirStore,
        state: StateDB,
        options: SyncOptions,
        progress: Progress,
    ) -> None:
        self.client = client
        self.store = store
        self.state = state
        self.options = options
        self.progress = progress
        self.report = RunReport(dry_run=options.dry_run)
        self.qresync = False
        self.delimiter: str | None = "/"

    # --- whole account ------------------------------------------------------------------

    async def run(self) -> RunReport:
        if self.options.use_qresync and self.client.has("QRESYNC"):
            self.qresync = "QRESYNC" in await self.client.enable("QRESYNC")
        remote = await self._list_remote()
        await self._sync_folders(remote)
        remote = await self._list_remote()
        await self._status_all(remote)
        if self.options.dry_run:
            self._count_unpaired(remote)
        for row in self.state.folders():
            if row.remote not in remote:
                continue  # dry run, or a folder we could not create
            box = Maildir(self._local_path(row.local))
            if not box.exists():
                continue
            try:
                await self._sync_folder(row, remote[row.remote], box)
            except ImapError as exc:
                self.report.skipped.append(f"{row.remote}: {exc}")
        return self.report

    def _count_unpaired(self, remote: dict[str, _Remote]) -> None:
        """Dry run: folders not paired yet would be copied whole."""
        rows = self.state.folders()
        known_remote = {row.remote for row in rows}
        known_local = {row.local for row in rows}
        for name, entry in remote.items():
            if name not in known_remote:
                self.report.new += entry.status.get("MESSAGES", 0)
        for folder, box in self.store.folders().items():
            if self._selected(folder) and self.store.dir_name(folder) not in known_local:
                self.report.new += len(box.messages())

    def _selected(self, folder: FolderName) -> bool:
        path = "/".join(folder)
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in self.options.folders)

    def _folder_of(self, remote_name: str) -> FolderName:
        if remote_name.upper() == "INBOX":
            return INBOX
        if self.delimiter:
            return tuple(remote_name.split(self.delimiter))
        return (remote_name,)

    def _remote_of(self, folder: FolderName) -> str | None:
        if folder == INBOX:
            return "INBOX"
        if self.delimiter is None:
            return folder[0] if len(folder) == 1 else None
        if any(self.delimiter in part for part in folder):
            return None
        return self.delimiter.join(folder)

    def _local_path(self, dir_name: str) -> Path:
        return self.store.root / dir_name if dir_name else self.store.root

    async def _list_remote(self) -> dict[str, _Remote]:
        entries = await self.client.list_mailboxes("", "*")
        for entry in entries:
            if entry.delimiter is not None:
                self.delimiter = entry.delimiter
                break
        return {
            e.name: _Remote(e.name, e)
            for e in entries
            if e.selectable and self._selected(self._folder_of(e.name))
        }

    async def _status_all(self, remote: dict[str, _Remote]) -> None:
        """One pipelined STATUS per folder (RFC 9051 6.3.11)."""
        items = ["UIDVALIDITY", "UIDNEXT", "MESSAGES"]
        if self.qresync:
            items.append("HIGHESTMODSEQ")
        pending = []
        for entry in remote.values():
            pending.append(
                (
                    entry,
                    await self.client.start(
                        b"STATUS",
                        self.client.mailbox_arg(entry.name),
                        ("(" + " ".join(items) + ")").encode(),
                    ),
                )
            )
        for entry, command in pending:
            result = await self.client.finish(command, check=False)
            for response in result.untagged:
                if isinstance(response, Status):
                    entry.status.update(response.items)

    # --- folders ---------------------------------------------------------------------------

    async def _sync_folders(self, remote: dict[str, _Remote]) -> None:
        """Folder creation, renames and deletions, local side first: a local rename
        becomes a server RENAME (which also renames the children on the server), and the
        children are then seen as renamed on the server and follow locally."""
        local = {name: box for name, box in self.store.folders().items() if self._selected(name)}
        new_local = self._new_local(local)
        for row in self.state.folders():
            local_here = Maildir(self._local_path(row.local)).exists()
            if not local_here and row.remote in remote:
                await self._local_folder_gone(row, remote, new_local)
        remote = await self._list_remote()
        known_remote = {row.remote for row in self.state.folders()}
        new_remote = {name: r for name, r in remote.items() if name not in known_remote}
        await self._status_all(new_remote)
        for row in self.state.folders():
            local_here = Maildir(self._local_path(row.local)).exists()
            if local_here and row.remote not in remote:
                await self._remote_folder_gone(row, new_remote)
            elif not local_here and row.remote not in remote and not self.options.dry_run:
                self.state.remove_folder(row.id)
        # Folders new on one side only (or on both, then paired by name).
        local = {name: box for name, box in self.store.folders().items() if self._selected(name)}
        for name, entry in new_remote.items():
            folder = self._folder_of(name)
            dir_name = self.store.dir_name(folder)
            if any(r.local == dir_name for r in self.state.folders()):
                continue
            if folder not in local:
                self.report.folders += 1
            if self.options.dry_run:
                continue
            box = self.store.create_folder(folder)
            self.state.add_folder(entry.name, dir_name, box.inode)
        for folder, box in self._new_local(local).items():
            dir_name = self.store.dir_name(folder)
            remote_name = self._remote_of(folder)
            if remote_name is None:
                self.report.skipped.append(
                    f"local folder {'/'.join(folder)}: its name contains the server's "
                    f"hierarchy delimiter {self.delimiter!r}"
                )
                continue
            if remote_name in new_remote:
                continue  # paired above (dry run)
            self.report.folders += 1
            if self.options.dry_run:
                continue
            if remote_name not in remote:
                with contextlib.suppress(ImapError):  # exists, but unselectable or filtered
                    await self.client.create(remote_name)
                with contextlib.suppress(ImapError):
                    await self.client.subscribe(remote_name)
            self.state.add_folder(remote_name, dir_name, box.inode)

    def _new_local(self, local: dict[FolderName, Maildir]) -> dict[FolderName, Maildir]:
        known = {row.local for row in self.state.folders()}
        return {n: b for n, b in local.items() if self.store.dir_name(n) not in known}

    async def _local_folder_gone(
        self, row: FolderRow, remote: dict[str, _Remote], new_local: dict[FolderName, Maildir]
    ) -> None:
        """The Maildir of a synced folder is missing: renamed (same inode) or deleted."""
        for folder, box in list(new_local.items()):
            if row.inode is not None and box.inode == row.inode:
                new_remote = self._remote_of(folder)
                if new_remote is None or new_remote in remote:
                    break
                self.report.folders += 1
                if not self.options.dry_run:
                    await self.client.rename(row.remote, new_remote)
                    self.state.update_folder(
                        replace(row, remote=new_remote, local=self.store.dir_name(folder))
                    )
                del new_local[folder]
                return
        entry = remote[row.remote]
        await self._status_all({row.remote: entry})
        unchanged = (
            entry.status.get("UIDVALIDITY") == row.uidvalidity
            and entry.status.get("UIDNEXT") == row.uidnext
            and entry.status.get("MESSAGES") == row.messages
            and (not self.qresync or entry.status.get("HIGHESTMODSEQ") == row.highestmodseq)
        )
        if (
            row.remote.upper() != "INBOX"
            and unchanged
            and self._confirm(
                f"Folder {row.remote} was deleted locally: delete it on the server too?"
            )
        ):
            self.report.folders += 1
            if not self.options.dry_run:
                await self.client.delete(row.remote)
                self.state.remove_folder(row.id)
            return
        # Changed on the server since, or not confirmed: bring it back locally.
        self.report.notes.append(f"folder {row.remote}: deleted locally, kept on the server")
        if not self.options.dry_run:
            box = self.store.create_folder(self._folder_of(row.remote))
            self.state.clear_messages(row.id)
            self.state.update_folder(
                replace(row, inode=box.inode, highestmodseq=None, uidvalidity=None)
            )

    async def _remote_folder_gone(self, row: FolderRow, new_remote: dict[str, _Remote]) -> None:
        """A synced folder is missing on the server: renamed (same UIDVALIDITY) or deleted."""
        for name, entry in list(new_remote.items()):
            if row.uidvalidity is not None and entry.status.get("UIDVALIDITY") == row.uidvalidity:
                folder = self._folder_of(name)
                target = self.store.folder(folder)
                if target.path.exists():
                    break
                self.report.folders += 1
                if not self.options.dry_run:
                    self.store.rename_folder(self.store.folder_from_dir(row.local), folder)
                    self.state.update_folder(
                        replace(row, remote=name, local=self.store.dir_name(folder))
                    )
                del new_remote[name]
                return
        folder = self.store.folder_from_dir(row.local)
        box = self.store.folder(folder)
        rows = self.state.messages(row.id)
        messages = box.messages()
        unchanged = set(messages) == set(rows) and all(
            flagmap.synced(messages[k].flags) == r.flags for k, r in rows.items()
        )
        if (
            folder != INBOX
            and unchanged
            and self._confirm(
                f"Folder {row.remote} was deleted on the server: delete {box.path} too?"
            )
        ):
            self.report.folders += 1
            if not self.options.dry_run:
                self.store.delete_folder(folder)
                self.state.remove_folder(row.id)
            return
        self.report.notes.append(f"folder {row.remote}: deleted on the server, recreated")
        if not self.options.dry_run:
            await self.client.create(row.remote)
            self.state.clear_messages(row.id)
            self.state.update_folder(replace(row, uidvalidity=None, highestmodseq=None))

    def _count(self, name: str) -> None:
        self.report.details[name] = self.report.details.get(name, 0) + 1

    def _confirm(self, question: str) -> bool:
        return self.options.confirm is None or self.options.confirm(question)

    # --- one folder --------------------------------------------------------------------------

    async def _sync_folder(self, row: FolderRow, remote: _Remote, box: Maildir) -> None:
        local = box.messages()
        rows = self.state.messages(row.id)
        status = remote.status
        local_changed = _local_changes(local, rows)
        if (
            self.qresync
            and not local_changed
            and row.uidvalidity is not None
            and status.get("UIDVALIDITY") == row.uidvalidity
            and status.get("UIDNEXT") == row.uidnext
            and status.get("HIGHESTMODSEQ") == row.highestmodseq
        ):
            self._count("folders_unchanged")
            return  # nothing changed on either side: the STATUS was the only round trip
        self._count("folders_selected")
        folder = FolderSync(self, row, remote.name, box, local, rows)
        await folder.run()


def _local_changes(local: dict[str, MessageFile], rows: dict[str, MessageRow]) -> bool:
    if set(local) != set(rows):
        return True
    return any(
        r.state != "synced" or flagmap.synced(local[k].flags) != r.flags for k, r in rows.items()
    )


def message_id(head: bytes) -> str | None:
    """The Message-ID field of a header block, unfolded, or None."""
    end = head.find(b"\r\n\r\n")
    if end < 0:
        end = head.find(b"\n\n")
    match = _MESSAGE_ID.search(head if end < 0 else head[:end])
    if not match:
        return None
    value = re.sub(rb"\s+", b"", match.group(1))
    return value.decode("utf-8", "replace") or None


def _file_message_id(path: Path) -> str | None:
    with open(path, "rb") as source:
        return message_id(source.read(64 * 1024))


class FolderSync:
    """Synchronise one folder pair (see the module docstring for the rules)."""

    def __init__(
        self,
        syncer: Syncer,
        row: FolderRow,
        remote_name: str,
        box: Maildir,
        local: dict[str, MessageFile],
        rows: dict[str, MessageRow],
    ) -> None:
        self.s = syncer
        self.client = syncer.client
        self.state = syncer.state
        self.report = syncer.report
        self.dry = syncer.options.dry_run
        self.row = row
        self.remote_name = remote_name
        self.box = box
        self.local = local
        self.rows = rows
        self.skipped_deletions = False
        self._uploaded = False

    async def run(self) -> None:
        row = self.row
        qresync = None
        if self.s.qresync and row.uidvalidity is not None and row.highestmodseq is not None:
            # No known-uids: servers limit the reported FETCHes to them (RFC 7162 3.2.5),
            # which would hide new messages.
            qresync = QresyncParams(row.uidvalidity, row.highestmodseq)
        mailbox = await self.client.select(
            self.remote_name, readonly=self.dry, condstore=self.s.qresync, qresync=qresync
        )
        if mailbox.uidvalidity is None:
            raise ProtocolError(f"{self.remote_name}: the server sent no UIDVALIDITY")
        start_modseq = mailbox.highestmodseq if not mailbox.nomodseq else None
        if row.uidvalidity is not None and mailbox.uidvalidity != row.uidvalidity:
            await self._uidvalidity_changed(mailbox)
            qresync = None
        if qresync is not None:
            changed = {f.uid: f for f in mailbox.changed if f.uid is not None}
            vanished = set(mailbox.vanished)
            complete = False
        else:
            fetches = await self.client.uid_fetch("1:*", "(UID FLAGS)") if mailbox.exists else []
            changed = {f.uid: f for f in fetches if f.uid is not None}
            known = {r.uid for r in self.rows.values() if r.uid is not None}
            vanished = known - set(changed)
            complete = True
        await self._resume_pending(mailbox)
        made_remote_changes = await self._reconcile(changed, vanished, complete)
        await self._upload_new(mailbox)
        made_remote_changes = made_remote_changes or self._uploaded
        await self._finish(mailbox, start_modseq, made_remote_changes)
        if not self.dry:
            await self.client.unselect()

    # --- pieces -------------------------------------------------------------------------------

    async def _uidvalidity_changed(self, mailbox: MailboxState) -> None:
        """RFC 9051 2.3.1.1: the old UIDs mean nothing now. Re-pair by Message-ID + size."""
        self.report.notes.append(
            f"{self.remote_name}: UIDVALIDITY changed, messages matched again by Message-ID"
        )
        remote: dict[tuple[str | None, int], list[int]] = {}
        if mailbox.exists:
            for fetch in await self.client.uid_fetch(
                "1:*", "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
            ):
                head = fetch.section("BODY[HEADER.FIELDS (MESSAGE-ID)]")
                data = head.read() if isinstance(head, FileLiteral) else head or b""
                remote.setdefault((message_id(data), fetch.size or 0), []).append(fetch.uid or 0)
        new_rows: dict[str, MessageRow] = {}
        for key, row in self.rows.items():
            message = self.local.get(key)
            if message is None or row.state != "synced":
                continue
            candidates = remote.get((_file_message_id(message.path), message.size))
            if candidates:
                new_rows[key] = replace(row, uid=candidates.pop(0))
        self.rows = new_rows
        if not self.dry:
            with self.state.transaction():
                self.state.clear_messages(self.row.id)
                for new_row in new_rows.values():
                    self.state.put_message(new_row)
        self.row = replace(self.row, uidvalidity=mailbox.uidvalidity, highestmodseq=None)

    async def _resume_pending(self, mailbox: MailboxState) -> None:
        """Finish what an interrupted run left: downloads whose file exists are kept;
        uploads are looked for on the server from the UIDNEXT noted before them."""
        for key, row in list(self.rows.items()):
            if row.state == "downloading":
                message = self.local.get(key)
                if message is not None and not self.dry:
                    self._put(replace(row, state="synced", flags=flagmap.synced(message.flags)))
                else:
                    del self.rows[key]
                    if not self.dry:
                        self.state.remove_messages(self.row.id, [key])
            elif row.state == "appending":
                message = self.local.get(key)
                uid = None
                if message is not None and row.hint is not None and mailbox.exists:
                    uid = await self._find_on_server(message, row.hint)
                if uid is not None and message is not None:
                    self._put(replace(row, uid=uid, state="synced"))
                else:
                    del self.rows[key]  # not there: it will be uploaded as new
                    if not self.dry:
                        self.state.remove_messages(self.row.id, [key])

    async def _find_on_server(self, message: MessageFile, since_uid: int) -> int | None:
        wanted = _file_message_id(message.path)
        fetches = await self.client.uid_fetch(
            f"{since_uid}:*", "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
        )
        known = {r.uid for r in self.rows.values() if r.uid is not None}
        for fetch in fetches:
            head = fetch.section("BODY[HEADER.FIELDS (MESSAGE-ID)]")
            data = head.read() if isinstance(head, FileLiteral) else head or b""
            if (
                fetch.uid is not None
                and fetch.uid >= since_uid
                and fetch.uid not in known
                and fetch.size == message.size
                and message_id(data) == wanted
            ):
                return fetch.uid
        return None

    def _set_local_flags(self, message: MessageFile, letters: str) -> MessageFile | None:
        """Rename to carry the merged flags; a mail reader may have renamed the file
        since the scan (mutt moving new/ to cur/), so look it up again once."""
        extra = "".join(c for c in message.flags if c not in flagmap.SYNCED_LETTERS)
        try:
            return self.box.set_flags(message, letters + extra)
        except FileNotFoundError:
            again = self.box.get(message.key)
            return None if again is None else self.box.set_flags(again, letters + extra)

    def _put(self, row: MessageRow) -> None:
        self.rows[row.key] = row
        if not self.dry:
            self.state.put_message(row)

    async def _reconcile(
        self, changed: dict[int, Fetch], vanished: set[int], complete: bool
    ) -> bool:
        """Flags and deletions of known messages, then downloads of new remote ones.
        Returns whether the server was changed."""
        by_uid = {r.uid: r for r in self.rows.values() if r.uid is not None and r.state == "synced"}
        local_deleted: list[MessageRow] = []
        remote_deleted: list[MessageRow] = []
        stores: dict[tuple[str, str], list[int]] = {}
        updates: list[MessageRow] = []
        for uid, row in by_uid.items():
            message = self.local.get(row.key)
            if uid in vanished:
                remote_deleted.append(row)
                continue
            if message is None:
                local_deleted.append(row)
                continue
            fetch = changed.get(uid)
            remote_flags = flagmap.letters_from_imap(fetch.flags or ()) if fetch else row.flags
            keywords = flagmap.keywords_from_imap(fetch.flags or ()) if fetch else row.keywords
            local_flags = flagmap.synced(message.flags)
            merged = flagmap.merge(row.flags, local_flags, remote_flags)
            if merged != local_flags and not self.dry:
                renamed = self._set_local_flags(message, merged)
                if renamed is None:  # deleted by a mail reader meanwhile: next run
                    continue
                self.local[row.key] = renamed
            for letter in set(merged) - set(remote_flags):
                stores.setdefault(("+FLAGS", letter), []).append(uid)
            for letter in set(remote_flags) - set(merged):
                stores.setdefault(("-FLAGS", letter), []).append(uid)
            if merged != local_flags or merged != remote_flags:
                self.report.changed += 1
            if merged != row.flags or keywords != row.keywords:
                updates.append(replace(row, flags=merged, keywords=keywords))
        total = max(len(by_uid), 1)
        deletions = len(local_deleted) + len(remote_deleted)
        if (
            deletions >= MASS_DELETE_MINIMUM
            and deletions / total > MASS_DELETE_FRACTION
            and not self.s._confirm(
                f"{self.remote_name}: delete {deletions} of {len(by_uid)} messages "
                f"({len(local_deleted)} on the server, {len(remote_deleted)} locally)?"
            )
        ):
            self.report.skipped.append(f"{self.remote_name}: {deletions} deletions not confirmed")
            self.skipped_deletions = True
            local_deleted, remote_deleted = [], []
        # Remote → local deletions.
        for row in remote_deleted:
            message = self.local.pop(row.key, None)
            if message is not None and not self.dry:
                self.box.remove(message)
            self.report.deleted += message is not None
        # Local → remote deletions: exactly these UIDs (RFC 4315 UID EXPUNGE).
        remote_changed = False
        if local_deleted:
            self.report.deleted += len(local_deleted)
            if not self.dry:
                doomed = format_uid_set(r.uid for r in local_deleted if r.uid is not None)
                await self.client.uid_store(doomed, "+FLAGS", ["\\Deleted"])
                if self.client.has("UIDPLUS"):
                    await self.client.uid_expunge(doomed)
                else:
                    self.report.skipped.append(
                        f"{self.remote_name}: no UIDPLUS, deleted messages only marked \\Deleted"
                    )
                remote_changed = True
        if not self.dry:
            gone = [r.key for r in local_deleted + remote_deleted]
            if gone:
                self.state.remove_messages(self.row.id, gone)
            for row in local_deleted + remote_deleted:
                self.rows.pop(row.key, None)
            # Flag pushes, pipelined.
            pending = []
            for (operation, letter), uids in sorted(stores.items()):
                pending.append(
                    await self.client.start(
                        b"UID STORE",
                        format_uid_set(uids).encode(),
                        f"{operation}.SILENT ({flagmap.LETTER_TO_FLAG[letter]})".encode(),
                    )
                )
            for command in pending:
                await self.client.finish(command)
            remote_changed = remote_changed or bool(pending)
            with self.state.transaction():
                for row in updates:
                    self.rows[row.key] = row
                    self.state.put_message(row)
        # New remote messages.
        known = {r.uid for r in self.rows.values() if r.uid is not None}
        known.update(r.uid for r in local_deleted if r.uid is not None)
        fresh = sorted(uid for uid in changed if uid not in known and uid not in vanished)
        await self._download(fresh)
        return remote_changed

    async def _download(self, uids: list[int]) -> None:
        if not uids:
            return
        self.report.new += len(uids)
        if self.dry:
            return
        keys = {uid: Maildir.new_key() for uid in uids}
        with self.state.transaction():
            for uid, key in keys.items():
                self.state.put_message(
                    MessageRow(self.row.id, key, uid, "", "", "downloading", None)
                )
        self.s.progress.start(self.remote_name, len(uids), 0)

        def store(fetch: Fetch) -> None:
            try:
                uid = fetch.uid
                if uid is None or uid not in keys:
                    return
                body = fetch.section()
                if body is None:
                    return  # expunged meanwhile: the next run forgets it
                flags = fetch.flags or ()
                letters = flagmap.letters_from_imap(flags)
                when = fetch.internaldate
                if isinstance(body, FileLiteral):

                    def write(out: IO[bytes], literal: FileLiteral = body) -> None:
                        literal.copy_to(out)

                    message = self.box.deliver(
                        write,
                        letters,
                        mtime=when.timestamp() if when else None,
                        key=keys[uid],
                        to_new=not letters,
                    )
                    size = body.size
                else:
                    message = self.box.deliver(
                        body,
                        letters,
                        mtime=when.timestamp() if when else None,
                        key=keys[uid],
                        to_new=not letters,
                    )
                    size = len(body)
                row = MessageRow(
                    self.row.id,
                    keys[uid],
                    uid,
                    letters,
                    flagmap.keywords_from_imap(flags),
                    "synced",
                    None,
                )
                self.state.put_message(row)
                self.rows[row.key] = row
                self.local[row.key] = message
                self.report.bytes += size
                self.s.progress.advance(1, size)
            finally:
                fetch.close()

        await self.client.uid_fetch_pipelined(uids, FETCH_ITEMS, store)
        self.s.progress.finish()

    async def _upload_new(self, mailbox: MailboxState) -> None:
        known = set(self.rows)
        fresh = sorted(
            (m for key, m in self.local.items() if key not in known), key=lambda m: m.mtime
        )
        if not fresh:
            return
        self.report.new += len(fresh)
        if self.dry:
            return
        self._uploaded = True
        hint = mailbox.uidnext or 1
        for message in fresh:
            letters = flagmap.synced(message.flags)
            self._put(MessageRow(self.row.id, message.key, None, letters, "", "appending", hint))
            size = message.size
            with message.path.open("rb") as source:
                result = await self.client.append(
                    self.remote_name,
                    source,
                    size=size,
                    flags=flagmap.imap_from_letters(letters),
                    internaldate=datetime.fromtimestamp(message.mtime, UTC),
                )
            uid = result.uid if result.uidvalidity == mailbox.uidvalidity else None
            if uid is None:
                uid = await self._find_on_server(message, hint)
            if uid is not None:
                self._put(MessageRow(self.row.id, message.key, uid, letters, "", "synced", None))
                hint = max(hint, uid + 1)
            self.report.bytes += size

    async def _finish(
        self, mailbox: MailboxState, start_modseq: int | None, made_changes: bool
    ) -> None:
        """Store what the next run compares against (see the module docstring)."""
        if self.dry:
            return
        modseq = start_modseq
        uids = [r.uid for r in self.rows.values() if r.uid is not None]
        uidnext = max([mailbox.uidnext or 1, *(u + 1 for u in uids)])
        if self.s.qresync and start_modseq is not None and made_changes:
            # Our own changes raised HIGHESTMODSEQ: see everything since the start. If it is
            # all ours (flags as we stored them, no unknown UIDs, nothing else vanished),
            # the state is current up to the highest MODSEQ seen.
            mailbox.vanished.clear()
            fetches = await self.client.uid_fetch(
                "1:*", "(UID FLAGS)", changedsince=start_modseq, vanished=True
            )
            by_uid = {r.uid: r for r in self.rows.values() if r.uid is not None}
            clean = not mailbox.vanished
            highest = max([start_modseq, mailbox.highestmodseq or 0])
            for fetch in fetches:
                row = by_uid.get(fetch.uid or 0)
                if row is None or flagmap.letters_from_imap(fetch.flags or ()) != row.flags:
                    clean = False
                highest = max(highest, fetch.modseq or 0)
            if clean:
                modseq = highest
        elif not self.s.qresync:
            modseq = None
        if self.skipped_deletions:
            modseq = self.row.highestmodseq
        self.row = replace(
            self.row,
            uidvalidity=mailbox.uidvalidity,
            highestmodseq=modseq,
            uidnext=uidnext,
            messages=len(uids),
            inode=self.box.inode,
        )
        self.state.update_folder(self.row)


async def watch(
    account: Account,
    password: str,
    options: SyncOptions,
    interval: float,
    on_report: Callable[[RunReport], None],
    runs: int | None = None,
) -> None:
    """``--watch``: sync, then IDLE (RFC 2177) on INBOX until the server reports a change or
    ``interval`` seconds pass (local changes are picked up then), and sync again."""
    count = 0
    while True:
        on_report(await sync_account(account, password, options))
        count += 1
        if runs is not None and count >= runs:
            return
        await _wait_for_change(account, password, interval)


async def _wait_for_change(account: Account, password: str, interval: float) -> None:
    client = await open_imap(account, password)
    try:
        await client.select("INBOX", readonly=True)
        if not client.has("IDLE"):
            await asyncio.sleep(interval)
            return
        # RFC 2177: re-issue IDLE at least every 29 minutes.
        async with client.idle() as events:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(events.get(), min(interval, 29 * 60))
    finally:
        await client.logout()
