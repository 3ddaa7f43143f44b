"""Commands of any state and the simple ones: CAPABILITY, NOOP, CHECK, LOGOUT, ID, ENABLE,
NAMESPACE (RFC 9051 6.1, 6.3.1, 6.3.10, 6.4.1; RFC 2971; RFC 5161; RFC 2342)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mailkeep import __version__
from mailkeep.imap import access, capabilities, responses
from mailkeep.imap import commands as c
from mailkeep.imap.handlers.base import ANY, AUTHENTICATED, SELECTED, Result, State, handles
from mailkeep.imap.handlers.condstore import enable_condstore

if TYPE_CHECKING:
    from mailkeep.imap.session import Session

log = logging.getLogger("mailkeep.imap")

SERVER_ID: tuple[tuple[str, str | None], ...] = (
    ("name", "mailkeep"),
    ("version", __version__),
    ("vendor", "mailkeep"),
)


@handles(c.Capability, ANY)
async def capability(session: Session, tag: str, command: c.Capability) -> Result:
    """RFC 9051 6.1.1."""
    await session.send(responses.capability(session.capability_list()))
    return Result("OK", "CAPABILITY completed")


@handles(c.Noop, ANY)
async def noop(session: Session, tag: str, command: c.Noop) -> Result:
    """RFC 9051 6.1.2: does nothing, so that the session reports mailbox changes."""
    return Result("OK", "NOOP completed")


@handles(c.Check, SELECTED)
async def check(session: Session, tag: str, command: c.Check) -> Result:
    """RFC 3501 6.4.1: every write is already durable, so CHECK is a NOOP (IMAP4rev2
    dropped it; we keep accepting it)."""
    return Result("OK", "CHECK completed")


@handles(c.Logout, ANY, announce=False)
async def logout(session: Session, tag: str, command: c.Logout) -> Result:
    """RFC 9051 6.1.3: BYE, then the tagged OK, then close."""
    await session.send(responses.bye("logging out"))

    async def leave() -> None:
        session.state = State.LOGOUT

    return Result("OK", "LOGOUT completed", after=leave)


@handles(c.Id, ANY)
async def id_(session: Session, tag: str, command: c.Id) -> Result:
    """RFC 2971: log what the client says it is, say what we are."""
    if command.parameters:
        described = ", ".join(f"{k}={v}" for k, v in command.parameters[:10])
        log.info("%s: client ID %s", session.transport.remote, described[:300])
    await session.send(responses.id_(SERVER_ID))
    return Result("OK", "ID completed")


@handles(c.Enable, AUTHENTICATED)
async def enable(session: Session, tag: str, command: c.Enable) -> Result:
    """RFC 5161 3.1: turn on what we can, ignore the rest; ``ENABLED`` lists what this
    command turned on. RFC 9051 6.3.1 lets servers accept it once a mailbox is selected."""
    newly: list[str] = []
    for name in command.capabilities:
        if name in capabilities.ENABLEABLE and name not in session.enabled:
            session.enabled.add(name)
            newly.append(capabilities.CANONICAL.get(name, name))
    await session.send(responses.enabled(newly))
    if session.enabled & {"CONDSTORE", "QRESYNC"}:
        # RFC 7162 3.2.3: enabling QRESYNC enables CONDSTORE too.
        await enable_condstore(session)
    return Result("OK", "ENABLE completed")


@handles(c.Namespace, AUTHENTICATED)
async def namespace(session: Session, tag: str, command: c.Namespace) -> Result:
    """RFC 2342 / RFC 9051 6.3.10: the personal namespace "", other users' mailboxes
    shared with this user under "Shared/", public ones under "Public/" (``access``)."""
    others = [(access.OTHERS + access.SEPARATOR, access.SEPARATOR)]
    public = [(access.PUBLIC + access.SEPARATOR, access.SEPARATOR)]
    await session.send(responses.namespace([("", "/")], others, public, utf8=session.utf8))
    return Result("OK", "NAMESPACE completed")
