"""The ``mailkeep`` command: a stable contract operators and scripts rely on.

Exit codes: 0 success, 1 a failure explained on stderr, 2 usage error (click). ``deliver``
uses sysexits as MDAs do: 65 unreadable or unacceptable input, 67 unknown user, 75
temporary failure (over quota, store busy).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from mailkeep import __version__
from mailkeep.config import (
    LISTENER_NAMES,
    Config,
    load,
    parse_address,
    parse_size,
)
from mailkeep.datadir import DEMO_ADDRESS, DEMO_PASSWORD, add_account
from mailkeep.errors import ConfigError, MailkeepError

P = ParamSpec("P")
R = TypeVar("R")

EX_DATAERR = 65
EX_NOUSER = 67
EX_TEMPFAIL = 75


def default_data_dir() -> Path:
    """``$MAILKEEP_DATA``, else /var/lib/mailkeep for root, else ~/.local/share/mailkeep."""
    if os.environ.get("MAILKEEP_DATA"):
        return Path(os.environ["MAILKEEP_DATA"])
    if os.geteuid() == 0:
        return Path("/var/lib/mailkeep")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mailkeep"


class Context:
    def __init__(self, data: Path, config_file: Path | None) -> None:
        self.data = data
        self.config_file = config_file

    def config(self) -> Config:
        return load(self.data, self.config_file)

    def require_initialised(self) -> Config:
        if not (self.data / "mailkeep.toml").exists() and self.config_file is None:
            raise ConfigError(
                f"{self.data} is not a mailkeep data directory: run `mailkeep --data"
                f" {self.data} init` first"
            )
        return self.config()


def run_async(func: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """Run an async command body, turning our errors into a message and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return asyncio.run(func(*args, **kwargs))
        except MailkeepError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mailkeep")
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_data_dir,
    show_default="$MAILKEEP_DATA, /var/lib/mailkeep as root, else ~/.local/share/mailkeep",
    help="Data directory: config, store, certificates.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (default: mailkeep.toml in the data directory).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default=None,
    help="Logging detail (default: info for serve, warning for other commands).",
)
@click.pass_context
def main(ctx: click.Context, data: Path, config_file: Path | None, log_level: str | None) -> None:
    """mailkeep: a mail server that keeps mail on the server (IMAP, POP3, SMTP, LMTP)."""
    if log_level is None:
        log_level = "info" if ctx.invoked_subcommand == "serve" else "warning"
    logging.basicConfig(
        level=getattr(logging, log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # What the format does not show need not be gathered for every record (the logging
    # HOWTO's "Optimization"): a server logs a line per delivery and per session.
    logging._srcfile = None  # no stack walk for the caller's file, line and function
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    ctx.obj = Context(data, config_file)


pass_context = click.make_pass_decorator(Context)


# ---------------------------------------------------------------------------- init


@main.command()
@click.option("--hostname", default=None, help="Host name for greetings and the certificate.")
@click.option("--demo", is_flag=True, help=f"Also create {DEMO_ADDRESS}, password {DEMO_PASSWORD}.")
@pass_context
@run_async
async def init(obj: Context, hostname: str | None, demo: bool) -> None:
    """Create the data directory, config, store and a self-signed TLS certificate.

    Safe to run again: what exists is kept.
    """
    from mailkeep.datadir import initialise

    for line in await initialise(obj.data, obj.config_file, hostname=hostname, demo=demo):
        click.echo(line)
    click.echo(f"mailkeep data directory ready: {obj.data}")


# ---------------------------------------------------------------------------- users


@main.group()
def user() -> None:
    """Manage accounts."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.ClickException("the password is empty")
    return password


async def _open(obj: Context) -> tuple[Config, Any]:
    from mailkeep.store.factory import open_store

    config = obj.require_initialised()
    return config, await open_store(config.store.url, obj.data, pool_size=1)


async def _account(store: Any, address: str) -> Any:
    account = await store.get_account(address)
    if account is None:
        raise click.ClickException(f"no account {address}")
    return account


@user.command("add")
@click.argument("address")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--quota", default=None, help="Storage quota: 2G, 500M, none (default: config).")
@pass_context
@run_async
async def user_add(obj: Context, address: str, password_stdin: bool, quota: str | None) -> None:
    """Create an account with INBOX, Sent, Drafts, Trash, Junk and Archive."""
    password = _read_password(password_stdin)
    config, store = await _open(obj)
    try:
        account = await add_account(store, config, address, password, quota)
    finally:
        await store.close()
    click.echo(f"created {account.address}")


@user.command("passwd")
@click.argument("address")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_context
@run_async
async def user_passwd(obj: Context, address: str, password_stdin: bool) -> None:
    """Set an account's password."""
    from mailkeep.auth.passwords import hash_password, scram_stored

    password = _read_password(password_stdin)
    _, store = await _open(obj)
    try:
        account = await _account(store, address)
        await store.set_credentials(account.id, hash_password(password), scram_stored(password))
    finally:
        await store.close()
    click.echo(f"password of {account.address} changed")


@user.command("del")
@click.argument("address")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
@run_async
async def user_del(obj: Context, address: str, yes: bool) -> None:
    """Delete an account and all its mail."""
    _, store = await _open(obj)
    try:
        account = await _account(store, address)
        if not yes and not click.confirm(
            f"Delete {account.address} and its {account.used_messages} messages?"
        ):
            raise click.Abort
        await store.delete_account(account.id)
    finally:
        await store.close()
    click.echo(f"deleted {account.address}")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_context
@run_async
async def user_list(obj: Context, as_json: bool) -> None:
    """List accounts with their usage and quota."""
    _, store = await _open(obj)
    try:
        accounts = await store.list_accounts()
    finally:
        await store.close()
    if as_json:
        rows = [
            {
                "address": a.address,
                "messages": a.used_messages,
                "used_bytes": a.used_bytes,
                "quota_bytes": a.quota_bytes,
                "quota_messages": a.quota_messages,
            }
            for a in accounts
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    # The pseudo-account owning the Public/ mailboxes is listed for its usage, by a name
    # that cannot be mistaken for an address.
    names = {a.address: "(public)" if a.address.startswith("#") else a.address for a in accounts}
    width = max([len(name) for name in names.values()] + [7])
    click.echo(f"{'ADDRESS':<{width}}  {'MESSAGES':>8}  {'USED':>9}  {'QUOTA':>9}  {'USE%':>5}")
    for a in accounts:
        quota = format_size(a.quota_bytes) if a.quota_bytes is not None else "none"
        percent = f"{100 * a.used_bytes / a.quota_bytes:.0f}%" if a.quota_bytes else "-"
        click.echo(
            f"{names[a.address]:<{width}}  {a.used_messages:>8}  {format_size(a.used_bytes):>9}"
            f"  {quota:>9}  {percent:>5}"
        )


@user.command("quota")
@click.argument("address")
@click.argument("size")
@pass_context
@run_async
async def user_quota(obj: Context, address: str, size: str) -> None:
    """Set an account's storage quota (2G, 500M, 100K, octets, or none)."""
    quota = parse_size(size)
    _, store = await _open(obj)
    try:
        account = await _account(store, address)
        await store.set_quota(account.id, quota, account.quota_messages)
    finally:
        await store.close()
    click.echo(f"quota of {account.address}: {format_size(quota) if quota else 'none'}")


def format_size(octets: int | None) -> str:
    if octets is None:
        return "-"
    value = float(octets)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError  # pragma: no cover


# ---------------------------------------------------------------------------- deliver


@main.command()
@click.option("--to", "recipient", required=True, help="The recipient's address.")
@click.option("--mailbox", default=None, help="Deliver into this mailbox (INBOX if missing).")
@click.option("--from", "sender", default="", help="Envelope sender for Return-Path.")
@pass_context
def deliver(obj: Context, recipient: str, mailbox: str | None, sender: str) -> None:
    """Deliver a message from standard input (for use as an MDA).

    Exit codes: 0 delivered, 65 unreadable or too big, 67 unknown user, 75 temporary
    failure (over quota, store busy).
    """
    try:
        code, text = asyncio.run(_deliver(obj, recipient, mailbox, sender))
    except MailkeepError as exc:
        code, text = EX_TEMPFAIL, str(exc)
    if text:
        click.echo(f"mailkeep deliver: {text}", err=True)
    sys.exit(code)


async def _deliver(
    obj: Context, recipient: str, mailbox: str | None, sender: str
) -> tuple[int, str]:
    from mailkeep.smtp.delivery import Delivery, Envelope, Status, to_crlf

    try:
        config = obj.require_initialised()
    except ConfigError as exc:
        return EX_TEMPFAIL, str(exc)
    try:
        raw = sys.stdin.buffer.read(config.limits.max_message + 1)
    except OSError as exc:
        return EX_DATAERR, f"cannot read the message: {exc}"
    if not raw:
        return EX_DATAERR, "the message is empty"
    if len(raw) > config.limits.max_message:
        return EX_DATAERR, f"the message is larger than {config.limits.max_message} octets"
    _, store = await _open(obj)
    try:
        delivery = Delivery(store, config.hostname, config.domains)
        envelope = Envelope(sender, protocol="local")
        (outcome,) = await delivery.deliver(to_crlf(raw), envelope, [recipient], mailbox)
    finally:
        await store.close()
    codes = {
        Status.DELIVERED: 0,
        Status.UNKNOWN_USER: EX_NOUSER,
        Status.NOT_OURS: EX_NOUSER,
        Status.TOO_BIG: EX_DATAERR,
        Status.OVER_QUOTA: EX_TEMPFAIL,
        Status.TEMPORARY: EX_TEMPFAIL,
    }
    return codes[outcome.status], "" if outcome.delivered else outcome.detail


# ---------------------------------------------------------------------------- serve


def _listener_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for name in reversed(LISTENER_NAMES):
        func = click.option(
            f"--{name}",
            default=None,
            metavar="HOST:PORT|off",
            help=f"{name} listener (default from the config).",
        )(func)
    return func


@main.command()
@_listener_options
@click.option("--store", "store_url", default=None, help="Store URL (sqlite:PATH, postgresql://…).")
@pass_context
def serve(obj: Context, /, store_url: str | None, **listeners: str | None) -> None:
    """Run the server: every enabled listener in one process, until SIGTERM or Ctrl-C."""
    import dataclasses

    from mailkeep.app import App
    from mailkeep.app import serve as run

    try:
        config = obj.require_initialised()
        if store_url:
            config = dataclasses.replace(
                config, store=dataclasses.replace(config.store, url=store_url)
            )
        addresses: dict[str, tuple[str, int]] = {}
        for name in LISTENER_NAMES:
            value = listeners.get(name) or getattr(config.listeners, name)
            address = parse_address(value)
            if address is not None:
                addresses[name] = address
    except MailkeepError as exc:
        raise click.ClickException(str(exc)) from None

    def ready(bound: list[tuple[str, str, int]]) -> None:
        click.echo(f"mailkeep {__version__} serving {obj.data} ({config.store.url})")
        for name, host, port in bound:
            click.echo(f"  {name:<12} {host}:{port}")
        click.echo("Stop with Ctrl-C (SIGINT) or SIGTERM; SIGHUP reloads the TLS certificate.")
        sys.stdout.flush()

    async def main_loop() -> None:
        app = await App.open(config)
        try:
            await run(app, addresses, ready=ready)
        finally:
            await app.close()

    from mailkeep.store.backup import exclusive

    # A full pass of the cyclic garbage collector walks every live object: with 10,000
    # sessions each one stopped the server for up to 0.5 s, which was the notification
    # p99 of IDLE (1.1 s; 0.5 s with these thresholds). Reference counting frees nearly
    # all garbage at once; only cycles wait longer.
    gc.set_threshold(50_000, 20, 100)
    try:
        with exclusive(obj.data):
            asyncio.run(main_loop())
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    except MailkeepError as exc:
        raise click.ClickException(str(exc)) from None


# ---------------------------------------------------------------------------- safety


def _sqlite_root(config: Config) -> Path:
    url = config.store.url
    if not url.startswith("sqlite:"):
        raise ConfigError(
            "backup and restore work on SQLite stores; back up PostgreSQL with pg_dump, or"
            " copy it into a SQLite store with `mailkeep store copy`"
        )
    location = Path(url.removeprefix("sqlite:") or "store")
    return location if location.is_absolute() else config.data_dir / location


@main.command("backup")
@click.argument("target", type=click.Path(file_okay=False, path_type=Path))
@pass_context
def backup_command(obj: Context, target: Path) -> None:
    """Take a consistent backup of the store into TARGET (the server may keep running)."""
    from rich.progress import Progress

    from mailkeep.store.backup import backup

    try:
        root = _sqlite_root(obj.require_initialised())
        with Progress(transient=True) as progress:
            task = progress.add_task("copying messages", total=None)
            result = backup(
                root, target, lambda done, n: progress.update(task, completed=done, total=n)
            )
    except MailkeepError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"backup of {result.accounts} accounts, {result.messages} messages"
        f" ({format_size(result.octets)}) in {result.path}"
    )


@main.command("restore")
@click.argument("source", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--force", is_flag=True, help="Replace an existing store.")
@pass_context
def restore_command(obj: Context, source: Path, force: bool) -> None:
    """Replace the store with the backup in SOURCE (stop the server first)."""
    from mailkeep.store.backup import exclusive, restore

    try:
        root = _sqlite_root(obj.require_initialised())
        with exclusive(obj.data):
            result = restore(source, root, force=force)
    except MailkeepError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored {result.accounts} accounts, {result.messages} messages from {source}")


@main.command("check")
@click.option("--repair", is_flag=True, help="Fix what can be fixed (see the report).")
@pass_context
@run_async
async def check_command(obj: Context, repair: bool) -> None:
    """Verify the store: blobs and rows agree, counters are right. Exit 1 on problems
    (0 after a successful --repair of everything repairable)."""
    _, store = await _open(obj)
    try:
        report = await store.check(repair=repair)
    finally:
        await store.close()
    for line in report.lines():
        click.echo(line)
    if report.clean:
        click.echo("store is consistent")
        return
    if not repair or report.missing_blobs:
        raise click.ClickException(
            "the store has problems" + ("" if repair else "; run with --repair")
        )
    click.echo("repaired")


def _mount_optional_commands() -> None:
    """Commands of packages that may not be built yet (client tools, admin)."""
    for module_name in (
        "mailkeep.client.cli",
        "mailkeep.pop3.cli",
        "mailkeep.store.cli",
        "mailkeep.imap.cli",
    ):
        try:
            module = __import__(module_name, fromlist=["COMMANDS"])
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        for command in getattr(module, "COMMANDS", []):
            main.add_command(command)


_mount_optional_commands()
