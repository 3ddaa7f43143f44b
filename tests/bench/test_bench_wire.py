"""The driver's protocol framing and small helpers, on real asyncio streams fed with bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from bench.measure import percentile
from bench.proto.imap import ImapClient, ImapError, fetch_seq, parse_exists, quoted
from bench.proto.lmtp import dot_stuff
from bench.proto.pop3 import Pop3Client, unstuff
from bench.workloads.modify import seqset


class _Sink(asyncio.Transport):
    """Collects what the client writes."""

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


_WRITERS: list[asyncio.StreamWriter] = []


@pytest.fixture(autouse=True)
def _close_writers() -> Iterator[None]:
    yield
    while _WRITERS:
        _WRITERS.pop().close()


def _streams(incoming: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, _Sink]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    reader.feed_data(incoming)
    reader.feed_eof()
    sink = _Sink()
    protocol = asyncio.StreamReaderProtocol(reader)
    writer = asyncio.StreamWriter(sink, protocol, reader, loop)
    _WRITERS.append(writer)
    return reader, writer, sink


async def test_imap_literals_are_framed_and_counted() -> None:
    body = b"Subject: x\r\n\r\nline {5}\r\n"
    wire = (
        b"* 1 FETCH (UID 7 BODY[] {%d}\r\n" % len(body)
        + body
        + b" FLAGS (\\Seen))\r\n* 2 EXISTS\r\nB1 OK done\r\n"
    )
    reader, writer, _ = _streams(wire)
    client = ImapClient(reader, writer)
    seen: list[tuple[bytes, list[bytes]]] = []
    await client.command(b"FETCH 1 BODY[]", lambda line, lits: seen.append((line, lits)))
    assert seen[0] == (b"* 1 FETCH (UID 7 BODY[] {%d} FLAGS (\\Seen))" % len(body), [body])
    assert fetch_seq(seen[0][0]) == 1
    assert parse_exists(seen[1][0]) == 2
    assert client.bytes_in == len(wire)


@pytest.mark.parametrize("chunk", [1, 2, 7, 64])
async def test_imap_responses_are_framed_across_any_read_boundary(chunk: int) -> None:
    literal = b"a}\r\n{3}\r\nxyz"  # looks like framing itself
    wire = (
        b"* 1 FETCH (BODY[] {%d}\r\n%s BODY[1] {0}\r\n)\r\n" % (len(literal), literal)
        + b"* 2 FETCH (X {1})\r\n"  # not an announcement: it does not end the line
        + b"* 3 FETCH (Y {2}\r\nzz)\r\nB1 OK done\r\n"
    )
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    writer = asyncio.StreamWriter(_Sink(), asyncio.StreamReaderProtocol(reader), reader, loop)
    _WRITERS.append(writer)

    async def trickle() -> None:
        for offset in range(0, len(wire), chunk):
            reader.feed_data(wire[offset : offset + chunk])
            await asyncio.sleep(0)
        reader.feed_eof()

    feeding = asyncio.ensure_future(trickle())
    client = ImapClient(reader, writer)
    seen: list[tuple[bytes, list[bytes]]] = []
    await client.command(b"FETCH 1:3 BODY[]", lambda line, lits: seen.append((line, lits)))
    await feeding
    assert seen == [
        (b"* 1 FETCH (BODY[] {%d} BODY[1] {0})" % len(literal), [literal, b""]),
        (b"* 2 FETCH (X {1})", []),
        (b"* 3 FETCH (Y {2})", [b"zz"]),
    ]
    assert client.bytes_in == len(wire)


async def test_imap_connection_closed_mid_response_raises() -> None:
    reader, writer, _ = _streams(b"* 1 FETCH (BODY[] {10}\r\nshort")
    client = ImapClient(reader, writer)
    with pytest.raises(asyncio.IncompleteReadError):
        await client.command(b"FETCH 1 BODY[]")


async def test_imap_pipelined_tags_complete_out_of_order_and_failures_raise() -> None:
    wire = b"B2 OK second\r\n* SEARCH 3 5\r\nB1 NO [CANNOT] first failed\r\n"
    reader, writer, sink = _streams(wire)
    client = ImapClient(reader, writer)
    tags = [client.send(b"NOOP"), client.send(b"NOOP")]
    with pytest.raises(ImapError, match="B1 NO"):
        await client.wait(tags)
    assert bytes(sink.data) == b"B1 NOOP\r\nB2 NOOP\r\n"


async def test_imap_literal_plus_is_sent_without_waiting() -> None:
    reader, writer, sink = _streams(b"* SEARCH 4\r\nB1 OK\r\n")
    client = ImapClient(reader, writer, capabilities={"LITERAL+"})
    found = await client.search(b"CHARSET UTF-8 SUBJECT", "Grüße".encode())
    assert found == [4]
    assert (
        bytes(sink.data) == b"B1 UID SEARCH CHARSET UTF-8 SUBJECT {7+}\r\nGr\xc3\xbc\xc3\x9fe\r\n"
    )


async def test_imap_synchronising_literal_waits_for_continuation() -> None:
    reader, writer, sink = _streams(b"+ go ahead\r\nB1 OK appended\r\n")
    client = ImapClient(reader, writer)
    tag = await client.send_literal(b"APPEND INBOX", b"abc")
    await client.wait([tag])
    assert bytes(sink.data) == b"B1 APPEND INBOX {3}\r\nabc\r\n"


async def test_pop3_multiline_bodies_are_split_at_the_terminator() -> None:
    first = b"Subject: a\r\n\r\n..leading dot\r\nend.\r\n"
    wire = b"+OK\r\n" + first + b".\r\n+OK empty\r\n.\r\n"
    reader, writer, sink = _streams(wire)
    client = Pop3Client(reader, writer, capabilities={"PIPELINING"})
    bodies: list[bytes] = []
    await client.many([b"RETR 1", b"TOP 2 0"], lambda _, body: bodies.append(body))
    assert [unstuff(b) for b in bodies] == [b"Subject: a\r\n\r\n.leading dot\r\nend.\r\n", b""]
    assert bytes(sink.data) == b"RETR 1\r\nTOP 2 0\r\n"


def test_dot_stuffing_round_trips() -> None:
    message = b".starts\r\nmiddle\r\n.\r\n..two\r\nend"
    stuffed = dot_stuff(message)
    assert stuffed.endswith(b"\r\n.\r\n")
    assert b"\r\n.\r\n" not in stuffed[:-5]
    assert unstuff(stuffed[:-3]) == message + b"\r\n"


def test_sequence_sets_collapse_runs() -> None:
    assert seqset([1, 2, 3, 5, 7, 8]) == b"1:3,5,7:8"
    assert seqset([10]) == b"10"


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) == 0.0


def test_quoted_escapes() -> None:
    assert quoted('a"b\\c') == b'"a\\"b\\\\c"'
