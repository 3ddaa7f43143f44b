"""Hostile clients: every input tried, in every protocol, with the outcome expected.

The table below is the specification (DESIGN.md, "Bad input and limits"): a malformed or
abusive command gets a protocol error naming what was wrong (``BAD``/``NO``, ``-ERR``,
``5xx``/``4xx``) and the session goes on, unless the input leaves no sane way to resync
(then the server says goodbye and closes). Nothing may crash the server, stall other
sessions or damage the store: after the whole table, every protocol still serves a normal
session and ``mailkeep check`` finds the store consistent.

Columns: protocol, the state the session is brought to first, the octets sent, a regular
expression the server's (final) reply line must match, and what must happen next:
``goes on`` (a NOOP-like probe is answered normally) or ``closed``.

One server (a subprocess) serves the whole table; limits are the defaults except
``max_message`` (1 MiB, so that "too big" is cheap to send).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .support import (
    PASSWORD,
    PROTOCOLS,
    Raw,
    ServerProcess,
    alive,
    greeted,
    make_data,
    run_cli,
    spawn_server,
)

pytestmark = pytest.mark.timeout(120)

USER = "alice@example.org"
OTHER = "bob@example.org"
MAX_MESSAGE = 1024 * 1024
MAX_LINE = 64 * 1024
IGNORED = ""
"""An empty IMAP line is not a command; like Dovecot, the server ignores it."""
GOES_ON = "goes on"
CLOSED = "closed"
DISCARDS = "closed, or its octets discarded"
"""For a refused non-synchronising literal or BDAT chunk the server cannot know where
the next command starts: RFC 7888 section 4 and RFC 3030 section 2 let it either read
and discard the announced octets or close the connection. Either way nothing is kept."""


@dataclass(frozen=True)
class Case:
    protocol: str
    state: str
    """imap: greeted | auth | selected; pop3: greeted | auth; smtp/lmtp: greeted | helo."""
    send: bytes
    expect: str
    """Regular expression the final reply line must match; ``IGNORED``: no reply at all
    (the probe's answer comes first)."""
    then: str = GOES_ON
    what: str = ""

    @property
    def id(self) -> str:
        return f"{self.protocol}-{self.state}-{self.what}"


def _c(protocol: str, state: str, what: str, send: bytes, expect: str, then: str = GOES_ON) -> Case:
    return Case(protocol, state, send, expect, then, what)


BIG = b"x" * (MAX_LINE + 10)
NESTED = b"(" * 5000 + b")" * 5000
TWO_GB = b"2147483648"
HUGE_NUMBER = b"9" * 40

# fmt: off
CASES: list[Case] = [
    # ---------------------------------------------------------------- IMAP, before login
    _c("imap", "greeted", "empty line", b"\r\n", IGNORED),
    _c("imap", "greeted", "no command", b"t\r\n", r"^(t|\*) BAD"),
    _c("imap", "greeted", "quoted tag", b'"t" NOOP\r\n', r"^\* BAD"),
    _c("imap", "greeted", "unknown command", b"t FROBNICATE\r\n", r"^t BAD"),
    _c("imap", "greeted", "binary garbage", b"\x00\xff\xfe\x80 \x01\r\n", r"BAD"),
    _c("imap", "greeted", "NUL in tag", b"t\x00 NOOP\r\n", r"BAD"),
    _c("imap", "greeted", "bad tag chars", b"t* NOOP\r\n", r"BAD"),
    _c("imap", "greeted", "line over max_line", b"t NOOP " + BIG + b"\r\n", r"BAD"),
    _c("imap", "greeted", "2 GB literal before login", b"t LOGIN {" + TWO_GB + b"}\r\n",
       r"^t (BAD|NO)"),
    _c("imap", "greeted", "2 GB LITERAL+ before login", b"t LOGIN {" + TWO_GB + b"+}\r\n",
       r"^(t (BAD|NO)|\* BYE)", DISCARDS),
    _c("imap", "greeted", "40-digit literal", b"t LOGIN {" + HUGE_NUMBER + b"}\r\n", r"BAD"),
    _c("imap", "greeted", "literal over unauth limit", b"t LOGIN {9000}\r\n", r"^t (BAD|NO)"),
    _c("imap", "greeted", "command needing login", b"t SELECT INBOX\r\n", r"^t BAD"),
    _c("imap", "greeted", "LOGIN wrong password", b"t LOGIN alice@example.org wrong\r\n",
       r"^t NO \[AUTHENTICATIONFAILED\]"),
    _c("imap", "greeted", "LOGIN unknown user", b"t LOGIN nobody@example.org wrong\r\n",
       r"^t NO \[AUTHENTICATIONFAILED\]"),
    _c("imap", "greeted", "LOGIN NUL in password", b"t LOGIN alice@example.org \"a\x00b\"\r\n",
       r"^t (BAD|NO)"),
    _c("imap", "greeted", "LOGIN missing arg", b"t LOGIN alice@example.org\r\n", r"^t BAD"),
    _c("imap", "greeted", "AUTHENTICATE bad base64", b"t AUTHENTICATE PLAIN !!!!\r\n",
       r"^t (BAD|NO)"),
    _c("imap", "greeted", "AUTHENTICATE cancelled", b"t AUTHENTICATE PLAIN\r\n*\r\n",
       r"^t (BAD|NO)"),
    _c("imap", "greeted", "AUTHENTICATE unknown mech", b"t AUTHENTICATE X-EVIL\r\n",
       r"^t (BAD|NO)"),
    _c("imap", "greeted", "ID with 5000 params",
       b"t ID (" + b" ".join(b'"k%d" "v"' % i for i in range(5000)) + b")\r\n",
       r"^t (OK|BAD|NO)"),
    _c("imap", "greeted", "deep parentheses", b"t ID " + NESTED + b"\r\n", r"^t BAD"),
    _c("imap", "greeted", "bare CR", b"t NOOP\rt2 NOOP\r\n", r"BAD|^t OK"),
    _c("imap", "greeted", "DONE outside IDLE", b"DONE\r\n", r"BAD"),
    # ---------------------------------------------------------------- IMAP, logged in
    _c("imap", "auth", "2 GB APPEND literal", b"t APPEND INBOX {" + TWO_GB + b"}\r\n",
       r"^t NO \[TOOBIG\]"),
    _c("imap", "auth", "2 GB APPEND LITERAL+", b"t APPEND INBOX {" + TWO_GB + b"+}\r\n",
       r"^(t (BAD|NO)|\* BYE)", DISCARDS),
    _c("imap", "auth", "APPEND over max_message", b"t APPEND INBOX {%d}\r\n" % (MAX_MESSAGE + 1),
       r"^t NO \[TOOBIG\]"),
    _c("imap", "auth", "APPEND to ../", b"t APPEND ../bob {1}\r\nx\r\n", r"^t NO"),
    _c("imap", "auth", "SELECT non-UTF-8", b"t SELECT \"\xff\xfe\"\r\n", r"^t (NO|BAD)"),
    _c("imap", "auth", "SELECT bad mUTF-7", b"t SELECT &AGEAZQ\r\n", r"^t (NO|BAD)"),
    _c("imap", "auth", "CREATE 10k name", b"t CREATE " + b"a" * 10000 + b"\r\n", r"^t (NO|BAD)"),
    _c("imap", "auth", "CREATE 300 levels", b"t CREATE " + b"a/" * 300 + b"a\r\n",
       r"^t (NO|OK)"),
    _c("imap", "auth", "CREATE with NUL", b"t CREATE \"a\x00b\"\r\n", r"^t (NO|BAD)"),
    _c("imap", "auth", "CREATE with CR in literal", b"t CREATE {3}\r\na\rb\r\n", r"^t (NO|BAD)"),
    _c("imap", "auth", "LIST pattern %%%%", b"t LIST \"\" \"" + b"%*" * 2000 + b"\"\r\n",
       r"^t (OK|BAD|NO)"),
    _c("imap", "auth", "RENAME INBOX to ../x", b"t RENAME INBOX ../x\r\n", r"^t (NO|BAD)"),
    _c("imap", "auth", "DELETE INBOX", b"t DELETE INBOX\r\n", r"^t NO"),
    _c("imap", "auth", "FETCH without SELECT", b"t FETCH 1 FLAGS\r\n", r"^t BAD"),
    _c("imap", "auth", "STATUS bad item", b"t STATUS INBOX (BOGUS)\r\n", r"^t BAD"),
    _c("imap", "auth", "IDLE then garbage", b"t IDLE\r\nNOT-DONE\r\n", r"^t (BAD|OK)"),
    _c("imap", "auth", "ENABLE 5000 names", b"t ENABLE " + b"X " * 5000 + b"X\r\n",
       r"^t (OK|BAD)"),
    _c("imap", "selected", "FETCH deep parens", b"t FETCH 1 " + NESTED + b"\r\n", r"^t BAD"),
    _c("imap", "selected", "SEARCH deep parens", b"t SEARCH " + NESTED + b"\r\n", r"^t BAD"),
    _c("imap", "selected", "SEARCH 5000 NOTs", b"t SEARCH " + b"NOT " * 5000 + b"ALL\r\n",
       r"^t (OK|BAD|NO)"),
    _c("imap", "selected", "SEARCH 5000 ORs", b"t SEARCH " + b"OR ALL " * 5000 + b"ALL\r\n",
       r"^t (OK|BAD|NO)"),
    _c("imap", "selected", "seq 2^32", b"t FETCH 4294967296 FLAGS\r\n", r"^t BAD"),
    _c("imap", "selected", "seq 0", b"t FETCH 0 FLAGS\r\n", r"^t BAD"),
    _c("imap", "selected", "UID range 1:4294967295", b"t UID FETCH 1:4294967295 FLAGS\r\n",
       r"^t OK"),
    _c("imap", "selected", "20k-item sequence set",
       b"t FETCH " + b",".join(b"%d" % i for i in range(1, 20001)) + b" FLAGS\r\n",
       r"^t (OK|BAD|NO)"),
    _c("imap", "selected", "section 1.1.1... x2000",
       b"t FETCH 1 BODY.PEEK[" + b"1." * 2000 + b"1]\r\n", r"^t (OK|BAD|NO)"),
    _c("imap", "selected", "partial 2^32", b"t FETCH 1 BODY.PEEK[]<4294967295.4294967295>\r\n",
       r"^t (OK|BAD)"),
    _c("imap", "selected", "STORE 5000 keywords",
       b"t STORE 1 +FLAGS (" + b" ".join(b"k%d" % i for i in range(5000)) + b")\r\n",
       r"^t (OK|NO|BAD)"),
    _c("imap", "selected", "STORE \\Recent", b"t STORE 1 +FLAGS (\\Recent)\r\n", r"^t (BAD|NO|OK)"),
    _c("imap", "selected", "COPY to other user", b"t COPY 1 \"../bob@example.org/INBOX\"\r\n",
       r"^t NO"),
    _c("imap", "selected", "search charset bogus", b"t SEARCH CHARSET X-EVIL TEXT a\r\n",
       r"^t NO \[BADCHARSET"),
    # ---------------------------------------------------------------- POP3
    _c("pop3", "greeted", "empty line", b"\r\n", r"^-ERR"),
    _c("pop3", "greeted", "unknown command", b"FROB\r\n", r"^-ERR"),
    _c("pop3", "greeted", "binary garbage", b"\x00\xff\xfe\x80\r\n", r"^-ERR"),
    _c("pop3", "greeted", "line over max_line", BIG + b"\r\n", r"^-ERR"),
    _c("pop3", "greeted", "PASS before USER", b"PASS x\r\n", r"^-ERR"),
    _c("pop3", "greeted", "STAT before login", b"STAT\r\n", r"^-ERR"),
    _c("pop3", "greeted", "USER 10k name", b"USER " + b"a" * 10000 + b"\r\n", r"^(\+OK|-ERR)"),
    _c("pop3", "greeted", "wrong password", b"USER alice@example.org\r\nPASS wrong\r\n",
       r"^-ERR \[AUTH\]"),
    _c("pop3", "greeted", "unknown user", b"USER nobody@example.org\r\nPASS wrong\r\n",
       r"^-ERR \[AUTH\]"),
    _c("pop3", "greeted", "AUTH unknown mech", b"AUTH X-EVIL\r\n", r"^-ERR"),
    _c("pop3", "greeted", "AUTH PLAIN bad base64", b"AUTH PLAIN !!!!\r\n", r"^-ERR"),
    _c("pop3", "greeted", "AUTH cancelled", b"AUTH PLAIN\r\n*\r\n", r"^-ERR"),
    _c("pop3", "greeted", "APOP unsupported", b"APOP alice@example.org abc\r\n", r"^-ERR"),
    _c("pop3", "auth", "RETR 0", b"RETR 0\r\n", r"^-ERR"),
    _c("pop3", "auth", "RETR -1", b"RETR -1\r\n", r"^-ERR"),
    _c("pop3", "auth", "RETR 40 digits", b"RETR " + HUGE_NUMBER + b"\r\n", r"^-ERR"),
    _c("pop3", "auth", "TOP negative lines", b"TOP 1 -1\r\n", r"^-ERR"),
    _c("pop3", "auth", "TOP 40-digit lines", b"TOP 1 " + HUGE_NUMBER + b"\r\n", r"^\+OK|^-ERR"),
    _c("pop3", "auth", "LIST two args", b"LIST 1 2\r\n", r"^-ERR"),
    _c("pop3", "auth", "DELE twice", b"DELE 1\r\nDELE 1\r\n", r"^-ERR"),
    _c("pop3", "auth", "USER again", b"USER bob@example.org\r\n", r"^-ERR"),
    _c("pop3", "auth", "line over max_line", BIG + b"\r\n", r"^-ERR"),
    # ---------------------------------------------------------------- SMTP
    _c("smtp", "greeted", "empty line", b"\r\n", r"^5\d\d "),
    _c("smtp", "greeted", "unknown command", b"FROB\r\n", r"^50[02] "),
    _c("smtp", "greeted", "binary garbage", b"\x00\xff\xfe\x80\r\n", r"^50\d "),
    _c("smtp", "greeted", "line over max_line", BIG + b"\r\n", r"^500 "),
    _c("smtp", "greeted", "LHLO on SMTP", b"LHLO x\r\n", r"^500 "),
    _c("smtp", "greeted", "MAIL before EHLO", b"MAIL FROM:<a@b.example>\r\n", r"^503 "),
    _c("smtp", "helo", "RCPT before MAIL", b"RCPT TO:<alice@example.org>\r\n", r"^503 "),
    _c("smtp", "helo", "DATA before RCPT", b"DATA\r\n", r"^503 "),
    _c("smtp", "helo", "MAIL without <>", b"MAIL FROM:a@b\r\n", r"^(250|501) "),
    _c("smtp", "helo", "MAIL bad syntax", b"MAIL FROM:<a@b\r\n", r"^501 "),
    _c("smtp", "helo", "MAIL SIZE 40 digits",
       b"MAIL FROM:<a@b.example> SIZE=" + HUGE_NUMBER + b"\r\n", r"^(552|501) "),
    _c("smtp", "helo", "MAIL SIZE over limit", b"MAIL FROM:<a@b.example> SIZE=%d\r\n"
       % (MAX_MESSAGE + 1), r"^552 "),
    _c("smtp", "helo", "MAIL unknown param", b"MAIL FROM:<a@b.example> X-EVIL=1\r\n", r"^55[15] "),
    _c("smtp", "helo", "relay attempt",
       b"MAIL FROM:<a@b.example>\r\nRCPT TO:<x@elsewhere.example>\r\n", r"^550 "),
    _c("smtp", "helo", "RCPT path traversal",
       b"MAIL FROM:<a@b.example>\r\nRCPT TO:<../../etc/passwd@example.org>\r\n", r"^5[05]\d "),
    _c("smtp", "helo", "RCPT source route", b"MAIL FROM:<a@b.example>\r\n"
       b"RCPT TO:<@evil.example:alice@example.org>\r\n", r"^(250|5\d\d) "),
    _c("smtp", "helo", "RCPT percent hack", b"MAIL FROM:<a@b.example>\r\n"
       b"RCPT TO:<x%elsewhere.example@example.org>\r\n", r"^550 "),
    _c("smtp", "helo", "1000 RCPTs", b"MAIL FROM:<a@b.example>\r\n"
       + b"RCPT TO:<alice@example.org>\r\n" * 1000, r"^(250|452) "),
    _c("smtp", "helo", "AUTH on MX port", b"AUTH PLAIN AGFsaWNlAHg=\r\n", r"^50[23] "),
    _c("smtp", "helo", "VRFY", b"VRFY alice\r\n", r"^(252|502|550) "),
    _c("smtp", "helo", "EXPN", b"EXPN staff\r\n", r"^(252|502|550) "),
    _c("smtp", "helo", "BDAT 2 GB", b"MAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.org>\r\n"
       b"BDAT " + TWO_GB + b"\r\n", r"^(5\d\d|\d\d\d .*)", DISCARDS),
    _c("smtp", "helo", "DATA over max_message", b"MAIL FROM:<a@b.example>\r\n"
       b"RCPT TO:<alice@example.org>\r\nDATA\r\n" + (b"y" * 998 + b"\r\n") * 1100 + b".\r\n",
       r"^552 "),
    _c("smtp", "helo", "DATA with 100k-octet line", b"MAIL FROM:<a@b.example>\r\n"
       b"RCPT TO:<alice@example.org>\r\nDATA\r\n" + BIG * 2 + b"\r\n.\r\n", r"^(250|5\d\d) "),
    _c("smtp", "helo", "STARTTLS twice args", b"STARTTLS now\r\n", r"^501 "),
    # ---------------------------------------------------------------- LMTP
    _c("lmtp", "greeted", "EHLO on LMTP", b"EHLO x\r\n", r"^500 "),
    _c("lmtp", "greeted", "empty line", b"\r\n", r"^5\d\d "),
    _c("lmtp", "greeted", "line over max_line", BIG + b"\r\n", r"^500 "),
    _c("lmtp", "helo", "unknown user",
       b"MAIL FROM:<a@b.example>\r\nRCPT TO:<nobody@example.org>\r\n", r"^550 "),
    _c("lmtp", "helo", "DATA before RCPT", b"MAIL FROM:<a@b.example>\r\nDATA\r\n", r"^(503|554) "),
    _c("lmtp", "helo", "MAIL SIZE over limit", b"MAIL FROM:<a@b.example> SIZE=%d\r\n"
       % (MAX_MESSAGE + 1), r"^552 "),
    _c("lmtp", "helo", "DATA over max_message", b"MAIL FROM:<a@b.example>\r\n"
       b"RCPT TO:<alice@example.org>\r\nDATA\r\n" + (b"y" * 998 + b"\r\n") * 1100 + b".\r\n",
       r"^552 "),
    _c("lmtp", "helo", "NUL in DATA", b"MAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.org>\r\n"
       b"DATA\r\n" + b"Subject: nul\r\n\r\na\x00b\r\n.\r\n", r"^(250|554) "),
]
# fmt: on


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("hostile") / "data"
    asyncio.run(
        make_data(
            data,
            (USER, OTHER),
            limits={"max_message": MAX_MESSAGE, "max_line": MAX_LINE},
            top={"domains": ["example.org"]},
        )
    )
    server = spawn_server(data, PROTOCOLS)
    try:
        asyncio.run(_seed(server))
        yield server
    finally:
        server.stop_now()


async def _seed(server: ServerProcess) -> None:
    """Two messages in alice's INBOX, so that FETCH, RETR and DELE have something."""
    client = await greeted(server.ports["lmtp"], "lmtp")
    await client.send(b"LHLO seed.test\r\n")
    await client.until(b"250 ")
    for n in range(2):
        await client.send(b"MAIL FROM:<seed@seed.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
        await client.until(b"354")
        await client.send(b"Subject: seed %d\r\n\r\nbody\r\n.\r\n" % n)
        assert (await client.line()).startswith(b"250")
    await client.close()


PROBE = {"imap": b"p NOOP\r\n", "pop3": b"NOOP\r\n", "smtp": b"NOOP\r\n", "lmtp": b"NOOP\r\n"}
PROBE_OK = {
    "imap": re.compile(rb"^p OK"),
    "pop3": re.compile(rb"^(\+OK|-ERR)"),  # NOOP before login is -ERR: still an answer
    "smtp": re.compile(rb"^250 "),
    "lmtp": re.compile(rb"^250 "),
}


async def prepare(server: ServerProcess, case: Case) -> Raw:
    client = await greeted(server.ports[case.protocol], case.protocol)
    match case.protocol, case.state:
        case "imap", "auth" | "selected":
            await client.send(f'a LOGIN {USER} "{PASSWORD}"\r\n'.encode())
            assert (await client.until(b"a "))[-1].startswith(b"a OK")
            if case.state == "selected":
                await client.send(b"b SELECT INBOX\r\n")
                assert (await client.until(b"b "))[-1].startswith(b"b OK")
        case "pop3", "auth":
            await client.send(f"USER {USER}\r\nPASS {PASSWORD}\r\n".encode())
            await client.line()
            assert (await client.line()).startswith(b"+OK")
        case "smtp" | "lmtp", "helo":
            verb = b"EHLO" if case.protocol == "smtp" else b"LHLO"
            await client.send(verb + b" client.test\r\n")
            await client.until(b"250 ")
    return client


def is_final(protocol: str, line: bytes) -> bool:
    """Whether ``line`` ends the server's answer to one command."""
    if protocol == "imap":
        return not line.startswith(b"* ") or line.startswith((b"* BAD", b"* BYE"))
    if protocol == "pop3":
        return line.startswith((b"+OK", b"-ERR"))
    return len(line) >= 4 and line[3:4] == b" "


async def final_replies(client: Raw, case: Case) -> list[bytes]:
    """Every reply line until the one matching ``case.expect`` (or the connection ends)."""
    pattern = re.compile(case.expect.encode(), re.DOTALL)
    seen: list[bytes] = []
    while True:
        line = await client.line(wait=30)
        if not line:
            raise AssertionError(f"connection closed; replies were {seen!r}")
        seen.append(line)
        if is_final(case.protocol, line) and pattern.search(line):
            return seen
        if len(seen) > 20000:
            raise AssertionError(f"no reply matched {case.expect!r}: {seen[-5:]!r}")


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
async def test_hostile_input(hostile_server: ServerProcess, case: Case) -> None:
    client = await prepare(hostile_server, case)
    try:
        await client.send(case.send)
        if case.expect == IGNORED:
            await client.send(PROBE[case.protocol])
            answer = await client.line()
            assert PROBE_OK[case.protocol].search(answer), answer
            return
        replies = await final_replies(client, case)
        final = replies[-1]
        assert b"SERVERBUG" not in final, replies
        if case.then == DISCARDS:
            # Whatever we send now is taken as the announced octets; the server must
            # take them without keeping them (its memory is checked in test_limits).
            await client.send(b"z" * 65536)
        elif case.then == CLOSED:
            assert await client.closed(wait=10), f"still open after {final!r}"
        else:
            await client.send(PROBE[case.protocol])
            while True:
                line = await client.line(wait=30)
                assert line, f"closed after {final!r}; the session should go on"
                if is_final(case.protocol, line) and PROBE_OK[case.protocol].search(line):
                    break
    finally:
        await client.close()
    assert hostile_server.alive, hostile_server.log_text()[-3000:]


def test_after_the_table_everything_works(hostile_server: ServerProcess) -> None:
    """Whatever ran before (in any order), the server serves normal sessions, logged no
    crash, and the store is consistent."""
    asyncio.run(alive(hostile_server, USER))
    log = hostile_server.log_text()
    assert "Traceback" not in log, log[-5000:]
    status, output = asyncio.run(run_cli(hostile_server.data, "check"))
    assert status == 0, output


def test_table_covers_every_protocol() -> None:
    assert {c.protocol for c in CASES} == set(PROTOCOLS)
    assert len({c.id for c in CASES}) == len(CASES), "case names must be unique"


def data_path(server: ServerProcess) -> Path:
    return server.data
