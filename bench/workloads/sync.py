"""``mailkeep sync`` versus mbsync (Debian's isync): the initial sync of the benchmark's INBOX
into an empty Maildir, and the resync when nothing changed.

Both clients sync the same server mailbox (the INBOX holding the corpus, on every server the
benchmark runs: each server is a reference for the other's client figures) into a Maildir of
their own, two-way (``mailkeep sync``'s only mode; mbsync ``Sync All``), INBOX only, no
expunge, internal dates kept as file mtimes (mbsync ``CopyArrivalDate yes``), over plain
loopback with LOGIN. Both fsync what they write (their defaults).

Workloads, one row per client (the table's columns are the servers):
- ``sync-initial-mailkeep``, ``sync-initial-mbsync`` — into a fresh Maildir and state,
  deleted after the run;
- ``sync-nochange-mailkeep``, ``sync-nochange-mbsync`` — a second sync of a Maildir that the
  first run of the workload synced (unmeasured) and that every later repetition reuses.

Measured: wall time from starting the client to its exit (interpreter start-up included:
that is what a user waits for), the server's CPU as for every workload, and the client's own
CPU seconds and peak RSS from ``os.wait4`` (exact for that one child and whatever it waited
for), in ``metrics`` as ``client_cpu`` and ``client_rss_MB``.

Correctness, after every run: the Maildir holds exactly N messages, and a sample of them
(``CHECK_SAMPLE``, spread over the mailbox) matches the corpus byte for byte.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.measure import Meter
from bench.servers import REPO, Endpoints
from bench.workloads.base import CheckFailed, Context, Options, Unsupported, Workload, expect

SCRATCH = REPO / "bench" / "results" / "tmp" / "sync"
_BARE_LF = re.compile(rb"(?<!\r)\n")
_X_TUID = re.compile(rb"^X-TUID: [^\r\n]*\r\n", re.MULTILINE)
CHECK_SAMPLE = 200
"""Messages compared byte for byte with the corpus after each run (all of a smaller INBOX)."""

ClientName = Literal["mailkeep", "mbsync"]


@dataclass(frozen=True)
class ClientRun:
    """What one client process cost: wall seconds, CPU seconds, peak RSS, its output."""

    wall: float
    cpu: float
    max_rss: int
    output: str


def run_client(command: list[str], timeout: float) -> ClientRun:
    """Run ``command`` to completion and return its own resource use.

    ``os.wait4`` reports exactly this child (and the children it reaped), unlike
    ``getrusage(RUSAGE_CHILDREN)``, which would also count anything else the driver reaps
    meanwhile.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        assert proc.stdout is not None
        output = proc.stdout.read()  # small: a summary line, or mbsync's complaints
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = output.decode(errors="replace")
    if proc.returncode == -signal.SIGKILL and wall >= timeout:
        raise TimeoutError(f"{command[0]} still running after {timeout:.0f} s")
    if proc.returncode != 0:
        raise CheckFailed(f"{' '.join(command[:4])} exited {proc.returncode}: {text[-500:]}")
    return ClientRun(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, text)


_REMOVE: set[Path] = set()


def _remove_at_exit(root: Path) -> None:
    """The reused Maildirs hold the corpus (GBs at 50,000 messages): gone when the driver
    exits, like mailkeep's data directory."""
    if not _REMOVE:
        atexit.register(_remove_all)
    _REMOVE.add(root)


def _remove_all() -> None:
    for root in sorted(_REMOVE):
        shutil.rmtree(root, ignore_errors=True)


class SyncClient:
    """How to configure and start one client against ``endpoints`` in directory ``root``;
    the synced INBOX is ``root/Maildir``."""

    name: ClientName

    def available(self) -> str | None:
        """Why this client cannot run here, or None."""
        return None

    def command(self, endpoints: Endpoints, root: Path) -> list[str]:
        raise NotImplementedError

    def check_output(self, output: str, new: int | None) -> None:
        """Raise ``CheckFailed`` if the client's own report contradicts ``new`` messages."""


