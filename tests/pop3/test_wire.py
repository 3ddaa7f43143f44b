"""The POP3 wire layer without a session: command parsing, line framing, dot-stuffing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailkeep.pop3 import commands as c
from mailkeep.pop3.wire import (
    DotStuffer,
    Line,
    LineLimiter,
    LineReader,
    LineTooLong,
    NeedData,
    err,
    multiline,
    ok,
)

# ---------------------------------------------------------------------------- commands


@pytest.mark.parametrize(
    ("line", "command"),
    [
        # RFC 1939 section 9 summary, one example each.
        (b"USER mrose", c.User("mrose")),
        (b"PASS secret", c.Pass("secret")),
        (b"QUIT", c.Quit()),
        (b"STAT", c.Stat()),
        (b"LIST", c.List(None)),
        (b"LIST 2", c.List(2)),
        (b"RETR 1", c.Retr(1)),
        (b"DELE 1", c.Dele(1)),
        (b"NOOP", c.Noop()),
        (b"RSET", c.Rset()),
        (b"TOP 1 10", c.Top(1, 10)),
        (b"UIDL", c.Uidl(None)),
        (b"UIDL 2", c.Uidl(2)),
        (b"APOP mrose c4c9334bac560ecc979e58001b3e22fb", c.Apop()),
        # RFC 2449, RFC 2595, RFC 5034, RFC 6856.
        (b"CAPA", c.Capa()),
        (b"STLS", c.Stls()),
        (b"AUTH", c.Auth(None)),
        (b"AUTH plain", c.Auth("PLAIN")),
        (b"AUTH PLAIN AGFsaWNlAHNlY3JldA==", c.Auth("PLAIN", b"AGFsaWNlAHNlY3JldA==")),
        (b"AUTH PLAIN =", c.Auth("PLAIN", b"=")),
        (b"UTF8", c.Utf8()),
        (b"LANG", c.Lang(None)),
        (b"LANG es", c.Lang("es")),
        # Keywords are case-insensitive; white space is forgiven except in PASS.
        (b"stat", c.Stat()),
        (b"Retr 3", c.Retr(3)),
        (b"LIST  2 ", c.List(2)),
        (b"TOP\t1\t0", c.Top(1, 0)),
        (b"  NOOP", c.Noop()),
        (b"RETR 007", c.Retr(7)),
        (b"PASS two words ", c.Pass("two words ")),
        (b"PASS  leading", c.Pass(" leading")),
        (b"USER  j\xc3\xb6rg@example.org ", c.User("j\u00f6rg@example.org")),
        (b"RETR 99999999999999999999999", c.Retr(c.MAX_NUMBER)),
    ],
)
def test_parse(line: bytes, command: c.Command) -> None:
    assert c.parse_command(line) == command


@pytest.mark.parametrize(
    ("line", "reason", "keyword"),
    [
        (b"", "no command given", ""),
        (b"   ", "no command given", ""),
        (b"XYZZY", "unknown command", ""),
        (b"\xff\xfe", "unknown command", ""),
        (b"ST-T", "unknown command", ""),
        (b"STAT 1", "STAT takes no arguments", "STAT"),
        (b"RETR", "RETR needs one argument, a message number", "RETR"),
        (b"RETR x", "the message number must be a number", "RETR"),
        (b"RETR -1", "the message number must be a number", "RETR"),
        (b"RETR 1 2", "RETR needs one argument, a message number", "RETR"),
        (b"DELE", "DELE needs one argument, a message number", "DELE"),
        (b"LIST 1 2", "LIST takes at most one argument, a message number", "LIST"),
        (b"TOP 1", "TOP needs two arguments: a message number and a line count", "TOP"),
        (b"TOP 1 -1", "the line count must be a number", "TOP"),
        (b"USER", "USER needs a user name", "USER"),
        (b"USER  ", "USER needs a user name", "USER"),
        (b"PASS", "PASS needs a password", "PASS"),
        (b"PASS \xff", "the password is not valid UTF-8", "PASS"),
        (b"AUTH PLAIN a b", "AUTH takes a mechanism name and an optional initial response", "AUTH"),
        (b"LANG en fr", "LANG takes at most one argument, a language range", "LANG"),
        (b"RETR \xd9\xa3", "the message number must be a number", "RETR"),
    ],
)
def test_parse_errors(line: bytes, reason: str, keyword: str) -> None:
    with pytest.raises(c.CommandError) as caught:
        c.parse_command(line)
    assert caught.value.reason == reason
    assert caught.value.keyword == keyword


@given(st.binary(max_size=300))
def test_parse_never_fails_otherwise(line: bytes) -> None:
    try:
        c.parse_command(line)
    except c.CommandError:
        pass


# ---------------------------------------------------------------------------- framing


def lines_of(reader: LineReader) -> list[object]:
    events: list[object] = []
    while not isinstance(event := reader.next(), NeedData):
        events.append(event)
    return events


def test_lines_split_anywhere() -> None:
    reader = LineReader(255)
    reader.feed(b"US")
    assert lines_of(reader) == []
    reader.feed(b"ER bob\r")
    assert lines_of(reader) == []
    reader.feed(b"\nPASS x\r\nSTAT\nNOOP")
    assert lines_of(reader) == [Line(b"USER bob"), Line(b"PASS x"), Line(b"STAT")]
    reader.feed(b"\r\n")
    assert lines_of(reader) == [Line(b"NOOP")]


def test_line_limit_counts_crlf_and_skips_the_rest() -> None:
    reader = LineReader(10)
    reader.feed(b"12345678\r\n")  # exactly 10 octets: accepted
    assert lines_of(reader) == [Line(b"12345678")]
    reader.feed(b"123456789\r\nNOOP\r\n")
    assert lines_of(reader) == [LineTooLong(10), Line(b"NOOP")]
    reader.feed(b"x" * 30)
    assert lines_of(reader) == [LineTooLong(10)]
    reader.feed(b"y" * 30)
    assert lines_of(reader) == []
    reader.feed(b"zz\r\nSTAT\r\n")
    assert lines_of(reader) == [Line(b"STAT")]


def test_clear_drops_pending_input() -> None:
    reader = LineReader(255)
    reader.feed(b"STAT\r\nNOOP\r\n")
    assert reader.next() == Line(b"STAT")
    reader.clear()
    assert reader.next() == NeedData()


# ---------------------------------------------------------------------------- responses


def test_status_lines() -> None:
    assert ok() == b"+OK\r\n"
    assert ok("2 320") == b"+OK 2 320\r\n"
    assert err("no such message") == b"-ERR no such message\r\n"
    assert err("Do you have another POP session running?", "IN-USE") == (
        b"-ERR [IN-USE] Do you have another POP session running?\r\n"
    )


def test_multiline_stuffs_each_line() -> None:
    assert multiline(ok("listing"), [b"1 120", b".hidden", b"."]) == (
        b"+OK listing\r\n1 120\r\n..hidden\r\n..\r\n.\r\n"
    )


def stuff(chunks: list[bytes]) -> bytes:
    stuffer = DotStuffer()
    return b"".join(stuffer.feed(chunk) for chunk in chunks) + stuffer.finish()


@pytest.mark.parametrize(
    ("message", "sent"),
    [
        (b"", b".\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b".a\r\n", b"..a\r\n.\r\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r\n..\r\n", b"a\r\n...\r\n.\r\n"),
        (b"a\r\n.", b"a\r\n..\r\n.\r\n"),
        (b"a.b\r\n", b"a.b\r\n.\r\n"),
        (b"bare\n.lf\n", b"bare\n..lf\n\r\n.\r\n"),
        (b"ends in cr\r", b"ends in cr\r\r\n.\r\n"),
    ],
)
def test_dot_stuffing(message: bytes, sent: bytes) -> None:
    assert stuff([message]) == sent


@pytest.mark.parametrize(
    ("chunks", "sent"),
    [
        ([b"a\r\n", b".b\r\n"], b"a\r\n..b\r\n.\r\n"),
        ([b"a\r", b"\n.b\r\n"], b"a\r\n..b\r\n.\r\n"),
        ([b"a\r\n.", b"b\r\n"], b"a\r\n..b\r\n.\r\n"),
        ([b"a\r\n", b"b"], b"a\r\nb\r\n.\r\n"),
        ([b"a\r", b"\n"], b"a\r\n.\r\n"),
        ([b"a", b"\r", b"\n"], b"a\r\n.\r\n"),
        ([b"a\r\n", b"\r"], b"a\r\n\r\r\n.\r\n"),
        ([b"a\r\n", b"", b"."], b"a\r\n..\r\n.\r\n"),
    ],
)
def test_dot_stuffing_at_chunk_boundaries(chunks: list[bytes], sent: bytes) -> None:
    """A line start, or the final CR LF, split between two chunks of the blob."""
    assert stuff(chunks) == sent


@given(
    st.lists(st.sampled_from([b".", b"\r", b"\n", b"a", b"\r\n", b".."]), max_size=40), st.data()
)
def test_dot_stuffing_ignores_chunk_boundaries(parts: list[bytes], data: st.DataObject) -> None:
    message = b"".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(message)), max_size=8)))
    chunks = [message[a:b] for a, b in zip([0, *cuts], [*cuts, len(message)], strict=True)]
    whole = stuff([message])
    assert stuff(chunks) == whole
    # Undoing the stuffing as a client does gives the message back (plus CR LF when it
    # did not end with one).
    body = whole[: -len(b".\r\n")]
    lines = body.split(b"\n")
    unstuffed = b"\n".join(line[1:] if line.startswith(b".") else line for line in lines)
    expected = message if message.endswith(b"\r\n") or not message else message + b"\r\n"
    assert unstuffed == expected


def test_line_limiter() -> None:
    limiter = LineLimiter(3)
    assert limiter.feed(b"one\r\ntw") == b"one\r\ntw"
    states = [limiter.done]
    assert limiter.feed(b"o\r\nthree\r\nfour\r\n") == b"o\r\nthree\r\n"
    states.append(limiter.done)
    assert states == [False, True]
    assert limiter.feed(b"five\r\n") == b""
    assert LineLimiter(0).feed(b"x\r\n") == b""
