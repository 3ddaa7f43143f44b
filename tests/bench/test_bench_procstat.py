"""Server resource measurement from /proc: CPU of a process tree including reaped children."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from bench import procstat

# A parent that spends ~0.3 s of CPU itself, runs a child that spends ~0.3 s and exits (reaped),
# then sleeps so that the measurement sees it alive.
_TREE = """
import subprocess, sys, time
def burn(s):
    end = time.process_time() + s
    while time.process_time() < end:
        pass
burn(0.3)
child = "import time\\nend = time.process_time() + 0.3\\nwhile time.process_time() < end: pass"
subprocess.run([sys.executable, "-c", child])
print("ready", flush=True)
time.sleep(30)
"""


@pytest.fixture
def tree() -> Iterator[subprocess.Popen[bytes]]:
    with subprocess.Popen([sys.executable, "-c", _TREE], stdout=subprocess.PIPE) as proc:
        yield proc
        proc.kill()


def test_cpu_counts_the_process_and_its_reaped_children(tree: subprocess.Popen[bytes]) -> None:
    assert tree.stdout is not None
    assert tree.stdout.readline().strip() == b"ready"
    cpu = procstat.cpu_seconds(tree.pid)
    assert 0.55 <= cpu <= 2.0
    assert procstat.tree(tree.pid) == [tree.pid]


def test_memory_is_summed_pss_and_rss(tree: subprocess.Popen[bytes]) -> None:
    assert tree.stdout is not None
    tree.stdout.readline()
    m = procstat.memory(tree.pid)
    assert m.processes == 1
    assert 1_000_000 < m.pss <= m.rss < 500_000_000


def test_settle_returns_once_the_tree_is_quiet(tree: subprocess.Popen[bytes]) -> None:
    assert tree.stdout is not None
    tree.stdout.readline()
    t0 = time.monotonic()
    total = procstat.settle(tree.pid, interval=0.05)
    assert time.monotonic() - t0 < 2
    assert total == pytest.approx(procstat.cpu_seconds(tree.pid), abs=0.02)
