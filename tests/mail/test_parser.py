"""The server's message parser: a worker process gives exactly what parsing in place gives,
answers concurrent requests each with its own message, and losing the worker loses no
message."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from mailkeep.mail import parser as parser_module
from mailkeep.mail.message import INLINE_PARSE_LIMIT, parse
from mailkeep.mail.parser import Parser, _Worker


def _message(n: int, body_size: int = 200) -> bytes:
    body = (f"line {n} " * (body_size // 8 + 1))[:body_size]
    return (
        f"From: Sender {n} <s{n}@example.org>\r\nTo: r@example.net\r\n"
        f"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_{n}?=\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n--b--\r\n"
    ).encode()


ParserFactory = Callable[..., Parser]


@pytest.fixture
async def make_parser() -> AsyncIterator[ParserFactory]:
    """``Parser(...)`` whose workers are stopped at the end of the test, however it ends."""
    made: list[Parser] = []

    def make(*args: int, **options: Any) -> Parser:
        made.append(Parser(*args, **options))
        return made[-1]

    yield make
    for parser in made:
        await parser.close()


def _running(parser: Parser) -> _Worker | None:
    """The first worker slot (a call, so that type checkers do not narrow it)."""
    return parser._running[0]


async def test_a_worker_parses_as_the_server_would(make_parser: ParserFactory) -> None:
    parser = make_parser(1, max_parts=5, max_depth=3)
    await parser.start()
    big = _message(0, INLINE_PARSE_LIMIT + 1000)
    for raw in (_message(1), big, b"", b"no header at all"):
        assert await parser.parse(raw) == parse(raw, max_parts=5, max_depth=3)


async def test_a_worker_finds_the_words_when_asked(make_parser: ParserFactory) -> None:
    for workers in (1, 0):
        parser = make_parser(workers, words=True)
        await parser.start()
        raw = _message(1)
        parsed = await parser.parse(raw)
        assert parsed == parse(raw, words=True)
        assert parsed.words
    plain = make_parser(1)
    await plain.start()
    assert (await plain.parse(_message(1))).words is None


async def test_concurrent_messages_get_their_own_answers(make_parser: ParserFactory) -> None:
    parser = make_parser(2)
    await parser.start()
    raws = [_message(n) for n in range(40)]
    answers = await asyncio.gather(*(parser.parse(raw) for raw in raws))
    assert [a.subject for a in answers] == [f"Grüße {n}" for n in range(40)]
    assert all(len(w.waiting) == 0 for w in parser._running if w is not None)


async def test_workers_start_for_a_burst_and_stop_when_mail_stops(
    monkeypatch: pytest.MonkeyPatch, make_parser: ParserFactory
) -> None:
    monkeypatch.setattr(parser_module, "IDLE_STOP", 0.3)
    parser = make_parser(1)
    await parser.parse(_message(1))  # one message: parsed in place, no process
    assert _running(parser) is None
    await asyncio.sleep(parser_module.BURST_GAP * 2)
    await parser.parse(_message(2))
    assert _running(parser) is None
    await parser.parse(_message(3))  # right after another: a burst
    worker = _running(parser)
    assert worker is not None
    assert not worker.gone
    await asyncio.sleep(1.0)  # no mail for longer than IDLE_STOP
    assert _running(parser) is None
    assert worker.process.returncode == 0
    await parser.parse(_message(4))
    assert (await parser.parse(_message(5))).subject == "Grüße 5"  # a new burst
    assert _running(parser) is not None


async def test_a_worker_that_dies_costs_no_message(make_parser: ParserFactory) -> None:
    parser = make_parser(1)
    await parser.start()
    worker = parser._running[0]
    assert worker is not None
    first = worker.process.pid
    os.kill(first, signal.SIGKILL)
    await worker.process.wait()
    # Parsed in place this time, by a new worker the next.
    assert (await parser.parse(_message(1))).subject == "Grüße 1"
    assert (await parser.parse(_message(2))).subject == "Grüße 2"
    replacement = parser._running[0]
    assert replacement is not None
    assert replacement.process.pid != first
    assert replacement.process.returncode is None


async def test_close_stops_the_workers() -> None:
    parser = Parser(2)
    await parser.start()
    processes = [w.process for w in parser._running if w is not None]
    assert len(processes) == 2
    await parser.close()
    assert all(p.returncode == 0 for p in processes)


async def test_no_workers_parses_in_place(make_parser: ParserFactory) -> None:
    parser = make_parser(0)
    raw = _message(3)
    assert await parser.parse(raw) == parse(raw)


async def test_a_message_the_worker_cannot_finish_is_stored_unparsed(
    monkeypatch: pytest.MonkeyPatch, make_parser: ParserFactory
) -> None:
    monkeypatch.setattr(parser_module, "PARSE_TIMEOUT", 0.5)
    parser = make_parser(1)
    await parser.start()
    worker = parser._running[0]
    assert worker is not None
    os.kill(worker.process.pid, signal.SIGSTOP)  # a parse that never ends
    raw = _message(4)
    stuck = await parser.parse(raw)
    assert stuck.size == len(raw)
    assert stuck.subject == ""
    assert "parsing took too long" in stuck.defects
    await worker.process.wait()  # killed
    assert (await parser.parse(raw)).subject == "Grüße 4"  # parsed, not stuck
