"""Python's imaplib and IMAPClient against the real server: login, LIST, SELECT, FETCH,
SEARCH, STORE, APPEND to Sent seen by a second connection, MOVE, UIDPLUS, SPECIAL-USE,
IDLE woken by a delivery, STARTTLS and implicit TLS."""

from __future__ import annotations

import asyncio
import imaplib
import ssl

import pytest
from imapclient import IMAPClient  # type: ignore[import-untyped,unused-ignore]

from .conftest import ADDRESS, PASSWORD, Server

MESSAGE = b"From: bob@example.org\r\nTo: alice@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"


def tls_context(server: Server) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(server.cert))
    return context


async def test_imaplib_session(server: Server) -> None:
    await server.deliver(MESSAGE)

    def dialogue() -> None:
        with imaplib.IMAP4("127.0.0.1", server.imap) as imap:
            assert "IMAP4REV1" in imap.capabilities
            imap.login(ADDRESS, PASSWORD)
            status, listing = imap.list()
            assert status == "OK"
            assert b'(\\HasNoChildren \\Sent) "/" Sent' in listing
            assert imap.select("INBOX") == ("OK", [b"1"])
            status, fetched = imap.fetch("1", "(RFC822)")
            assert status == "OK"
            assert isinstance(fetched[0], tuple)
            assert fetched[0][1] == MESSAGE
            assert imap.search(None, "SEEN") == ("OK", [b"1"])
            assert imap.store("1", "+FLAGS", "(\\Flagged)")[0] == "OK"
            assert imap.uid("SEARCH", "FLAGGED")[1] == [b"1"]
            status, appended = imap.append("Sent", "(\\Seen)", None, MESSAGE)
            assert status == "OK"
            assert appended[0] is not None
            assert b"APPENDUID" in appended[0]
            imap.close()
            imap.logout()

    await asyncio.to_thread(dialogue)
    assert len(await server.uids("Sent")) == 1


async def test_imaplib_starttls_and_imaps(server: Server) -> None:
    def dialogue() -> None:
        with imaplib.IMAP4("127.0.0.1", server.imap) as imap:
            assert "STARTTLS" in imap.capabilities
            imap.starttls(tls_context(server))
            assert "STARTTLS" not in imap.capabilities
            imap.login(ADDRESS, PASSWORD)
            assert imap.select("INBOX")[0] == "OK"
        with imaplib.IMAP4_SSL("127.0.0.1", server.imaps, ssl_context=tls_context(server)) as imap:
            imap.login(ADDRESS, PASSWORD)
            assert imap.noop()[0] == "OK"

    await asyncio.to_thread(dialogue)


async def test_imapclient_idle_move_uidplus(server: Server) -> None:
    await server.deliver(MESSAGE)
    ready = asyncio.Event()
    loop = asyncio.get_running_loop()

    def idle_session() -> list[object]:
        client = IMAPClient("127.0.0.1", port=server.imap, ssl=False)
        client.login(ADDRESS, PASSWORD)
        client.select_folder("INBOX")
        client.idle()
        loop.call_soon_threadsafe(ready.set)
        responses = client.idle_check(timeout=10)
        client.idle_done()
        client.logout()
        return list(responses)

    idling = asyncio.create_task(asyncio.to_thread(idle_session))
    await ready.wait()
    await asyncio.sleep(0.2)
    await server.deliver(MESSAGE)
    responses = await asyncio.wait_for(idling, 15)
    assert (2, b"EXISTS") in responses

    def mover() -> None:
        client = IMAPClient("127.0.0.1", port=server.imap, ssl=False)
        client.login(ADDRESS, PASSWORD)
        assert client.has_capability("UIDPLUS")
        assert client.has_capability("MOVE")
        folders = {name: flags for flags, _, name in client.list_folders()}
        assert b"\\Trash" in folders["Trash"]
        assert client.find_special_folder(b"\\Sent") == "Sent"
        client.select_folder("INBOX")
        client.move([1], "Archive")
        assert client.search("ALL") == [2]
        client.create_folder("Projects/2024")
        assert client.folder_exists("Projects/2024")
        status = client.folder_status("Archive", ["MESSAGES", "UIDNEXT"])
        assert status[b"MESSAGES"] == 1
        client.logout()

    await asyncio.to_thread(mover)
    assert await server.uids("Archive") == [1]


async def test_append_to_sent_seen_by_second_connection(server: Server) -> None:
    def second_session() -> int:
        with imaplib.IMAP4("127.0.0.1", server.imap) as watcher:
            watcher.login(ADDRESS, PASSWORD)
            watcher.select("Sent")
            with imaplib.IMAP4("127.0.0.1", server.imap) as writer:
                writer.login(ADDRESS, PASSWORD)
                writer.append("Sent", None, None, MESSAGE)
            watcher.noop()
            exists = watcher.response("EXISTS")[1]
            return int(exists[-1]) if exists and exists[-1] else -1

    assert await asyncio.to_thread(second_session) == 1


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
async def test_authenticate_mechanisms(server: Server, mechanism: str) -> None:
    if mechanism == "SCRAM-SHA-256":
        pytest.importorskip("hashlib")

    def dialogue() -> str:
        with imaplib.IMAP4("127.0.0.1", server.imap) as imap:
            if mechanism == "PLAIN":
                status, _ = imap.authenticate(
                    "PLAIN", lambda _: f"\0{ADDRESS}\0{PASSWORD}".encode()
                )
            else:
                from mailkeep.auth.sasl_client import ScramSha256Client

                scram = ScramSha256Client(ADDRESS, PASSWORD)
                status, _ = imap.authenticate("SCRAM-SHA-256", scram.respond)
            return str(status)

    assert await asyncio.to_thread(dialogue) == "OK"
