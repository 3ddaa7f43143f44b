"""SMTP, submission and LMTP end to end: the real listeners over real sockets, the real
store, delivery and authenticator; clients are raw sockets, Python's smtplib and swaks."""

from __future__ import annotations

import asyncio
import email
import logging
import shutil
import smtplib
import time

import pytest

from mailkeep.smtp.delivery import Envelope

from .conftest import (
    DOMAIN,
    HOST,
    PASSWORD,
    Server,
    StartServer,
    body_of,
    converse,
    insecure_context,
)

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
MESSAGE = (
    b"From: Sender <sender@remote.example>\r\n"
    b"To: Alice <alice@example.org>\r\n"
    b"Subject: hello\r\n"
    b"Message-ID: <one@remote.example>\r\n"
    b"\r\n"
    b"Line one.\r\n"
    b".A line that starts with a dot.\r\n"
    b"\r\n"
    b"Last line.\r\n"
)


def header(raw: bytes, name: str) -> str:
    value = email.message_from_bytes(raw)[name]
    assert value is not None, name
    return str(value)


# ------------------------------------------------------------------------ SMTP (MX)


async def test_smtplib_delivers_with_trace_headers_and_exact_body(server: Server) -> None:
    await server.add_user(ALICE)

    def send() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"]) as client:
            client.ehlo("client.example")
            return client.sendmail("sender@remote.example", [ALICE], MESSAGE)

    assert await asyncio.to_thread(send) == {}
    (raw,) = await server.messages(ALICE)
    assert body_of(raw) == MESSAGE
    assert header(raw, "Return-Path") == "<sender@remote.example>"
    assert header(raw, "Delivered-To") == ALICE
    received = header(raw, "Received")
    assert received.startswith("from client.example ([127.0.0.1])")
    assert f"by {HOST} (mailkeep) with ESMTP id " in received
    assert f"for <{ALICE}>;" in received


async def test_smtp_refuses_unknown_users_and_relaying(server: Server) -> None:
    await server.add_user(ALICE)
    await converse(
        server.ports["smtp"],
        f"""
        S: 220 {HOST} ESMTP mailkeep
        C: EHLO client.example
        S: 250-{HOST}
        S: 250-PIPELINING
        S: 250-SIZE 100000
        S: 250-8BITMIME
        S: 250-SMTPUTF8
        S: 250-ENHANCEDSTATUSCODES
        S: 250-CHUNKING
        S: 250-STARTTLS
        S: 250 HELP
        C: MAIL FROM:<sender@remote.example>
        S: 250 2.1.0 sender OK
        C: RCPT TO:<nobody@{DOMAIN}>
        S: 550 5.1.1 <nobody@{DOMAIN}>: no such user here
        C: RCPT TO:<victim@elsewhere.example>
        S: 550 5.7.1 <victim@elsewhere.example>: relay access denied; we accept mail only...
        C: RCPT TO:<Alice+lists@EXAMPLE.org>
        S: 250 2.1.5 <Alice+lists@EXAMPLE.org> OK
        C: AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAGNvcnJlY3QgaG9yc2U=
        S: 502 5.5.1 AUTH is not available here; use the submission port
        C: DATA
        S: 354 End data with <CR><LF>.<CR><LF>
        C: Subject: tagged
        C:
        C: hi
        C: .
        S: 250 2.0.0 OK, delivered to 1, id ...
        C: QUIT
        S: 221 2.0.0 {HOST} closing
        CLOSED
        """,
    )
    (raw,) = await server.messages(ALICE)
    assert header(raw, "Delivered-To") == "Alice+lists@EXAMPLE.org"
    assert body_of(raw) == b"Subject: tagged\r\n\r\nhi\r\n"


async def test_smtp_pipelining_several_messages(server: Server) -> None:
    await server.add_user(ALICE)
    await server.add_user(BOB)
    await converse(
        server.ports["smtp"],
        rf"""
        S: 220 {HOST} ESMTP mailkeep
        R: HELO c\r\nMAIL FROM:<a@remote.example>\r\n
        R: RCPT TO:<{ALICE}>\r\nRCPT TO:<{BOB}>\r\nDATA\r\n
        S: 250 {HOST}
        S: 250 2.1.0 sender OK
        S: 250 2.1.5 <{ALICE}> OK
        S: 250 2.1.5 <{BOB}> OK
        S: 354 End data with <CR><LF>.<CR><LF>
        R: Subject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<{BOB}>\r\n
        R: BDAT 24 LAST\r\nSubject: two\r\n\r\nsec
        R: ond\r\nQUIT\r\n
        S: 250 2.0.0 OK, delivered to 2, id ...
        S: 250 2.1.0 sender OK
        S: 250 2.1.5 <{BOB}> OK
        S: 250 2.0.0 OK, delivered to 1, id ...
        S: 221 2.0.0 {HOST} closing
        CLOSED
        """,
    )
    assert [body_of(m) for m in await server.messages(ALICE)] == [b"Subject: one\r\n\r\nfirst\r\n"]
    bob = await server.messages(BOB)
    assert [body_of(m) for m in bob] == [
        b"Subject: one\r\n\r\nfirst\r\n",
        b"Subject: two\r\n\r\nsecond\r\n",
    ]
    assert header(bob[1], "Return-Path") == "<>"


