"""``mailkeep store ...``: operations on a whole store (copy between backends).

Mounted by the main CLI (``COMMANDS``); its context object is used only through the
``StoreCliContext`` protocol, so that this module does not import ``mailkeep.cli``.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Protocol

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from mailkeep.config import Config
from mailkeep.errors import MailkeepError
from mailkeep.store.copy import CopyReport, copy_store
from mailkeep.store.factory import open_store


class StoreCliContext(Protocol):
    data: Path

    def config(self) -> Config: ...


def _configured_url(obj: StoreCliContext) -> str | None:
    try:
        return obj.config().store.url
    except MailkeepError:
        return None


def _safe(url: str) -> str:
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


async def _copy(source_url: str, target_url: str, data: Path, console: Console) -> CopyReport:
    source = await open_store(source_url, data, pool_size=2)
    try:
        target = await open_store(target_url, data, pool_size=2)
        try:
            with Progress(
                TextColumn("{task.description:<18}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            ) as bar:
                tasks: dict[str, TaskID] = {}

                def advance(phase: str, done: int, total: int) -> None:
                    if phase not in tasks:
                        tasks[phase] = bar.add_task(phase, total=total)
                    bar.update(tasks[phase], completed=done, total=total)

                return await copy_store(source, target, progress=advance)
        finally:
            await target.close()
    finally:
        await source.close()


@click.group("store")
def store() -> None:
    """The message store as a whole: copy it between SQLite and PostgreSQL."""


@store.command("copy")
@click.option(
    "--from",
    "source_url",
    default=None,
    help="Store to copy (sqlite:PATH or postgresql://…; default: the configured store).",
)
@click.option(
    "--to", "target_url", required=True, help="Empty store to copy into (created if needed)."
)
@click.pass_obj
def copy_command(obj: StoreCliContext, source_url: str | None, target_url: str) -> None:
    """Copy a whole store into a new, empty one, so clients notice nothing.

    UIDVALIDITY, UIDs, flags, MODSEQs, the expunge log, subscriptions, settings, shares
    (ACLs), annotations, credentials, quotas and POP3 state are kept, so IMAP clients
    resynchronise nothing and POP3 clients download nothing twice. Stop the servers first:
    nothing may write to the source meanwhile. Relative sqlite: paths are inside the data
    directory. Afterwards, point store.url in mailkeep.toml at the new store.
    """
    source_url = source_url or _configured_url(obj)
    if source_url is None:
        raise click.UsageError("no --from given and no configured store to copy")
    if source_url == target_url:
        raise click.UsageError("--from and --to name the same store")
    console = Console(stderr=True)
    console.print(f"copying {_safe(source_url)} to {_safe(target_url)}")
    try:
        report = asyncio.run(_copy(source_url, target_url, obj.data, console))
    except MailkeepError as exc:
        raise click.ClickException(str(exc)) from None
    rows = ", ".join(f"{count} {table}" for table, count in report.rows.items())
    console.print(f"copied {rows}; {report.blobs} message bodies")
    if report.missing_blobs:
        console.print(
            f"[yellow]warning:[/] {len(report.missing_blobs)} message bodies were missing"
            " in the source (run `mailkeep check` on it)"
        )
    console.print(f"now set store.url = {_safe(target_url)!r} in mailkeep.toml")


COMMANDS = [store]
