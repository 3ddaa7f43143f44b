"""Property tests of the session machine: any octets, any chunking, never a crash, only
well-formed replies; and DATA transparency round-trips whatever the chunking."""

from __future__ import annotations

import itertools
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailkeep.smtp.commands import Reply, reply
from mailkeep.smtp.session import (
    AuthResponse,
    AuthStarted,
    ConnectionClosed,
    MessageReceived,
    Mode,
    NeedData,
    RecipientProposed,
    Respond,
    SenderProposed,
    Session,
    Settings,
    TlsRequested,
)

HOST = "mx.example"
REPLY_LINE = re.compile(rb"[2-5][0-9][0-9][ -][^\r\n]*\r\n")

COMMANDS = [
    b"EHLO c\r\n",
    b"HELO c\r\n",
    b"LHLO c\r\n",
    b"MAIL FROM:<a@b.example>\r\n",
    b"MAIL FROM:<a@b.example> SIZE=10 BODY=8BITMIME SMTPUTF8\r\n",
    b"RCPT TO:<x@mx.example>\r\n",
    b"RCPT TO:<y@mx.example>\r\n",
    b"DATA\r\n",
    b"BDAT 3\r\n",
    b"BDAT 5 LAST\r\n",
    b"BDAT 0 LAST\r\n",
    b".\r\n",
    b"\r\n.\r\n",
    b"..\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"QUIT\r\n",
    b"VRFY x\r\n",
    b"HELP\r\n",
    b"STARTTLS\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH PLAIN AHUAcA==\r\n",
    b"AUTH LOGIN\r\n",
    b"*\r\n",
    b"dXNlcg==\r\n",
    b"\x00",
    b"\n",
    b"\r",
    b"\xff\xfe",
]

pieces = st.one_of(st.sampled_from(COMMANDS), st.binary(max_size=40))


DECISIONS: dict[type, list[Reply]] = {
    SenderProposed: [reply(250, "2.1.0", "OK"), reply(553, "5.7.1", "no")],
    RecipientProposed: [
        reply(250, "2.1.5", "OK"),
        reply(550, "5.1.1", "unknown"),
        reply(452, "4.2.2", "full"),
    ],
    AuthStarted: [
        Reply(334, "", ("",)),
        reply(235, "2.7.0", "OK"),
        reply(535, "5.7.8", "no"),
    ],
    AuthResponse: [
        Reply(334, "", ("eA==",)),
        reply(235, "2.7.0", "OK"),
        reply(535, "5.7.8", "no"),
        reply(501, "5.0.0", "cancelled"),
    ],
    MessageReceived: [reply(250, "2.0.0", "OK"), reply(452, "4.2.2", "full")],
}


# Health checks are timing heuristics: off, so a loaded CI machine cannot fail the run.
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    mode=st.sampled_from(list(Mode)),
    parts=st.lists(pieces, max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=10),
    choices=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=50),
    tls=st.booleans(),
)
def test_any_input_gives_well_formed_replies(
    mode: Mode, parts: list[bytes], cuts: list[int], choices: list[int], tls: bool
) -> None:
    session = Session(
        Settings(
            mode,
            HOST,
            max_line=120,
            max_message=200,
            max_recipients=3,
            max_errors=1000,
            starttls=not tls,
            tls=tls,
            auth_clear=("PLAIN", "LOGIN"),
            auth_tls=("PLAIN", "LOGIN"),
        )
    )
    output = bytearray(session.greeting())
    stream = b"".join(parts)
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)] + [b""]
    turn = 0
    for chunk in chunks:
        session.receive_data(chunk)
        while True:
            event = session.next_event()
            match event:
                case NeedData() | ConnectionClosed():
                    break
                case Respond(replies):
                    for answer in replies:
                        output += session.send(answer)
                case TlsRequested(answer):
                    output += session.send(answer)
                case _:
                    options = DECISIONS[type(event)]
                    due = event.replies_due if isinstance(event, MessageReceived) else 1
                    for _ in range(due):
                        turn += 1
                        output += session.send(options[choices[turn % len(choices)] % len(options)])
            if session.closed:
                break
        if session.closed:
            break
    assert REPLY_LINE.sub(b"", bytes(output)) == b""
    for line in bytes(output).splitlines():
        assert 200 <= int(line[:3]) < 600


lines = st.lists(
    st.binary(max_size=30).map(lambda b: bytes(c for c in b if c not in b"\r\n\x00")),
    max_size=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=lines,
    bare=st.lists(st.booleans(), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=800), max_size=12),
)
def test_data_transparency_round_trips(
    body: list[bytes], bare: list[bool], cuts: list[int]
) -> None:
    """RFC 5321 4.5.2: whatever the lines and the chunking, the dot-stuffed data comes
    out as the original message; lines sent with a bare LF come out with CRLF (the last
    one must end in CRLF, or CRLF . CRLF would not end the data)."""
    endings = [b"\n" if bare[i : i + 1] == [True] else b"\r\n" for i in range(len(body))]
    if endings:
        endings[-1] = b"\r\n"
    message = b"".join(line + b"\r\n" for line in body)
    stuffed = b"".join(
        (b"." + line if line.startswith(b".") else line) + ending
        for line, ending in zip(body, endings, strict=True)
    )
    stream = b"HELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nDATA\r\n" + stuffed + b".\r\n"
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    session = Session(Settings(Mode.SMTP, HOST))
    session.greeting()
    received = []
    for a, b in itertools.pairwise(bounds):
        session.receive_data(stream[a:b])
        while not isinstance(event := session.next_event(), NeedData):
            if isinstance(event, Respond):
                for answer in event.replies:
                    assert answer.positive, answer
                    session.send(answer)
            else:
                if isinstance(event, MessageReceived):
                    received.append(event.data)
                session.send(reply(250, "2.0.0", "OK"))
    assert received == [message]
