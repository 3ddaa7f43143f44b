"""Isolation between accounts: alice can never open, list, search, fetch, copy into or learn
of bob's mailboxes, whatever names she tries, and POP3, SMTP submission and LMTP never
cross accounts either. (mailkeep has no ACL extension yet, so there are no grants: every
other account is out of reach.)

Bob has a mailbox ``Secret`` holding a message with a marker. After alice's attempts,
the marker and bob's mailbox name never appeared in anything sent to alice, bob's
mailboxes and messages are exactly what they were, and anything alice's commands
created is in alice's account.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailkeep.store.api import FetchField
from mailkeep.store.factory import open_store

from .support import (
    PASSWORD,
    ServerProcess,
    greeted,
    imap_command,
    imap_login,
    make_data,
    pop3_login,
    spawn_server,
)

pytestmark = pytest.mark.timeout(180)

ALICE = "alice@example.org"
BOB = "bob@example.org"
MARKER = b"bob-private-7f3e"
SECRET = "Secret"

NAMES: list[bytes] = [
    b'"../bob@example.org/INBOX"',
    b'"../bob@example.org/Secret"',
    b'"bob@example.org/Secret"',
    b'"/bob@example.org/Secret"',
    b'"~bob/Secret"',
    b'"~bob@example.org/Secret"',
    b'"#shared/bob@example.org/Secret"',
    b'"#user/bob/Secret"',
    b'"Other Users/bob@example.org/Secret"',
    b'"Shared/bob/Secret"',
    b'"user.bob.Secret"',
    b'"INBOX/../../bob@example.org/Secret"',
    b'"../../../../etc/passwd"',
    b'"%"',
    b'"*"',
    b'"*/Secret"',
    b'"%/Secret"',
    b'"&AC4ALg-/bob@example.org/Secret"',  # modified UTF-7 of "../"
    b'"&AC8-bob@example.org&AC8-Secret"',  # "/" encoded
    b'"&-/../bob"',
    b'"\\\\bob\\\\Secret"',
    b'"Secret"',  # alice has no Secret: bob's must not answer
    b'"' + b"../" * 2000 + b'bob"',
    b'"' + b"a" * 5000 + b'"',
    b'"\xff\xfe../bob"',
    b'"bob\x00Secret"',
    b"{6}\r\n../bob",
]

COMMANDS: list[bytes] = [
    b"SELECT %s",
    b"EXAMINE %s",
    b"STATUS %s (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)",
    b'LIST "" %s',
    b'LIST "" %s RETURN (STATUS (MESSAGES))',
    b"LIST %s *",
    b'LSUB "" %s',
    b"SUBSCRIBE %s",
    b"DELETE %s",
    b"RENAME %s AliceCopy",
    b"APPEND %s {11}\r\nfrom: alice",
    b"COPY 1 %s",
    b"MOVE 1 %s",
    b"UID COPY 1:* %s",
]


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("isolation") / "data"
    asyncio.run(make_data(data, (ALICE, BOB), top={"domains": ["example.org"]}))
    server = spawn_server(data, ("imap", "pop3", "lmtp", "submission"))
    try:
        asyncio.run(_seed(server))
        yield server
    finally:
        server.stop_now()


async def _seed(server: ServerProcess) -> None:
    bob = await imap_login(server.ports["imap"], BOB)
    await imap_command(bob, "c", f"CREATE {SECRET}".encode())
    raw = b"Subject: " + MARKER + b"\r\n\r\n" + MARKER + b"\r\n"
    for mailbox in (SECRET, "INBOX"):
        reply = await imap_command(bob, "a", f"APPEND {mailbox} {{{len(raw)}+}}\r\n".encode() + raw)
        assert reply[-1].startswith(b"a OK"), reply
    await bob.close()
    alice = await imap_login(server.ports["imap"], ALICE)
    raw = b"Subject: alice's own\r\n\r\nmine\r\n"
    reply = await imap_command(alice, "a", b"APPEND INBOX {%d+}\r\n" % len(raw) + raw)
    assert reply[-1].startswith(b"a OK"), reply
    await alice.close()


async def bobs_state(data: Path) -> dict[str, list[tuple[int, str, int, tuple[str, ...]]]]:
    """Bob's mailboxes and their messages (uid, blob, flags, keywords)."""
    store = await open_store("sqlite:store", data, pool_size=1)
    try:
        account = await store.get_account(BOB)
        assert account is not None
        state = {}
        for mailbox in await store.list_mailboxes(account.id):
            snapshot = await store.snapshot(mailbox.id)
            rows = await store.fetch(
                mailbox.id, list(snapshot.uids), FetchField.BLOB | FetchField.FLAGS
            )
            state[mailbox.name] = [(r.uid, r.blob, r.flags, r.keywords) for r in rows]
        return state
    finally:
        await store.close()


def leaks(text: bytes) -> bool:
    return MARKER in text or b"Secret" in text or b"bob@" in text.replace(b"bob@example.org/", b"")


