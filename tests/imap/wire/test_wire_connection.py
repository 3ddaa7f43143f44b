"""Framing and modes of the sans-I/O connection: literals, refusal before reading,
limits and bounded memory, IDLE, AUTHENTICATE, STARTTLS and COMPRESS hand-offs."""

from __future__ import annotations

from mailkeep.config import LimitsConfig
from mailkeep.imap import commands as c
from mailkeep.imap.connection import (
    AuthResponse,
    CommandError,
    CommandReceived,
    Connection,
    ConnectionClosed,
    Event,
    IdleDone,
    LiteralRefused,
    Mode,
    NeedContinuation,
    NeedData,
)
from mailkeep.imap.reader import ErrorKind, Limits

from ._support import events

CHUNK = 64 * 1024


def drain(conn: Connection) -> list[Event]:
    out: list[Event] = []
    while not isinstance(event := conn.next_event(), NeedData):
        out.append(event)
        if isinstance(event, ConnectionClosed):
            break
    return out


def test_synchronising_literals_ask_for_continuation_each_time() -> None:
    conn = Connection()
    conn.receive_data(b"a LOGIN {4}\r\n")
    assert drain(conn) == [NeedContinuation("Ready for literal data", "a", 4)]
    conn.receive_data(b"fred {6}\r\n")
    assert drain(conn) == [NeedContinuation("Ready for literal data", "a", 6)]
    conn.receive_data(b"secret\r\n")
    assert drain(conn) == [CommandReceived("a", c.Login(b"fred", b"secret"))]


def test_multiappend_continuation_between_messages() -> None:
    conn = Connection(authenticated=True)
    conn.receive_data(b"A003 APPEND saved (\\Seen) {3}\r\n")
    assert [type(e) for e in drain(conn)] == [NeedContinuation]
    conn.receive_data(b"one (\\Seen) {3}\r\n")
    assert [type(e) for e in drain(conn)] == [NeedContinuation]
    conn.receive_data(b"two\r\n")
    [received] = drain(conn)
    assert isinstance(received, CommandReceived)
    assert isinstance(received.command, c.Append)
    assert [m.data for m in received.command.messages] == [b"one", b"two"]


def test_literal_over_limit_is_refused_before_reading() -> None:
    conn = Connection()  # before login: 8 KiB literals
    conn.receive_data(b"a LOGIN {9000}\r\n")
    [refused] = drain(conn)
    assert refused == LiteralRefused("a", 9000, 8 * 1024, "LOGIN", True)
    assert isinstance(refused, LiteralRefused)
    assert refused.reason == "literal of 9000 octets exceeds the limit of 8192"
    conn.receive_data(b"b NOOP\r\n")
    assert drain(conn) == [CommandReceived("b", c.Noop())]


def test_append_refusal_names_the_command() -> None:
    limits = Limits(max_literal=100)
    [refused, _] = events(b"a UID REPLACE 1 Drafts {200}\r\n", limits)
    assert refused == LiteralRefused("a", 200, 100, "REPLACE", True)
    [refused, _] = events(b"a APPEND INBOX (\\Seen) {200}\r\n", limits)
    assert refused == LiteralRefused("a", 200, 100, "APPEND", True)


def test_non_synchronising_literal_over_limit_is_skipped_unbuffered() -> None:
    conn = Connection(Limits(max_literal=100), authenticated=True)
    conn.receive_data(b"a APPEND INBOX {1000+}\r\n")
    assert drain(conn) == [LiteralRefused("a", 1000, 100, "APPEND", False)]
    for _ in range(10):
        conn.receive_data(b"x" * 100)
        assert drain(conn) == []
        assert conn.buffered == 0
    # The rest of the command, with another non-synchronising literal, is discarded too.
    conn.receive_data(b" {5+}\r\nhello\r\nb NOOP\r\n")
    assert drain(conn) == [CommandReceived("b", c.Noop())]


def test_two_gigabyte_announcement_never_buffers() -> None:
    conn = Connection(authenticated=True)
    conn.receive_data(b"a APPEND INBOX {2147483648+}\r\n")
    [refused] = drain(conn)
    assert isinstance(refused, LiteralRefused)
    assert refused.size == 2**31
    block = b"\0" * CHUNK
    for _ in range(160):  # 10 MiB of the literal
        conn.receive_data(block)
        assert drain(conn) == []
        assert conn.buffered == 0


def test_ten_megabyte_line_without_crlf_is_reported_once() -> None:
    conn = Connection(authenticated=True)
    reported: list[Event] = []
    for _ in range(160):
        conn.receive_data(b"a" * CHUNK)
        reported += drain(conn)
        assert conn.buffered <= CHUNK + conn.limits.max_line
    assert len(reported) == 1
    [err] = reported
    assert isinstance(err, CommandError)
    assert err.kind is ErrorKind.LINE_TOO_LONG
    conn.receive_data(b"\r\nb NOOP\r\n")
    assert drain(conn) == [CommandReceived("b", c.Noop())]


