"""The store interface, in domain terms, shared by every backend.

Invariants every backend keeps (and ``tests/store/test_contract.py`` checks):

* A mailbox is a log. UIDs grow strictly and are never reused; every change to a
  mailbox (append, flag change, expunge) takes the next MODSEQ of that mailbox, and
  HIGHESTMODSEQ never goes backwards. Expunges are remembered with their MODSEQ so
  that ``changes_since`` can answer VANISHED.
* Acknowledged means durable: a write method returns only after its transaction is
  committed and synced, and blobs are synced before the rows that name them.
* Every write returns the ``ChangeSet``s it caused; the store publishes them on its
  ``hub`` after commit, in commit order.
* Message bodies are immutable blobs addressed by content hash; identical messages are
  stored once.

The store never sees sequence numbers or wire syntax: callers translate first.
"""

from __future__ import annotations

import enum
from array import array
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from mailkeep.mail.message import ParsedMessage
from mailkeep.store.changes import ChangeSet, MessageState
from mailkeep.store.hub import Hub
from mailkeep.store.query import Query, SortKey

# ---------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    address: str
    quota_bytes: int | None
    quota_messages: int | None
    used_bytes: int
    used_messages: int
    settings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What authentication needs; the store never sees a clear-text password."""

    account_id: int
    address: str
    password_hash: str
    """argon2id hash in PHC string format."""
    scram_sha256: str | None
    """``iterations$salt_b64$stored_key_b64$server_key_b64`` (RFC 5802 keys), or None."""


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: int
    account_id: int
    name: str
    """Full UTF-8 name with ``/`` as the hierarchy separator; ``INBOX`` is spelled so."""
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None
    """``\\Sent``, ``\\Drafts``, ``\\Trash``, ``\\Junk``, ``\\Archive``, ... or None."""


@dataclass(frozen=True, slots=True)
class Grant:
    """One access control entry (RFC 4314) with its mailbox and the mailbox's owner:
    what a grantee needs to list the mailboxes shared with it."""

    mailbox: Mailbox
    owner: str
    """The owner account's address."""
    identifier: str
    rights: str
    """RFC 4314 rights letters, in the order ``lrswipkxtea``."""


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    mailbox: Mailbox
    messages: int
    unseen: int
    deleted: int
    size: int
    """Sum of RFC822.SIZE of the messages (STATUS SIZE, RFC 8438)."""
    deleted_size: int = 0
    """Sum of RFC822.SIZE of the \\Deleted messages (STATUS DELETED-STORAGE, RFC 9208)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What SELECT needs: the UIDs in order, as a compact array, and the log position."""

    mailbox: Mailbox
    uids: array[int]
    """Ascending UIDs (a compact ``array('q')``); a message's sequence number is its
    index + 1. Shared with other snapshots of the same mailbox state: never modify it."""
    first_unseen_uid: int | None
    recent_from_uid: int
    """Messages with UID >= this are \\Recent for the session that took the snapshot."""
    keywords: tuple[str, ...]
    """The keywords set on its messages, each spelled once (keywords compare
    case-insensitively), for the FLAGS response of SELECT (RFC 9051 7.3.5)."""


class FetchField(enum.Flag):
    """Which message data a fetch should load; the store loads only those."""

    FLAGS = enum.auto()
    INTERNALDATE = enum.auto()
    SIZE = enum.auto()
    ENVELOPE = enum.auto()
    BODY = enum.auto()
    BODYSTRUCTURE = enum.auto()
    STRUCTURE = enum.auto()
    HEADER = enum.auto()
    BLOB = enum.auto()
    PREVIEW = enum.auto()
    OBJECTID = enum.auto()
    SAVEDATE = enum.auto()
    POP3 = enum.auto()


@dataclass(slots=True, unsafe_hash=True)
class MessageRow:
    """One message as loaded by ``fetch``; fields not asked for are left at their defaults.

    Treat it as immutable (``dataclasses.replace`` for a changed copy). It is not declared
    frozen only because one is built per message of every FETCH, and a frozen dataclass's
    ``__init__`` (one ``object.__setattr__`` per field) costs 1.6 us against 0.2 us."""

    uid: int
    modseq: int
    flags: int = 0
    keywords: tuple[str, ...] = ()
    internaldate: datetime | None = None
    size: int = 0
    envelope: bytes = b""
    body: bytes = b""
    bodystructure: bytes = b""
    structure: bytes = b""
    header: bytes = b""
    blob: str = ""
    """Content hash of the raw message, for ``open_blob``."""
    preview: str = ""
    email_id: str = ""
    thread_id: str = ""
    savedate: datetime | None = None
    downloaded_at: datetime | None = None
    """When POP3 first downloaded the message (RETR), for retention policies."""


