"""One measured region of a workload: wall time seen by the client, CPU seconds and peak memory
of the server's process tree (see ``bench.procstat`` for the method)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bench import procstat


@dataclass
class Sample:
    """The figures of one measured run."""

    wall: float = 0.0
    cpu: float = 0.0
    pss: int = 0
    rss: int = 0
    processes: int = 0
    ops: int = 0
    octets: int = 0
    metrics: dict[str, float] = field(default_factory=dict)


class Meter:
    """Measures regions of one workload run against the server whose tree is rooted at
    ``pid``. A workload calls ``region()`` exactly once around what it measures, and may call
    ``sample_memory()`` at moments it knows to be its peak (e.g. all IDLE clients connected)."""

    def __init__(self, pid: int, settle: bool = True) -> None:
        self.pid = pid
        self.result = Sample()
        self._settle = settle
        self._sampler: procstat.MemorySampler | None = None

    def _quiet_cpu(self) -> float:
        return procstat.settle(self.pid) if self._settle else procstat.cpu_seconds(self.pid)

    @asynccontextmanager
    async def region(self) -> AsyncIterator[Sample]:
        cpu0 = await asyncio.to_thread(self._quiet_cpu)
        sampler = procstat.MemorySampler(self.pid)
        self._sampler = sampler
        with sampler:
            t0 = time.perf_counter()
            yield self.result
            self.result.wall = time.perf_counter() - t0
            sampler.sample()
        cpu1 = await asyncio.to_thread(self._quiet_cpu)
        self._sampler = None
        self.result.cpu = cpu1 - cpu0
        self.result.pss = sampler.peak.pss
        self.result.rss = sampler.peak.rss
        self.result.processes = sampler.peak.processes

    async def sample_memory(self) -> procstat.Memory:
        """Memory now (and counted in the region's peak when inside a region)."""
        if self._sampler is not None:
            return await asyncio.to_thread(self._sampler.sample)
        return await asyncio.to_thread(procstat.memory, self.pid)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
