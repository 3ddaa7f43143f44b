"""An asyncio IMAP4rev1/IMAP4rev2 client (RFC 3501, RFC 9051) for the sync and migrate tools,
and the oracle of mailkeep's own server tests, so it stays general.

One reader task turns server bytes into responses (``imapwire``); commands are tagged,
may be pipelined (several in flight), and each returns typed results. Untagged responses are
given to the oldest command in flight (servers answer pipelined commands in order) and are
also applied to ``self.mailbox`` (EXISTS, EXPUNGE, VANISHED, FLAGS) so callers always know
the selected mailbox's state. Unsolicited responses that arrive while nothing is in flight,
or during IDLE, are queued for ``idle()``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Protocol

from mailkeep.client import imapwire as wire
from mailkeep.client.connection import Endpoint, TlsMode, open_stream, start_tls
from mailkeep.client.errors import (
    AuthenticationFailed,
    ImapError,
    NetworkError,
    ProtocolError,
    TlsFailure,
)
from mailkeep.client.imapwire import (
    Capability,
    Condition,
    Continuation,
    Enabled,
    Exists,
    Expunge,
    Fetch,
    Flags,
    ListEntry,
    Namespace,
    Search,
    Status,
    Tagged,
    Untagged,
    Vanished,
    encode_mailbox,
    format_datetime,
    format_uid_set,
    quote,
)
from mailkeep.errors import MailkeepError


class SaslMechanism(Protocol):
    """A SASL client mechanism (RFC 4422): the shape ``mailkeep.auth`` provides."""

    @property
    def name(self) -> str: ...

    def initial_response(self) -> bytes | None: ...

    def respond(self, challenge: bytes) -> bytes: ...

    def finish(self, final: bytes | None = None) -> None: ...


@dataclass(frozen=True)
class Literal:
    """A command argument sent as a literal (RFC 9051 4.3): bytes or a file of known size."""

    data: bytes | IO[bytes]
    size: int


Arg = bytes | Literal


@dataclass
class MailboxState:
    """What we know of the selected mailbox, kept current from untagged responses."""

    name: str
    exists: int = 0
    recent: int = 0
    uidvalidity: int | None = None
    uidnext: int | None = None
    highestmodseq: int | None = None
    nomodseq: bool = False
    readonly: bool = False
    flags: tuple[str, ...] = ()
    permanentflags: tuple[str, ...] = ()
    vanished: list[int] = field(default_factory=list)
    """UIDs reported VANISHED (with or without EARLIER) since the SELECT."""
    changed: list[Fetch] = field(default_factory=list)
    """FETCH responses received at SELECT time (QRESYNC) or unsolicited."""


@dataclass(frozen=True)
class CommandResult:
    tagged: Tagged
    untagged: list[Untagged]


@dataclass(frozen=True)
class AppendResult:
    """APPENDUID (RFC 4315 3): None fields when the server lacks UIDPLUS."""

    uidvalidity: int | None
    uid: int | None


@dataclass(frozen=True)
class StoreResult:
    fetches: list[Fetch]
    modified: tuple[int, ...]
    """UIDs not changed because of UNCHANGEDSINCE (RFC 7162 3.1.3 ``[MODIFIED ...]``)."""


@dataclass(frozen=True)
class QresyncParams:
    """RFC 7162 3.2.5 SELECT parameters: what we knew at the end of the last sync."""

    uidvalidity: int
    modseq: int
    known_uids: str | None = None


@dataclass
class PendingCommand:
    """A command sent and not yet completed (from ``start``; pass it to ``finish``)."""

    tag: str
    future: asyncio.Future[Tagged]
    untagged: list[Untagged] = field(default_factory=list)
    on_untagged: Callable[[Untagged], bool] | None = None
    """Returns True when it consumed the response (it is then not collected)."""


class ImapClient:
    """Use ``await ImapClient.connect(endpoint)``; close with ``logout()`` or ``close()``."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        endpoint: Endpoint,
        spool_dir: str | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.endpoint = endpoint
        self._wire = wire.ResponseReader(spool_dir)
        self._pending: deque[PendingCommand] = deque()
        self._continuation: asyncio.Future[Continuation] | None = None
        self._unsolicited: asyncio.Queue[Untagged] = asyncio.Queue()
        self._send_lock = asyncio.Lock()
        self._tag_counter = 0
        self._reader_task: asyncio.Task[None] | None = None
        self._greeting: asyncio.Future[Condition] = asyncio.get_running_loop().create_future()
        self._failure: Exception | None = None
        self.capabilities: frozenset[str] = frozenset()
        self.enabled: frozenset[str] = frozenset()
        self.mailbox: MailboxState | None = None
        self.bye: Condition | None = None
        self.timeout = endpoint.timeout

    # --- connection ---------------------------------------------------------------

    @classmethod
    async def connect(cls, endpoint: Endpoint, spool_dir: str | None = None) -> ImapClient:
        """Connect, read the greeting, and upgrade with STARTTLS when the endpoint says so."""
        reader, writer = await open_stream(endpoint)
        client = cls(reader, writer, endpoint, spool_dir)
        client._reader_task = asyncio.create_task(client._read_loop())
        try:
            greeting = await asyncio.wait_for(client._greeting, endpoint.timeout)
            if greeting.status == "BYE":
                raise ProtocolError(f"server refused the connection: {greeting.text}")
            if greeting.code == "CAPABILITY":
                client.capabilities = frozenset(wire.values_text(greeting.code_args))
            else:
                await client.capability()
            if endpoint.tls is TlsMode.STARTTLS:
                await client.starttls()
        except BaseException:
            await client.close()
            raise
        return client

    async def starttls(self) -> None:
        """RFC 9051 6.2.1; capabilities are asked again afterwards (they may change)."""
        if "STARTTLS" not in self.capabilities:
            raise TlsFailure(f"{self.endpoint.host} does not offer STARTTLS")
        await self.command(b"STARTTLS")
        assert self._reader_task is not None
        # The reader task must stop reading plain text before the handshake.
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader_task
        await start_tls(self._writer, self.endpoint)
        self._reader_task = asyncio.create_task(self._read_loop())
        await self.capability()

    async def close(self) -> None:
        """Drop the connection without LOGOUT."""
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    async def logout(self) -> None:
        with contextlib.suppress(ImapError, NetworkError, ProtocolError):
            await self.command(b"LOGOUT")
        await self.close()

    async def __aenter__(self) -> ImapClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.logout()

    # --- the reader task ------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._reader.read(256 * 1024)
                self._wire.receive_data(data)
                while (response := self._wire.next_response()) is not None:
                    self._dispatch(response)
                if not data:
                    raise NetworkError(f"{self.endpoint.host} closed the connection")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure = exc
            if isinstance(exc, OSError):
                failure = NetworkError(f"connection to {self.endpoint.host} failed: {exc}")
            if self.bye is not None and isinstance(exc, NetworkError):
                failure = NetworkError(f"{self.endpoint.host} said BYE: {self.bye.text}")
            self._fail(failure)

    def _fail(self, failure: Exception) -> None:
        self._failure = failure
        if not self._greeting.done():
            self._greeting.set_exception(failure)
        for pending in self._pending:
            if not pending.future.done():
                pending.future.set_exception(failure)
        self._pending.clear()
        if self._continuation is not None and not self._continuation.done():
            self._continuation.set_exception(failure)

    def _dispatch(self, response: wire.Response) -> None:
        if isinstance(response, Continuation):
            if self._continuation is not None and not self._continuation.done():
                self._continuation.set_result(response)
            return
        if isinstance(response, Tagged):
            for pending in self._pending:
                if pending.tag == response.tag:
                    self._pending.remove(pending)
                    self._apply_code(response.code, response.code_args)
                    if not pending.future.done():
                        pending.future.set_result(response)
                    return
            raise ProtocolError(f"tagged response for unknown tag {response.tag!r}")
        if not self._greeting.done():
            if isinstance(response, Condition):
                self._greeting.set_result(response)
                return
            raise ProtocolError(f"unexpected greeting {response!r}")
        self._apply(response)
        if self._pending:
            pending = self._pending[0]
            if pending.on_untagged is None or not pending.on_untagged(response):
                pending.untagged.append(response)
        else:
            self._unsolicited.put_nowait(response)

    def _apply(self, response: Untagged) -> None:
        box = self.mailbox
        match response:
            case Capability(names=names):
                self.capabilities = names
            case Enabled(names=names):
                self.enabled = self.enabled | names
            case Condition(status="BYE"):
                self.bye = response
            case Condition(code=code, code_args=args):
                self._apply_code(code, args)
            case Exists(count=count) if box is not None:
                box.exists = count
            case Expunge() if box is not None:
                box.exists = max(0, box.exists - 1)
            case Vanished(uids=uids, earlier=earlier) if box is not None:
                box.vanished.extend(uids)
                if not earlier:
                    box.exists = max(0, box.exists - len(uids))
            case Flags(flags=flags) if box is not None:
                box.flags = flags
            case _:
                pass

    def _apply_code(self, code: str | None, args: tuple[wire.Value, ...]) -> None:
        box = self.mailbox
        if code == "CAPABILITY":
            self.capabilities = frozenset(a.upper() for a in wire.values_text(args))
        if box is None or code is None:
            return
        number = wire.as_int(args[0]) if args and isinstance(args[0], str) else None
        match code:
            case "UIDVALIDITY":
                box.uidvalidity = number
            case "UIDNEXT":
                box.uidnext = number
            case "HIGHESTMODSEQ":
                box.highestmodseq = number
            case "NOMODSEQ":
                box.nomodseq = True
            case "READ-ONLY":
                box.readonly = True
            case "PERMANENTFLAGS" if args and isinstance(args[0], list):
                box.permanentflags = tuple(wire.values_text(args[0]))
            case _:
                pass

    # --- sending ----------------------------------------------------------------------

    def _next_tag(self) -> str:
        self._tag_counter += 1
        return f"A{self._tag_counter:04d}"

    async def _send(self, pending: PendingCommand, parts: Sequence[Arg]) -> None:
        """Write a command; literals use LITERAL+ (RFC 7888) when offered, else wait for
        the server's continuation request."""
        plus_any = "LITERAL+" in self.capabilities
        plus_small = "LITERAL-" in self.capabilities
        async with self._send_lock:
            if self._failure is not None:
                raise self._failure
            self._pending.append(pending)
            line = bytearray(pending.tag.encode() + b" ")
            try:
                for part in parts:
                    if isinstance(part, bytes):
                        line += part
                        continue
                    nonsync = plus_any or (plus_small and part.size <= 4096)
                    plus = b"+" if nonsync else b""
                    line += b"{%d%s}\r\n" % (part.size, plus)
                    self._writer.write(bytes(line))
                    line.clear()
                    if not plus:
                        await self._await_continuation(pending)
                    await self._write_literal(part)
                line += b"\r\n"
                self._writer.write(bytes(line))
                await self._writer.drain()
            except (OSError, ConnectionError) as exc:
                raise NetworkError(f"sending to {self.endpoint.host} failed: {exc}") from exc

    async def _await_continuation(self, pending: PendingCommand) -> Continuation:
        loop = asyncio.get_running_loop()
        self._continuation = loop.create_future()
        await self._writer.drain()
        waiter = asyncio.ensure_future(self._continuation)
        done, _ = await asyncio.wait(
            _futures(waiter, pending.future),
            timeout=self.timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if waiter in done:
            return waiter.result()
        waiter.cancel()
        if pending.future in done:
            tagged = pending.future.result()
            raise ImapError(tagged.tag, tagged.status, tagged.code, tagged.text)
        raise NetworkError(f"{self.endpoint.host} did not answer within {self.timeout}s")

    async def _write_literal(self, part: Literal) -> None:
        if isinstance(part.data, bytes):
            self._writer.write(part.data)
            return
        part.data.seek(0)
        while chunk := part.data.read(256 * 1024):
            self._writer.write(chunk)
            await self._writer.drain()

    async def _wait(self, pending: PendingCommand) -> Tagged:
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), self.timeout)
        except TimeoutError:
            raise NetworkError(
                f"{self.endpoint.host} did not answer within {self.timeout}s"
            ) from None

    async def command(
        self,
        *parts: Arg,
        on_untagged: Callable[[Untagged], bool] | None = None,
        check: bool = True,
    ) -> CommandResult:
        """Send one command (its parts joined as given) and wait for its completion.

        With ``check`` a NO/BAD raises ``ImapError``; the generic entry point for commands
        this class has no method for, and for server tests.
        """
        pending = self.start(*parts, on_untagged=on_untagged)
        return await self.finish(await pending, check=check)

    async def start(
        self, *parts: Arg, on_untagged: Callable[[Untagged], bool] | None = None
    ) -> PendingCommand:
        """Send a command without waiting: pipeline several, then ``finish`` each."""
        loop = asyncio.get_running_loop()
        pending = PendingCommand(self._next_tag(), loop.create_future(), on_untagged=on_untagged)
        await self._send(pending, _spaced(parts))
        return pending

    async def finish(self, pending: PendingCommand, check: bool = True) -> CommandResult:
        tagged = await self._wait(pending)
        if check and tagged.status != "OK":
            raise ImapError(tagged.tag, tagged.status, tagged.code, tagged.text)
        return CommandResult(tagged, pending.untagged)

    # --- commands, RFC 9051 6 -------------------------------------------------------------

    async def capability(self) -> frozenset[str]:
        await self.command(b"CAPABILITY")
        return self.capabilities

    def has(self, capability: str) -> bool:
        return capability.upper() in self.capabilities

    async def noop(self) -> list[Untagged]:
        return (await self.command(b"NOOP")).untagged

    async def login(self, user: str, password: str) -> None:
        """LOGIN (RFC 9051 6.2.3); refused if the server says LOGINDISABLED."""
        if "LOGINDISABLED" in self.capabilities:
            raise AuthenticationFailed(f"{self.endpoint.host} disables LOGIN (try STARTTLS)")
        try:
            result = await self.command(b"LOGIN", self._astring(user), self._astring(password))
        except ImapError as exc:
            raise AuthenticationFailed(f"login as {user} refused: {exc.text}") from exc
        await self._after_auth(result.tagged)

    async def authenticate(self, mechanism: SaslMechanism) -> None:
        """AUTHENTICATE (RFC 9051 6.2.2) with SASL-IR (RFC 4959) when offered."""
        loop = asyncio.get_running_loop()
        pending = PendingCommand(self._next_tag(), loop.create_future())
        parts: list[Arg] = [b"AUTHENTICATE", mechanism.name.encode()]
        initial = mechanism.initial_response()
        if initial is not None and "SASL-IR" in self.capabilities:
            parts.append(base64.b64encode(initial) or b"=")
            initial = None
        self._continuation = loop.create_future()
        await self._send(pending, _spaced(parts))
        try:
            while True:
                waiter = asyncio.ensure_future(self._continuation)
                done, _ = await asyncio.wait(
                    _futures(waiter, pending.future),
                    timeout=self.timeout,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if pending.future in done:
                    waiter.cancel()
                    break
                if not done:
                    raise NetworkError(f"{self.endpoint.host} did not answer AUTHENTICATE")
                challenge = base64.b64decode(waiter.result().text or "")
                if initial is not None and not challenge:
                    answer, initial = initial, None
                else:
                    answer = mechanism.respond(challenge)
                self._continuation = loop.create_future()
                self._writer.write(base64.b64encode(answer) + b"\r\n")
                await self._writer.drain()
        except (ValueError, MailkeepError) as exc:
            self._writer.write(b"*\r\n")
            raise AuthenticationFailed(f"SASL {mechanism.name} failed: {exc}") from exc
        tagged = await self._wait(pending)
        if tagged.status != "OK":
            raise AuthenticationFailed(f"AUTHENTICATE {mechanism.name} refused: {tagged.text}")
        try:
            mechanism.finish(None)
        except MailkeepError as exc:
            raise AuthenticationFailed(f"SASL {mechanism.name}: {exc}") from exc
        await self._after_auth(tagged)

    async def _after_auth(self, tagged: Tagged) -> None:
        if tagged.code != "CAPABILITY":
            await self.capability()

    async def enable(self, *names: str) -> frozenset[str]:
        """ENABLE (RFC 5161): returns what the server enabled."""
        wanted = [n for n in names if n.upper() in self.capabilities]
        if not wanted or "ENABLE" not in self.capabilities:
            return frozenset()
        await self.command(b"ENABLE", *(n.encode() for n in wanted))
        return self.enabled

    async def namespace(self) -> Namespace | None:
        if "NAMESPACE" not in self.capabilities:
            return None
        result = await self.command(b"NAMESPACE")
        return next((r for r in result.untagged if isinstance(r, Namespace)), None)

    async def list_mailboxes(self, reference: str = "", pattern: str = "*") -> list[ListEntry]:
        result = await self.command(
            b"LIST", quote(encode_mailbox(reference)), quote(encode_mailbox(pattern))
        )
        return [r for r in result.untagged if isinstance(r, ListEntry)]

    async def status(self, mailbox: str, items: Iterable[str]) -> dict[str, int]:
        result = await self.command(b"STATUS", self.mailbox_arg(mailbox), _paren(items))
        found: dict[str, int] = {}
        for response in result.untagged:
            if isinstance(response, Status):
                found.update(response.items)
        return found

    async def select(
        self,
        mailbox: str,
        *,
        readonly: bool = False,
        condstore: bool = False,
        qresync: QresyncParams | None = None,
    ) -> MailboxState:
        """SELECT/EXAMINE (RFC 9051 6.3.2), with CONDSTORE or QRESYNC (RFC 7162 3.1.8,
        3.2.5) parameters. QRESYNC must have been ENABLEd first."""
        self.mailbox = MailboxState(mailbox, readonly=readonly)
        parts: list[Arg] = [b"EXAMINE" if readonly else b"SELECT", self.mailbox_arg(mailbox)]
        if qresync is not None:
            inner = f"{qresync.uidvalidity} {qresync.modseq}"
            if qresync.known_uids:
                inner += f" {qresync.known_uids}"
            parts.append(f"(QRESYNC ({inner}))".encode())
        elif condstore:
            parts.append(b"(CONDSTORE)")
        box = self.mailbox

        def collect(response: Untagged) -> bool:
            if isinstance(response, Fetch):
                box.changed.append(response)
                return True
            return False

        try:
            result = await self.command(*parts, on_untagged=collect)
        except ImapError:
            self.mailbox = None
            raise
        if result.tagged.code == "READ-ONLY":
            box.readonly = True
        return box

    async def unselect(self) -> None:
        """UNSELECT (RFC 3691) when offered, else CLOSE (which expunges: avoided with
        EXAMINE of a harmless mailbox is not worth it; callers who mind check UNSELECT)."""
        await self.command(b"UNSELECT" if "UNSELECT" in self.capabilities else b"CLOSE")
        self.mailbox = None

    async def uid_fetch(
        self,
        uids: str,
        items: str,
        *,
        changedsince: int | None = None,
        vanished: bool = False,
        on_fetch: Callable[[Fetch], None] | None = None,
    ) -> list[Fetch]:
        """UID FETCH (RFC 9051 6.4.8) with CHANGEDSINCE/VANISHED (RFC 7162 3.1.4, 3.2.6).

        With ``on_fetch`` each answer is handed over as it arrives (and not returned), so
        bodies can be written out one by one; otherwise all answers are returned.
        VANISHED answers go to ``self.mailbox.vanished``.
        """
        parts: list[Arg] = [b"UID FETCH", uids.encode(), items.encode()]
        modifiers = []
        if changedsince is not None:
            modifiers.append(f"CHANGEDSINCE {changedsince}")
            if vanished:
                modifiers.append("VANISHED")
        if modifiers:
            parts.append(f"({' '.join(modifiers)})".encode())
        fetches: list[Fetch] = []

        def collect(response: Untagged) -> bool:
            if isinstance(response, Fetch):
                if on_fetch is not None:
                    on_fetch(response)
                else:
                    fetches.append(response)
                return True
            return False

        await self.command(*parts, on_untagged=collect)
        return fetches

    async def uid_fetch_pipelined(
        self,
        uids: Sequence[int],
        items: str,
        on_fetch: Callable[[Fetch], None],
        batch: int = 50,
        window: int = 4,
    ) -> None:
        """Fetch many UIDs in batches with up to ``window`` commands in flight: saves a
        round trip per batch without one huge response to restart from on failure."""
        chunks = [uids[i : i + batch] for i in range(0, len(uids), batch)]
        in_flight: deque[PendingCommand] = deque()

        def collect(response: Untagged) -> bool:
            if isinstance(response, Fetch):
                on_fetch(response)
                return True
            return False

        for chunk in chunks:
            if len(in_flight) >= window:
                await self.finish(in_flight.popleft())
            in_flight.append(
                await self.start(
                    b"UID FETCH",
                    format_uid_set(chunk).encode(),
                    items.encode(),
                    on_untagged=collect,
                )
            )
        while in_flight:
            await self.finish(in_flight.popleft())

    async def uid_search(self, criteria: str) -> Search:
        result = await self.command(b"UID SEARCH", criteria.encode())
        found = [r for r in result.untagged if isinstance(r, Search)]
        numbers = tuple(n for r in found for n in r.numbers)
        modseq = next((r.modseq for r in found if r.modseq is not None), None)
        return Search(numbers, modseq)

    async def uid_store(
        self,
        uids: str,
        operation: str,
        flags: Iterable[str],
        *,
        silent: bool = True,
        unchangedsince: int | None = None,
    ) -> StoreResult:
        """UID STORE (RFC 9051 6.4.6); ``operation`` is ``FLAGS``, ``+FLAGS`` or ``-FLAGS``.
        UNCHANGEDSINCE per RFC 7162 3.1.3."""
        parts: list[Arg] = [b"UID STORE", uids.encode()]
        if unchangedsince is not None:
            parts.append(f"(UNCHANGEDSINCE {unchangedsince})".encode())
        parts.append((operation + (".SILENT" if silent else "")).encode())
        parts.append(_paren(flags))
        result = await self.command(*parts)
        modified = (
            wire.parse_uid_set(wire.as_text(result.tagged.code_args[0]))
            if result.tagged.code == "MODIFIED" and result.tagged.code_args
            else ()
        )
        fetches = [r for r in result.untagged if isinstance(r, Fetch)]
        return StoreResult(fetches, modified)

    async def append(
        self,
        mailbox: str,
        message: bytes | IO[bytes],
        *,
        size: int | None = None,
        flags: Iterable[str] = (),
        internaldate: datetime | None = None,
    ) -> AppendResult:
        """APPEND (RFC 9051 6.3.12); UIDPLUS's APPENDUID (RFC 4315 3) when offered."""
        if size is None:
            if not isinstance(message, bytes):
                raise ValueError("size is required for a file")
            size = len(message)
        parts: list[Arg] = [b"APPEND", self.mailbox_arg(mailbox)]
        flag_list = list(flags)
        if flag_list:
            parts.append(_paren(flag_list))
        if internaldate is not None:
            parts.append(format_datetime(internaldate).encode())
        parts.append(Literal(message, size))
        result = await self.command(*parts)
        tagged = result.tagged
        if tagged.code == "APPENDUID" and len(tagged.code_args) >= 2:
            return AppendResult(wire.code_int(tagged, 0), wire.code_int(tagged, 1))
        return AppendResult(None, None)

    async def expunge(self) -> list[Untagged]:
        return (await self.command(b"EXPUNGE")).untagged

    async def uid_expunge(self, uids: str) -> list[Untagged]:
        """UID EXPUNGE (RFC 4315 2.1): expunges only these UIDs."""
        if "UIDPLUS" not in self.capabilities:
            raise ProtocolError(f"{self.endpoint.host} lacks UIDPLUS (UID EXPUNGE)")
        return (await self.command(b"UID EXPUNGE", uids.encode())).untagged

    async def uid_copy(self, uids: str, mailbox: str) -> CommandResult:
        return await self.command(b"UID COPY", uids.encode(), self.mailbox_arg(mailbox))

    async def uid_move(self, uids: str, mailbox: str) -> CommandResult:
        """MOVE (RFC 6851)."""
        if "MOVE" not in self.capabilities:
            raise ProtocolError(f"{self.endpoint.host} lacks MOVE")
        return await self.command(b"UID MOVE", uids.encode(), self.mailbox_arg(mailbox))

    async def create(self, mailbox: str) -> None:
        await self.command(b"CREATE", self.mailbox_arg(mailbox))

    async def delete(self, mailbox: str) -> None:
        await self.command(b"DELETE", self.mailbox_arg(mailbox))

    async def rename(self, old: str, new: str) -> None:
        await self.command(b"RENAME", self.mailbox_arg(old), self.mailbox_arg(new))

    async def subscribe(self, mailbox: str) -> None:
        await self.command(b"SUBSCRIBE", self.mailbox_arg(mailbox))

    async def unsubscribe(self, mailbox: str) -> None:
        await self.command(b"UNSUBSCRIBE", self.mailbox_arg(mailbox))

    @contextlib.asynccontextmanager
    async def idle(self) -> AsyncIterator[asyncio.Queue[Untagged]]:
        """IDLE (RFC 2177): yields the queue of unsolicited responses; leaving the block
        sends DONE and waits for the completion."""
        if "IDLE" not in self.capabilities:
            raise ProtocolError(f"{self.endpoint.host} lacks IDLE")
        loop = asyncio.get_running_loop()
        pending = PendingCommand(self._next_tag(), loop.create_future())
        self._continuation = loop.create_future()
        await self._send(pending, [b"IDLE"])
        await self._await_continuation_only(pending)
        queue: asyncio.Queue[Untagged] = asyncio.Queue()

        def forward(response: Untagged) -> bool:
            queue.put_nowait(response)
            return True

        pending.on_untagged = forward
        try:
            yield queue
        finally:
            if self._failure is None and not pending.future.done():
                self._writer.write(b"DONE\r\n")
                with contextlib.suppress(OSError, ConnectionError):
                    await self._writer.drain()
            await self.finish(pending)

    async def _await_continuation_only(self, pending: PendingCommand) -> None:
        assert self._continuation is not None
        waiter = asyncio.ensure_future(self._continuation)
        done, _ = await asyncio.wait(
            _futures(waiter, pending.future),
            timeout=self.timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if waiter not in done:
            waiter.cancel()
            await self.finish(pending)
            raise ProtocolError("IDLE was not accepted")

    def unsolicited(self) -> list[Untagged]:
        """Drain responses that arrived while no command was in flight."""
        items: list[Untagged] = []
        while not self._unsolicited.empty():
            items.append(self._unsolicited.get_nowait())
        return items

    # --- argument encoding ------------------------------------------------------------

    def _astring(self, text: str) -> Arg:
        raw = text.encode()
        if wire.needs_literal(raw):
            return Literal(raw, len(raw))
        return quote(raw)

    def mailbox_arg(self, name: str) -> Arg:
        """A mailbox name as a command argument (mUTF-7 unless UTF8=ACCEPT is enabled)."""
        if "UTF8=ACCEPT" in self.enabled:
            return self._astring(name)
        return quote(encode_mailbox(name))


def _paren(items: Iterable[str]) -> bytes:
    return b"(" + b" ".join(item.encode() for item in items) + b")"


def _spaced(parts: Sequence[Arg]) -> list[Arg]:
    """Insert single spaces between arguments (literals carry their own framing)."""
    out: list[Arg] = []
    for index, part in enumerate(parts):
        if index:
            out.append(b" ")
        out.append(part)
    return out


def _futures(*futures: asyncio.Future[Any]) -> set[asyncio.Future[Any]]:
    return set(futures)
