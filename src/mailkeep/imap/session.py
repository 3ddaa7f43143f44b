"""One IMAP session: the state machine between the wire layer, the handlers and the store.

The session owns the sans-I/O wire ``Connection`` (framing and parsing), reads octets from
a ``Transport`` (a socket in production, a memory pipe in tests), runs each command
through the table in ``handlers.base.COMMANDS`` and maps errors once onto responses. It
talks only to the store and the authenticator; it never touches a socket.

Mailbox changes made by anyone (this session included) arrive on the hub ``Listener``.
Between commands the session only absorbs them into its ``SelectedMailbox``; it tells the
client at the moments the RFC allows: before a command's tagged response (without EXPUNGE
for FETCH, STORE and SEARCH by sequence number, RFC 9051 7.5.1), during IDLE at once.

Decisions:

* Timeouts: ``login_timeout`` seconds to authenticate, then ``idle_timeout`` seconds of
  silence (IDLE included; RFC 9051 5.4 asks for at least 30 minutes); both end with
  ``* BYE``.
* ``max_failures`` failed logins close the connection (after the tagged NO and a BYE).
* A mailbox deleted while selected ends the session with ``* BYE`` (as Dovecot does;
  RFC 2180 3.3 allows it), since its sequence numbers mean nothing any more.
* \\Recent is best effort per process (``SqlStore.claim_recent``) and only shown to
  IMAP4rev1 sessions; IMAP4rev2 has no \\Recent.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from array import array
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

from mailkeep import errors
from mailkeep.auth.service import Authenticator
from mailkeep.config import LimitsConfig
from mailkeep.imap import capabilities, mutf7, notify, responses, resync, sequence
from mailkeep.imap import commands as c
from mailkeep.imap import connection as wire
from mailkeep.imap.commands import Command
from mailkeep.imap.fetchcache import FetchCache
from mailkeep.imap.handlers import append as append_handler
from mailkeep.imap.handlers import base
from mailkeep.imap.handlers.base import COMMANDS, ImapError, Result, State
from mailkeep.imap.reader import ErrorKind, Limits
from mailkeep.imap.selected import SelectedMailbox, mailbox_flags, uid_array
from mailkeep.mail.flags import flag_names
from mailkeep.mail.parser import Parser
from mailkeep.net.listeners import ConnectionClosed
from mailkeep.store import names
from mailkeep.store.api import AppendResult, Credentials, NewMessage, Store
from mailkeep.store.changes import Change, ChangeSet, MailboxEvent, MailboxTouched, MessageState
from mailkeep.store.hub import Listener


@functools.lru_cache(maxsize=1024)
def _flag_list(flags: int, keywords: tuple[str, ...], recent: bool) -> bytes:
    """FLAGS as sent; cached, as a folder's messages share a handful of flag sets."""
    shown = flag_names(flags)
    if recent:
        shown.append("\\Recent")
    shown.extend(keywords)
    return responses.flag_list(shown)


log = logging.getLogger("mailkeep.imap")

SEARCH_CHARSETS = ("US-ASCII", "UTF-8")
_FLUSH_AT = 64 * 1024
_APPENDS_TOGETHER = 16
"""At most this many pipelined APPENDs share a commit (``Session._appends_ahead``)."""


class Transport(Protocol):
    """The connection as the session needs it (``net.listeners.Connection`` is one)."""

    @property
    def remote(self) -> str: ...
    @property
    def loopback(self) -> bool: ...
    @property
    def tls(self) -> bool: ...
    @property
    def can_start_tls(self) -> bool: ...
    async def read(self, within: float | None = None) -> bytes: ...
    async def write(self, data: bytes) -> None: ...
    async def start_tls(self) -> None: ...