class MailkeepSync(SyncClient):
    name: ClientName = "mailkeep"

    def command(self, endpoints: Endpoints, root: Path) -> list[str]:
        accounts = root / "accounts.toml"
        if not accounts.exists():
            e = endpoints
            accounts.write_text(
                "[accounts.bench]\n"
                'protocol = "imap"\n'
                f'server = "{e.host}"\n'
                f"port = {e.imap}\n"
                'tls = "none"\n'
                f'user = "{e.user}"\n'
                f'password_command = "printf %s {e.password}"\n'
                'auth = "login"\n'
                f'local = "{root / "Maildir"}"\n'
                f'state = "{root / "state.sqlite"}"\n'
                'folders = ["INBOX"]\n'
                "timeout = 600\n"
            )
        return [
            sys.executable,
            "-m",
            "mailkeep",
            "sync",
            "bench",
            "--accounts",
            str(accounts),
            "--json",
        ]

    def check_output(self, output: str, new: int | None) -> None:
        lines = [line for line in output.splitlines() if line.startswith("{")]
        if not lines:
            raise CheckFailed(f"mailkeep sync printed no JSON: {output[-300:]!r}")
        report = json.loads(lines[-1])
        if not report.get("ok"):
            raise CheckFailed(f"mailkeep sync: {report}")
        if new is not None:
            expect("messages mailkeep sync reported new", int(report["new"]), new)


class Mbsync(SyncClient):
    name: ClientName = "mbsync"

    def available(self) -> str | None:
        return None if shutil.which("mbsync") else "mbsync is not installed (apt-get install isync)"

    def command(self, endpoints: Endpoints, root: Path) -> list[str]:
        config = root / "mbsyncrc"
        if not config.exists():
            e = endpoints
            maildir = root / "Maildir"
            maildir.mkdir(parents=True, exist_ok=True)  # mbsync creates folders, not the root
            config.write_text(
                "IMAPAccount bench\n"
                f"Host {e.host}\n"
                f"Port {e.imap}\n"
                f"User {e.user}\n"
                f"Pass {e.password}\n"
                "SSLType None\n"
                "AuthMechs LOGIN\n"
                "Timeout 600\n"
                "\n"
                "IMAPStore far\n"
                "Account bench\n"
                "\n"
                "MaildirStore near\n"
                f"Path {maildir}/\n"
                f"Inbox {maildir}\n"
                "SubFolders Verbatim\n"
                "\n"
                "Channel bench\n"
                "Far :far:\n"
                "Near :near:\n"
                "Patterns INBOX\n"
                "Create Near\n"
                "Sync All\n"
                "Expunge None\n"
                "CopyArrivalDate yes\n"
                "SyncState *\n"
            )
        return ["mbsync", "-c", str(config), "-q", "bench"]


CLIENTS: dict[ClientName, SyncClient] = {"mailkeep": MailkeepSync(), "mbsync": Mbsync()}


def maildir_messages(maildir: Path) -> list[Path]:
    """The message files of one Maildir folder (``cur/`` and ``new/``, no dot files)."""
    out: list[Path] = []
    for sub in ("cur", "new"):
        folder = maildir / sub
        if folder.is_dir():
            out.extend(p for p in folder.iterdir() if not p.name.startswith("."))
    return out


def as_served(raw: bytes) -> bytes:
    """The message as the server has it, from a Maildir file: CRLF line ends (mbsync stores
    LF only, the local convention) and without the ``X-TUID`` header field mbsync adds to
    every message it copies (its way to find a copy again after an interruption)."""
    raw = _BARE_LF.sub(b"\r\n", raw)
    end = raw.find(b"\r\n\r\n")
    if end >= 0:
        raw = _X_TUID.sub(b"", raw[: end + 2]) + raw[end + 2 :]
    return raw