async def test_quota_is_checked_at_rcpt_and_at_delivery(server: Server) -> None:
    await server.add_user(ALICE, quota=5000)
    full = await server.add_user(BOB, quota=1000)
    filler = b"Subject: filler\r\n\r\n" + b"x" * 900 + b"\r\n"
    await converse(
        server.ports["smtp"],
        f"""
        S: 220 {HOST} ESMTP mailkeep
        C: HELO c
        S: 250 {HOST}
        C: MAIL FROM:<a@remote.example> SIZE=6000
        S: 250 2.1.0 sender OK
        C: RCPT TO:<{ALICE}>
        S: 552 5.2.2 <{ALICE}>: message larger than the mailbox quota
        C: RSET
        S: 250 2.0.0 OK
        C: MAIL FROM:<a@remote.example>
        S: 250 2.1.0 sender OK
        C: RCPT TO:<{BOB}>
        S: 250 2.1.5 <{BOB}> OK
        C: DATA
        S: 354 End data with <CR><LF>.<CR><LF>
        R: {filler.decode()!r}
        C: .
        S: 552 5.2.2 <{BOB}>: message larger than the mailbox quota
        """.replace("R: '", "R: ").replace("\\r\\n'", "\\r\\n"),
    )
    assert await server.messages(BOB) == []
    small = b"Subject: small\r\n\r\nsmall\r\n"
    await server.app.store.set_quota(full.id, 600, None)
    await converse(
        server.ports["smtp"],
        rf"""
        S: 220 {HOST} ESMTP mailkeep
        C: HELO c
        S: 250 {HOST}
        C: MAIL FROM:<a@remote.example>
        S: 250 2.1.0 sender OK
        C: RCPT TO:<{BOB}>
        S: 250 2.1.5 <{BOB}> OK
        C: DATA
        S: 354 End data with <CR><LF>.<CR><LF>
        R: Subject: small\r\n\r\nsmall\r\n.\r\n
        S: 250 2.0.0 OK, delivered to 1, id ...
        C: MAIL FROM:<a@remote.example> SIZE={len(small)}
        S: 250 2.1.0 sender OK
        C: RCPT TO:<{BOB}>
        S: 452 4.2.2 <{BOB}>: mailbox full (over quota); try again later
        """,
    )
    assert [body_of(m) for m in await server.messages(BOB)] == [small]


async def test_oversized_message_is_refused_after_reading_it(start_server: StartServer) -> None:
    server = await start_server(max_message=2000)
    await server.add_user(ALICE)
    big = "y" * 998
    await converse(
        server.ports["smtp"],
        f"""
        S: 220 {HOST} ESMTP mailkeep
        C: HELO c
        S: 250 {HOST}
        C: MAIL FROM:<a@remote.example> SIZE=2001
        S: 552 5.3.4 message size exceeds the limit of 2000 octets
        C: MAIL FROM:<a@remote.example>
        S: 250 2.1.0 sender OK
        C: RCPT TO:<{ALICE}>
        S: 250 2.1.5 <{ALICE}> OK
        C: DATA
        S: 354 End data with <CR><LF>.<CR><LF>
        C: {big}
        C: {big}
        C: {big}
        C: .
        S: 552 5.3.4 message size exceeds the limit of 2000 octets
        C: NOOP
        S: 250 2.0.0 OK
        """,
    )
    assert await server.messages(ALICE) == []


async def test_disconnect_in_the_middle_of_data_stores_nothing(server: Server) -> None:
    await server.add_user(ALICE)
    await converse(
        server.ports["smtp"],
        f"""
        S: 220 {HOST} ESMTP mailkeep
        C: HELO c
        S: 250 {HOST}
        C: MAIL FROM:<a@remote.example>
        S: 250 2.1.0 sender OK
        C: RCPT TO:<{ALICE}>
        S: 250 2.1.5 <{ALICE}> OK
        C: DATA
        S: 354 End data with <CR><LF>.<CR><LF>
        C: Subject: cut
        C:
        C: half a mess
        EOF
        """,
    )
    await asyncio.sleep(0.2)
    assert await server.messages(ALICE) == []


