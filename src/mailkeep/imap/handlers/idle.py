"""IDLE (RFC 2177, RFC 9051 6.3.13): changes are reported the moment the hub wakes the
session; ``DONE`` ends it. The idle timeout applies (RFC 9051 5.4: at least 30 minutes;
clients re-issue IDLE every 29)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailkeep.imap import commands as c
from mailkeep.imap import connection as wire
from mailkeep.imap import notify, responses
from mailkeep.imap.handlers.base import AUTHENTICATED, Result, State, handles
from mailkeep.net.listeners import ConnectionClosed

if TYPE_CHECKING:
    from mailkeep.imap.session import Session


@handles(c.Idle, AUTHENTICATED, announce=False)
async def idle(session: Session, tag: str, command: c.Idle) -> Result:
    from mailkeep.imap.session import WOKEN

    await session.send(responses.continuation("idling"))
    session.wire.start_idle(tag)
    await _report(session)
    while True:
        event = await session.next_event(wake=True)
        if event is WOKEN:
            await _report(session)
            continue
        match event:
            case wire.IdleDone():
                return Result("OK", "IDLE terminated")
            case wire.CommandError(reason=reason):
                return Result("BAD", reason)
            case wire.ConnectionClosed():
                raise ConnectionClosed
            case _:
                return Result("BAD", "expected DONE to end IDLE")


async def _report(session: Session) -> None:
    if session.notify is not None:
        # RFC 5465 4: IDLE sends exactly what NOTIFY asked for.
        await notify.pump(session, selected=True, idle=True)
    elif session.selected is not None:
        await session.announce(allow_expunge=True)
    else:
        await session.absorb()
    if session.bye_pending is not None:
        # The selected mailbox is gone: say so now, not after a DONE that may never come.
        await session.send(responses.bye(session.bye_pending))
        await session.flush()
        session.state = State.LOGOUT
        raise ConnectionClosed
    await session.flush()
