"""Two ``mailkeep serve`` processes on one PostgreSQL database: two nodes, as behind a
TCP load balancer. A client in IDLE on one node hears what was delivered, flagged or
expunged through the other within a second; the POP3 maildrop lock holds across them."""

from __future__ import annotations

import os
import poplib
import re
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from .conftest import _blocking, _empty

pytestmark = pytest.mark.slow

MAILKEEP = [sys.executable, "-m", "mailkeep"]
PASSWORD = "correct horse"
OFF = ["imaps", "pop3s", "smtp", "submission", "submissions", "http"]


def _cli(data: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [*MAILKEEP, "--data", str(data), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


class Node:
    """One ``mailkeep serve`` process with its own data directory."""

    def __init__(self, data: Path, url: str) -> None:
        self.data = data
        _cli(data, "init", "--hostname", "localhost")
        config = data / "mailkeep.toml"
        text = config.read_text()
        assert '# url = "sqlite:store"' in text
        config.write_text(text.replace('# url = "sqlite:store"', f'url = "{url}"', 1))
        listeners = [f"--{name}=off" for name in OFF]
        listeners += [f"--{name}=127.0.0.1:0" for name in ("imap", "pop3", "lmtp")]
        self.process = subprocess.Popen(
            [*MAILKEEP, "--data", str(data), "serve", *listeners],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.ports: dict[str, int] = {}
        assert self.process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if match := re.match(r"\s+(\w+)\s+127\.0\.0\.1:(\d+)", line):
                self.ports[match.group(1)] = int(match.group(2))
            if line.startswith("Stop with"):
                return
        self.stop()
        pytest.fail(f"mailkeep serve did not start; it said: {line!r}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def imap(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.ports["imap"], ssl=False, timeout=10)
        client.login("alice@example.org", PASSWORD)
        return client


@pytest.fixture
def nodes(postgresql_url: str, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    _blocking(_empty(postgresql_url))
    started: list[Node] = []
    try:
        for name in ("a", "b"):
            started.append(Node(tmp_path / name, postgresql_url))
        _cli(
            started[0].data, "user", "add", "alice@example.org", "--password-stdin", stdin=PASSWORD
        )
        yield started[0], started[1]
    finally:
        for node in started:
            node.stop()


def _idle_until(client: IMAPClient, wanted: bytes, timeout: float = 1.0) -> list[Any]:
    """IDLE responses until one of kind ``wanted`` arrives; fails after ``timeout``."""
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        seen += client.idle_check(timeout=remaining)
        if any(len(r) > 1 and r[1] == wanted for r in seen):
            return seen
    pytest.fail(f"no {wanted!r} within {timeout}s in IDLE; got {seen}")


def test_idle_on_one_node_hears_the_other(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    watcher = b.imap()
    actor = a.imap()
    try:
        watcher.select_folder("INBOX")
        actor.select_folder("INBOX")
        watcher.idle()
        with smtplib.LMTP("127.0.0.1", a.ports["lmtp"]) as lmtp:
            lmtp.sendmail(
                "carol@example.com",
                ["alice@example.org"],
                b"From: carol@example.com\r\nSubject: via node A\r\n\r\nHello from A.\r\n",
            )
        assert (1, b"EXISTS") in _idle_until(watcher, b"EXISTS")
        actor.noop()
        actor.add_flags([1], [b"\\Flagged"])
        fetched = _idle_until(watcher, b"FETCH")
        assert any(b"\\Flagged" in repr(r).encode() for r in fetched)
        actor.add_flags([1], [b"\\Deleted"])
        actor.expunge()
        assert (1, b"EXPUNGE") in _idle_until(watcher, b"EXPUNGE")
        watcher.idle_done()
        assert watcher.search("ALL") == []
    finally:
        for client in (watcher, actor):
            try:
                client.logout()
            except Exception:
                pass


def test_pop3_maildrop_lock_holds_across_nodes(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    first = poplib.POP3("127.0.0.1", a.ports["pop3"], timeout=10)
    try:
        first.user("alice@example.org")
        first.pass_(PASSWORD)
        second = poplib.POP3("127.0.0.1", b.ports["pop3"], timeout=10)
        try:
            second.user("alice@example.org")
            with pytest.raises(poplib.error_proto, match="IN-USE"):
                second.pass_(PASSWORD)
        finally:
            second.close()
    finally:
        first.quit()
    later = poplib.POP3("127.0.0.1", b.ports["pop3"], timeout=10)
    try:
        later.user("alice@example.org")
        later.pass_(PASSWORD)
        assert later.stat() == (0, 0)
    finally:
        later.quit()
