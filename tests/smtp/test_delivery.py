"""Delivery to one recipient: the message is parsed while the recipient is looked up, and
a recipient that went away between RCPT and DATA leaves no parse behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailkeep.auth.passwords import hash_password
from mailkeep.mail.parser import Parser
from mailkeep.smtp import delivery as delivery_module
from mailkeep.smtp.delivery import Delivery, Envelope, Status
from mailkeep.store.api import Account, FetchField
from mailkeep.store.factory import open_store
from mailkeep.store.sqlstore import SqlStore

RAW = b"From: bob@example.org\r\nSubject: hello\r\n\r\nHi there.\r\n"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    store = await open_store("sqlite:store", tmp_path)
    yield store
    await store.close()


@pytest.fixture
async def parser() -> AsyncIterator[Parser]:
    parser = Parser(workers=1)
    await parser.start()
    yield parser
    await parser.close()


async def test_a_recipient_gone_since_rcpt_leaves_no_parse_running(
    store: SqlStore, parser: Parser
) -> None:
    account = await store.create_account("alice@mail.test", hash_password("pw"), None)
    delivery = Delivery(store, "mail.test", ["mail.test"], parser=parser)
    envelope = Envelope("bob@example.org", "client.test")
    (gone,) = await delivery.deliver(RAW, envelope, ["carol@mail.test"])
    assert gone.status is Status.UNKNOWN_USER
    (worker,) = [w for w in parser._running if w is not None]
    assert not [f for f in worker.waiting if not f.done()]
    (delivered,) = await delivery.deliver(RAW, envelope, ["alice@mail.test"])
    assert delivered.status is Status.DELIVERED
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    (row,) = await store.fetch(inbox.id, [delivered.uid or 0], FetchField.ENVELOPE)
    assert b'"hello"' in row.envelope


async def test_an_inbox_found_gone_is_looked_up_again(store: SqlStore, parser: Parser) -> None:
    """Deliveries remember each account's INBOX; should it ever go (only the store itself
    can delete it), the delivery fails temporarily and the next one looks it up again."""
    account = await store.create_account("alice@mail.test", hash_password("pw"), None)
    delivery = Delivery(store, "mail.test", ["mail.test"], parser=parser)
    envelope = Envelope("bob@example.org", "client.test")
    (first,) = await delivery.deliver(RAW, envelope, ["alice@mail.test"])
    assert first.status is Status.DELIVERED
    old = await store.get_mailbox(account.id, "INBOX")
    assert old is not None
    await store.delete_mailbox(old.id)
    (failed,) = await delivery.deliver(RAW, envelope, ["alice@mail.test"])
    assert failed.status is Status.TEMPORARY
    new = await store.create_mailbox(account.id, "INBOX")
    (again,) = await delivery.deliver(RAW, envelope, ["alice@mail.test"])
    assert again.status is Status.DELIVERED
    assert (await store.mailbox_status(new.id)).messages == 1


async def test_an_account_looked_up_answers_for_a_second(
    store: SqlStore, parser: Parser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RCPT, DATA and the next messages for one address use one lookup of the account
    (``ACCOUNT_TTL``), its usage kept as each delivery leaves it; once that is past, the
    account is read again."""
    await store.create_account("alice@mail.test", hash_password("pw"), None)
    delivery = Delivery(store, "mail.test", ["mail.test"], parser=parser)
    envelope = Envelope("bob@example.org", "client.test")
    lookups: list[str] = []
    get_account = store.get_account

    async def counted(address: str) -> Account | None:
        lookups.append(address)
        return await get_account(address)

    monkeypatch.setattr(store, "get_account", counted)
    for _ in range(3):
        assert await delivery.accept("Alice+tag@mail.test") is Status.DELIVERED
        (outcome,) = await delivery.deliver(RAW, envelope, ["alice@mail.test"])
        assert outcome.status is Status.DELIVERED
    assert lookups == ["alice@mail.test"]
    account, _ = await delivery.resolve("alice@mail.test")
    assert account is not None
    assert account.used_messages == 3
    monkeypatch.setattr(delivery_module, "ACCOUNT_TTL", 0.0)
    await delivery.resolve("alice@mail.test")
    assert lookups == ["alice@mail.test"] * 2