class StreamSource(Protocol):
    """What a ``responses.Streamed`` body's ``source`` is: its octets, in chunks."""

    def chunks(self) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class Services:
    """What every session of one server shares."""

    store: Store
    auth: Authenticator
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    hostname: str = "localhost"
    admins: frozenset[str] = frozenset()
    """Lower-cased addresses of the server's administrators (``Config.admins``)."""
    parser: Parser | None = None
    """Parses APPENDed messages: the server's, shared with delivery; None: in place,
    within ``limits`` (``message_parser``)."""
    fetch_cache: FetchCache = field(default_factory=FetchCache)
    """Rendered FETCH items that never change (``fetchcache``): one per server, because
    a mailbox id, UIDVALIDITY and UID name one message only within one store."""

    @functools.cached_property
    def message_parser(self) -> Parser:
        if self.parser is not None:
            return self.parser
        limits = self.limits
        return Parser(0, max_parts=limits.max_mime_parts, max_depth=limits.max_mime_depth)


ERROR_CODES: dict[type[errors.MailkeepError], bytes | None] = {
    errors.NotFound: responses.NONEXISTENT,
    errors.AlreadyExists: responses.ALREADYEXISTS,
    errors.QuotaExceeded: responses.OVERQUOTA,
    errors.InvalidName: responses.CANNOT,
    errors.PermissionDenied: responses.NOPERM,
    errors.TemporaryFailure: responses.UNAVAILABLE,
    errors.InUse: responses.INUSE,
    errors.Conflict: responses.INUSE,
    errors.LimitExceeded: responses.LIMIT,
    errors.ConfigError: responses.UNAVAILABLE,
}
"""The one mapping of the error taxonomy onto ``NO [CODE]`` (STYLE.md habit 4)."""


class _Woken:
    """``next_event(wake=True)`` returns this when the hub listener fired."""


WOKEN = _Woken()


class _TimedOut(Exception):
    pass


def wire_limits(limits: LimitsConfig) -> Limits:
    """The wire layer's limits from the configuration; MULTIAPPEND may carry several
    messages, so one command may hold twice the largest message."""
    return Limits(
        max_line=limits.max_line,
        max_literal=limits.max_message,
        max_command=max(2 * limits.max_message, limits.max_message + limits.max_line),
        max_line_unauthenticated=min(limits.max_line, 8 * 1024),
        max_literal_unauthenticated=limits.max_literal_unauthenticated,
        max_command_unauthenticated=2 * limits.max_literal_unauthenticated,
    )


