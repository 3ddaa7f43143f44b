"""A real ``mailkeep serve`` process for the reliability tests, and raw-socket clients.

The server runs as a subprocess (not in the test's event loop) so that a test can kill it
with SIGKILL, measure its memory, and notice when it stops answering; the test process is
the clients. Data directories are made in-process (``datadir.initialise``) with a config
file whose limits the test chooses, so that timeouts can be made small enough to test.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mailkeep.auth.passwords import hash_password, scram_stored
from mailkeep.config import load
from mailkeep.datadir import initialise
from mailkeep.store.factory import open_store

MAILKEEP = (sys.executable, "-m", "mailkeep")
HOSTNAME = "mail.test"
PASSWORD = "correct horse"
PROTOCOLS = ("imap", "pop3", "smtp", "lmtp")
ALL_LISTENERS = (
    "imap",
    "imaps",
    "pop3",
    "pop3s",
    "smtp",
    "submission",
    "submissions",
    "lmtp",
    "http",
)


@functools.cache
def _credentials(password: str) -> tuple[str, str]:
    """argon2 hash and SCRAM keys, once per password per test process (hashing is slow)."""
    return hash_password(password), scram_stored(password)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def config_toml(sections: Mapping[str, Mapping[str, object]], **top: object) -> str:
    """A mailkeep.toml with the given top-level settings and ``[section]`` tables."""
    lines = [f"hostname = {_toml_value(HOSTNAME)}"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in top.items()]
    for section, values in sections.items():
        lines.append(f"\n[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


async def make_data(
    data: Path,
    users: Iterable[str],
    *,
    limits: Mapping[str, object] | None = None,
    auth: Mapping[str, object] | None = None,
    quota: Mapping[str, int] | None = None,
    top: Mapping[str, object] | None = None,
    sections: Mapping[str, Mapping[str, object]] | None = None,
) -> Path:
    """An initialised data directory with ``users`` (password ``PASSWORD``). Unless the
    test says otherwise, failed logins are not delayed (many tests fail logins on
    purpose from the one loopback address)."""
    tables: dict[str, Mapping[str, object]] = {
        "limits": dict(limits or {}),
        "auth": {"failure_delay": 0.0, **(auth or {})},
        **(sections or {}),
    }
    await asyncio.to_thread(_write_config, data, config_toml(tables, **(top or {})))
    await initialise(data, hostname=HOSTNAME)
    config = load(data)
    store = await open_store(config.store.url, data, pool_size=1)
    try:
        password_hash, scram = await asyncio.to_thread(_credentials, PASSWORD)
        for address in users:
            if await store.get_account(address) is None:
                await store.create_account(
                    address, password_hash, scram, quota_bytes=(quota or {}).get(address)
                )
    finally:
        await store.close()
    return data


def _write_config(data: Path, text: str) -> None:
    data.mkdir(parents=True, exist_ok=True)
    (data / "mailkeep.toml").write_text(text, encoding="utf-8")


@dataclass
class ServerProcess:
    """``mailkeep serve`` on kernel-chosen loopback ports (a plain ``Popen``, so that
    module-scoped fixtures outside any event loop can own one too)."""

    data: Path
    log: Path
    process: subprocess.Popen[bytes]
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def rss(self) -> int:
        """Resident memory of the server process, in octets (Linux /proc)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc status")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill_now(self) -> None:
        """SIGKILL, as a crash or an OOM killer would, and reap."""
        if self.alive:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def stop_now(self) -> None:
        """SIGTERM and wait for a graceful end (SIGKILL after 30 s)."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill_now()
        if self.process.stdout is not None:
            self.process.stdout.close()

    async def kill(self) -> None:
        await asyncio.to_thread(self.kill_now)

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_now)

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)


def spawn_server(
    data: Path,
    listeners: Iterable[str] = PROTOCOLS,
    *,
    log: Path | None = None,
    netns: str | None = None,
    host: str = "127.0.0.1",
) -> ServerProcess:
    """Start ``mailkeep serve`` with ``listeners`` on ``host`` port 0 (the rest off) and
    wait until it prints the bound ports."""
    wanted = set(listeners)
    argv: list[str] = [*MAILKEEP, "--data", str(data), "serve"]
    for name in ALL_LISTENERS:
        argv += [f"--{name}", f"{host}:0" if name in wanted else "off"]
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    log = log or data.parent / f"{data.name}-server.log"
    with log.open("ab") as stderr:
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    server = ServerProcess(data, log, process)
    assert process.stdout is not None
    timer = threading.Timer(60, server.kill_now)
    timer.start()
    try:
        while len(server.ports) < len(wanted):
            line = process.stdout.readline().decode()
            if not line:
                break
            words = line.split()
            if len(words) == 2 and words[0] in wanted:
                server.ports[words[0]] = int(words[1].rpartition(":")[2])
    finally:
        timer.cancel()
    if len(server.ports) < len(wanted):
        server.kill_now()
        raise AssertionError(f"the server did not start:\n{server.log_text()[-3000:]}")
    return server


async def start_server(
    data: Path,
    listeners: Iterable[str] = PROTOCOLS,
    *,
    log: Path | None = None,
    netns: str | None = None,
    host: str = "127.0.0.1",
) -> ServerProcess:
    return await asyncio.to_thread(spawn_server, data, listeners, log=log, netns=netns, host=host)


async def run_cli(data: Path, *args: str, stdin: bytes = b"") -> tuple[int, str]:
    """``mailkeep --data DATA ARGS``: exit status and combined output. (A plain
    ``subprocess.run`` in a thread: asyncio subprocess transports collected after their
    loop closed raise ResourceWarnings in whichever test runs next.)"""
    result = await asyncio.to_thread(
        subprocess.run,
        [*MAILKEEP, "--data", str(data), *args],
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    return result.returncode, result.stdout.decode(errors="replace")


def insecure_context() -> ssl.SSLContext:
    """The test certificate is self-signed."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Gone(Exception):
    """The server closed the connection (or went away) mid-conversation."""


