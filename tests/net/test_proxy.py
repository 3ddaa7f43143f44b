"""PROXY protocol headers (v1 text, v2 binary) as load balancers send them."""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailkeep.net.proxy import V2_SIGNATURE, ProxyError, ProxyHeader, parse


def test_v1_tcp4() -> None:
    data = b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 143\r\nA1 CAPABILITY\r\n"
    header = parse(data)
    assert header == ProxyHeader(
        len(b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 143\r\n"), ("192.0.2.7", 51234)
    )


def test_v1_tcp6_and_unknown() -> None:
    line = b"PROXY TCP6 2001:db8::1 ::1 4000 993\r\n"
    assert parse(line) == ProxyHeader(len(line), ("2001:db8::1", 4000))
    assert parse(b"PROXY UNKNOWN\r\n") == ProxyHeader(15, None)


def test_v1_incomplete_needs_more() -> None:
    assert parse(b"PROXY TCP4 192.0.2.7") is None
    assert parse(b"PRO") is None


@pytest.mark.parametrize(
    "data",
    [
        b"PROXY TCP4 not-an-ip 10.0.0.1 1 2\r\n",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 99999 2\r\n",
        b"PROXY SCTP 192.0.2.7 10.0.0.1 1 2\r\n",
        b"PROXY " + b"x" * 200,
        b"A1 LOGIN user pass\r\n",
    ],
)
def test_invalid_headers(data: bytes) -> None:
    with pytest.raises(ProxyError):
        parse(data)


def _v2(command: int, family: int, body: bytes) -> bytes:
    return V2_SIGNATURE + struct.pack("!BBH", 0x20 | command, family, len(body)) + body


def test_v2_ipv4() -> None:
    body = (
        socket.inet_aton("198.51.100.9")
        + socket.inet_aton("10.0.0.1")
        + struct.pack("!HH", 40000, 110)
    )
    data = _v2(1, 0x11, body) + b"USER x\r\n"
    assert parse(data) == ProxyHeader(16 + 12, ("198.51.100.9", 40000))


def test_v2_ipv6_local_and_partial() -> None:
    body = socket.inet_pton(socket.AF_INET6, "2001:db8::9") + bytes(16) + struct.pack("!HH", 5, 6)
    assert parse(_v2(1, 0x21, body)) == ProxyHeader(52, ("2001:db8::9", 5))
    assert parse(_v2(0, 0x00, b"")) == ProxyHeader(16, None)
    assert parse(_v2(1, 0x11, bytes(12))[:20]) is None
    assert parse(V2_SIGNATURE[:5]) is None


def test_v2_bad_version() -> None:
    with pytest.raises(ProxyError, match="version"):
        parse(V2_SIGNATURE + b"\x11\x11\x00\x00")


@given(st.binary(max_size=300))
def test_never_raises_anything_but_proxy_error(data: bytes) -> None:
    try:
        header = parse(data)
    except ProxyError:
        return
    assert header is None or 0 < header.length <= len(data)
