"""POP3 dialogues, command by command and state by state, over a real store (no sockets).

The RFC examples are replayed with a maildrop of the same shape (two messages of 120
and 200 octets); only free text differs where the RFC's is an example.
"""

from __future__ import annotations

import base64

from mailkeep.auth.passwords import hash_password
from mailkeep.auth.sasl_client import client_mechanism
from mailkeep.config import AuthConfig, Pop3Config
from mailkeep.pop3.session import Peer
from mailkeep.store.api import Account
from mailkeep.store.sqlstore import SqlStore

from .conftest import (
    ADDRESS,
    PASSWORD,
    REMOTE,
    Clock,
    Driver,
    deliver,
    dialogue,
    new_session,
    transcript,
)

GREETING = "S: +OK pop.example.org POP3 server ready"


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


PLAIN = b64(f"\0{ADDRESS}\0{PASSWORD}")
PLAIN_WRONG = b64(f"\0{ADDRESS}\0wrong")
PLAIN_AS_OTHER = b64(f"someone@example.org\0{ADDRESS}\0{PASSWORD}")


def sized(size: int, subject: str = "test") -> bytes:
    """A message of exactly ``size`` octets, CRLF line ends, body lines of dots and
    letters."""
    header = f"From: mrose@dbc.mtview.ca.us\r\nSubject: {subject}\r\n\r\n".encode()
    body = bytearray()
    while len(header) + len(body) < size:
        left = size - len(header) - len(body)
        line = (b"." + b"x" * 60)[: max(left - 2, 0)]
        body += line + b"\r\n" if left >= 2 else b"y"
    raw = header + bytes(body)
    assert len(raw) == size
    return raw


async def rfc_maildrop(store: SqlStore, account: Account) -> tuple[bytes, bytes]:
    first, second = sized(120, "one"), sized(200, "two")
    await deliver(store, account, first, second)
    return first, second


def stuffed(raw: bytes) -> list[str]:
    """How a message shows in a transcript: lines, dot-stuffed, then the terminator."""
    lines = raw.decode().split("\r\n")[:-1]
    return [("." + line if line.startswith(".") else line) for line in lines] + ["."]


def s_lines(lines: list[str]) -> str:
    return "\n".join("S: " + line for line in lines)


# ---------------------------------------------------------------------------- RFC 1939


async def test_rfc1939_example_session(store: SqlStore, account: Account) -> None:
    """RFC 1939 section 10, with USER/PASS in place of APOP."""
    first, second = await rfc_maildrop(store, account)
    session = new_session(store)
    await transcript(
        session,
        f"""
        {GREETING}
        C: USER {ADDRESS}
        S: +OK Send your password
        C: PASS {PASSWORD}
        S: +OK Maildrop locked and ready: 2 messages (320 octets)
        C: STAT
        S: +OK 2 320
        C: LIST
        S: +OK 2 messages (320 octets)
        S: 1 120
        S: 2 200
        S: .
        C: RETR 1
        S: +OK 120 octets
        {s_lines(stuffed(first))}
        C: DELE 1
        S: +OK Message 1 deleted
        C: RETR 2
        S: +OK 200 octets
        {s_lines(stuffed(second))}
        C: DELE 2
        S: +OK Message 2 deleted
        C: QUIT
        S: +OK pop.example.org POP3 server signing off (maildrop empty)
        """,
    )
    assert session.closed
    assert (await store.mailbox_status(await inbox(store, account))).messages == 0


async def inbox(store: SqlStore, account: Account) -> int:
    mailbox = await store.get_mailbox(account.id, "INBOX")
    assert mailbox is not None
    return mailbox.id


