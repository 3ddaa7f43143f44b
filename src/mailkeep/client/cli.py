"""Click commands of the client tools: ``fetch``, ``sync`` and ``accounts``, mounted by the
main CLI on the ``mailkeep`` group (``COMMANDS``).

Output: a rich progress bar on a terminal for long runs, then one summary line
(``12 new, 3 changed, 1 deleted, 2.1 MiB``); ``--json`` prints one JSON object per run
instead (``{"ok": true, "new": ..., "changed": ..., "deleted": ..., "bytes": ...}``, or
``{"ok": false, "error": ..., "exit_code": ...}``). Errors go to stderr as
``mailkeep: error: ...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from mailkeep.client.accounts import Account, accounts_path, load_account, load_accounts
from mailkeep.client.connection import TlsMode, is_loopback
from mailkeep.client.errors import ClientConfigError, ClientError, PartialFailure
from mailkeep.client.fetcher import FetchOptions, FetchPolicy, fetch_account
from mailkeep.client.fetcher import watch as fetch_watch
from mailkeep.client.login import open_imap, open_pop3
from mailkeep.client.report import NoProgress, RunReport
from mailkeep.client.report import Progress as ProgressSink
from mailkeep.client.sync import SyncOptions, sync_account
from mailkeep.client.sync import watch as sync_watch
from mailkeep.errors import MailkeepError, NotFound

if TYPE_CHECKING:
    from mailkeep.store.api import Store

EXIT_CODES_HELP = """\b
Exit codes:
  0   success          4  authentication failed   7  protocol error
  1   unexpected bug   5  TLS failure             8  partial: something skipped
  2   usage error      6  network failure         9  account busy (another run)
  3   configuration error (accounts file,     130  interrupted
      password command)"""

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class RichProgress:
    """Messages and bytes, on stderr, only on a terminal: the bar follows the bytes when
    they are known up front, else the messages."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[messages]}"),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task: Any = None
        self.by_bytes = False
        self.done = 0
        self.total = 0

    def start(self, label: str, messages: int, octets: int) -> None:
        if messages < 2 and octets < 1024 * 1024:
            return
        self.by_bytes = octets > 0
        self.done, self.total = 0, messages
        self.progress.start()
        self.task = self.progress.add_task(
            label, total=octets if self.by_bytes else messages, messages=self._count()
        )

    def _count(self) -> str:
        return f"{self.done}/{self.total} msgs" if self.total else f"{self.done} msgs"

    def advance(self, messages: int, octets: int) -> None:
        if self.task is None:
            return
        self.done += messages
        self.progress.update(
            self.task,
            advance=octets if self.by_bytes else messages,
            messages=self._count(),
        )

    def finish(self) -> None:
        if self.task is not None:
            self.progress.stop()
            self.task = None


def _progress(as_json: bool) -> ProgressSink:
    console = Console(stderr=True)
    if as_json or not console.is_terminal:
        return NoProgress()
    return RichProgress(console)


