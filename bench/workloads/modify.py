"""Changing the mailbox: flags on every message, COPY, EXPUNGE, and resynchronisation after
changes (RFC 7162 QRESYNC versus a client that refetches all flags). Each leaves the INBOX
with the corpus in it: what they add is removed again outside the measured region."""

from __future__ import annotations

from bench.measure import Meter
from bench.proto.imap import ImapClient, ImapError, Mailbox, quoted
from bench.workloads.base import Context, Workload, expect, require

COPY_BOX = "BenchCopy"
EXPUNGE_BOX = "BenchExpunge"
CHANGES = 100


def seqset(numbers: list[int]) -> bytes:
    """A sequence set (RFC 3501 section 9, ``sequence-set``) with runs collapsed."""
    out: list[str] = []
    k = 0
    while k < len(numbers):
        j = k
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        out.append(str(numbers[k]) if j == k else f"{numbers[k]}:{numbers[j]}")
        k = j + 1
    return ",".join(out).encode()


async def recreate(client: ImapClient, mailbox: str) -> None:
    try:
        await client.command(b"DELETE " + quoted(mailbox))
    except ImapError:
        pass  # did not exist
    await client.command(b"CREATE " + quoted(mailbox))


class StoreFlags(Workload):
    name = "store-flags"
    unit = "s"
    description = r"UID STORE 1:* +FLAGS (\Seen) on every message (after clearing \Seen)"

    async def run(self, ctx: Context, meter: Meter) -> None:
        client = await ctx.imap()
        await client.command(rb"UID STORE 1:* -FLAGS.SILENT (\Seen)")
        count = 0

        def on(line: bytes, _: list[bytes]) -> None:
            nonlocal count
            if b" FETCH " in line:
                count += 1

        async with meter.region() as sample:
            await client.command(rb"UID STORE 1:* +FLAGS (\Seen)", on)
            sample.ops = count
        await client.logout()
        expect("FETCH responses to STORE", count, ctx.size)


class Copy(Workload):
    name = "copy-1000"
    unit = "s"
    description = "COPY of the first 1,000 messages into another mailbox"

    async def run(self, ctx: Context, meter: Meter) -> None:
        client = await ctx.imap()
        await recreate(client, COPY_BOX)
        n = min(ctx.options.copy_count, ctx.size)
        async with meter.region() as sample:
            await client.command(b"COPY 1:%d " % n + quoted(COPY_BOX))
            sample.ops = n
        box = await client.select(COPY_BOX, examine=True)
        await client.command(b"CLOSE")
        await client.command(b"DELETE " + quoted(COPY_BOX))
        await client.logout()
        expect("messages copied", box.exists, n)


class Expunge(Workload):
    name = "expunge-10pct"
    unit = "s"
    description = r"EXPUNGE of every 10th message (\Deleted set beforehand) in a copy of INBOX"

    async def run(self, ctx: Context, meter: Meter) -> None:
        client = await ctx.imap()
        await recreate(client, EXPUNGE_BOX)
        await client.command(b"COPY 1:* " + quoted(EXPUNGE_BOX))
        box = await client.select(EXPUNGE_BOX)
        doomed = list(range(10, box.exists + 1, 10))
        tags = [
            client.send(rb"STORE " + seqset(doomed[k : k + 2000]) + rb" +FLAGS.SILENT (\Deleted)")
            for k in range(0, len(doomed), 2000)
        ]
        await client.wait(tags)
        count = 0

        def on(line: bytes, _: list[bytes]) -> None:
            nonlocal count
            if line.endswith(b" EXPUNGE"):
                count += 1

        async with meter.region() as sample:
            await client.command(b"EXPUNGE", on)
            sample.ops = count
        await client.command(b"CLOSE")
        await client.command(b"DELETE " + quoted(EXPUNGE_BOX))
        await client.logout()
        expect("EXPUNGE responses", count, len(doomed))


async def _make_changes(ctx: Context, remember: bool = True) -> Mailbox:
    """Clear \\Flagged everywhere, remember the mailbox state as a QRESYNC client would (if
    ``remember``), then flag CHANGES messages spread over the mailbox. Returns the state."""
    writer = await ctx.imap()
    await writer.command(rb"STORE 1:* -FLAGS.SILENT (\Flagged)")
    state = Mailbox()
    if remember:
        reader = await ctx.imap(select=None)
        require(reader.capabilities, "QRESYNC")  # RFC 7162 section 3.2
        await reader.command(b"ENABLE QRESYNC")
        state = await reader.select("INBOX")
        await reader.logout()
    stride = max(1, ctx.size // CHANGES)
    changed = list(range(1, ctx.size + 1, stride))[:CHANGES]
    await writer.command(rb"STORE " + seqset(changed) + rb" +FLAGS.SILENT (\Flagged)")
    await writer.logout()
    state.fetches = len(changed)
    return state


class QresyncSelect(Workload):
    name = "resync-qresync"
    unit = "s"
    description = "SELECT (QRESYNC) after 100 flag changes (RFC 7162 section 3.2.5)"

    async def run(self, ctx: Context, meter: Meter) -> None:
        known = await _make_changes(ctx)
        client = await ctx.imap(select=None)
        await client.command(b"ENABLE QRESYNC")
        params = b"(QRESYNC (%d %d))" % (known.uidvalidity, known.highestmodseq)
        async with meter.region() as sample:
            box = await client.select("INBOX", params)
            sample.ops = box.fetches
        await client.logout()
        expect("FETCH responses to SELECT QRESYNC", box.fetches, known.fetches)


class FullResync(Workload):
    name = "resync-full"
    unit = "s"
    description = "SELECT + UID FETCH 1:* (UID FLAGS) after 100 flag changes (no CONDSTORE)"

    async def run(self, ctx: Context, meter: Meter) -> None:
        await _make_changes(ctx, remember=False)
        client = await ctx.imap(select=None)
        count = 0

        def on(line: bytes, _: list[bytes]) -> None:
            nonlocal count
            if b" FETCH " in line:
                count += 1

        async with meter.region() as sample:
            await client.select("INBOX")
            await client.command(b"UID FETCH 1:* (UID FLAGS)", on)
            sample.ops = count
        await client.logout()
        expect("FETCH responses to UID FETCH 1:* (FLAGS)", count, ctx.size)


def workloads() -> list[Workload]:
    return [StoreFlags(), Copy(), Expunge(), QresyncSelect(), FullResync()]
