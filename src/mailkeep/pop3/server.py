"""The POP3 listeners' glue (``pop3`` with STLS, ``pop3s`` with implicit TLS done by the
listener): read from the ``Connection`` into a ``Session``, perform its actions.

Output is gathered and written when the session waits for input, or once 64 KiB are
pending, so pipelined commands and small messages share packets while a large RETR
still streams with bounded memory. A client silent for ``[limits] pop3_timeout``
seconds (RFC 1939 section 3: at least 10 minutes) is told so and disconnected, without
entering UPDATE: nothing is deleted. Before login the whole AUTHORIZATION state must end
within ``[limits] login_timeout`` seconds of connecting, however the client paces its
octets: a client trickling a byte now and then (slowloris) cannot hold a connection
slot for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from typing import TYPE_CHECKING

from mailkeep.auth.service import Authenticator
from mailkeep.net.listeners import Connection, ConnectionClosed, Handler
from mailkeep.pop3.session import (
    Close,
    Peer,
    Send,
    Session,
    Settings,
    StartTls,
    State,
    Stream,
)
from mailkeep.pop3.wire import err
from mailkeep.store.api import Store

if TYPE_CHECKING:
    from mailkeep.app import App

log = logging.getLogger("mailkeep.pop3")

FLUSH_AT = 65536
TLS_HANDSHAKE_TIMEOUT = 30.0


def refusal(why: str) -> bytes:
    """The goodbye for a connection the limits refuse (RFC 3206 ``SYS/TEMP``)."""
    return err(why, "SYS/TEMP")


def handler(app: App, listener: str) -> Handler:
    """The connection handler for ``pop3`` or ``pop3s``; raises ConfigError when the
    ``[pop3]`` settings are unusable, so that ``serve`` fails at startup."""
    settings = Settings.from_config(app.config)
    timeout = float(app.config.limits.pop3_timeout)
    login_timeout = float(app.config.limits.login_timeout)

    async def handle(connection: Connection) -> None:
        await serve_connection(
            app.store,
            app.auth,
            settings,
            connection,
            idle_timeout=timeout,
            login_timeout=login_timeout,
        )

    return handle


async def serve_connection(
    store: Store,
    auth: Authenticator,
    settings: Settings,
    connection: Connection,
    *,
    idle_timeout: float,
    login_timeout: float | None = None,
) -> None:
    peer = Peer(
        remote=connection.remote,
        tls=connection.tls,
        loopback=connection.loopback,
        can_start_tls=connection.can_start_tls,
    )
    session = Session(store, auth, settings, peer)
    output = _Output(connection)
    loop = asyncio.get_running_loop()
    login_deadline = None if login_timeout is None else loop.time() + login_timeout
    try:
        await output.send(session.greeting())
        while True:
            actions = await session.next_actions()
            if actions is None:
                if session.closed:
                    await output.flush()
                    return
                await output.flush()
                within, why = idle_timeout, "Disconnected for inactivity"
                if login_deadline is not None and session.state is State.AUTHORIZATION:
                    left = max(0.0, login_deadline - loop.time())
                    if left < within:
                        within, why = left, "Login took too long"
                started = time.monotonic()
                data = await connection.read(within=within)
                if not data:
                    if time.monotonic() - started >= within:
                        with contextlib.suppress(ConnectionClosed):
                            await connection.write(err(why))
                    return
                session.receive_data(data)
                continue
            for action in actions:
                match action:
                    case Send(data):
                        await output.send(data)
                    case Stream(head, body):
                        async with contextlib.aclosing(body):
                            await output.send(head)
                            async for piece in body:
                                await output.send(piece)
                    case StartTls():
                        await output.flush()
                        if not await _start_tls(connection):
                            return
                        session.tls_started()
                    case Close():
                        await output.flush()
                        return
    except asyncio.CancelledError:
        # The server is stopping (its grace period is over): say so; deletions marked
        # in this session are not made, as for any connection that ends without QUIT.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1):
                await connection.write(err("server shutting down", "SYS/TEMP"))
        raise
    finally:
        await session.close()


async def _start_tls(connection: Connection) -> bool:
    try:
        async with asyncio.timeout(TLS_HANDSHAKE_TIMEOUT):
            await connection.start_tls()
    except (TimeoutError, ssl.SSLError, ConnectionError, OSError) as exc:
        log.info("POP3 %s: STLS handshake failed: %s", connection.remote, exc)
        return False
    return True


class _Output:
    """Gathers writes into fewer, larger ones. The pieces are kept as they are and
    joined once, when written: a message body is copied once on its way out."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._pending: list[bytes] = []
        self._size = 0

    async def send(self, data: bytes) -> None:
        self._pending.append(data)
        self._size += len(data)
        if self._size >= FLUSH_AT:
            await self.flush()

    async def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._size = 0
            await self._connection.write(data)