async def test_rfc1939_transaction_commands(store: SqlStore, account: Account) -> None:
    """The examples of RFC 1939 sections 5 and 7, in one session."""
    first, _ = await rfc_maildrop(store, account)
    snapshot = await store.snapshot(await inbox(store, account))
    uidl = [f"{uid:08X}{snapshot.mailbox.uidvalidity:08X}" for uid in snapshot.uids]
    header, _, body = first.partition(b"\r\n\r\n")
    first_line = body.split(b"\r\n")[0].decode()
    assert first_line.startswith(".")  # so TOP shows it dot-stuffed
    top = [*header.decode().split("\r\n"), "", "." + first_line, "."]
    driver = Driver(new_session(store))
    await driver.login()
    await dialogue(
        driver,
        f"""
        C: STAT
        S: +OK 2 320
        C: LIST 2
        S: +OK 2 200
        C: LIST 3
        S: -ERR No such message, only 2 messages in maildrop
        C: NOOP
        S: +OK
        C: UIDL
        S: +OK
        S: 1 {uidl[0]}
        S: 2 {uidl[1]}
        S: .
        C: UIDL 2
        S: +OK 2 {uidl[1]}
        C: TOP 1 1
        S: +OK Top of message follows
        {s_lines(top)}
        C: DELE 1
        S: +OK Message 1 deleted
        C: LIST
        S: +OK 1 messages (200 octets)
        S: 2 200
        S: .
        C: STAT
        S: +OK 1 200
        C: DELE 1
        S: -ERR Message 1 already deleted
        C: RETR 1
        S: -ERR Message 1 already deleted
        C: LIST 1
        S: -ERR Message 1 already deleted
        C: UIDL 1
        S: -ERR Message 1 already deleted
        C: TOP 1 0
        S: -ERR Message 1 already deleted
        C: RSET
        S: +OK maildrop has 2 messages (320 octets)
        C: LIST 1
        S: +OK 1 120
        C: RETR 0
        S: -ERR No such message, only 2 messages in maildrop
        C: QUIT
        S: +OK pop.example.org POP3 server signing off (2 messages left)
        """,
    )
    assert len((await store.snapshot(await inbox(store, account))).uids) == 2


async def test_authorization_state_rules(store: SqlStore, account: Account) -> None:
    """RFC 1939 section 4: only USER/PASS (and APOP, AUTH, CAPA, STLS, UTF8, LANG,
    QUIT) before login; everything else is refused and the session goes on."""
    await rfc_maildrop(store, account)
    await transcript(
        new_session(store),
        f"""
        {GREETING}
        C: STAT
        S: -ERR STAT is not valid before login
        C: RETR 1
        S: -ERR RETR is not valid before login
        C: NOOP
        S: -ERR NOOP is not valid before login
        C: RETR
        S: -ERR RETR is not valid before login
        C: PASS {PASSWORD}
        S: -ERR No user name given: send USER first
        C: XTND XMIT
        S: -ERR Unknown command
        C:
        S: -ERR No command given
        C: APOP mrose c4c9334bac560ecc979e58001b3e22fb
        S: -ERR APOP is not supported: use USER and PASS, or AUTH
        C: USER nobody@example.org
        S: +OK Send your password
        C: PASS wrong
        S: -ERR [AUTH] Invalid user name or password
        C: USER {ADDRESS}
        S: +OK Send your password
        C: USER {ADDRESS}
        S: +OK Send your password
        C: PASS {PASSWORD}
        S: +OK Maildrop locked and ready: 2 messages (320 octets)
        C: USER {ADDRESS}
        S: -ERR USER is not valid after login
        C: PASS x
        S: -ERR PASS is not valid after login
        C: AUTH PLAIN
        S: -ERR AUTH is not valid after login
        C: STLS
        S: -ERR STLS is not valid after login
        C: UTF8
        S: -ERR UTF8 is not valid after login
        C: RETR x
        S: -ERR The message number must be a number
        C: STAT 2
        S: -ERR STAT takes no arguments
        C: QUIT
        S: +OK pop.example.org POP3 server signing off (2 messages left)
        """,
    )


async def test_quit_before_login(store: SqlStore) -> None:
    driver = await transcript(
        new_session(store),
        f"""
        {GREETING}
        C: QUIT
        S: +OK pop.example.org POP3 server signing off
        """,
    )
    assert driver.closed


