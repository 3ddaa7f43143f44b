"""Record Dovecot's answers for every corpus message into ``tests/mail/golden/``.

Run by hand (as root) when the corpus changes: ``.venv/bin/python tests/mail/make_golden.py``.
The test suite only reads the golden files; it never needs Dovecot.

A private Dovecot instance is started under /tmp/golden-dovecot on ports 12143/12110/12024,
with a config generated from the shared benchmark template
(``/work/shared/peers/dovecot/dovecot.conf.in``) so that it never disturbs the benchmark
instance on its fixed ports. It is stopped (by its master PID) when done.

For each message it APPENDs the raw bytes and records ENVELOPE, BODY, BODYSTRUCTURE,
RFC822.SIZE, a fixed list of BODY.PEEK[section] answers and BINARY.SIZE[part] answers.
IMAP answers are stored as latin-1 text (octet for octet); answers longer than 64 KiB are
stored as ``sha256:<hex>:<length>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # run as a script from anywhere

from tests.mail.corpus_gen import GENERATED  # noqa: E402

TEMPLATE = Path("/work/shared/peers/dovecot/dovecot.conf.in")
BASE = Path(os.environ.get("GOLDEN_DOVECOT_BASE", "/tmp/golden-dovecot"))
IMAP_PORT = 12143
PORTS = {b"11143": b"12143", b"11110": b"12110", b"11024": b"12024"}
USER, PASSWORD = "golden", "goldenpass"
MAIL_USER = "benchmail"
BIG = 64 * 1024

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
BINARY_PARTS = ["1", "2", "3", "1.1", "1.2", "2.1", "2.2", "1.2.1", "1.2.2"]


def corpus() -> dict[str, bytes]:
    messages = {p.stem: p.read_bytes() for p in sorted((HERE / "corpus").glob("*.eml"))}
    for name, make in GENERATED.items():
        messages[name] = make()
    return messages


def start_dovecot() -> int:
    if (BASE / "run" / "master.pid").exists():
        sys.exit(f"{BASE} has a master.pid: stop that instance first")
    shutil.rmtree(BASE, ignore_errors=True)
    if subprocess.run(["id", MAIL_USER], capture_output=True).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", MAIL_USER],
            check=True,
        )  # fmt: skip
    account = pwd.getpwnam(MAIL_USER)
    for sub in ("run", "state", "log", "etc", f"mail/{USER}"):
        (BASE / sub).mkdir(parents=True, exist_ok=True)
    shutil.chown(BASE / "mail" / USER, account.pw_uid, account.pw_gid)
    (BASE / "etc" / "users").write_text(
        f"{USER}:{{PLAIN}}{PASSWORD}:{account.pw_uid}:{account.pw_gid}::{BASE}/mail/{USER}::\n"
    )
    conf = TEMPLATE.read_bytes()
    conf = conf.replace(b"@BASE@", str(BASE).encode()).replace(
        b"@MUID@", str(account.pw_uid).encode()
    )
    conf = conf.replace(b"instance_name = bench-dovecot", b"instance_name = golden-dovecot")
    for old, new in PORTS.items():
        conf = conf.replace(b"port = " + old, b"port = " + new)
    (BASE / "etc" / "dovecot.conf").write_bytes(conf)
    subprocess.run(["/usr/sbin/dovecot", "-c", str(BASE / "etc" / "dovecot.conf")], check=True)
    for _ in range(100):
        pidfile = BASE / "run" / "master.pid"
        if pidfile.exists() and pidfile.read_text().strip():
            return int(pidfile.read_text())
        time.sleep(0.1)
    sys.exit("dovecot did not start")


def stop_dovecot(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


class Client:
    """Just enough IMAP to APPEND and FETCH, keeping responses as raw bytes."""

    def __init__(self) -> None:
        for _ in range(50):
            try:
                self.sock = socket.create_connection(("127.0.0.1", IMAP_PORT))
                break
            except ConnectionRefusedError:
                time.sleep(0.1)
        self.file = self.sock.makefile("rb")
        self.file.readline()
        self.tag = 0

    def read_response(self) -> bytes:
        """One response line with its literals, CRLF included."""
        out = b""
        while True:
            line = self.file.readline()
            out += line
            m = re.search(rb"~?\{(\d+)\}\r\n$", line)
            if m is None:
                return out
            out += self.file.read(int(m.group(1)))

    def command(self, text: bytes, literal: bytes | None = None) -> tuple[list[bytes], bytes]:
        self.tag += 1
        tag = b"G%d" % self.tag
        if literal is None:
            self.sock.sendall(tag + b" " + text + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + text + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        untagged: list[bytes] = []
        while True:
            response = self.read_response()
            if response.startswith(tag + b" "):
                return untagged, response
            untagged.append(response)

    def fetch_item(self, seq: int, item: bytes, answer_name: bytes) -> bytes | str:
        untagged, done = self.command(b"FETCH %d (%s)" % (seq, item))
        if done.split(b" ", 2)[1] != b"OK":
            return "ERROR " + done.decode("latin-1").strip()
        prefix = b"* %d FETCH (" % seq
        for response in untagged:
            if response.startswith(prefix):
                rest = response[len(prefix) : -3]
                if rest.startswith(answer_name + b" "):
                    return rest[len(answer_name) + 1 :]
        return "MISSING"


def record(value: bytes | str) -> str:
    if isinstance(value, str):
        return value
    if len(value) > BIG:
        return f"sha256:{hashlib.sha256(value).hexdigest()}:{len(value)}"
    return value.decode("latin-1")


def main() -> None:
    messages = corpus()
    pid = start_dovecot()
    try:
        client = Client()
        client.command(b"LOGIN " + USER.encode() + b" " + PASSWORD.encode())
        client.command(b"SELECT INBOX")
        out = HERE / "golden"
        out.mkdir(exist_ok=True)
        seq = 0
        for name, raw in messages.items():
            path = out / f"{name}.json"
            golden: dict[str, object] = {"dovecot": "2.3"}
            _, done = client.command(b"APPEND INBOX", raw)
            if b" OK " not in done:
                golden["append"] = done.decode("latin-1").strip()
                path.write_text(json.dumps(golden, indent=1) + "\n")
                continue
            seq += 1
            client.command(b"NOOP")
            for item in (b"RFC822.SIZE", b"ENVELOPE", b"BODY", b"BODYSTRUCTURE"):
                golden[item.decode().lower()] = record(client.fetch_item(seq, item, item))
            sections = {}
            for section in SECTIONS:
                answer = client.fetch_item(
                    seq, b"BODY.PEEK[%s]" % section.encode(), b"BODY[%s]" % section.encode()
                )
                sections[section] = record(answer)
            golden["sections"] = sections
            sizes = {}
            for part in BINARY_PARTS:
                item = b"BINARY.SIZE[%s]" % part.encode()
                sizes[part] = record(client.fetch_item(seq, item, item))
            golden["binary_size"] = sizes
            path.write_text(json.dumps(golden, indent=1, ensure_ascii=True) + "\n")
            print(f"{name}: {len(raw)} octets")
        client.command(b"LOGOUT")
    finally:
        stop_dovecot(pid)


if __name__ == "__main__":
    main()
