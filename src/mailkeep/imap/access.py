"""Who sees which mailboxes under which names, and what they may do there: namespaces
(RFC 2342) and access control (RFC 4314).

Namespaces, all with the separator ``/``:

* personal, prefix ``""``: the user's own mailboxes;
* other users', prefix ``Shared/``: ``Shared/<owner address>/<owner's name>`` for a
  mailbox another account shares with this user (``Shared/bob@example.org/INBOX``);
* shared, prefix ``Public/``: ``Public/<name>``, the mailboxes of the public pseudo-account
  ``#public`` (it cannot log in or receive mail: its password hash matches nothing and
  it has no domain). Server admins (``Config.admins``) have every right there; other
  users what its ACLs grant them.

So a personal mailbox cannot be called ``Shared`` or ``Public`` (or live below them):
those names are the namespaces' own. A name in another user's namespace resolves only
when the owner exists *and* the user has a right on the mailbox; otherwise it is answered
exactly as a mailbox that does not exist (RFC 4314 6), so no one learns of a mailbox, or
an account, without a grant.

Rights (RFC 4314 2.1) are letters of ``lrswipkxtea``. The owner has all of them, always
(they are implicit, never stored, and cannot be changed). Others have the union of the
entries for their address, ``anyone`` and ``authenticated``; negative rights are not
supported. ``c`` and ``d`` are the RFC 2086 virtual rights: ``c`` stands for ``kx``, ``d``
for ``et``, and each is shown whenever one of its members is held (RFC 4314 2.1.1).

A command that needs rights the user lacks fails with ``NO [NOPERM]`` when the user may
see the mailbox (has ``l``), and as if it did not exist otherwise (as Dovecot does).
Rights are read from the store on every command, so a revocation takes effect on the
grantee's next command (RFC 4314 5.1.1 allows caching; we do not).

\\Seen on shared mailboxes is shared: one flag per message, which every user with the
``s`` right sees and changes (RFC 4314 5.2 "shared flag rights"; Dovecot's default for
shared mailboxes, which keeps flags simple and the store one flag set per message).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailkeep import errors
from mailkeep.auth.saslprep import saslprep
from mailkeep.imap import responses
from mailkeep.imap.handlers.base import bad, no
from mailkeep.mail.flags import SYSTEM_FLAG_NAMES, SystemFlag
from mailkeep.store import names
from mailkeep.store.api import Account, Mailbox

if TYPE_CHECKING:
    from mailkeep.imap.session import Session

SEPARATOR = names.SEPARATOR
OTHERS = "Shared"
"""The other users' namespace (RFC 2342 5.2), ``Shared/<owner>/...``."""
PUBLIC = "Public"
"""The shared namespace (RFC 2342 5.3) of public mailboxes, ``Public/...``."""
PUBLIC_OWNER = "#public"
"""The pseudo-account that owns the public mailboxes."""
LOCKED_PASSWORD = "!"
"""The public account's password hash: no password verifies against it."""

ALL = "lrswipkxtea"
"""Every right, in the order shown (the owner's)."""
ANYONE = "anyone"
AUTHENTICATED = "authenticated"
VIRTUAL = {"c": "kx", "d": "et"}
"""RFC 4314 2.1.1: the RFC 2086 rights and what they stand for."""
WRITE_RIGHTS = "iestw"
"""Any of these makes SELECT answer READ-WRITE (RFC 4314 5.2)."""
MYRIGHTS_RIGHTS = "lrikxa"
"""MYRIGHTS needs one of these (RFC 4314 4)."""

_SEEN = int(SystemFlag.SEEN)
_DELETED = int(SystemFlag.DELETED)
_OTHER_FLAGS = int(SystemFlag.ANSWERED | SystemFlag.FLAGGED | SystemFlag.DRAFT)


# ------------------------------------------------------------------------------ rights


def show(rights: str) -> str:
    """Rights as ACL and MYRIGHTS show them: with ``c`` and ``d`` (RFC 4314 2.1.1)."""
    shown = "".join(r for r in ALL if r in rights)
    for virtual, members in VIRTUAL.items():
        if any(m in rights for m in members):
            shown += virtual
    return shown


def parse_rights(text: str) -> tuple[str, str]:
    """SETACL's ``mod-rights``: (``+``, ``-`` or ``""``, the rights) with ``c`` and ``d``
    expanded; an unknown right is a BAD command (RFC 4314 3.1)."""
    mode = text[:1] if text[:1] in ("+", "-") else ""
    letters = text[len(mode) :]
    rights = ""
    for letter in letters:
        if letter in VIRTUAL:
            rights += VIRTUAL[letter]
        elif letter in ALL:
            rights += letter
        elif letter.isupper():
            raise bad("uppercase rights are not allowed (RFC 4314 2)")
        else:
            raise bad(f"the {letter!r} right is not supported")
    return mode, "".join(r for r in ALL if r in rights)