async def test_empty_maildrop(store: SqlStore, account: Account) -> None:
    await transcript(
        new_session(store),
        f"""
        {GREETING}
        C: USER {ADDRESS}
        S: +OK Send your password
        C: PASS {PASSWORD}
        S: +OK Maildrop locked and ready: 0 messages (0 octets)
        C: STAT
        S: +OK 0 0
        C: LIST
        S: +OK 0 messages (0 octets)
        S: .
        C: UIDL
        S: +OK
        S: .
        C: RETR 1
        S: -ERR No such message, only 0 messages in maildrop
        C: QUIT
        S: +OK pop.example.org POP3 server signing off (maildrop empty)
        """,
    )


async def test_pass_keeps_spaces(store: SqlStore) -> None:
    """RFC 1939 section 7: spaces in the PASS argument belong to the password."""
    await store.create_account("spacey@example.org", hash_password(" two words "), None)
    driver = Driver(new_session(store))
    await driver.command("USER spacey@example.org")
    assert await driver.command("PASS two words") == (
        b"-ERR [AUTH] Invalid user name or password\r\n"
    )
    await driver.command("USER spacey@example.org")
    assert (await driver.command("PASS  two words ")).startswith(b"+OK Maildrop locked")


# ---------------------------------------------------------------------------- CAPA


async def test_rfc2449_capa(store: SqlStore, account: Account) -> None:
    """RFC 2449 section 5; EXPIRE and LOGIN-DELAY follow 6.5 and 6.7."""
    session = new_session(store, pop3=Pop3Config(retention="days:30", login_delay=900))
    await transcript(
        session,
        f"""
        {GREETING}
        C: CAPA
        S: +OK Capability list follows
        S: TOP
        S: UIDL
        S: USER
        S: SASL SCRAM-SHA-256 PLAIN LOGIN
        S: RESP-CODES
        S: AUTH-RESP-CODE
        S: PIPELINING
        S: EXPIRE 0 USER
        S: LOGIN-DELAY 900
        S: IMPLEMENTATION mailkeep-*
        S: STLS
        S: UTF8 USER
        S: LANG
        S: .
        C: USER {ADDRESS}
        S: +OK Send your password
        C: PASS {PASSWORD}
        S: +OK Maildrop locked and ready: 0 messages (0 octets)
        C: CAPA
        S: +OK Capability list follows
        S: TOP
        S: UIDL
        S: USER
        S: SASL SCRAM-SHA-256 PLAIN LOGIN
        S: RESP-CODES
        S: AUTH-RESP-CODE
        S: PIPELINING
        S: EXPIRE 30
        S: LOGIN-DELAY 900
        S: IMPLEMENTATION mailkeep-*
        S: STLS
        S: UTF8 USER
        S: LANG
        S: .
        """,
    )


async def test_capa_expire_per_account(store: SqlStore, account: Account) -> None:
    for setting, expire in [("keep", "NEVER"), ("delete-after-retr", "0"), ("days:7", "7")]:
        await store.set_account_setting(account.id, "pop3.retention", setting)
        driver = Driver(new_session(store))
        await driver.login()
        capa = await driver.command("CAPA")
        assert f"\r\nEXPIRE {expire}\r\n".encode() in capa
        await driver.command("QUIT")


async def test_capa_without_plaintext(store: SqlStore) -> None:
    """Unencrypted, not loopback: no USER, no PLAIN/LOGIN; and they are refused."""
    await transcript(
        new_session(store, REMOTE),
        f"""
        {GREETING}
        C: CAPA
        S: +OK Capability list follows
        S: TOP
        S: UIDL
        S: SASL SCRAM-SHA-256
        S: RESP-CODES
        S: AUTH-RESP-CODE
        S: PIPELINING
        S: EXPIRE 0 USER
        S: IMPLEMENTATION mailkeep-*
        S: STLS
        S: UTF8 USER
        S: LANG
        S: .
        C: USER {ADDRESS}
        S: -ERR [SYS/PERM] Plain-text passwords are not accepted on an unencrypted connection: *
        C: PASS {PASSWORD}
        S: -ERR [SYS/PERM] Plain-text passwords are not accepted on an unencrypted connection: *
        C: AUTH PLAIN {PLAIN}
        S: -ERR [SYS/PERM] Plain-text passwords are not accepted on an unencrypted connection: *
        """,
    )