async def test_bad_input_gets_clear_replies_and_nothing_half_stored(server: Server) -> None:
    await server.add_user(ALICE)
    await converse(
        server.ports["smtp"],
        rf"""
        S: 220 {HOST} ESMTP mailkeep
        R: HELO c\x00\r\n
        S: 500 5.5.2 NUL octet in command
        R: HELO c\n
        S: 250 {HOST}
        R: MAIL FROM:<a@remote.example>\nRCPT TO:<{ALICE}>\nDATA\n
        S: 250 2.1.0 sender OK
        S: 250 2.1.5 <{ALICE}> OK
        S: 354 End data with <CR><LF>.<CR><LF>
        R: Subject: nul\r\n\r\na\x00b\r\n.\r\n
        S: 554 5.6.0 message contains NUL octets, which mail may not carry
        R: MAIL FROM:<a@remote.example>\r\nRCPT TO:<{ALICE}>\r\nDATA\r\n
        S: 250 2.1.0 sender OK
        S: 250 2.1.5 <{ALICE}> OK
        S: 354 End data with <CR><LF>.<CR><LF>
        R: Subject: bare\n\ncaf\xc3\xa9 line\n.\nstill data\r\n.\r\n
        S: 250 2.0.0 OK, delivered to 1, id ...
        """,
    )
    (raw,) = await server.messages(ALICE)
    assert body_of(raw) == b"Subject: bare\r\n\r\ncaf\xc3\xa9 line\r\n\r\nstill data\r\n"


async def test_idle_client_gets_421_after_the_timeout(start_server: StartServer) -> None:
    server = await start_server(smtp_timeout=1)
    started = time.monotonic()
    await converse(
        server.ports["lmtp"],
        f"""
        S: 220 {HOST} LMTP mailkeep
        S: 421 4.4.2 {HOST} timeout; closing
        CLOSED
        """,
    )
    assert 0.9 < time.monotonic() - started < 5


