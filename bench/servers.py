"""The servers under test, started and reset the same way by the runner.

Each server is a process tree on loopback with one account whose INBOX receives the corpus.
``reset()`` gives an empty server (a fresh data directory), so that every delivery run starts
from the same state.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parent.parent
DOVECOT_SCRIPTS = Path(
    os.environ.get("BENCH_DOVECOT_SCRIPTS", REPO.parent / "shared/peers/dovecot")
)
BULK_VSZ_LIMIT = "2G"
"""Dovecot's ``default_vsz_limit`` for bulk-loaded mailboxes (its default is 256 MB)."""


class ServerError(Exception):
    """A server that would not start, or stopped."""


@dataclass(frozen=True)
class Endpoints:
    host: str
    imap: int
    pop3: int
    lmtp: int
    user: str
    password: str
    rcpt: str


class Server(Protocol):
    name: str

    @property
    def endpoints(self) -> Endpoints: ...

    @property
    def pid(self) -> int:
        """Root of the process tree whose CPU and memory are measured."""
        ...

    def version(self) -> str: ...

    def alive(self) -> bool: ...

    def reset(self) -> None:
        """Stop (if running) and start again with no mail."""

    def stop(self) -> None: ...

    def bulk_load(self, maildir: Path) -> None:
        """Put every message of ``maildir`` (see ``bench.bulk``) into the empty INBOX."""

    def notes(self) -> dict[str, Any]:
        """Configuration facts worth recording next to the results."""
        ...


