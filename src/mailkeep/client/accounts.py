"""Accounts of the client tools: a TOML file, ``~/.config/mailkeep/accounts.toml`` unless
``--accounts FILE`` or ``$MAILKEEP_ACCOUNTS`` names another.

Example (every key but ``server``, ``user`` and ``local`` has a default)::

    [accounts.work]                 # used as: mailkeep sync work
    protocol = "imap"               # "imap" (mailkeep sync) or "pop3" (mailkeep fetch)
    server = "mail.example.com"
    port = 993                      # default: 993/995 implicit TLS, 143/110 otherwise
    tls = "implicit"                # "implicit" (default), "starttls", or "none"
                                    # ("none" only for loopback addresses)
    cafile = "/etc/ssl/my-ca.pem"   # extra trust anchor (optional)
    user = "me@example.com"
    password_command = "pass show mail/work"   # its first output line is the password
    # keyring = true                # optional: the password from the system keyring
                                    # (service "mailkeep", user "USER@SERVER"); needs the
                                    # 'keyring' Python package, which is not a dependency
    auth = "auto"                   # "auto" (SCRAM-SHA-256, else PLAIN, else LOGIN),
                                    # a SASL mechanism name, or "login" (IMAP LOGIN/POP3 USER)
    local = "~/Mail/work"           # the Maildir root (INBOX), folders as Maildir++
    state = "~/Mail/work.mailkeep.sqlite"      # default: beside the Maildir, like this
    folders = ["*"]                 # IMAP: fnmatch patterns of folders to sync
    policy = "delete"               # POP3 default policy: "delete" (after download),
                                    # "leave", "days:N", "trashed", or a list of these

Passwords are never written by mailkeep: a ``password_command``, the keyring, or a prompt
on the terminal. A ``password`` key in clear is refused.
"""

from __future__ import annotations

import os
import shlex
import ssl
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from mailkeep.client.connection import Endpoint, TlsMode, client_context, is_loopback
from mailkeep.client.errors import ClientConfigError

DEFAULT_PATH = Path("~/.config/mailkeep/accounts.toml")
ENV_VAR = "MAILKEEP_ACCOUNTS"
_DEFAULT_PORTS = {
    ("imap", TlsMode.IMPLICIT): 993,
    ("imap", TlsMode.STARTTLS): 143,
    ("imap", TlsMode.NONE): 143,
    ("pop3", TlsMode.IMPLICIT): 995,
    ("pop3", TlsMode.STARTTLS): 110,
    ("pop3", TlsMode.NONE): 110,
}
_KEYS = {
    "protocol",
    "server",
    "port",
    "tls",
    "cafile",
    "verify",
    "user",
    "password_command",
    "keyring",
    "auth",
    "local",
    "state",
    "folders",
    "policy",
    "timeout",
}


@dataclass(frozen=True)
class Account:
    name: str
    protocol: str
    server: str
    port: int
    tls: TlsMode
    user: str
    local: Path
    state: Path
    password_command: str | None = None
    keyring: bool = False
    auth: str = "auto"
    cafile: str | None = None
    verify: bool = True
    folders: tuple[str, ...] = ("*",)
    policy: tuple[str, ...] = ("delete",)
    timeout: float = 60.0
    extra: dict[str, Any] = field(default_factory=dict)

    def endpoint(self) -> Endpoint:
        context: ssl.SSLContext | None = None
        if self.tls is not TlsMode.NONE:
            context = client_context(verify=self.verify, cafile=self.cafile)
        return Endpoint(self.server, self.port, self.tls, context, self.timeout)

    def password(self) -> str:
        """The password: command, then keyring, then a prompt on a terminal."""
        if self.password_command:
            return _run_password_command(self.name, self.password_command)
        if self.keyring:
            return _from_keyring(self)
        if sys.stdin.isatty():
            prompt = f"Password for {self.user} at {self.server}"
            value: str = click.prompt(prompt, hide_input=True, err=True)
            return value
        raise ClientConfigError(
            f"account {self.name}: no password_command or keyring, and no terminal to ask on"
        )


def accounts_path(option: str | None) -> Path:
    if option:
        return Path(option).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return DEFAULT_PATH.expanduser()


