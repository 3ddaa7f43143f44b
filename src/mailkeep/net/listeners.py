"""Listening sockets and the ``Connection`` every protocol server talks through.

This is the only module (with each protocol's ``server.py``) that touches sockets. It
enforces the connection limits (per client address and in total), reads a PROXY protocol
header when configured, upgrades to TLS (implicit or STARTTLS) and logs one line per
connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import socket
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mailkeep import metrics
from mailkeep.net import proxy

log = logging.getLogger("mailkeep.connections")

_READ_SIZE = 65536


class ConnectionClosed(Exception):
    """The peer went away (or timed out) while we were reading or writing."""


class Connection:
    """One client connection, as the protocol servers see it.

    ``read`` returns whatever bytes arrived (never more than 64 KiB at once): the protocol's
    sans-I/O wire layer does the framing and enforces line and literal limits.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        peer: tuple[str, int],
        local: tuple[str, int],
        tls_context: Callable[[], ssl.SSLContext] | None,
        tls: bool,
        pending: bytes = b"",
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.peer = peer
        self.local = local
        self._tls_context = tls_context
        self.tls = tls
        self._pending = pending
        self.loopback = _is_loopback(peer[0])

    @property
    def remote(self) -> str:
        """The client's address (from the PROXY header when behind a balancer)."""
        return self.peer[0]

    @property
    def can_start_tls(self) -> bool:
        return not self.tls and self._tls_context is not None

    async def read(self, within: float | None = None) -> bytes:
        """Next bytes from the client; b'' when it closed or ``within`` seconds passed."""
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        try:
            async with asyncio.timeout(within):
                return await self._reader.read(_READ_SIZE)
        except (TimeoutError, ConnectionError, ssl.SSLError, OSError):
            return b""

    async def write(self, data: bytes) -> None:
        """Send ``data``, waiting while the client is slow to take it (backpressure)."""
        if self._writer.is_closing():
            raise ConnectionClosed
        self._writer.write(data)
        try:
            await self._writer.drain()
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            raise ConnectionClosed from exc

    async def start_tls(self) -> None:
        """Upgrade to TLS in place (STARTTLS, STLS). Bytes the client pipelined after the
        command in clear text are dropped, so they cannot be injected into the TLS session
        (the attack of CVE-2011-0411)."""
        if self._tls_context is None or self.tls:
            raise RuntimeError("TLS is not available on this connection")
        self._pending = b""
        buffered = getattr(self._reader, "_buffer", None)  # asyncio keeps no public accessor
        if buffered:
            log.warning(
                "%s: dropped %d bytes sent in clear after STARTTLS", self.remote, len(buffered)
            )
            buffered.clear()
        await self._writer.start_tls(self._tls_context())
        self.tls = True

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError, TimeoutError):
            async with asyncio.timeout(5):
                await self._writer.wait_closed()


Handler = Callable[[Connection], Awaitable[None]]


@dataclass(frozen=True)
class ListenerSpec:
    name: str
    """``imap``, ``imaps``, ``pop3``, ... (for logs)."""
    host: str
    port: int
    handler: Handler
    implicit_tls: bool = False
    refuse: Callable[[str], bytes] = lambda why: b""
    """The protocol's goodbye for a connection refused by the limits (BYE, -ERR, 421)."""


@dataclass
class Limits:
    per_address: int = 200
    total: int = 20000