async def test_session_outcome_is_logged(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mailkeep.smtp")
    await converse(
        server.ports["smtp"],
        f"""
        S: 220 {HOST} ESMTP mailkeep
        C: HELO c
        S: 250 {HOST}
        C: QUIT
        S: 221 2.0.0 {HOST} closing
        CLOSED
        """,
    )
    await asyncio.sleep(0.1)
    lines = [r.getMessage() for r in caplog.records if r.name == "mailkeep.smtp"]
    assert any(
        line.startswith("smtp 127.0.0.1 helo=c: 0 message(s) accepted") and line.endswith("QUIT")
        for line in lines
    ), lines


# ------------------------------------------------------------------------ STARTTLS


async def test_starttls_then_delivery(server: Server) -> None:
    await server.add_user(ALICE)

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"]) as client:
            client.ehlo("client.example")
            assert client.has_extn("starttls")
            client.starttls(context=insecure_context())
            client.ehlo("client.example")
            assert not client.has_extn("starttls")
            client.sendmail("sender@remote.example", [ALICE], MESSAGE)

    await asyncio.to_thread(send)
    (raw,) = await server.messages(ALICE)
    assert " with ESMTPS id " in header(raw, "Received")
    assert body_of(raw) == MESSAGE


async def test_starttls_drops_commands_pipelined_in_clear_text(server: Server) -> None:
    await converse(
        server.ports["smtp"],
        f"""
        S: 220 {HOST} ESMTP mailkeep
        C: HELO c
        S: 250 {HOST}
        R: STARTTLS\\r\\nMAIL FROM:<injected@evil.example>\\r\\n
        S: 220 2.0.0 Ready to start TLS
        STARTTLS
        C: MAIL FROM:<a@remote.example>
        S: 503 5.5.1 send EHLO first
        """,
    )


# ------------------------------------------------------------------------ LMTP


async def test_lmtp_replies_per_recipient_with_mixed_outcomes(server: Server) -> None:
    await server.add_user(ALICE)
    await server.add_user(BOB, quota=2500)
    carol = await server.add_user(f"carol@{DOMAIN}")
    text = "x" * 600
    filler = b"Subject: filler\r\n\r\n" + b"f" * 1000 + b"\r\n"
    (filled,) = await server.app.delivery.deliver(filler, Envelope(""), [BOB])
    assert filled.delivered
    # carol's account is deleted between her RCPT and the end of the data.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["lmtp"])
    try:
        writer.write(
            f"LHLO mta.example\r\nMAIL FROM:<s@remote.example>\r\nRCPT TO:<{ALICE}>\r\n"
            f"RCPT TO:<ghost@{DOMAIN}>\r\nRCPT TO:<{BOB}>\r\nRCPT TO:<carol@{DOMAIN}>\r\n"
            "DATA\r\n".encode()
        )
        replies = [(await reader.readline()).decode().rstrip() for _ in range(16)]
        assert replies[0] == f"220 {HOST} LMTP mailkeep"
        assert replies[-6:] == [
            "250 2.1.0 sender OK",
            f"250 2.1.5 <{ALICE}> OK",
            f"550 5.1.1 <ghost@{DOMAIN}>: no such user here",
            f"250 2.1.5 <{BOB}> OK",
            f"250 2.1.5 <carol@{DOMAIN}> OK",
            "354 End data with <CR><LF>.<CR><LF>",
        ]
        await server.app.store.delete_account(carol.id)
        writer.write(f"Subject: big\r\n\r\n{text}\r\n{text}\r\n.\r\n".encode())
        after = [(await reader.readline()).decode().rstrip() for _ in range(3)]
    finally:
        writer.close()
    assert after[0].startswith(f"250 2.0.0 <{ALICE}> delivered, id ")
    assert after[1] == f"452 4.2.2 <{BOB}>: mailbox full (over quota); try again later"
    assert after[2] == f"550 5.1.1 <carol@{DOMAIN}>: no such user here"
    assert len(await server.messages(ALICE)) == 1
    assert [body_of(m) for m in await server.messages(BOB)] == [filler]


async def test_smtplib_lmtp_delivers(server: Server) -> None:
    await server.add_user(ALICE)

    def send() -> dict[str, tuple[int, bytes]]:
        with smtplib.LMTP("127.0.0.1", server.ports["lmtp"]) as client:
            return client.sendmail("sender@remote.example", [ALICE], MESSAGE)

    assert await asyncio.to_thread(send) == {}
    (raw,) = await server.messages(ALICE)
    assert body_of(raw) == MESSAGE
    assert " with LMTP id " in header(raw, "Received")


# ------------------------------------------------------------------------ submission


async def test_submission_authenticates_and_delivers_locally(server: Server) -> None:
    await server.add_user(ALICE)
    await server.add_user(BOB)

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", server.ports["submission"]) as client:
            client.ehlo("laptop")
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                client.sendmail(ALICE, [BOB], MESSAGE)
            assert refused.value.smtp_code == 530
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login(ALICE, "wrong password")
            client.login(ALICE, PASSWORD)
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                client.sendmail(BOB, [BOB], MESSAGE)
            assert refused.value.smtp_code == 553
            with pytest.raises(smtplib.SMTPRecipientsRefused) as no_relay:
                client.sendmail(ALICE, ["friend@elsewhere.example"], MESSAGE)
            ((code, text),) = no_relay.value.recipients.values()
            assert code == 550
            assert b"5.7.1" in text
            assert b"no outgoing mail queue" in text
            client.sendmail(ALICE, [BOB], MESSAGE)

    await asyncio.to_thread(send)
    (raw,) = await server.messages(BOB)
    assert body_of(raw) == MESSAGE
    assert " with ESMTPA id " in header(raw, "Received")
    assert header(raw, "Return-Path") == f"<{ALICE}>"


async def test_submissions_implicit_tls_with_scram_free_client(server: Server) -> None:
    await server.add_user(ALICE)

    def send() -> None:
        with smtplib.SMTP_SSL(
            "127.0.0.1", server.ports["submissions"], context=insecure_context()
        ) as client:
            client.ehlo("laptop")
            assert not client.has_extn("starttls")
            assert "PLAIN" in client.esmtp_features["auth"].split()
            client.login(ALICE, PASSWORD)
            client.sendmail(ALICE, [ALICE], MESSAGE)

    await asyncio.to_thread(send)
    (raw,) = await server.messages(ALICE)
    assert " with ESMTPSA id " in header(raw, "Received")


async def test_no_passwords_in_clear_text_from_a_remote_client(start_server: StartServer) -> None:
    """From a non-loopback address, AUTH is offered only after STARTTLS (the client's
    address comes from a PROXY protocol header here)."""
    server = await start_server(proxy_protocol=True)
    await server.add_user(ALICE)
    await converse(
        server.ports["submission"],
        rf"""
        R: PROXY TCP4 192.0.2.7 127.0.0.1 40000 587\r\n
        S: 220 {HOST} ESMTP mailkeep
        C: EHLO laptop
        S: 250-{HOST}
        S: 250-PIPELINING
        S: 250-SIZE 100000
        S: 250-8BITMIME
        S: 250-SMTPUTF8
        S: 250-ENHANCEDSTATUSCODES
        S: 250-CHUNKING
        S: 250-STARTTLS
        S: 250 HELP
        C: AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAGNvcnJlY3QgaG9yc2U=
        S: 530 5.7.0 Must issue a STARTTLS command first
        C: STARTTLS
        S: 220 2.0.0 Ready to start TLS
        STARTTLS
        C: EHLO laptop
        S: 250-{HOST}
        S: 250-PIPELINING
        S: 250-SIZE 100000
        S: 250-8BITMIME
        S: 250-SMTPUTF8
        S: 250-ENHANCEDSTATUSCODES
        S: 250-CHUNKING
        S: 250-AUTH SCRAM-SHA-256 PLAIN LOGIN
        S: 250 HELP
        C: AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAGNvcnJlY3QgaG9yc2U=
        S: 235 2.7.0 Authentication successful
        """,
    )


async def test_auth_login_with_challenges_and_too_many_failures(server: Server) -> None:
    await server.add_user(ALICE)
    await converse(
        server.ports["submission"],
        f"""
        S: 220 {HOST} ESMTP mailkeep
        C: HELO c
        S: 250 {HOST}
        C: AUTH LOGIN
        S: 334 VXNlcm5hbWU6
        C: *
        S: 501 5.0.0 Authentication cancelled
        C: AUTH LOGIN YWxpY2VAZXhhbXBsZS5vcmc=
        S: 334 UGFzc3dvcmQ6
        C: d3Jvbmc=
        S: 535 5.7.8 Authentication credentials invalid
        C: AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHdyb25n
        S: 535 5.7.8 Authentication credentials invalid
        C: AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHdyb25n
        S: 535 5.7.8 Authentication credentials invalid
        S: 421 4.7.0 too many failed logins; closing
        CLOSED
        """,
    )


# ------------------------------------------------------------------------ swaks

swaks = pytest.mark.skipif(
    shutil.which("swaks") is None, reason="swaks is not installed (scripts/test-deps.sh)"
)


async def _swaks(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "swaks",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, output.decode(errors="replace")


@swaks
@pytest.mark.interop
@pytest.mark.parametrize("tls", [False, True])
async def test_swaks_smtp(server: Server, tls: bool) -> None:
    await server.add_user(ALICE)
    args = ["--server", f"127.0.0.1:{server.ports['smtp']}", "--to", ALICE]
    args += ["--from", "sender@remote.example", "--helo", "swaks.example"]
    args += ["--header", "Subject: from swaks", "--body", "Body from swaks."]
    code, output = await _swaks(*args, *(["-tls"] if tls else []))
    assert code == 0, output
    (raw,) = await server.messages(ALICE)
    assert header(raw, "Subject") == "from swaks"
    assert b"\r\n\r\nBody from swaks.\r\n" in body_of(raw)
    assert f" with {'ESMTPS' if tls else 'ESMTP'} id " in header(raw, "Received")


@swaks
@pytest.mark.interop
async def test_swaks_submission_auth_plain(server: Server) -> None:
    await server.add_user(ALICE)
    await server.add_user(BOB)
    args = ["--server", f"127.0.0.1:{server.ports['submission']}", "--to", BOB, "--from", ALICE]
    args += ["-tls", "-a", "PLAIN", "--auth-user", ALICE, "--auth-password"]
    code, output = await _swaks(*args, PASSWORD)
    assert code == 0, output
    assert "235 2.7.0 Authentication successful" in output
    (raw,) = await server.messages(BOB)
    assert " with ESMTPSA id " in header(raw, "Received")
    code, output = await _swaks(*args, "wrong")
    assert code != 0
    assert "535 5.7.8" in output


@swaks
@pytest.mark.interop
async def test_swaks_lmtp(server: Server) -> None:
    await server.add_user(ALICE)
    code, output = await _swaks(
        "--server", f"127.0.0.1:{server.ports['lmtp']}", "--protocol", "LMTP", "--to", ALICE
    )
    assert code == 0, output
    assert len(await server.messages(ALICE)) == 1
