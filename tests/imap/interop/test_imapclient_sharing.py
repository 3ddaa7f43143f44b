"""IMAPClient (Python) against a real server for the multi-user extensions: NAMESPACE,
ACL (alice shares a folder with bob, who then works in it), QUOTA (GETQUOTAROOT, and
SETQUOTA by an admin) and METADATA (through imaplib's extension command support, as
IMAPClient has no METADATA methods)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from imapclient import IMAPClient  # type: ignore[import-untyped,unused-ignore]
from imapclient.imapclient import Quota  # type: ignore[import-untyped,unused-ignore]

from mailkeep.app import App, listener_specs
from mailkeep.config import Config, ListenersConfig
from mailkeep.net.listeners import Listeners
from mailkeep.net.tls import ensure_self_signed

from .conftest import PASSWORD, credentials

ALICE = "alice@example.org"
BOB = "bob@example.org"
MESSAGE = b"From: carol@example.org\r\nTo: team@example.org\r\nSubject: plan\r\n\r\nHi.\r\n"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[App, int]]:
    """mailkeep with alice (an admin) and bob, on an IMAP port of its own."""
    data = tmp_path / "data"
    data.mkdir()
    config = replace(
        Config(hostname="localhost"),
        data_dir=data,
        listeners=ListenersConfig(),
        admins=(ALICE,),
    )
    cert, key = config.path(config.tls.cert), config.path(config.tls.key)
    cert.parent.mkdir(parents=True, exist_ok=True)
    ensure_self_signed(cert, key, "localhost")
    app = await App.open(config)
    password_hash, scram = credentials()
    for address in (ALICE, BOB):
        await app.store.create_account(address, password_hash, scram)
    tls = app.tls
    assert tls is not None
    listeners = Listeners(
        listener_specs(app, {"imap": ("127.0.0.1", 0)}),
        gate=app.gate,
        tls_context=lambda: tls.context,
    )
    bound = {name: port for name, _, port in await listeners.start()}
    try:
        yield app, bound["imap"]
    finally:
        await listeners.stop(grace=2)
        await app.close()


def connect(port: int, address: str) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=port, ssl=False)
    client.login(address, PASSWORD)
    return client


async def test_acl_namespace_and_shared_work(server: tuple[App, int]) -> None:
    _, port = server

    def dialogue() -> None:
        alice = connect(port, ALICE)
        bob = connect(port, BOB)
        try:
            for capability in (b"ACL", b"RIGHTS=TEXK", b"QUOTA", b"METADATA", b"NOTIFY"):
                assert capability in alice.capabilities()
            personal, others, shared = alice.namespace()
            assert personal == (("", "/"),)
            assert others == (("Shared/", "/"),)
            assert shared == (("Public/", "/"),)
            alice.create_folder("Team")
            alice.append("Team", MESSAGE)
            alice.setacl("Team", BOB, "lrswi")
            assert alice.getacl("Team") == [
                (ALICE.encode(), b"lrswipkxteacd"),
                (BOB.encode(), b"lrswi"),
            ]
            folders = [name for _, _, name in bob.list_folders()]
            assert "Shared/alice@example.org/Team" in folders
            bob.select_folder("Shared/alice@example.org/Team")
            assert bob.search("ALL") == [1]
            bob.add_flags([1], [b"$Done"])
            assert b"$Done" in bob.get_flags([1])[1]
            with pytest.raises(IMAPClient.Error, match="NOPERM"):
                bob.delete_messages([1])
            alice.select_folder("Team")
            assert b"$Done" in alice.get_flags([1])[1]
            alice.setacl("Team", BOB, "")  # IMAPClient's way of removing an entry
            with pytest.raises(IMAPClient.Error, match="NOPERM"):
                bob.search("ALL")
            assert "Shared/alice@example.org/Team" not in [n for _, _, n in bob.list_folders()]
        finally:
            alice.logout()
            bob.logout()

    await asyncio.to_thread(dialogue)


async def test_quota(server: tuple[App, int]) -> None:
    app, port = server
    bob_account = await app.store.get_account(BOB)
    assert bob_account is not None
    await app.store.set_quota(bob_account.id, 2048 * 1024, 100)
    inbox = await app.store.get_mailbox(bob_account.id, "INBOX")
    assert inbox is not None

    def dialogue() -> None:
        bob = connect(port, BOB)
        alice = connect(port, ALICE)
        try:
            bob.append("INBOX", MESSAGE)
            roots, quotas = bob.get_quota_root("INBOX")
            assert roots.mailbox == "INBOX"
            assert roots.quota_roots == [""]
            assert quotas == [Quota("", "STORAGE", 1, 2048), Quota("", "MESSAGE", 1, 100)]
            with pytest.raises(IMAPClient.Error, match="NOPERM"):
                bob.set_quota([Quota("", "STORAGE", 0, 1)])
            assert alice.set_quota([Quota(BOB, "MESSAGE", 0, 5)]) == [Quota(BOB, "MESSAGE", 1, 5)]
            assert bob.get_quota() == [Quota("", "MESSAGE", 1, 5)]
        finally:
            alice.logout()
            bob.logout()

    await asyncio.to_thread(dialogue)


async def test_metadata(server: tuple[App, int]) -> None:
    _, port = server

    def dialogue() -> None:
        alice = connect(port, ALICE)
        try:
            imap = alice._imap  # imaplib underneath: xatom runs any extension command
            typ, _ = imap.xatom("SETMETADATA", "INBOX", '(/shared/comment "Team inbox")')
            assert typ == "OK"
            typ, _ = imap.xatom("GETMETADATA", '"INBOX"', "/shared/comment")
            assert typ == "OK"
            assert imap.untagged_responses.pop("METADATA") == [
                b'"INBOX" (/shared/comment "Team inbox")'
            ]
            typ, data = imap.xatom("GETMETADATA", "(MAXSIZE 3)", '"INBOX"', "/shared/comment")
            assert typ == "OK"
            assert b"[METADATA LONGENTRIES 10]" in data[0]
        finally:
            alice.logout()

    await asyncio.to_thread(dialogue)
