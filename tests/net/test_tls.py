"""TLS certificates and contexts, with real handshakes over loopback."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import ssl
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mailkeep.errors import ConfigError
from mailkeep.net.tls import (
    TlsContextHolder,
    client_context,
    ensure_self_signed,
    parse_min_version,
    server_context,
)


@dataclass
class Pair:
    cert: Path
    key: Path


def self_signed(directory: Path, hostname: str = "mail.example.test") -> Pair:
    pair = Pair(directory / "tls" / "cert.pem", directory / "tls" / "key.pem")
    assert ensure_self_signed(pair.cert, pair.key, hostname)
    return pair


@dataclass
class Handshake:
    peer_cert: bytes
    version: str | None
    compression: str | None
    echoed: bytes


async def handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str | None = "localhost"
) -> Handshake:
    """Serve ``server`` on 127.0.0.1 (port chosen by the OS), connect with ``client``."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(await reader.readline())
            await writer.drain()
        except (ssl.SSLError, ConnectionError):
            pass
        finally:
            writer.close()

    listener = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with asyncio.timeout(10):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client, server_hostname=server_hostname
            )
            tls: ssl.SSLObject = writer.get_extra_info("ssl_object")
            writer.write(b"hello\r\n")
            echoed = await reader.readline()
            result = Handshake(
                tls.getpeercert(binary_form=True) or b"", tls.version(), tls.compression(), echoed
            )
            writer.close()
            await writer.wait_closed()
    finally:
        listener.close()
        await listener.wait_closed()
    return result


def der(path: Path) -> bytes:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


# ------------------------------------------------------------------ self-signed certificate


def test_ensure_self_signed_creates_a_usable_pair(tmp_path: Path) -> None:
    pair = self_signed(tmp_path)
    assert stat.S_IMODE(pair.key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mail.example.test", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    assert cert.public_key() == key.public_key()
    assert not list(pair.cert.parent.glob(".*"))  # no temporary files left behind


def test_ensure_self_signed_keeps_existing_files(tmp_path: Path) -> None:
    pair = self_signed(tmp_path)
    before = pair.cert.read_bytes(), pair.key.read_bytes()
    assert not ensure_self_signed(pair.cert, pair.key, "other.example.test")
    assert (pair.cert.read_bytes(), pair.key.read_bytes()) == before


@pytest.mark.parametrize("missing", ["cert", "key"])
def test_ensure_self_signed_refuses_half_a_pair(tmp_path: Path, missing: str) -> None:
    pair = self_signed(tmp_path)
    gone = pair.cert if missing == "cert" else pair.key
    kept = pair.key if missing == "cert" else pair.cert
    gone.unlink()
    with pytest.raises(ConfigError, match=re.escape(f"{kept} exists but {gone} does not")):
        ensure_self_signed(pair.cert, pair.key, "mail.example.test")
    assert not gone.exists()


def test_ensure_self_signed_ip_hostname(tmp_path: Path) -> None:
    pair = Pair(tmp_path / "c.pem", tmp_path / "k.pem")
    ensure_self_signed(pair.cert, pair.key, "192.0.2.25")
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("192.0.2.25") in san.get_values_for_type(x509.IPAddress)


async def test_self_signed_handshake_verified_by_its_own_cert(tmp_path: Path) -> None:
    pair = self_signed(tmp_path)
    server = server_context(pair.cert, pair.key)
    for name in ("localhost", "mail.example.test", "127.0.0.1"):
        result = await handshake(server, client_context(cafile=str(pair.cert)), name)
        assert result.echoed == b"hello\r\n"
        assert result.peer_cert == der(pair.cert)
        assert result.version in ("TLSv1.2", "TLSv1.3")
        assert result.compression is None


async def test_untrusted_self_signed_is_refused_unless_verify_is_off(tmp_path: Path) -> None:
    pair = self_signed(tmp_path)
    server = server_context(pair.cert, pair.key)
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(server, client_context())
    result = await handshake(server, client_context(verify=False), None)
    assert result.echoed == b"hello\r\n"


async def test_hostname_mismatch_is_refused(tmp_path: Path) -> None:
    pair = self_signed(tmp_path)
    server = server_context(pair.cert, pair.key)
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(server, client_context(cafile=str(pair.cert)), "other.example.test")


# ------------------------------------------------------------------ CA-issued certificate


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def issued(ca: trustme.CA, directory: Path, *names: str) -> tuple[Pair, Path]:
    leaf = ca.issue_cert(*names)
    pair = Pair(directory / "chain.pem", directory / "leaf.key")
    pair.cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(pair.key))
    cafile = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    return pair, cafile


async def test_ca_issued_certificate(tmp_path: Path, ca: trustme.CA) -> None:
    pair, cafile = issued(ca, tmp_path, "imap.example.test")
    server = server_context(pair.cert, pair.key)
    result = await handshake(server, client_context(cafile=str(cafile)), "imap.example.test")
    assert result.echoed == b"hello\r\n"
    assert result.peer_cert == der(pair.cert)  # the leaf, first in the chain file


