"""What every workload has: a name, a kind that tells the runner which mailbox state it needs,
how its headline figure is computed, and ``run`` that measures exactly one region.

Kinds:
- ``delivery`` — needs an empty server (the runner resets it first) and delivers the whole
  corpus; afterwards the INBOX holds the corpus.
- ``read`` — needs the INBOX to hold exactly the corpus and leaves it so (flags may change;
  anything added is removed again, outside the measured region).
- ``idle`` — like ``read``, run once per size at the first size only (see ``bench.runner``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

from bench.corpus import Corpus
from bench.measure import Meter, Sample
from bench.proto.imap import ImapClient
from bench.proto.lmtp import LmtpClient
from bench.proto.pop3 import Pop3Client
from bench.servers import Endpoints, Server

Kind = Literal["delivery", "read", "idle"]
Unit = Literal["msg/s", "MB/s", "ms", "ops/s", "MB", "s"]


class CheckFailed(Exception):
    """A server's answer does not match the corpus (wrong count, wrong bytes)."""


class Unsupported(Exception):
    """The server does not announce an extension the workload needs (reported as skipped)."""


def require(capabilities: set[str], extension: str) -> None:
    if extension.upper() not in capabilities:
        raise Unsupported(f"server does not announce {extension}")


@dataclass(frozen=True)
class Options:
    """Knobs shared by workloads; the CLI presets set them (see ``bench.cli``)."""

    mix_seconds: float = 20.0
    mix_clients: int = 20
    idle_counts: tuple[int, ...] = (500, 2000)
    idle_deliveries: int = 5
    login_iterations: int = 20
    copy_count: int = 1000
    sessions: int = 10
    append_window: int = 16
    loader_connections: int = 4
    delivery_max: int = 5_000
    """Largest corpus the delivery workloads deliver in measured runs (larger ones are
    loaded once, unmeasured): delivery costs the same per message at any size."""
    idle_reps: int = 1
    """IDLE runs per server (no warm-up): each already samples K x deliveries latencies."""


@dataclass
class Context:
    """What a workload run may use. ``messages`` is the corpus rendered in memory (for sizes
    that are delivered in measured runs, so generating them is not measured)."""

    server: Server
    corpus: Corpus
    options: Options
    messages: list[bytes] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)
    _clients: list[ImapClient | Pop3Client | LmtpClient] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.corpus)

    @property
    def endpoints(self) -> Endpoints:
        return self.server.endpoints

    def message(self, i: int) -> bytes:
        return self.messages[i] if i < len(self.messages) else self.corpus.message(i)

    async def imap(self, select: str | None = "INBOX") -> ImapClient:
        e = self.endpoints
        client = await ImapClient.connect(e.host, e.imap)
        self._clients.append(client)
        await client.login(e.user, e.password)
        if select is not None:
            await client.select(select)
        return client

    async def pop3(self) -> Pop3Client:
        e = self.endpoints
        client = await Pop3Client.connect(e.host, e.pop3)
        self._clients.append(client)
        await client.login(e.user, e.password)
        return client

    async def lmtp(self) -> LmtpClient:
        e = self.endpoints
        client = await LmtpClient.connect(e.host, e.lmtp)
        self._clients.append(client)
        return client

    async def release(self) -> None:
        """Close every connection the workload opened and left open (after a failure)."""
        clients, self._clients = self._clients, []
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)


def expect(what: str, got: int, wanted: int) -> None:
    if got != wanted:
        raise CheckFailed(f"{what}: got {got}, expected {wanted}")


class Workload:
    """Base class; subclasses set the class attributes and implement ``run``."""

    name: str = ""
    kind: Kind = "read"
    unit: Unit = "s"
    description: str = ""
    max_size: int | None = None
    """Sizes above this are skipped (e.g. full downloads of the 1M mailbox)."""

    def skip_reason(self, ctx: Context) -> str | None:
        if self.max_size is not None and ctx.size > self.max_size:
            return f"runs up to {self.max_size:,} messages"
        return None

    async def run(self, ctx: Context, meter: Meter) -> None:
        raise NotImplementedError

    def headline(self, sample: Sample) -> float:
        """The figure the table shows, in ``unit``."""
        wall = sample.wall or float("nan")
        match self.unit:
            case "msg/s":
                return sample.ops / wall
            case "MB/s":
                return sample.octets / 1e6 / wall
            case "s":
                return sample.wall
            case _:
                return sample.metrics.get(self.unit, float("nan"))

    @staticmethod
    def higher_is_better(unit: Unit) -> bool:
        return unit in ("msg/s", "MB/s", "ops/s")
