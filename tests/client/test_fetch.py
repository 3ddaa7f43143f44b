"""``mailkeep fetch`` (POP3) against Dovecot: every policy, headers only, resume."""

from __future__ import annotations

import poplib
from pathlib import Path

import pytest

from mailkeep.client.connection import TlsMode
from mailkeep.client.errors import Busy
from mailkeep.client.fetcher import DAY, FetchOptions, FetchPolicy, fetch_account
from mailkeep.client.maildir import INBOX, MaildirStore
from mailkeep.client.statedb import StateDB

from .conftest import MailUser, account_for


def message(n: int, body_lines: int = 3) -> bytes:
    body = b"".join(b"line %d of message %d\r\n" % (i, n) for i in range(body_lines))
    return (
        (
            b"From: sender@example.org\r\nTo: user@example.com\r\n"
            b"Subject: message %d\r\nMessage-ID: <m%d@example.org>\r\n\r\n" % (n, n)
        )
        + body
        + b".starts with a dot\r\n"
    )


def server_count(user: MailUser) -> int:
    pop = poplib.POP3("127.0.0.1", user.server.pop3_port)
    try:
        pop.user(user.name)
        pop.pass_(user.password)
        return pop.stat()[0]
    finally:
        pop.quit()


def local_messages(root: Path) -> dict[str, bytes]:
    box = MaildirStore(root).folder(INBOX)
    return {key: m.path.read_bytes() for key, m in box.messages().items()}


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def run(user: MailUser, root: Path, **options: object) -> tuple[int, int, int]:
    account = account_for(user, root, "pop3")
    report = await fetch_account(account, user.password, FetchOptions(**options))  # type: ignore[arg-type]
    return report.new, report.changed, report.deleted


async def test_delete_after_download_is_the_default(mail_user: MailUser, tmp_path: Path) -> None:
    for n in range(3):
        mail_user.deliver(message(n))
    root = tmp_path / "Mail"
    assert await run(mail_user, root) == (3, 0, 3)
    stored = sorted(local_messages(root).values())
    # Stored byte for byte as delivered, dot-unstuffed, behind Dovecot's trace headers.
    assert all(any(m.endswith(message(n)) for m in stored) for n in range(3))
    assert server_count(mail_user) == 0
    # New messages land in new/ so that mail readers announce them.
    assert all(p.parent.name == "new" for p in (root / "new").iterdir())
    assert await run(mail_user, root) == (0, 0, 0)


async def test_leave_on_server_downloads_once(mail_user: MailUser, tmp_path: Path) -> None:
    mail_user.deliver(message(1))
    root = tmp_path / "Mail"
    leave = FetchPolicy(leave_on_server=True)
    assert await run(mail_user, root, policy=leave) == (1, 0, 0)
    mail_user.deliver(message(2))
    assert await run(mail_user, root, policy=leave) == (1, 0, 0)
    assert await run(mail_user, root, policy=leave) == (0, 0, 0)
    assert len(local_messages(root)) == 2
    assert server_count(mail_user) == 2