def test_long_line_keeps_tag_for_tagged_bad() -> None:
    [err, _] = events(b"T1 SEARCH " + b"X" * 70000 + b"\r\n")
    assert isinstance(err, CommandError)
    assert err.tag == "T1"
    assert err.kind is ErrorKind.LINE_TOO_LONG


def test_too_long_line_ending_in_literal_plus_discards_its_literal() -> None:
    found = events(b"T1 X " + b"Y" * 70000 + b" {5+}\r\nabcde\r\nT2 NOOP\r\n")
    assert [type(e) for e in found] == [CommandError, CommandReceived, NeedData]


def test_pipelined_commands_come_out_in_order() -> None:
    conn = Connection(authenticated=True)
    conn.receive_data(b"".join(b"a%d NOOP\r\n" % i for i in range(10000)))
    received = drain(conn)
    assert len(received) == 10000
    assert all(isinstance(e, CommandReceived) for e in received)
    assert [e.tag for e in received if isinstance(e, CommandReceived)][-1] == "a9999"
    assert conn.buffered == 0


def test_limits_grow_after_authentication() -> None:
    conn = Connection()
    conn.receive_data(b"a LOGIN {10000}\r\n")
    assert isinstance(drain(conn)[0], LiteralRefused)
    conn.authenticated = True
    conn.receive_data(b"b APPEND INBOX {10000}\r\n")
    assert drain(conn) == [NeedContinuation("Ready for literal data", "b", 10000)]


def test_line_limit_smaller_before_authentication() -> None:
    [err, _] = events(b"a LOGIN " + b"u" * 9000 + b" p\r\n", authenticated=False)
    assert isinstance(err, CommandError)
    assert err.kind is ErrorKind.LINE_TOO_LONG
    [ok, _] = events(b"a LOGIN " + b"u" * 9000 + b" p\r\n", authenticated=True)
    assert isinstance(ok, CommandReceived)


def test_total_literals_of_one_command_are_bounded() -> None:
    limits = Limits(max_literal=100, max_command=150)
    found = events(
        b"a APPEND x {100+}\r\n" + b"m" * 100 + b" {100+}\r\n" + b"n" * 100 + b"\r\n", limits
    )
    assert found == [LiteralRefused("a", 100, 50, "APPEND", False), NeedData()]


def test_literal_minus_limits_non_synchronising_literals() -> None:
    limits = Limits(literal_minus=True)
    found = events(b"a APPEND x {5000+}\r\n" + b"m" * 5000 + b"\r\nb NOOP\r\n", limits)
    assert found[0] == LiteralRefused("a", 5000, 4096, "APPEND", False)
    assert isinstance(found[0], LiteralRefused)
    assert "LITERAL-" in found[0].reason
    assert found[1] == CommandReceived("b", c.Noop())
    [ok, _] = events(b"a APPEND x {5000}\r\n" + b"m" * 5000 + b"\r\n", limits)[1:]
    assert isinstance(ok, CommandReceived)


def test_malformed_literal_announcements() -> None:
    [err, ok, _] = events(b"a LOGIN {3-}\r\nb NOOP\r\n")
    assert isinstance(err, CommandError)
    assert "{n+}" in err.reason
    assert ok == CommandReceived("b", c.Noop())
    [err, ok, _] = events(b"{3+}\r\nabc\r\nb NOOP\r\n")
    assert isinstance(err, CommandError)
    assert err.tag is None
    assert ok == CommandReceived("b", c.Noop())


def test_bare_lf_and_empty_lines_are_accepted() -> None:
    assert events(b"\r\na NOOP\n\nb NOOP\r\n") == [
        CommandReceived("a", c.Noop()),
        CommandReceived("b", c.Noop()),
        NeedData(),
    ]


def test_end_of_input() -> None:
    conn = Connection()
    conn.receive_data(b"a NOOP\r\nb NO")
    conn.receive_data(b"")
    assert drain(conn) == [CommandReceived("a", c.Noop()), ConnectionClosed()]


def test_idle_mode_expects_done() -> None:
    conn = Connection(authenticated=True)
    conn.receive_data(b"a IDLE\r\n")
    assert drain(conn) == [CommandReceived("a", c.Idle())]
    conn.start_idle("a")
    assert conn.mode is Mode.IDLE
    conn.receive_data(b"done\r\nb NOOP\r\n")
    assert drain(conn) == [IdleDone("a"), CommandReceived("b", c.Noop())]
    assert conn.mode.value == "command"


