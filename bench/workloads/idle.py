"""K clients in IDLE (RFC 2177) on INBOX; messages delivered over LMTP one at a time; latency
from the start of each delivery to each client's ``* n EXISTS``, and server memory with all
K sessions open. The delivered messages are expunged again afterwards."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.measure import Meter, percentile
from bench.procstat import Memory
from bench.proto.imap import ImapClient, ImapError, parse_exists
from bench.workloads.base import Context, Workload

SETUP_CONCURRENCY = 64
NOTIFY_TIMEOUT = 30.0


class Idle(Workload):
    kind = "idle"
    unit = "ms"

    def __init__(self, connections: int) -> None:
        self.connections = connections
        self.name = f"idle-{connections}"
        self.description = (
            f"{connections:,} IDLE sessions; delivery-to-EXISTS latency p99 (p50 in details)"
        )

    def skip_reason(self, ctx: Context) -> str | None:
        limit: Any = ctx.server.notes().get("imap_process_limit")
        if isinstance(limit, int) and self.connections > limit:
            return f"{ctx.server.name} allows {limit:,} IMAP processes (one per connection)"
        return None

    async def run(self, ctx: Context, meter: Meter) -> None:
        before = await meter.sample_memory()
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)

        async def open_idle() -> ImapClient:
            async with gate:
                client = await ctx.imap()
                opened.append(client)
                tag = client.send(b"IDLE")
                await client.writer.drain()
                while True:
                    line, _ = await client.read_response()
                    if line.startswith(b"+"):
                        return client
                    if line.startswith(tag + b" "):
                        raise ImapError(f"IDLE refused: {line!r}")

        opened: list[ImapClient] = []
        try:
            await self._measure(ctx, meter, open_idle, opened, before)
        finally:
            await asyncio.gather(*(c.aclose() for c in opened), return_exceptions=True)
        await _remove_extra(ctx)

    async def _measure(
        self,
        ctx: Context,
        meter: Meter,
        open_idle: Callable[[], Awaitable[ImapClient]],
        opened: list[ImapClient],
        before: Memory,
    ) -> None:
        k = self.connections
        deliveries = ctx.options.idle_deliveries
        t0 = time.perf_counter()
        clients = list(await asyncio.gather(*(open_idle() for _ in range(k))))
        setup = time.perf_counter() - t0
        sent: list[float] = []
        latencies: list[float] = []
        seen_by = [0] * deliveries
        all_seen = [asyncio.Event() for _ in range(deliveries)]

        async def listen(client: ImapClient) -> None:
            seen = 0
            while True:
                line, _ = await client.read_response()
                n = parse_exists(line)
                if n is None:
                    continue
                now = time.perf_counter()
                while seen < min(n - ctx.size, len(sent)):
                    latencies.append((now - sent[seen]) * 1000)
                    seen_by[seen] += 1
                    if seen_by[seen] == k:
                        all_seen[seen].set()
                    seen += 1

        listeners = [asyncio.create_task(listen(c)) for c in clients]
        lmtp = await ctx.lmtp()
        missed = 0
        async with meter.region() as sample:
            peak = await meter.sample_memory()
            for j in range(deliveries):
                sent.append(time.perf_counter())
                await lmtp.deliver(ctx.corpus.message(ctx.size + j), ctx.endpoints.rcpt)
                try:
                    await asyncio.wait_for(all_seen[j].wait(), NOTIFY_TIMEOUT)
                except TimeoutError:
                    missed += k - seen_by[j]
                await asyncio.sleep(0.2)
            sample.ops = len(latencies)
        await lmtp.quit()
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        sample.metrics = {
            "ms": percentile(latencies, 99),
            "p50_ms": percentile(latencies, 50),
            "setup_s": setup,
            "memory_MB": peak.pss / 1e6,
            "per_session_kB": (peak.pss - before.pss) / k / 1e3,
            "processes": float(peak.processes),
            "missed": float(missed),
        }


async def _remove_extra(ctx: Context) -> None:
    """Expunge what the IDLE runs delivered beyond the corpus."""
    client = await ctx.imap()
    box = await client.select("INBOX")
    if box.exists > ctx.size:
        await client.command(b"STORE %d:* +FLAGS.SILENT (\\Deleted)" % (ctx.size + 1))
        await client.command(b"EXPUNGE")
    await client.logout()


def workloads(counts: tuple[int, ...]) -> list[Workload]:
    return [Idle(k) for k in counts]
