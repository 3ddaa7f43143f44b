"""NOTIFY (RFC 5465): what a session tells its client about changes anywhere, unasked.

``Settings`` is one NOTIFY SET: the groups of (mailbox filter, events). The session keeps
feeding its hub listener's changes through ``pump``, which turns them into untagged
responses: for the selected mailbox EXISTS/EXPUNGE/FETCH through the session's usual
announcement (plus the MessageNew FETCH attributes asked for), for other mailboxes STATUS
(5.1-5.3), LIST for mailbox names and subscriptions (5.4, 5.5, with ``OLDNAME`` after a
rename), METADATA for annotations (5.6, 5.7). ``pump`` runs between commands as soon as
the hub wakes the session (that is NOTIFY's point), during IDLE, and around commands.

Decisions:

* Every mailbox event needs ``l`` and ``r`` on the mailbox (RFC 5465 5); a mailbox of
  another account the user may not see is never named. Gaining or losing ``l`` on a shared
  mailbox is its appearing or disappearing (5.4).
* ``INBOXES`` means the same as ``PERSONAL``: delivery can file mail into any personal
  mailbox (``mailkeep deliver --mailbox``), so the set cannot be known (RFC 5465 6.3 asks
  for exactly this then).
* STATUS for another mailbox: MessageNew and MessageExpunge give MESSAGES and UIDNEXT,
  FlagChange gives UNSEEN (so that clients without CONDSTORE hear of it too), and
  HIGHESTMODSEQ is added with FlagChange or when CONDSTORE is on; UIDVALIDITY too with
  FlagChange (5.1). A change made by another node (``MailboxTouched``) counts as all
  three.
* Events caused by this session are not echoed (RFC 5465 5 SHOULD): what a command did to
  mailboxes, subscriptions, ACLs and annotations is dropped after that command.
* Without SELECTED or SELECTED-DELAYED the selected mailbox is reported only at command
  ends, as without NOTIFY (the view must stay in step with the client); between commands
  pending flag changes come along with new and expunged messages. With SELECTED-DELAYED,
  EXPUNGE waits for a command that allows it (or IDLE).
* AnnotationChange is accepted and never fires: there are no per-message annotations
  (ANNOTATE, RFC 5257) on this server.
* A session more than ``OVERFLOW`` changes behind gets ``* OK [NOTIFICATIONOVERFLOW]``
  and behaves as after NOTIFY NONE (5.8).
* Changes committed on another node arrive as ``MailboxTouched`` (STATUS still works);
  mailbox names, ACLs and annotations changed there are not told (PostgreSQL only tells
  of mailboxes created, renamed and deleted, which are).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailkeep import errors
from mailkeep.imap import access, responses
from mailkeep.imap import commands as c
from mailkeep.imap.handlers.base import bad, no
from mailkeep.imap.sequence import SequenceSet
from mailkeep.store.api import Mailbox
from mailkeep.store.changes import (
    SERVER_CHANNEL,
    Change,
    ChangeSet,
    MailboxEvent,
    MailboxTouched,
    MetadataChanged,
    RightsChanged,
)

if TYPE_CHECKING:
    from mailkeep.imap.session import Session

MESSAGE_EVENTS = ("MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange")
MAILBOX_EVENTS = ("MailboxName", "SubscriptionChange", "MailboxMetadataChange")
SERVER_EVENTS = ("ServerMetadataChange",)
SUPPORTED = (*MESSAGE_EVENTS, *MAILBOX_EVENTS, *SERVER_EVENTS)
SELECTED_FILTERS = ("SELECTED", "SELECTED-DELAYED")

OVERFLOW = 10_000
"""Changes waiting at once beyond which notifications stop (RFC 5465 5.8)."""

OWN_CHANGES: dict[type[c.Command], tuple[type[Change], ...]] = {
    c.Create: (MailboxEvent,),
    c.Delete: (MailboxEvent,),
    c.Rename: (MailboxEvent, ChangeSet),
    c.Subscribe: (MailboxEvent,),
    c.Unsubscribe: (MailboxEvent,),
    c.SetAcl: (RightsChanged,),
    c.DeleteAcl: (RightsChanged,),
    c.SetMetadata: (MetadataChanged,),
    c.Append: (ChangeSet,),
    c.Copy: (ChangeSet,),
    c.Move: (ChangeSet,),
}
"""What each command itself changes: those changes, queued during it, are not echoed."""


@dataclass(frozen=True, slots=True)
class Group:
    """One ``event-group``: a mailbox filter and the events asked for."""

    filter: str
    events: frozenset[str]
    names: tuple[str, ...] = ()
    """Decoded mailbox names of SUBTREE and MAILBOXES."""

    def matches(self, name: str, personal: bool, subscribed: set[str]) -> bool:
        match self.filter:
            case "PERSONAL" | "INBOXES":
                return personal
            case "SUBSCRIBED":
                return name in subscribed
            case "SUBTREE":
                return any(name == n or name.startswith(n + access.SEPARATOR) for n in self.names)
            case "MAILBOXES":
                return name in self.names
        return False


@dataclass
class Settings:
    """The NOTIFY SET in effect for one session."""

    groups: list[Group]
    selected: Group | None = None
    fetch: tuple[c.FetchItem, ...] = ()
    """MessageNew's FETCH attributes for the selected mailbox."""
    account_ids: set[int] = field(default_factory=set)
    """Other accounts whose mailboxes the groups cover (their new mailboxes too), and the
    server channel for ServerMetadataChange: the session's listener watches them."""
    visible: set[int] = field(default_factory=set)
    """Mailboxes of other accounts the user may observe (``l`` and ``r``), as last told."""
    subscribed: set[str] = field(default_factory=set)

    @property
    def delayed(self) -> bool:
        return self.selected is not None and self.selected.filter == "SELECTED-DELAYED"

    def events_for(self, name: str, personal: bool) -> set[str]:
        found: set[str] = set()
        for group in self.groups:
            if group.matches(name, personal, self.subscribed):
                found |= group.events
        return found

    def wants(self, event: str) -> bool:
        return any(event in group.events for group in self.groups)


