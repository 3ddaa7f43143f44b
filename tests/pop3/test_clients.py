"""Real POP3 clients from Debian's packages (``scripts/test-deps.sh``) against the real
listeners: curl, fetchmail and getmail6. Each runs as a subprocess while the server
runs on the test's event loop."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from mailkeep.store.api import Account
from mailkeep.store.names import INBOX

from .conftest import ADDRESS, PASSWORD, Server, deliver

pytestmark = pytest.mark.interop

MESSAGES = [
    b"From: a@example.org\r\nSubject: one\r\nMessage-ID: <one@example.org>\r\n\r\n"
    b".starts with a dot\r\nfirst body\r\n",
    b"From: b@example.org\r\nSubject: two\r\nMessage-ID: <two@example.org>\r\n\r\nsecond body\r\n",
    b"From: c@example.org\r\nSubject: three\r\nMessage-ID: <three@example.org>\r\n\r\n"
    b"third body\r\n.\r\nafter a lone dot\r\n",
]


def need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed (scripts/test-deps.sh installs it)")
    return path


async def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        async with asyncio.timeout(60):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out, err


async def account(server: Server) -> Account:
    found = await server.store.get_account(ADDRESS)
    assert found is not None
    return found


async def inbox_uids(server: Server) -> list[int]:
    mailbox = await server.store.get_mailbox((await account(server)).id, INBOX)
    assert mailbox is not None
    return list((await server.store.snapshot(mailbox.id)).uids)


# ---------------------------------------------------------------------------- curl


async def curl(*args: str) -> bytes:
    code, out, err = await run(
        need("curl"), "--silent", "--show-error", "-u", f"{ADDRESS}:{PASSWORD}", *args
    )
    assert code == 0, err.decode()
    return out


async def test_curl_list_retr_dele(server: Server) -> None:
    uids = await deliver(server.store, await account(server), *MESSAGES)
    url = f"pop3://127.0.0.1:{server.pop3}/"
    listing = await curl(url)
    assert listing == b"".join(b"%d %d\r\n" % (i, len(m)) for i, m in enumerate(MESSAGES, 1))
    assert await curl(url + "1") == MESSAGES[0]
    assert await curl(url + "3") == MESSAGES[2]
    assert await curl(url + "2", "-X", "DELE", "-I") == b""
    assert await inbox_uids(server) == [uids[0], uids[2]]
    assert (await curl(url, "-X", "UIDL")).count(b"\r\n") == 2


async def test_curl_stls_and_pop3s(server: Server) -> None:
    await deliver(server.store, await account(server), MESSAGES[1])
    stls = f"pop3://127.0.0.1:{server.pop3}/1"
    assert await curl("--ssl-reqd", "-k", stls) == MESSAGES[1]
    implicit = f"pop3s://127.0.0.1:{server.pop3s}/1"
    assert await curl("-k", implicit) == MESSAGES[1]
    # With -I, curl reads a single-line answer to a custom command.
    assert await curl("-k", f"pop3s://127.0.0.1:{server.pop3s}/", "-X", "STAT", "-I") == b""


async def test_curl_each_sasl_mechanism(server: Server) -> None:
    await deliver(server.store, await account(server), MESSAGES[0])
    url = f"pop3://127.0.0.1:{server.pop3}/1"
    for mechanism in ["PLAIN", "LOGIN"]:  # Debian's curl has no SCRAM (no libgsasl)
        options = ("--login-options", f"AUTH={mechanism}")
        assert await curl("--ssl-reqd", "-k", *options, url) == MESSAGES[0], mechanism


# ---------------------------------------------------------------------------- fetchmail


def fetchmail_files(
    tmp_path: Path, server: Server, server_options: str, user_options: str
) -> tuple[Path, Path]:
    """An rc file and an MDA that stores each message in ``out/``. The self-signed
    certificate is accepted (``no sslcertck``): fetchmail uses STLS when offered."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    mda = tmp_path / "mda.sh"
    mda.write_text(f'#!/bin/sh\ncat > "$(mktemp {out}/msg.XXXXXX)"\n')
    mda.chmod(0o755)
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        f"set no syslog\n"
        f"poll 127.0.0.1 protocol pop3 service {server.pop3} {server_options}\n"
        f'  user "{ADDRESS}" password "{PASSWORD}" is "nobody" here\n'
        f'  mda "{mda}" no sslcertck {user_options}\n'
    )
    rc.chmod(0o600)
    return rc, out