async def test_plaintext_allowed_by_the_operator(store: SqlStore, account: Account) -> None:
    session = new_session(store, REMOTE, auth=AuthConfig(allow_plaintext=True))
    await Driver(session).login()


# ---------------------------------------------------------------------------- STLS


async def test_stls(store: SqlStore, account: Account) -> None:
    """RFC 2595 section 4: STLS, then CAPA without STLS; input sent in clear after STLS
    is dropped; USER given before is forgotten."""
    session = new_session(store, REMOTE)
    driver = Driver(session)
    assert (await driver.command("USER x")).startswith(b"-ERR [SYS/PERM]")
    reply = await driver.send(b"STLS\r\nUSER injected@example.org\r\n")
    assert reply == b"+OK Begin TLS negotiation\r\n"
    assert driver.tls_requested
    assert session.tls
    capa = await driver.command("CAPA")
    assert b"\r\nSTLS\r\n" not in capa
    assert b"\r\nUSER\r\n" in capa
    assert b"SASL SCRAM-SHA-256 PLAIN LOGIN\r\n" in capa
    assert await driver.command("PASS x") == b"-ERR No user name given: send USER first\r\n"
    assert await driver.command("STLS") == b"-ERR TLS is already active\r\n"
    await driver.login()


async def test_stls_refusals(store: SqlStore) -> None:
    no_tls = new_session(store, Peer("127.0.0.1", tls=False, loopback=True, can_start_tls=False))
    driver = Driver(no_tls)
    assert b"STLS" not in await driver.command("CAPA")
    assert await driver.command("STLS") == b"-ERR TLS is not available on this server\r\n"
    driver = Driver(new_session(store))
    assert await driver.command("UTF8") == b"+OK UTF-8 mode enabled\r\n"
    assert await driver.command("STLS") == (
        b"-ERR STLS is not allowed after UTF8 (RFC 6856 section 2.1)\r\n"
    )


# ---------------------------------------------------------------------------- AUTH


async def test_auth_plain_initial_response(store: SqlStore, account: Account) -> None:
    """RFC 5034 section 6 example, PLAIN with an initial response."""
    await transcript(
        new_session(store),
        f"""
        {GREETING}
        C: AUTH PLAIN {PLAIN}
        S: +OK Maildrop locked and ready: 0 messages (0 octets)
        """,
    )


async def test_auth_plain_with_challenge(store: SqlStore, account: Account) -> None:
    """RFC 5034: an empty challenge is ``+ `` and the response comes on its own line."""
    await transcript(
        new_session(store),
        f"""
        {GREETING}
        C: AUTH PLAIN
        S: + *
        C: {PLAIN}
        S: +OK Maildrop locked and ready: 0 messages (0 octets)
        """,
    )


async def test_auth_login(store: SqlStore, account: Account) -> None:
    await transcript(
        new_session(store),
        f"""
        {GREETING}
        C: AUTH LOGIN
        S: + VXNlcm5hbWU6
        C: {b64(ADDRESS)}
        S: + UGFzc3dvcmQ6
        C: {b64(PASSWORD)}
        S: +OK Maildrop locked and ready: 0 messages (0 octets)
        """,
    )


