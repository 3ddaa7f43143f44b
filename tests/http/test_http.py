"""The HTTP listener: autoconfig, health, metrics, and refusals of anything else."""

from __future__ import annotations

import asyncio
import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailkeep.app import App, serve
from mailkeep.config import load
from mailkeep.datadir import initialise


@pytest.fixture
async def http_port(tmp_path: Path) -> AsyncIterator[int]:
    data = tmp_path / "data"
    await initialise(data, demo=True)
    config = load(data)
    config = dataclasses.replace(config, hostname="mail.example.org")
    app = await App.open(config)
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(app, {"http": ("127.0.0.1", 0)}, ready=lambda b: bound.set_result(b[0][2]))
    )
    try:
        yield await asyncio.wait_for(bound, 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await app.close()


async def get(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


async def test_autoconfig_names_the_enabled_listeners(http_port: int) -> None:
    status, headers, body = await get(
        http_port,
        b"GET /.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=demo%40localhost"
        b" HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    assert status == 200
    assert headers["Content-Type"] == "application/xml"
    root = ET.fromstring(body)
    provider = root.find("emailProvider")
    assert provider is not None
    assert provider.get("id") == "localhost"
    servers = {
        (s.get("type"), s.findtext("port"), s.findtext("socketType"))
        for s in provider.findall("incomingServer")
    }
    assert ("imap", "1993", "SSL") in servers
    assert ("imap", "1143", "STARTTLS") in servers
    assert ("pop3", "1995", "SSL") in servers
    assert {s.findtext("hostname") for s in provider.findall("incomingServer")} == {
        "mail.example.org"
    }
    assert provider.findall("outgoingServer") == []  # submission is off by default


async def test_health_and_metrics(http_port: int) -> None:
    assert (await get(http_port, b"GET /health HTTP/1.0\r\n\r\n"))[::2] == (200, b"ok\n")
    status, headers, body = await get(http_port, b"GET /metrics HTTP/1.1\r\n\r\n")
    assert status == 200
    assert b"mailkeep_accounts 1.0" in body
    assert b'mailkeep_connections_total{listener="http"}' in body
    assert int(headers["Content-Length"]) == len(body)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /nothing HTTP/1.1\r\n\r\n", 404),
        (b"POST /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
        (b"garbage\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 20000 + b"\r\n\r\n", 400),
    ],
)
async def test_bad_requests(http_port: int, request_bytes: bytes, status: int) -> None:
    assert (await get(http_port, request_bytes))[0] == status


async def test_head_has_no_body(http_port: int) -> None:
    status, headers, body = await get(http_port, b"HEAD /health HTTP/1.1\r\n\r\n")
    assert (status, body, headers["Content-Length"]) == (200, b"", "3")
