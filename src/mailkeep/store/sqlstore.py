"""The ``Store`` for every SQL backend: transactions from ``sql``, run by an ``Engine``.

This layer adds what is not SQL: blobs are made durable before the rows naming them,
changes are published on the hub after commit (in commit order: the engine resolves
writes in commit order and we publish before yielding to the loop), clocks, and the
background collection of unreferenced contents.
"""

from __future__ import annotations

import asyncio
import logging
import time
from array import array
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from mailkeep.errors import InUse, NotFound, TemporaryFailure
from mailkeep.store import acl, check, metadata, search, sql
from mailkeep.store.api import (
    Account,
    AppendResult,
    BlobReader,
    Changes,
    CopyResult,
    Credentials,
    FetchField,
    FlagMode,
    FlagResult,
    Grant,
    Mailbox,
    MailboxStatus,
    MessageRow,
    NewMessage,
    Snapshot,
    ThreadHeaders,
)
from mailkeep.store.changes import (
    SERVER_CHANNEL,
    Change,
    ChangeSet,
    MetadataChanged,
    RightsChanged,
)
from mailkeep.store.check import Report
from mailkeep.store.hub import Hub
from mailkeep.store.ops import DeleteBlob, Dialect, One, Tx, all_of
from mailkeep.store.query import Query, SortKey

T = TypeVar("T")
log = logging.getLogger(__name__)

KNOWN_UIDS_FROM = 1_000
"""Mailboxes of at least this many messages keep their UIDs between snapshots (8 octets
each: 8 MB for a million), so that selecting them again reads only what changed, and
every session selecting one that did not change gets the same array (never modified:
see ``SelectedMailbox``), not a copy of its own."""
KNOWN_UIDS_MAILBOXES = 16

QUOTA_PRECHECK_OCTETS = 256 * 1024
"""Appends of at least this many octets have the quota checked before their blobs are
written, so that a full mailbox does not cost writing (and then deleting) a large
message. Smaller ones are checked only by their transaction, exactly as the larger:
a refusal then costs a small blob written and discarded, while the precheck would cost
every append a read (on PostgreSQL a round trip)."""

POINT_FETCH = 8
"""A FETCH of this many messages or fewer reads their rows as a point read (``fetch``)."""

DEFAULT_MAILBOXES: tuple[tuple[str, str | None], ...] = (
    ("INBOX", None),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)


_SETTLE_ATTEMPTS = 2
"""Times a full-text SEARCH has pending text indexed and looks again. Mail arriving all
the while could keep it waiting for ever; after that it answers from the index as it is,
which may miss only messages delivered while it ran."""


class Engine(Protocol):
    """What a backend provides: running transactions, blobs and the maildrop lock."""

    group_commit: bool
    """Whether write transactions queued together commit together (``append_each``)."""
    remote_reads: bool
    """``Store.remote_reads``."""

    @property
    def dialect(self) -> Dialect: ...

    async def read(self, tx: Tx[T], *, point: bool = False) -> T:
        """Run a read transaction. ``point``: a few rows by key (an account, a mailbox),
        which a backend may run in place rather than on a worker."""
        ...

    async def write(self, tx: Tx[T], *, one_statement: bool = False) -> T:
        """Run a write transaction. ``one_statement``: ``tx`` is one op that is a
        transaction of its own (``AppendOne``), run without one around it."""
        ...

    async def put_blob(self, blob: str, data: bytes) -> None: ...
    async def index_pending(self) -> None:
        """Index what ``dialect.pending_index`` finds waiting."""
        ...

    def appended(self, count: int) -> None:
        """``count`` messages were added: the planner's statistics may be out of date."""
        ...

    async def open_blob(self, blob: str) -> BlobReader: ...
    async def open_small_blobs(self, blobs: Sequence[str]) -> dict[str, BlobReader]: ...
    def maildrop_lock(self, account_id: int) -> AbstractAsyncContextManager[bool]: ...
    async def close(self) -> None: ...
    def watch_external(self, publish: Callable[[Sequence[Change]], None]) -> None:
        """Call ``publish`` with changes committed elsewhere (other processes, nodes)."""
        ...

    async def list_blobs(self) -> list[str]:
        """Every stored blob's name (for ``check``)."""
        ...


