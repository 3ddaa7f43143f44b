"""TLS: the server's certificate (self-signed on first start), server and client contexts,
and reloading certificates without a restart (SIGHUP).

Reloading works even for listeners that captured an older ``SSLContext`` (asyncio's
``start_server(ssl=...)`` keeps the object it was given): every context the holder
builds has an SNI callback that switches each new handshake to the holder's current
context. OpenSSL calls that callback for every ClientHello, with or without SNI.
Protocol settings (minimum version) come from the first context and stay as they were.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mailkeep.errors import ConfigError

log = logging.getLogger("mailkeep.net.tls")

# Mozilla "intermediate" TLS 1.2 suites (forward secret AEAD only); TLS 1.3 suites are
# OpenSSL's defaults, all good.
CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-CHACHA20-POLY1305",
    )
)

_VERSIONS = {
    "tlsv1.2": ssl.TLSVersion.TLSv1_2,
    "tls1.2": ssl.TLSVersion.TLSv1_2,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1.3": ssl.TLSVersion.TLSv1_3,
    "tls1.3": ssl.TLSVersion.TLSv1_3,
    "1.3": ssl.TLSVersion.TLSv1_3,
}

SELF_SIGNED_DAYS = 825
"""Validity of a generated certificate (the longest Apple's clients accept)."""


def parse_min_version(value: str) -> ssl.TLSVersion:
    """``TLSv1.2`` or ``TLSv1.3`` (older versions are broken and not offered)."""
    version = _VERSIONS.get(value.strip().lower())
    if version is None:
        raise ConfigError(f"TLS min_version {value!r} must be TLSv1.2 or TLSv1.3")
    return version


# ------------------------------------------------------------------ self-signed certificate


def ensure_self_signed(cert_path: Path | str, key_path: Path | str, hostname: str) -> bool:
    """Create a self-signed certificate and key unless both files exist.

    Returns True when it created them. The certificate names ``hostname``, ``localhost``,
    127.0.0.1 and ::1; the key is EC P-256, written with mode 0600. Existing files are
    never overwritten: a certificate without its key (or the reverse) is a ConfigError.
    """
    cert_path, key_path = Path(cert_path), Path(key_path)
    cert_exists, key_exists = cert_path.exists(), key_path.exists()
    if cert_exists and key_exists:
        return False
    if cert_exists or key_exists:
        present, missing = (cert_path, key_path) if cert_exists else (key_path, cert_path)
        raise ConfigError(
            f"TLS: {present} exists but {missing} does not; restore it, or remove {present} "
            "to have a self-signed certificate made"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _self_signed(key, hostname)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        _write_atomic(key_path, key_pem, 0o600)
        _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    except OSError as exc:
        raise ConfigError(f"TLS: cannot write the self-signed certificate: {exc}") from None
    log.info("created a self-signed certificate for %s in %s", hostname, cert_path)
    return True


def _self_signed(key: ec.EllipticCurvePrivateKey, hostname: str) -> x509.Certificate:
    names: list[x509.GeneralName] = []
    for name in (hostname, "localhost", "127.0.0.1", "::1"):
        try:
            entry: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            entry = x509.DNSName(name)
        if entry not in names:
            names.append(entry)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64] or "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file created with ``mode`` (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------ contexts


def server_context(
    cert: Path | str, key: Path | str, min_version: str = "TLSv1.2"
) -> ssl.SSLContext:
    """A server context for ``cert`` (PEM chain) and ``key``; ConfigError if unusable.

    TLS 1.2+ (or 1.3+), forward-secret AEAD suites in our order, no compression, no
    client-initiated renegotiation.
    """
    version = parse_min_version(min_version)
    cert, key = Path(cert), Path(key)
    _check_readable(cert, "certificate")
    _check_readable(key, "key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = version
    context.options |= (
        ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    )
    context.set_ciphers(CIPHERS)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ConfigError(_load_error(exc, cert, key)) from None
    except OSError as exc:
        raise ConfigError(f"TLS: cannot read {cert} or {key}: {exc.strerror or exc}") from None
    return context


def _check_readable(path: Path, what: str) -> None:
    if not path.exists():
        raise ConfigError(f"TLS {what} file {path} does not exist")
    if not path.is_file():
        raise ConfigError(f"TLS {what} file {path} is not a regular file")
    try:
        with path.open("rb") as f:
            f.read(1)
    except OSError as exc:
        raise ConfigError(f"TLS {what} file {path} cannot be read: {exc.strerror}") from None


def _load_error(exc: ssl.SSLError, cert: Path, key: Path) -> str:
    reason = (exc.reason or "").upper()
    if "KEY_VALUES_MISMATCH" in reason:
        return f"TLS key {key} does not belong to the certificate {cert}"
    library = (exc.library or "").upper()
    try:
        cert_text = cert.read_bytes()
    except OSError:
        cert_text = b""
    if b"-----BEGIN CERTIFICATE-----" not in cert_text:
        return f"TLS certificate file {cert} holds no PEM certificate"
    return (
        f"TLS key {key} is not a usable PEM private key, or {cert} is damaged "
        f"({library or 'SSL'}: {exc.reason or exc})"
    )


def client_context(verify: bool = True, cafile: str | None = None) -> ssl.SSLContext:
    """A client context: system trust (or ``cafile``), hostname checks, TLS 1.2+.
    ``verify=False`` accepts any certificate (testing against a self-signed server)."""
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class TlsContextHolder:
    """The server's current TLS context, rebuilt from its files by ``reload()``.

    Construction raises ConfigError when the files are unusable (refuse to start);
    ``reload`` never raises: on failure it logs why and keeps the current context.
    """

    def __init__(self, cert: Path | str, key: Path | str, min_version: str = "TLSv1.2") -> None:
        self.cert = Path(cert)
        self.key = Path(key)
        self.min_version = min_version
        self._context = self._build()

    @property
    def context(self) -> ssl.SSLContext:
        """The context to use for new connections (and STARTTLS)."""
        return self._context

    def reload(self) -> bool:
        """Re-read certificate and key; True when the new ones are in use."""
        try:
            context = self._build()
        except ConfigError as exc:
            log.error("TLS reload failed, keeping the previous certificate: %s", exc)
            return False
        self._context = context
        log.info("TLS certificate reloaded from %s", self.cert)
        return True

    def _build(self) -> ssl.SSLContext:
        context = server_context(self.cert, self.key, self.min_version)
        context.sni_callback = self._switch
        return context

    def _switch(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        # A listener may hold an older context: serve the newest certificate anyway.
        if connection.context is not self._context:
            connection.context = self._context
