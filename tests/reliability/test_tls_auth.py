"""TLS and authentication hardening, checked on a real server process.

* TLS 1.0 and 1.1 are refused (implicit TLS and STARTTLS alike); TLS 1.2 works.
* Commands pipelined in clear text after STARTTLS/STLS are dropped, never run inside
  the TLS session (CVE-2011-0411), in IMAP, POP3, SMTP, submission and LMTP... where
  offered.
* Failed-login delays grow with repeated failures.
* An unknown user and a wrong password get identical replies (IMAP, POP3, submission).
* Plain-text passwords are refused on an unencrypted non-loopback connection: the
  client poses as 192.0.2.10 through the PROXY protocol (no traffic leaves loopback).
* SIGHUP makes a running server present a new certificate.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import shutil
import signal
import ssl
import time
import warnings
from pathlib import Path

import pytest

from mailkeep.net.tls import ensure_self_signed

from .conftest import USERS, StartServer
from .support import (
    PASSWORD,
    Raw,
    ServerProcess,
    greeted,
    imap_command,
    insecure_context,
)

pytestmark = pytest.mark.timeout(120)

USER = USERS[0]
TLS_LISTENERS = ("imap", "imaps", "pop3", "pop3s", "smtp", "submission", "lmtp")


def old_tls_context() -> ssl.SSLContext:
    """A client that offers only TLS 1.0 and 1.1."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


