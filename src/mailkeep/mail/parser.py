"""Where messages are parsed: in worker processes beside the server, or in place.

Parsing a delivered or appended message is the largest share of the server's own Python
work per message (about 0.4 ms for the bench corpus's 22 KB average), and one process
runs Python on one core at a time. With a worker the event loop writes the raw octets to
a pipe and serves other sessions while the message is parsed on another core.

Decisions:

* ``workers=0`` parses in the calling process: small messages in place
  (``INLINE_PARSE_LIMIT``), larger ones in a thread so that they do not stall the loop.
  Tests and one-shot commands use that; ``serve`` takes ``Config.parse_workers``.
* Workers start when messages come in a burst (``BURST_GAP``) and stop when none has
  come for ``IDLE_STOP``: a quiet server is one process.
* A worker is ``python -m mailkeep.mail.parser``, a child process that reads
  length-prefixed messages on stdin and answers each, in order, with a pickled
  ``ParsedMessage`` on stdout. Pipes read by the event loop itself: a
  ``ProcessPoolExecutor`` passes every call through two threads of the server, and the
  hand-overs between them made a parse take 3 ms instead of 0.4.
* Workers run in a session of their own (Ctrl-C in the server's terminal is the
  server's to handle) and exit when their stdin closes, so they never outlive it.
* A worker that dies (killed, out of memory) costs no mail: what it was parsing is
  parsed in place, and the next message starts a new worker.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import os
import pickle
import sys
from typing import BinaryIO

from mailkeep.mail.message import INLINE_PARSE_LIMIT, ParsedMessage, parse, unparsed

log = logging.getLogger(__name__)

_LENGTH = 4
"""Octets of the big-endian length before each message and each answer."""
BURST_GAP = 0.05
"""Seconds between two messages below which mail is coming in a burst: only then does a
worker start. A message now and then is parsed in place, which costs the server less than
the hop to a worker and keeps it one process (as for 10,000 sessions in IDLE)."""
IDLE_STOP = 2.0
"""Seconds without a message after which the workers stop: starting one again costs about
0.1 s of CPU, less than an idle process's memory is worth between bursts."""
PARSE_TIMEOUT = 60.0
"""Seconds a worker may take over one message (a 50 MB message takes about two): longer
means a message our parser cannot cope with, which is then stored unparsed (as one opaque
text part, still delivered byte for byte) and the worker replaced."""


def default_workers() -> int:
    """One worker where there is a second core to run it, else none."""
    return 1 if (os.cpu_count() or 1) > 1 else 0


class WorkerGone(Exception):
    """The worker exited before answering."""


