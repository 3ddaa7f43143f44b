"""``mailkeep fetch``: download new POP3 messages into the local Maildir, then apply the
leave-on-server policy.

A message is *new* when its UIDL (RFC 1939 7) is not in the state database. New messages go
to the Maildir's ``new/`` (so mail readers announce them). Policies (combinable):

- ``delete`` (the default when no other is chosen): delete from the server what is safely
  stored locally, at the end of the run that downloaded it (or any later run).
- ``leave``: never delete.
- ``days:N``: delete N days after *our download* (not after delivery), as recorded in the
  state database; ``--delete-after N``.
- ``trashed``: delete what the user deleted locally (the file is gone, or carries the
  Maildir ``T`` flag) at the next run; ``--delete-when-trashed``.

Safety: a DELE is only sent for a message whose complete content was written, fsynced and
renamed into the Maildir by an earlier step (header-only downloads are never deleted on the
server); deletions take effect only when the server accepts QUIT (RFC 1939 6), and rows are
forgotten only then. A download interrupted at any point is redone under the same key at the
next run, so no message is stored twice.

``--headers-only`` stores ``TOP n 0`` (header and blank line). A later run completes chosen
messages: ``complete`` names UIDLs or Maildir keys (or ``all``); ``complete_flagged``
completes those the user flagged (``F``) in the mail reader.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from mailkeep.client.accounts import Account
from mailkeep.client.errors import ClientConfigError, Pop3Error, ProtocolError
from mailkeep.client.login import open_pop3
from mailkeep.client.maildir import INBOX, Maildir, MaildirStore, MessageFile
from mailkeep.client.pop3 import Pop3Client
from mailkeep.client.report import NoProgress, Progress, RunReport
from mailkeep.client.statedb import Pop3Row, StateDB

DAY = 86400.0


@dataclass(frozen=True)
class FetchPolicy:
    leave_on_server: bool = False
    delete_after_days: float | None = None
    delete_when_trashed: bool = False

    @property
    def delete_after_download(self) -> bool:
        return not (
            self.leave_on_server or self.delete_after_days is not None or self.delete_when_trashed
        )

    @classmethod
    def parse(cls, words: tuple[str, ...] | list[str]) -> FetchPolicy:
        """From the accounts file: ``delete``, ``leave``, ``days:N``, ``trashed``."""
        leave = False
        days: float | None = None
        trashed = False
        for word in words:
            word = word.strip().lower()
            if word == "leave":
                leave = True
            elif word == "delete":
                pass
            elif word == "trashed":
                trashed = True
            elif word.startswith("days:"):
                try:
                    days = float(word[5:])
                except ValueError:
                    raise ClientConfigError(f"policy {word!r}: days:N needs a number") from None
            else:
                raise ClientConfigError(
                    f"unknown POP3 policy {word!r} (delete, leave, days:N, trashed)"
                )
        return cls(leave, days, trashed)


@dataclass(frozen=True)
class FetchOptions:
    policy: FetchPolicy = field(default_factory=FetchPolicy)
    headers_only: bool = False
    complete: frozenset[str] = frozenset()
    """UIDLs or Maildir keys of header-only messages to download in full; ``all``."""
    complete_flagged: bool = False
    dry_run: bool = False
    clock: Callable[[], float] = time.time
    """The current time (tests pass a simulated clock for ``--delete-after``)."""


async def fetch_account(
    account: Account,
    password: str,
    options: FetchOptions,
    progress: Progress | None = None,
) -> RunReport:
    """One fetch run against the account's POP3 server."""
    store = MaildirStore(account.local)
    store.ensure()
    with StateDB(account.state) as state:
        client = await open_pop3(account, password)
        try:
            report = await _fetch(client, store.folder(INBOX), state, options, progress)
        except BaseException:
            # Abandon the session: without QUIT the server deletes nothing (RFC 1939 6).
            await client.close()
            raise
        return report


