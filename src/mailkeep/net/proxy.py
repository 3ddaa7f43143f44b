"""PROXY protocol v1 and v2 headers (HAProxy's spec), as sent by TCP load balancers.

Pure parsing: ``parse(data)`` says how many bytes the header took and the real client
address, or that more bytes are needed, or that the header is invalid.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
MAX_V1 = 107


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    length: int
    """Octets the header took; the protocol starts after them."""
    source: tuple[str, int] | None
    """The real client address, or None for LOCAL/UNKNOWN (health checks)."""


class ProxyError(ValueError):
    pass


def parse(data: bytes) -> ProxyHeader | None:
    """The header at the start of ``data``; None when more bytes are needed."""
    if data.startswith(V2_SIGNATURE[: len(data)]) and len(data) < 16:
        return None
    if data.startswith(V2_SIGNATURE):
        return _parse_v2(data)
    if b"PROXY "[: len(data)] == data[:6] and len(data) < 6:
        return None
    if data.startswith(b"PROXY "):
        return _parse_v1(data)
    raise ProxyError("connection did not start with a PROXY protocol header")


def _parse_v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, MAX_V1 + 1)
    if end < 0:
        if len(data) > MAX_V1:
            raise ProxyError("PROXY v1 header is too long")
        return None
    parts = data[:end].decode("ascii", "replace").split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyHeader(end + 2, None)
    if len(parts) != 6 or parts[1] not in {"TCP4", "TCP6"}:
        raise ProxyError("malformed PROXY v1 header")
    try:
        source = ipaddress.ip_address(parts[2])
        port = int(parts[4])
    except ValueError:
        raise ProxyError("malformed address in PROXY v1 header") from None
    if not 0 <= port <= 65535:
        raise ProxyError("bad port in PROXY v1 header")
    return ProxyHeader(end + 2, (str(source), port))


def _parse_v2(data: bytes) -> ProxyHeader | None:
    version_command, family, length = struct.unpack("!BBH", data[12:16])
    if version_command >> 4 != 2:
        raise ProxyError("unsupported PROXY protocol version")
    total = 16 + length
    if len(data) < total:
        return None
    command = version_command & 0x0F
    if command == 0:  # LOCAL: the balancer itself (health check)
        return ProxyHeader(total, None)
    if command != 1:
        raise ProxyError("unknown PROXY v2 command")
    body = data[16:total]
    if family >> 4 == 1 and len(body) >= 12:
        return ProxyHeader(total, (str(ipaddress.IPv4Address(body[0:4])), _port(body[8:10])))
    if family >> 4 == 2 and len(body) >= 36:
        return ProxyHeader(total, (str(ipaddress.IPv6Address(body[0:16])), _port(body[32:34])))
    return ProxyHeader(total, None)


def _port(data: bytes) -> int:
    port: int = struct.unpack("!H", data)[0]
    return port
