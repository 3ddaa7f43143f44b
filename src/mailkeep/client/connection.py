"""Opening client connections: TLS modes, the one place a TLS client context is made, and
mapping socket failures onto the client error taxonomy."""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import socket
import ssl
from dataclasses import dataclass

from mailkeep.client.errors import NetworkError, TlsFailure
from mailkeep.net import tls


class TlsMode(enum.Enum):
    IMPLICIT = "implicit"
    """TLS from the first byte (IMAPS 993, POP3S 995; RFC 8314 recommends it)."""
    STARTTLS = "starttls"
    """Plain connection upgraded with STARTTLS/STLS; refused if the server does not offer it."""
    NONE = "none"
    """No TLS at all: only allowed to loopback addresses."""


def client_context(verify: bool = True, cafile: str | None = None) -> ssl.SSLContext:
    """The TLS client context: mailkeep's one TLS policy (``mailkeep.net.tls``)."""
    return tls.client_context(verify=verify, cafile=cafile)


def is_loopback(host: str) -> bool:
    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: TlsMode
    ssl_context: ssl.SSLContext | None = None
    timeout: float = 60.0

    def context(self) -> ssl.SSLContext:
        return self.ssl_context or client_context()


async def open_stream(endpoint: Endpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect, with implicit TLS when asked; errors become NetworkError / TlsFailure."""
    if endpoint.tls is TlsMode.NONE and not is_loopback(endpoint.host):
        raise TlsFailure(
            f"refusing an unencrypted connection to {endpoint.host}: "
            "tls = 'none' is only allowed for loopback addresses"
        )
    implicit = endpoint.tls is TlsMode.IMPLICIT
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(
                endpoint.host,
                endpoint.port,
                ssl=endpoint.context() if implicit else None,
                server_hostname=endpoint.host if implicit else None,
            ),
            endpoint.timeout,
        )
    except ssl.SSLError as exc:
        raise TlsFailure(f"TLS with {endpoint.host}:{endpoint.port} failed: {exc}") from exc
    except (OSError, TimeoutError, socket.gaierror) as exc:
        detail = str(exc) or type(exc).__name__
        raise NetworkError(f"cannot connect to {endpoint.host}:{endpoint.port}: {detail}") from exc


async def start_tls(writer: asyncio.StreamWriter, endpoint: Endpoint) -> None:
    """Upgrade after STARTTLS/STLS (RFC 9051 6.2.1, RFC 2595 4)."""
    try:
        await asyncio.wait_for(
            writer.start_tls(endpoint.context(), server_hostname=endpoint.host),
            endpoint.timeout,
        )
    except ssl.SSLError as exc:
        raise TlsFailure(f"STARTTLS with {endpoint.host} failed: {exc}") from exc
    except (OSError, TimeoutError) as exc:
        raise NetworkError(f"STARTTLS with {endpoint.host} failed: {exc}") from exc
