"""``mailkeep mailbox ...``: sharing mailboxes between accounts from the command line.

The same access control lists as IMAP's SETACL/DELETEACL/GETACL (RFC 4314), for an
operator: ``share`` grants rights (``lrswi``, ``+t``, ``-w``; ``c`` and ``d`` stand for
``kx`` and ``et``), ``unshare`` removes an entry, ``shares`` lists them. The grantee sees
the mailbox as ``Shared/<owner>/<mailbox>`` (``access``). The owner ``public`` (or
``#public``) is the pseudo-account of the ``Public/`` mailboxes, which ``create`` makes.

Mounted by the main CLI (``COMMANDS``); the context object is the main CLI's, used only
through ``require_initialised()`` so that this module does not import ``mailkeep.cli``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import click

from mailkeep.config import Config
from mailkeep.errors import MailkeepError
from mailkeep.imap import access
from mailkeep.imap.handlers.base import ImapError
from mailkeep.store.api import Account, FlagMode, Mailbox
from mailkeep.store.factory import open_store
from mailkeep.store.sqlstore import SqlStore

T = TypeVar("T")
MODES = {"+": FlagMode.ADD, "-": FlagMode.REMOVE, "": FlagMode.REPLACE}
SPECIAL_IDENTIFIERS = (access.ANYONE, access.AUTHENTICATED)


class CliContext(Protocol):
    def require_initialised(self) -> Config: ...


def _run(obj: CliContext, body: Callable[[SqlStore], Awaitable[T]]) -> T:
    """Open the store of the data directory, run ``body``, close; our errors exit 1."""

    async def run() -> T:
        config = obj.require_initialised()
        store = await open_store(config.store.url, config.data_dir, pool_size=1)
        try:
            return await body(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except MailkeepError as exc:
        raise click.ClickException(str(exc)) from None


def _owner_address(owner: str) -> str:
    return access.PUBLIC_OWNER if owner.lower() in ("public", access.PUBLIC_OWNER) else owner


async def _account(store: SqlStore, address: str) -> Account:
    account = await store.get_account(_owner_address(address))
    if account is None:
        raise click.ClickException(f"no account {address}")
    return account


async def _mailbox(store: SqlStore, owner: str, name: str) -> tuple[Account, Mailbox]:
    account = await _account(store, owner)
    mailbox = await store.get_mailbox(account.id, name)
    if mailbox is None:
        raise click.ClickException(f"{account.address} has no mailbox {name}")
    return account, mailbox


def _grantee(grantee: str) -> str:
    return grantee.strip().lower()


def shown_name(owner: Account, mailbox: Mailbox) -> str:
    """The mailbox's name for a grantee (``access``)."""
    if owner.address == access.PUBLIC_OWNER:
        return f"{access.PUBLIC}{access.SEPARATOR}{mailbox.name}"
    return f"{access.OTHERS}{access.SEPARATOR}{owner.address}{access.SEPARATOR}{mailbox.name}"


@click.group("mailbox")
def mailbox() -> None:
    """Share mailboxes between accounts (IMAP ACL, RFC 4314)."""


@mailbox.command("share")
@click.argument("owner")
@click.argument("name", metavar="MAILBOX")
@click.argument("grantee")
@click.argument("rights")
@click.pass_obj
def share(obj: CliContext, owner: str, name: str, grantee: str, rights: str) -> None:
    """Grant GRANTEE (an address, 'anyone' or 'authenticated') RIGHTS on OWNER's MAILBOX.

    RIGHTS are RFC 4314 letters: l lookup, r read, s keep \\Seen, w write flags, i insert,
    p post, k create below, x delete, t delete messages, e expunge, a administer. A
    leading + adds to what the grantee has, - removes; otherwise they replace it.
    """
    try:
        mode, letters = access.parse_rights(rights)
    except ImapError as exc:
        raise click.BadParameter(exc.text, param_hint="RIGHTS") from None
    who = _grantee(grantee)

    async def body(store: SqlStore) -> str:
        account, box = await _mailbox(store, owner, name)
        if who == account.address:
            raise click.ClickException("the owner always has every right")
        if who not in SPECIAL_IDENTIFIERS and await store.get_account(who) is None:
            raise click.ClickException(f"no account {grantee}")
        now = await store.set_acl(box.id, who, letters, MODES[mode])
        if not now:
            return f"{who} has no rights on {account.address} {box.name} any more"
        return (
            f"{who} now has {access.show(now)} on {account.address} {box.name}"
            f" (seen as {shown_name(account, box)})"
        )

    click.echo(_run(obj, body))


@mailbox.command("unshare")
@click.argument("owner")
@click.argument("name", metavar="MAILBOX")
@click.argument("grantee")
@click.pass_obj
def unshare(obj: CliContext, owner: str, name: str, grantee: str) -> None:
    """Remove GRANTEE's entry from the access list of OWNER's MAILBOX."""
    who = _grantee(grantee)

    async def body(store: SqlStore) -> str:
        account, box = await _mailbox(store, owner, name)
        if not await store.delete_acl(box.id, who):
            raise click.ClickException(f"{box.name} of {account.address} is not shared with {who}")
        return f"{box.name} of {account.address} is no longer shared with {who}"

    click.echo(_run(obj, body))


@mailbox.command("shares")
@click.argument("account", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def shares(obj: CliContext, account: str | None, as_json: bool) -> None:
    """List shared mailboxes: of ACCOUNT and with ACCOUNT, or all of them."""

    async def body(store: SqlStore) -> list[dict[str, str]]:
        owners = await store.list_accounts()
        focus = None if account is None else await _account(store, account)
        rows: list[dict[str, str]] = []
        for owner in owners:
            for box in await store.list_mailboxes(owner.id):
                for identifier, rights in await store.get_acl(box.id):
                    if focus is not None and focus.id != owner.id and identifier != focus.address:
                        continue
                    rows.append(
                        {
                            "owner": owner.address,
                            "mailbox": box.name,
                            "grantee": identifier,
                            "rights": access.show(rights),
                            "seen_as": shown_name(owner, box),
                        }
                    )
        return rows

    rows = _run(obj, body)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no shared mailboxes")
        return
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in ("owner", "mailbox", "grantee")}
    header = "  ".join(k.upper().ljust(widths[k]) for k in widths) + "  RIGHTS"
    click.echo(header)
    for row in rows:
        click.echo("  ".join(row[k].ljust(widths[k]) for k in widths) + "  " + row["rights"])


@mailbox.command("create")
@click.argument("owner")
@click.argument("name", metavar="MAILBOX")
@click.pass_obj
def create(obj: CliContext, owner: str, name: str) -> None:
    """Create MAILBOX for OWNER ('public' for the Public/ namespace, made if missing)."""

    if access.split(name) is not None:
        raise click.BadParameter(
            f"{access.OTHERS} and {access.PUBLIC} are the names of IMAP namespaces",
            param_hint="MAILBOX",
        )

    async def body(store: SqlStore) -> str:
        address = _owner_address(owner)
        account = await store.get_account(address)
        if account is None and address == access.PUBLIC_OWNER:
            account = await store.create_account(
                access.PUBLIC_OWNER, access.LOCKED_PASSWORD, None, mailboxes=()
            )
        if account is None:
            raise click.ClickException(f"no account {owner}")
        made = await store.create_mailbox(account.id, name)
        return f"created {made.name} for {account.address}"

    click.echo(_run(obj, body))


COMMANDS: list[click.Command] = [mailbox]
