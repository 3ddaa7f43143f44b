"""Turning a run into JSON (everything, every sample) and a Markdown report (medians, ratios,
targets), and putting the latest report into docs/benchmarks.md."""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.runner import Result, Run
from bench.servers import REPO, Server
from bench.targets import DC, MK, Verdict, lookup

DOCS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"


def machine(servers: list[Server]) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    commit = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_bytes": mem,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "mailkeep_commit": commit,
        "servers": {s.name: {"version": s.version(), **s.notes()} for s in servers},
    }


def to_json(run: Run, meta: dict[str, Any], verdicts: list[Verdict]) -> dict[str, Any]:
    return {
        **meta,
        "sizes": run.sizes,
        "seconds": run.seconds,
        "results": [
            {
                **{k: v for k, v in dataclasses.asdict(r).items() if k != "samples"},
                "samples": [dataclasses.asdict(s) for s in r.samples],
                "median": r.median(),
            }
            for r in run.results
        ],
        "checks": {
            server: {
                str(size): [dataclasses.asdict(c) for c in found] for size, found in by.items()
            }
            for server, by in run.checks.items()
        },
        "load_seconds": run.loads,
        "targets": [dataclasses.asdict(v) | {"mark": v.mark} for v in verdicts],
        "notes": run.notes,
    }


def _num(value: float | None, digits: int = 2) -> str:
    if value is None or math.isnan(value):
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or not b:
        return "–"
    return f"{a / b:.2f}"


def _cell(result: Result | None, key: str, scale: float = 1.0) -> tuple[str, float | None]:
    if result is None:
        return "", None
    if result.skipped:
        return "skip", None
    m = result.median()
    if m is None:
        return "error", None
    value = m.get(key)
    return _num(None if value is None else value * scale), None if value is None else value * scale


def markdown(run: Run, meta: dict[str, Any], verdicts: list[Verdict]) -> str:
    mark = lookup(verdicts)
    m = meta["machine"]
    lines = [
        f"Command: `{meta['command']}`  ",
        f"Date: {meta['date']}; total {run.seconds / 60:.1f} min; "
        f"repetitions: {meta['options']['reps']} (median shown)  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_bytes'] / 2**30:.0f} GiB, "
        f"Linux {m['kernel']}, Python {m['python']}  ",
        "Servers: "
        + "; ".join(f"{name} {info['version']}" for name, info in m["servers"].items())
        + f"; mailkeep commit {m['mailkeep_commit']}"
        + (
            f" (checkout changed to {m['mailkeep_commit_after']} during the run)"
            if m.get("mailkeep_commit_after", m["mailkeep_commit"]) != m["mailkeep_commit"]
            else ""
        ),
        "",
    ]
    servers = run.servers
    for size in run.sizes:
        rows = [r for r in run.results if r.size == size]
        names = list(dict.fromkeys(r.workload for r in rows))
        lines += [
            f"### {size:,} messages",
            "",
            "| workload | unit | mailkeep | Dovecot | wall mk/dc | CPU s mk | CPU s dc | CPU mk/dc "
            "| mem MB mk | mem MB dc | target |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
        ]
        for name in names:
            mk = run.find(size, name, MK) if MK in servers else None
            dc = run.find(size, name, DC) if DC in servers else None
            either = mk or dc
            unit = either.unit if either is not None else ""
            h_mk, _ = _cell(mk, "headline")
            h_dc, _ = _cell(dc, "headline")
            _, w_mk = _cell(mk, "wall")
            _, w_dc = _cell(dc, "wall")
            c_mk, cpu_mk = _cell(mk, "cpu")
            c_dc, cpu_dc = _cell(dc, "cpu")
            p_mk, _ = _cell(mk, "pss", 1e-6)
            p_dc, _ = _cell(dc, "pss", 1e-6)
            lines.append(
                f"| {name} | {unit} | {h_mk} | {h_dc} | {_ratio(w_mk, w_dc)} | {c_mk} | {c_dc} "
                f"| {_ratio(cpu_mk, cpu_dc)} | {p_mk} | {p_dc} | {mark(size, name)} |"
            )
        lines.append("")
        lines += _details(run, size)
        lines += _clients(run, size)
    store = meta["options"].get("mailkeep_store") or "sqlite"
    lines += [
        f"### Targets (mailkeep on {'PostgreSQL' if store.startswith('postgres') else 'SQLite'})",
        "",
        "| target | N | value | verdict |",
        "|---|--:|--:|---|",
    ]
    for v in verdicts:
        lines.append(f"| {v.target} | {_num(v.size, 0) if v.size else ''} | {v.value} | {v.mark} |")
    lines.append("")
    problems = _problems(run)
    if problems:
        lines += ["### Errors, skips and failed checks", "", *problems, ""]
    return "\n".join(lines)


def _details(run: Run, size: int) -> list[str]:
    out: list[str] = []
    for server in run.servers:
        parts = []
        q, f = run.find(size, "resync-qresync", server), run.find(size, "resync-full", server)
        qm, fm = (q.median() if q else None), (f.median() if f else None)
        if qm and fm and fm["wall"]:
            parts.append(f"resync ratio QRESYNC/full {qm['wall'] / fm['wall']:.3f}")
        mix = run.find(size, "mix", server)
        mm = mix.median() if mix else None
        if mm:
            parts.append(f"mix p50 {mm['p50_ms']:.1f} ms, p99 {mm['p99_ms']:.1f} ms")
        for r in run.results:
            if r.size == size and r.server == server and r.workload.startswith("idle-"):
                im = r.median()
                if im:
                    parts.append(
                        f"{r.workload}: p50 {im['p50_ms']:.0f} ms, p99 {im['ms']:.0f} ms, "
                        f"setup {im['setup_s']:.1f} s, {im['memory_MB']:.0f} MB "
                        f"({im['per_session_kB']:.0f} kB/session, {im['processes']:.0f} "
                        f"processes), missed {im['missed']:.0f}"
                    )
        if parts:
            out.append(f"- {server}: " + "; ".join(parts))
    return [*out, ""] if out else []


def _clients(run: Run, size: int) -> list[str]:
    """Workloads that run a client process (``bench.workloads.sync``): the client's own CPU
    seconds and peak RSS, beside the server's CPU that the main table shows."""
    rows = []
    for r in run.results:
        m = r.median() if r.size == size else None
        if m is not None and "client_cpu" in m:
            rows.append(
                f"| {r.workload} | {r.server} | {_num(m['wall'])} | {_num(m['client_cpu'])} "
                f"| {_num(m['cpu'])} | {_num(m['client_rss_MB'], 0)} |"
            )
    if not rows:
        return []
    return [
        "| client run | server | wall s | client CPU s | server CPU s | client peak MB |",
        "|---|---|--:|--:|--:|--:|",
        *rows,
        "",
    ]


def _problems(run: Run) -> list[str]:
    out = []
    for r in run.results:
        if r.error:
            out.append(f"- {r.server} {r.workload} at {r.size:,}: {r.error}")
        elif r.skipped:
            out.append(f"- {r.server} {r.workload} at {r.size:,}: skipped ({r.skipped})")
    for server, by_size in run.checks.items():
        for size, found in by_size.items():
            for c in found:
                if not c.ok:
                    out.append(f"- {server} check {c.name} at {size:,}: FAILED {c.detail}")
    out += [f"- {note}" for note in run.notes]
    return out


def update_docs(report: str, path: Path = DOCS) -> None:
    """Replace the results section of docs/benchmarks.md (between the markers)."""
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    path.write_text(pattern.sub(lambda _: f"{BEGIN}\n{report}\n{END}", text))
