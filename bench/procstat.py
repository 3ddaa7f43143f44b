"""Resource use of a server's process tree, read from /proc (Linux, proc(5)).

CPU seconds: over the root process and all its live descendants, the sum of
- ``utime + stime`` (``/proc/PID/stat`` fields 14, 15): the process's own CPU time, all its
  threads included (``/proc/PID/schedstat`` would be exact but counts the main thread only,
  missing a server's worker threads), and
- ``cutime + cstime`` (fields 16, 17): CPU time of its children that exited and were reaped.
Clock ticks are 10 ms, so workloads are sized to take well over that.

A Dovecot imap/pop3/lmtp process that ends after its connection is reaped by the master, so
its time moves into the master's ``cutime/cstime``; summing both kinds over the live tree
counts every process once, alive or gone. Differences of two snapshots give the CPU seconds
of a workload. A child that exited but has not been reaped yet is still in the tree (zombie,
its times in its own stat), so nothing is lost in between.

Memory: PSS (proportional set size) summed over the tree, from ``/proc/PID/smaps_rollup``: a
page shared by k processes counts 1/k in each, so the sum is the tree's real footprint (RSS
would count Dovecot's shared libraries once per process). RSS is recorded too.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode()
    except OSError:
        return None
    # comm (field 2) is in parentheses and may contain spaces: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def tree(root: int) -> list[int]:
    """``root`` and all its live descendants (by parent PID)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(name))
    out = [root]
    k = 0
    while k < len(out):
        out.extend(children.get(out[k], ()))
        k += 1
    return out


def _process_cpu(pid: int) -> float:
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the ')': state=0 ppid=1 ... utime=11 stime=12 cutime=13 cstime=14 (0-based).
    # utime/stime cover every thread of the process, live or exited.
    return sum(int(f) for f in fields[11:15]) / _TICK


def cpu_seconds(root: int) -> float:
    """CPU seconds used so far by the tree under ``root`` (see module docstring)."""
    return sum(_process_cpu(pid) for pid in tree(root))


@dataclass(frozen=True)
class Memory:
    pss: int
    rss: int
    processes: int


def memory(root: int) -> Memory:
    """PSS and RSS in bytes, summed over the tree."""
    pss = rss = 0
    pids = tree(root)
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                for line in f:
                    if line.startswith(b"Pss:"):
                        pss += int(line.split()[1]) * 1024
                    elif line.startswith(b"Rss:"):
                        rss += int(line.split()[1]) * 1024
        except OSError:
            continue
    return Memory(pss, rss, len(pids))


def settle(root: int, quiet: float = 0.005, interval: float = 0.1, limit: float = 30.0) -> float:
    """Wait until the tree stops using CPU (less than ``quiet`` seconds per ``interval`` twice
    in a row), so that work a server defers (index updates, FTS) is counted in the workload
    that caused it. Returns the CPU total at that point."""
    deadline = time.monotonic() + limit
    last = cpu_seconds(root)
    calm = 0
    while calm < 2 and time.monotonic() < deadline:
        time.sleep(interval)
        now = cpu_seconds(root)
        calm = calm + 1 if now - last < quiet else 0
        last = now
    return last


class MemorySampler:
    """Samples the tree's memory in a thread every ``interval`` seconds; keeps the peak."""

    def __init__(self, root: int, interval: float = 0.5) -> None:
        self.root = root
        self.interval = interval
        self.peak = Memory(0, 0, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> Memory:
        m = memory(self.root)
        if m.pss > self.peak.pss:
            self.peak = m
        return m

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> MemorySampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
