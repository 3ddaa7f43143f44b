"""The command table: which handler answers which command, in which states (data, not code).

Every handler module registers its commands here with ``@handles``; the session looks a
command's type up in ``COMMANDS`` and never builds a method name from a string (mox's
``commandsStateAny``; h11's transition table). To add a command (an extension)::

    # src/mailkeep/imap/handlers/quota.py
    @handles(c.GetQuota, AUTHENTICATED)
    async def getquota(session: Session, tag: str, command: c.GetQuota) -> Result:
        ...
        return Result("OK", "GETQUOTA completed")

then add the module to ``handlers/__init__.py`` and its capability to ``capabilities.py``.

A handler returns a ``Result`` (the tagged status) or raises: ``ImapError`` for a protocol
answer (``NO``/``BAD`` with a code) or a ``mailkeep.errors`` exception, which the session
maps once onto ``NO [CODE]``. Untagged data goes out through ``session.send``.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from mailkeep.imap.commands import Command
    from mailkeep.imap.session import Session


class State(enum.Enum):
    """RFC 9051 3: the connection states."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


ANY = frozenset({State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED})
NOT_AUTHENTICATED = frozenset({State.NOT_AUTHENTICATED})
AUTHENTICATED = frozenset({State.AUTHENTICATED, State.SELECTED})
"""Commands of the authenticated state are valid in the selected state too (RFC 9051 3)."""
SELECTED = frozenset({State.SELECTED})
AUTHENTICATED_ONLY = frozenset({State.AUTHENTICATED})


@dataclass(frozen=True, slots=True)
class Result:
    """The tagged answer of a command; ``after`` runs once it has been written (STARTTLS
    upgrades the connection there, LOGOUT closes it)."""

    status: str = "OK"
    text: str = "completed"
    code: bytes | None = None
    after: Callable[[], Awaitable[None]] | None = None


class ImapError(Exception):
    """A protocol-level refusal: ``tag NO [code] text`` or ``tag BAD [code] text``."""

    def __init__(self, status: str, text: str, code: bytes | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.code = code


def no(text: str, code: bytes | None = None) -> ImapError:
    return ImapError("NO", text, code)


def bad(text: str, code: bytes | None = None) -> ImapError:
    return ImapError("BAD", text, code)


Handler = Callable[["Session", str, Any], Awaitable[Result]]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """How the session runs one command type.

    ``expunge_ok``: untagged EXPUNGE may be sent before its tagged response. False for
    FETCH, STORE and SEARCH by sequence number, which must not see sequence numbers shift
    under them (RFC 9051 7.5.1, RFC 3501 7.4.1); their UID forms may (``uid_expunge_ok``).
    ``announce``: report mailbox changes (EXISTS, FETCH FLAGS, ...) before the tagged
    response. Commands that report them themselves (NOOP, IDLE) or that leave the selected
    state set it False.
    """

    handler: Handler
    states: frozenset[State]
    expunge_ok: bool = True
    uid_expunge_ok: bool = True
    announce: bool = True

    def may_expunge(self, uid: bool) -> bool:
        return self.uid_expunge_ok if uid else self.expunge_ok


COMMANDS: dict[type[Command], CommandSpec] = {}
"""Command type → how to run it; filled by the handler modules on import."""

H = TypeVar("H", bound=Callable[..., Awaitable[Result]])


def handles(
    command: type[Command],
    states: frozenset[State],
    *,
    expunge_ok: bool = True,
    uid_expunge_ok: bool = True,
    announce: bool = True,
) -> Callable[[H], H]:
    """Register the decorated coroutine as the handler of ``command``."""

    def register(handler: H) -> H:
        if command in COMMANDS:
            raise RuntimeError(f"{command.__name__} has two handlers")
        COMMANDS[command] = CommandSpec(handler, states, expunge_ok, uid_expunge_ok, announce)
        return handler

    return register
