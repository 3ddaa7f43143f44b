"""The workloads, in the order the runner runs them, and the plugin hook.

A plugin is a module with ``def workloads(options: Options) -> list[Workload]``; name it with
``--plugin MODULE``. Its workloads run after the built-in ones, with the same warm-up,
repetitions and report. (``sync``, the client tools' ``mailkeep sync`` versus mbsync, is
written like a plugin and built in.)
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from bench.workloads import delivery, fetch, idle, mix, modify, pop3, search, sync
from bench.workloads.base import Context, Options, Workload

__all__ = ["Context", "Options", "Workload", "build"]


def build(options: Options, plugins: Sequence[str] = ()) -> list[Workload]:
    out: list[Workload] = [
        delivery.LmtpDelivery(1),
        delivery.AppendDelivery(),
        # Last delivery: its result is the mailbox the read workloads use.
        delivery.LmtpDelivery(4),
        *fetch.workloads(),
        *search.workloads(),
        *pop3.workloads(),
        *modify.workloads(),
        *mix.workloads(),
        *sync.workloads(options),
        *idle.workloads(options.idle_counts),
    ]
    for name in plugins:
        module = importlib.import_module(name)
        out.extend(module.workloads(options))
    return out
