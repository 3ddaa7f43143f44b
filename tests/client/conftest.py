"""A private Dovecot for the client tests: own base directory, own free ports, own users.

The benchmark instance in ``/work/shared/peers/dovecot`` runs on fixed ports and is used by
others, so we generate our own configuration from its template: every path under a fresh
temporary directory, loopback ports chosen by the OS, an ``instance_name`` of our own, TLS
(implicit and STARTTLS) with a trustme certificate. The master process is stopped by its PID
when the session ends. With pytest-xdist each worker starts its own instance.

Each test gets a fresh user (``mail_user``): the passwd-file is appended to, and Dovecot
re-reads it when it changes, so no restart is needed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from mailkeep.client.accounts import Account
from mailkeep.client.connection import TlsMode

TEMPLATE = Path("/work/shared/peers/dovecot/dovecot.conf.in")
MAIL_SYSTEM_USER = "mailkeeptest"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


@dataclass(frozen=True)
class Dovecot:
    base: Path
    imap_port: int
    imaps_port: int
    pop3_port: int
    pop3s_port: int
    lmtp_port: int
    cafile: Path
    pid: int
    uid: int
    gid: int

    def user_home(self, user: str) -> Path:
        return self.base / "mail" / user


@dataclass(frozen=True)
class MailUser:
    server: Dovecot
    name: str
    password: str

    @property
    def address(self) -> str:
        return f"{self.name}@example.com"

    def deliver(self, message: bytes) -> None:
        """Deliver one message over Dovecot's LMTP (RFC 2033)."""
        with smtplib.LMTP("127.0.0.1", self.server.lmtp_port) as lmtp:
            lmtp.sendmail("sender@example.org", [self.address], message)


def _free_port() -> int:
    # A small race (the port could be taken before Dovecot binds it) is accepted: Dovecot
    # cannot report an OS-chosen port back to us.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _mail_ids() -> tuple[int, int]:
    """The uid/gid the mail processes run as: Dovecot refuses uid 0 for mail access."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    try:
        entry = pwd.getpwnam(MAIL_SYSTEM_USER)
    except KeyError:
        command = "useradd --system --no-create-home --home-dir /nonexistent"
        command += " --shell /usr/sbin/nologin"
        subprocess.run([*command.split(), MAIL_SYSTEM_USER], check=True)
        entry = pwd.getpwnam(MAIL_SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _config(base: Path, uid: int, ports: dict[str, int], cert: Path, key: Path) -> str:
    text = TEMPLATE.read_text()
    text = text.replace("@BASE@", str(base)).replace("@MUID@", str(uid))
    text = text.replace("instance_name = bench-dovecot", f"instance_name = mk-{base.name}")
    text = text.replace("ssl = no", f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}")
    for old, new in (
        ("11143", ports["imap"]),
        ("11110", ports["pop3"]),
        ("11024", ports["lmtp"]),
    ):
        text = text.replace(f"port = {old}", f"port = {new}")
    # The template disables the implicit-TLS listeners with "port = 0": give them ours.
    text = re.sub(
        r"(inet_listener imaps \{\n)(\s*)port = 0",
        rf"\1\2address = 127.0.0.1\n\2port = {ports['imaps']}",
        text,
    )
    text = re.sub(
        r"(inet_listener pop3s \{\n)(\s*)port = 0",
        rf"\1\2address = 127.0.0.1\n\2port = {ports['pop3s']}",
        text,
    )
    # Mail processes of a non-root Dovecot run as the invoking user.
    if os.geteuid() != 0:
        text += "\ndefault_internal_user = {0}\ndefault_login_user = {0}\n".format(
            pwd.getpwuid(os.getuid()).pw_name
        )
    return text


def _wait_listening(port: int, deadline: float) -> None:
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    if not Path(DOVECOT).exists() or not Path("/usr/lib/dovecot/pop3").exists():
        pytest.skip("Dovecot is not installed (scripts/test-deps.sh installs it)")
    uid, gid = _mail_ids()
    base = Path(tempfile.mkdtemp(prefix="mk-dovecot-"))
    base.chmod(0o755)
    for sub in ("run", "state", "log", "etc", "mail"):
        (base / sub).mkdir()
    os.chown(base / "mail", uid, gid)
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(base / "etc" / "server.pem"))
    ca.cert_pem.write_to_path(str(base / "etc" / "ca.pem"))
    users = base / "etc" / "users"
    users.write_text(_pool_users(base).replace("@UID@", str(uid)).replace("@GID@", str(gid)))
    users.chmod(0o644)
    ports = {name: _free_port() for name in ("imap", "imaps", "pop3", "pop3s", "lmtp")}
    config = base / "etc" / "dovecot.conf"
    pem = base / "etc" / "server.pem"
    config.write_text(_config(base, uid, ports, pem, pem))
    subprocess.run([DOVECOT, "-c", str(config)], check=True)
    deadline = time.monotonic() + 20
    pid_file = base / "run" / "master.pid"
    while not pid_file.exists() or not pid_file.read_text().strip():
        if time.monotonic() > deadline:
            log = (base / "log" / "dovecot.log").read_text(errors="replace")
            raise RuntimeError(f"Dovecot did not start:\n{log}")
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    try:
        for port in ports.values():
            _wait_listening(port, deadline)
        yield Dovecot(
            base=base,
            imap_port=ports["imap"],
            imaps_port=ports["imaps"],
            pop3_port=ports["pop3"],
            pop3s_port=ports["pop3s"],
            lmtp_port=ports["lmtp"],
            cafile=base / "etc" / "ca.pem",
            pid=pid,
            uid=uid,
            gid=gid,
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)


_user_numbers = itertools.count(1)
USER_POOL = 400
"""Users created with the instance: Dovecot stats its passwd-file at most once a second,
so users appended while it runs may stay unknown for a moment; a pool avoids the wait."""


def _pool_users(base: Path) -> str:
    return "".join(
        f"u{n}:{{PLAIN}}pw-u{n}:@UID@:@GID@::{base / 'mail' / f'u{n}'}::\n"
        for n in range(1, USER_POOL + 1)
    )


@pytest.fixture
def mail_user(dovecot: Dovecot) -> MailUser:
    """A fresh Dovecot user with an empty mailbox (its home is created by Dovecot)."""
    number = next(_user_numbers)
    if number > USER_POOL:
        pytest.fail("the Dovecot user pool is exhausted: raise USER_POOL")
    name = f"u{number}"
    return MailUser(server=dovecot, name=name, password=f"pw-{name}")


@pytest.fixture
def client_tls(dovecot: Dovecot) -> ssl.SSLContext:
    """A client context that trusts the test CA."""
    return ssl.create_default_context(cafile=str(dovecot.cafile))


def account_for(user: MailUser, local: Path, protocol: str = "imap", **extra: object) -> Account:
    """An Account for the test user over plain loopback (allowed for 127.0.0.1)."""
    port = user.server.imap_port if protocol == "imap" else user.server.pop3_port
    values: dict[str, object] = {
        "name": "test",
        "protocol": protocol,
        "server": "127.0.0.1",
        "port": port,
        "tls": TlsMode.NONE,
        "user": user.name,
        "local": local,
        "state": local.with_name(local.name + ".mailkeep.sqlite"),
        "password_command": f"printf %s {user.password}",
        "timeout": 20.0,
    }
    values.update(extra)
    return Account(**values)  # type: ignore[arg-type]
