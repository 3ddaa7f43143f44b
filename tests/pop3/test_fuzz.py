"""Hypothesis: no input, in any chunking, in any state, makes the session raise; every
answer is a well-formed POP3 reply; the store is left consistent (only QUIT deletes)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailkeep.config import Pop3Config
from mailkeep.store.api import Account
from mailkeep.store.sqlstore import SqlStore

from .conftest import ADDRESS, LOOPBACK, PASSWORD, REMOTE, Driver, deliver, new_session

EXAMPLES = 600 if os.environ.get("MAILKEEP_FUZZ") == "long" else 60
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

PLAIN = "AGFsaWNlQGV4YW1wbGUub3JnAGNvcnJlY3QgaG9yc2U="  # \0alice@example.org\0correct horse
COMMANDS = [
    b"CAPA",
    b"STAT",
    b"LIST",
    b"LIST 1",
    b"LIST 0",
    b"UIDL",
    b"UIDL 2",
    b"RETR 1",
    b"RETR 2",
    b"RETR 3",
    b"TOP 1 0",
    b"TOP 2 1",
    b"TOP 3 99999999",
    b"DELE 1",
    b"DELE 2",
    b"NOOP",
    b"RSET",
    b"UTF8",
    b"LANG",
    b"LANG *",
    b"STLS",
    b"AUTH",
    b"AUTH PLAIN",
    b"AUTH LOGIN",
    b"AUTH SCRAM-SHA-256",
    b"AUTH SCRAM-SHA-256 biwsbj1hbGljZUBleGFtcGxlLm9yZyxyPXh5eg==",
    b"*",
    b"=",
    b"USER " + ADDRESS.encode(),
    b"PASS wrong",
    b"APOP x y",
    b"QUIT",
    b"",
    b".",
    b"\xff\xfe\x00",
    b"RETR 99999999999999999999999999",
    b"TOP 1 -1",
]
LOGIN = [f"USER {ADDRESS}".encode(), f"PASS {PASSWORD}".encode(), f"AUTH PLAIN {PLAIN}".encode()]

line = st.one_of(
    st.sampled_from(COMMANDS),
    st.sampled_from(COMMANDS).map(lambda c: c.lower()),
    st.binary(max_size=40),
    st.binary(min_size=200, max_size=400),
)
ending = st.sampled_from([b"\r\n", b"\n", b"\r", b""])


@st.composite
def dialogue(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    parts = []
    if draw(st.booleans()):
        parts += (
            [LOGIN[0] + b"\r\n", LOGIN[1] + b"\r\n"]
            if draw(st.booleans())
            else [LOGIN[2] + b"\r\n"]
        )
    for _ in range(draw(st.integers(0, 25))):
        parts.append(draw(line) + draw(ending))
    data = b"".join(parts)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=10)))
    return data, cuts


def well_formed(output: bytes) -> bool:
    """Output is whole CR LF lines; status lines fit RFC 2449's 512 octets."""
    if not output.endswith(b"\r\n"):
        return False
    status = [line for line in output.split(b"\r\n") if line.startswith((b"+OK", b"-ERR"))]
    return all(len(line) <= 510 for line in status)


@FUZZ
@given(dialogue())
async def test_session_never_raises(
    store: SqlStore, account: Account, case: tuple[bytes, list[int]]
) -> None:
    data, cuts = case
    if not (await store.mailbox_status(await inbox(store, account))).messages:
        await deliver(
            store,
            account,
            b"Subject: one\r\n\r\n.dot\r\n",
            b"Subject: two\r\n\r\nbody\r\nmore\r\n",
            "Subject: dr\u00e9i\r\n\r\nutf-8\r\n".encode(),
        )
    before = (await store.snapshot(await inbox(store, account))).uids
    peer_is_remote = len(data) % 2 == 1
    session = new_session(
        store,
        REMOTE if peer_is_remote else LOOPBACK,
        pop3=Pop3Config(retention="delete-after-retr" if len(cuts) % 2 else "keep"),
        max_line=255,
        max_failures=3,
    )
    driver = Driver(session)
    output = session.greeting()
    quit_sent = False
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
        if driver.closed:
            break
        output += await driver.send(data[start:end])
        quit_sent = quit_sent or b"quit" in data[:end].lower()
    await session.close()
    assert well_formed(output), output
    after = (await store.snapshot(await inbox(store, account))).uids
    if not quit_sent:
        assert after == before


async def inbox(store: SqlStore, account: Account) -> int:
    mailbox = await store.get_mailbox(account.id, "INBOX")
    assert mailbox is not None
    return mailbox.id