class Session:
    def __init__(self, services: Services, transport: Transport) -> None:
        self.services = services
        self.store = services.store
        self.transport = transport
        self.wire = wire.Connection(wire_limits(services.limits))
        self.state = State.NOT_AUTHENTICATED
        self.credentials: Credentials | None = None
        self.enabled: set[str] = set()
        self.selected: SelectedMailbox | None = None
        self.saved: array[int] = uid_array()
        """The SEARCHRES result as UIDs (RFC 5182), for ``$``."""
        self.listener: Listener | None = None
        self.failures = 0
        self.notify: notify.Settings | None = None
        """The NOTIFY SET in effect (RFC 5465), or None."""
        self.watching: set[int] = set()
        """Mailboxes of other accounts the listener watches besides the account's own:
        a selected shared mailbox (``refresh_watches``)."""
        self.condstore = False
        """Set by CONDSTORE/QRESYNC (issue 5): unsolicited FETCH then carries MODSEQ."""
        self._out: list[bytes] = []
        self._out_size = 0
        self._read_task: asyncio.Task[bytes] | None = None
        self._started = asyncio.get_running_loop().time()
        self._heard = self._started
        """When the client last sent something (the idle timeout counts from there)."""
        self._timer: asyncio.TimerHandle | None = None
        """Fires at ``_deadline``; None once it has fired."""
        self._waiter: asyncio.Future[None] | None = None
        self._bye: str | None = None
        self._held: wire.Event | None = None
        """An event read ahead behind pipelined APPENDs (``_appends_ahead``)."""

    # ------------------------------------------------------------------ properties

    @property
    def rev2(self) -> bool:
        """The client sent ``ENABLE IMAP4rev2`` (RFC 9051)."""
        return "IMAP4REV2" in self.enabled

    @property
    def utf8(self) -> bool:
        """Mailbox names and quoted strings in UTF-8 (IMAP4rev2 or UTF8=ACCEPT)."""
        return self.rev2 or "UTF8=ACCEPT" in self.enabled

    @property
    def account_id(self) -> int:
        assert self.credentials is not None
        return self.credentials.account_id

    @property
    def bye_pending(self) -> str | None:
        """Why the session must end after this command (the selected mailbox was
        deleted, too many failed logins), or None."""
        return self._bye

    def plaintext_ok(self) -> bool:
        return self.services.auth.plaintext_allowed(self.transport.tls, self.transport.loopback)

    def capability_list(self) -> list[str]:
        authenticated = self.state in (State.AUTHENTICATED, State.SELECTED)
        auth = self.services.auth
        ctx = capabilities.Context(
            authenticated=authenticated,
            can_starttls=self.transport.can_start_tls,
            plaintext_ok=self.plaintext_ok(),
            mechanisms=auth.mechanisms(tls=self.transport.tls, loopback=self.transport.loopback),
            appendlimit=self.services.limits.max_message,
        )
        return capabilities.capabilities(ctx)

    # ------------------------------------------------------------------ names

    def mailbox_name(self, raw: bytes) -> str:
        """A mailbox name from the wire, decoded for this session and canonical
        (``INBOX`` in any case is INBOX, RFC 9051 5.1)."""
        try:
            name = mutf7.decode_mailbox(raw, utf8=self.utf8)
        except ValueError as exc:
            raise errors.InvalidName(str(exc)) from None
        return names.canonical(name)

    def encode_name(self, name: str) -> bytes:
        return responses.mailbox_name(name, utf8=self.utf8)

    def flag_list(self, flags: int, keywords: Iterable[str], uid: int | None = None) -> bytes:
        """A message's FLAGS as sent: system flags, keywords, and \\Recent for IMAP4rev1
        sessions (RFC 3501 2.3.2; RFC 9051 has no \\Recent)."""
        selected = self.selected
        recent = (
            uid is not None and not self.rev2 and selected is not None and selected.is_recent(uid)
        )
        keywords = tuple(keywords)
        if keywords and selected is not None:
            # A keyword the client has not seen in FLAGS is announced first (``send``).
            selected.note_keywords(keywords)
        return _flag_list(int(flags), keywords, recent)

    # ------------------------------------------------------------------ output

    async def send(self, data: bytes) -> None:
        """Queue a response; it goes out when the buffer fills or the command ends."""
        selected = self.selected
        if selected is not None and selected.keywords_changed:
            # Responses are built (``flag_list``) before they are sent: the FLAGS update
            # goes out just ahead of the first one that shows a new keyword.
            selected.keywords_changed = False
            self._out.append(responses.flags(mailbox_flags(selected.keywords.values())))
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size >= _FLUSH_AT:
            await self.flush()

    async def send_chunks(self, chunks: Sequence[responses.Chunk]) -> None:
        """A FETCH response whose bodies may be streamed from their sources."""
        for chunk in chunks:
            if isinstance(chunk, responses.Streamed):
                await self._stream(chunk)
            else:
                await self.send(chunk)

    async def _stream(self, chunk: responses.Streamed) -> None:
        source = cast(StreamSource, chunk.source)
        remaining = chunk.size
        pieces = source.chunks()
        try:
            async for data in pieces:
                if len(data) > remaining:
                    data = data[:remaining]
                remaining -= len(data)
                await self.send(data)
                if not remaining:
                    break
        finally:
            close = getattr(pieces, "aclose", None)
            if close is not None:
                await close()
        if remaining:
            # The literal's size was announced: keep the stream in step whatever happens.
            log.error("message data ended %d octets early; padded", remaining)
            await self.send(b" " * remaining)

    async def flush(self) -> None:
        if not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        self._out_size = 0
        await self.transport.write(data)

    # ------------------------------------------------------------------ input

    async def next_event(self, *, wake: bool = False) -> wire.Event | _Woken:
        """The next wire event, reading as needed; with ``wake`` it returns ``WOKEN`` as
        soon as the hub has changes for us (IDLE)."""
        while True:
            event = self.wire.next_event()
            if not isinstance(event, wire.NeedData):
                return event
            await self.flush()
            data = await self._receive(wake)
            if data is None:
                return WOKEN
            self.wire.receive_data(data)

    def _deadline(self) -> float:
        """When the session times out: the login timeout from the connection (or
        UNAUTHENTICATE), else the idle timeout from the last octets of the client."""
        limits = self.services.limits
        if self.state is State.NOT_AUTHENTICATED:
            return self._started + limits.login_timeout
        return self._heard + limits.idle_timeout

    async def _receive(self, wake: bool) -> bytes | None:
        """Octets from the client (b"" at its end), or None when woken by the hub."""
        loop = asyncio.get_running_loop()
        while True:
            read = self._read_task
            if read is None:
                read = self._read_task = asyncio.ensure_future(self.transport.read())
            listener = self.listener
            if not read.done() and (listener is None or not listener.has_pending):
                await self._wait(read, listener, loop)
            if read.done():
                self._read_task = None
                self._heard = loop.time()
                return read.result()
            if listener is not None and listener.has_pending:
                if wake:
                    return None
                if self.notify is not None:
                    # RFC 5465 3.1: with NOTIFY, tell the client now, between commands.
                    await notify.pump(self, selected=True)
                else:
                    await self.absorb()  # keep the queue short while the client is quiet
                continue
            if self._timer is None:  # it fired: the deadline has passed
                raise _TimedOut

    async def _wait(
        self, read: asyncio.Task[bytes], listener: Listener | None, loop: asyncio.AbstractEventLoop
    ) -> None:
        """Until the read completes, the hub delivers or the deadline passes: one future
        resolved by whichever comes first, and one timer kept while the deadline stays.
        Ten thousand sessions in IDLE wake at every delivery; a task and a timer per
        wake-up cost more than the rest of the notification."""
        deadline = self._deadline()
        if self._timer is None or self._timer.when() != deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(deadline, self._expire)
        waiter = self._waiter = loop.create_future()
        read.add_done_callback(self._wake)
        if listener is not None:
            listener.on_deliver = self._wake
        try:
            await waiter
        finally:
            self._waiter = None
            read.remove_done_callback(self._wake)
            if listener is not None:
                listener.on_deliver = None

    def _wake(self, _: object = None) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _expire(self) -> None:
        self._timer = None
        self._wake()

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        """Greet, then serve commands until LOGOUT, a timeout or the client leaves."""
        try:
            await self.send(
                responses.greeting(
                    f"{self.services.hostname} mailkeep ready", self.capability_list()
                )
            )
            try:
                while self.state is not State.LOGOUT:
                    event = await self.next_event() if self._held is None else self._held
                    self._held = None
                    if isinstance(event, _Woken):
                        continue
                    appends = self._appends_ahead(event)
                    if len(appends) > 1:
                        await self._append_all(appends)
                    else:
                        await self.handle_event(event)
            except _TimedOut:
                await self.send(responses.bye(self._timeout_text()))
            await self.flush()
        except ConnectionClosed:
            pass
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    self._out.clear()
                    await self.transport.write(responses.bye("server shutting down"))
            raise
        finally:
            await self.close()

    def _timeout_text(self) -> str:
        if self.state is State.NOT_AUTHENTICATED:
            return "login timeout: authenticate sooner"
        return "autologout: idle for too long"

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._read_task is not None:
            self._read_task.cancel()
            with contextlib.suppress(BaseException):
                await self._read_task
            self._read_task = None
        self.unwatch()

    async def handle_event(self, event: wire.Event) -> None:
        match event:
            case wire.CommandReceived(tag=tag, command=command):
                await self.execute(tag, command)
            case wire.CommandError(tag=tag, reason=reason, kind=kind, command=name, save=save):
                if kind is ErrorKind.BADCHARSET and tag is not None:
                    if name == "SEARCH" and save:
                        # RFC 9051 6.4.4.1 example 5: a SEARCH (SAVE) refused for its
                        # charset empties $; one without SAVE, or a BAD, leaves it.
                        self.saved = uid_array()
                    code = responses.badcharset(SEARCH_CHARSETS)
                    await self.send(responses.no(tag, reason, code))
                else:
                    await self.send(responses.bad(tag, reason))
            case wire.NeedContinuation(text=text):
                await self.send(responses.continuation(text))
                await self.flush()
            case wire.LiteralRefused(tag=tag, size=size, limit=limit, command=name):
                text = f"literal of {size} octets is over the limit of {limit}"
                if tag is not None and name in ("APPEND", "REPLACE"):
                    await self.send(responses.no(tag, text, responses.TOOBIG))
                else:
                    await self.send(responses.bad(tag, text))
            case wire.ConnectionClosed():
                self.state = State.LOGOUT
            case wire.IdleDone(tag=tag) | wire.AuthResponse(tag=tag):  # pragma: no cover
                await self.send(responses.bad(tag, "unexpected continuation"))
            case wire.NeedData():  # pragma: no cover - next_event never returns it
                pass

    async def execute(self, tag: str, command: Command) -> None:
        """Run one command: state check, handler, error mapping, announcements, tagged
        response, then the result's ``after`` step."""
        spec = COMMANDS.get(type(command))
        if spec is None:
            await self.send(responses.bad(tag, "command not supported by this server"))
            return
        if self.state not in spec.states:
            await self.send(responses.bad(tag, _wrong_state(self.state, spec.states)))
            return
        if self.notify is not None:
            await notify.pump(self, selected=False)  # what others did, before this command
        result = await self._call(spec, tag, command)
        if self.notify is not None:
            await notify.after_command(self, command)  # what it did itself is not echoed
        if spec.announce and result.status != "BAD" and self.selected is not None:
            await self.announce(allow_expunge=spec.may_expunge(getattr(command, "uid", False)))
        await self.send(responses.tagged(tag, result.status, result.text, result.code))
        if self._bye is not None:
            await self.send(responses.bye(self._bye))
            self.state = State.LOGOUT
        if result.after is not None:
            await self.flush()
            await result.after()

    async def _call(self, spec: base.CommandSpec, tag: str, command: Command) -> Result:
        try:
            return await spec.handler(self, tag, command)
        except (ConnectionClosed, asyncio.CancelledError, _TimedOut):
            raise
        except Exception as exc:
            return self._failed(command, exc)

    def _failed(self, command: Command, exc: Exception) -> Result:
        """The tagged response for a command that raised ``exc``."""
        if isinstance(exc, ImapError):
            return Result(exc.status, exc.text, exc.code)
        if isinstance(exc, errors.MailkeepError):
            return Result("NO", str(exc) or type(exc).__name__, _error_code(exc))
        log.error(
            "%s: %s failed",
            self.transport.remote,
            type(command).__name__.upper(),
            exc_info=exc,
        )
        return Result("NO", "internal server error; the failure was logged", responses.SERVERBUG)

    def _appends_ahead(self, first: wire.Event) -> list[tuple[str, c.Append]]:
        """``first`` and the APPEND commands pipelined whole behind it, when it is an
        APPEND that may share its commit with them: in the authenticated state without
        NOTIFY nothing is announced between commands, so answering each after its own
        commit gives exactly the responses of running them one by one. The first other
        event read is held for the main loop."""
        if not (
            isinstance(first, wire.CommandReceived)
            and isinstance(first.command, c.Append)
            and self.state is State.AUTHENTICATED
            and self.selected is None
            and self.notify is None
        ):
            return []
        appends = [(first.tag, first.command)]
        while len(appends) < _APPENDS_TOGETHER:
            event = self.wire.next_event()
            if isinstance(event, wire.NeedData):
                break
            if not (
                isinstance(event, wire.CommandReceived) and isinstance(event.command, c.Append)
            ):
                self._held = event
                break
            appends.append((event.tag, event.command))
        return appends

    async def _append_all(self, appends: list[tuple[str, c.Append]]) -> None:
        """Pipelined APPENDs (see ``_appends_ahead``): parsed in order, then appended
        together (``Store.append_each``: one commit and sync for all, UIDs in order),
        each answered in order once committed."""
        results: list[Result | None] = []
        staged: list[tuple[int, Sequence[NewMessage]]] = []
        for _, command in appends:
            try:
                staged.append(await append_handler.prepare(self, command))
                results.append(None)
            except (ConnectionClosed, _TimedOut):
                raise
            except Exception as exc:
                results.append(self._failed(command, exc))
        outcomes = iter(await self.store.append_each(staged))
        for (tag, command), result in zip(appends, results, strict=True):
            if result is None:
                outcome = next(outcomes)
                if isinstance(outcome, AppendResult):
                    result = append_handler.completed(outcome)
                else:
                    result = self._failed(command, outcome)
            await self.send(responses.tagged(tag, result.status, result.text, result.code))

    # ------------------------------------------------------------------ login state

    async def logged_in(self, credentials: Credentials) -> None:
        """Enter the authenticated state (LOGIN or AUTHENTICATE succeeded)."""
        self.credentials = credentials
        self.state = State.AUTHENTICATED
        self.wire.authenticated = True
        self.listener = Listener()
        self.store.hub.watch_account(credentials.account_id, self.listener)

    def unwatch(self) -> None:
        notify.stop(self)
        if self.listener is not None and self.credentials is not None:
            self.store.hub.unwatch_account(self.credentials.account_id, self.listener)
            for mailbox_id in self.watching:
                self.store.hub.unwatch_mailbox(mailbox_id, self.listener)
        self.watching = set()
        self.listener = None

    def refresh_watches(self) -> None:
        """Watch the selected mailbox when another account owns it (a shared mailbox):
        its changes are published by mailbox, not to this account."""
        if self.listener is None:
            return
        wanted: set[int] = set()
        if self.selected is not None and self.selected.account_id != self.account_id:
            wanted.add(self.selected.id)
        for mailbox_id in self.watching - wanted:
            self.store.hub.unwatch_mailbox(mailbox_id, self.listener)
        for mailbox_id in wanted - self.watching:
            self.store.hub.watch_mailbox(mailbox_id, self.listener)
        self.watching = wanted

    def restart_login_clock(self) -> None:
        """UNAUTHENTICATE (RFC 8437): the login timeout counts again from now."""
        self._started = asyncio.get_running_loop().time()

    async def login_failed(self) -> None:
        """Count a failed login; after ``max_failures`` say goodbye (after the NO)."""
        self.failures += 1
        if self.failures >= self.services.auth.config.max_failures:
            self._bye = "too many failed login attempts"

    # ------------------------------------------------------------------ selected state

    def select(self, selected: SelectedMailbox) -> None:
        self.selected = selected
        self.saved = uid_array()
        self.state = State.SELECTED
        self.refresh_watches()
        # Changes still queued are absorbed normally: those the snapshot already has are
        # skipped by their MODSEQ, later ones chain on from it. Mailbox events queued
        # before the snapshot (a DELETE and CREATE of this very name) must not end it.
        if self.listener is not None:
            for change in self.listener.drain():
                if not isinstance(change, MailboxEvent):
                    self.listener.deliver(change)

    def unselect(self) -> None:
        self.selected = None
        self.saved = uid_array()
        if self.state is State.SELECTED:
            self.state = State.AUTHENTICATED
        self.refresh_watches()

    async def absorb(self) -> None:
        """Take queued changes into the selected view without telling the client yet."""
        if self.listener is None:
            return
        pending = self.listener.drain()
        if self.selected is None or not pending:
            return
        await self._absorb(pending)

    async def absorb_changes(self, pending: list[Change]) -> None:
        """Take changes already drained from the listener (NOTIFY drains it itself) into
        the selected view."""
        if self.selected is not None and pending:
            await self._absorb(pending)

    async def _absorb(self, pending: list[Change]) -> None:
        selected = self.selected
        assert selected is not None
        behind = False
        for change in pending:
            match change:
                case ChangeSet(mailbox_id=mailbox_id) if mailbox_id == selected.id:
                    if not behind and not selected.absorb(change):
                        behind = True
                case MailboxTouched(mailbox_id=mailbox_id, highestmodseq=modseq):
                    if mailbox_id == selected.id and modseq > selected.modseq:
                        behind = True
                case MailboxEvent(kind="deleted") if _concerns(change, selected, change.name):
                    self._bye = "the selected mailbox was deleted"
                case MailboxEvent(kind="renamed", name=name) if _concerns(
                    change, selected, change.old_name
                ):
                    selected.name = name
        if behind:
            await self.catch_up()

    async def catch_up(self) -> None:
        """Bring the view up to the store's log (the hub missed something)."""
        selected = self.selected
        assert selected is not None
        try:
            changes = await self.store.changes_since(selected.id, selected.modseq)
        except errors.NotFound:
            self._bye = "the selected mailbox was deleted"
            return
        selected.absorb_changes(changes)
        if not changes.expunge_log_complete:
            snapshot = await self.store.snapshot(selected.id)
            selected.absorb_existing(snapshot.uids)

    async def announce(self, *, allow_expunge: bool) -> None:
        """Tell the client what changed in the selected mailbox (RFC 9051 7.4, 7.5)."""
        await self.absorb()
        selected = self.selected
        if selected is None:
            return
        news = selected.announce(allow_expunge=allow_expunge)
        if "QRESYNC" in self.enabled and news.expunged_uids:
            # RFC 7162 3.2.10: VANISHED replaces EXPUNGE once QRESYNC is enabled.
            for part in resync.chunks(sequence.compress(news.expunged_uids)):
                await self.send(responses.vanished(part))
        else:
            for seq in news.expunged:
                await self.send(responses.expunge(seq))
        for seq, state in news.flags:
            await self.send(self.flags_update(seq, state))
        if news.exists is not None:
            await self.send(responses.exists(news.exists))
            if news.new_uids:
                first, last = news.new_uids[0], news.new_uids[-1]
                if selected.readonly:
                    selected.add_recent(first, last)
                else:
                    boundary = self.store.claim_recent(selected.id, last + 1)
                    selected.add_recent(max(first, boundary), last)
            if not self.rev2:
                await self.send(responses.recent(selected.recent_count()))

    def flags_update(self, seq: int, state: MessageState) -> bytes:
        """An unsolicited ``* n FETCH (UID u FLAGS (...))``; UID included so that clients
        need not map sequence numbers (allowed by RFC 9051 7.5.2)."""
        fetch = responses.FetchResponse(seq).add_number("UID", state.uid)
        fetch.add("FLAGS", self.flag_list(state.flags, state.keywords, state.uid))
        if self.condstore:
            fetch.add("MODSEQ", responses.modseq_value(state.modseq))
        return fetch.to_bytes()


def _concerns(event: MailboxEvent, selected: SelectedMailbox, name: str | None) -> bool:
    """Whether a mailbox event is about the selected mailbox: by id when the event has
    one, else by owner and name (the session may watch other accounts' mailboxes)."""
    if event.mailbox_id is not None:
        return event.mailbox_id == selected.id
    return event.account_id == selected.account_id and name == selected.name


def _error_code(exc: errors.MailkeepError) -> bytes | None:
    for cls in type(exc).__mro__:
        if cls in ERROR_CODES:
            return ERROR_CODES[cls]
    return None


def _wrong_state(state: State, allowed: frozenset[State]) -> str:
    if state is State.NOT_AUTHENTICATED:
        return "log in first (LOGIN or AUTHENTICATE)"
    if allowed == base.NOT_AUTHENTICATED:
        return "already authenticated"
    if allowed == base.SELECTED:
        return "no mailbox selected (SELECT or EXAMINE first)"
    if allowed == base.AUTHENTICATED_ONLY:
        return "not allowed while a mailbox is selected (UNSELECT first)"
    return f"not allowed in the {state.value} state"
