"""Resource limits in every protocol (DESIGN.md, "Bad input and limits").

Each abuse is tried against each protocol it applies to, on a real server process:
connection limits per address and in total, oversized literals and messages streamed far
past the limit, MIME bombs (a million parts, 100,000 nested multiparts), 10,000 pipelined
commands from a client that does not read, slowloris trickles and silent clients. Where
memory is the point, the server's peak resident memory (VmHWM) is read before and after:
it must not grow with the size of the abuse. While an abuse runs, a second client's
session must go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import fields
from pathlib import Path

import pytest

from mailkeep.config import DEFAULT_CONFIG_TOML, AuthConfig, LimitsConfig

from .conftest import USERS, StartServer
from .support import Raw, ServerProcess, alive, greeted, imap_login, pop3_login

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

USER = USERS[0]
MB = 1024 * 1024
SMALL_MESSAGE = 1 * MB
MEMORY_SLACK = 40 * MB
"""Peak RSS may grow this much during an abuse: buffers, one message, allocator slack;
far less than the 100 MB+ each abuse pushes at the server."""


def peak(server: ServerProcess) -> int:
    """The server's peak resident memory so far (VmHWM), in octets."""
    for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@contextlib.asynccontextmanager
async def bystander(server: ServerProcess) -> AsyncIterator[list[float]]:
    """Another user's IMAP session doing NOOPs throughout; yields the answer times.
    Leaving the block checks that it was answered all along."""
    client = await imap_login(server.ports["imap"], USERS[1])
    times: list[float] = []
    stop = asyncio.Event()

    async def loop() -> None:
        n = 0
        while not stop.is_set():
            started = time.monotonic()
            await client.send(b"n%d NOOP\r\n" % n)
            reply = await client.until(b"n%d " % n, wait=30)
            assert reply[-1].startswith(b"n%d OK" % n), reply
            times.append(time.monotonic() - started)
            n += 1
            await asyncio.sleep(0.2)

    task = asyncio.create_task(loop())
    try:
        yield times
    finally:
        stop.set()
        await task
        await client.close()
    assert times, "the other session was never answered"


async def warm(server: ServerProcess) -> int:
    """Exercise every protocol once so that lazily imported code is in the baseline."""
    await alive(server, USER)
    return peak(server)


# ---------------------------------------------------------------- the defaults


def documented_defaults(section: str) -> dict[str, str]:
    """``# key = value`` lines of one section of the commented default config."""
    text = DEFAULT_CONFIG_TOML.split(f"[{section}]\n", 1)[1].split("\n[", 1)[0]
    found = {}
    for line in text.splitlines():
        match = re.match(r"# (\w+) = (\S+)", line)
        if match:
            found[match[1]] = match[2]
    return found


@pytest.mark.parametrize(("section", "cls"), [("limits", LimitsConfig), ("auth", AuthConfig)])
def test_every_limit_is_documented_with_its_default(section: str, cls: type[object]) -> None:
    documented = documented_defaults(section)
    for item in fields(cls):  # type: ignore[arg-type]
        assert item.name in documented, f"[{section}] {item.name} is not in the default config"
        value = documented[item.name]
        expected = item.default
        if isinstance(expected, bool):
            shown = str(expected).lower()
        elif isinstance(expected, str):
            shown = f'"{expected}"'
        else:
            shown = str(expected)
        assert value == shown, f"[{section}] {item.name}: documented {value}, default {shown}"


def test_default_timeouts_follow_the_rfcs() -> None:
    limits = LimitsConfig()
    assert limits.idle_timeout >= 30 * 60  # RFC 9051 5.4: at least 30 minutes
    assert limits.login_timeout < limits.idle_timeout  # shorter before login
    assert limits.pop3_timeout >= 10 * 60  # RFC 1939 3: at least 10 minutes
    assert limits.smtp_timeout >= 5 * 60  # RFC 5321 4.5.3.2.7: server timeout 5 minutes
    assert limits.max_literal_unauthenticated < limits.max_message


# ---------------------------------------------------------------- connections


REFUSAL = {
    "imap": rb"^\* BYE .*too many connections",
    "pop3": rb"^-ERR \[SYS/TEMP\] .*too many connections",
    "smtp": rb"^421 .*too many connections",
    "lmtp": rb"^421 .*too many connections",
}


