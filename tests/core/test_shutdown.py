"""Stopping the server: every protocol says goodbye to the clients still connected."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from mailkeep.app import App, serve
from mailkeep.config import load
from mailkeep.datadir import initialise


async def test_sigterm_says_goodbye_in_every_protocol(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await initialise(data, demo=True)
    app = await App.open(load(data))
    bound: asyncio.Future[dict[str, int]] = asyncio.get_running_loop().create_future()
    addresses = dict.fromkeys(("imap", "pop3", "smtp", "lmtp"), ("127.0.0.1", 0))

    def ready(listening: list[tuple[str, str, int]]) -> None:
        bound.set_result({name: port for name, _, port in listening})

    server = asyncio.create_task(serve(app, addresses, ready=ready, grace=0.2))
    try:
        ports = await asyncio.wait_for(bound, 10)
        clients = {}
        for name, port in ports.items():
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await reader.readline()  # greeting
            clients[name] = (reader, writer)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(server, 10)
        goodbyes = {}
        for name, (reader, writer) in clients.items():
            goodbyes[name] = await asyncio.wait_for(reader.read(), 5)
            writer.close()
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
        await app.close()
    assert goodbyes["imap"] == b"* BYE server shutting down\r\n"
    assert goodbyes["pop3"] == b"-ERR [SYS/TEMP] server shutting down\r\n"
    assert goodbyes["smtp"] == b"421 4.3.2 server shutting down\r\n"
    assert goodbyes["lmtp"] == b"421 4.3.2 server shutting down\r\n"