async def fetchmail(tmp_path: Path, rc: Path, *args: str) -> tuple[int, str]:
    code, out, err = await run(
        need("fetchmail"),
        "-f",
        str(rc),
        "-i",
        str(tmp_path / "fetchids"),
        "--pidfile",
        str(tmp_path / "fetchmail.pid"),
        "-N",
        "-v",
        *args,
        env={"HOME": str(tmp_path), "FETCHMAILHOME": str(tmp_path)},
    )
    return code, (out + err).decode("utf-8", "replace")


def delivered(out: Path) -> list[bytes]:
    return sorted(path.read_bytes() for path in out.iterdir())


def bodies(messages: list[bytes]) -> list[bytes]:
    return sorted(m.partition(b"\r\n\r\n")[2].replace(b"\r\n", b"\n") for m in messages)


async def test_fetchmail_keep_with_uidl(server: Server, tmp_path: Path) -> None:
    """``--keep --uidl``: everything once, then nothing new, then only the new mail."""
    await deliver(server.store, await account(server), *MESSAGES[:2])
    rc, out = fetchmail_files(tmp_path, server, "uidl", "keep")
    code, log = await fetchmail(tmp_path, rc)
    assert code == 0, log
    assert "upgrade to TLS succeeded" in log
    got = delivered(out)
    assert bodies_of(got) == bodies(MESSAGES[:2])
    code, log = await fetchmail(tmp_path, rc)
    assert code == 1, log  # 1: no new mail
    await deliver(server.store, await account(server), MESSAGES[2])
    code, log = await fetchmail(tmp_path, rc)
    assert code == 0, log
    assert len(delivered(out)) == 3
    assert len(await inbox_uids(server)) == 3


def bodies_of(files: list[bytes]) -> list[bytes]:
    """The bodies of what a client delivered (its own trace headers left aside), with
    LF line ends, sorted."""
    return sorted(data.replace(b"\r\n", b"\n").partition(b"\n\n")[2] for data in files)


async def test_fetchmail_deletes_without_keep(server: Server, tmp_path: Path) -> None:
    await deliver(server.store, await account(server), *MESSAGES)
    rc, out = fetchmail_files(tmp_path, server, "", "nokeep")
    code, log = await fetchmail(tmp_path, rc)
    assert code == 0, log
    assert len(delivered(out)) == 3
    assert bodies_of(delivered(out)) == bodies(MESSAGES)
    assert await inbox_uids(server) == []


# ---------------------------------------------------------------------------- getmail6


def getmail_rc(tmp_path: Path, server: Server, *, delete: bool) -> tuple[Path, Path]:
    """A getmail rc file delivering to ``out/`` through an external MDA (getmail's
    Maildir delivery refuses to run as root, as tests may)."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    mda = tmp_path / "mda.sh"
    mda.write_text(f'#!/bin/sh\ncat > "$(mktemp {out}/msg.XXXXXX)"\n')
    mda.chmod(0o755)
    rc = tmp_path / "getmailrc"
    rc.write_text(
        "[retriever]\n"
        "type = SimplePOP3Retriever\n"
        "server = 127.0.0.1\n"
        f"port = {server.pop3}\n"
        f"username = {ADDRESS}\n"
        f"password = {PASSWORD}\n"
        "[destination]\n"
        "type = MDA_external\n"
        f"path = {mda}\n"
        "allow_root_commands = true\n"
        "[options]\n"
        "verbose = 2\n"
        "read_all = false\n"
        f"delete = {'true' if delete else 'false'}\n"
    )
    return rc, out


async def getmail(tmp_path: Path, rc: Path) -> str:
    state = tmp_path / "getmail-state"
    state.mkdir(exist_ok=True)
    code, out, err = await run(
        need("getmail"), f"--rcfile={rc}", f"--getmaildir={state}", env={"HOME": str(tmp_path)}
    )
    log = (out + err).decode("utf-8", "replace")
    assert code == 0, log
    return log


async def test_getmail_leave_then_delete(server: Server, tmp_path: Path) -> None:
    uids = await deliver(server.store, await account(server), *MESSAGES[:2])
    rc, out = getmail_rc(tmp_path, server, delete=False)
    await getmail(tmp_path, rc)
    assert len(delivered(out)) == 2
    assert await inbox_uids(server) == uids
    await getmail(tmp_path, rc)  # the UIDLs are known: nothing new
    assert len(delivered(out)) == 2
    await deliver(server.store, await account(server), MESSAGES[2])
    await getmail(tmp_path, rc)
    assert len(delivered(out)) == 3
    rc, _ = getmail_rc(tmp_path, server, delete=True)
    await getmail(tmp_path, rc)  # nothing new to fetch, but what it has seen is deleted
    assert await inbox_uids(server) == []
    stored = delivered(out)
    assert bodies_of(stored) == bodies(MESSAGES)