def union(rights: Iterable[str]) -> str:
    joined = "".join(rights)
    return "".join(r for r in ALL if r in joined)


def flag_rights(rights: str) -> tuple[int, bool]:
    """The system flags (as a mask) and whether keywords may be set with ``rights``:
    ``s`` for \\Seen, ``t`` for \\Deleted, ``w`` for the rest (RFC 4314 4)."""
    mask = (_SEEN if "s" in rights else 0) | (_DELETED if "t" in rights else 0)
    if "w" in rights:
        mask |= _OTHER_FLAGS
    return mask, "w" in rights


def permanent_flags(rights: str) -> tuple[list[str], bool]:
    """PERMANENTFLAGS for ``rights`` (RFC 4314 5.1.1: it must reflect them)."""
    mask, keywords = flag_rights(rights)
    return [name for flag, name in SYSTEM_FLAG_NAMES.items() if mask & int(flag)], keywords


def identifier(raw: bytes) -> str:
    """An ACL identifier from the wire: SASLprep'd (RFC 4314 3) and, since account
    addresses are case-insensitive here, lower-cased. Negative rights are refused."""
    try:
        text = saslprep(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad("the identifier is not a valid UTF-8 string (SASLprep)") from None
    if not text:
        raise bad("the identifier is empty")
    if text.startswith("-"):
        raise no("negative rights are not supported", responses.CANNOT)
    return text.lower()


def identities(session: Session) -> tuple[str, ...]:
    """The identifiers whose entries apply to the logged-in user."""
    assert session.credentials is not None
    return (session.credentials.address.lower(), ANYONE, AUTHENTICATED)


def is_admin(session: Session) -> bool:
    assert session.credentials is not None
    return session.credentials.address.lower() in session.services.admins


# ------------------------------------------------------------------------------ places


@dataclass(frozen=True, slots=True)
class Owner:
    """The account a name leads to, and the prefix its mailboxes are shown under."""

    id: int
    address: str
    prefix: str
    """``""``, ``Shared/<address>/`` or ``Public/``."""

    @property
    def personal(self) -> bool:
        return self.prefix == ""

    def display(self, name: str) -> str:
        return self.prefix + name


@dataclass(frozen=True, slots=True)
class Found:
    """A mailbox as this user sees it: the owner's mailbox, its name here, the rights."""

    owner: Owner
    mailbox: Mailbox
    rights: str

    @property
    def name(self) -> str:
        return self.owner.display(self.mailbox.name)

    def has(self, needed: str) -> bool:
        return all(r in self.rights for r in needed)


def split(name: str) -> tuple[str, str, str] | None:
    """(namespace, owner, rest) of a name in another namespace, or None for a personal
    name: ``Shared/a@b/X`` → ("Shared", "a@b", "X"), ``Public/X`` → ("Public", "", "X"),
    ``Shared/a@b`` → ("Shared", "a@b", ""), ``Shared`` → ("Shared", "", "")."""
    head, _, rest = name.partition(SEPARATOR)
    if head == PUBLIC:
        return PUBLIC, "", rest
    if head == OTHERS:
        owner, _, rest = rest.partition(SEPARATOR)
        return OTHERS, owner, rest
    return None


def is_namespace_node(name: str) -> bool:
    """``Shared``, ``Shared/<owner>`` and ``Public``: not mailboxes, never creatable."""
    parts = split(name)
    return parts is not None and parts[2] == ""


async def public_owner(session: Session) -> Account | None:
    return await session.store.get_account(PUBLIC_OWNER)


async def locate(session: Session, name: str) -> tuple[Owner, str] | None:
    """The owner a (decoded, canonical) name leads to and the owner's name for it, or
    None when it leads nowhere this user could know of."""
    parts = split(name)
    if parts is None:
        assert session.credentials is not None
        me = session.credentials
        return Owner(me.account_id, me.address, ""), name
    namespace, owner_address, rest = parts
    if namespace == PUBLIC:
        account = await public_owner(session)
        prefix = PUBLIC + SEPARATOR
    else:
        if not owner_address or owner_address.lower() == identities(session)[0]:
            return None
        account = await session.store.get_account(owner_address)
        prefix = f"{OTHERS}{SEPARATOR}{owner_address}{SEPARATOR}"
    if account is None:
        return None
    return Owner(account.id, account.address, prefix), names.canonical(rest) if rest else ""


async def rights_on(session: Session, owner: Owner, mailbox: Mailbox) -> str:
    """The user's rights on ``mailbox`` of ``owner``, read from the store now."""
    if owner.id == session.account_id:
        return ALL
    if owner.address == PUBLIC_OWNER and is_admin(session):
        return ALL
    entries = await session.store.acl_rights(mailbox.id, identities(session))
    return union(rights for _, rights in entries)


async def find(session: Session, name: str) -> Found | None:
    """The mailbox a decoded name means for this user, with the user's rights (maybe
    none), or None when there is no such mailbox."""
    located = await locate(session, name)
    if located is None:
        return None
    owner, own_name = located
    if not own_name:
        return None
    mailbox = await session.store.get_mailbox(owner.id, own_name)
    if mailbox is None:
        return None
    return Found(owner, mailbox, await rights_on(session, owner, mailbox))


def missing(name: str, code: bytes | None = None) -> errors.MailkeepError | Exception:
    """The one answer for a mailbox that does not exist or that the user may not see."""
    if code is None:
        return errors.NotFound(f"mailbox {name} does not exist")
    return no(f"mailbox {name} does not exist", code)


def require(found: Found | None, name: str, needed: str, *, code: bytes | None = None) -> Found:
    """``found`` if the user holds every right in ``needed``; NOPERM if not but the user
    may see the mailbox (``l``); otherwise the answer for a mailbox that does not exist
    (``code``: TRYCREATE for APPEND and COPY, else NONEXISTENT)."""
    if found is not None and found.has(needed):
        return found
    if found is not None and "l" in found.rights:
        lacking = "".join(r for r in needed if r not in found.rights)
        raise errors.PermissionDenied(
            f"you lack the right{'s' if len(lacking) > 1 else ''} {lacking!r} on mailbox {name}"
        )
    raise missing(name, code)


async def open_mailbox(
    session: Session, name: str, needed: str, *, code: bytes | None = None
) -> Found:
    """The mailbox a decoded name means, if the user holds ``needed`` there."""
    return require(await find(session, name), name, needed, code=code)


async def selected_rights(session: Session) -> str:
    """The user's rights on the selected mailbox, as they are now."""
    selected = session.selected
    assert selected is not None
    if selected.account_id == session.account_id:
        return ALL
    box = await session.store.get_mailbox_by_id(selected.id)
    if box is None:
        return ""
    account = await session.store.get_account_by_id(box.account_id)
    if account is None:
        return ""
    return await rights_on(session, Owner(account.id, account.address, ""), box)


async def require_selected(session: Session, needed: str, what: str) -> str:
    """The selected mailbox's rights, if they include ``needed`` (NOPERM otherwise)."""
    rights = await selected_rights(session)
    if not all(r in rights for r in needed):
        raise errors.PermissionDenied(f"you no longer have the right to {what} in this mailbox")
    return rights


# ------------------------------------------------------------------------------ listing


@dataclass
class View:
    """Every mailbox this user may list (``l``), under its name here, with the rights,
    and the namespace nodes above the others' mailboxes (``Shared``, ``Shared/<owner>``,
    ``Public``), which LIST shows as ``\\Noselect``."""

    mailboxes: dict[str, Found] = field(default_factory=dict)
    nodes: set[str] = field(default_factory=set)


async def view(session: Session, *, personal_only: bool = False) -> View:
    """Personal mailboxes, then those shared with the user and the public ones."""
    me = session.credentials
    assert me is not None
    seen = View()
    mine = Owner(me.account_id, me.address, "")
    for mailbox in await session.store.list_mailboxes(me.account_id):
        seen.mailboxes[mailbox.name] = Found(mine, mailbox, ALL)
    if personal_only:
        return seen
    rights: dict[int, list[str]] = {}
    boxes: dict[int, tuple[Owner, Mailbox]] = {}
    for grant in await session.store.list_grants(identities(session)):
        if grant.mailbox.account_id == me.account_id:
            continue
        rights.setdefault(grant.mailbox.id, []).append(grant.rights)
        if grant.owner == PUBLIC_OWNER:
            owner = Owner(grant.mailbox.account_id, grant.owner, PUBLIC + SEPARATOR)
        else:
            owner = Owner(
                grant.mailbox.account_id,
                grant.owner,
                f"{OTHERS}{SEPARATOR}{grant.owner}{SEPARATOR}",
            )
        boxes[grant.mailbox.id] = (owner, grant.mailbox)
    if is_admin(session):
        public = await public_owner(session)
        if public is not None:
            owner = Owner(public.id, public.address, PUBLIC + SEPARATOR)
            for mailbox in await session.store.list_mailboxes(public.id):
                rights[mailbox.id] = [ALL]
                boxes[mailbox.id] = (owner, mailbox)
    for mailbox_id, (owner, mailbox) in boxes.items():
        held = union(rights[mailbox_id])
        if "l" not in held:
            continue
        found = Found(owner, mailbox, held)
        seen.mailboxes[found.name] = found
        if owner.address == PUBLIC_OWNER:
            seen.nodes.add(PUBLIC)
        else:
            seen.nodes.update((OTHERS, owner.prefix.rstrip(SEPARATOR)))
    return seen
