"""What happens to mail a POP3 client has downloaded: the retention policies, per
server (``[pop3]`` in the config) and per account (account settings), and the expiry
job that enforces ``days:N``.

Policies (announced with RFC 2449 section 6.7 EXPIRE):

* ``keep`` — messages stay until the client deletes them (``EXPIRE NEVER``).
* ``delete-after-retr`` — a message downloaded with RETR is deleted when that session
  ends with QUIT, as if the client had sent DELE (``EXPIRE 0``). RSET does not undo it:
  EXPIRE 0 means mail cannot be left on the server. A dropped connection deletes nothing.
* ``days:N`` (N >= 1) — a message is deleted N days after its first download (RETR), by
  ``expire`` run from the background maintenance (``EXPIRE N``). Messages never
  downloaded are kept.

Account settings (``mailkeep pop3 policy``): ``pop3.retention`` overrides the policy,
``pop3.retr-marks-seen`` (``yes``/``no``) whether RETR sets ``\\Seen`` for IMAP users.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from mailkeep.config import Pop3Config
from mailkeep.errors import ConfigError, MailkeepError
from mailkeep.store.api import Account, FetchField
from mailkeep.store.names import INBOX
from mailkeep.store.sqlstore import SqlStore

log = logging.getLogger("mailkeep.pop3")

RETENTION_SETTING = "pop3.retention"
SEEN_SETTING = "pop3.retr-marks-seen"
DAY = 86400


class Kind(enum.Enum):
    KEEP = "keep"
    DELETE_AFTER_RETR = "delete-after-retr"
    DAYS = "days"


@dataclass(frozen=True, slots=True)
class Retention:
    kind: Kind
    days: int = 0

    def __str__(self) -> str:
        return f"days:{self.days}" if self.kind is Kind.DAYS else self.kind.value

    @property
    def expire(self) -> str:
        """The EXPIRE capability's argument (RFC 2449 section 6.7)."""
        match self.kind:
            case Kind.KEEP:
                return "NEVER"
            case Kind.DELETE_AFTER_RETR:
                return "0"
            case Kind.DAYS:
                return str(self.days)


KEEP = Retention(Kind.KEEP)


def parse_retention(text: str) -> Retention:
    """``keep``, ``delete-after-retr`` or ``days:N`` (N >= 1); raises ConfigError."""
    value = text.strip().lower()
    if value == Kind.KEEP.value:
        return KEEP
    if value == Kind.DELETE_AFTER_RETR.value:
        return Retention(Kind.DELETE_AFTER_RETR)
    prefix, _, number = value.partition(":")
    if prefix == "days" and number.isascii() and number.isdigit() and 0 < int(number) < 100000:
        return Retention(Kind.DAYS, int(number))
    raise ConfigError(
        f"POP3 retention {text!r} is not keep, delete-after-retr or days:N (N from 1 to 99999)"
    )


def parse_yes_no(text: str) -> bool:
    value = text.strip().lower()
    if value in {"yes", "true", "on", "1"}:
        return True
    if value in {"no", "false", "off", "0"}:
        return False
    raise ConfigError(f"{text!r} is neither yes nor no")


@dataclass(frozen=True, slots=True)
class Policy:
    """The rules in force for one account."""

    retention: Retention
    retr_marks_seen: bool


def server_policy(config: Pop3Config) -> Policy:
    """The server-wide default; raises ConfigError for a bad ``[pop3] retention``."""
    return Policy(parse_retention(config.retention), config.retr_marks_seen)


def account_policy(account: Account, config: Pop3Config) -> Policy:
    """The account's settings over the server's defaults. A malformed setting (written
    by hand into the database) falls back to the default, with a warning."""
    default = server_policy(config)
    retention, seen = default.retention, default.retr_marks_seen
    try:
        if RETENTION_SETTING in account.settings:
            retention = parse_retention(account.settings[RETENTION_SETTING])
        if SEEN_SETTING in account.settings:
            seen = parse_yes_no(account.settings[SEEN_SETTING])
    except ConfigError as exc:
        log.warning("%s: ignoring a malformed POP3 setting: %s", account.address, exc)
    return Policy(retention, seen)


# ---------------------------------------------------------------------------- expiry


@dataclass(frozen=True, slots=True)
class Expired:
    """What one expiry run did (or, dry, would do) to one account."""

    address: str
    uids: tuple[int, ...]
    skipped: bool = False
    """The maildrop was held by a POP3 session: tried again next run."""


async def expire_store(
    store: SqlStore, config: Pop3Config, *, dry_run: bool = False
) -> list[Expired]:
    """Delete from INBOX the messages of ``days:N`` accounts first downloaded more than
    N days ago (by the store's clock). An account whose maildrop a POP3 session holds is
    skipped, so that no session's snapshot changes under it (RFC 1939 section 8: the
    maildrop is locked while a session uses it)."""
    now = store.clock()
    results = []
    for account in await store.list_accounts():
        retention = account_policy(account, config).retention
        if retention.kind is not Kind.DAYS:
            continue
        mailbox = await store.get_mailbox(account.id, INBOX)
        if mailbox is None:
            continue
        async with store.maildrop_lock(account.id) as held:
            if not held:
                results.append(Expired(account.address, (), skipped=True))
                continue
            snapshot = await store.snapshot(mailbox.id)
            rows = await store.fetch(mailbox.id, snapshot.uids, FetchField.POP3)
            cutoff = now - retention.days * DAY
            uids = tuple(
                row.uid
                for row in rows
                if row.downloaded_at is not None and row.downloaded_at.timestamp() <= cutoff
            )
            if uids and not dry_run:
                change = await store.remove(mailbox.id, uids)
                uids = change.expunged
                log.info(
                    "POP3 retention %s: removed %d messages of %s",
                    retention,
                    len(uids),
                    account.address,
                )
            if uids:
                results.append(Expired(account.address, uids))
    return results


async def expire(store: SqlStore, config: Pop3Config) -> int:
    """One expiry run for the background maintenance; returns how many messages were
    deleted. Store failures are logged, not raised: the next run tries again."""
    try:
        return sum(len(e.uids) for e in await expire_store(store, config))
    except MailkeepError as exc:
        log.warning("POP3 retention expiry failed: %s", exc)
        return 0