def test_idle_pipelined_with_done_is_read_lazily() -> None:
    conn = Connection(authenticated=True)
    conn.receive_data(b"a IDLE\r\nDONE\r\n")
    assert conn.next_event() == CommandReceived("a", c.Idle())
    conn.start_idle("a")
    assert conn.next_event() == IdleDone("a")


def test_idle_garbage_is_an_error_for_the_idle_tag() -> None:
    conn = Connection(authenticated=True)
    conn.start_idle("x1")
    conn.receive_data(b"x2 NOOP\r\n")
    [err] = drain(conn)
    assert err == CommandError("x1", "expected DONE to end IDLE", ErrorKind.SYNTAX, "IDLE")
    assert conn.mode is Mode.COMMAND


def test_authenticate_responses() -> None:
    conn = Connection()
    conn.receive_data(b"a AUTHENTICATE PLAIN\r\n")
    assert drain(conn) == [CommandReceived("a", c.Authenticate("PLAIN"))]
    conn.start_authenticate("a")
    conn.receive_data(b"dGVzdAB0ZXN0AHRlc3Q=\r\n")
    assert drain(conn) == [AuthResponse("a", b"test\x00test\x00test")]
    conn.start_authenticate("a")
    conn.receive_data(b"\r\n")
    assert drain(conn) == [AuthResponse("a", b"")]
    conn.start_authenticate("a")
    conn.receive_data(b"*\r\n")
    assert drain(conn) == [AuthResponse("a", None)]
    conn.start_authenticate("a")
    conn.receive_data(b"not base64!\r\n")
    [err] = drain(conn)
    assert isinstance(err, CommandError)
    assert (err.tag, err.command) == ("a", "AUTHENTICATE")


def test_authenticate_response_line_ignores_literal_syntax() -> None:
    conn = Connection()
    conn.start_authenticate("a")
    conn.receive_data(b"e30=\r\n")  # base64 of "{}"
    assert drain(conn) == [AuthResponse("a", b"{}")]


def test_starttls_discards_pipelined_plaintext() -> None:
    conn = Connection()
    conn.receive_data(b"a STARTTLS\r\nb LOGIN x y\r\n")
    assert conn.next_event() == CommandReceived("a", c.StartTls())
    assert conn.start_tls() == len(b"b LOGIN x y\r\n")
    assert conn.next_event() == NeedData()


def test_compress_hands_over_buffered_octets() -> None:
    conn = Connection(authenticated=True)
    conn.receive_data(b"a COMPRESS DEFLATE\r\n\x78\x9c")
    assert conn.next_event() == CommandReceived("a", c.Compress("DEFLATE"))
    assert conn.take_buffered() == b"\x78\x9c"
    conn.receive_data(b"b NOOP\r\n")
    assert conn.next_event() == CommandReceived("b", c.Noop())


TRANSCRIPT = (
    b"a1 LOGIN {4}\r\nfred {6+}\r\nsecret\r\n"
    b"a2 APPEND INBOX (\\Seen) ~{5}\r\nab\x00cd {3+}\r\nxyz\r\n"
    b"a3 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM)])\r\n"
    b"bad command\r\n"
    b"a4 IDLE\r\n"
    b"a5 SEARCH CHARSET UTF-8 TEXT {2}\r\nhi\r\n"
    b"a6 APPEND x {99999+}\r\n" + b"z" * 300 + b"\r\n"
)


def _significant(data_chunks: list[bytes]) -> list[Event]:
    conn = Connection(Limits(max_literal=200), authenticated=True)
    out: list[Event] = []
    for chunk in data_chunks:
        conn.receive_data(chunk)
        out += drain(conn)
    return out


def test_chunking_at_every_byte_boundary_gives_the_same_events() -> None:
    whole = _significant([TRANSCRIPT])
    kinds = [type(e) for e in whole]
    assert kinds.count(CommandReceived) == 5
    assert kinds[-1] is LiteralRefused
    for cut in range(1, len(TRANSCRIPT)):
        assert _significant([TRANSCRIPT[:cut], TRANSCRIPT[cut:]]) == whole, cut


def test_byte_by_byte_gives_the_same_events() -> None:
    whole = _significant([TRANSCRIPT])
    assert _significant([bytes([b]) for b in TRANSCRIPT]) == whole


def test_limits_from_config() -> None:
    limits = Limits.from_config(LimitsConfig(max_line=1000, max_message=5000))
    assert (limits.max_line, limits.max_literal, limits.max_command) == (1000, 5000, 10000)
    assert limits.max_literal_unauthenticated == LimitsConfig().max_literal_unauthenticated
    [refused, _] = events(b"a APPEND x {5001}\r\n", limits)
    assert isinstance(refused, LiteralRefused)