def _emit(report: RunReport, as_json: bool, account: str) -> None:
    if as_json:
        data = {"ok": not report.skipped, "account": account, **report.to_dict()}
        click.echo(json.dumps(data, sort_keys=True))
        return
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    for skipped in report.skipped:
        click.echo(f"skipped: {skipped}", err=True)
    click.echo(f"{account}: {report.summary()}")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def handles_errors(function: F) -> F:
    """Map failures onto the documented exit codes, once for every command."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return function(*args, **kwargs)
        except KeyboardInterrupt:
            _fail("interrupted (the next run resumes where this one stopped)", 130, as_json)
        except ClientError as exc:
            _fail(str(exc), exc.exit_code, as_json)
        except MailkeepError as exc:
            _fail(str(exc), 1, as_json)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:
            traceback.print_exc()
            _fail(f"unexpected failure (a bug): {exc!r}", 1, as_json)

    return wrapper  # type: ignore[return-value]


def _fail(message: str, code: int, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": message, "exit_code": code}))
    click.echo(f"mailkeep: error: {message}", err=True)
    raise SystemExit(code)


def _account(accounts_file: str | None, name: str, protocol: str) -> Account:
    account = load_account(accounts_path(accounts_file), name)
    if account.protocol != protocol:
        command = "fetch" if account.protocol == "pop3" else "sync"
        raise ClientConfigError(
            f"account {name} is a {account.protocol} account: use 'mailkeep {command} {name}'"
        )
    return account


accounts_option = click.option(
    "--accounts",
    "accounts_file",
    envvar="MAILKEEP_ACCOUNTS",
    metavar="FILE",
    help="Accounts file (default ~/.config/mailkeep/accounts.toml; env MAILKEEP_ACCOUNTS).",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON object per run instead of text."
)
dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Show what would be done; change nothing anywhere."
)


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("account_name", metavar="ACCOUNT")
@click.option("--headers-only", is_flag=True, help="Download only headers (TOP n 0).")
@click.option("--leave-on-server", is_flag=True, help="Never delete messages on the server.")
@click.option(
    "--delete-after",
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="Delete on the server DAYS days after download.",
)
@click.option(
    "--delete-when-trashed",
    is_flag=True,
    help="Delete on the server what was deleted (or flagged T) locally.",
)
@click.option(
    "--complete",
    multiple=True,
    metavar="ID",
    help="Download in full a header-only message (UIDL or Maildir key; 'all').",
)
@click.option(
    "--complete-flagged", is_flag=True, help="Download in full header-only messages flagged F."
)
@click.option(
    "--watch",
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    help="Keep running, fetching every SECONDS.",
)
@dry_run_option
@json_option
@accounts_option
@handles_errors
def fetch(
    account_name: str,
    headers_only: bool,
    leave_on_server: bool,
    delete_after: float | None,
    delete_when_trashed: bool,
    complete: tuple[str, ...],
    complete_flagged: bool,
    watch: float | None,
    dry_run: bool,
    as_json: bool,
    accounts_file: str | None,
) -> None:
    """Download new mail of a POP3 ACCOUNT into its Maildir.

    Without a policy option the account's 'policy' applies (default: delete from the
    server once safely stored). Policy options combine: --leave-on-server keeps
    everything unless --delete-after or --delete-when-trashed says otherwise. Nothing is
    deleted on the server before it is written and synced to disk locally, and header-only
    messages are never deleted on the server.
    """
    account = _account(accounts_file, account_name, "pop3")
    if leave_on_server or delete_after is not None or delete_when_trashed:
        policy = FetchPolicy(True, delete_after, delete_when_trashed)
    else:
        policy = FetchPolicy.parse(account.policy)
    options = FetchOptions(
        policy=policy,
        headers_only=headers_only,
        complete=frozenset(complete),
        complete_flagged=complete_flagged,
        dry_run=dry_run,
    )
    password = account.password()
    if watch is not None:
        _run(
            fetch_watch(
                account, password, options, watch, lambda r: _emit(r, as_json, account.name)
            )
        )
        return
    report = _run(fetch_account(account, password, options, _progress(as_json)))
    _emit(report, as_json, account.name)
    if report.skipped:
        raise SystemExit(PartialFailure.exit_code)


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("account_name", metavar="ACCOUNT")
@click.option(
    "--folder",
    "folders",
    multiple=True,
    metavar="PATTERN",
    help="Only folders matching PATTERN ('INBOX', 'Lists/*'); repeatable.",
)
@click.option(
    "--no-qresync",
    is_flag=True,
    help="Do not use CONDSTORE/QRESYNC even if offered (compare all UIDs and flags).",
)
@click.option("--yes", is_flag=True, help="Confirm folder and mass deletions without asking.")
@click.option(
    "--watch",
    is_flag=True,
    help="Keep running: IDLE on INBOX and sync on every change (and every --interval).",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="With --watch: also sync this often (local changes).",
)
@dry_run_option
@json_option
@accounts_option
@handles_errors
def sync(
    account_name: str,
    folders: tuple[str, ...],
    no_qresync: bool,
    yes: bool,
    watch: bool,
    interval: float,
    dry_run: bool,
    as_json: bool,
    accounts_file: str | None,
) -> None:
    """Synchronise an IMAP ACCOUNT with its Maildir, both ways.

    \b
    New messages, flags (S R F T D), deletions and folders go both ways.
    Flags merge: a change on either side since the last sync wins; changes on
    both sides combine. A deletion wins over a flag change. A folder deleted on
    one side is deleted on the other only if that side has not changed since
    the last sync (and after confirmation); otherwise it is recreated. Deleting
    more than half of a folder's messages (10 or more) asks first; without a
    terminal, use --yes or the deletions are skipped (exit 8).
    Local changes made offline are pushed by the next run; an interrupted run
    resumes without duplicates.
    """
    account = _account(accounts_file, account_name, "imap")

    def confirm(question: str) -> bool:
        if yes:
            return True
        if sys.stdin.isatty() and not as_json:
            return click.confirm(question, default=False, err=True)
        return False

    options = SyncOptions(
        folders=folders or account.folders,
        use_qresync=not no_qresync,
        dry_run=dry_run,
        confirm=confirm,
    )
    password = account.password()
    if watch:
        _run(
            sync_watch(
                account, password, options, interval, lambda r: _emit(r, as_json, account.name)
            )
        )
        return
    started = time.monotonic()
    report = _run(sync_account(account, password, options, _progress(as_json)))
    report.details["seconds"] = round(time.monotonic() - started, 3)
    _emit(report, as_json, account.name)
    if report.skipped:
        raise SystemExit(PartialFailure.exit_code)


@click.group()
def accounts() -> None:
    """List and check the client tools' accounts."""