class Parser:
    def __init__(
        self,
        workers: int = 0,
        *,
        max_parts: int = 10_000,
        max_depth: int = 50,
        words: bool = False,
    ) -> None:
        """``words``: find each message's whole words too (``ParsedMessage.words``), for
        a store that indexes them (``Dialect.wants_words``)."""
        self.workers = workers
        self.max_parts = max_parts
        self.max_depth = max_depth
        self.words = words
        self._parse = functools.partial(
            parse, max_parts=max_parts, max_depth=max_depth, words=words
        )
        self._running: list[_Worker | None] = [None] * workers
        self._starting = asyncio.Lock()
        self._last = float("-inf")
        """Event loop time of the last message to parse."""
        self._reaper: asyncio.Task[None] | None = None

    async def parse(self, raw: bytes) -> ParsedMessage:
        now = asyncio.get_running_loop().time()
        burst = now - self._last < BURST_GAP
        self._last = now
        if self.workers > 0 and (burst or self._any_running()):
            try:
                worker = await self._worker()
                # asyncio.timeout, not wait_for: no task of its own to wait its turn in
                # the event loop, before the message goes out and after the answer came.
                async with asyncio.timeout(PARSE_TIMEOUT):
                    return await worker.parse(raw)
            except TimeoutError:
                log.error(
                    "parsing a message of %d octets took over %.0f s: stored unparsed",
                    len(raw),
                    PARSE_TIMEOUT,
                )
                worker.stop()
                return unparsed(raw, "parsing took too long")
            except (WorkerGone, OSError) as exc:
                log.warning("a message parser process failed (%s): parsing in the server", exc)
        if len(raw) <= INLINE_PARSE_LIMIT:
            return self._parse(raw)
        return await asyncio.to_thread(self._parse, raw)

    async def _worker(self) -> _Worker:
        """The running worker with the fewest messages in hand (one started if needed)."""
        best = min(
            range(self.workers),
            key=lambda i: -1 if (w := self._running[i]) is None else len(w.waiting),
        )
        worker = self._running[best]
        if worker is None or worker.gone:
            async with self._starting:  # one start per slot, however many messages wait
                worker = self._running[best]
                if worker is None or worker.gone:
                    worker = await _Worker.start(self.max_parts, self.max_depth, self.words)
                    self._running[best] = worker
                    self._reap_when_idle()
        return worker

    def _any_running(self) -> bool:
        return any(w is not None and not w.gone for w in self._running)

    def _reap_when_idle(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap())

    async def _reap(self) -> None:
        loop = asyncio.get_running_loop()
        while self._any_running():
            await asyncio.sleep(max(self._last + IDLE_STOP - loop.time(), 0.01))
            busy = any(w is not None and w.waiting for w in self._running)
            if not busy and loop.time() - self._last >= IDLE_STOP:
                await self._stop_workers()

    async def _stop_workers(self) -> None:
        workers, self._running = self._running, [None] * self.workers
        for worker in workers:
            if worker is not None:
                await worker.close()

    async def start(self) -> None:
        """Start the workers now, as a burst of mail would."""
        for i in range(self.workers):
            self._running[i] = await _Worker.start(self.max_parts, self.max_depth, self.words)
        self._last = asyncio.get_running_loop().time()
        self._reap_when_idle()

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
            self._reaper = None
        await self._stop_workers()


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self.process = process
        self._stdin = process.stdin
        self._stdout = process.stdout
        self.waiting: collections.deque[asyncio.Future[ParsedMessage]] = collections.deque()
        self.gone = False
        self._answers = asyncio.create_task(self._read_answers())

    @classmethod
    async def start(cls, max_parts: int, max_depth: int, words: bool) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mailkeep.mail.parser",
            str(max_parts),
            str(max_depth),
            str(int(words)),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        return cls(process)

    async def parse(self, raw: bytes) -> ParsedMessage:
        if self.gone:
            raise WorkerGone("exited")
        future: asyncio.Future[ParsedMessage] = asyncio.get_running_loop().create_future()
        # One write: the length alone would wake the worker for four octets.
        self._stdin.write(len(raw).to_bytes(_LENGTH, "big") + raw)
        self.waiting.append(future)  # answers come in the order of the requests
        try:
            await self._stdin.drain()
        except BaseException:
            future.cancel()  # its answer, if one comes, is skipped
            raise
        return await future

    async def _read_answers(self) -> None:
        try:
            while True:
                length = int.from_bytes(await self._stdout.readexactly(_LENGTH), "big")
                answer = await self._stdout.readexactly(length)
                future = self.waiting.popleft()
                if not future.done():
                    future.set_result(pickle.loads(answer))
        except (asyncio.IncompleteReadError, ConnectionError, IndexError) as exc:
            # It closed its end: it is exiting or gone (and asyncio reaps it; a kill()
            # here would reap it first and lose its exit status).
            self._fail(WorkerGone(f"exit status {self.process.returncode}: {exc!r}"))
        except BaseException as exc:  # cancelled at close, or an answer we cannot read
            self._fail(WorkerGone(repr(exc)))
            if self.process.returncode is None:
                self.process.kill()
            raise

    def _fail(self, error: WorkerGone) -> None:
        self.gone = True
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)

    def stop(self) -> None:
        """Kill it; what it had in hand is parsed in place."""
        self.gone = True
        if self.process.returncode is None:
            self.process.kill()

    async def close(self) -> None:
        self.gone = True
        self._stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        self._answers.cancel()
        await asyncio.gather(self._answers, return_exceptions=True)


def _serve(
    requests: BinaryIO, answers: BinaryIO, max_parts: int, max_depth: int, words: bool
) -> None:
    """The worker: parse each message read from ``requests``, answer on ``answers``."""
    while True:
        head = requests.read(_LENGTH)
        if len(head) < _LENGTH:
            return  # the server closed the pipe (or went away)
        raw = requests.read(int.from_bytes(head, "big"))
        parsed = parse(raw, max_parts=max_parts, max_depth=max_depth, words=words)
        answer = pickle.dumps(parsed, 5)
        answers.write(len(answer).to_bytes(_LENGTH, "big"))
        answers.write(answer)
        answers.flush()


if __name__ == "__main__":
    try:
        _serve(
            sys.stdin.buffer,
            sys.stdout.buffer,
            int(sys.argv[1]),
            int(sys.argv[2]),
            sys.argv[3:] == ["1"],
        )
    except (BrokenPipeError, ConnectionResetError, KeyboardInterrupt):
        os._exit(0)  # the server went away mid-answer: nothing to say, nobody to say it to
