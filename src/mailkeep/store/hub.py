"""Fan committed changes out to the sessions watching them, in commit order.

Backends call ``publish`` on the event loop after each commit (never while a
transaction is open). A session owns one ``Listener``; the hub appends to it and wakes
it, and the session drains it at the moments its protocol allows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from mailkeep.store.changes import (
    Change,
    ChangeSet,
    MailboxEvent,
    MailboxTouched,
    MetadataChanged,
    RightsChanged,
)


class Listener:
    """One session's queue of changes that concern it."""

    __slots__ = ("_pending", "on_deliver")

    def __init__(self) -> None:
        self._pending: list[Change] = []
        self.on_deliver: Callable[[], None] | None = None
        """Called at each delivery: how a waiting session is woken (it checks
        ``has_pending`` before it waits)."""

    def deliver(self, change: Change) -> None:
        self._pending.append(change)
        if self.on_deliver is not None:
            self.on_deliver()

    def drain(self) -> list[Change]:
        pending, self._pending = self._pending, []
        return pending

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)


class Hub:
    def __init__(self) -> None:
        self._by_mailbox: defaultdict[int, set[Listener]] = defaultdict(set)
        self._by_account: defaultdict[int, set[Listener]] = defaultdict(set)

    def watch_mailbox(self, mailbox_id: int, listener: Listener) -> None:
        self._by_mailbox[mailbox_id].add(listener)

    def unwatch_mailbox(self, mailbox_id: int, listener: Listener) -> None:
        _discard(self._by_mailbox, mailbox_id, listener)

    def watch_account(self, account_id: int, listener: Listener) -> None:
        """Receive every change of every mailbox of the account (NOTIFY, LIST events)."""
        self._by_account[account_id].add(listener)

    def unwatch_account(self, account_id: int, listener: Listener) -> None:
        _discard(self._by_account, account_id, listener)

    def publish(self, changes: Iterable[Change]) -> None:
        for change in changes:
            targets: set[Listener] = set(self._by_account.get(change.account_id, ()))
            if isinstance(change, ChangeSet | MailboxTouched | RightsChanged):
                targets.update(self._by_mailbox.get(change.mailbox_id, ()))
            elif isinstance(change, MailboxEvent | MetadataChanged):
                # Watchers of a shared mailbox hear of its renaming, deletion and
                # annotations even when they watch another account.
                if change.mailbox_id is not None:
                    targets.update(self._by_mailbox.get(change.mailbox_id, ()))
            else:  # pragma: no cover - exhaustive
                raise TypeError(change)
            for listener in targets:
                listener.deliver(change)


def _discard(table: defaultdict[int, set[Listener]], key: int, listener: Listener) -> None:
    listeners = table.get(key)
    if listeners is not None:
        listeners.discard(listener)
        if not listeners:
            del table[key]
