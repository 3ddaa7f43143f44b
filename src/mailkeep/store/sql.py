"""Every store transaction, written once for all SQL backends (see ``ops``).

Conventions: one MODSEQ per transaction per mailbox (RFC 7162 allows a command's changes
to share one); quota usage is kept in ``accounts`` and changed in the same transaction as
the messages; a ``contents`` row lives while messages refer to it and then moves to
``garbage`` for the collector.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from operator import itemgetter
from typing import Any

from mailkeep.errors import AlreadyExists, InvalidName, NotFound, QuotaExceeded
from mailkeep.mail.flags import SystemFlag, normalize_keywords
from mailkeep.mail.message import ParsedMessage
from mailkeep.store import names
from mailkeep.store.api import (
    Account,
    AppendResult,
    Changes,
    CopyResult,
    Credentials,
    FetchField,
    FlagMode,
    FlagResult,
    Mailbox,
    MailboxStatus,
    MessageRow,
    ThreadHeaders,
    Usage,
)
from mailkeep.store.changes import Change, ChangeSet, MailboxEvent, MessageState
from mailkeep.store.ops import (
    All,
    AppendOne,
    Batch,
    Column,
    DeleteBlob,
    Dialect,
    Exec,
    FtsDelete,
    Many,
    NewContent,
    One,
    Row,
    Tx,
    replayable,
)


class BlobMissing(Exception):
    """A blob was collected between being written and being referenced: write it again."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message ready to insert: its blob is already durable."""

    blob: str
    parsed: ParsedMessage
    flags: int
    keywords: tuple[str, ...]
    internaldate: datetime


