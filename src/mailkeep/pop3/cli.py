"""``mailkeep pop3 ...``: per-account POP3 policies and one run of the expiry job.

Mounted by the main CLI (``COMMANDS``); the group's context object is the main CLI's,
used only through ``require_initialised()`` so that this module does not import
``mailkeep.cli`` (which imports this one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import click

from mailkeep.config import Config
from mailkeep.errors import ConfigError, MailkeepError
from mailkeep.pop3.retention import (
    RETENTION_SETTING,
    SEEN_SETTING,
    account_policy,
    expire_store,
    parse_retention,
    server_policy,
)
from mailkeep.store.factory import open_store
from mailkeep.store.sqlstore import SqlStore

T = TypeVar("T")


class CliContext(Protocol):
    def require_initialised(self) -> Config: ...


def _run(obj: CliContext, body: Callable[[Config, SqlStore], Awaitable[T]]) -> T:
    """Open the store of the data directory, run ``body``, close; our errors exit 1."""

    async def run() -> T:
        config = obj.require_initialised()
        store = await open_store(config.store.url, config.data_dir, pool_size=1)
        try:
            return await body(config, store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except MailkeepError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("pop3")
def pop3() -> None:
    """POP3: what happens to downloaded mail (retention), per account."""


@pop3.command("policy")
@click.argument("address")
@click.option(
    "--retention",
    metavar="keep|delete-after-retr|days:N|default",
    help="Keep downloaded mail, delete it at QUIT after RETR, or N days after the first"
    " download; 'default' follows the server's [pop3] retention.",
)
@click.option(
    "--retr-marks-seen",
    type=click.Choice(["yes", "no", "default"]),
    help="Whether RETR marks the message \\Seen for IMAP clients.",
)
@click.pass_obj
def policy(
    obj: CliContext, address: str, retention: str | None, retr_marks_seen: str | None
) -> None:
    """Show an account's POP3 policy, or change it.

    Without options, prints the policy in force and where each part comes from.
    """
    if retention is not None and retention != "default":
        try:
            retention = str(parse_retention(retention))
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--retention") from None

    async def body(config: Config, store: SqlStore) -> str:
        account = await store.get_account(address)
        if account is None:
            raise click.ClickException(f"no account {address}")
        changes = {RETENTION_SETTING: retention, SEEN_SETTING: retr_marks_seen}
        for key, value in changes.items():
            if value is not None:
                stored = None if value == "default" else value
                await store.set_account_setting(account.id, key, stored)
        account = await store.get_account_by_id(account.id)
        assert account is not None
        default = server_policy(config.pop3)
        current = account_policy(account, config.pop3)
        retention_from = "account" if RETENTION_SETTING in account.settings else "server default"
        seen_from = "account" if SEEN_SETTING in account.settings else "server default"
        seen = "yes" if current.retr_marks_seen else "no"
        return (
            f"{account.address}: retention {current.retention} ({retention_from};"
            f" server: {default.retention}), retr-marks-seen {seen} ({seen_from})"
        )

    click.echo(_run(obj, body))


@pop3.command("expire")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@click.pass_obj
def expire_command(obj: CliContext, dry_run: bool) -> None:
    """Delete mail of days:N accounts downloaded more than N days ago, once.

    A running server does this periodically; this runs it now. An account whose
    maildrop a POP3 session holds is skipped (and done on the next run).
    """

    async def body(config: Config, store: SqlStore) -> list[str]:
        lines = []
        total = 0
        for result in await expire_store(store, config.pop3, dry_run=dry_run):
            if result.skipped:
                lines.append(f"{result.address}: skipped, a POP3 session holds the maildrop")
                continue
            total += len(result.uids)
            verb = "would delete" if dry_run else "deleted"
            lines.append(f"{result.address}: {verb} {len(result.uids)} messages")
        verb = "would delete" if dry_run else "deleted"
        lines.append(f"{verb} {total} messages in all")
        return lines

    for line in _run(obj, body):
        click.echo(line)


COMMANDS: list[click.Command] = [pop3]
