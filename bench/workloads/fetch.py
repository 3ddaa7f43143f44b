"""Opening a mailbox and reading it: LOGIN+SELECT latency, FETCH of the items a client's message
list needs, full download, and the memory a selected session costs."""

from __future__ import annotations

import time

from bench.measure import Meter, percentile
from bench.proto.imap import ImapClient
from bench.workloads.base import Context, Workload, expect

# Thunderbird's message-list header set.
HEADER_FIELDS = (
    b"FROM TO CC BCC SUBJECT DATE MESSAGE-ID PRIORITY X-PRIORITY REFERENCES NEWSGROUPS "
    b"IN-REPLY-TO CONTENT-TYPE REPLY-TO"
)


class LoginSelect(Workload):
    name = "login-select"
    unit = "ms"
    description = "connect, LOGIN, SELECT INBOX, LOGOUT; median of the iterations"

    async def run(self, ctx: Context, meter: Meter) -> None:
        e = ctx.endpoints
        times: list[float] = []
        async with meter.region() as sample:
            for _ in range(ctx.options.login_iterations):
                t0 = time.perf_counter()
                client = await ImapClient.connect(e.host, e.imap)
                await client.login(e.user, e.password)
                box = await client.select("INBOX")
                times.append((time.perf_counter() - t0) * 1000)
                await client.logout()
                expect("EXISTS after SELECT", box.exists, ctx.size)
            sample.ops = len(times)
        sample.metrics = {"ms": percentile(times, 50), "p99_ms": percentile(times, 99)}


class Fetch(Workload):
    """One FETCH over the whole mailbox; every message must answer."""

    max_size: int | None = None

    def __init__(self, name: str, command: bytes, unit: str = "msg/s", max_size: int | None = None):
        self.name = name
        self.command = command
        self.description = command.decode()
        self.unit = "MB/s" if unit == "MB/s" else "msg/s"
        self.max_size = max_size

    async def run(self, ctx: Context, meter: Meter) -> None:
        client = await ctx.imap()
        count = 0

        def on(line: bytes, _: list[bytes]) -> None:
            nonlocal count
            if b" FETCH " in line:
                count += 1

        before = client.bytes_in
        async with meter.region() as sample:
            await client.command(self.command, on)
            sample.ops = count
            sample.octets = client.bytes_in - before
        await client.logout()
        expect(f"FETCH responses to {self.command.decode()}", count, ctx.size)


class SessionMemory(Workload):
    name = "session-memory"
    unit = "MB"
    description = "server memory per session with INBOX selected (PSS growth / sessions)"

    async def run(self, ctx: Context, meter: Meter) -> None:
        before = await meter.sample_memory()
        clients: list[ImapClient] = []
        async with meter.region() as sample:
            for _ in range(ctx.options.sessions):
                clients.append(await ctx.imap())
            after = await meter.sample_memory()
            sample.ops = len(clients)
        for client in clients:
            await client.logout()
        growth = (after.pss - before.pss) / len(clients) / 1e6
        sample.metrics = {"MB": growth}


def workloads() -> list[Workload]:
    return [
        LoginSelect(),
        Fetch("fetch-envelope", b"UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)"),
        Fetch("fetch-bodystructure", b"FETCH 1:* BODYSTRUCTURE"),
        Fetch(
            "fetch-headers", b"FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (" + HEADER_FIELDS + b")])"
        ),
        Fetch("fetch-body", b"FETCH 1:* BODY.PEEK[]", unit="MB/s", max_size=50_000),
        SessionMemory(),
    ]
