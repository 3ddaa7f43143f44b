"""Delivery of the whole corpus into an empty INBOX: LMTP over 1 and 4 connections, and IMAP
APPEND (one connection, pipelined with LITERAL+ when the server has it)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Iterator

from bench.corpus import Corpus, imap_date
from bench.measure import Meter
from bench.proto.imap import quoted
from bench.proto.lmtp import LmtpClient
from bench.servers import Endpoints
from bench.workloads.base import Context, Workload, expect


async def lmtp_deliver(
    endpoints: Endpoints,
    messages: Iterator[bytes],
    connections: int,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Deliver everything ``messages`` yields over ``connections`` LMTP connections sharing
    one iterator (so with one connection the order is the corpus order). Returns the count."""
    clients = [await LmtpClient.connect(endpoints.host, endpoints.lmtp) for _ in range(connections)]
    done = 0

    async def worker(client: LmtpClient) -> None:
        nonlocal done
        for message in messages:
            await client.deliver(message, endpoints.rcpt)
            done += 1
            if on_progress is not None and done % 10_000 == 0:
                on_progress(done)
        await client.quit()

    await asyncio.gather(*(worker(c) for c in clients))
    return done


async def load(endpoints: Endpoints, corpus: Corpus, connections: int, progress: bool) -> int:
    """Build the corpus mailbox without measuring: streaming LMTP, messages generated as they
    are sent (so a 1,000,000-message mailbox needs no corpus on disk or in memory)."""

    def report(n: int) -> None:
        if progress:
            print(f"  loaded {n:,}/{len(corpus):,}", flush=True)

    return await lmtp_deliver(endpoints, corpus.messages(), connections, report)


def _too_big(ctx: Context) -> str | None:
    if ctx.size > ctx.options.delivery_max:
        return f"deliveries measured up to {ctx.options.delivery_max:,} messages (see --full)"
    return None


class LmtpDelivery(Workload):
    kind = "delivery"
    unit = "msg/s"

    def __init__(self, connections: int) -> None:
        self.connections = connections
        self.name = f"deliver-lmtp{connections}"
        self.description = f"LMTP delivery of the corpus over {connections} connection(s)"

    def skip_reason(self, ctx: Context) -> str | None:
        return _too_big(ctx)

    async def run(self, ctx: Context, meter: Meter) -> None:
        messages = iter(ctx.messages)
        async with meter.region() as sample:
            sample.ops = await lmtp_deliver(ctx.endpoints, messages, self.connections)
            sample.octets = sum(len(m) for m in ctx.messages)
        expect("messages delivered", sample.ops, ctx.size)


class AppendDelivery(Workload):
    name = "deliver-append"
    kind = "delivery"
    unit = "msg/s"
    description = "APPEND of the corpus on one connection, pipelined"

    def skip_reason(self, ctx: Context) -> str | None:
        return _too_big(ctx)

    async def run(self, ctx: Context, meter: Meter) -> None:
        client = await ctx.imap(select=None)
        window = ctx.options.append_window
        async with meter.region() as sample:
            pending: collections.deque[bytes] = collections.deque()
            for i, message in enumerate(ctx.messages):
                when, tz = ctx.corpus.date(i)
                prefix = b"APPEND INBOX " + quoted(imap_date(when, tz))
                pending.append(await client.send_literal(prefix, message))
                if len(pending) >= window:
                    await client.wait([pending.popleft()])
            await client.wait(list(pending))
            sample.ops = len(ctx.messages)
            sample.octets = client.bytes_out
        box = await client.select("INBOX", examine=True)
        await client.logout()
        expect("messages after APPEND", box.exists, ctx.size)