async def test_min_version_13_refuses_a_12_client(tmp_path: Path, ca: trustme.CA) -> None:
    pair, cafile = issued(ca, tmp_path, "localhost")
    server = server_context(pair.cert, pair.key, "TLSv1.3")
    client = client_context(cafile=str(cafile))
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await handshake(server, client)
    result = await handshake(server, client_context(cafile=str(cafile)))
    assert result.version == "TLSv1.3"


async def test_server_refuses_tls_11(tmp_path: Path, ca: trustme.CA) -> None:
    pair, cafile = issued(ca, tmp_path, "localhost")
    server = server_context(pair.cert, pair.key)
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(cafile)
    old.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():  # Python deprecates these versions, as do we
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await handshake(server, old)


def test_server_context_options(tmp_path: Path) -> None:
    pair = self_signed(tmp_path)
    context = server_context(pair.cert, pair.key)
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    tls12 = [c for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12
    assert all(c["aead"] and c["kea"] in ("kx-ecdhe", "kx-dhe") for c in tls12)


@pytest.mark.parametrize(("text", "version"), [("TLSv1.2", "TLSv1_2"), ("tlsv1.3", "TLSv1_3")])
def test_parse_min_version(text: str, version: str) -> None:
    assert parse_min_version(text) is ssl.TLSVersion[version]


@pytest.mark.parametrize("text", ["TLSv1", "TLSv1.1", "SSLv3", "modern", ""])
def test_parse_min_version_refuses(text: str) -> None:
    with pytest.raises(ConfigError, match=r"must be TLSv1\.2 or TLSv1\.3"):
        parse_min_version(text)


# ------------------------------------------------------------------ errors


def test_missing_files(tmp_path: Path) -> None:
    pair = self_signed(tmp_path)
    with pytest.raises(ConfigError, match=r"certificate file .*nope\.pem does not exist"):
        server_context(tmp_path / "nope.pem", pair.key)
    with pytest.raises(ConfigError, match=r"key file .*nope\.key does not exist"):
        server_context(pair.cert, tmp_path / "nope.key")
    with pytest.raises(ConfigError, match="is not a regular file"):
        server_context(tmp_path, pair.key)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_key(tmp_path: Path) -> None:
    pair = self_signed(tmp_path)
    pair.key.chmod(0)
    with pytest.raises(ConfigError, match="cannot be read"):
        server_context(pair.cert, pair.key)


def test_mismatched_key(tmp_path: Path) -> None:
    first = self_signed(tmp_path / "a")
    second = self_signed(tmp_path / "b")
    with pytest.raises(ConfigError, match="does not belong to the certificate"):
        server_context(first.cert, second.key)


def test_garbage_files(tmp_path: Path) -> None:
    pair = self_signed(tmp_path)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="holds no PEM certificate"):
        server_context(junk, pair.key)
    with pytest.raises(ConfigError, match="not a usable PEM private key"):
        server_context(pair.cert, junk)
    # A key where the certificate should be, and the reverse.
    with pytest.raises(ConfigError, match="holds no PEM certificate"):
        server_context(pair.key, pair.key)
    with pytest.raises(ConfigError, match="not a usable PEM private key"):
        server_context(pair.cert, pair.cert)


# ------------------------------------------------------------------ reload


async def test_reload_serves_the_new_certificate_through_the_old_context(
    tmp_path: Path, ca: trustme.CA
) -> None:
    pair, cafile = issued(ca, tmp_path, "localhost")
    holder = TlsContextHolder(pair.cert, pair.key)
    listening = holder.context  # what asyncio.start_server was given at startup
    before = await handshake(listening, client_context(cafile=str(cafile)))
    assert before.peer_cert == der(pair.cert)

    renewed, _ = issued(ca, tmp_path / "..", "localhost")
    pair.cert.write_bytes(renewed.cert.read_bytes())
    pair.key.write_bytes(renewed.key.read_bytes())
    assert holder.reload()
    assert holder.context is not listening
    # With SNI (a host name) and without (an IP address sends none): both see the new one.
    for name in ("localhost", None):
        after = await handshake(listening, client_context(verify=False), name)
        assert after.peer_cert == der(pair.cert)
        assert after.peer_cert != before.peer_cert
    verified = await handshake(holder.context, client_context(cafile=str(cafile)))
    assert verified.echoed == b"hello\r\n"


async def test_failed_reload_keeps_the_old_context(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pair = self_signed(tmp_path)
    holder = TlsContextHolder(pair.cert, pair.key)
    current = holder.context
    original = der(pair.cert)
    other = self_signed(tmp_path / "other")
    pair.key.write_bytes(other.key.read_bytes())  # half-finished renewal: key mismatch
    with caplog.at_level(logging.ERROR, logger="mailkeep.net.tls"):
        assert not holder.reload()
    assert holder.context is current
    assert "TLS reload failed, keeping the previous certificate" in caplog.text
    assert "does not belong to the certificate" in caplog.text
    pair.cert.unlink()
    assert not holder.reload()
    result = await handshake(holder.context, client_context(verify=False))
    assert result.peer_cert == original


def test_holder_refuses_to_start_with_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        TlsContextHolder(tmp_path / "cert.pem", tmp_path / "key.pem")
