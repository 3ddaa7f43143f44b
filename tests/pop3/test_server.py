"""The listener glue: idle timeout, refusals, startup checks."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from pathlib import Path

import pytest

from mailkeep.app import App
from mailkeep.config import Config, Pop3Config
from mailkeep.errors import ConfigError
from mailkeep.pop3 import server as pop3_server

from .conftest import ADDRESS, PASSWORD, Server, deliver


@pytest.fixture
def server_config(tmp_path: Path) -> Config:
    config = Config(hostname="pop.example.org", data_dir=tmp_path / "data")
    return dataclasses.replace(config, limits=dataclasses.replace(config.limits, pop3_timeout=1))


def dialogue(port: int, commands: bytes) -> bytes:
    """Send ``commands`` at once and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(commands)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


async def test_idle_timeout_disconnects_without_deleting(server: Server) -> None:
    account = await server.store.get_account(ADDRESS)
    assert account is not None
    uids = await deliver(server.store, account, b"Subject: x\r\n\r\nkeep me\r\n")
    login = f"USER {ADDRESS}\r\nPASS {PASSWORD}\r\n".encode()
    received = await asyncio.to_thread(dialogue, server.pop3, login + b"DELE 1\r\n")
    assert received.endswith(b"+OK Message 1 deleted\r\n-ERR Disconnected for inactivity\r\n")
    received = await asyncio.to_thread(dialogue, server.pop3, login + b"STAT\r\nQUIT\r\n")
    assert b"+OK Maildrop locked and ready: 1 messages" in received  # the lock is free
    mailbox = await server.store.get_mailbox(account.id, "INBOX")
    assert mailbox is not None
    assert list((await server.store.snapshot(mailbox.id)).uids) == uids


def test_refusal() -> None:
    assert pop3_server.refusal("too many connections from your address") == (
        b"-ERR [SYS/TEMP] too many connections from your address\r\n"
    )


async def test_bad_retention_fails_at_startup(server: Server) -> None:
    config = dataclasses.replace(server.app.config, pop3=Pop3Config(retention="sometimes"))
    app = App(config, server.app.store, server.app.auth, server.app.tls, server.app.delivery)
    with pytest.raises(ConfigError, match="sometimes"):
        pop3_server.handler(app, "pop3")
