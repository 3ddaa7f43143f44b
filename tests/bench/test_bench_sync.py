"""The ``mailkeep sync`` versus mbsync workloads (``bench.workloads.sync``) against a
``mailkeep serve`` started here on a small corpus: each client's Maildir must hold the corpus
(its own check), and the check fails on a Maildir that does not. Nothing here asserts
timings."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.corpus import Corpus, CorpusSpec
from bench.measure import Meter, Sample
from bench.report import markdown
from bench.runner import Result, Run
from bench.servers import Mailkeep
from bench.workloads import Context, Options
from bench.workloads.base import CheckFailed, Unsupported
from bench.workloads.delivery import load
from bench.workloads.sync import (
    CLIENTS,
    Sync,
    SyncClient,
    as_served,
    check_maildir,
    maildir_messages,
)

SMALL = CorpusSpec(size=60, seed=5, attachment_rate=0.05)
OPTIONS = Options()


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus(SMALL)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, corpus: Corpus) -> Iterator[Mailkeep]:
    server = Mailkeep(tmp_path_factory.mktemp("sync-bench"))
    server.reset()
    try:
        assert asyncio.run(load(server.endpoints, corpus, 2, progress=False)) == len(corpus)
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)


async def run_once(workload: Sync, server: Mailkeep, corpus: Corpus) -> dict[str, float]:
    ctx = Context(server, corpus, OPTIONS, [], corpus.expected_counts())
    meter = Meter(server.pid, settle=False)
    try:
        await workload.run(ctx, meter)
    except Unsupported as e:
        pytest.skip(str(e))
    finally:
        await ctx.release()
    assert meter.result.ops == len(corpus)
    return meter.result.metrics


@pytest.mark.parametrize("client", list(CLIENTS.values()), ids=list(CLIENTS))
async def test_sync_workloads_check_their_maildirs(
    loaded: Mailkeep, corpus: Corpus, client: SyncClient, tmp_path: Path
) -> None:
    initial = Sync(client, initial=True, scratch=tmp_path / "initial")
    metrics = await run_once(initial, loaded, corpus)
    assert metrics["client_cpu"] > 0
    assert metrics["client_rss_MB"] > 0
    assert not (tmp_path / "initial" / loaded.name).exists()  # removed after the run
    nochange = Sync(client, initial=False, scratch=tmp_path / "nochange")
    # The first run syncs (unmeasured) and resyncs; the second reuses the synced Maildir,
    # and the client must report nothing new (checked by the workload).
    await run_once(nochange, loaded, corpus)
    maildir = tmp_path / "nochange" / loaded.name / "Maildir"
    first = sorted(p.name for p in maildir_messages(maildir))
    await run_once(nochange, loaded, corpus)
    assert sorted(p.name for p in maildir_messages(maildir)) == first
    # The same checks reject a Maildir that lost a message, or holds a changed one.
    ctx = Context(loaded, corpus, OPTIONS)
    victim = maildir_messages(maildir)[0]
    raw = victim.read_bytes()
    victim.unlink()
    with pytest.raises(CheckFailed, match="messages in"):
        check_maildir(ctx, maildir, client.name)
    victim.write_bytes(raw.replace(b"Subject:", b"Subject: changed", 1))
    with pytest.raises(CheckFailed):
        check_maildir(ctx, maildir, client.name)


def test_as_served_undoes_mbsync_storage() -> None:
    served = b"Subject: x\r\nX-Other: 1\r\n\r\nbody\r\nX-TUID: stays in the body\r\n"
    stored = b"Subject: x\nX-TUID: AbCdEf123456\nX-Other: 1\n\nbody\nX-TUID: stays in the body\n"
    assert as_served(stored) == served
    assert as_served(served) == served


def test_report_shows_the_client_figures() -> None:
    """The clients' own CPU and memory get a table below the size's main table."""
    run = Run([5000], ["mailkeep", "dovecot"])
    for server, client_cpu in (("mailkeep", 1.5), ("dovecot", 2.5)):
        result = Result(5000, "sync-initial-mbsync", server, "s", "read", "")
        for wall in (3.0, 4.0, 5.0):
            metrics = {"client_cpu": client_cpu, "client_rss_MB": 12.0}
            result.samples.append(Sample(wall=wall, cpu=0.25, ops=5000, metrics=metrics))
            result.headlines.append(wall)
        run.results.append(result)
    meta = {
        "command": "make bench",
        "date": "2026-01-01",
        "options": {"reps": 3},
        "machine": {
            "cpu": "x",
            "cores": 2,
            "memory_bytes": 2**30,
            "kernel": "k",
            "python": "3.11",
            "mailkeep_commit": "c",
            "servers": {},
        },
    }
    text = markdown(run, meta, [])
    assert "| sync-initial-mbsync | mailkeep | 4.00 | 1.50 | 0.25 | 12 |" in text
    assert "| sync-initial-mbsync | dovecot | 4.00 | 2.50 | 0.25 | 12 |" in text