@accounts.command("list")
@json_option
@accounts_option
@handles_errors
def accounts_list(as_json: bool, accounts_file: str | None) -> None:
    """Show the accounts of the accounts file."""
    path = accounts_path(accounts_file)
    found = load_accounts(path)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": a.name,
                        "protocol": a.protocol,
                        "server": a.server,
                        "port": a.port,
                        "tls": a.tls.value,
                        "user": a.user,
                        "local": str(a.local),
                    }
                    for a in found.values()
                ]
            )
        )
        return
    for a in found.values():
        click.echo(
            f"{a.name}\t{a.protocol}\t{a.user}@{a.server}:{a.port} ({a.tls.value})\t{a.local}"
        )


@accounts.command("check")
@click.argument("account_name", metavar="ACCOUNT")
@json_option
@accounts_option
@handles_errors
def accounts_check(account_name: str, as_json: bool, accounts_file: str | None) -> None:
    """Connect and log in to ACCOUNT; show the server's capabilities."""
    account = load_account(accounts_path(accounts_file), account_name)
    password = account.password()

    async def check() -> list[str]:
        if account.protocol == "imap":
            client = await open_imap(account, password)
            capabilities = sorted(client.capabilities)
            await client.logout()
            return capabilities
        pop = await open_pop3(account, password)
        capabilities = sorted(pop.capabilities)
        await pop.quit()
        return capabilities

    capabilities = _run(check())
    if as_json:
        click.echo(json.dumps({"ok": True, "account": account.name, "capabilities": capabilities}))
    else:
        click.echo(f"{account.name}: login OK; server offers {' '.join(capabilities)}")


# --- server side: migrate, import, export (need the mailkeep data directory) ----------------


def _data_dir_config() -> tuple[Path, Any]:
    """The data directory and config of the enclosing ``mailkeep --data DIR`` group."""
    obj = click.get_current_context().find_root().obj
    if obj is None or not hasattr(obj, "require_initialised"):
        raise ClientConfigError("run this as 'mailkeep --data DIR <command> ...'")
    config = obj.require_initialised()
    return Path(obj.data), config


async def _open_store() -> tuple[Any, Path]:
    from mailkeep.store.factory import open_store

    data, config = _data_dir_config()
    return await open_store(config.store.url, data, pool_size=1), data


IMAP_SCHEMES = {"imaps": TlsMode.IMPLICIT, "imap": TlsMode.STARTTLS, "imap+plain": TlsMode.NONE}