@pytest.mark.parametrize("command", COMMANDS, ids=[c.split(b" ")[0].decode() for c in COMMANDS])
async def test_imap_names_never_reach_another_account(
    isolated: ServerProcess, command: bytes
) -> None:
    before = await bobs_state(isolated.data)
    alice = await imap_login(isolated.ports["imap"], ALICE)
    try:
        if command.startswith((b"COPY", b"MOVE", b"UID")):
            await imap_command(alice, "s", b"SELECT INBOX")
        for number, name in enumerate(NAMES):
            tag = f"t{number}"
            line = command.replace(b"%s", name)
            replies = await imap_command(alice, tag, line)
            seen = b"".join(replies)
            # Names alice sent may be echoed back in her own namespace (LIST of a
            # folder she created); bob's marker and mailbox never may.
            assert MARKER not in seen, (line, replies)
            if replies[-1].startswith(f"{tag} OK".encode()) and not line.startswith(b"LSUB"):
                # (LSUB lists alice's own subscriptions, which may name anything.)
                assert b"Secret" not in seen or b"Secret" in name, (line, replies)
            if command.startswith(b"MOVE") and replies[-1].startswith(f"{tag} OK".encode()):
                # Moved into one of alice's own folders: put it back for the next name.
                await imap_command(alice, "x", b"UNSELECT")
                await imap_command(alice, "s", b"SELECT INBOX")
        await imap_command(alice, "z", b"LOGOUT")
    finally:
        await alice.close()
    assert await bobs_state(isolated.data) == before


async def test_list_and_namespace_show_only_alices_mailboxes(isolated: ServerProcess) -> None:
    alice = await imap_login(isolated.ports["imap"], ALICE)
    try:
        for line in (
            b'LIST "" *',
            b'LIST "" %',
            b'LIST "/" *',
            b'LIST "~" *',
            b'LIST "#shared" *',
            b"NAMESPACE",
            b'LIST "" * RETURN (STATUS (MESSAGES UNSEEN))',
        ):
            replies = await imap_command(alice, "l", line)
            assert replies[-1].startswith((b"l OK", b"l BAD", b"l NO")), replies
            # Alice's own subscriptions to names that exist nowhere (another test may
            # have made them: subscribing to a nonexistent name is allowed) say nothing.
            seen = b"".join(r for r in replies if b"\\NonExistent" not in r)
            assert b"bob" not in seen.lower(), (line, replies)
            assert b"Secret" not in seen, (line, replies)
        # SEARCH over everything alice can select finds nothing of bob's.
        replies = await imap_command(alice, "s", b"SELECT INBOX")
        replies = await imap_command(alice, "f", b"SEARCH TEXT " + MARKER)
        assert replies[0].strip() == b"* SEARCH", replies
    finally:
        await alice.close()


async def test_imap_login_cannot_borrow_another_identity(isolated: ServerProcess) -> None:
    """SASL PLAIN with bob as authorization identity and alice's credentials is refused
    (no proxy authorisation); LOGIN with bob's name and alice's password too."""
    client = await greeted(isolated.ports["imap"], "imap")
    try:
        plain = base64.b64encode(f"{BOB}\0{ALICE}\0{PASSWORD}".encode())
        replies = await imap_command(client, "a", b"AUTHENTICATE PLAIN " + plain)
        assert replies[-1].startswith(b"a NO"), replies
        replies = await imap_command(client, "b", f'LOGIN {BOB} "{PASSWORD}x"'.encode())
        assert replies[-1].startswith(b"b NO"), replies
    finally:
        await client.close()


async def test_pop3_sees_only_its_own_maildrop(isolated: ServerProcess) -> None:
    client = await pop3_login(isolated.ports["pop3"], ALICE)
    try:
        await client.send(b"STAT\r\n")
        count = int((await client.line()).split()[1])
        for number in range(1, count + 2):
            await client.send(b"RETR %d\r\n" % number)
            status = await client.line()
            if status.startswith(b"+OK"):
                text = b"".join(await client.until(b".\r\n"))
                assert MARKER not in text
            else:
                assert number == count + 1, status
        await client.send(b"QUIT\r\n")
        await client.line()
    finally:
        await client.close()
    client = await greeted(isolated.ports["pop3"], "pop3")
    try:
        plain = base64.b64encode(f"{BOB}\0{ALICE}\0{PASSWORD}".encode())
        await client.send(b"AUTH PLAIN " + plain + b"\r\n")
        assert (await client.line()).startswith(b"-ERR")
    finally:
        await client.close()


async def test_submission_and_lmtp_never_cross_accounts(isolated: ServerProcess) -> None:
    before = await bobs_state(isolated.data)
    client = await greeted(isolated.ports["submission"], "smtp")
    try:
        await client.send(b"EHLO alice.test\r\n")
        await client.until(b"250 ")
        plain = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode())
        await client.send(b"AUTH PLAIN " + plain + b"\r\n")
        assert (await client.line()).startswith(b"235"), "submission login"
        # Alice may not send as bob.
        await client.send(f"MAIL FROM:<{BOB}>\r\n".encode())
        assert (await client.line()).startswith(b"553")
        await client.send(f"MAIL FROM:<{BOB.replace('@', '+x@')}>\r\n".encode())
        assert (await client.line()).startswith(b"553")
    finally:
        await client.close()
    # A +tag that looks like a path is just a tag: the message lands in alice's INBOX.
    lmtp = await greeted(isolated.ports["lmtp"], "lmtp")
    try:
        await lmtp.send(b"LHLO x.test\r\n")
        await lmtp.until(b"250 ")
        await lmtp.send(
            b"MAIL FROM:<x@x.test>\r\nRCPT TO:<alice+../bob@example.org/Secret@example.org>\r\n"
            b"RCPT TO:<alice+..%2fbob@example.org>\r\nDATA\r\n"
        )
        replies = [await lmtp.line() for _ in range(3)]
        if replies[-1].startswith(b"354"):
            await lmtp.send(b"Subject: tagged\r\n\r\ntagged\r\n.\r\n")
            for reply in replies[1:2]:
                if reply.startswith(b"250"):
                    assert (await lmtp.line()).startswith((b"250", b"5", b"4"))
    finally:
        await lmtp.close()
    assert await bobs_state(isolated.data) == before