class ConnectionGate:
    """Counts open connections per client address and in total, across all listeners."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._by_address: Counter[str] = Counter()
        self._total = 0

    def admit(self, address: str) -> str | None:
        """None when admitted; otherwise why not."""
        if self._total >= self.limits.total:
            return "too many connections to this server"
        if self._by_address[address] >= self.limits.per_address:
            return "too many connections from your address"
        self._by_address[address] += 1
        self._total += 1
        return None

    def release(self, address: str) -> None:
        self._total -= 1
        self._by_address[address] -= 1
        if self._by_address[address] <= 0:
            del self._by_address[address]

    @property
    def open_connections(self) -> int:
        return self._total


class Listeners:
    """Runs the listening sockets; ``start`` fails clearly if a port is taken."""

    def __init__(
        self,
        specs: list[ListenerSpec],
        *,
        gate: ConnectionGate,
        tls_context: Callable[[], ssl.SSLContext] | None,
        proxy_protocol: bool = False,
    ) -> None:
        self.specs = specs
        self.gate = gate
        self.tls_context = tls_context
        self.proxy_protocol = proxy_protocol
        self.servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> list[tuple[str, str, int]]:
        """Bind every listener; return (name, host, port) as bound (port 0 resolved)."""
        bound = []
        for spec in self.specs:
            if spec.implicit_tls and self.tls_context is None:
                raise OSError(f"{spec.name}: TLS is not configured")
            try:
                server = await asyncio.start_server(
                    functools.partial(self._accept, spec),
                    spec.host,
                    spec.port,
                    reuse_address=True,
                    backlog=1024,
                )
            except OSError as exc:
                await self.stop()
                raise OSError(
                    f"cannot listen for {spec.name} on {spec.host}:{spec.port}: {exc.strerror}"
                ) from exc
            self.servers.append(server)
            port = server.sockets[0].getsockname()[1]
            bound.append((spec.name, spec.host, port))
        return bound

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting; give sessions ``grace`` seconds to finish, then cancel them."""
        for server in self.servers:
            server.close()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
        for server in self.servers:
            await server.wait_closed()
        self.servers.clear()

    async def _accept(
        self, spec: ListenerSpec, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(spec, reader, writer)
        finally:
            self._tasks.discard(task)

    async def _serve(
        self, spec: ListenerSpec, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = _address(writer.get_extra_info("peername"))
        local = _address(writer.get_extra_info("sockname"))
        pending = b""
        if self.proxy_protocol:
            header = await _read_proxy_header(reader)
            if header is None:
                writer.close()
                return
            source, pending = header
            if source is not None:
                peer = source
        why = self.gate.admit(peer[0])
        if why is not None:
            log.info("%s %s:%d refused: %s", spec.name, peer[0], peer[1], why)
            writer.write(spec.refuse(why))
            with contextlib.suppress(Exception):
                await writer.drain()
            writer.close()
            return
        started = time.monotonic()
        connection = Connection(
            reader,
            writer,
            peer=peer,
            local=local,
            tls_context=self.tls_context,
            tls=False,
            pending=pending,
        )
        log.info("%s connect from %s:%d", spec.name, peer[0], peer[1])
        metrics.CONNECTIONS.labels(spec.name).inc()
        try:
            if spec.implicit_tls:
                assert self.tls_context is not None
                try:
                    async with asyncio.timeout(30):
                        await connection.start_tls()
                except (TimeoutError, ssl.SSLError, ConnectionError, OSError) as exc:
                    log.info("%s %s: TLS handshake failed: %s", spec.name, peer[0], exc)
                    return
            await spec.handler(connection)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("%s %s: session failed", spec.name, peer[0])
        finally:
            self.gate.release(peer[0])
            await connection.close()
            log.info(
                "%s disconnect %s:%d after %.1fs",
                spec.name,
                peer[0],
                peer[1],
                time.monotonic() - started,
            )


async def _read_proxy_header(
    reader: asyncio.StreamReader,
) -> tuple[tuple[str, int] | None, bytes] | None:
    data = b""
    try:
        async with asyncio.timeout(10):
            while True:
                chunk = await reader.read(_READ_SIZE)
                if not chunk:
                    return None
                data += chunk
                header = proxy.parse(data)
                if header is not None:
                    return header.source, data[header.length :]
                if len(data) > 4096:
                    return None
    except (TimeoutError, proxy.ProxyError, ConnectionError, OSError) as exc:
        log.info("bad PROXY protocol header: %s", exc)
        return None


def _address(value: object) -> tuple[str, int]:
    if isinstance(value, tuple) and len(value) >= 2:
        return str(value[0]), int(value[1])
    return ("unknown", 0)


def _is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