class Raw:
    """A raw client socket: send what we like, read lines, notice a close.

    Reads are bounded by ``wait`` so that a server that never answers fails the test
    instead of hanging it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> Raw:
        reader, writer = await asyncio.open_connection(host, port, limit=16 * 1024 * 1024)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def line(self, wait: float = 20.0) -> bytes:
        """One line (with its CRLF); b'' when the server closed."""
        async with asyncio.timeout(wait):
            try:
                return await self.reader.readline()
            except (ConnectionError, ValueError):
                return b""

    async def until(self, prefix: bytes, wait: float = 20.0) -> list[bytes]:
        """Lines up to and including the first that starts with ``prefix``."""
        lines: list[bytes] = []
        async with asyncio.timeout(wait):
            while True:
                line = await self.line(wait)
                if not line:
                    raise Gone(f"closed before {prefix!r}; got {lines!r}")
                lines.append(line)
                if line.startswith(prefix):
                    return lines

    async def closed(self, wait: float = 20.0) -> bool:
        """Whether the server closes the connection within ``wait`` (draining what it
        still sends)."""
        try:
            async with asyncio.timeout(wait):
                while True:
                    try:
                        data = await self.reader.read(65536)
                    except ConnectionError:
                        return True
                    if not data:
                        return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
            await self.writer.wait_closed()

    async def starttls(self) -> None:
        await self.writer.start_tls(insecure_context())


GREETING = {"imap": b"* OK", "pop3": b"+OK", "smtp": b"220 ", "lmtp": b"220 "}


async def greeted(port: int, protocol: str) -> Raw:
    """A connection whose greeting was read and checked."""
    client = await Raw.connect(port)
    try:
        greeting = await client.until(b"")  # raises Gone when refused without a word
        assert greeting[-1].startswith(GREETING[protocol]), greeting
        if protocol in ("smtp", "lmtp"):
            while greeting[-1][3:4] == b"-":
                greeting.append(await client.line())
    except BaseException:
        await client.close()
        raise
    return client


async def imap_login(port: int, user: str, password: str = PASSWORD) -> Raw:
    client = await greeted(port, "imap")
    try:
        await client.send(f'l LOGIN "{user}" "{password}"\r\n'.encode())
        reply = await client.until(b"l ")
        assert reply[-1].startswith(b"l OK"), reply
    except BaseException:
        await client.close()
        raise
    return client


async def pop3_login(port: int, user: str, password: str = PASSWORD) -> Raw:
    client = await greeted(port, "pop3")
    try:
        await client.send(f"USER {user}\r\nPASS {password}\r\n".encode())
        replies = [await client.line(), await client.line()]
        if not replies[-1]:
            raise Gone(f"closed during login: {replies!r}")
        assert all(r.startswith(b"+OK") for r in replies), replies
    except BaseException:
        await client.close()
        raise
    return client


async def alive(server: ServerProcess, user: str) -> None:
    """Every protocol still answers a normal, complete exchange."""
    assert server.alive, server.log_text()[-3000:]
    if "imap" in server.ports:
        client = await imap_login(server.ports["imap"], user)
        await client.send(b"a SELECT INBOX\r\nb LOGOUT\r\n")
        assert (await client.until(b"a "))[-1].startswith(b"a OK")
        assert (await client.until(b"b "))[-1].startswith(b"b OK")
        await client.close()
    if "pop3" in server.ports:
        client = await pop3_login(server.ports["pop3"], user)
        await client.send(b"STAT\r\nQUIT\r\n")
        assert (await client.line()).startswith(b"+OK")
        assert (await client.line()).startswith(b"+OK")
        await client.close()
    for protocol in ("smtp", "lmtp"):
        if protocol in server.ports:
            client = await greeted(server.ports[protocol], protocol)
            verb = b"LHLO" if protocol == "lmtp" else b"EHLO"
            await client.send(verb + b" client.test\r\n")
            await client.until(b"250 ")
            await client.send(b"QUIT\r\n")
            assert (await client.line()).startswith(b"221")
            await client.close()


_LITERAL_AT_END = re.compile(rb"\{(\d+)\}\r\n$")


async def imap_response(client: Raw, wait: float = 30.0) -> bytes:
    """One whole IMAP response, literals inline (CRLF of the last line kept)."""
    parts: list[bytes] = []
    while True:
        line = await client.line(wait)
        if not line:
            raise Gone
        parts.append(line)
        literal = _LITERAL_AT_END.search(line)
        if literal is None:
            return b"".join(parts)
        try:
            async with asyncio.timeout(wait):
                parts.append(await client.reader.readexactly(int(literal[1])))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise Gone from exc


async def imap_command(client: Raw, tag: str, command: bytes, wait: float = 30.0) -> list[bytes]:
    """Send ``tag command`` and return every response up to the tagged one (last)."""
    try:
        await client.send(tag.encode() + b" " + command + b"\r\n")
    except (ConnectionError, OSError) as exc:
        raise Gone from exc
    responses = []
    while True:
        response = await imap_response(client, wait)
        responses.append(response)
        if response.startswith(tag.encode() + b" "):
            return responses
