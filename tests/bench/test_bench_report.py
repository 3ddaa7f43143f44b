"""Targets are judged from the medians as documented, and the report shows them."""

from __future__ import annotations

from pathlib import Path

from bench.measure import Sample
from bench.report import markdown, update_docs
from bench.runner import Result, Run
from bench.targets import judge, speed_ratio


def _result(size: int, workload: str, server: str, unit: str, walls: list[float]) -> Result:
    r = Result(size, workload, server, unit, "read", "")
    for wall in walls:
        r.samples.append(Sample(wall=wall, cpu=wall / 2, pss=10_000_000, ops=size))
        r.headlines.append(size / wall if unit == "msg/s" else wall)
    return r


def _run() -> Run:
    run = Run([5000, 50000], ["mailkeep", "dovecot"])
    for size, scale in ((5000, 1), (50000, 10)):
        run.results += [
            _result(size, "fetch-envelope", "mailkeep", "msg/s", [scale * x for x in (1, 2, 9)]),
            _result(size, "fetch-envelope", "dovecot", "msg/s", [scale * x for x in (1, 1, 1)]),
            _result(size, "search-body", "mailkeep", "s", [0.01 * scale]),
            _result(size, "search-body", "dovecot", "s", [0.2 * scale]),
        ]
    # grows quadratically for mailkeep between the two sizes
    run.results.append(_result(5000, "store-flags", "mailkeep", "s", [0.1]))
    run.results.append(_result(50000, "store-flags", "mailkeep", "s", [10.0]))
    return run


def test_speed_ratio_uses_medians_and_direction() -> None:
    run = _run()
    fetch = speed_ratio(
        run.find(5000, "fetch-envelope", "mailkeep"), run.find(5000, "fetch-envelope", "dovecot")
    )
    assert fetch == 0.5  # median wall 2 s against 1 s: half the msg/s
    search = speed_ratio(
        run.find(5000, "search-body", "mailkeep"), run.find(5000, "search-body", "dovecot")
    )
    assert search is not None
    assert round(search, 6) == 20.0


def test_verdicts() -> None:
    verdicts = {(v.target, v.size): v for v in judge(_run())}
    assert verdicts[("FETCH no slower (warm) [fetch-envelope]", 5000)].met is False
    assert verdicts[("SEARCH BODY/TEXT at least 10x faster [search-body]", 50000)].met is True
    growth = verdicts[("no workload grows faster than linearly (exponent ≤ 1.15)", 50000)]
    assert growth.met is False
    assert "store-flags" in growth.value
    assert verdicts[("1M: LOGIN+SELECT < 200 ms", 1_000_000)].met is None


def test_markdown_and_docs_section(tmp_path: Path) -> None:
    run = _run()
    meta = {
        "command": "make bench",
        "date": "2026-01-01T00:00:00+00:00",
        "options": {"reps": 3},
        "machine": {
            "cpu": "cpu",
            "cores": 2,
            "memory_bytes": 2**30,
            "kernel": "6",
            "python": "3.11",
            "mailkeep_commit": "abc",
            "servers": {"dovecot": {"version": "2.3"}},
        },
    }
    text = markdown(run, meta, judge(run))
    assert "| fetch-envelope | msg/s |" in text
    assert "NOT met" in text
    assert "### Targets (mailkeep on SQLite)" in text  # the default store
    meta["options"] = {"reps": 3, "mailkeep_store": "postgresql://root@127.0.0.1/mkb"}
    assert "### Targets (mailkeep on PostgreSQL)" in markdown(run, meta, judge(run))
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# B\n\nintro\n\n<!-- bench:results:begin -->\nold\n<!-- bench:results:end -->\n"
    )
    update_docs(text, doc)
    updated = doc.read_text()
    assert updated.startswith("# B\n\nintro\n")
    assert "old" not in updated
    assert "| fetch-envelope | msg/s |" in updated
