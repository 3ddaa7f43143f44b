"""What a committed write did, as typed records the hub fans out to sessions."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MessageState:
    """A message's state after a change: what sessions need to update their view."""

    uid: int
    modseq: int
    flags: int
    keywords: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """Everything one transaction did to one mailbox, in MODSEQ order.

    ``before`` is the mailbox's HIGHESTMODSEQ before the transaction: a session whose
    view is exactly at ``before`` can apply the set directly; any other session catches
    up with ``Store.changes_since``.
    """

    account_id: int
    mailbox_id: int
    before: int
    after: int
    appended: tuple[MessageState, ...] = ()
    changed: tuple[MessageState, ...] = ()
    expunged: tuple[int, ...] = ()
    uidnext: int = 0


@dataclass(frozen=True, slots=True)
class MailboxTouched:
    """A mailbox changed somewhere we only heard of (another node): catch up from the log."""

    account_id: int
    mailbox_id: int
    highestmodseq: int


@dataclass(frozen=True, slots=True)
class MailboxEvent:
    """A mailbox was created, deleted, renamed or (un)subscribed (for LIST/NOTIFY)."""

    account_id: int
    kind: str
    """``created``, ``deleted``, ``renamed``, ``subscribed``, ``unsubscribed``."""
    name: str
    old_name: str | None = None


Change = ChangeSet | MailboxTouched | MailboxEvent
