"""Greeting, CAPABILITY, NOOP, LOGOUT, ID, ENABLE, NAMESPACE and the state table."""

from __future__ import annotations

from mailkeep.imap.session import Services

from .support import Client, run_transcript


async def test_greeting_lists_capabilities(services: Services) -> None:
    c = Client(services)
    greeting = await c.start()
    assert greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
    assert b"AUTH=PLAIN" in greeting
    assert b"AUTH=SCRAM-SHA-256" in greeting
    assert b"LOGINDISABLED" not in greeting  # loopback: plain text allowed
    await c.finish()


async def test_capability_noop_logout(client: Client) -> None:
    await run_transcript(
        client,
        """
        C: abcd CAPABILITY
        S~ \\* CAPABILITY IMAP4rev1 IMAP4rev2 .*AUTH=PLAIN.*
        S: abcd OK CAPABILITY completed
        C: a002 NOOP
        S: a002 OK NOOP completed
        C: A023 LOGOUT
        S: * BYE logging out
        S: A023 OK LOGOUT completed
        """,
    )
    assert client.task is not None
    await client.task


async def test_wrong_state_and_unknown(client: Client) -> None:
    await run_transcript(
        client,
        """
        C: a1 ENABLE IMAP4rev2
        S: a1 BAD log in first (LOGIN or AUTHENTICATE)
        C: a2 FROBNICATE
        S: a2 BAD unknown command FROBNICATE
        C: a3 FETCH 1 FLAGS
        S: a3 BAD log in first (LOGIN or AUTHENTICATE)
        """,
    )


async def test_id_enable_namespace(alice: Client) -> None:
    await run_transcript(
        alice,
        """
        C: a023 ID ("name" "sodr" "version" "19.34")
        S: * ID ("name" "mailkeep" "version" "0.1.0" "vendor" "mailkeep")
        S: a023 OK ID completed
        C: t1 ENABLE IMAP4rev2 CONDSTORE X-GOOD-IDEA
        S: * ENABLED IMAP4rev2 CONDSTORE
        S: t1 OK ENABLE completed
        C: t2 ENABLE IMAP4rev2 UTF8=ACCEPT
        S: * ENABLED UTF8=ACCEPT
        S: t2 OK ENABLE completed
        C: A001 NAMESPACE
        S: * NAMESPACE (("" "/")) (("Shared/" "/")) (("Public/" "/"))
        S: A001 OK NAMESPACE completed
        """,
    )