def wait_for_port(host: str, port: int, timeout: float, alive: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise ServerError(f"server exited before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServerError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


@dataclass
class Dovecot:
    """The reference instance from ``shared/peers/dovecot`` (Debian's Dovecot 2.3)."""

    name: str = "dovecot"
    base: Path = field(
        default_factory=lambda: Path(os.environ.get("BENCH_DOVECOT_BASE", "/tmp/bench-dovecot"))
    )
    _pid: int = 0

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(
            "127.0.0.1", 11143, 11110, 11024, "bench", "benchpass", "bench@example.com"
        )

    @property
    def pid(self) -> int:
        if not self._pid:
            raise ServerError("dovecot is not running")
        return self._pid

    def alive(self) -> bool:
        if not self._pid:
            return False
        try:
            os.kill(self._pid, 0)
        except OSError:
            return False
        return True

    def version(self) -> str:
        out = subprocess.run(["dovecot", "--version"], capture_output=True, text=True, check=False)
        return out.stdout.strip() or "unknown"

    def reset(self) -> None:
        self.stop()
        env = {**os.environ, "BENCH_DOVECOT_BASE": str(self.base)}
        # Output to a file, not a pipe: the daemonised master inherits stdout and would keep
        # a pipe open forever.
        with tempfile.TemporaryFile() as log:
            code = subprocess.run(
                [str(DOVECOT_SCRIPTS / "start.sh"), "--fresh"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                check=False,
            ).returncode
            log.seek(0)
            output = log.read().decode(errors="replace").strip()
        if code != 0 or not output.splitlines()[-1:][0].isdigit():
            raise ServerError(f"dovecot start.sh failed ({code}): {output}")
        self._pid = int(output.splitlines()[-1])
        e = self.endpoints
        for port in (e.imap, e.pop3, e.lmtp):
            wait_for_port(e.host, port, 20)

    def stop(self) -> None:
        env = {**os.environ, "BENCH_DOVECOT_BASE": str(self.base)}
        subprocess.run(
            [str(DOVECOT_SCRIPTS / "stop.sh")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            check=False,
        )
        self._pid = 0

    def bulk_load(self, maildir: Path) -> None:
        import pwd

        from bench.bulk import link_into

        account = pwd.getpwnam("benchmail")
        link_into(maildir, self.base / "mail/bench/Maildir", account.pw_uid, account.pw_gid)
        # The index of a 1,000,000-message mailbox does not fit Dovecot's default address
        # space limit per process: "Out of memory (service imap { vsz_limit=256 MB }, you
        # may need to increase it)". Raised as that message advises; the master rereads
        # its configuration on SIGHUP, and the processes it starts from now on have it.
        with open(self.base / "etc/dovecot.conf", "a") as conf:
            conf.write(f"default_vsz_limit = {BULK_VSZ_LIMIT}\n")
        os.kill(self.pid, signal.SIGHUP)

    def notes(self) -> dict[str, Any]:
        return {
            "storage": "maildir",
            "fts": "none",
            "config": str(DOVECOT_SCRIPTS / "dovecot.conf.in"),
            "imap_process_limit": 4096,
        }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def dump_toml(data: dict[str, Any]) -> str:
    """Enough TOML for a config of scalars and one level of tables."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


def empty_postgresql(url: str) -> None:
    """Drop everything in the database ``url`` names (the benchmark's own database)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await connection.close()

    # reset() runs inside the driver's event loop: the drop gets a loop of its own.
    with ThreadPoolExecutor(1) as executor:
        executor.submit(asyncio.run, run()).result()


_LISTENER_RE = re.compile(r"^\s+(imap|pop3|lmtp)\s+[\d.]+:(\d+)\s*$", re.MULTILINE)

# Raised so that 10,000 IDLE connections and 20 mixed clients from 127.0.0.1 are accepted
# (the defaults protect a real server against one abusive address).
MAILKEEP_OVERRIDES: dict[str, dict[str, Any]] = {
    # The FETCH cache sized for the 1,000,000-message mailbox, as Dovecot's address space
    # is (``BULK_VSZ_LIMIT``): with the default 256 MB its BODYSTRUCTUREs and header
    # fields do not fit (README, "IMAP").
    "limits": {
        "connections_per_address": 20_000,
        "connections_total": 30_000,
        "fetch_cache": "2G",
    },
}


@dataclass
class Mailkeep:
    """``mailkeep serve`` from this checkout, on free loopback ports, in a data directory
    that ``reset`` recreates. ``store`` selects the backend (None: the SQLite default)."""

    base: Path
    store: str | None = None
    name: str = "mailkeep"
    command: tuple[str, ...] = (sys.executable, "-m", "mailkeep")
    start_timeout: float = 60.0
    _proc: subprocess.Popen[bytes] | None = None
    _endpoints: Endpoints | None = None
    _log: Any = None

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            raise ServerError("mailkeep is not running")
        return self._endpoints

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise ServerError("mailkeep is not running")
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def version(self) -> str:
        out = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip() or "unknown"

    def _cli(self, *args: str, stdin: bytes | None = None) -> None:
        cmd = [*self.command, "--data", str(self.data), *args]
        out = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
        if out.returncode != 0:
            raise ServerError(
                f"{' '.join(cmd)} exited {out.returncode}: {out.stderr.decode(errors='replace')}"
            )

    def reset(self) -> None:
        self.stop()
        if self.data.exists():
            shutil.rmtree(self.data)
        self.base.mkdir(parents=True, exist_ok=True)
        self._cli("init")
        config_path = self.data / "mailkeep.toml"
        config: dict[str, Any] = {}
        if config_path.exists():
            config = tomllib.loads(config_path.read_text())
        for table, values in MAILKEEP_OVERRIDES.items():
            config.setdefault(table, {}).update(values)
        if self.store:
            # Every command (user add, import, serve) then uses that store, emptied here.
            config.setdefault("store", {})["url"] = self.store
            if self.store.startswith("postgresql"):
                empty_postgresql(self.store)
        config_path.write_text(dump_toml(config))
        self._cli("user", "add", "bench@example.com", "--password-stdin", stdin=b"benchpass\n")
        self.start()

    def bulk_load(self, maildir: Path) -> None:
        self.stop()
        self._cli("import", "maildir", str(maildir), "--to", "bench@example.com")
        self.start()

    def start(self) -> None:
        """Serve the data directory as it is."""
        # Port 0 everywhere: mailkeep binds what the kernel gives and prints the listeners,
        # which are read back from its output (no race for "free" ports).
        args = [
            *self.command,
            "--data",
            str(self.data),
            "serve",
            *("--imap", "127.0.0.1:0", "--pop3", "127.0.0.1:0", "--lmtp", "127.0.0.1:0"),
            *("--smtp", "off", "--imaps", "off", "--pop3s", "off"),
            *("--submission", "off", "--http", "off"),
            *(("--store", self.store) if self.store else ()),
        ]
        log_path = self.base / "serve.log"
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        offset = self._log.tell()
        self._proc = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        ports = self._listeners(log_path, offset)
        self._endpoints = Endpoints(
            "127.0.0.1",
            ports["imap"],
            ports["pop3"],
            ports["lmtp"],
            "bench@example.com",
            "benchpass",
            "bench@example.com",
        )

    def _listeners(self, log_path: Path, offset: int) -> dict[str, int]:
        """The ports from ``serve``'s listener lines (``  imap  127.0.0.1:PORT``)."""
        deadline = time.monotonic() + self.start_timeout
        assert self._proc is not None
        while time.monotonic() < deadline:
            with open(log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
            ports = {m[0]: int(m[1]) for m in _LISTENER_RE.findall(text)}
            if {"imap", "pop3", "lmtp"} <= ports.keys():
                return ports
            if self._proc.poll() is not None:
                self.stop()
                raise ServerError(f"mailkeep serve exited: {text.strip()[-500:]}")
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"mailkeep serve printed no listeners in {self.start_timeout:.0f} s")

    def stop(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGTERM)
                try:
                    self._proc.wait(20)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        self._endpoints = None

    def notes(self) -> dict[str, Any]:
        return {"store": self.store or "sqlite", "overrides": MAILKEEP_OVERRIDES}