async def test_delete_after_days_counts_from_download(mail_user: MailUser, tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    clock = Clock()
    policy = FetchPolicy(delete_after_days=3)
    mail_user.deliver(message(1))
    assert await run(mail_user, root, policy=policy, clock=clock) == (1, 0, 0)
    clock.now += 2 * DAY
    mail_user.deliver(message(2))
    assert await run(mail_user, root, policy=policy, clock=clock) == (1, 0, 0)
    clock.now += 1.5 * DAY  # message 1 is 3.5 days old, message 2 only 1.5
    assert await run(mail_user, root, policy=policy, clock=clock) == (0, 0, 1)
    assert server_count(mail_user) == 1
    clock.now += 2 * DAY
    assert await run(mail_user, root, policy=policy, clock=clock) == (0, 0, 1)
    assert server_count(mail_user) == 0
    assert len(local_messages(root)) == 2


async def test_delete_when_trashed(mail_user: MailUser, tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    policy = FetchPolicy(delete_when_trashed=True)
    for n in range(3):
        mail_user.deliver(message(n))
    assert await run(mail_user, root, policy=policy) == (3, 0, 0)
    box = MaildirStore(root).folder(INBOX)
    first, second, _ = sorted(box.messages().values(), key=lambda m: m.key)
    box.remove(first)  # deleted in the mail reader
    box.set_flags(second, "ST")  # marked trashed (mutt's "d" before sync)
    assert await run(mail_user, root, policy=policy) == (0, 0, 2)
    assert server_count(mail_user) == 1
    assert await run(mail_user, root, policy=policy) == (0, 0, 0)


async def test_headers_only_then_complete(mail_user: MailUser, tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    for n in range(3):
        mail_user.deliver(message(n, body_lines=50))
    assert await run(mail_user, root, headers_only=True) == (3, 0, 0)
    # Header-only messages are never deleted on the server, whatever the policy.
    assert server_count(mail_user) == 3
    local = local_messages(root)
    assert all(b"line 0 of" not in m for m in local.values())
    assert all(m.endswith(b"\r\n\r\n") for m in local.values())
    box = MaildirStore(root).folder(INBOX)
    chosen = sorted(box.messages().values(), key=lambda m: m.key)[0]
    flagged = box.set_flags(sorted(box.messages().values(), key=lambda m: m.key)[1], "F")
    assert await run(mail_user, root, complete=frozenset({chosen.key}), complete_flagged=True) == (
        0,
        2,
        2,
    )
    local = local_messages(root)
    assert b"line 49 of" in local[chosen.key]
    assert b"line 49 of" in local[flagged.key]
    assert server_count(mail_user) == 1
    with StateDB(root.with_name("Mail.mailkeep.sqlite")) as state:
        assert sum(r.headers_only for r in state.pop3_rows().values()) == 1


async def test_dry_run_changes_nothing(mail_user: MailUser, tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    mail_user.deliver(message(1))
    assert await run(mail_user, root, dry_run=True) == (1, 0, 0)
    assert local_messages(root) == {}
    assert server_count(mail_user) == 1


async def test_interrupted_download_resumes_without_duplicate(
    mail_user: MailUser, tmp_path: Path
) -> None:
    root = tmp_path / "Mail"
    mail_user.deliver(message(1))
    account = account_for(mail_user, root, "pop3")
    # Simulate a crash after the file reached the Maildir but before the state recorded it:
    # the download is pending under its key, and the file is there.
    MaildirStore(root).ensure()
    with StateDB(account.state) as state:
        pop = poplib.POP3("127.0.0.1", mail_user.server.pop3_port)
        pop.user(mail_user.name)
        pop.pass_(mail_user.password)
        uidl = pop.uidl(1).split()[2].decode()
        pop.quit()
        state.pop3_pending(uidl, "1.crashed.host", 0.0)
    box = MaildirStore(root).folder(INBOX)
    box.deliver(b"partial", key="1.crashed.host", to_new=True)
    policy = FetchPolicy(leave_on_server=True)
    assert await run(mail_user, root, policy=policy) == (1, 0, 0)
    local = local_messages(root)
    assert list(local) == ["1.crashed.host"]
    assert local["1.crashed.host"].endswith(message(1))
    assert await run(mail_user, root, policy=policy) == (0, 0, 0)


async def test_pop3_over_tls_and_starttls(mail_user: MailUser, tmp_path: Path) -> None:
    mail_user.deliver(message(1))
    policy = FetchPolicy(leave_on_server=True)
    ca = str(mail_user.server.cafile)
    for n, (tls, port) in enumerate(
        (
            (TlsMode.IMPLICIT, mail_user.server.pop3s_port),
            (TlsMode.STARTTLS, mail_user.server.pop3_port),
        )
    ):
        root = tmp_path / f"Mail{n}"
        account = account_for(mail_user, root, "pop3", tls=tls, port=port, cafile=ca, auth="login")
        report = await fetch_account(account, mail_user.password, FetchOptions(policy=policy))
        assert report.new == 1


async def test_one_run_per_account_at_a_time(mail_user: MailUser, tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    account = account_for(mail_user, root, "pop3")
    with StateDB(account.state), pytest.raises(Busy):
        await fetch_account(account, mail_user.password, FetchOptions())
    # Released: the next run goes ahead.
    await fetch_account(account, mail_user.password, FetchOptions())
