"""SEARCH for the corpus's planted needles; the result count must match the corpus."""

from __future__ import annotations

from bench.corpus import NEEDLES
from bench.measure import Meter
from bench.proto.imap import quoted
from bench.workloads.base import Context, Workload, expect


class Search(Workload):
    def __init__(self, needle: str) -> None:
        self.needle = NEEDLES[needle]
        self.key = needle
        self.name = f"search-{needle}"
        self.description = f"UID SEARCH {self.needle.key} {self.needle.text!r}"

    async def run(self, ctx: Context, meter: Meter) -> None:
        client = await ctx.imap()
        async with meter.region() as sample:
            if self.needle.charset is None:
                found = await client.search(
                    self.needle.key.encode() + b" " + quoted(self.needle.text)
                )
            else:
                criteria = f"CHARSET {self.needle.charset} {self.needle.key}".encode()
                found = await client.search(criteria, self.needle.text.encode())
            sample.ops = len(found)
        await client.logout()
        expect(self.description, len(found), ctx.expected[self.key])


def workloads() -> list[Workload]:
    return [Search(n) for n in ("from", "subject", "body", "text")]
