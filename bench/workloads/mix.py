"""Many clients at once, each doing what a mail client does while a person reads mail: list a
page of messages, open one, look at its structure, mark it read or unread, search subjects,
poll. Seeded per client, so both servers get the same sequence of commands."""

from __future__ import annotations

import asyncio
import random
import time

from bench import vocab
from bench.measure import Meter, percentile
from bench.proto.imap import ImapClient, quoted
from bench.workloads.base import Context, Workload

# (weight, operation); ``{n}`` is a random sequence number, ``{m}`` = n + 49 capped at EXISTS.
MIX: tuple[tuple[int, str], ...] = (
    (35, "FETCH {n}:{m} (UID FLAGS RFC822.SIZE ENVELOPE)"),
    (15, "FETCH {n} BODY.PEEK[]"),
    (10, "FETCH {n} BODYSTRUCTURE"),
    (15, "STORE {n} {sign}FLAGS (\\Seen)"),
    (10, "UID SEARCH SUBJECT {word}"),
    (15, "NOOP"),
)

_ASCII_WORDS = tuple(w for w in vocab.WORDS if w.isascii() and len(w) > 3)


def next_command(rng: random.Random, size: int) -> bytes:
    weights = [w for w, _ in MIX]
    template = rng.choices([t for _, t in MIX], weights)[0]
    n = rng.randint(1, size)
    return template.format(
        n=n,
        m=min(size, n + 49),
        sign=rng.choice("+-"),
        word=quoted(rng.choice(_ASCII_WORDS)).decode(),
    ).encode()


class Mix(Workload):
    name = "mix"
    unit = "ops/s"
    description = "N clients, random mix of reading, flagging, searching; ops/s and latency"

    async def run(self, ctx: Context, meter: Meter) -> None:
        opts = ctx.options
        self.description = f"{opts.mix_clients} clients, random mix for {opts.mix_seconds:g} s"
        clients: list[ImapClient] = [await ctx.imap() for _ in range(opts.mix_clients)]
        latencies: list[float] = []
        ops = 0

        async def drive(k: int, client: ImapClient, deadline: float) -> None:
            nonlocal ops
            rng = random.Random(1000 + k)
            while time.perf_counter() < deadline:
                command = next_command(rng, ctx.size)
                t0 = time.perf_counter()
                await client.command(command)
                latencies.append((time.perf_counter() - t0) * 1000)
                ops += 1

        async with meter.region() as sample:
            deadline = time.perf_counter() + opts.mix_seconds
            await asyncio.gather(*(drive(k, c, deadline) for k, c in enumerate(clients)))
            sample.ops = ops
        for client in clients:
            await client.logout()
        sample.metrics = {
            "ops/s": ops / sample.wall,
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
        }


def workloads() -> list[Workload]:
    return [Mix()]