async def _fetch(
    client: Pop3Client,
    inbox: Maildir,
    state: StateDB,
    options: FetchOptions,
    progress: Progress | None,
) -> RunReport:
    progress = progress or NoProgress()
    report = RunReport(dry_run=options.dry_run)
    try:
        listing = await client.uidl()
    except Pop3Error as exc:
        raise ProtocolError(
            f"{client.endpoint.host} does not support UIDL, which fetch needs to tell new "
            f"messages from old ones ({exc.text})"
        ) from exc
    sizes = await client.list_sizes()
    rows = state.pop3_rows()
    on_server = set(listing.values())
    # Rows of messages no longer on the server: deleted by us (QUIT lost?) or by someone.
    gone = [uidl for uidl in rows if uidl not in on_server]
    if gone and not options.dry_run:
        state.pop3_forget(gone)
    local = inbox.messages()

    todo: list[tuple[int, str, bool, str | None]] = []  # number, uidl, headers only, key
    for number, uidl in sorted(listing.items()):
        row = rows.get(uidl)
        if row is None:
            todo.append((number, uidl, options.headers_only, None))
        elif row.pending:
            todo.append((number, uidl, row.headers_only or options.headers_only, row.key))
        elif row.headers_only and not options.headers_only and _wants_complete(row, local, options):
            todo.append((number, uidl, False, row.key))
    total = sum(sizes.get(n, 0) for n, _, headers, _ in todo if not headers)
    progress.start("fetch", len(todo), total)
    now = options.clock()
    for number, uidl, headers_only, key in todo:
        existing = local.get(key) if key else None
        completing = key is not None and uidl in rows and not rows[uidl].pending
        if options.dry_run:
            report.changed += completing
            report.new += not completing
            report.bytes += 0 if headers_only else sizes.get(number, 0)
            continue
        written = await _download(
            client, inbox, state, number, uidl, headers_only, key, now, existing
        )
        report.bytes += written
        if completing:
            report.changed += 1
        else:
            report.new += 1
        progress.advance(1, written)
    progress.finish()

    # Deletions: decided from the state after this run's downloads.
    rows = state.pop3_rows()
    local = inbox.messages()
    deleted: list[str] = []
    for number, uidl in sorted(listing.items()):
        row = rows.get(uidl)
        if row is None or row.pending or row.headers_only:
            continue  # not (fully) stored locally: never deleted on the server
        if _should_delete(row.key, row.downloaded_at, local, options, now):
            if not options.dry_run:
                await client.dele(number)
            deleted.append(uidl)
    report.deleted = len(deleted)
    if options.dry_run:
        await client.rset()
    await client.quit()
    if deleted and not options.dry_run:
        state.pop3_forget(deleted)
    return report


def _wants_complete(row: Pop3Row, local: dict[str, MessageFile], options: FetchOptions) -> bool:
    """Header-only messages the user asked for in full (only while still kept locally)."""
    message = local.get(row.key)
    if message is None:
        return False
    if {"all", row.uidl, row.key} & options.complete:
        return True
    return options.complete_flagged and "F" in message.flags


def _should_delete(
    key: str, downloaded_at: float, local: dict[str, MessageFile], options: FetchOptions, now: float
) -> bool:
    policy = options.policy
    if policy.delete_after_download:
        return True
    if (
        policy.delete_after_days is not None
        and now - downloaded_at >= policy.delete_after_days * DAY
    ):
        return True
    if policy.delete_when_trashed:
        message = local.get(key)
        return message is None or "T" in message.flags
    return False


async def _download(
    client: Pop3Client,
    inbox: Maildir,
    state: StateDB,
    number: int,
    uidl: str,
    headers_only: bool,
    key: str | None,
    now: float,
    existing: MessageFile | None,
) -> int:
    """Download one message durably; returns its size. Resumable: the key is recorded
    before the file is written; a partial earlier attempt under it is replaced."""
    key = key or Maildir.new_key()
    state.pop3_pending(uidl, key, now)
    # The POP3 reads are async but Maildir writes take a callback: receive into a spool
    # file first, then deliver (one extra local copy, never a whole message in memory).
    with tempfile.TemporaryFile(dir=inbox.path / "tmp") as spool:
        counter = _Counting(spool)
        if headers_only:
            await client.top(number, 0, counter)
        else:
            await client.retr(number, counter)
        written = counter.count

        def copy(out: IO[bytes]) -> None:
            spool.seek(0)
            while chunk := spool.read(1024 * 1024):
                out.write(chunk)

        if existing is not None:
            inbox.replace(existing, copy)
        else:
            stale = inbox.get(key)
            if stale is not None:  # an interrupted earlier attempt got this far
                inbox.remove(stale)
            inbox.deliver(copy, key=key, to_new=True)
    state.pop3_stored(uidl, key, now, written, headers_only)
    return written


class _Counting:
    """A file wrapper that counts what is written through it."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return self.out.write(data)


async def watch(
    account: Account,
    password: str,
    options: FetchOptions,
    interval: float,
    on_report: Callable[[RunReport], None],
    runs: int | None = None,
) -> None:
    """``--watch``: fetch every ``interval`` seconds (``runs`` bounds it for tests)."""
    count = 0
    while runs is None or count < runs:
        on_report(await fetch_account(account, password, options))
        count += 1
        if runs is not None and count >= runs:
            return
        await asyncio.sleep(interval)
