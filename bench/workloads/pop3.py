"""POP3 over the same INBOX: UIDL, TOP n 0 of every message, RETR of everything (RFC 1939,
pipelined per RFC 2449 when announced). Nothing is deleted."""

from __future__ import annotations

from bench.measure import Meter
from bench.workloads.base import Context, Workload, expect


class Pop3Uidl(Workload):
    name = "pop3-uidl"
    unit = "s"
    description = "POP3 UIDL of the whole maildrop"

    async def run(self, ctx: Context, meter: Meter) -> None:
        client = await ctx.pop3()
        async with meter.region() as sample:
            listing = await client.uidl()
            sample.ops = len(listing)
        await client.quit()
        expect("UIDL lines", len(listing), ctx.size)


class Pop3Many(Workload):
    """One multi-line command per message, e.g. ``TOP n 0`` or ``RETR n``."""

    def __init__(self, name: str, template: str, max_size: int | None = None) -> None:
        self.name = name
        self.template = template
        self.description = f"POP3 {template} for every message"
        self.unit = "MB/s" if template.startswith("RETR") else "msg/s"
        self.max_size = max_size

    async def run(self, ctx: Context, meter: Meter) -> None:
        client = await ctx.pop3()
        commands = [self.template.format(n=n).encode() for n in range(1, ctx.size + 1)]
        count = 0

        def on(_: int, __: bytes) -> None:
            nonlocal count
            count += 1

        before = client.bytes_in
        async with meter.region() as sample:
            await client.many(commands, on)
            sample.ops = count
            sample.octets = client.bytes_in - before
        await client.quit()
        expect(f"answers to {self.template}", count, ctx.size)


def workloads() -> list[Workload]:
    return [
        Pop3Uidl(),
        Pop3Many("pop3-top", "TOP {n} 0"),
        Pop3Many("pop3-retr", "RETR {n}", max_size=50_000),
    ]