@dataclass(frozen=True, slots=True)
class ThreadHeaders:
    """What THREAD needs of one message (RFC 5256), as stored at delivery."""

    uid: int
    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    subject: str
    """Decoded and casefolded."""
    base_subject: str
    """RFC 5256 2.1 base subject, casefolded."""
    date: int
    """Sent date (RFC 5256 2.2) in seconds since the epoch; the internal date when the
    message has no valid Date header."""


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to append: raw bytes, their parse, and its initial state."""

    raw: bytes
    parsed: ParsedMessage
    flags: int = 0
    keywords: tuple[str, ...] = ()
    internaldate: datetime | None = None
    """None means now."""


class FlagMode(enum.Enum):
    ADD = "+"
    REMOVE = "-"
    REPLACE = ""


@dataclass(frozen=True, slots=True)
class Changes:
    """Answer to ``changes_since``: the current state of every message changed after a
    MODSEQ, and the UIDs expunged after it (when the expunge log reaches back that far)."""

    highestmodseq: int
    uidnext: int
    changed: tuple[MessageState, ...]
    expunged: tuple[int, ...]
    expunge_log_complete: bool
    """False when the expunge log was trimmed after the asked MODSEQ: the caller must
    compare UIDs instead (QRESYNC does)."""


@dataclass(frozen=True, slots=True)
class AppendResult:
    mailbox: Mailbox
    uids: tuple[int, ...]
    change: ChangeSet
    usage: Usage | None = None
    """The owner's quota and usage as the append left them."""


@dataclass(frozen=True, slots=True)
class Usage:
    """An account's quotas (None: none) and what it uses."""

    quota_bytes: int | None
    quota_messages: int | None
    used_bytes: int
    used_messages: int


@dataclass(frozen=True, slots=True)
class CopyResult:
    source_uids: tuple[int, ...]
    target_uids: tuple[int, ...]
    target: Mailbox
    changes: tuple[ChangeSet, ...]


@dataclass(frozen=True, slots=True)
class FlagResult:
    change: ChangeSet
    failed_unchangedsince: tuple[int, ...] = ()
    """UIDs not changed because their MODSEQ was above UNCHANGEDSINCE (RFC 7162 3.1.3)."""
    found: tuple[MessageState, ...] = ()
    """Every message of the set the transaction found, as it left them, in UID order
    (what STORE reports, without reading them again)."""


# ---------------------------------------------------------------------------- interface

SMALL_BLOB = 256 * 1024
"""Messages up to this size are worth reading whole ahead of use, many per query
(``Store.open_small_blobs``), whatever part of them is wanted; larger ones are streamed
from ``Store.open_blob``, unless within ``WHOLE_BLOB``."""
WHOLE_BLOB = 2 * 2**20
"""Messages up to this size are read ahead whole too where all of each is sent (FETCH
BODY[], POP3 RETR): one query for many messages, where streaming one is a round trip
before its first octet."""


class BlobReader(Protocol):
    """Random access to one stored message's raw bytes."""

    size: int

    async def read(self, offset: int, length: int) -> bytes: ...

    def chunks(self, offset: int, length: int, chunk: int = 65536) -> AsyncIterator[bytes]: ...

    async def close(self) -> None: ...


