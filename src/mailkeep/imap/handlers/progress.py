"""INPROGRESS (RFC 9585): untagged ``* OK [INPROGRESS (tag done goal)]`` while a command
runs long, so that the client (and any proxy) knows it is still being worked on.

A FETCH reports how many of its messages it has sent (``Progress.tick`` per batch); a
SEARCH, SORT or THREAD waits on one store query and reports ``NIL NIL`` meanwhile
(``awaiting``). At most one response per ``INTERVAL`` seconds; a command that finishes
sooner sends none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from mailkeep.imap import responses

if TYPE_CHECKING:
    from mailkeep.imap.session import Session

INTERVAL = 1.0
T = TypeVar("T")


async def _report(session: Session, tag: str, done: int | None, goal: int | None) -> None:
    code = responses.inprogress(tag, done, goal)
    await session.send(responses.untagged("OK", "still working", code))
    await session.flush()


class Progress:
    """Progress of one command over ``goal`` items."""

    def __init__(self, session: Session, tag: str, goal: int | None) -> None:
        self.session = session
        self.tag = tag
        self.goal = goal
        self._next = asyncio.get_running_loop().time() + INTERVAL

    async def tick(self, done: int) -> None:
        """Report ``done`` items (none before the first: counts are nz-number)."""
        now = asyncio.get_running_loop().time()
        if done and now >= self._next:
            self._next = now + INTERVAL
            await _report(self.session, self.tag, done, self.goal)


async def awaiting(session: Session, tag: str, work: Awaitable[T]) -> T:
    """The result of ``work``, with ``INPROGRESS`` every ``INTERVAL`` until it is there."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=INTERVAL)
            if done:
                return task.result()
            await _report(session, tag, None, None)
    finally:
        if not task.done():
            task.cancel()
