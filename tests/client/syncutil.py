"""Helpers for the sync tests: each side's state as {folder: {Message-ID: flag letters}}."""

from __future__ import annotations

from pathlib import Path

from mailkeep.client import flagmap
from mailkeep.client.connection import Endpoint, TlsMode
from mailkeep.client.imap import ImapClient
from mailkeep.client.imapwire import FileLiteral
from mailkeep.client.maildir import MaildirStore
from mailkeep.client.report import RunReport
from mailkeep.client.sync import SyncOptions, message_id, sync_account

from .conftest import MailUser, account_for

State = dict[str, dict[str, str]]


def msg(n: int | str, subject: str = "") -> bytes:
    return (
        f"From: a@example.org\r\nTo: b@example.com\r\nSubject: {subject or n}\r\n"
        f"Message-ID: <{n}@example.org>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"
        f"Body of {n}.\r\n"
    ).encode()


async def server(user: MailUser) -> ImapClient:
    client = await ImapClient.connect(
        Endpoint("127.0.0.1", user.server.imap_port, TlsMode.NONE, timeout=20)
    )
    await client.login(user.name, user.password)
    return client


async def remote_state(user: MailUser) -> State:
    client = await server(user)
    try:
        result: State = {}
        for entry in await client.list_mailboxes():
            if not entry.selectable:
                continue
            box = await client.select(entry.name, readonly=True)
            name = "/".join(entry.name.split(entry.delimiter or "/"))
            result[name] = {}
            if not box.exists:
                continue
            for fetch in await client.uid_fetch(
                "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
            ):
                head = fetch.section("BODY[HEADER.FIELDS (MESSAGE-ID)]")
                data = head.read() if isinstance(head, FileLiteral) else head or b""
                mid = message_id(data) or f"uid{fetch.uid}"
                result[name][mid] = flagmap.letters_from_imap(fetch.flags or ())
        return result
    finally:
        await client.logout()


def local_state(root: Path) -> State:
    result: State = {}
    for folder, box in MaildirStore(root).folders().items():
        name = "/".join(folder)
        result[name] = {}
        for message in box.messages().values():
            mid = message_id(message.path.read_bytes()) or message.key
            result[name][mid] = flagmap.synced(message.flags)
    return result


async def run_sync(
    user: MailUser, root: Path, qresync: bool = True, **options: object
) -> RunReport:
    account = account_for(user, root)
    opts = SyncOptions(use_qresync=qresync, **options)  # type: ignore[arg-type]
    return await sync_account(account, user.password, opts)


def counts(report: RunReport) -> tuple[int, int, int, int]:
    return report.new, report.changed, report.deleted, report.folders