async def refused(server: ServerProcess, protocol: str, source: str = "127.0.0.1") -> bytes:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.ports[protocol], local_addr=(source, 0)
    )
    client = Raw(reader, writer)
    try:
        line = await client.line()
        assert await client.closed(wait=10), f"{protocol}: refused but not closed"
        return line
    finally:
        await client.close()


async def admitted(server: ServerProcess, protocol: str, source: str = "127.0.0.1") -> Raw:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.ports[protocol], local_addr=(source, 0)
    )
    client = Raw(reader, writer)
    line = await client.line()
    assert line.startswith((b"* OK", b"+OK", b"220 ")), line
    return client


async def test_connections_per_address(launch: StartServer) -> None:
    server = await launch(limits={"connections_per_address": 3, "connections_total": 100})
    held = [await admitted(server, p) for p in ("imap", "pop3", "smtp")]
    for protocol, pattern in REFUSAL.items():
        line = await refused(server, protocol)
        assert re.search(pattern, line), (protocol, line)
        assert b"your address" in line
    # Another client address is not affected (127.0.0.2 is loopback too).
    other = await admitted(server, "lmtp", source="127.0.0.2")
    await other.close()
    # A slot freed is a slot usable again.
    await held.pop().close()
    await asyncio.sleep(0.3)
    again = await admitted(server, "imap")
    for client in [*held, again]:
        await client.close()


async def test_connections_in_total(launch: StartServer) -> None:
    server = await launch(limits={"connections_per_address": 100, "connections_total": 3})
    held = [await admitted(server, "imap", source=f"127.0.0.{n}") for n in (2, 3, 4)]
    for protocol, pattern in REFUSAL.items():
        line = await refused(server, protocol, source="127.0.0.5")
        assert re.search(pattern, line), (protocol, line)
        assert b"to this server" in line
    for client in held:
        await client.close()
    await asyncio.sleep(0.3)
    await alive(server, USER)


# ---------------------------------------------------------------- oversized input


async def blast(client: Raw, total: int) -> None:
    """Send ``total`` octets of filler (no line ends) as fast as the server takes them."""
    chunk = b"x" * MB
    sent = 0
    while sent < total:
        client.writer.write(chunk)
        await client.writer.drain()
        sent += len(chunk)


OVERSIZE = 120 * MB


async def imap_literal_plus(server: ServerProcess) -> bytes:
    client = await imap_login(server.ports["imap"], USER)
    await client.send(b"t APPEND INBOX {%d+}\r\n" % (2 * 1024**3))
    reply = await client.line()
    await blast(client, OVERSIZE)
    await client.close()
    return reply


async def imap_literal_plus_before_login(server: ServerProcess) -> bytes:
    client = await greeted(server.ports["imap"], "imap")
    await client.send(b"t LOGIN {%d+}\r\n" % (2 * 1024**3))
    reply = await client.line()
    with contextlib.suppress(ConnectionError):
        await blast(client, OVERSIZE)
    await client.close()
    return reply


