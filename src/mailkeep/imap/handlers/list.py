"""LIST (RFC 9051 6.3.9 with LIST-EXTENDED RFC 5258, SPECIAL-USE RFC 6154, LIST-STATUS
RFC 5819, CHILDREN RFC 3348) and LSUB (RFC 3501 6.3.9).

Separator ``/``; the personal namespace, then the mailboxes other users share with this
one (``Shared/<owner>/...``) and the public ones (``Public/...``), see ``access``. Only
mailboxes the user has the ``l`` right on are listed (RFC 4314 4); the namespace names
above them (``Shared``, ``Shared/<owner>``, ``Public``) are listed ``\\Noselect``. LIST's
MYRIGHTS return option (RFC 8440) follows each mailbox with its MYRIGHTS response, and
LIST-STATUS shows STATUS only where the user has ``r``. The canonical pattern is the
reference followed by the pattern (no break-out characters). ``*`` matches anything,
``%`` anything but the separator; INBOX matches case-insensitively.
\\HasChildren/\\HasNoChildren and the special-use attributes are always returned (both
RFCs allow it; IMAP4rev2 clients expect them); \\Subscribed only when asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mailkeep.imap import access, mutf7, responses
from mailkeep.imap import commands as c
from mailkeep.imap.handlers.base import AUTHENTICATED, Result, bad, handles
from mailkeep.imap.handlers.status import check_items, status_response
from mailkeep.store import names
from mailkeep.store.api import Mailbox

if TYPE_CHECKING:
    from mailkeep.imap.session import Session

SEPARATOR = names.SEPARATOR


class Pattern:
    """A canonical LIST pattern (reference + mailbox pattern) as a matcher."""

    def __init__(self, text: str) -> None:
        head, sep, rest = text.partition(SEPARATOR)
        if head.upper() == names.INBOX:
            text = names.INBOX + sep + rest
        regex = "".join(
            ".*" if ch == "*" else f"[^{SEPARATOR}]*" if ch == "%" else re.escape(ch) for ch in text
        )
        self._regex = re.compile(regex, re.DOTALL)
        self._inbox = re.compile(regex, re.DOTALL | re.IGNORECASE)

    def matches(self, name: str) -> bool:
        if self._regex.fullmatch(name):
            return True
        # INBOX is case-insensitive (RFC 9051 5.1): "inbox", "Inb*" list it too.
        return name == names.INBOX and self._inbox.fullmatch(name) is not None


def _patterns(session: Session, reference: bytes, patterns: Iterable[bytes]) -> list[Pattern]:
    """Decoded canonical patterns; one that is not a valid name for this session's
    encoding is silently ignored (RFC 9051 6.3.9)."""
    out = []
    for pattern in patterns:
        try:
            text = mutf7.decode_mailbox(reference + pattern, utf8=session.utf8)
        except ValueError:
            continue
        out.append(Pattern(text))
    return out


def _sort_key(name: str) -> tuple[int, str]:
    """INBOX first, then the other personal mailboxes, then the other namespaces."""
    if name == names.INBOX or name.startswith(names.INBOX + SEPARATOR):
        return 0, name
    parts = access.split(name)
    return (1 if parts is None else 2 if parts[0] == access.OTHERS else 3), name


def _ancestors(name: str) -> list[str]:
    return names.parents(name)


@dataclass
class _Tree:
    """The account's mailbox names and subscriptions, with who is below whom."""

    mailboxes: dict[str, Mailbox]
    subscribed: set[str]

    def descendants(self, universe: Iterable[str]) -> dict[str, list[str]]:
        below: dict[str, list[str]] = {}
        for name in universe:
            for parent in _ancestors(name):
                below.setdefault(parent, []).append(name)
        return below


