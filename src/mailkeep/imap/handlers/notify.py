"""NOTIFY (RFC 5465): NOTIFY SET replaces what the session reports unasked, NOTIFY NONE
turns it off. The rules and the reporting are in ``imap.notify``; as RFC 5465 3.1 says, a
successful NOTIFY SET reports the selected mailbox's pending changes at once (the
session's usual announcement before the tagged OK)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailkeep.imap import commands as c
from mailkeep.imap import notify
from mailkeep.imap.handlers.base import AUTHENTICATED, Result, handles

if TYPE_CHECKING:
    from mailkeep.imap.session import Session


@handles(c.Notify, AUTHENTICATED)
async def notify_(session: Session, tag: str, command: c.Notify) -> Result:
    if command.groups is None:
        notify.stop(session)
        return Result("OK", "NOTIFY completed: no notifications")
    settings = notify.parse(session, command)
    await notify.start(session, settings, status=command.status)
    return Result("OK", "NOTIFY completed")