async def smtp_data(server: ServerProcess, protocol: str = "smtp") -> bytes:
    client = await greeted(server.ports[protocol], protocol)
    verb = b"EHLO" if protocol == "smtp" else b"LHLO"
    await client.send(verb + b" big.test\r\nMAIL FROM:<a@big.test>\r\n")
    await client.until(b"250 ")
    await client.until(b"250 ")
    await client.send(f"RCPT TO:<{USER}>\r\nDATA\r\n".encode())
    await client.until(b"250 ")
    await client.until(b"354 ")
    line = b"y" * 998 + b"\r\n"
    block = line * 1000
    for _ in range(OVERSIZE // len(block)):
        client.writer.write(block)
        await client.writer.drain()
    await client.send(b".\r\n")
    reply = await client.line(wait=60)
    await client.close()
    return reply


async def smtp_bdat(server: ServerProcess) -> bytes:
    client = await greeted(server.ports["smtp"], "smtp")
    await client.send(b"EHLO big.test\r\nMAIL FROM:<a@big.test>\r\n")
    await client.until(b"250 ")
    await client.until(b"250 ")
    await client.send(f"RCPT TO:<{USER}>\r\n".encode())
    await client.until(b"250 ")
    await client.send(b"BDAT %d LAST\r\n" % OVERSIZE)
    with contextlib.suppress(ConnectionError):
        await blast(client, OVERSIZE)
    reply = await client.line(wait=60)
    await client.close()
    return reply


async def lmtp_data(server: ServerProcess) -> bytes:
    return await smtp_data(server, "lmtp")


OVERSIZED: dict[str, tuple[Callable[[ServerProcess], Awaitable[bytes]], bytes]] = {
    "imap-APPEND-LITERAL+-2GB": (imap_literal_plus, rb"^t NO \[TOOBIG\]|^t BAD|^\* BYE"),
    "imap-LOGIN-LITERAL+-before-login": (imap_literal_plus_before_login, rb"^t BAD|^\* BYE"),
    "smtp-DATA-120MB": (smtp_data, rb"^552 "),
    "smtp-BDAT-120MB": (smtp_bdat, rb"^552 |^5\d\d "),
    "lmtp-DATA-120MB": (lmtp_data, rb"^552 "),
}


@pytest.mark.parametrize("abuse", sorted(OVERSIZED))
async def test_oversized_input_is_refused_in_bounded_memory(
    launch: StartServer, abuse: str
) -> None:
    server = await launch(limits={"max_message": SMALL_MESSAGE})
    before = await warm(server)
    send, expected = OVERSIZED[abuse]
    async with bystander(server):
        reply = await send(server)
    assert re.search(expected, reply), reply
    grown = peak(server) - before
    assert grown < MEMORY_SLACK, f"peak RSS grew by {grown / MB:.0f} MB"
    await alive(server, USER)


# ---------------------------------------------------------------- MIME bombs


def million_parts() -> bytes:
    part = b"--b\r\n\r\n"
    return (
        b"Subject: a million parts\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + part * 1_000_000 + b"--b--\r\n"
    )


def deeply_nested(depth: int = 100_000) -> bytes:
    head = b"Subject: nested %d deep\r\nMIME-Version: 1.0\r\n" % depth
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%dx"\r\n\r\n--b%dx\r\n' % (n, n)
        for n in range(depth)
    )
    closing = b"".join(b"\r\n--b%dx--\r\n" % n for n in reversed(range(depth)))
    return head + opening + b"Content-Type: text/plain\r\n\r\ncore\r\n" + closing


async def lmtp_deliver(server: ServerProcess, raw: bytes) -> bytes:
    client = await greeted(server.ports["lmtp"], "lmtp")
    await client.send(b"LHLO bomb.test\r\n")
    await client.until(b"250 ")
    await client.send(f"MAIL FROM:<a@bomb.test>\r\nRCPT TO:<{USER}>\r\nDATA\r\n".encode())
    await client.until(b"354 ")
    await client.send(raw + b".\r\n")
    reply = await client.line(wait=120)
    await client.close()
    return reply


async def imap_append(server: ServerProcess, raw: bytes) -> bytes:
    client = await imap_login(server.ports["imap"], USER)
    await client.send(b"t APPEND INBOX {%d+}\r\n" % len(raw) + raw + b"\r\n")
    reply = (await client.until(b"t ", wait=120))[-1]
    await client.close()
    return reply


BOMBS = {"million-parts": million_parts, "nested-100000": deeply_nested}
CARRIERS = {"lmtp": lmtp_deliver, "imap-APPEND": imap_append}


@pytest.mark.parametrize("carrier", sorted(CARRIERS))
@pytest.mark.parametrize("bomb", sorted(BOMBS))
async def test_mime_bombs(launch: StartServer, bomb: str, carrier: str) -> None:
    """Stored (mail is kept, leniently) or refused, never a crash; the structure
    computed at delivery is capped (max_mime_parts, max_mime_depth), so FETCH
    BODYSTRUCTURE answers quickly; other sessions go on meanwhile."""
    raw = BOMBS[bomb]()
    server = await launch(limits={"max_message": 2 * len(raw)})
    before = await warm(server)
    async with bystander(server) as times:
        reply = await CARRIERS[carrier](server, raw)
    assert re.search(rb"^(250|t OK)|^(5\d\d|t NO)", reply), reply
    grown = peak(server) - before
    assert grown < 20 * len(raw) + MEMORY_SLACK, f"peak RSS grew by {grown / MB:.0f} MB"
    assert max(times) < 30, f"another session waited {max(times):.1f}s"
    if reply.startswith((b"250", b"t OK")):
        client = await imap_login(server.ports["imap"], USER)
        await client.send(b"s SELECT INBOX\r\nf FETCH * (BODYSTRUCTURE BODY.PEEK[1.1.1.1])\r\n")
        assert (await client.until(b"s "))[-1].startswith(b"s OK")
        started = time.monotonic()
        answer = await client.until(b"f ", wait=60)
        assert answer[-1].startswith(b"f OK"), answer[-3:]
        assert time.monotonic() - started < 30
        structure = b"".join(answer)
        assert structure.count(b"(") < 2 * LimitsConfig().max_mime_parts + 1000
        await client.close()
    await alive(server, USER)
    assert "Traceback" not in server.log_text()