@handles(c.List, AUTHENTICATED)
async def list_(session: Session, tag: str, command: c.List) -> Result:
    select = set(command.select_options)
    returns = set(command.return_options)
    if command.return_status is not None:
        check_items(command.return_status)
    if "RECURSIVEMATCH" in select and not select & {"SUBSCRIBED", "SPECIAL-USE"}:
        raise bad("RECURSIVEMATCH needs another selection option (RFC 5258 3.1)")
    raw_patterns = list(command.patterns)
    if not command.extended and raw_patterns == [b""]:
        # RFC 9051 6.3.9: the hierarchy delimiter and the root of the reference.
        await session.send(responses.list_(["\\Noselect"], SEPARATOR, "", utf8=session.utf8))
        return Result("OK", "LIST completed")
    patterns = _patterns(session, command.reference, [p for p in raw_patterns if p])
    account = session.account_id
    seen = await access.view(session)
    # Special uses are the owner's: another user's \Sent is not this user's Sent folder.
    mailboxes = {
        name: found.mailbox if found.owner.personal else replace(found.mailbox, special_use=None)
        for name, found in seen.mailboxes.items()
    }
    nodes = seen.nodes
    want_subscribed = "SUBSCRIBED" in select or "SUBSCRIBED" in returns
    subscribed = set(await session.store.list_subscriptions(account)) if want_subscribed else set()

    def matches(name: str) -> bool:
        return any(p.matches(name) for p in patterns)

    def meets(name: str) -> bool:
        """RFC 5258 3: the selection criteria (all of them); none means "exists"."""
        if "SUBSCRIBED" in select and name not in subscribed:
            return False
        if "SPECIAL-USE" in select:
            mailbox = mailboxes.get(name)
            return mailbox is not None and mailbox.special_use is not None
        return "SUBSCRIBED" in select or name in mailboxes or name in nodes

    universe = set(mailboxes) | nodes | (subscribed if "SUBSCRIBED" in select else set())
    below = _Tree(mailboxes, subscribed).descendants(universe)
    existing_below = _Tree(mailboxes, subscribed).descendants(set(mailboxes) | nodes)
    candidates = universe | set(below)
    recursive = "RECURSIVEMATCH" in select
    criteria = [o for o in ("SUBSCRIBED", "SPECIAL-USE") if o in select]
    for name in sorted(candidates, key=_sort_key):
        if not matches(name):
            continue
        selected = meets(name)
        hidden_match = any(meets(d) and not matches(d) for d in below.get(name, ()))
        if not selected and not (hidden_match and (recursive or not select)):
            continue
        mailbox = mailboxes.get(name)
        attributes: list[str] = []
        if name in nodes:
            attributes.append("\\Noselect")
        elif mailbox is None:
            attributes.append("\\NonExistent" if command.extended or session.rev2 else "\\Noselect")
        attributes.append("\\HasChildren" if existing_below.get(name) else "\\HasNoChildren")
        if mailbox is not None and mailbox.special_use:
            attributes.append(mailbox.special_use)
        if want_subscribed and name in subscribed:
            attributes.append("\\Subscribed")
        extended: list[bytes] = []
        if recursive and hidden_match and command.extended:
            extended.append(responses.childinfo(*criteria))
        await session.send(
            responses.list_(attributes, SEPARATOR, name, utf8=session.utf8, extended=extended)
        )
        found = seen.mailboxes.get(name)
        if command.return_status is not None and found is not None and found.has("r"):
            await session.send(
                await status_response(session, found.mailbox, command.return_status, name)
            )
        if "MYRIGHTS" in returns and found is not None:
            await session.send(
                responses.myrights(name, access.show(found.rights), utf8=session.utf8)
            )
    return Result("OK", "LIST completed")


@handles(c.Lsub, AUTHENTICATED)
async def lsub(session: Session, tag: str, command: c.Lsub) -> Result:
    """RFC 3501 6.3.9: subscribed names matching the pattern; a name that is not
    subscribed but has subscribed children hidden by ``%`` is listed ``\\Noselect``."""
    if command.pattern == b"":
        await session.send(responses.lsub(["\\Noselect"], SEPARATOR, "", utf8=session.utf8))
        return Result("OK", "LSUB completed")
    patterns = _patterns(session, command.reference, [command.pattern])
    subscribed = set(await session.store.list_subscriptions(session.account_id))
    below = _Tree({}, subscribed).descendants(subscribed)

    def matches(name: str) -> bool:
        return any(p.matches(name) for p in patterns)

    for name in sorted(subscribed | set(below), key=_sort_key):
        if not matches(name):
            continue
        if name in subscribed:
            attributes: list[str] = []
        elif any(not matches(d) for d in below.get(name, ())):
            attributes = ["\\Noselect"]
        else:
            continue
        await session.send(responses.lsub(attributes, SEPARATOR, name, utf8=session.utf8))
    return Result("OK", "LSUB completed")
