"""Table-driven tests of the SMTP command parser and reply encoding (RFC 5321 4.1)."""

from __future__ import annotations

import pytest

from mailkeep.smtp.commands import (
    Auth,
    Bdat,
    Body,
    Command,
    CommandError,
    Data,
    Ehlo,
    Helo,
    Help,
    Lhlo,
    Mail,
    MailParams,
    Noop,
    Quit,
    Rcpt,
    Reply,
    Rset,
    StartTls,
    Vrfy,
    parse_command,
)
from mailkeep.smtp.server import refusal

VALID: list[tuple[bytes, Command]] = [
    (b"HELO client.example", Helo("client.example")),
    (b"ehlo [192.0.2.1]", Ehlo("[192.0.2.1]")),
    (b"LHLO mta", Lhlo("mta")),
    (b"MAIL FROM:<>", Mail("", MailParams())),
    (b"MAIL FROM:<a@b.example>", Mail("a@b.example")),
    (b"mail from:<a@b.example>   ", Mail("a@b.example")),
    (b"MAIL FROM: <a@b.example>", Mail("a@b.example")),
    (b"MAIL FROM:a@b.example SIZE=10", Mail("a@b.example", MailParams(size=10))),
    (
        b"MAIL FROM:<a@b.example> size=1 body=8bitmime SMTPUTF8 AUTH=<>",
        Mail("a@b.example", MailParams(1, Body.EIGHT_BIT_MIME, True, "<>")),
    ),
    (b'MAIL FROM:<"john doe"@b.example>', Mail('"john doe"@b.example')),
    (b"MAIL FROM:<a@[192.0.2.1]>", Mail("a@[192.0.2.1]")),
    (
        "MAIL FROM:<jösé@bü.example> SMTPUTF8".encode(),
        Mail("jösé@bü.example", MailParams(smtputf8=True)),
    ),
    (b"RCPT TO:<x@mx.example>", Rcpt("x@mx.example")),
    (b"RCPT TO:<@a.example,@b.example:x@mx.example>", Rcpt("x@mx.example")),
    (b"RCPT TO:<postmaster>", Rcpt("postmaster")),
    (b"DATA", Data()),
    (b"BDAT 0 LAST", Bdat(0, True)),
    (b"BDAT 1000", Bdat(1000, False)),
    (b"RSET", Rset()),
    (b"NOOP anything", Noop()),
    (b"QUIT", Quit()),
    (b"VRFY alice", Vrfy("alice")),
    (b"HELP", Help("")),
    (b"STARTTLS", StartTls()),
    (b"AUTH plain", Auth("PLAIN", None)),
    (b"AUTH PLAIN =", Auth("PLAIN", "=")),
    (b"AUTH SCRAM-SHA-256 biwsbj11c2VyLHI9eHl6", Auth("SCRAM-SHA-256", "biwsbj11c2VyLHI9eHl6")),
]


@pytest.mark.parametrize(("line", "command"), VALID, ids=[v[0].decode() for v in VALID])
def test_valid_commands(line: bytes, command: Command) -> None:
    assert parse_command(line) == command


INVALID: list[tuple[bytes, str]] = [
    (b"", "500 5.5.2"),
    (b"FROB", "500 5.5.2"),
    (b"EXPN list", "502 5.5.1"),
    (b"HELO", "501 5.5.4"),
    (b"MAIL <a@b.example>", "501 5.5.4"),
    (b"MAIL FROM:<a@b.example>SIZE=1", "501 5.5.4"),
    (b"MAIL FROM:<a b@c.example>", "501 5.1.3"),
    (b"MAIL FROM:<a@b..example>", "501 5.1.3"),
    (b"MAIL FROM:<a@-b.example>", "501 5.1.3"),
    (b"MAIL FROM:<" + b"a" * 65 + b"@b.example>", "501 5.1.3"),
    (b"MAIL FROM:<a@" + b"b" * 260 + b">", "501 5.1.3"),
    (b"MAIL FROM:<a@b.example> SIZE=", "501 5.5.4"),
    (b"MAIL FROM:<a@b.example> SIZE=" + b"9" * 40, "501 5.5.4"),
    (b"MAIL FROM:<a@b.example> SMTPUTF8=yes", "501 5.5.4"),
    (b"MAIL FROM:<a@b.example> RET=FULL", "555 5.5.4"),
    (b"RCPT TO:<>", "501 5.1.3"),
    (b"RCPT TO:<x@y.example> ORCPT=rfc822;x@y.example", "555 5.5.4"),
    (b"BDAT", "501 5.5.4"),
    (b"BDAT -1", "501 5.5.4"),
    (b"BDAT 1 FIRST", "501 5.5.4"),
    (b"BDAT " + b"1" * 19, "501 5.5.4"),
    (b"AUTH", "501 5.5.4"),
    (b"AUTH PLAIN a b", "501 5.5.4"),
    (b"AUTH PL@IN", "501 5.5.4"),
    (b"DATA x", "501 5.5.4"),
    (b"HELO a\x00", "500 5.5.2"),
    (b"HELO \xc3", "500 5.5.2"),
]


@pytest.mark.parametrize(("line", "code"), INVALID, ids=[repr(v[0])[:40] for v in INVALID])
def test_invalid_commands(line: bytes, code: str) -> None:
    with pytest.raises(CommandError) as refused:
        parse_command(line)
    assert f"{refused.value.reply.code} {refused.value.reply.status}" == code


def test_reply_encoding() -> None:
    assert Reply(250, "2.0.0", ("OK",)).encode() == b"250 2.0.0 OK\r\n"
    assert Reply(250, "", ("a", "b", "c")).encode() == b"250-a\r\n250-b\r\n250 c\r\n"
    assert Reply(334, "", ("",)).encode() == b"334 \r\n"
    # Client data echoed in a reply can never split it into two.
    assert Reply(550, "5.1.1", ("<a\r\n250 OK>",)).encode() == b"550 5.1.1 <a??250 OK>\r\n"
    assert refusal("too many connections") == b"421 4.7.0 too many connections\r\n"