async def handshake(port: int, context: ssl.SSLContext) -> str:
    """The TLS version negotiated with an implicit-TLS listener."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        assert ssl_object is not None
        version = ssl_object.version()
        assert isinstance(version, str)
        return version
    finally:
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError, OSError):
            await writer.wait_closed()


@pytest.mark.parametrize("listener", ["imaps", "pop3s"])
async def test_old_tls_versions_are_refused(launch: StartServer, listener: str) -> None:
    server = await launch(listeners=("imaps", "pop3s"))
    assert await handshake(server.ports[listener], insecure_context()) in ("TLSv1.2", "TLSv1.3")
    outcome = ""
    try:
        outcome = "accepted " + await handshake(server.ports[listener], old_tls_context())
    except (ssl.SSLError, ConnectionError, OSError) as exc:
        if "no protocols available" in str(exc) or "NO_PROTOCOLS" in str(exc):
            pytest.skip(f"this OpenSSL cannot offer TLS 1.0/1.1 as a client: {exc}")
        outcome = str(exc)
    assert not outcome.startswith("accepted"), f"{listener} {outcome}"


async def test_old_tls_refused_after_starttls(launch: StartServer) -> None:
    server = await launch(listeners=("imap",))
    client = await greeted(server.ports["imap"], "imap")
    try:
        replies = await imap_command(client, "t", b"STARTTLS")
        assert replies[-1].startswith(b"t OK"), replies
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            await client.writer.start_tls(old_tls_context())
    finally:
        client.writer.transport.abort()


# ---------------------------------------------------------------- STARTTLS injection

INJECTION = {
    "imap": (b"a STARTTLS\r\nb LOGOUT\r\n", b"a OK", b"c NOOP\r\n", b"c OK"),
    "pop3": (b"STLS\r\nQUIT\r\n", b"+OK", b"CAPA\r\n", b"+OK"),
    "smtp": (b"EHLO x\r\nSTARTTLS\r\nQUIT\r\n", b"220 ", b"EHLO y\r\n", b"250"),
    "submission": (b"EHLO x\r\nSTARTTLS\r\nQUIT\r\n", b"220 ", b"EHLO y\r\n", b"250"),
    "lmtp": (b"LHLO x\r\nSTARTTLS\r\nQUIT\r\n", b"220 ", b"LHLO y\r\n", b"250"),
}


@pytest.mark.parametrize("listener", sorted(INJECTION))
async def test_starttls_injection_is_dropped(launch: StartServer, listener: str) -> None:
    """The command sent in clear text right behind STARTTLS (here: a logout) must not be
    executed inside the TLS session: the first answer under TLS is to our probe."""
    server = await launch(listeners=(listener,))
    protocol = {"submission": "smtp"}.get(listener, listener)
    client = await greeted(server.ports[listener], protocol)
    try:
        send, ready, probe, answer = INJECTION[listener]
        await client.send(send)
        lines = await client.until(ready)
        if listener in ("smtp", "submission", "lmtp") and b"STARTTLS" not in b"".join(lines):
            pytest.skip(f"{listener} does not offer STARTTLS")
        await client.starttls()
        await client.send(probe)
        first = await client.line()
        assert first.startswith(answer), f"{listener}: injected command ran: {first!r}"
    finally:
        client.writer.transport.abort()


# ---------------------------------------------------------------- failed logins


async def imap_login_time(port: int, user: str, password: str) -> tuple[float, bytes]:
    client = await greeted(port, "imap")
    try:
        started = time.monotonic()
        replies = await imap_command(client, "l", f'LOGIN "{user}" "{password}"'.encode())
        return time.monotonic() - started, replies[-1]
    finally:
        await client.close()


async def test_failed_login_delays_grow(launch: StartServer) -> None:
    server = await launch(listeners=("imap",), auth={"failure_delay": 0.3})
    times = []
    for _ in range(4):
        took, reply = await imap_login_time(server.ports["imap"], USER, "wrong")
        assert reply.startswith(b"l NO"), reply
        times.append(took)
    assert times[0] >= 0.25, times
    assert times[3] > times[1] > times[0], times
    assert times[3] >= 4 * 0.3, times


def tagless(reply: bytes) -> bytes:
    return reply.split(b" ", 1)[1]


async def test_unknown_user_and_wrong_password_look_alike(launch: StartServer) -> None:
    server = await launch(listeners=("imap", "pop3", "submission"))
    imap = [
        (await imap_login_time(server.ports["imap"], user, "wrong"))[1]
        for user in (USER, "nobody@example.org")
    ]
    assert imap[0] == imap[1], imap
    pop3 = []
    for user in (USER, "nobody@example.org"):
        client = await greeted(server.ports["pop3"], "pop3")
        await client.send(f"USER {user}\r\nPASS wrong\r\n".encode())
        pop3.append((await client.line(), await client.line()))
        await client.close()
    assert pop3[0] == pop3[1], pop3
    smtp = []
    for user in (USER, "nobody@example.org"):
        client = await greeted(server.ports["submission"], "smtp")
        plain = base64.b64encode(f"\0{user}\0wrong".encode())
        await client.send(b"EHLO x\r\nAUTH PLAIN " + plain + b"\r\n")
        await client.until(b"250 ")
        smtp.append(await client.line())
        await client.close()
    assert smtp[0] == smtp[1], smtp
    assert smtp[0].startswith(b"535"), smtp


# ---------------------------------------------------------------- plaintext


def proxy_header(port: int) -> bytes:
    return b"PROXY TCP4 192.0.2.10 127.0.0.1 40000 %d\r\n" % port


async def remote(server: ServerProcess, listener: str, protocol: str) -> Raw:
    client = await Raw.connect(server.ports[listener])
    await client.send(proxy_header(server.ports[listener]))
    greeting = await client.line()
    assert greeting, f"{listener}: no greeting for a proxied client"
    return client


async def test_plaintext_refused_for_remote_clients_without_tls(launch: StartServer) -> None:
    server = await launch(
        listeners=("imap", "pop3", "submission"),
        sections={"listeners": {"proxy_protocol": True}},
    )
    imap = await remote(server, "imap", "imap")
    try:
        caps = await imap_command(imap, "c", b"CAPABILITY")
        assert b"LOGINDISABLED" in caps[0], caps
        assert b"AUTH=PLAIN" not in caps[0], caps
        replies = await imap_command(imap, "l", f'LOGIN {USER} "{PASSWORD}"'.encode())
        assert replies[-1].startswith((b"l NO", b"l BAD")), replies
        replies = await imap_command(
            imap, "a", b"AUTHENTICATE PLAIN " + base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
        )
        assert replies[-1].startswith((b"a NO", b"a BAD")), replies
        # After STARTTLS the same login works.
        assert (await imap_command(imap, "s", b"STARTTLS"))[-1].startswith(b"s OK")
        await imap.starttls()
        replies = await imap_command(imap, "l", f'LOGIN {USER} "{PASSWORD}"'.encode())
        assert replies[-1].startswith(b"l OK"), replies
    finally:
        await imap.close()
    pop3 = await remote(server, "pop3", "pop3")
    try:
        await pop3.send(f"USER {USER}\r\nPASS {PASSWORD}\r\n".encode())
        replies = [await pop3.line(), await pop3.line()]
        assert not replies[1].startswith(b"+OK"), replies
    finally:
        await pop3.close()
    submission = await remote(server, "submission", "smtp")
    try:
        await submission.send(b"EHLO x\r\n")
        ehlo = b"".join(await submission.until(b"250 "))
        assert b"AUTH" not in ehlo, ehlo
        plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
        await submission.send(b"AUTH PLAIN " + plain + b"\r\n")
        assert (await submission.line())[:1] in (b"5", b"4")
    finally:
        await submission.close()


# ---------------------------------------------------------------- SIGHUP


async def fingerprint(port: int) -> str:
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=insecure_context())
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True)
        return hashlib.sha256(der).hexdigest()
    finally:
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError, OSError):
            await writer.wait_closed()


async def test_sighup_reloads_the_certificate(launch: StartServer, tmp_path: Path) -> None:
    server = await launch(listeners=("imaps", "pop3s"))
    before = {name: await fingerprint(server.ports[name]) for name in ("imaps", "pop3s")}
    fresh = tmp_path / "fresh"
    await asyncio.to_thread(
        ensure_self_signed, fresh / "cert.pem", fresh / "key.pem", "renewed.test"
    )
    for name in ("cert.pem", "key.pem"):
        await asyncio.to_thread(shutil.copyfile, fresh / name, server.data / "tls" / name)
    server.signal(signal.SIGHUP)
    after = dict(before)
    async with asyncio.timeout(20):
        while after == before:
            await asyncio.sleep(0.2)
            after = {name: await fingerprint(server.ports[name]) for name in ("imaps", "pop3s")}
    assert all(after[name] != before[name] for name in before), (before, after)
    assert server.alive