class Store(Protocol):
    hub: Hub
    remote_reads: bool
    """Every read is a round trip to a database server: reading many small messages in
    one query (``open_small_blobs``) pays even where the caller must wait for it."""

    async def close(self) -> None: ...

    # accounts
    async def create_account(
        self,
        address: str,
        password_hash: str,
        scram_sha256: str | None,
        *,
        quota_bytes: int | None = None,
        quota_messages: int | None = None,
        mailboxes: Sequence[tuple[str, str | None]] = (),
    ) -> Account: ...
    async def get_account(self, address: str) -> Account | None: ...
    async def get_account_by_id(self, account_id: int) -> Account | None: ...
    async def list_accounts(self) -> list[Account]: ...
    async def delete_account(self, account_id: int) -> None: ...
    async def get_credentials(self, address: str) -> Credentials | None: ...
    async def set_credentials(
        self, account_id: int, password_hash: str, scram_sha256: str | None
    ) -> None: ...
    async def set_quota(
        self, account_id: int, quota_bytes: int | None, quota_messages: int | None
    ) -> None: ...
    async def set_account_setting(self, account_id: int, key: str, value: str | None) -> None: ...

    # mailboxes
    async def list_mailboxes(self, account_id: int) -> list[Mailbox]: ...
    async def get_mailbox(self, account_id: int, name: str) -> Mailbox | None: ...
    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox | None: ...
    async def create_mailbox(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox: ...
    async def delete_mailbox(self, mailbox_id: int) -> None: ...
    async def rename_mailbox(self, account_id: int, old: str, new: str) -> None:
        """Rename a mailbox and its children; renaming INBOX moves its messages into a
        new mailbox and leaves INBOX empty (RFC 9051 6.3.6)."""
        ...

    async def set_special_use(self, mailbox_id: int, special_use: str | None) -> None: ...
    async def list_subscriptions(self, account_id: int) -> list[str]: ...
    async def subscribe(self, account_id: int, name: str, subscribed: bool) -> None: ...
    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus: ...

    # messages
    async def append(
        self, mailbox_id: int, messages: Sequence[NewMessage], *, check_quota: bool = True
    ) -> AppendResult:
        """Append all messages atomically (MULTIAPPEND); raises QuotaExceeded."""
        ...

    async def append_each(
        self, appends: Sequence[tuple[int, Sequence[NewMessage]]]
    ) -> list[AppendResult | Exception]:
        """Several independent ``append``s (mailbox id, messages), in order, one result
        or error each; where the backend can, they share one commit (pipelined APPEND)."""
        ...

    async def snapshot(self, mailbox_id: int, *, claim_recent: bool = False) -> Snapshot: ...
    def claim_recent(self, mailbox_id: int, uidnext: int) -> int:
        """Make messages below ``uidnext`` non-\\Recent for every other session; return
        the UID from which they are \\Recent for the caller (RFC 3501 2.3.2)."""
        ...

    def recent_boundary(self, mailbox_id: int, uidnext: int) -> int:
        """The first \\Recent UID the next claiming session would get, without claiming."""
        ...

    async def changes_since(self, mailbox_id: int, modseq: int) -> Changes: ...
    async def fetch(
        self, mailbox_id: int, uids: Sequence[int], fields: FetchField
    ) -> list[MessageRow]:
        """Rows for those of ``uids`` that exist, ascending by UID."""
        ...

    async def open_blob(self, blob: str) -> BlobReader: ...
    async def open_small_blobs(self, blobs: Sequence[str]) -> dict[str, BlobReader]:
        """Readers for those of ``blobs`` the store reads whole in one query, for a
        caller about to read many (up to ``SMALL_BLOB`` each, or ``WHOLE_BLOB`` where it
        sends them whole): one round trip instead of one each. Any blob left out is read
        with ``open_blob``; the readers hold no resources."""
        ...

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
        """Change the flags of ``uids``; system flags outside ``flag_mask`` and, unless
        ``keywords_allowed``, keywords stay as they are (ACL rights, RFC 4314 4)."""
        ...

    async def expunge(self, mailbox_id: int, uids: Sequence[int] | None = None) -> ChangeSet:
        """Expunge the \\Deleted messages (all of them, or those among ``uids``)."""
        ...

    async def remove(self, mailbox_id: int, uids: Sequence[int]) -> ChangeSet:
        """Expunge exactly ``uids`` whatever their flags, atomically (POP3 QUIT)."""
        ...

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
        """Copy (or move) in one transaction; the copies keep only the system flags in
        ``flag_mask`` and, if ``keywords_allowed``, their keywords."""
        ...

    async def search(self, mailbox_id: int, query: Query) -> list[int]:
        """UIDs of the messages matching ``query``, ascending."""
        ...

    async def index_pending(self) -> None:
        """Return once every message stored so far is in the full-text index. Searches
        see to it themselves; bulk imports call it, so that a server starting next does
        not begin with hours of indexing in the background."""
        ...

    async def sort(self, mailbox_id: int, keys: Sequence[SortKey], query: Query) -> list[int]: ...
    async def thread_headers(self, mailbox_id: int, uids: Sequence[int]) -> list[ThreadHeaders]:
        """THREAD's data for those of ``uids`` that exist, ascending by UID."""
        ...

    # access control lists (RFC 4314): entries granted to others; the owner's rights are
    # implicit and never stored. Identifiers are account addresses, ``anyone`` or
    # ``authenticated``.
    async def get_acl(self, mailbox_id: int) -> list[tuple[str, str]]:
        """(identifier, rights) of every entry of the mailbox, by identifier."""
        ...

    async def acl_rights(
        self, mailbox_id: int, identifiers: Sequence[str]
    ) -> list[tuple[str, str]]:
        """The mailbox's entries for any of ``identifiers``."""
        ...

    async def list_grants(self, identifiers: Sequence[str]) -> list[Grant]:
        """Every entry for any of ``identifiers`` in any account, by owner and name."""
        ...

    async def set_acl(
        self, mailbox_id: int, identifier: str, rights: str, mode: FlagMode = FlagMode.REPLACE
    ) -> str:
        """Replace, add or remove rights (an entry left empty goes); returns the
        identifier's rights afterwards."""
        ...

    async def delete_acl(self, mailbox_id: int, identifier: str) -> bool: ...

    # annotations (RFC 5464): of a mailbox, or of the server (``mailbox_id`` None).
    # Entry names are full and lower-cased (``/private/comment``); /private entries
    # belong to ``user_id``.
    async def list_metadata(self, mailbox_id: int | None, user_id: int) -> list[tuple[str, bytes]]:
        """The shared entries and ``user_id``'s private ones, by name."""
        ...

    async def set_metadata(
        self,
        mailbox_id: int | None,
        user_id: int,
        entries: Sequence[tuple[str, bytes | None]],
        *,
        max_entries: int,
    ) -> list[str]:
        """Set (None: remove) all entries or none; raises ``metadata.TooManyEntries``
        past ``max_entries`` per mailbox and owner. Returns the names that changed."""
        ...

    # POP3
    async def mark_downloaded(self, mailbox_id: int, uids: Sequence[int]) -> None: ...
    def maildrop_lock(self, account_id: int) -> AbstractAsyncContextManager[bool]:
        """Hold the account's POP3 maildrop; yields False when another session has it."""
        ...
