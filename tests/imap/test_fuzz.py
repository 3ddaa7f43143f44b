"""hypothesis: random command sequences, valid and not, in every state never crash a
session, never produce an internal error, and leave it able to answer."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailkeep.auth.service import Authenticator
from mailkeep.config import AuthConfig, LimitsConfig
from mailkeep.imap.session import Services
from mailkeep.mail.message import parse
from mailkeep.store.api import NewMessage
from mailkeep.store.factory import open_store

from .conftest import ADDRESS, password_hash, scram_keys
from .support import Client

EXAMPLES = 200 if os.environ.get("MAILKEEP_FUZZ") == "long" else 25

MAILBOXES = ["INBOX", "Sent", "new", "a/b", '""', "&Jjo-", '"bad//"', "inbox", "{3+}\r\nabc"]
SETS = ["1", "1:*", "*", "2:3", "$", "1,3,5", "99", "4294967295", "3:1", "0"]
ITEMS = [
    "FLAGS",
    "(UID FLAGS)",
    "BODY.PEEK[]",
    "BODY[1.MIME]",
    "BINARY[2]",
    "BINARY.SIZE[1]",
    "(ENVELOPE BODYSTRUCTURE)",
    "BODY.PEEK[HEADER.FIELDS (From)]<0.10>",
    "RFC822",
    "ALL",
    "FULL",
    "(MODSEQ)",
    "BODY[9.9.9]",
]
CRITERIA = [
    "ALL",
    "UNSEEN",
    "OR SEEN FLAGGED",
    "TEXT hello",
    "RETURN (MIN MAX COUNT SAVE) ALL",
    "RETURN (SAVE) UNSEEN",
    "UID 1:*",
    "NOT 1",
    "$",
    'CHARSET UTF-8 SUBJECT "\u00fc"',
    "YOUNGER 10",
    "CHARSET KOI8-R ALL",
    "((((SEEN))))",
]
FLAGS = ["(\\Seen)", "(\\Deleted \\Flagged)", "($Label)", "(\\Recent)", "()", "\\Answered"]

TEMPLATES = [
    st.just("CAPABILITY"),
    st.just("NOOP"),
    st.just("CHECK"),
    st.just("EXPUNGE"),
    st.just("CLOSE"),
    st.just("UNSELECT"),
    st.just("NAMESPACE"),
    st.just("ID NIL"),
    st.just("ENABLE IMAP4rev2"),
    st.just("ENABLE UTF8=ACCEPT"),
    st.just("STARTTLS"),
    st.just("IDLE\r\nDONE"),
    st.just("IDLE"),
    st.just("LOGIN alice wrong"),
    st.just("AUTHENTICATE PLAIN"),
    st.just('LSUB "" *'),
    st.builds("SELECT {}".format, st.sampled_from(MAILBOXES)),
    st.builds("EXAMINE {}".format, st.sampled_from(MAILBOXES)),
    st.builds("CREATE {}".format, st.sampled_from(MAILBOXES)),
    st.builds("DELETE {}".format, st.sampled_from(MAILBOXES)),
    st.builds("SUBSCRIBE {}".format, st.sampled_from(MAILBOXES)),
    st.builds("RENAME {} {}".format, st.sampled_from(MAILBOXES), st.sampled_from(MAILBOXES)),
    st.builds('LIST "" {}'.format, st.sampled_from(["*", "%", '""', "in%", "a/*"])),
    st.builds('LIST (SUBSCRIBED RECURSIVEMATCH) "" {}'.format, st.sampled_from(["*", "%"])),
    st.builds("STATUS {} (MESSAGES UNSEEN RECENT SIZE)".format, st.sampled_from(MAILBOXES)),
    st.builds(
        "APPEND {} {} {{9+}}\r\nSubject:\r\n".format,
        st.sampled_from(MAILBOXES),
        st.sampled_from(FLAGS),
    ),
    st.builds("FETCH {} {}".format, st.sampled_from(SETS), st.sampled_from(ITEMS)),
    st.builds("UID FETCH {} {}".format, st.sampled_from(SETS), st.sampled_from(ITEMS)),
    st.builds(
        "STORE {} {}FLAGS{} {}".format,
        st.sampled_from(SETS),
        st.sampled_from(["+", "-", ""]),
        st.sampled_from(["", ".SILENT"]),
        st.sampled_from(FLAGS),
    ),
    st.builds("SEARCH {}".format, st.sampled_from(CRITERIA)),
    st.builds("UID SEARCH {}".format, st.sampled_from(CRITERIA)),
    st.builds("COPY {} {}".format, st.sampled_from(SETS), st.sampled_from(MAILBOXES)),
    st.builds("UID MOVE {} {}".format, st.sampled_from(SETS), st.sampled_from(MAILBOXES)),
    st.builds("UID EXPUNGE {}".format, st.sampled_from(SETS)),
]
JUNK = st.binary(max_size=80).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


def lines() -> st.SearchStrategy[list[bytes]]:
    command = st.one_of(*TEMPLATES).map(lambda text: text.encode("utf-8"))
    return st.lists(st.one_of(command, command, command, JUNK), max_size=25)


async def play(state: str, sequence: list[bytes], root: Path) -> bytes:
    store = await open_store("sqlite:store", root, pool_size=2)
    try:
        account = await store.create_account(ADDRESS, password_hash(), scram_keys())
        inbox = await store.get_mailbox(account.id, "INBOX")
        assert inbox is not None
        for n in range(3):
            raw = b"From: a@example.org\r\nSubject: %d\r\n\r\nhello %d\r\n" % (n, n)
            await store.append(inbox.id, [NewMessage(raw, parse(raw))])

        async def no_sleep(delay: float) -> None:
            return None

        auth = Authenticator(store, AuthConfig(max_failures=1000), sleep=no_sleep)
        client = Client(Services(store, auth, LimitsConfig(), "fuzz.example.org"))
        await client.start()
        if state != "not authenticated":
            await client.login()
        if state == "selected":
            await client.ok("s SELECT INBOX")
        for i, line in enumerate(sequence):
            client.send_raw(b"t%d " % i + line + b"\r\n")
        client.send_raw(b"zz NOOP\r\nzz2 LOGOUT\r\n")
        client.close_input()
        assert client.task is not None
        async with asyncio.timeout(30):
            await client.task  # raises if the session crashed
        return bytes(client.transport.output)
    finally:
        await store.close()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    state=st.sampled_from(["not authenticated", "authenticated", "selected"]),
    sequence=lines(),
)
def test_random_commands_never_crash(state: str, sequence: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as root:
        output = asyncio.run(play(state, sequence, Path(root)))
    assert b"SERVERBUG" not in output, output[-2000:]
    assert b"\r\nzz2 OK LOGOUT completed\r\n" in output or b" LOGOUT completed\r\n" in output