# ---------------------------------------------------------------- pipelining


PIPELINED = 10_000


async def pipeline(
    server: ServerProcess, protocol: str
) -> tuple[int, int, Callable[[bytes], bool]]:
    """Send PIPELINED commands at once without reading, then read every answer.
    Returns (answers counted, peak growth during the flood)."""
    before = peak(server)
    if protocol == "imap":
        client = await imap_login(server.ports["imap"], USER)
        await client.send(b"s SELECT INBOX\r\n")
        await client.until(b"s OK")
        commands = b"".join(b"p%d FETCH 1 BODY.PEEK[]\r\n" % n for n in range(PIPELINED))

        def done(line: bytes) -> bool:
            return re.match(rb"^p\d+ OK", line) is not None

    elif protocol == "pop3":
        client = await pop3_login(server.ports["pop3"], USER)
        commands = b"RETR 1\r\n" * PIPELINED

        def done(line: bytes) -> bool:
            return line == b".\r\n"

    else:
        client = await greeted(server.ports[protocol], protocol)
        verb = b"EHLO" if protocol == "smtp" else b"LHLO"
        await client.send(verb + b" pipe.test\r\n")
        await client.until(b"250 ")
        commands = b"MAIL FROM:<a@pipe.test>\r\nRSET\r\n" * (PIPELINED // 2)

        def done(line: bytes) -> bool:
            return line.startswith(b"250 ")

    writer = asyncio.create_task(client.send(commands))
    await asyncio.sleep(3)  # the server must stop reading while we do not read
    count = 0
    partial = b""
    async with asyncio.timeout(180):
        while count < PIPELINED:
            data = await client.reader.read(1024 * 1024)
            assert data, f"closed after {count} answers"
            *lines, partial = (partial + data).split(b"\r\n")
            count += sum(1 for line in lines if done(line + b"\r\n"))
    await writer
    grown = peak(server) - before
    await client.close()
    return count, grown, done


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp", "lmtp"])
async def test_ten_thousand_pipelined_commands(launch: StartServer, protocol: str) -> None:
    """Every command is answered, in order, and the server's memory does not hold the
    answers for a client that does not read them (each FETCH/RETR answer is 16 KiB:
    160 MB in all)."""
    server = await launch()
    body = (b"z" * 78 + b"\r\n") * 200
    lmtp = await greeted(server.ports["lmtp"], "lmtp")
    await lmtp.send(b"LHLO seed.test\r\n")
    await lmtp.until(b"250 ")
    await lmtp.send(f"MAIL FROM:<s@seed.test>\r\nRCPT TO:<{USER}>\r\nDATA\r\n".encode())
    await lmtp.until(b"354")
    await lmtp.send(b"Subject: big\r\n\r\n" + body + b".\r\n")
    assert (await lmtp.line()).startswith(b"250")
    await lmtp.close()
    await warm(server)
    async with bystander(server):
        count, grown, _ = await pipeline(server, protocol)
    assert count == PIPELINED
    assert grown < MEMORY_SLACK, f"peak RSS grew by {grown / MB:.0f} MB"


# ---------------------------------------------------------------- timeouts

TIMEOUTS = {"login_timeout": 2, "idle_timeout": 3, "pop3_timeout": 3, "smtp_timeout": 3}
GOODBYE = {
    "imap": rb"^\* BYE",
    "pop3": rb"^-ERR",
    "smtp": rb"^421 ",
    "lmtp": rb"^421 ",
}


async def silent_until_closed(client: Raw, limit: float) -> tuple[float, list[bytes]]:
    started = time.monotonic()
    lines = []
    async with asyncio.timeout(limit):
        while line := await client.line(wait=limit):
            lines.append(line)
    return time.monotonic() - started, lines


@pytest.mark.parametrize(
    ("protocol", "state", "limit"),
    [
        ("imap", "greeted", "login_timeout"),
        ("imap", "auth", "idle_timeout"),
        ("imap", "idle", "idle_timeout"),
        ("pop3", "greeted", "login_timeout"),
        ("pop3", "auth", "pop3_timeout"),
        ("smtp", "greeted", "smtp_timeout"),
        ("lmtp", "greeted", "smtp_timeout"),
    ],
)
async def test_silent_clients_are_disconnected(
    launch: StartServer, protocol: str, state: str, limit: str
) -> None:
    server = await launch(limits=TIMEOUTS)
    if protocol == "imap" and state != "greeted":
        client = await imap_login(server.ports["imap"], USER)
        if state == "idle":
            await client.send(b"i IDLE\r\n")
            assert (await client.line()).startswith(b"+ ")
    elif protocol == "pop3" and state == "auth":
        client = await pop3_login(server.ports["pop3"], USER)
    else:
        client = await greeted(server.ports[protocol], protocol)
    took, lines = await silent_until_closed(client, TIMEOUTS[limit] + 10)
    assert lines, "closed without a word"
    assert re.search(GOODBYE[protocol], lines[-1]), lines
    assert TIMEOUTS[limit] - 0.5 <= took <= TIMEOUTS[limit] + 5
    await client.close()


TRICKLE = {
    "imap": b"t LOGIN alice@example.org " + b"p" * 100,
    "pop3": b"USER alice@example.org" + b"u" * 100,
    "smtp": b"EHLO " + b"h" * 100,
    "lmtp": b"LHLO " + b"h" * 100,
}
SLOWLORIS_DEADLINE = {"imap": "login_timeout", "pop3": "login_timeout", "smtp": "smtp_timeout"}


@pytest.mark.parametrize(
    "protocol",
    [
        "imap",
        "pop3",
        "smtp",
        "lmtp",
    ],
)
async def test_slowloris_trickle_is_disconnected(launch: StartServer, protocol: str) -> None:
    """A client sending one octet every half second, never finishing a command, must not
    hold its connection (and its slot under the connection limits) for ever: before
    login the whole login must fit in ``login_timeout``; SMTP/LMTP must complete each
    command within ``smtp_timeout``."""
    server = await launch(limits={**TIMEOUTS, "connections_per_address": 50})
    deadline = TIMEOUTS[SLOWLORIS_DEADLINE.get(protocol, "smtp_timeout")]
    clients = [await greeted(server.ports[protocol], protocol) for _ in range(5)]
    started = time.monotonic()
    open_clients = list(clients)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(deadline + 8):
            for octet in TRICKLE[protocol]:
                for client in list(open_clients):
                    try:
                        await client.send(bytes([octet]))
                    except ConnectionError:
                        open_clients.remove(client)
                if not open_clients:
                    break
                await asyncio.sleep(0.5)
    took = time.monotonic() - started
    still_open = 0
    for client in clients:
        still_open += not await client.closed(wait=1)
        await client.close()
    assert not still_open, f"{still_open} trickling clients still connected after {took:.0f}s"
    await alive(server, USER)


async def test_login_failures_close_the_connection(launch: StartServer) -> None:
    """``max_failures`` failed logins close the connection in IMAP and POP3."""
    server = await launch(auth={"max_failures": 2})
    imap = await greeted(server.ports["imap"], "imap")
    await imap.send(b"a LOGIN alice@example.org x\r\nb LOGIN alice@example.org y\r\n")
    assert (await imap.until(b"a "))[-1].startswith(b"a NO")
    assert (await imap.until(b"b "))[-1].startswith(b"b NO")
    assert await imap.closed(wait=5)
    await imap.close()
    pop3 = await greeted(server.ports["pop3"], "pop3")
    await pop3.send(b"USER alice@example.org\r\nPASS x\r\nUSER alice@example.org\r\nPASS y\r\n")
    lines = [await pop3.line() for _ in range(4)]
    assert lines[1].startswith(b"-ERR"), lines
    assert lines[3].startswith(b"-ERR"), lines
    assert await pop3.closed(wait=5)
    await pop3.close()
    await alive(server, USER)  # the right password still works from the same address