def imap_url_account(
    url: str, password_command: str | None, cafile: str | None, option: str = "--from"
) -> Account:
    """``imaps://user@host[:port]`` (implicit TLS), ``imap://...`` (STARTTLS) or
    ``imap+plain://...`` (no TLS, loopback only) as an account."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in IMAP_SCHEMES:
        raise ClientConfigError(f"{option} {url!r}: use imaps://USER@HOST[:PORT] or imap://...")
    tls = IMAP_SCHEMES[scheme.lower()]
    user, at, hostport = rest.rstrip("/").rpartition("@")
    if not at or not user:
        raise ClientConfigError(f"{option} {url!r}: the user name is missing (USER@HOST)")
    host, colon, port = hostport.rpartition(":") if hostport.count(":") == 1 else ("", "", "")
    if not colon:
        host, port = hostport, ""
    if tls is TlsMode.NONE and not is_loopback(host):
        raise ClientConfigError("imap+plain:// is only allowed for loopback servers")
    return Account(
        name=url,
        protocol="imap",
        server=host,
        port=int(port) if port.isdigit() else (993 if tls is TlsMode.IMPLICIT else 143),
        tls=tls,
        user=unquote(user),
        local=Path("."),
        state=Path("."),
        password_command=password_command,
        cafile=cafile,
    )


def _migrate_end(
    value: str | None,
    account_name: str | None,
    accounts_file: str | None,
    password_command: str | None,
    cafile: str | None,
    option: str,
) -> Account | str:
    """One end of ``migrate``: an IMAP account (URL or accounts file), or the address of a
    mailkeep account of this data directory (a value without ``://``)."""
    if account_name:
        if value:
            raise click.UsageError(f"give {option} or {option}-account, not both")
        return _account(accounts_file, account_name, "imap")
    if not value:
        raise click.UsageError(f"give {option} URL|ADDRESS or {option}-account NAME")
    if "://" in value:
        return imap_url_account(value, password_command, cafile, option)
    if "@" not in value:
        raise ClientConfigError(
            f"{option} {value!r}: give a mailkeep account address or imaps://USER@HOST"
        )
    return value


def _state_path(option: str | None, local: bool) -> Path:
    """The migration state: ``--state``, else in the data directory when a mailkeep account
    is involved, else under $XDG_STATE_HOME (IMAP to IMAP needs no data directory)."""
    if option:
        return Path(option).expanduser()
    if local:
        data, _ = _data_dir_config()
        return data / "migrate-state.sqlite"
    base = os.environ.get("XDG_STATE_HOME") or str(Path("~/.local/state").expanduser())
    return Path(base) / "mailkeep" / "migrate-state.sqlite"


async def _local_end(opening: Coroutine[Any, Any, T]) -> T:
    """A mailkeep account that does not exist is a configuration error (exit 3)."""
    try:
        return await opening
    except NotFound as exc:
        raise ClientConfigError(str(exc)) from None


def _imap_label(account: Account) -> str:
    return f"{account.user}@{account.server}:{account.port}"


@click.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--from",
    "source",
    metavar="URL|ADDRESS",
    help="imaps://USER@HOST[:PORT] (imap:// STARTTLS, imap+plain:// loopback), or the "
    "address of a mailkeep account of this data directory.",
)
@click.option("--from-account", metavar="NAME", help="An IMAP account of the accounts file.")
@click.option(
    "--to",
    "target",
    metavar="ADDRESS|URL",
    help="A mailkeep account of this data directory, or imaps://USER@HOST[:PORT] ...",
)
@click.option("--to-account", metavar="NAME", help="An IMAP account of the accounts file.")
@click.option("--folder", "folders", multiple=True, metavar="PATTERN", help="Only these.")
@click.option("--password-command", metavar="CMD", help="Prints the source password.")
@click.option("--cafile", metavar="FILE", help="Extra CA certificate for the source.")
@click.option("--to-password-command", metavar="CMD", help="Prints the target password.")
@click.option("--to-cafile", metavar="FILE", help="Extra CA certificate for the target.")
@click.option(
    "--state",
    "state_file",
    metavar="FILE",
    help="Migration state (default: DATA/migrate-state.sqlite, or "
    "~/.local/state/mailkeep/migrate-state.sqlite from IMAP to IMAP).",
)
@dry_run_option
@json_option
@accounts_option
@handles_errors
def migrate(
    source: str | None,
    from_account: str | None,
    target: str | None,
    to_account: str | None,
    folders: tuple[str, ...],
    password_command: str | None,
    cafile: str | None,
    to_password_command: str | None,
    to_cafile: str | None,
    state_file: str | None,
    dry_run: bool,
    as_json: bool,
    accounts_file: str | None,
) -> None:
    """Copy all folders of one account into another: from an IMAP server or a mailkeep
    account, into a mailkeep account or an IMAP server.

    \b
      mailkeep --data DIR migrate --from imaps://me@old.example --to me@example.com
      mailkeep --data DIR migrate --from old@example.com --to new@example.com
      mailkeep migrate --from imaps://me@old.example --to imaps://me@new.example

    The folder hierarchy, special-use folders, flags, keywords and internal dates are
    kept; nothing changes on the source. Resumable: run it again after an interruption
    (or later, to copy what arrived since); nothing is copied twice.
    """
    from mailkeep.client.migrate import (
        ImapSource,
        ImapTarget,
        MigrateOptions,
        MigrationState,
        Source,
        StoreSource,
        StoreTarget,
        Target,
    )
    from mailkeep.client.migrate import migrate as copy_all

    src = _migrate_end(source, from_account, accounts_file, password_command, cafile, "--from")
    dst = _migrate_end(target, to_account, accounts_file, to_password_command, to_cafile, "--to")
    if isinstance(src, str) and isinstance(dst, str) and src.lower() == dst.lower():
        raise click.UsageError("--from and --to are the same account")
    local = isinstance(src, str) or isinstance(dst, str)
    state_path = _state_path(state_file, local)
    src_password = src.password() if isinstance(src, Account) else ""
    dst_password = dst.password() if isinstance(dst, Account) else ""
    options = MigrateOptions(folders=folders or ("*",), dry_run=dry_run)

    async def run() -> RunReport:
        async with contextlib.AsyncExitStack() as stack:
            store: Store | None = None
            if local:
                store, _ = await _open_store()
                stack.push_async_callback(store.close)
            state = MigrationState(state_path)
            stack.callback(state.close)
            reader: Source
            writer: Target
            if isinstance(src, Account):
                client = await open_imap(src, src_password)
                stack.push_async_callback(client.logout)
                reader = ImapSource(client, _imap_label(src))
            else:
                assert store is not None
                reader = await _local_end(StoreSource.open(store, src))
            if isinstance(dst, Account):
                client = await open_imap(dst, dst_password)
                stack.push_async_callback(client.logout)
                writer = ImapTarget(client, _imap_label(dst))
            else:
                assert store is not None
                writer = await _local_end(StoreTarget.open(store, dst))
            report = await copy_all(reader, writer, state, options, _progress(as_json))
        return report

    report = _run(run())
    _emit(report, as_json, dst if isinstance(dst, str) else dst.name)


