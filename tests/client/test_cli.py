"""The client commands through click: options, output, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailkeep.client.cli import COMMANDS, accounts, fetch, sync

from .conftest import MailUser
from .syncutil import msg


def accounts_file(tmp_path: Path, user: MailUser, **overrides: str | int) -> Path:
    values: dict[str, str | int] = {
        "server": "127.0.0.1",
        "tls": "none",
        "user": user.name,
        "password_command": f"printf %s {user.password}",
    }
    values.update(overrides)

    def table(name: str, protocol: str, port: int, local: str) -> str:
        merged: dict[str, str | int] = {"protocol": protocol, "port": port}
        merged["local"] = str(tmp_path / local)
        merged.update(values)
        lines = [f"[accounts.{name}]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in merged.items()]
        return "\n".join(lines) + "\n"

    path = tmp_path / "accounts.toml"
    path.write_text(
        table("mail", "imap", user.server.imap_port, "Mail")
        + table("pop", "pop3", user.server.pop3_port, "Pop")
    )
    return path


def test_commands_are_exported() -> None:
    assert {c.name for c in COMMANDS} == {
        "fetch",
        "sync",
        "accounts",
        "migrate",
        "import",
        "export",
    }
    runner = CliRunner()
    result = runner.invoke(sync, ["--help"])
    assert result.exit_code == 0
    assert "Exit codes" in result.output
    assert "--no-qresync" in result.output


def test_fetch_and_sync_with_json(mail_user: MailUser, tmp_path: Path) -> None:
    path = accounts_file(tmp_path, mail_user)
    for n in range(3):
        mail_user.deliver(msg(n))
    runner = CliRunner()
    result = runner.invoke(sync, ["mail", "--accounts", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True
    assert data["new"] == 3
    result = runner.invoke(sync, ["mail", "--accounts", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "mail: 0 new, 0 changed, 0 deleted, 0 B"
    result = runner.invoke(
        fetch, ["pop", "--leave-on-server", "--json"], env={"MAILKEEP_ACCOUNTS": str(path)}
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["new"] == 3
    assert len(list((tmp_path / "Pop" / "new").iterdir())) == 3


def test_accounts_list_and_check(mail_user: MailUser, tmp_path: Path) -> None:
    path = accounts_file(tmp_path, mail_user)
    runner = CliRunner()
    result = runner.invoke(accounts, ["list", "--accounts", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert [a["name"] for a in json.loads(result.output)] == ["mail", "pop"]
    for name in ("mail", "pop"):
        result = runner.invoke(accounts, ["check", name, "--accounts", str(path)])
        assert result.exit_code == 0, result.output
        assert "login OK" in result.output


@pytest.mark.parametrize(
    ("overrides", "args", "code"),
    [
        ({}, ["nosuch"], 3),
        ({"password_command": "false"}, ["mail"], 3),
        ({"password_command": "printf %s wrong"}, ["mail"], 4),
        ({"port": 1}, ["mail"], 6),
        ({}, ["pop"], 3),  # a POP3 account given to sync
    ],
    ids=["unknown-account", "password-command-fails", "bad-password", "refused", "wrong-kind"],
)
def test_exit_codes(
    mail_user: MailUser, tmp_path: Path, overrides: dict[str, str | int], args: list[str], code: int
) -> None:
    path = accounts_file(tmp_path, mail_user, **overrides)
    result = CliRunner().invoke(sync, [*args, "--accounts", str(path), "--json"])
    assert result.exit_code == code, result.output
    assert json.loads(result.output.splitlines()[0])["exit_code"] == code


def test_tls_failure_exit_code(mail_user: MailUser, tmp_path: Path) -> None:
    # Implicit TLS to Dovecot's certificate, which the system trust store does not know.
    path = accounts_file(tmp_path, mail_user, tls="implicit", port=mail_user.server.imaps_port)
    result = CliRunner().invoke(sync, ["mail", "--accounts", str(path)])
    assert result.exit_code == 5, result.output
    # With the test CA it works, over implicit TLS and STARTTLS alike.
    ca = str(mail_user.server.cafile)
    for tls, port in (
        ("implicit", mail_user.server.imaps_port),
        ("starttls", mail_user.server.imap_port),
    ):
        path = accounts_file(tmp_path, mail_user, tls=tls, port=port, cafile=ca)
        result = CliRunner().invoke(sync, ["mail", "--accounts", str(path)])
        assert result.exit_code == 0, result.output


def test_plaintext_to_remote_host_refused(mail_user: MailUser, tmp_path: Path) -> None:
    path = accounts_file(tmp_path, mail_user, server="mail.example.com")
    result = CliRunner().invoke(sync, ["mail", "--accounts", str(path)])
    assert result.exit_code == 3
    assert "loopback" in result.output


def test_clear_password_refused(mail_user: MailUser, tmp_path: Path) -> None:
    path = accounts_file(tmp_path, mail_user, password="secret")
    result = CliRunner().invoke(sync, ["mail", "--accounts", str(path)])
    assert result.exit_code == 3
    assert "password_command" in result.output
