"""Run a C:/S: dialogue against the pure session machine, no sockets.

Script lines (indentation and blank lines ignored, ``#`` starts a comment line):

``C: text``   client sends ``text`` + CRLF. Consecutive C:/R: lines are sent together
              (pipelining) before the server side is run.
``R: text``   client sends raw octets: Python escapes (``\\r``, ``\\n``, ``\\x00``), no CRLF.
``EOF``       client closes its side.
``S: reply``  a reply line the server writes. After an ``E:`` line, the S: lines that follow
              are the decision the test plays for the caller (sent with ``Session.send``)
              and are compared with the octets ``send`` returns, like every other S: line.
``E: what``   the machine asks the caller a question; ``what`` describes it (see
              ``describe``): ``MAIL <a>``, ``RCPT <b>``, ``AUTH PLAIN b'...'``,
              ``AUTH-RESPONSE b'...'``, ``AUTH-CANCEL``, ``STARTTLS``,
              ``MESSAGE <a> -> <b> <c>``, ``CLOSED reason``.
``D: bytes``  after ``E: MESSAGE``: the message data, as a Python bytes literal.
"""

from __future__ import annotations

import ast
import re
import textwrap

from mailkeep.smtp.commands import Reply
from mailkeep.smtp.session import (
    AuthResponse,
    AuthStarted,
    ConnectionClosed,
    Event,
    MessageReceived,
    NeedData,
    RecipientProposed,
    Respond,
    SenderProposed,
    Session,
    Settings,
    TlsRequested,
)

_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


def describe(event: Event) -> str:
    match event:
        case SenderProposed(address, params):
            text = f"MAIL <{address}>"
            if params.size is not None:
                text += f" SIZE={params.size}"
            if params.body is not None:
                text += f" BODY={params.body.value}"
            if params.smtputf8:
                text += " SMTPUTF8"
            return text
        case RecipientProposed(address, size):
            return f"RCPT <{address}>" + (f" SIZE={size}" if size is not None else "")
        case AuthStarted(mechanism, initial):
            return f"AUTH {mechanism}" + (f" {initial!r}" if initial is not None else "")
        case AuthResponse(data):
            return "AUTH-CANCEL" if data is None else f"AUTH-RESPONSE {data!r}"
        case TlsRequested():
            return "STARTTLS"
        case MessageReceived(mail_from, recipients, _, _, eight_bit, _):
            text = f"MESSAGE <{mail_from}> -> " + " ".join(f"<{r}>" for r in recipients)
            return text + (" 8BIT" if eight_bit else "")
        case ConnectionClosed(reason):
            return f"CLOSED {reason}"
    raise AssertionError(f"not a question: {event!r}")


def parse_reply(line: str) -> Reply:
    """``250 2.1.0 text`` → Reply (single line)."""
    code, rest = int(line[:3]), line[4:]
    first, _, text = rest.partition(" ")
    if _STATUS.fullmatch(first):
        return Reply(code, first, (text,))
    return Reply(code, "", (rest,))


class Transcript:
    def __init__(self, script: str) -> None:
        self.lines = [
            line.strip()
            for line in textwrap.dedent(script).strip().splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
        self.position = 0

    def peek(self) -> str | None:
        return self.lines[self.position] if self.position < len(self.lines) else None

    def take(self, prefix: str) -> str:
        line = self.peek()
        assert line is not None, f"transcript ended; expected {prefix}"
        assert line.startswith(prefix), f"line {self.position + 1}: expected {prefix}, got {line!r}"
        self.position += 1
        return line[len(prefix) :].lstrip(" ") if prefix != "EOF" else ""

    def expect_output(self, out: bytes) -> None:
        text = out.decode("utf-8")
        assert text.endswith("\r\n") or not text, f"reply not CRLF-terminated: {text!r}"
        for produced in text.splitlines():
            expected = self.take("S:")
            produced = produced.rstrip(" ")  # script lines are stripped ("334 ")
            assert produced == expected, f"line {self.position}: {produced!r} != {expected!r}"

    def decisions(self, count: int) -> list[Reply]:
        start = self.position
        replies = []
        for index in range(count):
            line = self.lines[start + index] if start + index < len(self.lines) else ""
            assert line.startswith("S:"), f"line {start + index + 1}: expected a decision S:"
            replies.append(parse_reply(line[2:].lstrip(" ")))
        return replies


def run(script: str, settings: Settings) -> Session:
    """Play ``script`` against a new session; return it for further assertions."""
    session = Session(settings)
    transcript = Transcript(script)
    transcript.expect_output(session.greeting())
    while transcript.peek() is not None:
        line = transcript.peek()
        assert line is not None
        if line.startswith(("C:", "R:", "EOF")):
            while (line := transcript.peek()) is not None and line.startswith(("C:", "R:", "EOF")):
                if line.startswith("C:"):
                    session.receive_data(transcript.take("C:").encode() + b"\r\n")
                elif line.startswith("R:"):
                    raw = transcript.take("R:")
                    session.receive_data(ast.literal_eval(f"b'''{raw}'''"))
                else:
                    transcript.take("EOF")
                    session.receive_data(b"")
            _serve(session, transcript)
        else:
            raise AssertionError(f"line {transcript.position + 1}: {line!r} without client input")
    return session


def _serve(session: Session, transcript: Transcript) -> None:
    """Run events until the machine needs data (or the session ended)."""
    while True:
        event = session.next_event()
        match event:
            case NeedData():
                following = transcript.peek()
                assert following is None or following.startswith(("C:", "R:", "EOF")), (
                    f"line {transcript.position + 1}: machine needs data, script has {following!r}"
                )
                return
            case Respond(replies):
                transcript.expect_output(b"".join(session.send(r) for r in replies))
            case ConnectionClosed():
                if transcript.peek() is not None and transcript.peek() != "EOF":
                    assert transcript.take("E:") == describe(event)
                return
            case TlsRequested(reply):
                assert transcript.take("E:") == describe(event)
                transcript.expect_output(session.send(reply))
            case _:
                assert transcript.take("E:") == describe(event)
                if isinstance(event, MessageReceived):
                    if (transcript.peek() or "").startswith("D:"):
                        expected = ast.literal_eval(transcript.take("D:"))
                        assert event.data == expected, f"{event.data!r} != {expected!r}"
                    count = event.replies_due
                else:
                    count = 1
                decided = transcript.decisions(count)
                transcript.expect_output(b"".join(session.send(r) for r in decided))
        if session.closed:
            following = transcript.peek()
            if following is not None and following.startswith("E: CLOSED"):
                event = session.next_event()
                assert transcript.take("E:") == describe(event)
            return
