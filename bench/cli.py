"""``python -m bench`` (``make bench BENCH_ARGS=...``): options, presets, and the run.

Presets (``--sizes`` etc. override them):
- default: N = 5,000 and 50,000 (deliveries measured at 5,000); IDLE K = 500, 2,000; 20-client
  mix for 20 s; 3 repetitions.
- ``--quick``: N = 500; IDLE K = 200; mix 5 s. A minute-scale smoke run.
- ``--full``: deliveries also at 50,000, the 1,000,000-message mailbox, IDLE K = 10,000.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import fnmatch
import json
import resource
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import report
from bench.runner import Runner
from bench.servers import REPO, Dovecot, Mailkeep, Server, ServerError
from bench.targets import judge
from bench.workloads import Options, build


@dataclass(frozen=True)
class Preset:
    sizes: tuple[int, ...]
    idle: tuple[int, ...]
    mix_seconds: float = 20.0
    login_iterations: int = 20
    delivery_max: int = 5_000


PRESETS: dict[str, Preset] = {
    "quick": Preset((500,), (200,), mix_seconds=5.0, login_iterations=10),
    "default": Preset((5_000, 50_000), (500, 2_000)),
    "full": Preset((5_000, 50_000, 1_000_000), (500, 2_000, 10_000), delivery_max=50_000),
}


def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x]


def _ints_one(text: str) -> int:
    return int(text.replace("_", "").replace(",", ""))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="mailkeep and Dovecot side by side, on loopback, in one run.",
    )
    preset = p.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true", help="N=500, a minute-scale run")
    preset.add_argument("--full", action="store_true", help="also 1M messages, 10,000 IDLE")
    p.add_argument("--sizes", type=_ints, help="corpus sizes, e.g. 5000,50000")
    p.add_argument("--reps", type=int, default=3, help="measured repetitions (median shown)")
    p.add_argument("--servers", default="mailkeep,dovecot", help="which servers, in order")
    p.add_argument(
        "--workloads", default="*", help="comma-separated name patterns, e.g. 'fetch-*,search-*'"
    )
    p.add_argument("--idle", type=_ints, help="IDLE connection counts, e.g. 500,2000")
    p.add_argument("--idle-reps", type=int, default=1, help="IDLE runs per server (default 1)")
    p.add_argument("--mix-seconds", type=float, help="duration of the mixed workload")
    p.add_argument(
        "--delivery-max", type=int, help="largest N delivered in measured runs (default 5000)"
    )
    p.add_argument("--timeout", type=float, default=1800, help="seconds one workload run may take")
    p.add_argument("--seed", type=int, default=1, help="corpus seed")
    p.add_argument(
        "--bulk-from",
        type=_ints_one,
        default=50_000,
        help="load corpora of this many messages and more through the bulk path (bench.bulk)",
    )
    p.add_argument("--plugin", action="append", default=[], help="module adding workloads")
    p.add_argument("--mailkeep-store", help="store URL, e.g. postgresql://... (default SQLite)")
    p.add_argument("--no-checks", action="store_true", help="skip the correctness checks")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="results dir")
    docs = p.add_mutually_exclusive_group()
    docs.add_argument(
        "--docs",
        dest="docs",
        action="store_true",
        default=None,
        help="write the table into docs/benchmarks.md (default unless --quick)",
    )
    docs.add_argument("--no-docs", dest="docs", action="store_false")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    return p


def raise_fd_limit() -> int:
    """Soft limit of open files up to the hard limit: 10,000 IDLE clients need 10,000 sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    name = "quick" if args.quick else "full" if args.full else "default"
    preset = PRESETS[name]
    sizes = args.sizes or list(preset.sizes)
    idle = tuple(args.idle or preset.idle)
    options = Options(
        mix_seconds=args.mix_seconds or preset.mix_seconds,
        idle_counts=idle,
        login_iterations=preset.login_iterations,
        delivery_max=args.delivery_max or preset.delivery_max,
        idle_reps=args.idle_reps,
    )
    patterns = args.workloads.split(",")
    workloads = [
        w for w in build(options, args.plugin) if any(fnmatch.fnmatch(w.name, p) for p in patterns)
    ]
    if args.list:
        for w in workloads:
            print(f"{w.name:<22} {w.kind:<9} {w.unit:<6} {w.description}")
        return 0
    fds = raise_fd_limit()
    if max(idle, default=0) + 100 > fds:
        print(f"warning: open-file limit {fds} is below the IDLE connection count", file=sys.stderr)
    base = args.out / "tmp"
    available: dict[str, Server] = {
        "mailkeep": Mailkeep(base / "mailkeep", store=args.mailkeep_store),
        "dovecot": Dovecot(),
    }
    servers: list[Server] = []
    notes: list[str] = []
    for server_name in args.servers.split(","):
        server = available[server_name]
        try:
            server.reset()
        except ServerError as e:
            notes.append(f"{server_name} did not start: {e}")
            print(f"{server_name} did not start, running without it: {e}", file=sys.stderr)
            continue
        servers.append(server)
    if not servers:
        print("no server started", file=sys.stderr)
        return 1
    date = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    meta: dict[str, Any] = {
        "command": "",
        "date": date.isoformat(),
        "preset": name,
        "options": {
            "reps": args.reps,
            "seed": args.seed,
            "mailkeep_store": args.mailkeep_store,
            **dataclasses.asdict(options),
        },
        # Recorded before the run: the checkout may change while a long run goes on.
        "machine": report.machine(servers),
    }
    command = "make bench" + (
        f" BENCH_ARGS={shlex.quote(shlex.join(argv or sys.argv[1:]))}"
        if (argv or sys.argv[1:])
        else ""
    )
    meta["command"] = command
    runner = Runner(
        servers,
        workloads,
        sizes,
        args.reps,
        options,
        seed=args.seed,
        run_checks=not args.no_checks,
        timeout=args.timeout,
        bulk_from=args.bulk_from,
        scratch=base,
    )
    try:
        run = asyncio.run(runner.run())
    finally:
        for server in servers:
            server.stop()
        # mailkeep's data directory holds the last corpus (GBs at 50,000 messages); its
        # serve.log stays for inspection. Dovecot's is wiped by its next start.
        shutil.rmtree(base / "mailkeep" / "data", ignore_errors=True)
    run.notes[:0] = notes
    meta["machine"]["mailkeep_commit_after"] = report.machine([])["mailkeep_commit"]
    verdicts = judge(run)
    text = report.markdown(run, meta, verdicts)
    print()
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = date.strftime("%Y%m%dT%H%M%SZ")
    (args.out / f"{stamp}.json").write_text(
        json.dumps(report.to_json(run, meta, verdicts), indent=1, default=str)
    )
    (args.out / f"{stamp}.md").write_text(text)
    if args.docs if args.docs is not None else name != "quick":
        report.update_docs(text)
        print(f"\nwrote {args.out / stamp}.json and docs/benchmarks.md")
    else:
        print(f"\nwrote {args.out / stamp}.json")
    return 0
