"""``--watch`` for sync (IDLE wakes it up) and fetch (a fixed interval)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mailkeep.client.fetcher import FetchOptions, FetchPolicy
from mailkeep.client.fetcher import watch as fetch_watch
from mailkeep.client.report import RunReport
from mailkeep.client.sync import SyncOptions
from mailkeep.client.sync import watch as sync_watch

from .conftest import MailUser, account_for
from .syncutil import local_state, msg


async def test_sync_watch_wakes_on_new_mail(mail_user: MailUser, tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    reports: list[RunReport] = []
    first_done = asyncio.Event()

    def record(report: RunReport) -> None:
        reports.append(report)
        first_done.set()

    account = account_for(mail_user, root)
    task = asyncio.create_task(
        sync_watch(account, mail_user.password, SyncOptions(), 600, record, runs=2)
    )
    await asyncio.wait_for(first_done.wait(), 60)
    await asyncio.sleep(0.5)  # let the watcher enter IDLE
    started = time.monotonic()
    await asyncio.to_thread(mail_user.deliver, msg("while-idle"))
    await asyncio.wait_for(task, 60)
    # Woken by the server, not by the 600 s interval.
    assert time.monotonic() - started < 60
    assert [r.new for r in reports] == [0, 1]
    assert "<while-idle@example.org>" in local_state(root)["INBOX"]


async def test_fetch_watch_runs_periodically(mail_user: MailUser, tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    reports: list[RunReport] = []
    account = account_for(mail_user, root, "pop3")
    mail_user.deliver(msg(1))

    def record(report: RunReport) -> None:
        reports.append(report)
        if len(reports) == 1:
            mail_user.deliver(msg(2))

    options = FetchOptions(policy=FetchPolicy(leave_on_server=True))
    await fetch_watch(account, mail_user.password, options, 0.2, record, runs=2)
    assert [r.new for r in reports] == [1, 1]
