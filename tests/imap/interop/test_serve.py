"""``mailkeep serve`` as a process: the imap and imaps listeners come up on port 0 and
answer a real client; SIGTERM says goodbye to the sessions and stops the server."""

from __future__ import annotations

import asyncio
import imaplib
import os
import re
import signal
import ssl
import sys
from pathlib import Path

from .conftest import ADDRESS, PASSWORD, run


async def mailkeep(data: Path, *args: str, stdin: bytes = b"") -> bytes:
    code, out, err = await run(
        sys.executable, "-m", "mailkeep", "--data", str(data), *args, stdin=stdin
    )
    assert code == 0, (out + err).decode(errors="replace")
    return out


async def test_serve_process(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await mailkeep(data, "init", "--hostname", "localhost")
    await mailkeep(
        data, "user", "add", ADDRESS, "--password-stdin", stdin=PASSWORD.encode() + b"\n"
    )
    off = [
        f"--{name}=off"
        for name in ("pop3", "pop3s", "smtp", "submission", "submissions", "lmtp", "http")
    ]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mailkeep",
        "--data",
        str(data),
        "serve",
        "--imap=127.0.0.1:0",
        "--imaps=127.0.0.1:0",
        *off,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        assert process.stdout is not None
        ports: dict[str, int] = {}
        async with asyncio.timeout(30):
            while len(ports) < 2:
                line = (await process.stdout.readline()).decode()
                assert line, "mailkeep serve exited early"
                found = re.match(r"\s+(imaps?)\s+127\.0\.0\.1:(\d+)", line)
                if found:
                    ports[found.group(1)] = int(found.group(2))
        cert = next(data.rglob("cert.pem"))

        def client() -> tuple[str, str]:
            with imaplib.IMAP4("127.0.0.1", ports["imap"]) as imap:
                imap.login(ADDRESS, PASSWORD)
                plain = imap.select("INBOX")[0]
            context = ssl.create_default_context(cafile=str(cert))
            with imaplib.IMAP4_SSL("127.0.0.1", ports["imaps"], ssl_context=context) as imaps:
                imaps.login(ADDRESS, PASSWORD)
                secure = imaps.select("Sent")[0]
            return plain, secure

        assert await asyncio.to_thread(client) == ("OK", "OK")

        idle = imaplib.IMAP4("127.0.0.1", ports["imap"])
        await asyncio.to_thread(idle.login, ADDRESS, PASSWORD)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
        goodbye = await asyncio.to_thread(idle.readline)
        assert goodbye == b"* BYE server shutting down\r\n"
        idle.shutdown()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