def _discard_unused_tx(blobs: Sequence[str]) -> Tx[None]:
    for blob in blobs:
        named = yield One(
            "SELECT 1 FROM contents WHERE blob = ? UNION ALL SELECT 1 FROM garbage WHERE blob = ?",
            (blob, blob),
        )
        if named is None:
            yield DeleteBlob(blob)


class SqlStore:
    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.hub = Hub()
        self.remote_reads = engine.remote_reads
        self.clock = clock
        self._recent: dict[int, int] = {}
        self._known_uids: dict[int, sql.KnownUids] = {}
        """The UIDs of large mailboxes as last selected (``snapshot_tx``), oldest first."""
        engine.watch_external(self.hub.publish)

    def _now(self) -> int:
        return int(self.clock())

    async def _write(self, tx: Tx[T]) -> T:
        return await self.engine.write(tx)

    def _publish(self, changes: Sequence[Change]) -> None:
        self.hub.publish(changes)

    async def close(self) -> None:
        await self.engine.close()

    # -- accounts

    async def create_account(
        self,
        address: str,
        password_hash: str,
        scram_sha256: str | None,
        *,
        quota_bytes: int | None = None,
        quota_messages: int | None = None,
        mailboxes: Sequence[tuple[str, str | None]] = DEFAULT_MAILBOXES,
    ) -> Account:
        account, events = await self._write(
            sql.create_account_tx(
                address,
                password_hash,
                scram_sha256,
                quota_bytes,
                quota_messages,
                mailboxes,
                self._now(),
            )
        )
        self._publish(events)
        return account

    async def get_account(self, address: str) -> Account | None:
        return await self.engine.read(sql.get_account_tx(address), point=True)

    async def get_account_by_id(self, account_id: int) -> Account | None:
        return await self.engine.read(sql.get_account_by_id_tx(account_id), point=True)

    async def list_accounts(self) -> list[Account]:
        return await self.engine.read(sql.list_accounts_tx())

    async def delete_account(self, account_id: int) -> None:
        self._publish(await self._write(sql.delete_account_tx(account_id, self._now())))

    async def get_credentials(self, address: str) -> Credentials | None:
        return await self.engine.read(sql.get_credentials_tx(address), point=True)

    async def set_credentials(
        self, account_id: int, password_hash: str, scram_sha256: str | None
    ) -> None:
        await self._write(sql.set_credentials_tx(account_id, password_hash, scram_sha256))

    async def set_quota(
        self, account_id: int, quota_bytes: int | None, quota_messages: int | None
    ) -> None:
        await self._write(sql.set_quota_tx(account_id, quota_bytes, quota_messages))

    async def set_account_setting(self, account_id: int, key: str, value: str | None) -> None:
        await self._write(sql.set_setting_tx(account_id, key, value))

    # -- mailboxes

    async def list_mailboxes(self, account_id: int) -> list[Mailbox]:
        return await self.engine.read(sql.list_mailboxes_tx(account_id))

    async def get_mailbox(self, account_id: int, name: str) -> Mailbox | None:
        return await self.engine.read(sql.get_mailbox_tx(account_id, name), point=True)

    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        return await self.engine.read(sql.get_mailbox_by_id_tx(mailbox_id), point=True)

    async def create_mailbox(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        mailbox, events = await self._write(
            sql.create_mailbox_tx(account_id, name, special_use, self._now())
        )
        # Everything a new mailbox will hold is \Recent for the first session that
        # selects it; a boundary left by a deleted mailbox whose id SQLite reuses must
        # not hide that (RFC 3501 2.3.2).
        self._recent[mailbox.id] = 1
        self._publish(events)
        return mailbox

    async def delete_mailbox(self, mailbox_id: int) -> None:
        self._publish(await self._write(sql.delete_mailbox_tx(mailbox_id, self._now())))
        self._recent.pop(mailbox_id, None)

    async def rename_mailbox(self, account_id: int, old: str, new: str) -> None:
        self._publish(await self._write(sql.rename_mailbox_tx(account_id, old, new, self._now())))

    async def set_special_use(self, mailbox_id: int, special_use: str | None) -> None:
        await self._write(sql.set_special_use_tx(mailbox_id, special_use))

    async def list_subscriptions(self, account_id: int) -> list[str]:
        return await self.engine.read(sql.list_subscriptions_tx(account_id))

    async def subscribe(self, account_id: int, name: str, subscribed: bool) -> None:
        self._publish(await self._write(sql.subscribe_tx(account_id, name, subscribed)))

    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus:
        return await self.engine.read(sql.mailbox_status_tx(mailbox_id))

    # -- messages

    async def append(
        self, mailbox_id: int, messages: Sequence[NewMessage], *, check_quota: bool = True
    ) -> AppendResult:
        prepared = await self._stage_append(mailbox_id, messages, check_quota)
        return await self._finish_append(mailbox_id, prepared, messages, check_quota)

    async def append_each(
        self, appends: Sequence[tuple[int, Sequence[NewMessage]]]
    ) -> list[AppendResult | Exception]:
        """Several independent appends, each all or none like ``append`` (quota checked),
        with one result or error each, in order, sharing one commit and sync: pipelined
        APPEND commands. An engine with group commit gets their transactions queued
        together; another runs them as one transaction. UIDs follow the order given."""
        staged: list[tuple[int, Sequence[NewMessage], list[sql.Prepared]] | Exception] = []
        for mailbox_id, messages in appends:
            try:
                staged.append(
                    (mailbox_id, messages, await self._stage_append(mailbox_id, messages))
                )
            except Exception as exc:
                staged.append(exc)
        ready = [item for item in staged if not isinstance(item, Exception)]
        results: list[AppendResult | BaseException]
        if self.engine.group_commit:
            # Tasks start in the order they are made, and each queues its transaction in
            # its first step (``engine.write``): the writer sees them in order.
            tasks = [
                asyncio.ensure_future(self._finish_append(mailbox_id, prepared, messages, True))
                for mailbox_id, messages, prepared in ready
            ]
            results = await asyncio.gather(*tasks, return_exceptions=True)
        else:
            results = await self._finish_together(ready)
        done = iter(results)
        outcomes: list[AppendResult | Exception] = []
        for item in staged:
            if isinstance(item, Exception):
                outcomes.append(item)
                continue
            outcome = next(done)
            if not isinstance(outcome, AppendResult | Exception):
                raise outcome  # cancelled
            outcomes.append(outcome)
        return outcomes

    async def _finish_together(
        self, ready: Sequence[tuple[int, Sequence[NewMessage], list[sql.Prepared]]]
    ) -> list[AppendResult | BaseException]:
        """Staged appends as one transaction (PostgreSQL, 16 pipelined APPENDs: one
        commit instead of 16). Should any of them fail (over quota, a mailbox gone, a
        blob collected meanwhile), each runs again on its own for its own answer."""
        if len(ready) > 1:
            now = self._now()
            appends = [
                self._append_tx(m, prepared, messages, True, now) for m, messages, prepared in ready
            ]
            try:
                appended = await self._write(all_of(appends))
            except Exception:  # each of them again below, for its own answer
                pass
            else:
                for result in appended:
                    self._appended(result)
                return list(appended)
        results: list[AppendResult | BaseException] = []
        for mailbox_id, messages, prepared in ready:
            try:
                results.append(await self._finish_append(mailbox_id, prepared, messages, True))
            except Exception as exc:
                results.append(exc)
        return results

    async def _stage_append(
        self, mailbox_id: int, messages: Sequence[NewMessage], check_quota: bool = True
    ) -> list[sql.Prepared]:
        """Check the quota of a large append and write the blobs: everything before the
        transaction (which stores the blob itself where it is one statement)."""
        if check_quota and sum(len(m.raw) for m in messages) >= QUOTA_PRECHECK_OCTETS:
            await self._precheck_quota(mailbox_id, messages)
        now = datetime.now(UTC).astimezone()
        write_blobs = not self._append_one(len(messages))
        prepared = []
        try:
            for message in messages:
                blob = sql.content_hash(message.raw)
                if write_blobs:
                    await self.engine.put_blob(blob, message.raw)
                prepared.append(
                    sql.Prepared(
                        blob,
                        message.parsed,
                        message.flags,
                        message.keywords,
                        message.internaldate or now,
                    )
                )
        except BaseException:
            await self._discard_unused([p.blob for p in prepared])
            raise
        return prepared

    async def _finish_append(
        self,
        mailbox_id: int,
        prepared: list[sql.Prepared],
        messages: Sequence[NewMessage],
        check_quota: bool,
    ) -> AppendResult:
        try:
            result = await self._append_prepared(mailbox_id, prepared, messages, check_quota)
        except BaseException:
            if not self._append_one(len(prepared)):
                await self._discard_unused([p.blob for p in prepared])
            raise
        self._appended(result)
        return result

    def _appended(self, result: AppendResult) -> None:
        # Messages that arrive before any session looked are \Recent for the first one.
        self._recent.setdefault(result.mailbox.id, result.uids[0])
        self.engine.appended(len(result.uids))
        self._publish([result.change])

    async def _discard_unused(self, blobs: list[str]) -> None:
        """Do not leave blobs behind for a message we refused (over quota, gone
        mailbox); one already used by another message stays."""
        if blobs:
            await asyncio.shield(self._write(_discard_unused_tx(blobs)))

    async def _append_prepared(
        self,
        mailbox_id: int,
        prepared: list[sql.Prepared],
        messages: Sequence[NewMessage],
        check_quota: bool,
    ) -> AppendResult:
        raw = {p.blob: m.raw for p, m in zip(prepared, messages, strict=True)}
        for _ in range(3):
            try:
                return await self.engine.write(
                    self._append_tx(mailbox_id, prepared, messages, check_quota, self._now()),
                    one_statement=self._append_one(len(prepared)),
                )
            except sql.BlobMissing:
                # Collected between our write and the transaction: write them again
                # (all: SQLite drops every blob staged for a batch that failed).
                for blob, octets in raw.items():
                    await self.engine.put_blob(blob, octets)
        raise TemporaryFailure("message blobs kept disappearing while appending; try again")

    def _append_tx(
        self,
        mailbox_id: int,
        prepared: list[sql.Prepared],
        messages: Sequence[NewMessage],
        check_quota: bool,
        now: int,
    ) -> Tx[AppendResult]:
        """The append's transaction: one statement, storing the blob too, where the
        backend can (``_append_one``)."""
        if self._append_one(len(prepared)):
            return sql.append_one_tx(mailbox_id, prepared[0], messages[0].raw, check_quota, now)
        return sql.append_tx(mailbox_id, prepared, check_quota, now)

    def _append_one(self, count: int) -> bool:
        """Whether an append of ``count`` messages is one statement (``AppendOne``)."""
        return count == 1 and self.engine.dialect.append_one

    async def _precheck_quota(self, mailbox_id: int, messages: Sequence[NewMessage]) -> None:
        """Refuse an append that cannot fit before writing any blob (the transaction
        checks again, exactly)."""
        mailbox, account = await self.engine.read(sql.mailbox_owner_tx(mailbox_id), point=True)
        if mailbox is None:
            raise NotFound("mailbox does not exist (it may have been deleted)")
        if account is None:
            raise NotFound("no such account")
        sql.refuse_over_quota(
            account.quota_bytes,
            account.quota_messages,
            account.used_bytes,
            account.used_messages,
            sum(len(m.raw) for m in messages),
            len(messages),
        )

    async def snapshot(self, mailbox_id: int, *, claim_recent: bool = False) -> Snapshot:
        known = self._known_uids.get(mailbox_id)
        mailbox, uids, first_unseen, keywords = await self.engine.read(
            sql.snapshot_tx(mailbox_id, self.engine.dialect, known)
        )
        if not isinstance(uids, array):
            uids = array("q", uids)
        if len(uids) >= KNOWN_UIDS_FROM:
            if known is None or uids is not known.uids:
                self._known_uids.pop(mailbox_id, None)
                while len(self._known_uids) >= KNOWN_UIDS_MAILBOXES:
                    del self._known_uids[next(iter(self._known_uids))]
                self._known_uids[mailbox_id] = sql.KnownUids(
                    mailbox.uidvalidity,
                    mailbox.highestmodseq,
                    mailbox.uidnext,
                    uids,
                    first_unseen,
                    keywords,
                )
        else:
            self._known_uids.pop(mailbox_id, None)
        # \Recent is kept per process, not durably: messages that arrived before a
        # restart are not \Recent afterwards. RFC 3501 leaves it to the server and
        # IMAP4rev2 dropped \Recent altogether.
        recent_from = self._recent.setdefault(mailbox_id, mailbox.uidnext)
        if claim_recent:
            # Never back: another session may have claimed beyond what this read saw
            # (its delivery committed while this read ran).
            self._recent[mailbox_id] = max(recent_from, mailbox.uidnext)
        return Snapshot(mailbox, uids, first_unseen, recent_from, keywords)

    def recent_boundary(self, mailbox_id: int, uidnext: int) -> int:
        """The first \\Recent UID for the next session that claims (STATUS RECENT)."""
        return self._recent.get(mailbox_id, uidnext)

    def claim_recent(self, mailbox_id: int, uidnext: int) -> int:
        r"""Make messages below ``uidnext`` non-\Recent for everyone else; return the
        boundary from which they are \Recent for the caller."""
        boundary = self._recent.setdefault(mailbox_id, uidnext)
        self._recent[mailbox_id] = max(boundary, uidnext)
        return boundary

    async def changes_since(self, mailbox_id: int, modseq: int) -> Changes:
        return await self.engine.read(sql.changes_since_tx(mailbox_id, modseq, self.engine.dialect))

    async def fetch(
        self, mailbox_id: int, uids: Sequence[int], fields: FetchField
    ) -> list[MessageRow]:
        # One statement: a point read for a few messages (a client fetching one message
        # per command, as mbsync does), where the hop to a reader thread (SQLite) or a
        # transaction's BEGIN and COMMIT (PostgreSQL) cost more than the query.
        tx = sql.fetch_tx(mailbox_id, uids, fields)
        return await self.engine.read(tx, point=len(uids) <= POINT_FETCH)

    async def open_blob(self, blob: str) -> BlobReader:
        return await self.engine.open_blob(blob)

    async def open_small_blobs(self, blobs: Sequence[str]) -> dict[str, BlobReader]:
        return await self.engine.open_small_blobs(blobs)

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        mode: FlagMode,
        flags: int,
        keywords: Sequence[str],
        *,
        unchanged_since: int | None = None,
        flag_mask: int = -1,
        keywords_allowed: bool = True,
    ) -> FlagResult:
        result = await self._write(
            sql.store_flags_tx(
                mailbox_id,
                uids,
                mode,
                flags,
                keywords,
                unchanged_since,
                self.engine.dialect,
                flag_mask,
                keywords_allowed,
            )
        )
        if result.change.changed:
            self._publish([result.change])
        return result

    async def expunge(self, mailbox_id: int, uids: Sequence[int] | None = None) -> ChangeSet:
        change = await self._write(sql.expunge_tx(mailbox_id, uids, self._now()))
        if change.expunged:
            self._publish([change])
        return change

    async def remove(self, mailbox_id: int, uids: Sequence[int]) -> ChangeSet:
        """Expunge exactly ``uids``, whatever their flags, in one transaction."""
        change = await self._write(
            sql.expunge_tx(mailbox_id, uids, self._now(), only_deleted=False)
        )
        if change.expunged:
            self._publish([change])
        return change

    async def copy(
        self,
        source_id: int,
        uids: Sequence[int],
        target_id: int,
        *,
        move: bool = False,
        flag_mask: int = -1,
        keywords_allowed: bool = True,
    ) -> CopyResult:
        result = await self._write(
            sql.copy_tx(source_id, uids, target_id, move, self._now(), flag_mask, keywords_allowed)
        )
        self._publish(result.changes)
        return result

    async def search(self, mailbox_id: int, query: Query) -> list[int]:
        dialect = self.engine.dialect
        return await self._settled(lambda ok: search.search_tx(mailbox_id, query, dialect, ok))

    async def index_pending(self) -> None:
        await self.engine.index_pending()

    async def sort(self, mailbox_id: int, keys: Sequence[SortKey], query: Query) -> list[int]:
        dialect = self.engine.dialect
        return await self._settled(lambda ok: search.sort_tx(mailbox_id, keys, query, dialect, ok))

    async def _settled(self, make_tx: Callable[[bool], Tx[Sequence[int] | None]]) -> list[int]:
        """Run a search (``make_tx(settled)``); while the full-text index it needs has text
        pending, have that indexed and run it again, at most ``_SETTLE_ATTEMPTS`` times."""
        for _ in range(_SETTLE_ATTEMPTS):
            uids = await self.engine.read(make_tx(True))
            if uids is not None:
                return list(uids)
            await self.engine.index_pending()
        uids = await self.engine.read(make_tx(False))
        assert uids is not None  # a search that does not wait for the index answers
        return list(uids)

    # -- access control lists (RFC 4314)

    async def get_acl(self, mailbox_id: int) -> list[tuple[str, str]]:
        return await self.engine.read(acl.get_acl_tx(mailbox_id))

    async def acl_rights(
        self, mailbox_id: int, identifiers: Sequence[str]
    ) -> list[tuple[str, str]]:
        return await self.engine.read(acl.rights_tx(mailbox_id, identifiers), point=True)

    async def list_grants(self, identifiers: Sequence[str]) -> list[Grant]:
        return await self.engine.read(acl.list_grants_tx(identifiers))

    async def set_acl(
        self, mailbox_id: int, identifier: str, rights: str, mode: FlagMode = FlagMode.REPLACE
    ) -> str:
        change = await self._write(acl.set_acl_tx(mailbox_id, identifier, rights, mode))
        self._publish_rights(mailbox_id, identifier, change)
        return change.rights

    async def delete_acl(self, mailbox_id: int, identifier: str) -> bool:
        change = await self._write(acl.delete_acl_tx(mailbox_id, identifier))
        self._publish_rights(mailbox_id, identifier, change)
        return change.changed

    def _publish_rights(self, mailbox_id: int, identifier: str, change: acl.AclChange) -> None:
        if not change.changed:
            return
        targets = {change.owner_id}
        if change.grantee_id is not None:
            targets.add(change.grantee_id)
        self._publish([RightsChanged(a, mailbox_id, identifier) for a in sorted(targets)])

    # -- annotations (RFC 5464)

    async def list_metadata(self, mailbox_id: int | None, user_id: int) -> list[tuple[str, bytes]]:
        return await self.engine.read(metadata.list_metadata_tx(mailbox_id, user_id))

    async def set_metadata(
        self,
        mailbox_id: int | None,
        user_id: int,
        entries: Sequence[tuple[str, bytes | None]],
        *,
        max_entries: int,
    ) -> list[str]:
        changed, owner_id = await self._write(
            metadata.set_metadata_tx(mailbox_id, user_id, entries, max_entries)
        )
        private = tuple(e for e in changed if e.startswith(metadata.PRIVATE))
        shared = tuple(e for e in changed if not e.startswith(metadata.PRIVATE))
        changes: list[Change] = []
        if shared:
            account = owner_id if owner_id is not None else SERVER_CHANNEL
            changes.append(MetadataChanged(account, mailbox_id, shared))
        if private:
            account = owner_id if owner_id is not None else user_id
            changes.append(MetadataChanged(account, mailbox_id, private, private_to=user_id))
        self._publish(changes)
        return changed

    async def thread_headers(self, mailbox_id: int, uids: Sequence[int]) -> list[ThreadHeaders]:
        return await self.engine.read(sql.thread_headers_tx(mailbox_id, uids))

    # -- POP3

    async def mark_downloaded(self, mailbox_id: int, uids: Sequence[int]) -> None:
        await self._write(sql.mark_downloaded_tx(mailbox_id, uids, self._now()))

    def maildrop_lock(self, account_id: int) -> AbstractAsyncContextManager[bool]:
        return self.engine.maildrop_lock(account_id)

    # -- maintenance

    async def collect_garbage(self, limit: int = 500) -> int:
        """Remove index text and blobs of contents no message refers to any more."""
        from mailkeep.mail.message import parse

        garbage = await self.engine.read(sql.garbage_tx(limit))
        items: list[tuple[int, str, tuple[str, str] | None]] = []
        for content_id, blob in garbage:
            texts: tuple[str, str] | None = None
            try:
                reader = await self.engine.open_blob(blob)
            except NotFound:
                pass
            else:
                try:
                    data = await reader.read(0, reader.size)
                finally:
                    await reader.close()
                parsed = await asyncio.get_running_loop().run_in_executor(None, parse, data)
                texts = (parsed.header_text, parsed.body_text)
            items.append((content_id, blob, texts))
        if not items:
            return 0
        try:
            return await self._write(sql.collect_tx(items))
        except InUse:  # a backup is running: its snapshot may still name these blobs
            return 0

    async def check(self, *, repair: bool = False) -> Report:
        """Verify rows, counters and blobs agree (``store.check``); repair if asked."""
        report = await self.engine.read(check.inspect_tx(await self.engine.list_blobs()))
        if repair and not report.clean:
            await self._write(check.repair_tx(report, self._now()))
        return report

    async def trim_expunge_log(self, days: int) -> int:
        return await self._write(sql.trim_expunge_log_tx(self._now() - days * 86400))

    async def compact_flag_log(self) -> int:
        """Merge the older rows of long flag-change logs (``sql.compact_flag_log_tx``);
        the number of mailboxes merged (always 0 on a backend without the log)."""
        if not self.engine.dialect.logs_flag_changes:
            return 0
        return await self._write(sql.compact_flag_log_tx())