# ------------------------------------------------------------------------------ setting


def parse(session: Session, command: c.Notify) -> Settings:
    """Check a NOTIFY SET against RFC 5465 (BAD for what the syntax allows but the RFC
    forbids, NO [BADEVENT] for events we do not know) and decode its mailbox names."""
    assert command.groups is not None
    settings = Settings([])
    for group in command.groups:
        events = group.events or ()
        names = {e.name for e in events}
        unknown = names - set(SUPPORTED)
        if unknown:
            raise no(
                f"unsupported NOTIFY event {sorted(unknown)[0]}", responses.badevent(SUPPORTED)
            )
        _check_events(group.filter, names, events)
        decoded = tuple(session.mailbox_name(m) for m in group.mailboxes)
        made = Group(group.filter, frozenset(names), decoded)
        if group.filter in SELECTED_FILTERS:
            if settings.selected is not None:
                raise bad("only one of SELECTED and SELECTED-DELAYED may be given")
            settings.selected = made
            settings.fetch = next((e.fetch for e in events if e.name == "MessageNew"), ())
        else:
            settings.groups.append(made)
    return settings


def _check_events(kind: str, names: set[str], events: tuple[c.NotifyEvent, ...]) -> None:
    """RFC 5465 5 and 8: message events come in pairs; the selected filters take message
    events only; FETCH attributes go with the selected mailbox's MessageNew only."""
    if ("MessageNew" in names) != ("MessageExpunge" in names):
        raise bad("MessageNew and MessageExpunge go together (RFC 5465 5)")
    if names & {"FlagChange", "AnnotationChange"} and "MessageNew" not in names:
        raise bad("FlagChange and AnnotationChange need MessageNew and MessageExpunge")
    if kind in SELECTED_FILTERS and names - set(MESSAGE_EVENTS):
        raise bad(f"{kind} takes message events only (RFC 5465 6.1)")
    if kind not in SELECTED_FILTERS and any(e.fetch for e in events):
        raise bad("FETCH attributes are for the selected mailbox's MessageNew only")


