"""Smaller extensions as a client sees them: OBJECTID (RFC 8474), SAVEDATE (RFC 8514),
PREVIEW (RFC 8970), and two wire details (SEARCHRES after a refused CHARSET, RFC 5182;
HEADER.FIELDS echoed as the client spelled it)."""

from __future__ import annotations

import re

from mailkeep.store.api import Account
from mailkeep.store.sqlstore import SqlStore

from .conftest import deliver, message
from .support import Client


async def test_objectid(alice: Client, store: SqlStore, account: Account) -> None:
    await deliver(store, account, message("one", extra="Message-ID: <one@x>\r\n"))
    await deliver(
        store, account, message("Re: one", extra="Message-ID: <two@x>\r\nReferences: <one@x>\r\n")
    )
    created = await alice.command("c CREATE Archive/2024")
    found = re.fullmatch(rb"c OK \[MAILBOXID \((F[0-9a-f]+)\)\] CREATE completed", created[-1])
    assert found is not None
    archive_id = found.group(1)
    status = await alice.ok("s STATUS Archive/2024 (MAILBOXID)")
    assert status == [b"* STATUS Archive/2024 (MAILBOXID (" + archive_id + b"))"]
    # RFC 8474 4.1: RENAME keeps the MAILBOXID.
    await alice.ok("r RENAME Archive/2024 Old")
    status = await alice.ok("s STATUS Old (MAILBOXID)")
    assert status == [b"* STATUS Old (MAILBOXID (" + archive_id + b"))"]
    selected = await alice.ok("a SELECT INBOX")
    assert any(re.fullmatch(rb"\* OK \[MAILBOXID \(F[0-9a-f]+\)\] mailbox ID", x) for x in selected)
    lines = await alice.ok("f FETCH 1:2 (EMAILID THREADID)")
    ids = [re.fullmatch(rb"\* \d FETCH \(EMAILID \((\w+)\) THREADID \((\w+)\)\)", x) for x in lines]
    assert ids[0] is not None
    assert ids[1] is not None
    assert ids[0].group(1) != ids[1].group(1)
    assert ids[0].group(2) == ids[1].group(2)  # the reply is in the same thread
    # RFC 8474 5.1: COPY keeps the EMAILID.
    await alice.ok("k COPY 1 Old")
    await alice.ok("x EXAMINE Old")
    copied = await alice.ok("g FETCH 1 (EMAILID)")
    assert copied == [b"* 1 FETCH (EMAILID (" + ids[0].group(1) + b"))"]
    email_id = ids[0].group(1).decode()
    thread_id = ids[0].group(2).decode()
    await alice.ok("y EXAMINE INBOX")
    assert await alice.ok(f"h SEARCH EMAILID {email_id}") == [b"* SEARCH 1"]
    assert await alice.ok(f"i SEARCH THREADID {thread_id}") == [b"* SEARCH 1 2"]
    assert await alice.ok("j SEARCH EMAILID Mnothing") == [b"* SEARCH"]


async def test_savedate(alice: Client, store: SqlStore, account: Account) -> None:
    await deliver(store, account, message("one"))
    await alice.ok("a SELECT INBOX")
    lines = await alice.ok("f FETCH 1 (SAVEDATE)")
    assert re.fullmatch(
        rb'\* 1 FETCH \(SAVEDATE "\d\d-\w\w\w-\d{4} \d\d:\d\d:\d\d [-+]\d{4}"\)', lines[0]
    )
    assert await alice.ok("s SEARCH SAVEDATESUPPORTED") == [b"* SEARCH 1"]
    assert await alice.ok("t SEARCH SAVEDSINCE 1-Jan-2000") == [b"* SEARCH 1"]
    assert await alice.ok("u SEARCH SAVEDBEFORE 1-Jan-2000") == [b"* SEARCH"]


async def test_preview(alice: Client, store: SqlStore, account: Account) -> None:
    await deliver(store, account, message("one", body="Lunch at noon?\r\n"))
    await deliver(store, account, message("two", body=""))
    await alice.ok("a SELECT INBOX")
    lines = await alice.ok("f FETCH 1:2 (PREVIEW)")
    assert lines == [b'* 1 FETCH (PREVIEW "Lunch at noon?")', b'* 2 FETCH (PREVIEW "")']
    lines = await alice.ok("g FETCH 1 (PREVIEW (LAZY))")
    assert lines == [b'* 1 FETCH (PREVIEW "Lunch at noon?")']


async def test_refused_charset_clears_saved_result_only_with_save(
    alice: Client, store: SqlStore, account: Account
) -> None:
    for n in range(3):
        await deliver(store, account, message(f"m{n}"))
    await alice.ok("a SELECT INBOX")
    await alice.ok("b SEARCH RETURN (SAVE) 2:3")
    refused = await alice.command("c SEARCH CHARSET KOI8-R ALL")
    assert refused[-1].startswith(b"c NO [BADCHARSET")
    assert await alice.ok("d SEARCH $") == [b"* SEARCH 2 3"]  # no SAVE: $ kept
    refused = await alice.command("e SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")
    assert refused[-1].startswith(b"e NO [BADCHARSET")
    assert await alice.ok("f SEARCH $") == [b"* SEARCH"]  # RFC 5182: emptied


async def test_header_fields_keep_the_clients_spelling(
    alice: Client, store: SqlStore, account: Account
) -> None:
    await deliver(store, account, message("one"))
    await alice.ok("a SELECT INBOX")
    lines = await alice.ok("f FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject x-Missing)])")
    assert lines[0].startswith(b"* 1 FETCH (BODY[HEADER.FIELDS (Subject x-Missing)] {")
    assert b"Subject: one" in lines[0]
