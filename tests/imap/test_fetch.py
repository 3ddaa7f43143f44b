"""APPEND and FETCH: RFC 9051/3501 examples, every section form against Dovecot's answers
for the MIME corpus of ``tests/mail`` (read-only), BINARY, implicit \\Seen, streaming."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path

import pytest

from mailkeep.imap.handlers.sections import TransferDecoder, transfer_decoder
from mailkeep.mail.message import parse, to_crlf
from mailkeep.mail.structure import (
    decode,
    decode_transfer,
    find_part,
    header_fields,
    section_range,
)
from mailkeep.store.api import Account, BlobReader
from mailkeep.store.sqlstore import SqlStore

from .conftest import deliver, message
from .support import Client, run_transcript

MAIL = Path(__file__).resolve().parent.parent / "mail"
CORPUS = sorted(p.stem for p in (MAIL / "corpus").glob("*.eml"))
SECTIONS = [
    "",
    "HEADER",
    "TEXT",
    "HEADER.FIELDS (FROM SUBJECT CONTENT-TYPE)",
    "HEADER.FIELDS.NOT (RECEIVED FROM)",
    "1",
    "1.MIME",
    "1.HEADER",
    "1.TEXT",
    "2",
    "2.MIME",
    "2.HEADER",
    "2.TEXT",
    "2.HEADER.FIELDS (SUBJECT)",
    "3",
    "3.MIME",
    "4",
    "1.1",
    "1.1.MIME",
    "1.2",
    "1.2.1",
    "1.2.2",
    "1.2.2.MIME",
    "2.1",
    "2.1.MIME",
    "2.2",
    "2.1.1",
    "1.1.1",
    "1.1.1.1",
]
DELIBERATE = {
    # Where the mail layer differs from Dovecot on purpose (see tests/mail/test_golden.py).
    ("nul-bytes", "ENVELOPE"),
    ("rfc822-base64", "BODY"),
    ("rfc822-base64", "BODYSTRUCTURE"),
}


def golden(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((MAIL / "golden" / f"{name}.json").read_text())
    return data


def literal_value(response: bytes, item: bytes) -> bytes:
    """The value of ``item`` in a FETCH response, as sent (``{n}\\r\\n...`` for literals)."""
    start = response.index(item + b" ") + len(item) + 1
    match = re.match(rb"~?\{(\d+)\}\r\n", response[start:])
    if match:
        end = start + match.end() + int(match.group(1))
        return response[start:end]
    if response[start : start + 1] == b"(":
        depth = 0
        for i in range(start, len(response)):
            if response[i : i + 1] == b"(":
                depth += 1
            elif response[i : i + 1] == b")":
                depth -= 1
                if depth == 0:
                    return response[start : i + 1]
    return response[start:].split(b" ", 1)[0].rstrip(b")")


async def test_append_rfc_example(alice: Client, store: SqlStore, account: Account) -> None:
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    body = (
        "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
        "From: Fred Foobar <foobar@Blurdybloop.example>\r\n"
        "Subject: afternoon meeting\r\n"
        "To: mooch@owatagu.siam.edu.example\r\n"
        "Message-Id: <B27397-0100000@Blurdybloop.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
        "\r\n"
        "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
    )
    size = len(body)
    lines = "".join(f"C: {line}\n" for line in body.split("\r\n")[:-1])
    await run_transcript(
        alice,
        f"""
        C: A003 APPEND saved-messages (\\Seen) {{{size}+}}
{lines}        C:
        S: A003 NO [TRYCREATE] mailbox saved-messages does not exist
        C: A004 APPEND INBOX (\\Seen) "17-Jul-1996 02:44:25 -0700" {{{size}}}
        S: + Ready for literal data
{lines}        C:
        S: A004 OK [APPENDUID {{{{v}}}} 1] APPEND completed
        C: A005 SELECT INBOX
        S: * FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)
        S: * 1 EXISTS
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S~ .*
        S: A005 OK [READ-WRITE] SELECT completed
        C: A006 FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE UID)
        S: * 1 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE "17-Jul-1996 02:44:25 -0700" RFC822.SIZE {size} UID 1)
        S: A006 OK FETCH completed
        C: A007 FETCH 1 ENVELOPE
        S: * 1 FETCH (ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800 (PST)" "afternoon meeting" (("Fred Foobar" NIL "foobar" "Blurdybloop.example")) (("Fred Foobar" NIL "foobar" "Blurdybloop.example")) (("Fred Foobar" NIL "foobar" "Blurdybloop.example")) ((NIL NIL "mooch" "owatagu.siam.edu.example")) NIL NIL NIL "<B27397-0100000@Blurdybloop.example>"))
        S: A007 OK FETCH completed
        C: A008 FETCH 1 (BODY BODYSTRUCTURE)
        S: * 1 FETCH (BODY ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 55 1) BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 55 1 NIL NIL NIL NIL))
        S: A008 OK FETCH completed
        """,  # noqa: E501
        {"v": inbox.uidvalidity},
    )


async def test_multiappend_and_literal_plus(
    alice: Client, store: SqlStore, account: Account
) -> None:
    alice.send_raw(
        b"A1 APPEND Drafts (\\Draft $Pending) {12+}\r\nSubject: a\r\n"
        b" {14+}\r\nSubject: bb\r\n\r\n\r\n"
    )
    response = await alice.until("A1")
    drafts = await store.get_mailbox(account.id, "Drafts")
    assert drafts is not None
    assert response == [b"A1 OK [APPENDUID %d 1:2] APPEND completed" % drafts.uidvalidity]
    await alice.ok("s SELECT Drafts")
    assert await alice.ok("f FETCH 1:2 (FLAGS RFC822.SIZE)") == [
        b"* 1 FETCH (FLAGS (\\Draft \\Recent $Pending) RFC822.SIZE 12)",
        b"* 2 FETCH (FLAGS (\\Recent) RFC822.SIZE 14)",
    ]


async def test_append_errors(alice: Client) -> None:
    await run_transcript(
        alice,
        """
        C: a1 APPEND INBOX (\\Recent) {3+}
        C: abc
        S: a1 BAD flag \\Recent cannot be set
        C: a2 APPEND INBOX {0+}
        C:
        S: a2 NO [CANNOT] an empty message cannot be appended
        C: a3 APPEND INBOX {99999999999}
        S: a3 NO [TOOBIG] literal of 99999999999 octets is over the limit of 52428800
        C: a4 APPEND INBOX {3+}
        C: a\x00c
        S: a4 BAD a literal cannot contain NUL; send binary data as ~{n} (RFC 3516)
        C: a5 APPEND INBOX ~{3+}
        C: a\x00c
        S~ a5 OK \\[APPENDUID \\d+ 1\\] APPEND completed
        """,
    )


async def test_append_to_selected_mailbox_reports_exists(alice: Client) -> None:
    await alice.ok("s SELECT INBOX")
    responses = await alice.command("a APPEND INBOX {9+}\r\nSubject:\r\n")
    assert responses[0] == b"* 1 EXISTS"
    assert responses[1] == b"* 1 RECENT"
    assert responses[2].startswith(b"a OK [APPENDUID ")


@pytest.mark.parametrize("name", CORPUS)
async def test_fetch_matches_dovecot(
    name: str, alice: Client, store: SqlStore, account: Account
) -> None:
    recorded = golden(name)
    if "sections" not in recorded:
        pytest.skip("Dovecot refused to store it (empty message)")
    raw = to_crlf((MAIL / "corpus" / f"{name}.eml").read_bytes())
    await deliver(store, account, raw)
    await alice.ok("s EXAMINE INBOX")
    [response] = await alice.ok("f FETCH 1 (RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE)")
    if name != "cr-only":  # Dovecot drops a lone CR at the end; we keep the octets
        assert literal_value(response, b"RFC822.SIZE") == str(recorded["rfc822.size"]).encode()
    for item in ("ENVELOPE", "BODY", "BODYSTRUCTURE"):
        if (name, item) in DELIBERATE:
            continue
        value = literal_value(response, item.encode())
        assert value == str(recorded[item.lower()]).encode("latin-1"), item
    sections = recorded["sections"]
    assert isinstance(sections, dict)
    for section in SECTIONS:
        [response] = await alice.ok(f"f FETCH 1 BODY.PEEK[{section}]")
        value = literal_value(response, b"BODY[%s]" % section.encode())
        expected: str = sections[section]
        if expected.startswith("sha256:"):
            digest = hashlib.sha256(value[value.index(b"\r\n") + 2 :]).hexdigest()
            assert expected.split(":")[1] == digest, section
        elif value != expected.encode("latin-1"):
            # Where the mail layer parts from Dovecot on purpose (tests/mail covers
            # each case), FETCH must give the mail layer's answer.
            assert value == b"{%d}\r\n" % len(mine := mail_layer(raw, section)) + mine, section
    sizes = recorded["binary_size"]
    assert isinstance(sizes, dict)
    root = decode(parse(raw).structure)
    for part, size in sizes.items():
        responses = await alice.command(f"f FETCH 1 BINARY.SIZE[{part}]")
        found = find_part(root, tuple(int(n) for n in part.split(".")))
        if name in BINARY_QUIRKS or found is None or found.children or found.type == "message":
            continue  # Dovecot's sizes of containers and missing parts are artefacts
        if size.startswith("ERROR") and "UNKNOWN-CTE" in size:
            assert responses[-1].startswith(b"f NO [UNKNOWN-CTE]"), part
        else:
            value = literal_value(responses[0], b"BINARY.SIZE[%s]" % part.encode())
            assert value == size.encode(), part


BINARY_QUIRKS = {"alternative", "bad-content-type", "bad-encodings", "mixed-attach"}
"""Messages whose BINARY sizes Dovecot gets wrong (see tests/mail/test_golden.py)."""


def mail_layer(raw: bytes, section: str) -> bytes:
    """BODY[section] as the mail layer defines it (section_range and header_fields)."""
    root = decode(parse(raw).structure)
    spec, _, field_list = section.partition(" (")
    parts = spec.split(".")
    path = tuple(int(p) for p in parts if p.isdigit())
    kind = ".".join(p for p in parts if not p.isdigit())
    fields = kind.startswith("HEADER.FIELDS")
    span = section_range(root, path, "HEADER" if fields else kind)
    if span is None:
        return b""
    data = raw[span[0] : span[1]]
    if fields:
        data = header_fields(data, field_list.rstrip(")").split(), kind.endswith(".NOT"))
    return data.replace(b"\0", b"\x80")  # BODY[] cannot carry NUL


async def test_fetch_rfc_examples(alice: Client, store: SqlStore, account: Account) -> None:
    raw = message("meeting", "Body text.\r\nSecond line.\r\n", extra="X-Extra: yes\r\n")
    await deliver(store, account, raw)
    await deliver(store, account, message("two"))
    header = raw[: raw.index(b"\r\n\r\n") + 4]
    await alice.ok("s SELECT INBOX")
    await run_transcript(
        alice,
        f"""
        C: A654 FETCH 2:1 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])
        S: * 1 FETCH (FLAGS (\\Seen \\Recent) BODY[HEADER.FIELDS (DATE FROM)] {{63}}
        S: From: bob@example.org
        S: Date: Mon, 7 Feb 1994 21:52:25 -0800
        S:
        S: )
        S: * 2 FETCH (FLAGS (\\Seen \\Recent) BODY[HEADER.FIELDS (DATE FROM)] {{63}}
        S: From: bob@example.org
        S: Date: Mon, 7 Feb 1994 21:52:25 -0800
        S:
        S: )
        S: A654 OK FETCH completed
        C: a1 FETCH 1 BODY.PEEK[TEXT]<5.9>
        S: * 1 FETCH (BODY[TEXT]<5> {{9}}
        S: text.
        S: Se)
        S: a1 OK FETCH completed
        C: a2 FETCH 1 (BODY[TEXT]<100.5> RFC822.HEADER)
        S: * 1 FETCH (BODY[TEXT]<100> {{0}}
        S~ \\ RFC822.HEADER \\{{{len(header)}\\}}
        S: From: bob@example.org
        S: To: alice@example.org
        S: Subject: meeting
        S: Date: Mon, 7 Feb 1994 21:52:25 -0800
        S: X-Extra: yes
        S:
        S: )
        S: a2 OK FETCH completed
        C: a3 UID FETCH 2 RFC822.TEXT
        S: * 2 FETCH (UID 2 RFC822.TEXT {{14}}
        S: Hello there.
        S: )
        S: a3 OK UID FETCH completed
        C: a4 FETCH 3 FLAGS
        S: a4 BAD message 3 does not exist (the mailbox has 2)
        C: a5 UID FETCH 3:* FLAGS
        S: * 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))
        S: a5 OK UID FETCH completed
        C: a6 FETCH 1 (UID BODY.PEEK[HEADER.FIELDS.NOT (From To Date X-Extra)] BINARY.SIZE[1])
        S: * 1 FETCH (UID 1 BODY[HEADER.FIELDS.NOT (From To Date X-Extra)] {{20}}
        S: Subject: meeting
        S:
        S:  BINARY.SIZE[1] 26)
        S: a6 OK FETCH completed
        C: a7 FETCH 1 (MODSEQ)
        S~ \\* OK \\[HIGHESTMODSEQ \\d+\\] highest MODSEQ
        S~ \\* 1 FETCH \\(MODSEQ \\(\\d+\\)\\)
        S: a7 OK FETCH completed
        C: a8 FETCH 1 ALL
        S~ \\* 1 FETCH \\(FLAGS \\(\\\\Seen \\\\Recent\\) INTERNALDATE ".*" RFC822.SIZE {len(raw)} ENVELOPE \\(.*\\)\\)
        S: a8 OK FETCH completed
        """.replace("UID FETCH completed", "FETCH completed"),  # noqa: E501
    )


async def test_header_field_name_with_percent(
    alice: Client, store: SqlStore, account: Account
) -> None:
    """The fast path formats each response from a template that echoes the client's
    field names: a "%" in one (a quoted name) stays a "%"."""
    await deliver(store, account, message(extra="X%d: 5%\r\n"))
    await alice.ok("s SELECT INBOX")
    [response] = await alice.ok('f FETCH 1 (UID BODY.PEEK[HEADER.FIELDS ("X%d")])')
    assert response == b'* 1 FETCH (UID 1 BODY[HEADER.FIELDS ("X%d")] {11}\r\nX%d: 5%\r\n\r\n)'


async def test_examine_does_not_set_seen(alice: Client, store: SqlStore, account: Account) -> None:
    await deliver(store, account, message())
    await alice.ok("e EXAMINE INBOX")
    [response] = await alice.ok("f FETCH 1 BODY[]")
    assert b"FLAGS" not in response
    await alice.ok("s SELECT INBOX")
    # The first session to SELECT sees the new message as \\Recent (RFC 3501 2.3.2).
    assert await alice.ok("g FETCH 1 FLAGS") == [b"* 1 FETCH (FLAGS (\\Recent))"]
    [response] = await alice.ok("f FETCH 1 RFC822")
    assert response.endswith(b" FLAGS (\\Seen \\Recent))")
    assert response.startswith(b"* 1 FETCH (RFC822 {")


async def test_binary_fetch(alice: Client, store: SqlStore, account: Account) -> None:
    data = bytes(range(256)) * 3
    import base64

    encoded = base64.encodebytes(data)
    raw = (
        b"From: a@example.com\r\nSubject: bin\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"caf=C3=A9 =\r\nsoft\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + encoded
        + b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nzz\r\n"
        + b"--b--\r\n"
    )
    await deliver(store, account, raw)
    await alice.ok("s SELECT INBOX")
    [text] = await alice.ok("f FETCH 1 BINARY.PEEK[1]")
    assert text == "* 1 FETCH (BINARY[1] {10}\r\ncafé soft)".encode()
    [blob] = await alice.ok("f FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2])")
    assert blob == b"* 1 FETCH (BINARY.SIZE[2] 768 BINARY[2] ~{768}\r\n" + data + b")"
    [part] = await alice.ok("f FETCH 1 BINARY.PEEK[2]<250.10>")
    assert part == b"* 1 FETCH (BINARY[2]<250> ~{10}\r\n" + data[250:260] + b")"
    bad = await alice.command("f FETCH 1 BINARY.PEEK[3]")
    assert bad == [b"f NO [UNKNOWN-CTE] unknown Content-Transfer-Encoding 'x-unknown' in part 3"]
    [whole] = await alice.ok("f FETCH 1 BINARY[]")
    assert whole == b"* 1 FETCH (BINARY[] {%d}\r\n%s FLAGS (\\Seen \\Recent))" % (len(raw), raw)


async def test_large_message_is_streamed(alice: Client, store: SqlStore, account: Account) -> None:
    import base64

    payload = bytes(range(256)) * 8192  # 2 MiB: streamed, and decoded in two passes
    raw = (
        b"From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(payload)
    )
    await deliver(store, account, raw)
    await alice.ok("s EXAMINE INBOX")
    [whole] = await alice.ok("f FETCH 1 BODY.PEEK[]")
    assert whole == b"* 1 FETCH (BODY[] {%d}\r\n%s)" % (len(raw), raw)
    [binary] = await alice.ok("f FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1]<100000.2000000>)")
    tail = payload[100000:2100000]
    assert binary == b"* 1 FETCH (BINARY.SIZE[1] %d BINARY[1]<100000> ~{%d}\r\n%s)" % (
        len(payload),
        len(tail),
        tail,
    )


@pytest.mark.parametrize("remote", [False, True])
async def test_download_reads_small_messages_ahead_in_groups(
    alice: Client,
    store: SqlStore,
    account: Account,
    monkeypatch: pytest.MonkeyPatch,
    remote: bool,
) -> None:
    """A download reads small messages ahead a group at a time (``open_small_blobs``), one
    group ahead, or several where reads are remote; with groups of a few messages, large
    messages among them and one body stored twice, every message still answers with its
    own octets, in order, and is marked seen."""
    from mailkeep.imap.handlers import fetch

    monkeypatch.setattr(fetch, "PRELOAD_OCTETS", 400)
    monkeypatch.setattr(fetch, "REMOTE_PRELOAD_OCTETS", 200)
    monkeypatch.setattr(fetch, "SMALL_BLOB", 4000)
    monkeypatch.setattr(store, "remote_reads", remote)
    groups: list[int] = []
    in_flight = [0, 0]  # now, most
    open_small_blobs = store.open_small_blobs

    async def counted(blobs: list[str]) -> dict[str, BlobReader]:
        groups.append(len(blobs))
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        try:
            await asyncio.sleep(0.01)  # a slow store: the groups ahead are asked for meanwhile
            return await open_small_blobs(blobs)
        finally:
            in_flight[0] -= 1

    monkeypatch.setattr(store, "open_small_blobs", counted)
    raws = [message(f"m{i}", f"body {i}\r\n" * (i * 7 + 1)) for i in range(9)]
    raws[4] = message("large", "z" * 76 + "\r\n" * 4000)  # above SMALL_BLOB: opened itself
    raws[7] = raws[2]  # the same body twice: one blob
    for raw in raws:
        await deliver(store, account, raw)
    await alice.ok("s SELECT INBOX")
    responses = await alice.ok("f FETCH 1:* (BODY[] BODY.PEEK[TEXT]<0.7>)")
    expected = []
    for i, raw in enumerate(raws, start=1):
        text = raw[raw.index(b"\r\n\r\n") + 4 :][:7]
        expected.append(
            b"* %d FETCH (BODY[] {%d}\r\n%s BODY[TEXT]<0> {7}\r\n%s FLAGS (\\Seen \\Recent))"
            % (i, len(raw), raw, text)
        )
    assert responses == expected
    assert len(groups) > (fetch.REMOTE_PRELOAD_DEPTH if remote else 1)
    assert in_flight[1] == (fetch.REMOTE_PRELOAD_DEPTH if remote else 1)


@pytest.mark.parametrize(
    ("items", "whole"),
    [
        ("BODY.PEEK[]", True),
        ("RFC822", True),
        ("BINARY.PEEK[]", True),
        ("BODY.PEEK[TEXT]", True),
        ("(UID BODY.PEEK[1]<0.10> BODY.PEEK[])", True),
        ("BODY.PEEK[]<0.100>", False),
        ("BODY.PEEK[1]", False),
        ("BINARY.SIZE[]", False),
    ],
)
async def test_large_messages_are_read_ahead_only_when_sent_whole(
    alice: Client,
    store: SqlStore,
    account: Account,
    monkeypatch: pytest.MonkeyPatch,
    items: str,
    whole: bool,
) -> None:
    """Messages up to SMALL_BLOB are read ahead for any body item; those up to WHOLE_BLOB
    only where a FETCH sends each message whole (a client fetching a preview of each
    message must not make the store read their attachments); larger ones never."""
    from mailkeep.imap.handlers import fetch

    monkeypatch.setattr(fetch, "SMALL_BLOB", 4000)
    monkeypatch.setattr(fetch, "WHOLE_BLOB", 20_000)
    monkeypatch.setattr(store, "remote_reads", True)
    asked: set[str] = set()
    open_small_blobs = store.open_small_blobs

    async def counted(blobs: list[str]) -> dict[str, BlobReader]:
        asked.update(blobs)
        return await open_small_blobs(blobs)

    monkeypatch.setattr(store, "open_small_blobs", counted)
    small = message("small", "small\r\n")
    large = message("large", "y" * 76 + "\r\n" * 4000)
    huge = message("huge", "z" * 76 + "\r\n" * 12_000)
    for raw in [small, large, huge]:
        await deliver(store, account, raw)
    await alice.ok("s SELECT INBOX")
    await alice.ok(f"f FETCH 1:* {items}")
    read_ahead = [small, large] if whole else [small]
    assert asked == {hashlib.sha256(raw).hexdigest() for raw in read_ahead}


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable", "7bit"])
@pytest.mark.parametrize("size", [1, 3, 7, 64, 1000])
def test_incremental_decoding_matches_whole(encoding: str, size: int) -> None:
    samples = [
        b"SGVsbG8g\r\nd29y\r\nbGQ=\r\n",
        b"SGVsbG8gd29ybGQ",  # no padding
        b"!!SGV sbG8=\r\nAA",
        b"caf=C3=A9 =\r\nsoft line=\r\n=3D=\nend",
        b"plain\r\ntext=",
        bytes(range(256)),
    ]
    for data in samples:
        decoder = transfer_decoder(encoding)
        assert isinstance(decoder, TransferDecoder)
        out = b"".join(decoder.feed(data[i : i + size]) for i in range(0, len(data), size))
        out += decoder.finish()
        assert out == decode_transfer(data, encoding)
