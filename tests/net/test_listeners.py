"""Listeners: binding, connection limits, PROXY protocol, STARTTLS injection guard."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import pytest

from mailkeep.net.listeners import Connection, ConnectionGate, Limits, Listeners, ListenerSpec
from mailkeep.net.tls import client_context, ensure_self_signed, server_context


async def _echo(connection: Connection) -> None:
    """A line protocol: greets with the client address, echoes, STARTTLS upgrades."""
    await connection.write(f"hello {connection.remote} tls={connection.tls}\r\n".encode())
    buffer = b""
    while True:
        data = await connection.read(within=5)
        if not data:
            return
        buffer += data
        while b"\r\n" in buffer:
            line, buffer = buffer.split(b"\r\n", 1)
            if line == b"STARTTLS":
                buffer = b""
                await connection.write(b"go\r\n")
                await connection.start_tls()
                await connection.write(f"tls={connection.tls}\r\n".encode())
            else:
                await connection.write(line + b"\r\n")


def _refuse(why: str) -> bytes:
    return f"NO {why}\r\n".encode()


async def _start(
    tmp_path: Path, limits: Limits | None = None, *, proxy: bool = False, implicit: bool = False
) -> tuple[Listeners, int]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ensure_self_signed(cert, key, "localhost")
    context = server_context(cert, key)
    listeners = Listeners(
        [ListenerSpec("test", "127.0.0.1", 0, _echo, implicit_tls=implicit, refuse=_refuse)],
        gate=ConnectionGate(limits or Limits()),
        tls_context=lambda: context,
        proxy_protocol=proxy,
    )
    ((_, _, port),) = await listeners.start()
    return listeners, port


async def test_serves_and_reports_address(tmp_path: Path) -> None:
    listeners, port = await _start(tmp_path)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await reader.readline() == b"hello 127.0.0.1 tls=False\r\n"
        writer.write(b"ping\r\n")
        assert await reader.readline() == b"ping\r\n"
        writer.close()
    finally:
        await listeners.stop()


async def test_port_taken_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        listeners = Listeners(
            [ListenerSpec("imap", "127.0.0.1", port, _echo)],
            gate=ConnectionGate(Limits()),
            tls_context=None,
        )
        with pytest.raises(OSError, match=f"cannot listen for imap on 127.0.0.1:{port}"):
            await listeners.start()


async def test_per_address_limit_refuses_with_protocol_text(tmp_path: Path) -> None:
    listeners, port = await _start(tmp_path, Limits(per_address=2, total=10))
    try:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        for reader, _ in held:
            assert (await reader.readline()).startswith(b"hello")
        reader, refused = await asyncio.open_connection("127.0.0.1", port)
        assert await reader.readline() == b"NO too many connections from your address\r\n"
        assert await reader.read() == b""
        refused.close()
        held[0][1].close()
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert (await reader.readline()).startswith(b"hello")
        for _, w in held[1:]:
            w.close()
        writer.close()
    finally:
        await listeners.stop()


async def test_proxy_header_sets_client_address(tmp_path: Path) -> None:
    listeners, port = await _start(tmp_path, proxy=True)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 143\r\nafter\r\n")
        assert await reader.readline() == b"hello 192.0.2.7 tls=False\r\n"
        assert await reader.readline() == b"after\r\n"
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        assert await reader.read() == b""
        writer.close()
    finally:
        await listeners.stop()


async def test_starttls_drops_pipelined_cleartext(tmp_path: Path) -> None:
    listeners, port = await _start(tmp_path)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()
        writer.write(b"STARTTLS\r\ninjected\r\n")
        await writer.drain()
        assert await reader.readline() == b"go\r\n"
        await writer.start_tls(client_context(verify=False))
        assert await reader.readline() == b"tls=True\r\n"
        writer.write(b"inside\r\n")
        assert await reader.readline() == b"inside\r\n"
        writer.close()
    finally:
        await listeners.stop()


async def test_implicit_tls(tmp_path: Path) -> None:
    listeners, port = await _start(tmp_path, implicit=True)
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context(verify=False)
        )
        assert await reader.readline() == b"hello 127.0.0.1 tls=True\r\n"
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"plain text\r\n")
        assert await reader.read() == b""
        writer.close()
    finally:
        await listeners.stop()


async def test_stop_cancels_sessions_after_grace(tmp_path: Path) -> None:
    listeners, port = await _start(tmp_path)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    await listeners.stop(grace=0.1)
    assert await reader.read() == b""
    writer.close()
    assert listeners.gate.open_connections == 0
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


def test_ssl_module_available() -> None:
    assert ssl.HAS_TLSv1_3