async def start(session: Session, settings: Settings, *, status: bool) -> None:
    """Put ``settings`` in effect: what to watch, what the user may see now, the STATUS
    responses of NOTIFY SET STATUS (3.1) and ``\\NoAccess`` for named mailboxes the user
    may list but not read (3.1)."""
    stop(session)
    if session.listener is not None:
        # What happened before this NOTIFY SET is no notification: only the view takes it.
        await session.absorb_changes(session.listener.drain())
    seen = await access.view(session)
    settings.subscribed = set(await session.store.list_subscriptions(session.account_id))
    for found in seen.mailboxes.values():
        if found.owner.personal or not observable(found.rights):
            continue
        settings.visible.add(found.mailbox.id)
        if settings.events_for(found.name, False):
            settings.account_ids.add(found.owner.id)
    for group in settings.groups:
        for name in group.names:
            parts = access.split(name)
            if parts is not None:
                located = await access.locate(session, name)
                if located is not None:
                    settings.account_ids.add(located[0].id)
    if settings.wants("ServerMetadataChange"):
        settings.account_ids.add(SERVER_CHANNEL)
    for group in settings.groups:
        for name in group.names:
            named = await access.find(session, name)
            if named is not None and "l" in named.rights and "r" not in named.rights:
                await session.send(
                    responses.list_(["\\NoAccess"], access.SEPARATOR, named.name, utf8=session.utf8)
                )
    settings.account_ids.discard(session.account_id)
    session.notify = settings
    assert session.listener is not None
    for account_id in settings.account_ids:
        session.store.hub.watch_account(account_id, session.listener)
    if status:
        await _initial_status(session, settings, seen)


def stop(session: Session) -> None:
    """NOTIFY NONE, or before a new NOTIFY SET."""
    settings = session.notify
    if settings is None:
        return
    session.notify = None
    if session.listener is not None:
        for account_id in settings.account_ids:
            session.store.hub.unwatch_account(account_id, session.listener)


def observable(rights: str) -> bool:
    """RFC 5465 5: every event needs the ``l`` and ``r`` rights on the mailbox."""
    return "l" in rights and "r" in rights


async def _initial_status(session: Session, settings: Settings, seen: access.View) -> None:
    selected_id = session.selected.id if session.selected is not None else None
    for name, found in seen.mailboxes.items():
        if found.mailbox.id == selected_id or not observable(found.rights):
            continue
        events = settings.events_for(name, found.owner.personal)
        items: list[str] = []
        if "MessageNew" in events:
            items += ["MESSAGES", "UIDNEXT", "UIDVALIDITY"]
        if events & {"FlagChange", "AnnotationChange"}:
            items += ["HIGHESTMODSEQ"]
        if items:
            await session.send(await _status(session, found.mailbox, items, name))


async def _status(session: Session, mailbox: Mailbox, items: list[str], name: str) -> bytes:
    from mailkeep.imap.handlers.status import status_response

    return await status_response(session, mailbox, items, name)


# ------------------------------------------------------------------------------ pumping


async def pump(session: Session, *, selected: bool, idle: bool = False) -> None:
    """Tell the client what the queued changes mean to it; ``selected`` also reports
    the selected mailbox (between commands and in IDLE, when asked for)."""
    await _process(session, own=())
    settings = session.notify
    if selected and settings is not None and settings.selected is not None:
        await _announce_selected(session, settings, allow_expunge=idle or not settings.delayed)
    await session.flush()


async def after_command(session: Session, command: c.Command) -> None:
    """Take what the command itself changed out of the queue (not echoed)."""
    await _process(session, own=OWN_CHANGES.get(type(command), ()))


async def _process(session: Session, own: tuple[type[Change], ...]) -> None:
    listener = session.listener
    if listener is None:
        return
    pending = listener.drain()
    if not pending:
        return
    await session.absorb_changes(pending)
    settings = session.notify
    if settings is None:
        return
    if len(pending) > OVERFLOW:
        stop(session)
        await session.send(
            responses.untagged(
                "OK",
                "too many changes at once: notifications are off",
                responses.NOTIFICATIONOVERFLOW,
            )
        )
        return
    statuses: dict[int, tuple[Mailbox, str, list[str]]] = {}
    renamed_from = [e.old_name for e in pending if isinstance(e, MailboxEvent) and e.old_name]
    for change in pending:
        if isinstance(change, own):
            continue
        match change:
            case ChangeSet() | MailboxTouched():
                await _message_change(session, settings, change, statuses)
            case MailboxEvent(kind="created" | "deleted" | "renamed"):
                await _mailbox_name(session, settings, change, renamed_from)
            case MailboxEvent(kind="subscribed" | "unsubscribed"):
                await _subscription(session, settings, change)
            case RightsChanged():
                await _rights(session, settings, change)
            case MetadataChanged():
                await _metadata(session, settings, change)
    for mailbox, name, items in statuses.values():
        try:
            await session.send(await _status(session, mailbox, items, name))
        except errors.NotFound:
            pass  # deleted meanwhile: its MailboxName event says so