def content_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def tz_minutes(moment: datetime) -> int:
    offset = moment.utcoffset()
    return int(offset.total_seconds() // 60) if offset else 0


def from_epoch(seconds: int, minutes: int = 0) -> datetime:
    return datetime.fromtimestamp(seconds, _zone(minutes))


@functools.lru_cache(maxsize=256)
def _zone(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


def email_id(content_id: int) -> str:
    """RFC 8474 EMAILID: the content, so that COPY and MOVE keep it."""
    return f"M{content_id:x}"


def thread_id(thread: int) -> str:
    return f"T{thread:x}"


def parse_object_id(value: str, prefix: str) -> int | None:
    if len(value) < 2 or value[0] != prefix:
        return None
    try:
        return int(value[1:], 16)
    except ValueError:
        return None


# ---------------------------------------------------------------------------- accounts

_ACCOUNT_COLUMNS = (
    "a.id, a.address, a.quota_bytes, a.quota_messages, a.used_bytes, a.used_messages,"
    " s.key, s.value"
)
_SETTINGS_JOIN = "LEFT JOIN account_settings s ON s.account_id = a.id"
"""An account is read with its settings in one statement (one round trip, not two): a
row per setting, or one with NULLs for an account without any; ``_accounts`` folds them."""


def _accounts(rows: Sequence[Row], offset: int = 0) -> list[Account]:
    """Accounts from rows holding ``_ACCOUNT_COLUMNS`` from ``offset`` on, in
    the order of their first row."""
    accounts: dict[int, Account] = {}
    for row in rows:
        account_id, key = row[offset], row[offset + 6]
        account = accounts.get(account_id)
        if account is None:
            address, quota_bytes, quota_messages, used_bytes, used_messages = (
                row[offset + i] for i in range(1, 6)
            )
            account = accounts[account_id] = Account(
                account_id, address, quota_bytes, quota_messages, used_bytes, used_messages
            )
        if key is not None:
            account.settings[key] = row[offset + 7]
    return list(accounts.values())


def normalize_address(address: str) -> str:
    address = address.strip().lower()
    if not address or any(c.isspace() or ord(c) < 32 for c in address) or len(address) > 320:
        raise InvalidName(f"{address!r} is not a valid account address")
    return address


@replayable
def create_account_tx(
    address: str,
    password_hash: str,
    scram: str | None,
    quota_bytes: int | None,
    quota_messages: int | None,
    mailboxes: Sequence[tuple[str, str | None]],
    now: int,
) -> Tx[tuple[Account, list[Change]]]:
    address = normalize_address(address)
    if (yield One("SELECT 1 FROM accounts WHERE address = ?", (address,))):
        raise AlreadyExists(f"account {address} already exists")
    row = yield One(
        "INSERT INTO accounts (address, password_hash, scram_sha256, quota_bytes,"
        " quota_messages, created) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (address, password_hash, scram, quota_bytes, quota_messages, now),
    )
    account_id: int = row[0]
    events: list[Change] = []
    for name, special_use in mailboxes:
        mailbox, created = yield from create_mailbox_tx(account_id, name, special_use, now)
        events += created
        yield Exec(
            "INSERT INTO subscriptions (account_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (account_id, mailbox.name),
        )
    account = Account(account_id, address, quota_bytes, quota_messages, 0, 0, {})
    return account, events


def get_account_tx(address: str) -> Tx[Account | None]:
    rows = yield All(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a {_SETTINGS_JOIN} WHERE a.address = ?",
        (address.strip().lower(),),
    )
    return next(iter(_accounts(rows)), None)


def get_account_by_id_tx(account_id: int) -> Tx[Account | None]:
    rows = yield All(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a {_SETTINGS_JOIN} WHERE a.id = ?",
        (account_id,),
    )
    return next(iter(_accounts(rows)), None)


def list_accounts_tx() -> Tx[list[Account]]:
    rows = yield All(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a {_SETTINGS_JOIN} ORDER BY a.address"
    )
    return _accounts(rows)


@replayable
def delete_account_tx(account_id: int, now: int) -> Tx[list[Change]]:
    rows = yield All("SELECT id FROM mailboxes WHERE account_id = ?", (account_id,))
    account = yield One("SELECT address FROM accounts WHERE id = ?", (account_id,))
    if not account:
        raise NotFound("no such account")
    events: list[Change] = []
    for (mailbox_id,) in rows:
        events += yield from delete_mailbox_tx(mailbox_id, now)
    # Rights granted to the account and its private annotations of others' mailboxes.
    yield Exec("DELETE FROM acl WHERE identifier = ?", (account[0],))
    yield Exec("DELETE FROM metadata WHERE account_id = ?", (account_id,))
    yield Exec("DELETE FROM accounts WHERE id = ?", (account_id,))
    return events


def get_credentials_tx(address: str) -> Tx[Credentials | None]:
    row = yield One(
        "SELECT id, address, password_hash, scram_sha256 FROM accounts WHERE address = ?",
        (address.strip().lower(),),
    )
    return None if row is None else Credentials(row[0], row[1], row[2], row[3])


@replayable
def set_credentials_tx(account_id: int, password_hash: str, scram: str | None) -> Tx[None]:
    changed = yield Exec(
        "UPDATE accounts SET password_hash = ?, scram_sha256 = ? WHERE id = ?",
        (password_hash, scram, account_id),
    )
    if not changed:
        raise NotFound("no such account")


@replayable
def set_quota_tx(account_id: int, quota_bytes: int | None, quota_messages: int | None) -> Tx[None]:
    changed = yield Exec(
        "UPDATE accounts SET quota_bytes = ?, quota_messages = ? WHERE id = ?",
        (quota_bytes, quota_messages, account_id),
    )
    if not changed:
        raise NotFound("no such account")


@replayable
def set_setting_tx(account_id: int, key: str, value: str | None) -> Tx[None]:
    if value is None:
        yield Exec(
            "DELETE FROM account_settings WHERE account_id = ? AND key = ?", (account_id, key)
        )
    else:
        yield Exec(
            "INSERT INTO account_settings (account_id, key, value) VALUES (?, ?, ?)"
            " ON CONFLICT (account_id, key) DO UPDATE SET value = excluded.value",
            (account_id, key, value),
        )


def _check_quota(account_id: int, add_bytes: int, add_messages: int) -> Tx[None]:
    row = yield One(
        "SELECT quota_bytes, quota_messages, used_bytes, used_messages FROM accounts WHERE id = ?",
        (account_id,),
        for_update=True,
    )
    if row is None:
        raise NotFound("no such account")
    refuse_over_quota(row[0], row[1], row[2], row[3], add_bytes, add_messages)


def _charge(account_id: int, add_bytes: int, add_messages: int, check_quota: bool) -> Tx[Usage]:
    """Add to the account's usage and, with ``check_quota``, refuse what then exceeds its
    quota (the caller's transaction is rolled back): one statement for what
    ``_check_quota`` and ``_add_usage`` do in two, with the same row lock. The answer is
    the quota and usage after."""
    row = yield One(
        "UPDATE accounts SET used_bytes = used_bytes + ?, used_messages = used_messages + ?"
        " WHERE id = ? RETURNING quota_bytes, quota_messages, used_bytes, used_messages",
        (add_bytes, add_messages, account_id),
    )
    if row is None:
        raise NotFound("no such account")
    quota_bytes, quota_messages, used_bytes, used_messages = row
    if check_quota:
        refuse_over_quota(
            quota_bytes,
            quota_messages,
            used_bytes - add_bytes,
            used_messages - add_messages,
            add_bytes,
            add_messages,
        )
    return Usage(quota_bytes, quota_messages, used_bytes, used_messages)


def refuse_over_quota(
    quota_bytes: int | None,
    quota_messages: int | None,
    used_bytes: int,
    used_messages: int,
    add_bytes: int,
    add_messages: int,
) -> None:
    """Raise ``QuotaExceeded`` if adding to what is used would exceed a quota: every
    refusal over quota (transactions, the precheck, PostgreSQL's one-statement append)
    is worded here."""
    if quota_bytes is not None and add_bytes > 0 and used_bytes + add_bytes > quota_bytes:
        raise QuotaExceeded(
            f"mailbox is full: {used_bytes + add_bytes} octets would exceed the quota of"
            f" {quota_bytes}"
        )
    if (
        quota_messages is not None
        and add_messages > 0
        and used_messages + add_messages > quota_messages
    ):
        raise QuotaExceeded(f"mailbox is full: quota of {quota_messages} messages reached")


def _add_usage(account_id: int, add_bytes: int, add_messages: int) -> Tx[None]:
    if add_bytes or add_messages:
        yield Exec(
            "UPDATE accounts SET used_bytes = used_bytes + ?, used_messages = used_messages + ?"
            " WHERE id = ?",
            (add_bytes, add_messages, account_id),
        )


# ---------------------------------------------------------------------------- mailboxes

_MAILBOX = "id, account_id, name, uidvalidity, uidnext, highestmodseq, special_use"
_MAILBOX_B = ", ".join(f"b.{column}" for column in _MAILBOX.split(", "))


def _mailbox(row: Row) -> Mailbox:
    return Mailbox(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


MAILBOX_COLUMNS = _MAILBOX
"""The columns ``mailbox_from_row`` reads, for queries of other store modules."""
mailbox_from_row = _mailbox


def list_mailboxes_tx(account_id: int) -> Tx[list[Mailbox]]:
    rows = yield All(
        f"SELECT {_MAILBOX} FROM mailboxes WHERE account_id = ? ORDER BY name", (account_id,)
    )
    return [_mailbox(row) for row in rows]


def get_mailbox_tx(account_id: int, name: str) -> Tx[Mailbox | None]:
    row = yield One(
        f"SELECT {_MAILBOX} FROM mailboxes WHERE account_id = ? AND name = ?",
        (account_id, names.canonical(name)),
    )
    return None if row is None else _mailbox(row)


def get_mailbox_by_id_tx(mailbox_id: int, *, lock: bool = False) -> Tx[Mailbox | None]:
    row = yield One(
        f"SELECT {_MAILBOX} FROM mailboxes WHERE id = ?", (mailbox_id,), for_update=lock
    )
    return None if row is None else _mailbox(row)


def mailbox_owner_tx(mailbox_id: int) -> Tx[tuple[Mailbox | None, Account | None]]:
    """A mailbox and the account owning it, in one statement (append's quota precheck)."""
    rows = yield All(
        f"SELECT {_MAILBOX_B}, {_ACCOUNT_COLUMNS} FROM mailboxes b"
        f" LEFT JOIN accounts a ON a.id = b.account_id {_SETTINGS_JOIN} WHERE b.id = ?",
        (mailbox_id,),
    )
    if not rows:
        return None, None
    width = _MAILBOX.count(",") + 1
    owner = _accounts(rows, width) if rows[0][width] is not None else [None]
    return _mailbox(rows[0]), owner[0]


def _require_mailbox(mailbox_id: int, *, lock: bool = False) -> Tx[Mailbox]:
    """The mailbox; ``lock`` holds its row until commit, for writes that take its next
    UID or MODSEQ (concurrent writers then queue instead of taking the same one)."""
    mailbox = yield from get_mailbox_by_id_tx(mailbox_id, lock=lock)
    if mailbox is None:
        raise NotFound("mailbox does not exist (it may have been deleted)")
    return mailbox


def _next_uidvalidity(now: int) -> Tx[int]:
    """Strictly increasing across the store, so a recreated name never reuses one."""
    row = yield One("SELECT value FROM meta WHERE key = 'last_uidvalidity'", for_update=True)
    value = max(now, row[0] + 1) & 0xFFFFFFFF or 1
    yield Exec("UPDATE meta SET value = ? WHERE key = 'last_uidvalidity'", (value,))
    return value


@replayable
def create_mailbox_tx(
    account_id: int, name: str, special_use: str | None, now: int
) -> Tx[tuple[Mailbox, list[Change]]]:
    """Create ``name`` and any missing superior names (RFC 9051 6.3.4)."""
    name = names.validate(name)
    if (yield from get_mailbox_tx(account_id, name)) is not None:
        raise AlreadyExists(f"mailbox {name} already exists")
    events: list[Change] = []
    for parent in names.parents(name):
        if (yield from get_mailbox_tx(account_id, parent)) is None:
            created = yield from _insert_mailbox(account_id, parent, None, now)
            events.append(MailboxEvent(account_id, "created", parent, mailbox_id=created.id))
    mailbox = yield from _insert_mailbox(account_id, name, special_use, now)
    events.append(MailboxEvent(account_id, "created", name, mailbox_id=mailbox.id))
    return mailbox, events


def _insert_mailbox(account_id: int, name: str, special_use: str | None, now: int) -> Tx[Mailbox]:
    uidvalidity = yield from _next_uidvalidity(now)
    row = yield One(
        "INSERT INTO mailboxes (account_id, name, uidvalidity, special_use, created)"
        f" VALUES (?, ?, ?, ?, ?) RETURNING {_MAILBOX}",
        (account_id, name, uidvalidity, special_use, now),
    )
    mailbox = _mailbox(row)
    parents = names.parents(name)
    if parents:
        # RFC 4314 4: a new mailbox inherits the access control list of its parent, so
        # that what a grantee creates in a shared folder stays visible to them.
        yield Exec(
            "INSERT INTO acl (mailbox_id, identifier, rights) SELECT ?, a.identifier, a.rights"
            " FROM acl a JOIN mailboxes p ON p.id = a.mailbox_id"
            " WHERE p.account_id = ? AND p.name = ?",
            (mailbox.id, account_id, parents[-1]),
        )
    return mailbox


@replayable
def delete_mailbox_tx(mailbox_id: int, now: int) -> Tx[list[Change]]:
    mailbox = yield from _require_mailbox(mailbox_id, lock=True)
    rows = yield All("SELECT content_id, size FROM messages WHERE mailbox_id = ?", (mailbox_id,))
    # Messages first: a contents row may go only once no message refers to it.
    yield Exec("DELETE FROM messages WHERE mailbox_id = ?", (mailbox_id,))
    yield from _release_contents([r[0] for r in rows], now)
    yield from _add_usage(mailbox.account_id, -sum(r[1] for r in rows), -len(rows))
    yield Exec("DELETE FROM expunged WHERE mailbox_id = ?", (mailbox_id,))
    # RFC 4314 4: DELETE deletes the mailbox's ACL; its annotations go with it (RFC 5464).
    yield Exec("DELETE FROM acl WHERE mailbox_id = ?", (mailbox_id,))
    yield Exec("DELETE FROM metadata WHERE mailbox_id = ?", (mailbox_id,))
    yield Exec("DELETE FROM mailboxes WHERE id = ?", (mailbox_id,))
    return [MailboxEvent(mailbox.account_id, "deleted", mailbox.name, mailbox_id=mailbox_id)]


@replayable
def rename_mailbox_tx(account_id: int, old: str, new: str, now: int) -> Tx[list[Change]]:
    old = names.canonical(old)
    new = names.validate(new)
    source = yield from get_mailbox_tx(account_id, old)
    if source is None:
        raise NotFound(f"mailbox {old} does not exist")
    if (yield from get_mailbox_tx(account_id, new)) is not None:
        raise AlreadyExists(f"mailbox {new} already exists")
    if old == names.INBOX:
        return (yield from _rename_inbox(source, new, now))
    if names.is_inside(new, old):
        raise InvalidName("cannot rename a mailbox into itself")
    rows = yield All(
        "SELECT id, name FROM mailboxes WHERE account_id = ? AND (name = ? OR name LIKE ?"
        " ESCAPE '\\')",
        (account_id, old, _like_prefix(old + names.SEPARATOR)),
    )
    # LIKE may also match other cases of the name (SQLite's is case-insensitive): the
    # exact test decides, and each move keeps the name it came from.
    moves = [
        (mid, name, new + name[len(old) :]) for mid, name in rows if names.is_inside(name, old)
    ]
    for _, _, target in moves:
        if (yield from get_mailbox_tx(account_id, target)) is not None:
            raise AlreadyExists(f"mailbox {target} already exists")
    events: list[Change] = []
    for parent in names.parents(new):
        if (yield from get_mailbox_tx(account_id, parent)) is None:
            created = yield from _insert_mailbox(account_id, parent, None, now)
            events.append(MailboxEvent(account_id, "created", parent, mailbox_id=created.id))
    for mailbox_id, name, target in moves:
        yield Exec("UPDATE mailboxes SET name = ? WHERE id = ?", (target, mailbox_id))
        # A subscription follows its mailbox; the new name may be subscribed already
        # (subscriptions may name mailboxes that do not exist, RFC 9051 6.3.7).
        moved = yield Exec(
            "DELETE FROM subscriptions WHERE account_id = ? AND name = ?", (account_id, name)
        )
        if moved:
            yield Exec(
                "INSERT INTO subscriptions (account_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (account_id, target),
            )
        events.append(MailboxEvent(account_id, "renamed", target, name, mailbox_id=mailbox_id))
    return events


def _rename_inbox(inbox: Mailbox, new: str, now: int) -> Tx[list[Change]]:
    """RFC 9051 6.3.6: move INBOX's messages to a new mailbox; INBOX stays, empty."""
    target, events = yield from create_mailbox_tx(inbox.account_id, new, None, now)
    rows = yield All("SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", (inbox.id,))
    result = yield from copy_tx(inbox.id, [r[0] for r in rows], target.id, True, now)
    return events + list(result.changes)


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


@replayable
def set_special_use_tx(mailbox_id: int, special_use: str | None) -> Tx[None]:
    changed = yield Exec(
        "UPDATE mailboxes SET special_use = ? WHERE id = ?", (special_use, mailbox_id)
    )
    if not changed:
        raise NotFound("mailbox does not exist")


def list_subscriptions_tx(account_id: int) -> Tx[list[str]]:
    rows = yield All(
        "SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name", (account_id,)
    )
    return [r[0] for r in rows]


@replayable
def subscribe_tx(account_id: int, name: str, subscribed: bool) -> Tx[list[Change]]:
    name = names.canonical(name)
    if subscribed:
        changed = yield Exec(
            "INSERT INTO subscriptions (account_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (account_id, name),
        )
    else:
        changed = yield Exec(
            "DELETE FROM subscriptions WHERE account_id = ? AND name = ?", (account_id, name)
        )
    kind = "subscribed" if subscribed else "unsubscribed"
    return [MailboxEvent(account_id, kind, name)] if changed else []


def mailbox_status_tx(mailbox_id: int) -> Tx[MailboxStatus]:
    mailbox = yield from _require_mailbox(mailbox_id)
    row = yield One(
        "SELECT count(*), coalesce(sum(size), 0),"
        " coalesce(sum(CASE WHEN flags & 1 = 0 THEN 1 ELSE 0 END), 0),"
        " coalesce(sum(CASE WHEN flags & 8 <> 0 THEN 1 ELSE 0 END), 0),"
        " coalesce(sum(CASE WHEN flags & 8 <> 0 THEN size ELSE 0 END), 0)"
        " FROM messages WHERE mailbox_id = ?",
        (mailbox_id,),
    )
    return MailboxStatus(mailbox, row[0], row[2], row[3], row[1], row[4])


# ---------------------------------------------------------------------------- messages


def _bump(mailbox: Mailbox, uidnext: int | None = None) -> Tx[int]:
    """Take the mailbox's next MODSEQ (and move UIDNEXT); return the new MODSEQ."""
    modseq = mailbox.highestmodseq + 1
    yield Exec(
        "UPDATE mailboxes SET highestmodseq = ?, uidnext = ? WHERE id = ?",
        (modseq, uidnext or mailbox.uidnext, mailbox.id),
    )
    return modseq


def _claim_uids(mailbox_id: int, count: int) -> Tx[Mailbox]:
    """Take ``count`` UIDs and the next MODSEQ of the mailbox; returns it as it is
    after. One statement, which holds the mailbox's row until commit (concurrent
    appends queue instead of taking the same UIDs), where a locking read and an
    update would be two round trips."""
    row = yield One(
        "UPDATE mailboxes SET uidnext = uidnext + ?, highestmodseq = highestmodseq + 1"
        f" WHERE id = ? RETURNING {_MAILBOX}",
        (count, mailbox_id),
    )
    if row is None:
        raise NotFound("mailbox does not exist (it may have been deleted)")
    return _mailbox(row)


def _content_for(item: Prepared) -> Tx[int]:
    """The contents row for the blob (one per distinct message), created on first use."""
    # Locked, so that an expunge elsewhere cannot drop the last reference meanwhile.
    row = yield One("SELECT id FROM contents WHERE blob = ?", (item.blob,), for_update=True)
    if row is not None:
        yield Exec("UPDATE content_refs SET refs = refs + 1 WHERE content_id = ?", (row[0],))
        return int(row[0])
    p = item.parsed
    values = _content_values(p)
    content_id = yield NewContent(item.blob, CONTENT_COLUMNS, values, p.header_text, p.body_text)
    if content_id is None:
        raise BlobMissing(item.blob)
    return int(content_id)


def _content_values(p: ParsedMessage) -> tuple[Any, ...]:
    """The values of ``CONTENT_COLUMNS`` for a parsed message."""
    sent = (epoch(p.sent_date), tz_minutes(p.sent_date)) if p.sent_date else (None, None)
    return (
        p.size,
        p.header,
        p.envelope,
        p.body,
        p.bodystructure,
        p.structure,
        *sent,
        p.subject.casefold(),
        p.from_.casefold(),
        p.to.casefold(),
        p.cc.casefold(),
        p.bcc.casefold(),
        p.base_subject.casefold(),
        p.sort_from.casefold(),
        p.sort_to.casefold(),
        p.sort_cc.casefold(),
        p.display_from.casefold(),
        p.display_to.casefold(),
        p.message_id,
        p.in_reply_to,
        " ".join(p.references),
        p.preview,
    )


CONTENT_COLUMNS = (
    "size",
    "header",
    "envelope",
    "body",
    "bodystructure",
    "structure",
    "sent_date",
    "sent_tz",
    "subject",
    "from_",
    "to_",
    "cc",
    "bcc",
    "base_subject",
    "sort_from",
    "sort_to",
    "sort_cc",
    "display_from",
    "display_to",
    "message_id",
    "in_reply_to",
    "references_",
    "preview",
)
"""The columns of ``contents`` an append fills besides ``blob`` (``NewContent``); with
``id`` and ``blob``, all of them (``copy.TABLES``)."""


def _referred(parsed: ParsedMessage) -> list[str]:
    """The Message-IDs a message refers to that may name its thread (the last 20)."""
    return [i for i in (*parsed.references, parsed.in_reply_to) if i][-20:]


def _thread_for(mailbox_id: int, parsed: ParsedMessage, content_id: int) -> Tx[int]:
    """RFC 8474 THREADID: join the thread of a message this one refers to, if the
    account of ``mailbox_id`` has one; otherwise start a thread named after this
    content."""
    ids = _referred(parsed)
    if not ids:
        return content_id
    # The referred contents first (a materialised CTE is a fence in both databases), so
    # that no planner starts from the account's mailboxes and walks all their messages
    # (that made every delivery slower as the mailbox grew). One statement: on
    # PostgreSQL each is a round trip.
    marks = ", ".join("?" * len(ids))
    row = yield One(
        "WITH referred AS MATERIALIZED"
        f" (SELECT id FROM contents WHERE message_id IN ({marks}))"
        " SELECT m.thread_id FROM referred r JOIN messages m ON m.content_id = r.id"
        " JOIN mailboxes b ON b.id = m.mailbox_id"
        " WHERE b.account_id = (SELECT account_id FROM mailboxes WHERE id = ?) LIMIT 1",
        (*ids, mailbox_id),
    )
    if row is not None:
        return int(row[0])
    return content_id


@replayable
def append_tx(
    mailbox_id: int, items: Sequence[Prepared], check_quota: bool, now: int
) -> Tx[AppendResult]:
    # The contents first, the mailbox's row (UIDs, MODSEQ) and the account's (usage)
    # last: concurrent appends to one mailbox queue on its row until they commit, so the
    # less they do while holding it, the more of them commit per second (LMTP x4 on
    # PostgreSQL: 441 -> 488 msg/s). An expunge takes the mailbox first and then a
    # contents row's reference count: only the same message appended as its last copy is
    # expunged can deadlock, which PostgreSQL detects and the loser runs again
    # (``Replayable``). PostgreSQL does the same for one message in one statement
    # (``append_one_tx``).
    contents = []
    for item in items:
        content_id = yield from _content_for(item)
        thread = yield from _thread_for(mailbox_id, item.parsed, content_id)
        contents.append((content_id, thread))
    mailbox = yield from _claim_uids(mailbox_id, len(items))
    total = sum(item.parsed.size for item in items)
    usage = yield from _charge(mailbox.account_id, total, len(items), check_quota)
    result = _appended(mailbox, items, usage)
    yield Many(
        _INSERT_MESSAGE,
        [
            (
                mailbox_id,
                state.uid,
                state.modseq,
                state.modseq,
                state.flags,
                " ".join(state.keywords),
                epoch(item.internaldate),
                tz_minutes(item.internaldate),
                now,
                item.parsed.size,
                content_id,
                thread,
            )
            for item, state, (content_id, thread) in zip(
                items, result.change.appended, contents, strict=True
            )
        ],
    )
    return result


@replayable
def append_one_tx(
    mailbox_id: int, item: Prepared, octets: bytes | None, check_quota: bool, now: int
) -> Tx[AppendResult]:
    """``append_tx`` of one message in one statement (``Dialect.append_one``), which
    stores its ``octets`` too unless they are None (stored already)."""
    parsed = item.parsed
    outcome, mailbox_row, usage_row = yield AppendOne(
        mailbox_id,
        item.blob,
        octets,
        check_quota,
        now,
        (
            item.flags,
            " ".join(normalize_keywords(item.keywords)),
            epoch(item.internaldate),
            tz_minutes(item.internaldate),
        ),
        tuple(_referred(parsed)),
        _content_values(parsed),
        parsed.header_text,
        parsed.body_text,
        parsed.words,
    )
    match outcome:
        case "blob missing":
            raise BlobMissing(item.blob)
        case "no mailbox":
            raise NotFound("mailbox does not exist (it may have been deleted)")
        case "no account":
            raise NotFound("no such account")
        case "over quota":
            quota_bytes, quota_messages, used_bytes, used_messages = usage_row
            refuse_over_quota(
                quota_bytes,
                quota_messages,
                used_bytes - parsed.size,
                used_messages - 1,
                parsed.size,
                1,
            )
            raise AssertionError(f"refused over quota, yet within it: {usage_row}")
    return _appended(_mailbox(mailbox_row), [item], Usage(*usage_row))


def _appended(mailbox: Mailbox, items: Sequence[Prepared], usage: Usage) -> AppendResult:
    """What appending ``items`` with the UIDs and MODSEQ just claimed in ``mailbox``
    (as it is after) made."""
    first = mailbox.uidnext - len(items)
    modseq = mailbox.highestmodseq
    states = tuple(
        MessageState(first + n, modseq, item.flags, normalize_keywords(item.keywords))
        for n, item in enumerate(items)
    )
    change = ChangeSet(
        mailbox.account_id,
        mailbox.id,
        modseq - 1,
        modseq,
        appended=states,
        uidnext=mailbox.uidnext,
    )
    return AppendResult(mailbox, tuple(s.uid for s in states), change, usage)


_INSERT_INTO_MESSAGES = (
    "INSERT INTO messages (mailbox_id, uid, modseq, created_modseq, flags, keywords,"
    " internaldate, internaldate_tz, savedate, size, content_id, thread_id)"
)
_INSERT_MESSAGE = _INSERT_INTO_MESSAGES + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


_ID_BATCH = 500
"""Ids per ``IN (...)`` list: well under both backends' limits on parameters."""


def _release_contents(content_ids: Iterable[int], now: int) -> Tx[None]:
    """Drop one reference per occurrence; contents left unreferenced go to ``garbage``."""
    counts: dict[int, int] = {}
    for content_id in content_ids:
        counts[content_id] = counts.get(content_id, 0) + 1
    if not counts:
        return
    # In id order, so that concurrent writers take the rows' locks in one order (on
    # PostgreSQL the unnest's order, the outer side of its nested loop over the index;
    # should a plan differ and two deadlock, the loser runs again: Replayable).
    yield Batch(
        "UPDATE content_refs SET refs = refs - ?2 WHERE content_id = ?1",
        "UPDATE content_refs r SET refs = r.refs - u.n"
        " FROM unnest($1::bigint[], $2::bigint[]) AS u(content_id, n)"
        " WHERE r.content_id = u.content_id",
        sorted(counts.items()),
    )
    yield from drop_unreferenced(now, counts)


def drop_unreferenced(now: int, content_ids: Iterable[int]) -> Tx[None]:
    """Contents of ``content_ids`` with no reference left go to ``garbage`` (their blob
    and index rows are collected later). Those are looked up first: an expunge of copies
    releases none, and three statements per content cost PostgreSQL 8 ms per 500."""
    candidates = list(content_ids)
    ids: list[tuple[int]] = []
    for start in range(0, len(candidates), _ID_BATCH):
        part = candidates[start : start + _ID_BATCH]
        rows = yield All(
            "SELECT content_id FROM content_refs"
            f" WHERE refs <= 0 AND content_id IN ({', '.join('?' * len(part))})",
            tuple(part),
        )
        ids += [(int(row[0]),) for row in rows]
    if not ids:
        return
    yield Batch(
        "INSERT INTO garbage (content_id, blob, since) SELECT c.id, c.blob, ?2 FROM contents c"
        " JOIN content_refs r ON r.content_id = c.id WHERE c.id = ?1 AND r.refs <= 0",
        "INSERT INTO garbage (content_id, blob, since) SELECT c.id, c.blob, $2::bigint"
        " FROM contents c JOIN content_refs r ON r.content_id = c.id"
        " WHERE c.id = ANY($1::bigint[]) AND r.refs <= 0",
        ids,
        (now,),
    )
    yield Batch(
        "DELETE FROM contents WHERE id = ?1"
        " AND (SELECT refs FROM content_refs WHERE content_id = ?1) <= 0",
        "DELETE FROM contents c USING content_refs r"
        " WHERE c.id = ANY($1::bigint[]) AND r.content_id = c.id AND r.refs <= 0",
        ids,
    )
    yield Batch(
        "DELETE FROM content_refs WHERE content_id = ?1 AND refs <= 0",
        "DELETE FROM content_refs WHERE content_id = ANY($1::bigint[]) AND refs <= 0",
        ids,
    )


def _uid_condition(
    uids: Sequence[int], column: str = "uid"
) -> tuple[str, list[int], set[int] | None]:
    """SQL selecting ``uids``: exact ranges when there are few, else the covering range
    plus a set for the caller to filter with (keeps statements small and plans simple)."""
    ranges = to_ranges(uids)
    if len(ranges) <= 64:
        sql = " OR ".join(f"{column} BETWEEN ? AND ?" for _ in ranges) or "0 = 1"
        return f"({sql})", [v for r in ranges for v in r], None
    return f"({column} BETWEEN ? AND ?)", [ranges[0][0], ranges[-1][1]], set(uids)


def to_ranges(uids: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted inclusive ranges covering ``uids`` (which may be unsorted)."""
    ordered = sorted(set(uids))
    if ordered and ordered[-1] - ordered[0] == len(ordered) - 1:
        return [(ordered[0], ordered[-1])]  # one run, as a FETCH batch usually is
    ranges: list[tuple[int, int]] = []
    for uid in ordered:
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], uid)
        else:
            ranges.append((uid, uid))
    return ranges


@dataclass(frozen=True, slots=True)
class KnownUids:
    """A mailbox's UIDs as a snapshot saw them, to build the next snapshot from."""

    uidvalidity: int
    highestmodseq: int
    uidnext: int
    uids: array[int]
    first_unseen: int | None
    keywords: tuple[str, ...]


SnapshotData = tuple[Mailbox, Sequence[int], int | None, tuple[str, ...]]
"""The mailbox, its UIDs in order, the first unseen UID and its keywords."""


def snapshot_tx(
    mailbox_id: int, dialect: Dialect, known: KnownUids | None = None
) -> Tx[SnapshotData]:
    """The mailbox, its UIDs in order, the first unseen UID and the keywords in use.
    With ``known`` (an earlier snapshot of the same mailbox) nothing is read when the
    mailbox has not changed since (every change moves HIGHESTMODSEQ or UIDNEXT; the
    caller must not modify the array it gets back), and otherwise only what changed: the
    expunge log since then, the UIDs above the old UIDNEXT and the keywords of messages
    changed since. Reading every UID of a mailbox of a million messages costs a few
    hundred milliseconds, its keywords another fifty."""
    mailbox = yield from _require_mailbox(mailbox_id)
    if known is not None and known.uidvalidity == mailbox.uidvalidity:
        if (known.highestmodseq, known.uidnext) == (mailbox.highestmodseq, mailbox.uidnext):
            return mailbox, known.uids, known.first_unseen, known.keywords
        uids = yield from _changed_uids(mailbox, known)
        if uids is not None:
            row = yield One(
                "SELECT min(uid) FROM messages WHERE mailbox_id = ? AND flags & 1 = 0",
                (mailbox_id,),
            )
            # Keywords only accumulate here: one no message carries any more stays in
            # FLAGS until the next full read, as in Dovecot's keyword list (RFC 9051
            # 7.3.5 asks only that FLAGS name every flag in use).
            changed = yield from changed_since(
                mailbox_id, mailbox.uidnext, known.highestmodseq, dialect
            )
            keywords = yield from _keywords_tx(*changed, known.keywords)
            return mailbox, uids, row[0], keywords
    uids = yield Column("SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,))
    row = yield One(
        "SELECT min(uid) FROM messages WHERE mailbox_id = ? AND flags & 1 = 0", (mailbox_id,)
    )
    keywords = yield from _keywords_tx("mailbox_id = ?", (mailbox_id,))
    return mailbox, uids, row[0], keywords


def _keywords_tx(
    condition: str, params: tuple[int, ...], known: Sequence[str] = ()
) -> Tx[tuple[str, ...]]:
    """The keywords set on the messages that match ``condition``, merged with
    ``known``, each spelled once (keywords compare case-insensitively), sorted. A folder
    has a handful of distinct keyword sets, so this reads little beyond one pass."""
    rows = yield All(
        f"SELECT DISTINCT keywords FROM messages WHERE keywords <> '' AND {condition}",
        params,
    )
    found = {keyword.lower(): keyword for keyword in known}
    for (text,) in rows:
        for keyword in str(text).split():
            found.setdefault(keyword.lower(), keyword)
    return tuple(sorted(found.values(), key=str.lower))


def _changed_uids(mailbox: Mailbox, known: KnownUids) -> Tx[array[int] | None]:
    """``known.uids`` brought up to date, or None when the expunge log no longer reaches
    back to it (trimmed) or it is not behind."""
    row = yield One("SELECT expunge_log_start FROM mailboxes WHERE id = ?", (mailbox.id,))
    if row is None or known.highestmodseq < row[0] or known.uidnext > mailbox.uidnext:
        return None
    gone = yield Column(
        "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ?",
        (mailbox.id, known.highestmodseq),
    )
    new = yield Column(
        "SELECT uid FROM messages WHERE mailbox_id = ? AND uid >= ? ORDER BY uid",
        (mailbox.id, known.uidnext),
    )
    if not gone:
        uids = known.uids[:]
    else:
        doomed = set(gone)
        uids = array("q", [uid for uid in known.uids if uid not in doomed])
    uids.extend(new)
    return uids


def changed_since(
    mailbox_id: int, uidnext: int, modseq: int, dialect: Dialect
) -> Tx[tuple[str, tuple[int, ...]]]:
    """An SQL condition on ``messages`` true for the mailbox's messages whose MODSEQ is
    above ``modseq``, and its parameters.

    Where MODSEQ is not indexed (``Dialect.logs_flag_changes``), the candidates are the
    messages added since (``created_modseq``) and those a logged change of flags named
    since, each looked up and tested: a later change, or a merged log row, may name one
    twice or name one whose flags changed earlier. Looking up a candidate costs about as
    much as reading 16 rows in order, so when there are more than a sixteenth of
    UIDNEXT (a STORE on a whole folder, a client long away) the mailbox is read whole."""
    scan = ("mailbox_id = ? AND modseq > ?", (mailbox_id, modseq))
    if not dialect.logs_flag_changes:
        return scan
    row = yield One(
        "SELECT (SELECT coalesce(sum(cardinality(uids)), 0) FROM flag_changes"
        " WHERE mailbox_id = ? AND modseq > ?)"
        " + (SELECT count(*) FROM (SELECT 1 FROM messages"
        " WHERE mailbox_id = ? AND created_modseq > ? LIMIT ?) AS added)",
        (mailbox_id, modseq, mailbox_id, modseq, _LOOKUPS_MAX),
    )
    if not few_enough(row[0], uidnext):
        return scan
    return (
        "mailbox_id = ? AND modseq > ? AND uid IN ("
        "SELECT uid FROM messages WHERE mailbox_id = ? AND created_modseq > ?"
        " UNION ALL SELECT unnest(uids) FROM flag_changes"
        " WHERE mailbox_id = ? AND modseq > ?)",
        (mailbox_id, modseq) * 3,
    )


_LOOKUPS_MAX = 100_000
"""More candidates than this are not counted: the mailbox is read whole."""


def few_enough(candidates: int, uidnext: int) -> bool:
    """Whether looking up ``candidates`` messages costs less than reading the mailbox."""
    return candidates < _LOOKUPS_MAX and candidates * 16 <= uidnext


def changes_since_tx(mailbox_id: int, modseq: int, dialect: Dialect) -> Tx[Changes]:
    row = yield One(
        "SELECT highestmodseq, uidnext, expunge_log_start FROM mailboxes WHERE id = ?",
        (mailbox_id,),
    )
    if row is None:
        raise NotFound("mailbox does not exist (it may have been deleted)")
    highest, uidnext, log_start = row
    condition, params = yield from changed_since(mailbox_id, uidnext, modseq, dialect)
    changed = yield All(
        f"SELECT uid, modseq, flags, keywords FROM messages WHERE {condition} ORDER BY uid",
        params,
    )
    expunged = yield All(
        "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
        (mailbox_id, modseq),
    )
    return Changes(
        highest,
        uidnext,
        tuple(MessageState(r[0], r[1], r[2], _keywords(r[3])) for r in changed),
        tuple(r[0] for r in expunged),
        modseq >= log_start,
    )


def _keywords(text: str) -> tuple[str, ...]:
    return tuple(text.split()) if text else ()


_FETCH_COLUMNS: list[tuple[FetchField, tuple[str, ...], bool]] = [
    (FetchField.FLAGS, ("m.flags", "m.keywords"), False),
    (FetchField.INTERNALDATE, ("m.internaldate", "m.internaldate_tz"), False),
    (FetchField.SIZE, ("m.size",), False),
    (FetchField.ENVELOPE, ("c.envelope",), True),
    (FetchField.BODY, ("c.body",), True),
    (FetchField.BODYSTRUCTURE, ("c.bodystructure",), True),
    (FetchField.STRUCTURE, ("c.structure",), True),
    (FetchField.HEADER, ("c.header",), True),
    (FetchField.BLOB, ("c.blob",), True),
    (FetchField.PREVIEW, ("c.preview",), True),
    (FetchField.OBJECTID, ("m.content_id", "m.thread_id"), False),
    (FetchField.SAVEDATE, ("m.savedate",), False),
    (FetchField.POP3, ("m.downloaded",), False),
]


def fetch_tx(mailbox_id: int, uids: Sequence[int], fields: FetchField) -> Tx[list[MessageRow]]:
    if not uids:
        return []
    columns, join, build = _fetch_plan(fields)
    condition, params, keep = _uid_condition(uids, "m.uid")
    source = "messages m JOIN contents c ON c.id = m.content_id" if join else "messages m"
    rows = yield All(
        f"SELECT {columns} FROM {source} WHERE m.mailbox_id = ? AND {condition} ORDER BY m.uid",
        (mailbox_id, *params),
    )
    if keep is not None:
        rows = [row for row in rows if row[0] in keep]
    return [build(row) for row in rows]


_RowBuilder = Callable[[Row], MessageRow]


@functools.lru_cache(maxsize=64)
def _fetch_plan(fields: FetchField) -> tuple[str, bool, _RowBuilder]:
    """The columns to select, whether contents is joined, and the function turning a
    result row into a ``MessageRow``: decided once per combination of fields, because a
    FETCH of a large folder builds a row object per message."""
    wanted = [(f, cols) for f, cols, _ in _FETCH_COLUMNS if f & fields]
    join = any(content for f, _, content in _FETCH_COLUMNS if content and f & fields)
    columns = ", ".join(["m.uid", "m.modseq"] + [c for _, cols in wanted for c in cols])
    # (MessageRow field, how to get its value from a result row) per loaded value.
    steps: list[tuple[str, Callable[[Row], Any]]] = []
    i = 2
    for field, cols in wanted:
        if field is FetchField.FLAGS:
            steps += [("flags", itemgetter(i)), ("keywords", _column(_keywords, i + 1))]
        elif field is FetchField.INTERNALDATE:
            steps.append(("internaldate", _date_column(i)))
        elif field is FetchField.OBJECTID:
            steps += [("email_id", _column(email_id, i)), ("thread_id", _column(thread_id, i + 1))]
        elif field is FetchField.SAVEDATE:
            steps.append(("savedate", _column(from_epoch, i)))
        elif field is FetchField.POP3:
            steps.append(("downloaded_at", _column(_optional_epoch, i)))
        elif field & _BINARY:
            steps.append((_ROW_FIELD[field], _column(_as_bytes, i)))
        else:
            steps.append((_ROW_FIELD[field], itemgetter(i)))
        i += len(cols)
    order = {f.name: n for n, f in enumerate(dataclasses.fields(MessageRow))}
    defaults: list[Any] = [f.default for f in dataclasses.fields(MessageRow)]
    plan = [(order[name], get) for name, get in steps]

    def build(row: Row) -> MessageRow:
        values = defaults.copy()
        values[0] = row[0]
        values[1] = row[1]
        for position, get in plan:
            values[position] = get(row)
        return MessageRow(*values)

    return columns, join, build


def _column(convert: Callable[[Any], Any], index: int) -> Callable[[Row], Any]:
    def get(row: Row) -> Any:
        return convert(row[index])

    return get


def _date_column(index: int) -> Callable[[Row], datetime]:
    def get(row: Row) -> datetime:
        return from_epoch(row[index], row[index + 1])

    return get


def _as_bytes(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


def _optional_epoch(value: int | None) -> datetime | None:
    return None if value is None else from_epoch(value)


_ROW_FIELD = {
    FetchField.SIZE: "size",
    FetchField.ENVELOPE: "envelope",
    FetchField.BODY: "body",
    FetchField.BODYSTRUCTURE: "bodystructure",
    FetchField.STRUCTURE: "structure",
    FetchField.HEADER: "header",
    FetchField.BLOB: "blob",
    FetchField.PREVIEW: "preview",
}
_BINARY = (
    FetchField.ENVELOPE
    | FetchField.BODY
    | FetchField.BODYSTRUCTURE
    | FetchField.STRUCTURE
    | FetchField.HEADER
)


def thread_headers_tx(mailbox_id: int, uids: Sequence[int]) -> Tx[list[ThreadHeaders]]:
    if not uids:
        return []
    condition, params, keep = _uid_condition(uids, "m.uid")
    rows = yield All(
        "SELECT m.uid, c.message_id, c.in_reply_to, c.references_, c.subject,"
        " c.base_subject, coalesce(c.sent_date, m.internaldate)"
        " FROM messages m JOIN contents c ON c.id = m.content_id"
        f" WHERE m.mailbox_id = ? AND {condition} ORDER BY m.uid",
        (mailbox_id, *params),
    )
    return [
        ThreadHeaders(r[0], r[1], r[2], tuple(r[3].split()), r[4], r[5], r[6])
        for r in rows
        if keep is None or r[0] in keep
    ]


@replayable
def store_flags_tx(
    mailbox_id: int,
    uids: Sequence[int],
    mode: FlagMode,
    flags: int,
    keywords: Sequence[str],
    unchanged_since: int | None,
    dialect: Dialect,
    flag_mask: int = -1,
    keywords_allowed: bool = True,
) -> Tx[FlagResult]:
    """Change flags; system flags outside ``flag_mask`` and, unless ``keywords_allowed``,
    keywords are left as they are (RFC 4314 4: a user without the right to a flag
    changes the others)."""
    mailbox = yield from _require_mailbox(mailbox_id, lock=True)
    # int(): an IntFlag makes each | and & below build an enum member (half the CPU of
    # a STORE on all), and asyncpg would take one, which is iterable, for an array.
    flags = int(flags) & flag_mask
    condition, params, keep = _uid_condition(uids)
    rows = yield All(
        f"SELECT uid, modseq, flags, keywords FROM messages WHERE mailbox_id = ? AND {condition}"
        " ORDER BY uid",
        (mailbox_id, *params),
    )
    given = {k.lower(): k for k in keywords}
    failed: list[int] = []
    updates: list[tuple[int, tuple[str, ...], int]] = []
    # uid, MODSEQ (None: changed, so the new one), flags and keywords after
    found: list[tuple[int, int | None, int, tuple[str, ...]]] = []
    for uid, modseq, old_flags, old_text in rows:
        if keep is not None and uid not in keep:
            continue
        old_keywords = _keywords(old_text)
        if unchanged_since is not None and modseq > unchanged_since:
            failed.append(uid)
            found.append((uid, modseq, old_flags, old_keywords))
            continue
        if mode is FlagMode.ADD:
            new_flags = old_flags | flags
            new_keywords = (
                normalize_keywords([*old_keywords, *given.values()]) if given else old_keywords
            )
        elif mode is FlagMode.REMOVE:
            new_flags = old_flags & ~flags
            new_keywords = tuple(k for k in old_keywords if k.lower() not in given)
        else:
            new_flags = (old_flags & ~flag_mask) | flags
            new_keywords = normalize_keywords(given.values())
        if not keywords_allowed:
            new_keywords = old_keywords
        if new_flags != old_flags or new_keywords != old_keywords:
            updates.append((uid, new_keywords, new_flags))
            found.append((uid, None, new_flags, new_keywords))
        else:
            found.append((uid, modseq, old_flags, old_keywords))
    if not updates:
        change = ChangeSet(
            mailbox.account_id, mailbox_id, mailbox.highestmodseq, mailbox.highestmodseq
        )
        return FlagResult(change, tuple(failed), _states(found, mailbox.highestmodseq))
    modseq = yield from _bump(mailbox)
    yield Batch(
        "UPDATE messages SET flags = ?2, keywords = ?3, modseq = ?4"
        " WHERE mailbox_id = ?5 AND uid = ?1",
        "UPDATE messages m SET flags = u.flags, keywords = u.keywords, modseq = $4"
        " FROM unnest($1::bigint[], $2::int[], $3::text[]) AS u(uid, flags, keywords)"
        " WHERE m.mailbox_id = $5 AND m.uid = u.uid",
        [(uid, f, " ".join(k)) for uid, k, f in updates],
        (modseq, mailbox_id),
    )
    if dialect.logs_flag_changes:
        yield Exec(
            "INSERT INTO flag_changes (mailbox_id, modseq, uids) VALUES (?, ?, ?)",
            (mailbox_id, modseq, [uid for uid, _, _ in updates]),
        )
    states = tuple(MessageState(uid, modseq, f, k) for uid, k, f in updates)
    change = ChangeSet(
        mailbox.account_id, mailbox_id, mailbox.highestmodseq, modseq, changed=states
    )
    return FlagResult(change, tuple(failed), _states(found, modseq))


def _states(
    found: list[tuple[int, int | None, int, tuple[str, ...]]], modseq: int
) -> tuple[MessageState, ...]:
    return tuple(MessageState(uid, modseq if m is None else m, f, k) for uid, m, f, k in found)


@replayable
def expunge_tx(
    mailbox_id: int, uids: Sequence[int] | None, now: int, *, only_deleted: bool = True
) -> Tx[ChangeSet]:
    """Expunge the \\Deleted messages (of ``uids``, or all); with ``only_deleted`` False,
    exactly ``uids`` whatever their flags (POP3's deletions at QUIT)."""
    mailbox = yield from _require_mailbox(mailbox_id, lock=True)
    flag = int(SystemFlag.DELETED) if only_deleted else 0
    condition, params, keep = ("1 = 1", [], None) if uids is None else _uid_condition(uids)
    rows = yield All(
        "SELECT uid, content_id, size FROM messages"
        f" WHERE mailbox_id = ? AND flags & {flag} = {flag} AND {condition} ORDER BY uid",
        (mailbox_id, *params),
    )
    rows = [r for r in rows if keep is None or r[0] in keep]
    return (yield from _remove_messages(mailbox, rows, now, release=True))


def _remove_messages(
    mailbox: Mailbox, rows: Sequence[Row], now: int, *, release: bool
) -> Tx[ChangeSet]:
    """Expunge ``rows`` (uid, content_id, size) and log them for VANISHED."""
    if not rows:
        return ChangeSet(
            mailbox.account_id, mailbox.id, mailbox.highestmodseq, mailbox.highestmodseq
        )
    modseq = yield from _bump(mailbox)
    uids = [(r[0],) for r in rows]
    yield Batch(
        "DELETE FROM messages WHERE mailbox_id = ?2 AND uid = ?1",
        "DELETE FROM messages WHERE mailbox_id = $2 AND uid = ANY($1::bigint[])",
        uids,
        (mailbox.id,),
    )
    yield Batch(
        "INSERT INTO expunged (mailbox_id, uid, modseq, at) VALUES (?2, ?1, ?3, ?4)",
        "INSERT INTO expunged (mailbox_id, uid, modseq, at)"
        " SELECT $2::bigint, uid, $3::bigint, $4::bigint FROM unnest($1::bigint[]) AS u(uid)",
        uids,
        (mailbox.id, modseq, now),
    )
    if release:
        yield from _release_contents((r[1] for r in rows), now)
        yield from _add_usage(mailbox.account_id, -sum(r[2] for r in rows), -len(rows))
    return ChangeSet(
        mailbox.account_id,
        mailbox.id,
        mailbox.highestmodseq,
        modseq,
        expunged=tuple(r[0] for r in rows),
    )


@replayable
def copy_tx(
    source_id: int,
    uids: Sequence[int],
    target_id: int,
    move: bool,
    now: int,
    flag_mask: int = -1,
    keywords_allowed: bool = True,
) -> Tx[CopyResult]:
    """Copy (or move) messages; the copies keep only the system flags in ``flag_mask``
    and, if ``keywords_allowed``, their keywords (RFC 4314 4: flags the user may not set
    in the target are not stored)."""
    # Both rows locked in id order, so that moves in opposite directions queue instead
    # of deadlocking (concurrent writers: PostgreSQL).
    low, high = sorted((source_id, target_id))
    locked_low = yield from _require_mailbox(low, lock=True)
    locked_high = locked_low if high == low else (yield from _require_mailbox(high, lock=True))
    source, target = (locked_low, locked_high) if source_id == low else (locked_high, locked_low)
    condition, params, keep = _uid_condition(uids)
    rows = yield All(
        "SELECT uid, flags, keywords, internaldate, internaldate_tz, size, content_id,"
        f" thread_id FROM messages WHERE mailbox_id = ? AND {condition} ORDER BY uid",
        (source_id, *params),
    )
    rows = [r for r in rows if keep is None or r[0] in keep]
    if not rows:
        return CopyResult((), (), target, ())
    total = sum(r[5] for r in rows)
    same_owner = source.account_id == target.account_id
    if not (move and same_owner):
        yield from _check_quota(target.account_id, total, len(rows))
    if source_id == target_id:
        target = source
    first = target.uidnext
    modseq = yield from _bump(target, first + len(rows))
    inserts = []
    states = []
    for offset, (_, flags, keywords, date, tz, size, content_id, thread) in enumerate(rows):
        uid = first + offset
        flags &= flag_mask
        if not keywords_allowed:
            keywords = ""
        inserts.append((uid, int(flags), keywords, date, tz, size, content_id, thread))
        states.append(MessageState(uid, modseq, flags, _keywords(keywords)))
    yield Batch(
        _INSERT_INTO_MESSAGES + " VALUES (?9, ?1, ?10, ?10, ?2, ?3, ?4, ?5, ?11, ?6, ?7, ?8)",
        _INSERT_INTO_MESSAGES
        + " SELECT $9::bigint, u.uid, $10::bigint, $10, u.flags, u.keywords, u.internaldate,"
        " u.tz, $11::bigint, u.size, u.content_id, u.thread_id"
        " FROM unnest($1::bigint[], $2::int[], $3::text[], $4::bigint[], $5::bigint[],"
        " $6::bigint[], $7::bigint[], $8::bigint[])"
        " AS u(uid, flags, keywords, internaldate, tz, size, content_id, thread_id)",
        inserts,
        (target_id, modseq, now),
    )
    changes: list[ChangeSet] = [
        ChangeSet(
            target.account_id,
            target_id,
            target.highestmodseq,
            modseq,
            appended=tuple(states),
            uidnext=first + len(rows),
        )
    ]
    updated_target = Mailbox(
        target.id,
        target.account_id,
        target.name,
        target.uidvalidity,
        first + len(rows),
        modseq,
        target.special_use,
    )
    if move:
        # MOVE within one mailbox (RFC 9051 6.4.8 allows it) gives the messages new UIDs:
        # the expunge then follows the append, in MODSEQ order.
        same_mailbox = source_id == target_id
        removed = yield from _remove_messages(
            updated_target if same_mailbox else source,
            [(r[0], r[6], r[5]) for r in rows],
            now,
            release=False,
        )
        changes.insert(len(changes) if same_mailbox else 0, removed)
        if same_mailbox:
            updated_target = dataclasses.replace(updated_target, highestmodseq=removed.after)
        if not same_owner:
            yield from _add_usage(source.account_id, -total, -len(rows))
            yield from _add_usage(target.account_id, total, len(rows))
    else:
        counts: dict[int, int] = {}
        for r in rows:
            counts[r[6]] = counts.get(r[6], 0) + 1
        yield Many(
            "UPDATE content_refs SET refs = refs + ? WHERE content_id = ?",
            [(n, c) for c, n in sorted(counts.items())],
        )
        yield from _add_usage(target.account_id, total, len(rows))
    return CopyResult(
        tuple(r[0] for r in rows),
        tuple(range(first, first + len(rows))),
        updated_target,
        tuple(changes),
    )


@replayable
def mark_downloaded_tx(mailbox_id: int, uids: Sequence[int], now: int) -> Tx[None]:
    yield Many(
        "UPDATE messages SET downloaded = ? WHERE mailbox_id = ? AND uid = ?"
        " AND downloaded IS NULL",
        [(now, mailbox_id, uid) for uid in uids],
    )


@replayable
def trim_expunge_log_tx(cutoff: int) -> Tx[int]:
    """Forget expunges logged before ``cutoff`` (seconds since the epoch); each mailbox
    remembers up to which MODSEQ its log is incomplete, so QRESYNC can tell."""
    rows = yield All(
        "SELECT mailbox_id, max(modseq) FROM expunged WHERE at < ? GROUP BY mailbox_id",
        (cutoff,),
    )
    yield Many(
        # Not max(a, b): PostgreSQL spells the two-argument maximum greatest().
        "UPDATE mailboxes SET expunge_log_start = ? WHERE id = ? AND expunge_log_start < ?",
        [(modseq, mailbox_id, modseq) for mailbox_id, modseq in rows],
    )
    yield Many(
        "DELETE FROM expunged WHERE mailbox_id = ? AND modseq <= ?",
        [(mailbox_id, modseq) for mailbox_id, modseq in rows],
    )
    return len(rows)


FLAG_LOG_KEEP = 32
"""Rows of a mailbox's ``flag_changes`` that ``compact_flag_log_tx`` leaves as they are
(the newest); it merges the older ones once there are twice as many."""


@replayable
def compact_flag_log_tx() -> Tx[int]:
    """Merge the older rows of each long ``flag_changes`` log into one (PostgreSQL,
    migration 0013); returns how many mailboxes' logs were merged.

    The log gets a row per change of flags, naming UIDs that later changes name again
    and messages long expunged. The rows up to some MODSEQ are replaced by one row at it
    naming the messages whose flags last changed at or below it: every message whose
    MODSEQ is above any lower one is still found, through this row, a newer one, or
    ``created_modseq``."""
    rows = yield All(
        "SELECT mailbox_id FROM flag_changes GROUP BY mailbox_id HAVING count(*) > ?",
        (2 * FLAG_LOG_KEEP,),
    )
    for (mailbox_id,) in rows:
        # The mailbox's row locked, as a STORE locks it: no change lands meanwhile.
        locked = yield One("SELECT 1 FROM mailboxes WHERE id = ?", (mailbox_id,), for_update=True)
        if locked is None:
            continue
        row = yield One(
            "SELECT modseq FROM flag_changes WHERE mailbox_id = ?"
            " ORDER BY modseq DESC LIMIT 1 OFFSET ?",
            (mailbox_id, FLAG_LOG_KEEP),
        )
        upto = row[0]
        uids = yield Column(
            "SELECT uid FROM messages WHERE mailbox_id = ? AND modseq > created_modseq"
            " AND modseq <= ? ORDER BY uid",
            (mailbox_id, upto),
        )
        yield Exec(
            "DELETE FROM flag_changes WHERE mailbox_id = ? AND modseq <= ?", (mailbox_id, upto)
        )
        if uids:
            yield Exec(
                "INSERT INTO flag_changes (mailbox_id, modseq, uids) VALUES (?, ?, ?)",
                (mailbox_id, upto, list(uids)),
            )
    return len(rows)


def garbage_tx(limit: int) -> Tx[list[tuple[int, str]]]:
    rows = yield All("SELECT content_id, blob FROM garbage ORDER BY content_id LIMIT ?", (limit,))
    return [(r[0], r[1]) for r in rows]


@replayable
def collect_tx(items: Sequence[tuple[int, str, tuple[str, str] | None]]) -> Tx[int]:
    """Forget collected contents: their index text (when known) and, unless a new
    contents row took the same blob meanwhile, the blob itself."""
    for content_id, blob, texts in items:
        if texts is not None:
            yield FtsDelete(content_id, *texts)
        yield Exec("DELETE FROM garbage WHERE content_id = ?", (content_id,))
        if not (yield One("SELECT 1 FROM contents WHERE blob = ?", (blob,))):
            yield DeleteBlob(blob)
    return len(items)


def now_utc() -> datetime:
    return datetime.now(UTC)
