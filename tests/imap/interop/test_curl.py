"""curl's IMAP support against the real server: LIST, FETCH, SEARCH, APPEND, STARTTLS
(``--ssl-reqd``) and imaps."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import ADDRESS, PASSWORD, Server, need, run

MESSAGE = b"From: bob@example.org\r\nTo: alice@example.org\r\nSubject: curl\r\n\r\nHi curl.\r\n"

pytestmark = pytest.mark.interop


async def curl(*args: str, stdin: bytes = b"") -> bytes:
    code, out, err = await run(
        need("curl"),
        "--silent",
        "--show-error",
        "--user",
        f"{ADDRESS}:{PASSWORD}",
        *args,
        stdin=stdin,
    )
    assert code == 0, err.decode(errors="replace")
    return out


async def test_list_fetch_search(server: Server) -> None:
    await server.deliver(MESSAGE)
    await server.deliver(MESSAGE.replace(b"curl", b"second"))
    base = f"imap://127.0.0.1:{server.imap}"
    listing = await curl(f"{base}/")
    assert b'* LIST (\\HasNoChildren) "/" INBOX' in listing
    assert b'* LIST (\\HasNoChildren \\Junk) "/" Junk' in listing
    assert await curl(f"{base}/INBOX;UID=1") == MESSAGE
    header = MESSAGE.replace(b"curl", b"second").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    assert await curl(f"{base}/INBOX;UID=2;SECTION=HEADER") == header
    assert await curl(f"{base}/INBOX?SUBJECT%20second") == b"* SEARCH 2\r\n"
    assert await curl(f"{base}/INBOX", "-X", "EXAMINE INBOX") != b""


async def test_append(server: Server, tmp_path: Path) -> None:
    upload = tmp_path / "message.eml"
    upload.write_bytes(MESSAGE)
    await curl(f"imap://127.0.0.1:{server.imap}/Drafts", "--upload-file", str(upload))
    assert await server.uids("Drafts") == [1]


async def test_starttls_required_and_imaps(server: Server) -> None:
    await server.deliver(MESSAGE)
    out = await curl(f"imap://127.0.0.1:{server.imap}/INBOX;UID=1", "--ssl-reqd", "-k")
    assert out == MESSAGE
    out = await curl(f"imaps://127.0.0.1:{server.imaps}/INBOX;UID=1", "--cacert", str(server.cert))
    assert out == MESSAGE
