"""The mailkeep command as an operator uses it: init, user management, deliver, serve."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailkeep.cli import main
from mailkeep.datadir import DEMO_ADDRESS

MESSAGE = b"From: Alice <alice@example.org>\nSubject: Hello\n\nSee you at noon.\n"


def run(data: Path, *args: str, stdin: bytes | str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--data", str(data), *args], input=stdin)
    return result.exit_code, result.output


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    code, output = run(directory, "init", "--demo", "--hostname", "mail.test")
    assert code == 0, output
    return directory


def test_init_creates_everything_and_is_idempotent(data: Path) -> None:
    assert (data / "mailkeep.toml").read_text().startswith("# mailkeep configuration")
    assert 'hostname = "mail.test"' in (data / "mailkeep.toml").read_text()
    assert (data / "tls" / "cert.pem").exists()
    assert (data / "tls" / "key.pem").stat().st_mode & 0o777 == 0o600
    assert (data / "store" / "mailkeep.sqlite3").exists()
    assert data.stat().st_mode & 0o777 == 0o700
    before = (data / "tls" / "cert.pem").read_bytes()
    code, output = run(data, "init", "--demo")
    assert code == 0
    assert "created" not in output
    assert (data / "tls" / "cert.pem").read_bytes() == before


def test_commands_refuse_an_uninitialised_directory(tmp_path: Path) -> None:
    code, output = run(tmp_path / "none", "user", "list")
    assert code == 1
    assert "not a mailkeep data directory" in output
    assert "mailkeep --data" in output


def test_user_lifecycle(data: Path) -> None:
    code, output = run(
        data,
        "user",
        "add",
        "Bob@Example.COM",
        "--password-stdin",
        "--quota",
        "1M",
        stdin="s3cret\n",
    )
    assert (code, output) == (0, "created bob@example.com\n")
    code, output = run(data, "user", "add", "bob@example.com", "--password-stdin", stdin="x\n")
    assert code == 1
    assert "already exists" in output
    code, output = run(data, "user", "list", "--json")
    rows = {row["address"]: row for row in json.loads(output)}
    assert rows["bob@example.com"]["quota_bytes"] == 1024 * 1024
    assert rows[DEMO_ADDRESS]["quota_bytes"] is None
    assert run(data, "user", "quota", "bob@example.com", "none")[0] == 0
    assert run(data, "user", "passwd", "bob@example.com", "--password-stdin", stdin="new\n")[0] == 0
    code, output = run(data, "user", "list")
    assert "bob@example.com" in output
    assert "ADDRESS" in output.splitlines()[0]
    assert run(data, "user", "del", "bob@example.com", "--yes")[0] == 0
    code, output = run(data, "user", "del", "bob@example.com", "--yes")
    assert code == 1
    assert "no account bob@example.com" in output


def test_empty_password_is_refused(data: Path) -> None:
    code, output = run(data, "user", "add", "c@example.com", "--password-stdin", stdin="\n")
    assert code == 1
    assert "password is empty" in output


def test_bad_quota_is_refused(data: Path) -> None:
    code, output = run(data, "user", "quota", DEMO_ADDRESS, "lots")
    assert code == 1
    assert "not a number" in output


def _deliver(data: Path, *args: str, stdin: bytes = MESSAGE) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "mailkeep", "--data", str(data), "deliver", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_deliver_exit_codes_and_usage(data: Path) -> None:
    assert _deliver(data, "--to", DEMO_ADDRESS, "--from", "alice@example.org").returncode == 0
    assert _deliver(data, "--to", "Demo+lists@localhost").returncode == 0
    unknown = _deliver(data, "--to", "nobody@localhost")
    assert unknown.returncode == 67
    assert b"nobody@localhost" in unknown.stderr
    assert _deliver(data, "--to", DEMO_ADDRESS, stdin=b"").returncode == 65
    big = MESSAGE + b"x" * 2000 + b"\n"
    assert _deliver(data, "--to", DEMO_ADDRESS, stdin=big).returncode == 0
    rows = json.loads(run(data, "user", "list", "--json")[1])
    (demo,) = [r for r in rows if r["address"] == DEMO_ADDRESS]
    assert demo["messages"] == 3
    run(data, "user", "quota", DEMO_ADDRESS, str(demo["used_bytes"] + 10))
    over = _deliver(data, "--to", DEMO_ADDRESS)
    assert over.returncode == 75
    assert b"full" in over.stderr


def test_deliver_keeps_crlf_and_converts_bare_lf(data: Path) -> None:
    import asyncio

    from mailkeep.store.factory import open_store

    assert _deliver(data, "--to", DEMO_ADDRESS, "--mailbox", "Archive").returncode == 0
    crlf = MESSAGE.replace(b"\n", b"\r\n")
    assert _deliver(data, "--to", DEMO_ADDRESS, "--mailbox", "No Such").returncode == 0
    assert _deliver(data, "--to", DEMO_ADDRESS, stdin=crlf).returncode == 0

    async def bodies(name: str) -> list[bytes]:
        from mailkeep.store.api import FetchField

        store = await open_store("sqlite:store", data)
        try:
            account = await store.get_account(DEMO_ADDRESS)
            assert account is not None
            mailbox = await store.get_mailbox(account.id, name)
            assert mailbox is not None
            snapshot = await store.snapshot(mailbox.id)
            rows = await store.fetch(mailbox.id, snapshot.uids, FetchField.BLOB)
            result = []
            for row in rows:
                reader = await store.open_blob(row.blob)
                result.append(await reader.read(0, reader.size))
                await reader.close()
            return result
        finally:
            await store.close()

    (archived,) = asyncio.run(bodies("Archive"))
    assert archived.endswith(crlf)
    assert archived.startswith(b"Return-Path: <>\r\nDelivered-To: demo@localhost\r\nReceived: ")
    inbox = asyncio.run(bodies("INBOX"))
    assert len(inbox) == 2
    assert all(body.endswith(crlf) for body in inbox)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(data: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mailkeep", "--data", str(data), "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


OFF = [
    f"--{name}=off"
    for name in (
        "imap",
        "imaps",
        "pop3",
        "pop3s",
        "smtp",
        "submission",
        "submissions",
        "lmtp",
        "http",
    )
]


def test_serve_prints_listeners_and_stops_on_sigterm(data: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        probe.listen()
        taken = probe.getsockname()[1]
        # A port in use: a clear refusal, not a traceback.
        failing = _serve(data, *OFF, f"--http=127.0.0.1:{taken}")
        _, err = failing.communicate(timeout=60)
        assert failing.returncode == 1
        assert f"cannot listen for http on 127.0.0.1:{taken}" in err
        assert "Traceback" not in err
    port = _free_port()
    server = _serve(data, *OFF, f"--http=127.0.0.1:{port}")
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline() for _ in range(2)]
        assert lines[0].startswith("mailkeep ")
        assert lines[1].split() == ["http", f"127.0.0.1:{port}"]
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "shutting down" in err


def test_serve_refuses_uninitialised_directory(tmp_path: Path) -> None:
    server = _serve(tmp_path / "none", *OFF)
    _, err = server.communicate(timeout=60)
    assert server.returncode == 1
    assert "init" in err