async def test_auth_scram_sha_256(store: SqlStore, account: Account) -> None:
    """SCRAM's server signature comes as a last challenge, answered empty (RFC 4422
    section 5: POP3 has no additional data with success)."""
    session = new_session(store)
    driver = Driver(session)
    client = client_mechanism("SCRAM-SHA-256", ADDRESS, PASSWORD)
    first = client.initial_response()
    assert first is not None
    reply = await driver.command(f"AUTH SCRAM-SHA-256 {b64(first)}")
    rounds = 0
    while reply.startswith(b"+ "):
        response = client.respond(base64.b64decode(reply[2:].strip()))
        reply = await driver.command(b64(response))
        rounds += 1
    client.finish()
    assert rounds == 2  # client-final, then the empty answer to the server signature
    assert reply == b"+OK Maildrop locked and ready: 0 messages (0 octets)\r\n"


async def test_auth_failures(store: SqlStore, account: Account) -> None:
    await transcript(
        new_session(store, max_failures=10),
        f"""
        {GREETING}
        C: AUTH
        S: +OK Supported SASL mechanisms follow
        S: SCRAM-SHA-256
        S: PLAIN
        S: LOGIN
        S: .
        C: AUTH CRAM-MD5
        S: -ERR Unsupported SASL mechanism CRAM-MD5
        C: AUTH PLAIN !!!
        S: -ERR The initial response is not valid base64
        C: AUTH PLAIN
        S: + *
        C: *
        S: -ERR Authentication cancelled
        C: AUTH LOGIN
        S: + VXNlcm5hbWU6
        C: not base64!
        S: -ERR The SASL response is not valid base64; authentication aborted
        C: AUTH PLAIN {PLAIN_WRONG}
        S: -ERR [AUTH] Authentication failed
        C: AUTH PLAIN {PLAIN_AS_OTHER}
        S: -ERR [AUTH] Acting as another user (authorization identity) is not supported
        C: AUTH PLAIN {b64("no nul bytes")}
        S: -ERR *
        C: NOOP
        S: -ERR NOOP is not valid before login
        C: AUTH PLAIN =
        S: -ERR *
        """,
    )


async def test_too_many_failures_close_the_connection(store: SqlStore, account: Account) -> None:
    driver = await transcript(
        new_session(store, max_failures=2),
        f"""
        {GREETING}
        C: USER {ADDRESS}
        S: +OK Send your password
        C: PASS wrong
        S: -ERR [AUTH] Invalid user name or password
        C: AUTH PLAIN {PLAIN_WRONG}
        S: -ERR [AUTH] Authentication failed (too many failures: closing the connection)
        """,
    )
    assert driver.closed


# ---------------------------------------------------------------------------- lock, delay


async def test_second_session_gets_in_use(store: SqlStore, account: Account) -> None:
    """RFC 2449 section 8.1.2: the maildrop is locked by the first session."""
    first = Driver(new_session(store))
    await first.login()
    second = Driver(new_session(store))
    await second.command(f"USER {ADDRESS}")
    assert await second.command(f"PASS {PASSWORD}") == (
        b"-ERR [IN-USE] The maildrop is in use by another POP3 session\r\n"
    )
    assert second.session.state.name == "AUTHORIZATION"
    await first.command("QUIT")
    await second.login()


async def test_dropped_connection_releases_the_lock(store: SqlStore, account: Account) -> None:
    first = Driver(new_session(store))
    await first.login()
    await first.session.close()
    await Driver(new_session(store)).login()


async def test_login_delay(store: SqlStore, account: Account) -> None:
    """RFC 2449 sections 6.5 and 8.1.1."""
    clock = Clock()
    pop3 = Pop3Config(login_delay=300)
    first = Driver(new_session(store, pop3=pop3, clock=clock))
    await first.login()
    await first.command("QUIT")
    clock.advance(100)
    second = Driver(new_session(store, pop3=pop3, clock=clock))
    await second.command(f"USER {ADDRESS}")
    assert await second.command(f"PASS {PASSWORD}") == (
        b"-ERR [LOGIN-DELAY] Logins are allowed every 300 seconds: try again in 201 seconds\r\n"
    )
    clock.advance(200)
    await second.login()


# ---------------------------------------------------------------------------- UTF8, LANG


