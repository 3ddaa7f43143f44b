"""Runs every workload against every server, alternating, and keeps every sample.

Order, per corpus size:
1. delivery workloads: for each, for each repetition, each server (order alternating per
   repetition) is reset to empty and the corpus delivered; no warm-up (the corpus is rendered
   in memory beforehand, so generating it is not measured);
2. any server whose INBOX does not hold the corpus now is reset and loaded (streaming LMTP, or
   ``bench.bulk`` for corpora of ``bulk_from`` messages and more);
3. correctness checks, once per server (counts, needles, every message byte for byte);
4. read workloads: for each, one unmeasured warm-up run per server, then the repetitions,
   servers alternating;
5. IDLE workloads at the first size only (they measure connections, not mailbox size), without
   warm-up, ``Options.idle_reps`` runs (each run samples K x deliveries latencies).
A workload that fails on one server is recorded with its error; the run goes on.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import bulk, checks
from bench.corpus import Corpus, CorpusSpec
from bench.measure import Meter, Sample
from bench.servers import Server, ServerError
from bench.workloads import Context, Options, Workload
from bench.workloads.base import CheckFailed, Unsupported
from bench.workloads.delivery import load

SCALE_FROM = 200_000
"""Corpora at least this large use the scale profile (fewer attachments)."""
DOWNLOAD_CHECK_MAX = 50_000
"""Byte-for-byte download checks run up to this size (the 1M mailbox is several GB)."""


def corpus_spec(size: int, seed: int) -> CorpusSpec:
    rate = 0.002 if size >= SCALE_FROM else 0.04
    return CorpusSpec(size=size, seed=seed, attachment_rate=rate)


@dataclass
class Result:
    """All repetitions of one workload on one server at one size."""

    size: int
    workload: str
    server: str
    unit: str
    kind: str
    description: str
    samples: list[Sample] = field(default_factory=list)
    headlines: list[float] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None

    def median(self) -> dict[str, float] | None:
        if not self.samples:
            return None
        out = {
            "headline": statistics.median(self.headlines),
            "wall": statistics.median(s.wall for s in self.samples),
            "cpu": statistics.median(s.cpu for s in self.samples),
            "pss": statistics.median(s.pss for s in self.samples),
            "rss": statistics.median(s.rss for s in self.samples),
            "processes": statistics.median(s.processes for s in self.samples),
            "ops": statistics.median(s.ops for s in self.samples),
            "octets": statistics.median(s.octets for s in self.samples),
        }
        for key in self.samples[0].metrics:
            values = [s.metrics[key] for s in self.samples if key in s.metrics]
            out[key] = statistics.median(values)
        return out


@dataclass
class Run:
    sizes: list[int]
    servers: list[str]
    results: list[Result] = field(default_factory=list)
    checks: dict[str, dict[int, list[checks.Check]]] = field(default_factory=dict)
    loads: dict[str, dict[int, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def find(self, size: int, workload: str, server: str) -> Result | None:
        for r in self.results:
            if (r.size, r.workload, r.server) == (size, workload, server):
                return r
        return None


@dataclass
class Runner:
    servers: Sequence[Server]
    workloads: Sequence[Workload]
    sizes: Sequence[int]
    reps: int
    options: Options
    seed: int = 1
    run_checks: bool = True
    timeout: float = 1800.0
    """Seconds one run of a workload may take before it is abandoned as failed."""
    bulk_from: int = 50_000
    """Corpora at least this large are loaded through ``bench.bulk``, not LMTP."""
    scratch: Path = Path("bench/results/tmp")
    """Where the bulk path caches its Maildir copies of the corpus."""
    log: Callable[[str], None] = print
    _loaded: dict[str, CorpusSpec | None] = field(default_factory=dict)

    async def run(self) -> Run:
        t0 = time.monotonic()
        run = Run(list(self.sizes), [s.name for s in self.servers])
        for server in self.servers:
            run.checks[server.name] = {}
            run.loads[server.name] = {}
        for index, size in enumerate(self.sizes):
            await self._size(run, size, first=index == 0)
        run.seconds = time.monotonic() - t0
        return run

    async def _size(self, run: Run, size: int, first: bool) -> None:
        spec = corpus_spec(size, self.seed)
        corpus = Corpus(spec)
        self.log(f"== {size:,} messages (seed {spec.seed}, attachments {spec.attachment_rate:.1%})")
        expected = corpus.expected_counts()
        contexts = {s.name: Context(s, corpus, self.options, [], expected) for s in self.servers}
        deliveries = [w for w in self.workloads if w.kind == "delivery"]
        probe = contexts[self.servers[0].name]
        if any(w.skip_reason(probe) is None for w in deliveries):
            t = time.monotonic()
            messages = list(corpus.messages())
            self.log(
                f"  corpus rendered: {sum(map(len, messages)) / 1e6:,.0f} MB in "
                f"{time.monotonic() - t:.1f} s"
            )
            for ctx in contexts.values():
                ctx.messages = messages
        for workload in deliveries:
            await self._workload(run, workload, contexts, warmup=False)
        for ctx in contexts.values():
            ctx.messages = []
        for server in self.servers:
            if self._loaded.get(server.name) != spec:
                await self._load(run, server, corpus)
            if self.run_checks and self._loaded.get(server.name) == spec:
                await self._checks(run, server, corpus)
        for workload in self.workloads:
            if workload.kind == "read":
                await self._workload(run, workload, contexts, warmup=True)
            elif workload.kind == "idle" and first:
                await self._workload(run, workload, contexts, warmup=False)

    async def _load(self, run: Run, server: Server, corpus: Corpus) -> None:
        use_bulk = len(corpus) >= self.bulk_from
        how = "through the bulk path" if use_bulk else "over LMTP"
        self.log(f"  {server.name}: loading {len(corpus):,} messages {how}")
        t = time.monotonic()
        try:
            server.reset()
            if use_bulk:
                maildir = await asyncio.to_thread(
                    bulk.write_maildir, corpus, self.scratch, progress=True
                )
                await asyncio.to_thread(server.bulk_load, maildir)
            else:
                await load(server.endpoints, corpus, self.options.loader_connections, True)
        except Exception as e:  # recorded, the other server goes on
            self._loaded[server.name] = None
            run.notes.append(f"{server.name}: loading {len(corpus):,} messages failed: {e}")
            self.log(f"  {server.name}: load failed: {e}")
            return
        run.loads[server.name][len(corpus)] = time.monotonic() - t
        self._loaded[server.name] = corpus.spec
        self.log(f"  {server.name}: loaded in {time.monotonic() - t:.1f} s")

    async def _checks(self, run: Run, server: Server, corpus: Corpus) -> None:
        try:
            found = await checks.run_checks(
                server.endpoints, corpus, download=len(corpus) <= DOWNLOAD_CHECK_MAX
            )
        except Exception as e:
            found = [checks.Check("checks", False, f"{type(e).__name__}: {e}")]
        run.checks[server.name][len(corpus)] = found
        bad = [c for c in found if not c.ok]
        self.log(
            f"  {server.name}: checks {len(found) - len(bad)}/{len(found)} passed"
            + "".join(f"\n    FAILED {c.name}: {c.detail}" for c in bad)
        )

    async def _workload(
        self, run: Run, workload: Workload, contexts: dict[str, Context], warmup: bool
    ) -> None:
        results: dict[str, Result] = {}
        for server in self.servers:
            ctx = contexts[server.name]
            result = Result(
                ctx.size,
                workload.name,
                server.name,
                workload.unit,
                workload.kind,
                workload.description,
            )
            run.results.append(result)
            results[server.name] = result
            result.skipped = workload.skip_reason(ctx)
            if result.skipped is None and workload.kind != "delivery":
                if not server.alive():
                    run.notes.append(f"{server.name} had stopped before {workload.name}; restarted")
                    await self._load(run, server, ctx.corpus)
                if self._loaded.get(server.name) != ctx.corpus.spec:
                    result.skipped = "mailbox not loaded"
            if result.skipped is None and warmup:
                try:
                    await self._once(workload, ctx)
                except Unsupported as e:
                    result.skipped = str(e)
                except Exception as e:
                    self._fail(result, e)
        reps = self.options.idle_reps if workload.kind == "idle" else self.reps
        for rep in range(reps):
            order = self.servers if rep % 2 == 0 else list(reversed(self.servers))
            for server in order:
                result = results[server.name]
                if result.skipped is not None or result.error is not None:
                    continue
                ctx = contexts[server.name]
                try:
                    sample = await self._once(workload, ctx)
                except Unsupported as e:
                    result.skipped = str(e)
                    continue
                except Exception as e:
                    self._fail(result, e)
                    continue
                result.samples.append(sample)
                result.headlines.append(workload.headline(sample))
        for server in self.servers:
            self._print(results[server.name])

    async def _once(self, workload: Workload, ctx: Context) -> Sample:
        server = ctx.server
        if workload.kind == "delivery":
            self._loaded[server.name] = None
            server.reset()
        meter = Meter(server.pid)
        try:
            await asyncio.wait_for(workload.run(ctx, meter), self.timeout)
        except TimeoutError:
            # Whatever the workload left behind (extra mailboxes, messages) is unknown now.
            self._loaded[server.name] = None
            raise TimeoutError(f"no result after {self.timeout:.0f} s") from None
        finally:
            await ctx.release()
        if workload.kind == "delivery":
            self._loaded[server.name] = ctx.corpus.spec
        return meter.result

    def _fail(self, result: Result, error: Exception) -> None:
        result.error = f"{type(error).__name__}: {error}"
        if not isinstance(error, ServerError | CheckFailed | ConnectionError):
            detail = traceback.format_exception(error)
            result.error += " @ " + detail[-2].strip().replace("\n", " ")[:200]

    def _print(self, result: Result) -> None:
        head = f"  {result.server:<9} {result.workload:<22}"
        if result.skipped:
            self.log(f"{head} skipped: {result.skipped}")
        elif result.error and not result.samples:
            self.log(f"{head} ERROR {result.error}")
        else:
            m = result.median()
            assert m is not None
            extra = (
                f" (error after {len(result.samples)} reps: {result.error})" if result.error else ""
            )
            self.log(
                f"{head} {m['headline']:>10.3f} {result.unit:<5} wall {m['wall']:7.3f} s  "
                f"cpu {m['cpu']:7.3f} s  pss {m['pss'] / 1e6:7.1f} MB{extra}"
            )
