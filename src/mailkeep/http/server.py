"""The HTTP listener: mail client autoconfiguration, health and metrics.

Deliberately small (one request per connection, GET only, no body):

* ``/.well-known/autoconfig/mail/config-v1.1.xml`` and ``/mail/config-v1.1.xml`` —
  Thunderbird-style autoconfiguration naming this server's IMAP, POP3 and SMTP
  submission listeners, so a mail client sets itself up from an address alone;
* ``/health`` — 200 when the store answers, 503 otherwise (for load balancers);
* ``/metrics`` — Prometheus text format (connections, deliveries, logins, store size).

No account data is served here.
"""

from __future__ import annotations

import asyncio
import logging
from html import escape
from urllib.parse import parse_qs, urlsplit

from prometheus_client import generate_latest

from mailkeep import metrics
from mailkeep.app import App
from mailkeep.config import parse_address
from mailkeep.net.listeners import Connection, Handler

log = logging.getLogger("mailkeep.http")

MAX_REQUEST = 16 * 1024
AUTOCONFIG_PATHS = {"/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"}


def handler(app: App, listener: str) -> Handler:
    async def serve(connection: Connection) -> None:
        request = await _read_request(connection)
        if request is None:
            await connection.write(_response(400, "text/plain", b"bad request\n"))
            return
        method, target = request
        if method not in {"GET", "HEAD"}:
            await connection.write(_response(405, "text/plain", b"only GET is served\n"))
            return
        status, content_type, body = await _route(app, target)
        log.info("%s %s %s %d", connection.remote, method, target[:200], status)
        await connection.write(
            _response(status, content_type, b"" if method == "HEAD" else body, length=len(body))
        )

    return serve


def refusal(why: str) -> bytes:
    return _response(503, "text/plain", f"{why}\n".encode())


async def _read_request(connection: Connection) -> tuple[str, str] | None:
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data:
        chunk = await connection.read(within=10)
        if not chunk:
            return None
        data += chunk
        if len(data) > MAX_REQUEST:
            return None
    line = data.split(b"\n", 1)[0].strip().decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    return parts[0], parts[1]


async def _route(app: App, target: str) -> tuple[int, str, bytes]:
    url = urlsplit(target)
    if url.path in AUTOCONFIG_PATHS:
        address = parse_qs(url.query).get("emailaddress", [""])[0]
        return 200, "application/xml", autoconfig(app, address).encode()
    if url.path == "/health":
        try:
            async with asyncio.timeout(5):
                await app.store.list_accounts()
        except Exception as exc:
            return 503, "text/plain", f"store unavailable: {exc}\n".encode()
        return 200, "text/plain", b"ok\n"
    if url.path == "/metrics":
        await _refresh_store_gauges(app)
        metrics.OPEN_CONNECTIONS.set(app.gate.open_connections)
        return 200, "text/plain; version=0.0.4", generate_latest(metrics.REGISTRY)
    return 404, "text/plain", b"not found\n"


async def _refresh_store_gauges(app: App) -> None:
    accounts = await app.store.list_accounts()
    metrics.ACCOUNTS.set(len(accounts))
    metrics.STORED_MESSAGES.set(sum(a.used_messages for a in accounts))
    metrics.STORED_OCTETS.set(sum(a.used_bytes for a in accounts))


def autoconfig(app: App, address: str) -> str:
    """Thunderbird autoconfig v1.1 for this server's enabled client listeners."""
    config = app.config
    host = escape(config.hostname)
    domain = escape(address.rpartition("@")[2] or (config.domains or (config.hostname,))[0])
    servers = []
    for name, kind, socket_type in (
        ("imaps", "imap", "SSL"),
        ("imap", "imap", "STARTTLS"),
        ("pop3s", "pop3", "SSL"),
        ("pop3", "pop3", "STARTTLS"),
        ("submissions", "smtp", "SSL"),
        ("submission", "smtp", "STARTTLS"),
    ):
        listen = parse_address(getattr(config.listeners, name))
        if listen is None:
            continue
        tag = "outgoingServer" if kind == "smtp" else "incomingServer"
        servers.append(
            f'    <{tag} type="{kind}">\n'
            f"      <hostname>{host}</hostname>\n"
            f"      <port>{listen[1]}</port>\n"
            f"      <socketType>{socket_type}</socketType>\n"
            "      <username>%EMAILADDRESS%</username>\n"
            "      <authentication>password-cleartext</authentication>\n"
            f"    </{tag}>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<clientConfig version="1.1">\n'
        f'  <emailProvider id="{domain}">\n'
        f"    <domain>{domain}</domain>\n"
        f"    <displayName>{host} (mailkeep)</displayName>\n"
        + "".join(servers)
        + "  </emailProvider>\n</clientConfig>\n"
    )


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


def _response(status: int, content_type: str, body: bytes, *, length: int | None = None) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n"
        "Connection: close\r\n"
        "Cache-Control: no-store\r\n\r\n"
    )
    return head.encode() + body
