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
    mailbox_id: int | None = None
    """The mailbox concerned (None for subscriptions, which are names): sessions of other
    accounts watching it (a shared mailbox) hear of it too."""


@dataclass(frozen=True, slots=True)
class RightsChanged:
    """An entry of a mailbox's access control list changed (RFC 4314).

    Published to the owner's account and, when the identifier is an account, to that
    account too (``account_id`` is then the grantee's): NOTIFY counts gaining or losing
    the ``l`` right as the mailbox appearing or disappearing (RFC 5465 5.4).
    """

    account_id: int
    mailbox_id: int
    identifier: str


@dataclass(frozen=True, slots=True)
class MetadataChanged:
    """Annotations changed (RFC 5464), for NOTIFY's MailboxMetadataChange and
    ServerMetadataChange (RFC 5465 5.6, 5.7).

    ``account_id`` is the mailbox owner's; for server annotations it is the user's
    (``/private``) or ``SERVER_CHANNEL`` (``/shared``, every session may hear of it).
    ``private_to`` names the only account that may be told of ``/private`` entries.
    """

    account_id: int
    mailbox_id: int | None
    entries: tuple[str, ...]
    private_to: int | None = None


SERVER_CHANNEL = 0
"""The hub's account key for changes of the server itself (account ids start at 1)."""


Change = ChangeSet | MailboxTouched | MailboxEvent | RightsChanged | MetadataChanged