def check_maildir(ctx: Context, maildir: Path, client: str) -> None:
    """Exactly N messages, and an evenly spread sample equal to the corpus byte for byte."""
    files = sorted(maildir_messages(maildir))
    expect(f"messages in {client}'s Maildir", len(files), ctx.size)
    step = max(1, len(files) // CHECK_SAMPLE)
    seen: set[int] = set()
    for path in files[::step]:
        try:
            i = ctx.corpus.check(as_served(path.read_bytes()))
        except ValueError as e:
            raise CheckFailed(f"{client}: {path.name}: {e}") from None
        if i in seen:
            raise CheckFailed(f"{client}: message {i} twice in the Maildir")
        seen.add(i)


class Sync(Workload):
    """One sync client against the benchmark's INBOX; ``initial`` into an empty Maildir,
    else a resync of an already synced one."""

    kind = "read"
    unit = "s"

    def __init__(
        self,
        client: SyncClient,
        initial: bool,
        timeout: float = 1800.0,
        scratch: Path | None = None,
    ) -> None:
        self.client = client
        self.initial = initial
        self.timeout = timeout
        self.scratch = scratch
        """Where the Maildirs go; None: a new directory under ``SCRATCH`` (one per workload
        and driver process, so parallel runs never share one)."""
        phase = "initial" if initial else "nochange"
        self.name = f"sync-{phase}-{client.name}"
        self.description = (
            f"{client.name} sync of INBOX into an empty Maildir"
            if initial
            else f"{client.name} resync of a synced Maildir, nothing changed"
        )
        self._synced: dict[str, tuple[Endpoints, int]] = {}
        """Per server: the endpoints and corpus size the reusable Maildir was synced with."""

    def skip_reason(self, ctx: Context) -> str | None:
        # An initial sync costs the same per message at any size, like a delivery: measured
        # up to the same size (5,000 by default, 50,000 with --full). A resync without
        # changes is what grows with the mailbox, so it runs at every size.
        if self.initial and ctx.size > ctx.options.delivery_max:
            limit = ctx.options.delivery_max
            return f"initial syncs measured up to {limit:,} messages (see --full)"
        return super().skip_reason(ctx)

    def root(self, ctx: Context) -> Path:
        if self.scratch is None:
            SCRATCH.mkdir(parents=True, exist_ok=True)
            self.scratch = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=SCRATCH))
            _remove_at_exit(self.scratch)
        return self.scratch / ctx.server.name

    async def run(self, ctx: Context, meter: Meter) -> None:
        reason = self.client.available()
        if reason is not None:
            raise Unsupported(reason)
        root = self.root(ctx)
        key = (ctx.endpoints, ctx.size)
        if self.initial or self._synced.get(ctx.server.name) != key:
            # Fresh directory: a Maildir (and sync state) of another server or size, or of a
            # run that failed, must not be reused.
            await asyncio.to_thread(shutil.rmtree, root, True)
            self._synced.pop(ctx.server.name, None)
        root.mkdir(parents=True, exist_ok=True)
        command = self.client.command(ctx.endpoints, root)
        if not self.initial and ctx.server.name not in self._synced:
            first = await asyncio.to_thread(run_client, command, self.timeout)
            self.client.check_output(first.output, ctx.size)
            self._synced[ctx.server.name] = key
        async with meter.region() as sample:
            done = await asyncio.to_thread(run_client, command, self.timeout)
            sample.ops = ctx.size
        sample.metrics = {"client_cpu": done.cpu, "client_rss_MB": done.max_rss / 1e6}
        try:
            self.client.check_output(done.output, ctx.size if self.initial else 0)
            await asyncio.to_thread(check_maildir, ctx, root / "Maildir", self.client.name)
        except Exception:
            self._synced.pop(ctx.server.name, None)
            raise
        finally:
            if self.initial:
                await asyncio.to_thread(shutil.rmtree, root, True)


def workloads(options: Options | None = None) -> list[Workload]:
    """The four workloads; part of the default set (``bench.workloads.build``)."""
    return [
        Sync(CLIENTS["mailkeep"], initial=True),
        Sync(CLIENTS["mbsync"], initial=True),
        Sync(CLIENTS["mailkeep"], initial=False),
        Sync(CLIENTS["mbsync"], initial=False),
    ]
