"""STATUS (RFC 9051 6.3.11, RFC 8438 SIZE, RFC 7889 APPENDLIMIT), also used by LIST-STATUS.

Each item is a row of ``STATUS_ITEMS``: the value's source, computed only when asked
(UIDNEXT needs no count; RECENT, the rare costly one, needs the message list). An
extension adds its item there (MAILBOXID with OBJECTID, HIGHESTMODSEQ is already here).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailkeep.imap import access, responses
from mailkeep.imap import commands as c
from mailkeep.imap.handlers.base import AUTHENTICATED, Result, bad, handles
from mailkeep.imap.handlers.condstore import enable_condstore
from mailkeep.store import query
from mailkeep.store.api import Mailbox, MailboxStatus

if TYPE_CHECKING:
    from mailkeep.imap.session import Session


@dataclass
class StatusContext:
    session: Session
    mailbox: Mailbox
    _status: MailboxStatus | None = None

    async def status(self) -> MailboxStatus:
        if self._status is None:
            self._status = await self.session.store.mailbox_status(self.mailbox.id)
            self.mailbox = self._status.mailbox
        return self._status


async def _recent(ctx: StatusContext) -> int:
    """\\Recent count (IMAP4rev1): this session's own view when the mailbox is selected,
    else the messages nobody has claimed yet (best effort, per process)."""
    selected = ctx.session.selected
    if selected is not None and selected.id == ctx.mailbox.id:
        return selected.recent_count()
    boundary = ctx.session.store.recent_boundary(ctx.mailbox.id, ctx.mailbox.uidnext)
    return len(await ctx.session.store.search(ctx.mailbox.id, query.Recent(boundary)))


async def _messages(ctx: StatusContext) -> int:
    return (await ctx.status()).messages


async def _unseen(ctx: StatusContext) -> int:
    return (await ctx.status()).unseen


async def _deleted(ctx: StatusContext) -> int:
    return (await ctx.status()).deleted


async def _size(ctx: StatusContext) -> int:
    return (await ctx.status()).size


async def _deleted_storage(ctx: StatusContext) -> int:
    """RFC 9208 4.2.2: what EXPUNGE would free, in the STORAGE unit (1024 octets)."""
    return -(-(await ctx.status()).deleted_size // 1024)


async def _uidnext(ctx: StatusContext) -> int:
    return ctx.mailbox.uidnext


async def _uidvalidity(ctx: StatusContext) -> int:
    return ctx.mailbox.uidvalidity


async def _highestmodseq(ctx: StatusContext) -> int:
    return ctx.mailbox.highestmodseq


async def _appendlimit(ctx: StatusContext) -> int | None:
    return ctx.session.services.limits.max_message


STATUS_ITEMS: dict[str, Callable[[StatusContext], Awaitable[int | str | None]]] = {
    "MESSAGES": _messages,
    "RECENT": _recent,
    "UIDNEXT": _uidnext,
    "UIDVALIDITY": _uidvalidity,
    "UNSEEN": _unseen,
    "DELETED": _deleted,  # RFC 9051
    "SIZE": _size,  # RFC 8438
    "DELETED-STORAGE": _deleted_storage,  # RFC 9208
    "HIGHESTMODSEQ": _highestmodseq,  # RFC 7162
    "APPENDLIMIT": _appendlimit,  # RFC 7889
}


def check_items(items: Sequence[str]) -> None:
    for item in items:
        if item not in STATUS_ITEMS:
            raise bad(f"STATUS item {item} is not supported")


async def status_response(
    session: Session, mailbox: Mailbox, items: Sequence[str], name: str | None = None
) -> bytes:
    """``* STATUS name (item value ...)`` for one mailbox (items already checked), under
    ``name`` (a shared mailbox's name for this user) or its own. Counts come first so
    that UIDNEXT and UIDVALIDITY are as fresh as they are."""
    ctx = StatusContext(session, mailbox)
    if any(i in ("MESSAGES", "UNSEEN", "DELETED", "SIZE", "DELETED-STORAGE") for i in items):
        await ctx.status()
    values: list[tuple[str, int | str | None]] = []
    seen: set[str] = set()
    for item in items:
        if item not in seen:
            seen.add(item)
            values.append((item, await STATUS_ITEMS[item](ctx)))
    shown = ctx.mailbox.name if name is None else name
    return responses.status(shown, values, utf8=session.utf8)


@handles(c.Status, AUTHENTICATED)
async def status(session: Session, tag: str, command: c.Status) -> Result:
    check_items(command.items)
    if "HIGHESTMODSEQ" in command.items:
        await enable_condstore(session)  # RFC 7162 3.1
    name = session.mailbox_name(command.mailbox)
    found = await access.open_mailbox(session, name, "r")  # RFC 4314 4
    await session.send(await status_response(session, found.mailbox, command.items, found.name))
    return Result("OK", "STATUS completed")
