"""The performance targets mailkeep (on SQLite) is held to, and how each is judged.

Comparative targets use the *speed ratio* of the workload's headline figure: mailkeep's
throughput over Dovecot's, or Dovecot's time over mailkeep's, so that above 1 always means
mailkeep is faster. Absolute targets look at mailkeep's own figures. A target whose figures
are missing (workload skipped, failed, or a server not run) is "not measured".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from bench.runner import Result, Run
from bench.workloads.base import Workload

MK, DC = "mailkeep", "dovecot"
SCALE_SIZE = 1_000_000
GROWTH_LIMIT = 1.15
"""Largest accepted exponent b in time ~ N^b between the two largest sizes (1 = linear; the
margin absorbs noise and fixed per-command costs that shrink relative to N)."""


@dataclass(frozen=True)
class Verdict:
    target: str
    size: int | None
    met: bool | None  # None: not measured
    value: str

    @property
    def mark(self) -> str:
        return {True: "met", False: "NOT met", None: "not measured"}[self.met]


def speed_ratio(mk: Result | None, dc: Result | None) -> float | None:
    """mailkeep speed / Dovecot speed for one workload (>1: mailkeep faster)."""
    if mk is None or dc is None:
        return None
    a, b = mk.median(), dc.median()
    if a is None or b is None or not a["headline"] or not b["headline"]:
        return None
    if Workload.higher_is_better(mk.unit):  # type: ignore[arg-type]
        return a["headline"] / b["headline"]
    return b["headline"] / a["headline"]


@dataclass(frozen=True)
class Relative:
    """mailkeep at least ``minimum`` times Dovecot's speed on each of ``workloads``."""

    text: str
    workloads: tuple[str, ...]
    minimum: float

    def judge(self, run: Run) -> list[Verdict]:
        out = []
        for size in run.sizes:
            for w in self.workloads:
                mk = run.find(size, w, MK)
                ratio = speed_ratio(mk, run.find(size, w, DC))
                if ratio is None:
                    if mk is not None and mk.skipped is None:  # ran (or failed): say so
                        out.append(Verdict(f"{self.text} [{w}]", size, None, "–"))
                    continue
                out.append(
                    Verdict(f"{self.text} [{w}]", size, ratio >= self.minimum, f"{ratio:.2f}x")
                )
        return out


@dataclass(frozen=True)
class Absolute:
    """A figure of mailkeep's own: ``metric`` of ``workload`` at ``size`` (None: any size)
    compared with ``limit`` (``below``: must be under it)."""

    text: str
    workload: str
    metric: str
    limit: float
    size: int | None = None
    below: bool = True
    scale: float = 1.0
    unit: str = ""

    def judge(self, run: Run) -> list[Verdict]:
        out = []
        sizes = (
            [self.size]
            if self.size is not None
            else [size for size in run.sizes if run.find(size, self.workload, MK) is not None]
        )
        for size in sizes:
            result = run.find(size, self.workload, MK)
            m = result.median() if result else None
            if m is None or self.metric not in m:
                out.append(Verdict(self.text, size, None, "–"))
                continue
            value = m[self.metric] * self.scale
            ok = value < self.limit if self.below else value >= self.limit
            out.append(Verdict(self.text, size, ok, f"{value:,.1f}{self.unit}"))
        return out or [Verdict(self.text, None, None, "not run")]


@dataclass(frozen=True)
class Growth:
    """No workload's wall time grows faster than linearly between the two largest sizes."""

    text: str = "no workload grows faster than linearly (exponent ≤ 1.15)"

    def judge(self, run: Run) -> list[Verdict]:
        if len(run.sizes) < 2:
            return [Verdict(self.text, None, None, "needs two sizes")]
        small, large = sorted(run.sizes)[-2:]
        worst: tuple[float, str] | None = None
        for result in run.results:
            if result.server != MK or result.size != large:
                continue
            before = run.find(small, result.workload, MK)
            a, b = (before.median() if before else None), result.median()
            if a is None or b is None or a["wall"] <= 0 or b["wall"] <= 0:
                continue
            exponent = math.log(b["wall"] / a["wall"]) / math.log(large / small)
            if worst is None or exponent > worst[0]:
                worst = (exponent, result.workload)
        if worst is None:
            return [Verdict(self.text, large, None, "–")]
        return [Verdict(self.text, large, worst[0] <= GROWTH_LIMIT, f"{worst[0]:.2f} ({worst[1]})")]


Target = Relative | Absolute | Growth

TARGETS: tuple[Target, ...] = (
    Relative("delivery at least as fast", ("deliver-lmtp4", "deliver-append"), 1.0),
    Relative(
        "FETCH no slower (warm)", ("fetch-envelope", "fetch-bodystructure", "fetch-headers"), 1.0
    ),
    Relative("download at least half Dovecot's MB/s", ("fetch-body", "pop3-retr"), 0.5),
    Relative("SEARCH FROM/SUBJECT no slower", ("search-from", "search-subject"), 1.0),
    Relative("SEARCH BODY/TEXT at least 10x faster", ("search-body", "search-text"), 10.0),
    Relative(
        "STORE/COPY/EXPUNGE within 1.5x", ("store-flags", "copy-1000", "expunge-10pct"), 1 / 1.5
    ),
    Relative("20-client mix at least Dovecot's ops/s", ("mix",), 1.0),
    Absolute("10,000 IDLE: notification p99 < 1 s", "idle-10000", "ms", 1000, unit=" ms"),
    Absolute("10,000 IDLE: memory < 500 MB", "idle-10000", "memory_MB", 500, unit=" MB"),
    Absolute("10,000 IDLE: one process", "idle-10000", "processes", 1.5, unit=""),
    Absolute("1M: LOGIN+SELECT < 200 ms", "login-select", "ms", 200, SCALE_SIZE, unit=" ms"),
    Absolute(
        "1M: memory per selected session < 20 MB",
        "session-memory",
        "MB",
        20,
        SCALE_SIZE,
        unit=" MB",
    ),
    Growth(),
)


def judge(run: Run, targets: tuple[Target, ...] = TARGETS) -> list[Verdict]:
    out: list[Verdict] = []
    for target in targets:
        out.extend(target.judge(run))
    return out


def lookup(verdicts: list[Verdict]) -> Callable[[int, str], str]:
    """For the main table: the verdict marks of the comparative targets on a workload row."""

    def mark(size: int, workload: str) -> str:
        for v in verdicts:
            if v.size == size and v.target.endswith(f"[{workload}]"):
                return v.mark
        return ""

    return mark