async def test_lang(store: SqlStore, account: Account) -> None:
    """RFC 6856 section 3.3."""
    await transcript(
        new_session(store),
        f"""
        {GREETING}
        C: LANG
        S: +OK Language listing follows
        S: en English
        S: .
        C: LANG MUL
        S: -ERR Unsupported language; LANG lists the languages offered
        C: LANG en-US
        S: -ERR Unsupported language; LANG lists the languages offered
        C: LANG EN
        S: +OK en Language is now English
        C: LANG *
        S: +OK en Language is now English
        C: USER {ADDRESS}
        S: +OK Send your password
        C: PASS {PASSWORD}
        S: +OK Maildrop locked and ready: 0 messages (0 octets)
        C: LANG en
        S: +OK en Language is now English
        """,
    )


UTF8_MESSAGE = (
    "From: J\u00f6rg <j\u00f6rg@b\u00fccher.example>\r\nSubject: Gr\u00fc\u00dfe\r\n\r\nHallo\r\n"
).encode()


async def test_utf8_headers_need_utf8_mode(store: SqlStore, account: Account) -> None:
    """RFC 6856 section 2.1: no UTF-8 to a client that did not ask; -ERR [UTF8]."""
    legacy = b"Subject: caf\xe9\r\n\r\n8-bit legacy header\r\n"
    await deliver(store, account, UTF8_MESSAGE, legacy)
    driver = Driver(new_session(store))
    await driver.login()
    assert await driver.command("LIST 1") == f"+OK 1 {len(UTF8_MESSAGE)}\r\n".encode()
    refusal = b"-ERR [UTF8] Message 1 has UTF-8 header fields: send UTF8 before logging in\r\n"
    assert await driver.command("RETR 1") == refusal
    assert await driver.command("TOP 1 0") == refusal
    assert (await driver.command("RETR 2")).endswith(legacy + b".\r\n")
    await driver.command("QUIT")
    driver = Driver(new_session(store))
    assert await driver.command("UTF8") == b"+OK UTF-8 mode enabled\r\n"
    await driver.login("alice@example.org")
    assert await driver.command("RETR 1") == (
        f"+OK {len(UTF8_MESSAGE)} octets\r\n".encode() + UTF8_MESSAGE + b".\r\n"
    )


async def test_utf8_user_name(store: SqlStore) -> None:
    """RFC 6856 section 2.2: UTF-8 user names, SASLprep'd (so NFC and NFD match)."""
    await store.create_account("j\u00f6rg@example.org", hash_password("p\u00e4ss"), None)
    driver = Driver(new_session(store))
    await driver.command("USER jo\u0308rg@example.org")
    assert (await driver.command("PASS p\u00e4ss")).startswith(b"+OK")


# ---------------------------------------------------------------------------- limits


async def test_line_too_long(store: SqlStore, account: Account) -> None:
    driver = Driver(new_session(store, max_line=255))
    await driver.login()
    reply = await driver.send(b"NOOP " + b"x" * 300 + b"\r\nSTAT\r\n")
    assert reply == b"-ERR Line too long (the limit is 255 octets)\r\n+OK 0 0\r\n"
    # Exactly 255 octets with CR LF is accepted (RFC 2449 section 4).
    assert await driver.send(b"LIST " + b"1" * 248 + b"\r\n") == (
        b"-ERR No such message, only 0 messages in maildrop\r\n"
    )


async def test_pipelining(store: SqlStore, account: Account) -> None:
    """RFC 2449 section 6.6: commands sent together are answered in order."""
    await rfc_maildrop(store, account)
    driver = Driver(new_session(store))
    reply = await driver.send(
        f"USER {ADDRESS}\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST 2\r\nDELE 1\r\nSTAT\r\n".encode()
    )
    assert reply == (
        b"+OK Send your password\r\n"
        b"+OK Maildrop locked and ready: 2 messages (320 octets)\r\n"
        b"+OK 2 320\r\n+OK 2 200\r\n+OK Message 1 deleted\r\n+OK 1 200\r\n"
    )