def load_accounts(path: Path) -> dict[str, Account]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClientConfigError(f"accounts file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ClientConfigError(f"{path}: {exc}") from None
    table = raw.get("accounts", {})
    if not isinstance(table, dict):
        raise ClientConfigError(f"{path}: [accounts] must be a table")
    unknown_top = set(raw) - {"accounts"}
    if unknown_top:
        raise ClientConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown_top))}")
    return {name: _account(name, value, path) for name, value in table.items()}


def load_account(path: Path, name: str) -> Account:
    accounts = load_accounts(path)
    if name not in accounts:
        known = ", ".join(sorted(accounts)) or "none"
        raise ClientConfigError(f"no account {name!r} in {path} (accounts: {known})")
    return accounts[name]


def _account(name: str, raw: Any, path: Path) -> Account:
    where = f"{path} [accounts.{name}]"
    if not isinstance(raw, dict):
        raise ClientConfigError(f"{where} must be a table")
    if "password" in raw:
        raise ClientConfigError(
            f"{where}: a password in clear is not supported; use password_command "
            "(e.g. 'pass show ...') or keyring = true"
        )
    unknown = set(raw) - _KEYS
    if unknown:
        raise ClientConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for required in ("server", "user", "local"):
        if not isinstance(raw.get(required), str) or not raw[required]:
            raise ClientConfigError(f"{where}: '{required}' (a string) is required")
    protocol = str(raw.get("protocol", "imap")).lower()
    if protocol not in {"imap", "pop3"}:
        raise ClientConfigError(f"{where}: protocol must be 'imap' or 'pop3'")
    try:
        tls = TlsMode(str(raw.get("tls", "implicit")).lower())
    except ValueError:
        raise ClientConfigError(f"{where}: tls must be implicit, starttls or none") from None
    server = raw["server"]
    if tls is TlsMode.NONE and not is_loopback(server):
        raise ClientConfigError(f"{where}: tls = 'none' is only allowed for loopback servers")
    port = raw.get("port", _DEFAULT_PORTS[(protocol, tls)])
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ClientConfigError(f"{where}: port must be a number 1-65535")
    local = Path(raw["local"]).expanduser()
    if not local.is_absolute():
        local = (path.parent / local).resolve()
    state = (
        Path(raw["state"]).expanduser()
        if "state" in raw
        else local.with_name(local.name + ".mailkeep.sqlite")
    )
    folders = raw.get("folders", ["*"])
    policy = raw.get("policy", ["delete"])
    if isinstance(policy, str):
        policy = [policy]
    if not _string_list(folders) or not _string_list(policy):
        raise ClientConfigError(f"{where}: folders and policy must be lists of strings")
    return Account(
        name=name,
        protocol=protocol,
        server=server,
        port=port,
        tls=tls,
        user=raw["user"],
        local=local,
        state=state,
        password_command=raw.get("password_command"),
        keyring=bool(raw.get("keyring", False)),
        auth=str(raw.get("auth", "auto")),
        cafile=raw.get("cafile"),
        verify=bool(raw.get("verify", True)),
        folders=tuple(folders),
        policy=tuple(policy),
        timeout=float(raw.get("timeout", 60)),
    )


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _run_password_command(name: str, command: str) -> str:
    try:
        result = subprocess.run(
            command if _shell_needed(command) else shlex.split(command),
            shell=_shell_needed(command),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ClientConfigError(f"account {name}: password_command failed: {exc}") from exc
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()[-1:] or [f"exit {result.returncode}"]
        raise ClientConfigError(f"account {name}: password_command failed: {detail[0]}")
    lines = result.stdout.splitlines()
    if not lines or not lines[0]:
        raise ClientConfigError(f"account {name}: password_command printed nothing")
    return lines[0]


def _shell_needed(command: str) -> bool:
    return any(c in command for c in "|&;<>$`*?~")


def _from_keyring(account: Account) -> str:
    try:
        import keyring  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ClientConfigError(
            f"account {account.name}: keyring = true needs the optional 'keyring' package "
            "(pip install keyring), or use password_command"
        ) from None
    value = keyring.get_password("mailkeep", f"{account.user}@{account.server}")
    if not value:
        raise ClientConfigError(
            f"account {account.name}: no keyring entry for service 'mailkeep', "
            f"user '{account.user}@{account.server}'"
        )
    return str(value)
