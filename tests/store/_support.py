"""Messages for the store tests, built as a mail client would send them and parsed with
the real parser (the store never sees a message that did not go through it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.header import Header
from pathlib import Path
from typing import Any

from mailkeep.mail.message import parse
from mailkeep.store.api import NewMessage
from mailkeep.store.sqlstore import SqlStore

ARGON = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


async def blob_bytes(store: SqlStore, blob: str) -> bytes:
    """A stored message's octets, read whole."""
    reader = await store.open_blob(blob)
    try:
        return await reader.read(0, reader.size)
    finally:
        await reader.close()


async def inbox_id(store: SqlStore) -> int:
    """A new account's INBOX (alice@example.org), for tests that need one mailbox."""
    account = await store.create_account("alice@example.org", ARGON, None)
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    return inbox.id


def sqlite_database(data: Path) -> Path:
    """The database file of the ``sqlite:store`` store in the data directory ``data``."""
    return data / "store" / "mailkeep.sqlite3"


def _encode(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode()


def raw_message(
    subject: str = "Hello",
    body: str = "Just a short note.\r\n",
    *,
    sender: str = "Alice Example <alice@example.org>",
    to: str = "Bob <bob@example.net>",
    cc: str | None = None,
    bcc: str | None = None,
    date: str | None = "Mon, 07 Feb 1994 21:52:25 -0800",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A UTF-8 text/plain message (8bit body, RFC 2047 encoded non-ASCII headers)."""
    lines = [f"From: {_encode(sender)}", f"To: {_encode(to)}"]
    if cc is not None:
        lines.append(f"Cc: {_encode(cc)}")
    if bcc is not None:
        lines.append(f"Bcc: {_encode(bcc)}")
    lines.append(f"Subject: {_encode(subject)}")
    if date is not None:
        lines.append(f"Date: {date}")
    if message_id is not None:
        lines.append(f"Message-ID: {message_id}")
    if in_reply_to is not None:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references is not None:
        lines.append(f"References: {references}")
    lines += [f"{name}: {value}" for name, value in headers]
    lines += [
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    text = "\r\n".join(lines) + "\r\n\r\n" + body.replace("\r\n", "\n").replace("\n", "\r\n")
    return text.encode("utf-8")


def new(
    raw: bytes,
    *,
    flags: int = 0,
    keywords: tuple[str, ...] = (),
    internaldate: datetime | None = None,
) -> NewMessage:
    return NewMessage(raw, parse(raw), flags, keywords, internaldate)


def msg(
    subject: str = "Hello",
    body: str = "Just a short note.\r\n",
    *,
    flags: int = 0,
    keywords: tuple[str, ...] = (),
    internaldate: datetime | None = None,
    **fields: Any,
) -> NewMessage:
    """``new(raw_message(...))`` in one call; ``fields`` go to ``raw_message``."""
    raw = raw_message(subject, body, **fields)
    return new(raw, flags=flags, keywords=keywords, internaldate=internaldate)
