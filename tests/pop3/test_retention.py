"""Retention policies: parsing, per-account settings, and the ``days:N`` expiry job run
against a store with a simulated clock."""

from __future__ import annotations

import pytest

from mailkeep.config import Pop3Config
from mailkeep.errors import ConfigError
from mailkeep.pop3.retention import (
    KEEP,
    Expired,
    Kind,
    Policy,
    Retention,
    account_policy,
    expire,
    expire_store,
    parse_retention,
)
from mailkeep.store.api import Account
from mailkeep.store.sqlstore import SqlStore

from .conftest import Clock, Driver, add_account, deliver, new_session

DAY = 86400


@pytest.mark.parametrize(
    ("text", "retention", "expire_arg"),
    [
        ("keep", KEEP, "NEVER"),
        (" KEEP ", KEEP, "NEVER"),
        ("delete-after-retr", Retention(Kind.DELETE_AFTER_RETR), "0"),
        ("days:1", Retention(Kind.DAYS, 1), "1"),
        ("days:30", Retention(Kind.DAYS, 30), "30"),
    ],
)
def test_parse_retention(text: str, retention: Retention, expire_arg: str) -> None:
    assert parse_retention(text) == retention
    assert retention.expire == expire_arg
    assert parse_retention(str(retention)) == retention


@pytest.mark.parametrize("text", ["", "forever", "days:", "days:0", "days:-1", "days:x", "7"])
def test_bad_retention(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_retention(text)


def test_account_settings_override_the_server() -> None:
    server = Pop3Config(retention="days:10", retr_marks_seen=True)
    plain = Account(1, "a@example.org", None, None, 0, 0, {})
    assert account_policy(plain, server) == Policy(Retention(Kind.DAYS, 10), True)
    custom = Account(
        1, "a@example.org", None, None, 0, 0,
        {"pop3.retention": "keep", "pop3.retr-marks-seen": "no"},
    )  # fmt: skip
    assert account_policy(custom, server) == Policy(KEEP, False)
    broken = Account(1, "a@example.org", None, None, 0, 0, {"pop3.retention": "sometimes"})
    assert account_policy(broken, server) == Policy(Retention(Kind.DAYS, 10), True)


def message(n: int) -> bytes:
    return f"Subject: {n}\r\n\r\nbody {n}\r\n".encode()


async def retrieve(store: SqlStore, *msgs: int) -> None:
    driver = Driver(new_session(store))
    await driver.login()
    for msg in msgs:
        assert (await driver.command(f"RETR {msg}")).startswith(b"+OK")
    await driver.command("QUIT")


async def uids(store: SqlStore, account: Account) -> list[int]:
    mailbox = await store.get_mailbox(account.id, "INBOX")
    assert mailbox is not None
    return list((await store.snapshot(mailbox.id)).uids)


async def test_days_policy(store: SqlStore, account: Account, clock: Clock) -> None:
    config = Pop3Config(retention="days:3")
    delivered = await deliver(store, account, message(1), message(2), message(3))
    await retrieve(store, 1)
    clock.advance(DAY)
    await retrieve(store, 1, 2)  # a second download does not restart the count
    clock.advance(2 * DAY - 1)
    assert await expire(store, config) == 0
    clock.advance(1)
    assert await expire_store(store, config, dry_run=True) == [
        Expired(account.address, (delivered[0],))
    ]
    assert await uids(store, account) == delivered
    assert await expire(store, config) == 1
    assert await uids(store, account) == delivered[1:]
    clock.advance(DAY)
    assert await expire(store, config) == 1
    clock.advance(365 * DAY)
    assert await expire(store, config) == 0  # never downloaded: kept
    assert await uids(store, account) == delivered[2:]


async def test_days_only_where_the_policy_says(
    store: SqlStore, account: Account, clock: Clock
) -> None:
    bob = await add_account(store, "bob@example.org")
    await deliver(store, account, message(1))
    await deliver(store, bob, message(1))
    await retrieve(store, 1)
    driver = Driver(new_session(store))
    await driver.login("bob@example.org")
    await driver.command("RETR 1")
    await driver.command("QUIT")
    await store.set_account_setting(bob.id, "pop3.retention", "days:1")
    clock.advance(2 * DAY)
    assert await expire_store(store, Pop3Config()) == [Expired("bob@example.org", (1,))]
    assert await uids(store, account) == [1]
    assert await uids(store, bob) == []


async def test_expiry_skips_a_maildrop_in_use(
    store: SqlStore, account: Account, clock: Clock
) -> None:
    config = Pop3Config(retention="days:1")
    await deliver(store, account, message(1))
    await retrieve(store, 1)
    clock.advance(2 * DAY)
    driver = Driver(new_session(store))
    await driver.login()
    assert await expire_store(store, config) == [Expired(account.address, (), skipped=True)]
    assert await driver.command("RETR 1") != b""
    await driver.command("QUIT")
    assert await expire(store, config) == 1