@click.command("import", epilog=EXIT_CODES_HELP)
@click.argument("kind", type=click.Choice(["maildir", "mbox"]))
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--to", "address", required=True, metavar="ADDRESS", help="mailkeep account.")
@click.option("--folder", metavar="NAME", help="Target folder (mbox file) or parent folder.")
@dry_run_option
@json_option
@handles_errors
def import_command(
    kind: str, path: Path, address: str, folder: str | None, dry_run: bool, as_json: bool
) -> None:
    """Import a Maildir++ tree or an mbox file/directory into the account ADDRESS."""
    from mailkeep.client.storeio import import_mail

    async def run() -> RunReport:
        store, _ = await _open_store()
        try:
            return await _local_end(
                import_mail(
                    store,
                    address,
                    kind,
                    path,
                    folder=folder,
                    dry_run=dry_run,
                    progress=_progress(as_json),
                )
            )
        finally:
            await store.close()

    _emit(_run(run()), as_json, address)


@click.command("export", epilog=EXIT_CODES_HELP)
@click.argument("address", metavar="ADDRESS")
@click.argument("kind", type=click.Choice(["maildir", "mbox"]))
@click.argument("path", type=click.Path(path_type=Path))
@dry_run_option
@json_option
@handles_errors
def export_command(address: str, kind: str, path: Path, dry_run: bool, as_json: bool) -> None:
    """Export every folder of ADDRESS to PATH (a new or empty directory) as a Maildir++
    tree or as one mbox file per folder."""
    from mailkeep.client.storeio import export_mail

    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ClientConfigError(f"{path} exists and is not an empty directory")

    async def run() -> RunReport:
        store, _ = await _open_store()
        try:
            return await _local_end(
                export_mail(
                    store, address, kind, path, dry_run=dry_run, progress=_progress(as_json)
                )
            )
        finally:
            await store.close()

    _emit(_run(run()), as_json, address)


COMMANDS: list[click.Command] = [
    fetch,
    sync,
    accounts,
    migrate,
    import_command,
    export_command,
]
