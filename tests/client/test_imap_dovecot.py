"""The asyncio IMAP client against a real server (Dovecot)."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime

import pytest

from mailkeep.client.connection import Endpoint, TlsMode
from mailkeep.client.errors import AuthenticationFailed, ImapError, NetworkError, TlsFailure
from mailkeep.client.imap import ImapClient, QresyncParams
from mailkeep.client.imapwire import Exists, FileLiteral, format_uid_set

from .conftest import MailUser

MESSAGE = b"From: a@example.org\r\nSubject: test\r\nMessage-ID: <m1@example.org>\r\n\r\nhello\r\n"


async def connect(
    user: MailUser, tls: TlsMode = TlsMode.NONE, ctx: ssl.SSLContext | None = None
) -> ImapClient:
    port = user.server.imaps_port if tls is TlsMode.IMPLICIT else user.server.imap_port
    client = await ImapClient.connect(Endpoint("127.0.0.1", port, tls, ctx, timeout=10))
    await client.login(user.name, user.password)
    return client


async def test_login_capabilities_and_failures(mail_user: MailUser) -> None:
    client = await connect(mail_user)
    assert client.has("QRESYNC")
    assert client.has("UIDPLUS")
    assert client.has("IDLE")
    await client.logout()
    bad = await ImapClient.connect(Endpoint("127.0.0.1", mail_user.server.imap_port, TlsMode.NONE))
    with pytest.raises(AuthenticationFailed):
        await bad.login(mail_user.name, "wrong password")
    await bad.logout()


async def test_tls_modes(mail_user: MailUser, client_tls: ssl.SSLContext) -> None:
    for mode in (TlsMode.IMPLICIT, TlsMode.STARTTLS):
        client = await connect(mail_user, mode, client_tls)
        assert "STARTTLS" not in client.capabilities
        await client.logout()
    # Without the test CA, verification fails: a TLS error, not a network one.
    with pytest.raises(TlsFailure):
        await ImapClient.connect(
            Endpoint(
                "127.0.0.1",
                mail_user.server.imaps_port,
                TlsMode.IMPLICIT,
                ssl.create_default_context(),
            )
        )


async def test_connection_refused_is_network_error(mail_user: MailUser) -> None:
    with pytest.raises(NetworkError):
        await ImapClient.connect(Endpoint("127.0.0.1", 1, TlsMode.NONE, timeout=5))


async def test_append_fetch_store_expunge(mail_user: MailUser) -> None:
    client = await connect(mail_user)
    when = datetime(2020, 5, 17, 10, 20, 30, tzinfo=UTC)
    appended = await client.append(
        "INBOX", MESSAGE, flags=["\\Flagged", "$Work"], internaldate=when
    )
    assert appended.uid == 1
    assert appended.uidvalidity
    big = b"Subject: big\r\n\r\n" + b"0123456789abcdef\r\n" * 40000
    second = await client.append("INBOX", big)
    box = await client.select("INBOX")
    assert box.exists == 2
    assert box.uidvalidity == appended.uidvalidity
    assert box.uidnext == 3
    fetches = await client.uid_fetch("1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
    by_uid = {f.uid: f for f in fetches}
    assert set(by_uid) == {1, 2}
    assert by_uid[1].section() == MESSAGE
    assert set(by_uid[1].flags or ()) - {"\\Recent"} == {"\\Flagged", "$Work"}
    assert by_uid[1].internaldate == when
    spooled = by_uid[second.uid].section()
    assert isinstance(spooled, FileLiteral)
    assert spooled.read() == big
    for fetch in fetches:
        fetch.close()
    await client.uid_store("1", "+FLAGS", ["\\Seen"])
    (fetch,) = await client.uid_fetch("1", "(FLAGS)")
    assert "\\Seen" in (fetch.flags or ())
    await client.uid_store("1:2", "+FLAGS", ["\\Deleted"])
    await client.uid_expunge("2")
    assert (await client.uid_search("ALL")).numbers == (1,)
    with pytest.raises(ImapError) as info:
        await client.select("No/Such/Box")
    assert info.value.status == "NO"
    await client.logout()


async def test_folders_and_pipelined_fetch(mail_user: MailUser) -> None:
    client = await connect(mail_user)
    (inbox,) = await client.list_mailboxes("", "INBOX")
    sep = inbox.delimiter or "/"
    await client.create(f"Archive{sep}2024")
    await client.create("Entwürfe")
    await client.rename(f"Archive{sep}2024", f"Archive{sep}Old")
    names = {entry.name for entry in await client.list_mailboxes()}
    assert {"INBOX", "Archive", f"Archive{sep}Old", "Entwürfe"} <= names
    for n in range(120):
        await client.append("Entwürfe", b"Subject: %d\r\n\r\nbody\r\n" % n)
    status = await client.status("Entwürfe", ["MESSAGES", "UIDNEXT", "HIGHESTMODSEQ"])
    assert status["MESSAGES"] == 120
    assert status["UIDNEXT"] == 121
    await client.select("Entwürfe", readonly=True)
    seen: list[int] = []
    await client.uid_fetch_pipelined(
        list(range(1, 121)), "(UID BODY.PEEK[HEADER])", lambda f: seen.append(f.uid or 0), batch=7
    )
    assert sorted(seen) == list(range(1, 121))
    await client.unselect()
    await client.delete(f"Archive{sep}Old")
    names = {entry.name for entry in await client.list_mailboxes()}
    assert f"Archive{sep}Old" not in names
    await client.logout()


async def test_qresync_select_reports_changes_and_vanished(mail_user: MailUser) -> None:
    client = await connect(mail_user)
    for n in range(5):
        await client.append("INBOX", b"Subject: %d\r\n\r\nx\r\n" % n)
    assert "QRESYNC" in await client.enable("QRESYNC")
    box = await client.select("INBOX")
    assert box.highestmodseq is not None
    assert box.uidvalidity is not None
    before = box.highestmodseq
    await client.uid_store("2", "+FLAGS", ["\\Seen"])
    await client.uid_store("4", "+FLAGS", ["\\Deleted"])
    await client.uid_expunge("4")
    await client.unselect()
    box = await client.select(
        "INBOX", qresync=QresyncParams(box.uidvalidity, before, format_uid_set(range(1, 6)))
    )
    assert box.vanished == [4]
    assert [(f.uid, f.flags) for f in box.changed] == [(2, ("\\Seen",))]
    # Unchanged since now: nothing reported.
    now = box.highestmodseq
    assert now is not None
    assert now > before
    await client.unselect()
    box = await client.select("INBOX", qresync=QresyncParams(box.uidvalidity or 0, now))
    assert box.vanished == []
    assert box.changed == []
    await client.logout()


async def test_idle_sees_new_mail(mail_user: MailUser) -> None:
    client = await connect(mail_user)
    await client.select("INBOX")
    async with client.idle() as events:
        await asyncio.to_thread(mail_user.deliver, MESSAGE)
        event = await asyncio.wait_for(events.get(), 30)
        while not isinstance(event, Exists):
            event = await asyncio.wait_for(events.get(), 30)
    assert event.count == 1
    await client.logout()