async def _describe(session: Session, mailbox_id: int) -> tuple[Mailbox, str, bool, str] | None:
    """The mailbox, its name here, whether it is personal, and the user's rights."""
    mailbox = await session.store.get_mailbox_by_id(mailbox_id)
    if mailbox is None:
        return None
    if mailbox.account_id == session.account_id:
        return mailbox, mailbox.name, True, access.ALL
    owner = await session.store.get_account_by_id(mailbox.account_id)
    if owner is None:
        return None
    prefix = (
        access.PUBLIC + access.SEPARATOR
        if owner.address == access.PUBLIC_OWNER
        else f"{access.OTHERS}{access.SEPARATOR}{owner.address}{access.SEPARATOR}"
    )
    place = access.Owner(owner.id, owner.address, prefix)
    rights = await access.rights_on(session, place, mailbox)
    return mailbox, place.display(mailbox.name), False, rights


async def _message_change(
    session: Session,
    settings: Settings,
    change: ChangeSet | MailboxTouched,
    statuses: dict[int, tuple[Mailbox, str, list[str]]],
) -> None:
    if session.selected is not None and change.mailbox_id == session.selected.id:
        return  # the selected mailbox is told through SELECTED/SELECTED-DELAYED only
    if isinstance(change, ChangeSet) and not (change.appended or change.expunged or change.changed):
        return
    described = await _describe(session, change.mailbox_id)
    if described is None:
        return
    mailbox, name, personal, rights = described
    if not observable(rights):
        return
    events = settings.events_for(name, personal)
    if isinstance(change, MailboxTouched):
        counts = flags = True  # another node's change: it may be anything
    else:
        counts = bool(change.appended or change.expunged)
        flags = bool(change.changed)
    items: list[str] = []
    if "MessageNew" in events and counts:
        items += ["MESSAGES", "UIDNEXT"]
        if session.condstore:
            items.append("HIGHESTMODSEQ")
    if "FlagChange" in events and flags:
        items += ["UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ"]
    if not items:
        return
    _, _, known = statuses.get(mailbox.id, (mailbox, name, []))
    order = ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ"]
    merged = [i for i in order if i in items or i in known]
    statuses[mailbox.id] = (mailbox, name, merged)


async def _list_line(session: Session, name: str, oldname: str | None = None) -> bytes:
    """An unsolicited LIST for ``name`` with its attributes as they are now (5.4, 5.5)."""
    seen = await access.view(session)
    subscribed = set(await session.store.list_subscriptions(session.account_id))
    found = seen.mailboxes.get(name)
    attributes: list[str] = []
    if name in seen.nodes:
        attributes.append("\\Noselect")
    elif found is None:
        attributes.append("\\NonExistent")
    if found is not None or name in seen.nodes:
        below = name + access.SEPARATOR
        children = any(n.startswith(below) for n in (*seen.mailboxes, *seen.nodes))
        attributes.append("\\HasChildren" if children else "\\HasNoChildren")
    if found is not None and found.owner.personal and found.mailbox.special_use:
        attributes.append(found.mailbox.special_use)
    if name in subscribed:
        attributes.append("\\Subscribed")
    extended = [] if oldname is None else [responses.oldname(oldname, utf8=session.utf8)]
    return responses.list_(attributes, access.SEPARATOR, name, utf8=session.utf8, extended=extended)


