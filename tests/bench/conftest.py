"""Fixtures for the benchmark's tests: a ``mailkeep serve`` on kernel-chosen loopback ports in a
temporary data directory, and a small corpus delivered into it."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # ``bench`` is a top-level package of the repository, not installed
    sys.path.insert(0, str(REPO))

from bench.corpus import Corpus, CorpusSpec  # noqa: E402
from bench.servers import Mailkeep, ServerError  # noqa: E402
from bench.workloads.delivery import load  # noqa: E402

SMALL = CorpusSpec(size=240, seed=7, attachment_rate=0.05)


@pytest.fixture(scope="module")
def mailkeep_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mailkeep]:
    """A running ``mailkeep serve`` with the bench account and an empty INBOX."""
    server = Mailkeep(tmp_path_factory.mktemp("mailkeep-bench"))
    try:
        server.reset()
    except ServerError as e:
        if "No such command 'serve'" in str(e) or "being built" in str(e):
            pytest.skip(f"`mailkeep serve` does not exist yet: {e}")
        raise
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)


@pytest.fixture(scope="module")
def small_corpus() -> Corpus:
    return Corpus(SMALL)


@pytest.fixture(scope="module")
def loaded_server(mailkeep_server: Mailkeep, small_corpus: Corpus) -> Mailkeep:
    """The server with the small corpus delivered over LMTP (2 connections)."""
    delivered = asyncio.run(load(mailkeep_server.endpoints, small_corpus, 2, progress=False))
    assert delivered == len(small_corpus)
    return mailkeep_server
