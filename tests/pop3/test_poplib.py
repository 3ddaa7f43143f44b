"""Python's poplib against the real listeners (plain with STLS, and implicit TLS), run
in a worker thread while the server runs on the test's event loop."""

from __future__ import annotations

import asyncio
import poplib
import socket
import ssl

import pytest

from mailkeep.store.names import INBOX

from .conftest import ADDRESS, PASSWORD, Server, deliver

FIRST = b"From: a@example.org\r\nSubject: first\r\n\r\n.dot line\r\nbody\r\n"
SECOND = b"From: b@example.org\r\nSubject: second\r\n\r\nno final newline"


def insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def inbox_count(server: Server) -> int:
    account = await server.store.get_account(ADDRESS)
    assert account is not None
    mailbox = await server.store.get_mailbox(account.id, INBOX)
    assert mailbox is not None
    return len((await server.store.snapshot(mailbox.id)).uids)


async def test_poplib_session(server: Server) -> None:
    account = await server.store.get_account(ADDRESS)
    assert account is not None
    await deliver(server.store, account, FIRST, SECOND)

    def client() -> None:
        pop = poplib.POP3("127.0.0.1", server.pop3, timeout=10)
        try:
            assert pop.getwelcome() == b"+OK pop.example.org POP3 server ready"
            capa = pop.capa()
            assert {"TOP", "UIDL", "USER", "STLS", "PIPELINING", "RESP-CODES"} <= set(capa)
            assert capa["SASL"] == ["SCRAM-SHA-256", "PLAIN", "LOGIN"]
            pop.stls(insecure())
            assert "STLS" not in pop.capa()
            pop.user(ADDRESS)
            pop.pass_(PASSWORD)
            assert pop.stat() == (2, len(FIRST) + len(SECOND))
            _, listing, _ = pop.list()
            assert listing == [b"1 %d" % len(FIRST), b"2 %d" % len(SECOND)]
            _, lines, _ = pop.retr(1)
            assert b"\r\n".join(lines) + b"\r\n" == FIRST
            _, lines, _ = pop.retr(2)
            assert b"\r\n".join(lines) == SECOND
            _, lines, _ = pop.top(1, 0)
            assert b"\r\n".join(lines) + b"\r\n" == FIRST.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
            _, uidls, _ = pop.uidl()
            assert len({line.split()[1] for line in uidls}) == 2
            pop.dele(1)
            with pytest.raises(poplib.error_proto, match="already deleted"):
                pop.retr(1)
            assert pop.quit().startswith(b"+OK")
        finally:
            pop.close()

    await asyncio.to_thread(client)
    assert await inbox_count(server) == 1


async def test_poplib_implicit_tls_and_apop_refused(server: Server) -> None:
    def client() -> None:
        pop = poplib.POP3_SSL("127.0.0.1", server.pop3s, context=insecure(), timeout=10)
        try:
            assert "STLS" not in pop.capa()
            with pytest.raises(poplib.error_proto):
                pop.apop(ADDRESS, PASSWORD)  # no timestamp in the greeting
            pop.utf8()
            pop.user(ADDRESS)
            pop.pass_(PASSWORD)
            assert pop.stat() == (0, 0)
            assert pop.noop() == b"+OK"
            pop.quit()
        finally:
            pop.close()

    await asyncio.to_thread(client)


async def test_wrong_password_and_refusal_text(server: Server) -> None:
    def client() -> None:
        pop = poplib.POP3("127.0.0.1", server.pop3, timeout=10)
        try:
            pop.user(ADDRESS)
            with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
                pop.pass_("wrong")
            pop.quit()
        finally:
            pop.close()

    await asyncio.to_thread(client)


async def test_pipelined_commands_over_tcp(server: Server) -> None:
    account = await server.store.get_account(ADDRESS)
    assert account is not None
    await deliver(server.store, account, FIRST)

    def client() -> bytes:
        with socket.create_connection(("127.0.0.1", server.pop3), timeout=10) as sock:
            sock.sendall(
                f"USER {ADDRESS}\r\nPASS {PASSWORD}\r\nSTAT\r\nRETR 1\r\nQUIT\r\n".encode()
            )
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
            return received

    received = await asyncio.to_thread(client)
    assert received == (
        b"+OK pop.example.org POP3 server ready\r\n"
        b"+OK Send your password\r\n"
        b"+OK Maildrop locked and ready: 1 messages (%d octets)\r\n"
        b"+OK 1 %d\r\n"
        b"+OK %d octets\r\n"
        % (len(FIRST), len(FIRST), len(FIRST))
        + FIRST.replace(b"\r\n.", b"\r\n..")
        + b".\r\n+OK pop.example.org POP3 server signing off (1 messages left)\r\n"
    )
