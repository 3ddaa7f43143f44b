"""COMPRESS (RFC 4978) and UNAUTHENTICATE (RFC 8437): commands that change what the
connection itself is.

* COMPRESS DEFLATE answers OK uncompressed, then everything in both directions goes
  through ``compress.DeflateTransport``; octets the client sent after the command (already
  compressed) are taken from the wire layer, inflated and fed back. A second COMPRESS
  gets ``NO [COMPRESSIONACTIVE]``.
* UNAUTHENTICATE leaves the session as a new connection would be (RFC 8437 3: no
  selected mailbox, nothing enabled, no saved search), keeping TLS and compression; the
  login timeout starts again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailkeep.imap import commands as c
from mailkeep.imap import responses
from mailkeep.imap.compress import DeflateTransport
from mailkeep.imap.handlers.base import AUTHENTICATED, Result, State, handles, no
from mailkeep.imap.selected import uid_array

if TYPE_CHECKING:
    from mailkeep.imap.session import Session


@handles(c.Compress, AUTHENTICATED)
async def compress(session: Session, tag: str, command: c.Compress) -> Result:
    if isinstance(session.transport, DeflateTransport):
        raise no("compression is already active", responses.COMPRESSIONACTIVE)
    if command.mechanism != "DEFLATE":
        raise no(f"unknown compression mechanism {command.mechanism} (use DEFLATE)")

    async def start() -> None:
        transport = DeflateTransport(session.transport)
        early = session.wire.take_buffered()
        session.transport = transport
        if early:
            session.wire.receive_data(transport.inflate(early))

    return Result("OK", "DEFLATE active", after=start)


@handles(c.Unauthenticate, AUTHENTICATED, announce=False)
async def unauthenticate(session: Session, tag: str, command: c.Unauthenticate) -> Result:
    session.unselect()
    session.unwatch()
    session.credentials = None
    session.state = State.NOT_AUTHENTICATED
    session.wire.authenticated = False
    session.enabled.clear()
    session.condstore = False
    session.saved = uid_array()
    session.failures = 0
    session.restart_login_clock()
    return Result("OK", "UNAUTHENTICATE completed: log in again")
