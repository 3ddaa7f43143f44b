"""LOGIN, AUTHENTICATE (PLAIN, LOGIN, SCRAM-SHA-256, SASL-IR), STARTTLS, the plain-text
rule, failure counting and the login timeout."""

from __future__ import annotations

import asyncio
import base64
import dataclasses

from mailkeep.auth.sasl_client import ScramSha256Client
from mailkeep.config import AuthConfig, LimitsConfig
from mailkeep.imap.session import Services
from mailkeep.store.sqlstore import SqlStore

from .conftest import ADDRESS, PASSWORD, Sleeps, make_services
from .support import Client, MemoryTransport, run_transcript


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


PLAIN = b64(f"\0{ADDRESS}\0{PASSWORD}".encode())


async def test_login_and_capability_after(client: Client) -> None:
    responses = await client.command(f'a001 LOGIN {ADDRESS} "{PASSWORD}"')
    assert responses[-1].startswith(b"a001 OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
    assert b"AUTH=" not in responses[-1]
    assert responses[-1].endswith(b"] logged in")
    again = await client.command("a002 LOGIN x y")
    assert again == [b"a002 BAD already authenticated"]


async def test_login_failures_close_after_max(client: Client, sleeps: Sleeps) -> None:
    await run_transcript(
        client,
        f"""
        C: a1 LOGIN {ADDRESS} wrong
        S: a1 NO [AUTHENTICATIONFAILED] authentication failed
        C: a2 LOGIN nobody@example.org wrong
        S: a2 NO [AUTHENTICATIONFAILED] authentication failed
        C: a3 LOGIN {ADDRESS} "also wrong"
        S: a3 NO [AUTHENTICATIONFAILED] authentication failed
        S: * BYE too many failed login attempts
        """,
    )
    assert client.task is not None
    await asyncio.wait_for(client.task, 5)
    assert len(sleeps.delays) >= 3
    assert all(d > 0 for d in sleeps.delays)


async def test_plaintext_refused_without_tls(services: Services) -> None:
    c = Client(services, MemoryTransport(remote="192.0.2.7", loopback=False, can_start_tls=True))
    greeting = await c.start()
    assert b"LOGINDISABLED" in greeting
    assert b"STARTTLS" in greeting
    assert b"AUTH=PLAIN" not in greeting
    assert b"AUTH=SCRAM-SHA-256" in greeting
    await run_transcript(
        c,
        f"""
        C: a1 LOGIN {ADDRESS} "{PASSWORD}"
        S: a1 NO [PRIVACYREQUIRED] use STARTTLS (or a TLS port) before LOGIN
        C: a2 AUTHENTICATE PLAIN {PLAIN}
        S: a2 NO [PRIVACYREQUIRED] PLAIN sends the password in the clear: use TLS first
        C: a3 STARTTLS
        S: a3 OK begin TLS negotiation now
        C: a4 CAPABILITY
        S~ \\* CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=SCRAM-SHA-256 AUTH=PLAIN AUTH=LOGIN .*
        S: a4 OK CAPABILITY completed
        C: a5 STARTTLS
        S: a5 BAD TLS is already active
        C: a6 LOGIN {ADDRESS} "{PASSWORD}"
        S~ a6 OK \\[CAPABILITY .*\\] logged in
        """,
    )
    assert c.transport.tls_started == 1
    await c.finish()


async def test_starttls_drops_pipelined_commands(services: Services) -> None:
    c = Client(services, MemoryTransport(loopback=False, can_start_tls=True))
    await c.start()
    c.send_raw(b"a1 STARTTLS\r\na2 LOGIN injected command\r\n")
    assert await c.line() == b"a1 OK begin TLS negotiation now"
    c.send("a3 NOOP")
    assert await c.line() == b"a3 OK NOOP completed"
    await c.finish()


async def test_authenticate_plain_with_and_without_initial_response(client: Client) -> None:
    token = PLAIN
    await run_transcript(
        client,
        f"""
        C: a1 AUTHENTICATE PLAIN
        S: +
        C: {token}
        S~ a1 OK \\[CAPABILITY .*\\] logged in
        """,
    )


async def test_authenticate_sasl_ir_and_cancel(new_client: object, services: Services) -> None:
    c = Client(services)
    await c.start()
    await run_transcript(
        c,
        f"""
        C: a1 AUTHENTICATE LOGIN
        S: + VXNlcm5hbWU6
        C: *
        S: a1 BAD authentication cancelled
        C: a2 AUTHENTICATE PLAIN !!!notbase64
        S: a2 BAD invalid base64 in SASL response
        C: a3 AUTHENTICATE CRAM-MD5
        S: a3 NO [CANNOT] unsupported SASL mechanism CRAM-MD5
        C: a4 AUTHENTICATE PLAIN
        S: +
        C: ###
        S: a4 BAD invalid base64 in SASL response
        C: a5 AUTHENTICATE PLAIN {PLAIN}
        S~ a5 OK \\[CAPABILITY .*\\] logged in
        """,
    )
    await c.finish()


async def test_authenticate_login_mechanism(client: Client) -> None:
    await run_transcript(
        client,
        f"""
        C: a1 AUTHENTICATE LOGIN
        S: + VXNlcm5hbWU6
        C: {b64(ADDRESS.encode())}
        S: + UGFzc3dvcmQ6
        C: {b64(PASSWORD.encode())}
        S~ a1 OK \\[CAPABILITY .*\\] logged in
        """,
    )


async def test_authenticate_scram_sha_256(client: Client) -> None:
    scram = ScramSha256Client(ADDRESS, PASSWORD)
    first = scram.initial_response()
    assert first is not None
    client.send(f"a1 AUTHENTICATE SCRAM-SHA-256 {b64(first)}")
    challenge = await client.line()
    assert challenge.startswith(b"+ ")
    client.send(b64(scram.respond(base64.b64decode(challenge[2:]))))
    final = await client.line()
    assert final.startswith(b"+ ")
    client.send(b64(scram.respond(base64.b64decode(final[2:]))))
    done = await client.line()
    assert done.startswith(b"a1 OK [CAPABILITY ")
    scram.finish()


async def test_scram_wrong_password(client: Client) -> None:
    scram = ScramSha256Client(ADDRESS, "wrong")
    first = scram.initial_response()
    assert first is not None
    client.send(f"a1 AUTHENTICATE SCRAM-SHA-256 {b64(first)}")
    challenge = await client.line()
    client.send(b64(scram.respond(base64.b64decode(challenge[2:]))))
    assert await client.line() == b"a1 NO [AUTHENTICATIONFAILED] authentication failed"


async def test_login_timeout(store: SqlStore, sleeps: Sleeps, account: object) -> None:
    services = make_services(store, sleeps, limits=LimitsConfig(login_timeout=0))
    c = Client(services)
    await c.start()
    assert await c.line() == b"* BYE login timeout: authenticate sooner"
    assert c.task is not None
    await asyncio.wait_for(c.task, 5)


async def test_idle_timeout_after_login(store: SqlStore, sleeps: Sleeps, account: object) -> None:
    services = make_services(store, sleeps, limits=LimitsConfig(idle_timeout=0))
    c = Client(services)
    await c.start()
    await c.login(ADDRESS, PASSWORD)
    assert await c.line() == b"* BYE autologout: idle for too long"


async def test_plaintext_allowed_by_config(
    store: SqlStore, sleeps: Sleeps, account: object
) -> None:
    services = make_services(
        store, sleeps, auth=dataclasses.replace(AuthConfig(), allow_plaintext=True)
    )
    c = Client(services, MemoryTransport(remote="192.0.2.7", loopback=False))
    greeting = await c.start()
    assert b"LOGINDISABLED" not in greeting
    await c.login(ADDRESS, PASSWORD)
    await c.finish()


async def test_unauthenticated_literal_limit(client: Client) -> None:
    client.send("a1 LOGIN {100000}")
    assert await client.line() == b"a1 BAD literal of 100000 octets is over the limit of 8192"
    client.send("a2 NOOP")
    assert await client.line() == b"a2 OK NOOP completed"