async def _mailbox_name(
    session: Session, settings: Settings, event: MailboxEvent, renamed_from: list[str]
) -> None:
    """RFC 5465 5.4: LIST for the mailbox (and, when made or removed, its parent); a
    renamed mailbox's children are not told of separately."""
    personal = event.account_id == session.account_id
    if personal:
        prefix = ""
    else:
        if event.mailbox_id is None:
            return
        if event.kind == "deleted":
            if event.mailbox_id not in settings.visible:
                return
            settings.visible.discard(event.mailbox_id)
        else:
            described = await _describe(session, event.mailbox_id)
            if described is None or not observable(described[3]):
                return
            settings.visible.add(event.mailbox_id)
        prefix = await _prefix_of(session, event.account_id)
    name = prefix + event.name
    if "MailboxName" not in settings.events_for(name, personal):
        return
    if event.kind == "renamed":
        old = event.old_name or ""
        if any(old.startswith(other + access.SEPARATOR) for other in renamed_from):
            return  # a child of a renamed mailbox: the parent's LIST says it all
        await session.send(await _list_line(session, name, prefix + old))
        return
    await session.send(await _list_line(session, name))
    parent = event.name.rpartition(access.SEPARATOR)[0]
    if parent:
        await session.send(await _list_line(session, prefix + parent))


async def _prefix_of(session: Session, account_id: int) -> str:
    owner = await session.store.get_account_by_id(account_id)
    if owner is None:
        return ""
    if owner.address == access.PUBLIC_OWNER:
        return access.PUBLIC + access.SEPARATOR
    return f"{access.OTHERS}{access.SEPARATOR}{owner.address}{access.SEPARATOR}"


async def _subscription(session: Session, settings: Settings, event: MailboxEvent) -> None:
    """RFC 5465 5.5: LIST with the attributes as they are, \\Subscribed if it is."""
    if event.account_id != session.account_id:
        return
    if event.kind == "subscribed":
        settings.subscribed.add(event.name)
    else:
        settings.subscribed.discard(event.name)
    parts = access.split(event.name)
    if "SubscriptionChange" in settings.events_for(event.name, parts is None):
        await session.send(await _list_line(session, event.name))


async def _rights(session: Session, settings: Settings, event: RightsChanged) -> None:
    """Gaining ``l`` on a shared mailbox is its creation for this user, losing it its
    deletion (RFC 5465 5.4); losing ``r`` stops its monitoring (5.9)."""
    described = await _describe(session, event.mailbox_id)
    if described is None or described[2]:
        return
    mailbox, name, _, rights = described
    was = mailbox.id in settings.visible
    now = observable(rights)
    if was == now:
        return
    if now:
        settings.visible.add(mailbox.id)
    else:
        settings.visible.discard(mailbox.id)
    events = settings.events_for(name, False)
    if now and events and mailbox.account_id not in settings.account_ids:
        # Newly shared with this user: hear of the owner's changes from now on.
        settings.account_ids.add(mailbox.account_id)
        if session.listener is not None:
            session.store.hub.watch_account(mailbox.account_id, session.listener)
    if "MailboxName" in events:
        await session.send(await _list_line(session, name))


async def _metadata(session: Session, settings: Settings, event: MetadataChanged) -> None:
    """RFC 5465 5.6, 5.7: ``* METADATA mailbox entry ...`` with the changed names."""
    if event.private_to is not None and event.private_to != session.account_id:
        return
    if event.mailbox_id is None:
        if settings.wants("ServerMetadataChange"):
            await session.send(responses.metadata_changed("", event.entries, utf8=session.utf8))
        return
    described = await _describe(session, event.mailbox_id)
    if described is None:
        return
    _, name, personal, rights = described
    if "l" not in rights or not any(r in rights for r in "rswip"):
        return
    if "MailboxMetadataChange" in settings.events_for(name, personal):
        await session.send(responses.metadata_changed(name, event.entries, utf8=session.utf8))


async def _announce_selected(session: Session, settings: Settings, *, allow_expunge: bool) -> None:
    """The selected mailbox's news (5.1-5.3), and MessageNew's FETCH attributes for the
    messages that arrived."""
    selected = session.selected
    if selected is None:
        return
    last = selected.last_uid
    await session.announce(allow_expunge=allow_expunge)
    if not settings.fetch or session.selected is not selected:
        return
    new = list(selected.uids[bisect.bisect_right(selected.uids, last) :])
    if not new:
        return
    from mailkeep.imap.handlers.fetch import fetch

    request = c.Fetch(SequenceSet.of(new), settings.fetch, uid=True)
    try:
        await fetch(session, "", request)
    except errors.MailkeepError:
        pass  # rights lost meanwhile: nothing to tell
