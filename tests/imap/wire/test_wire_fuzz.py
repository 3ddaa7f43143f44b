"""Hypothesis fuzzing of the wire layer: no input, in any chunking and any mode, makes
``receive_data``/``next_event`` raise; chunking never changes the events; generated
commands survive serialize → parse unchanged."""

from __future__ import annotations

import os
import string
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailkeep.imap import commands as c
from mailkeep.imap.connection import (
    INTERNAL_ERROR,
    AuthResponse,
    CommandError,
    CommandReceived,
    Connection,
    ConnectionClosed,
    Event,
    IdleDone,
    LiteralRefused,
    NeedContinuation,
    NeedData,
)
from mailkeep.imap.reader import Limits
from mailkeep.imap.sequence import STAR, SequenceSet
from mailkeep.imap.serialize import to_bytes

from ._support import parse
from .test_wire_parser import RFC_EXAMPLES

EXAMPLES = 2000 if os.environ.get("MAILKEEP_FUZZ") == "long" else 150
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMITS = Limits(max_line=300, max_literal=64, max_command=100, max_line_unauthenticated=200)
KNOWN = (
    CommandReceived,
    CommandError,
    NeedContinuation,
    LiteralRefused,
    IdleDone,
    AuthResponse,
)

TOKENS = [
    b"a1 ",
    b"* ",
    b"UID ",
    b"uid ",
    b"FETCH ",
    b"SEARCH ",
    b"STORE ",
    b"APPEND ",
    b"LOGIN ",
    b"SELECT ",
    b"LIST ",
    b"NOTIFY SET ",
    b"SETMETADATA ",
    b"IDLE",
    b"DONE",
    b"INBOX ",
    b"(",
    b")",
    b" ",
    b"{3}\r\n",
    b"{2+}\r\n",
    b"~{1}\r\n",
    b"{99999+}\r\n",
    b"{0}\r\n",
    b"\r\n",
    b"\n",
    b'"',
    b"\\",
    b"*",
    b"$",
    b"1:*",
    b"4294967296",
    b"9" * 5000,
    b"<",
    b".",
    b":",
    b"-",
    b"BODY[",
    b"BODY.PEEK[HEADER.FIELDS (",
    b"]",
    b"<0.5>",
    b"NOT ",
    b"OR ",
    b"MODSEQ ",
    b"CHARSET UTF-8 ",
    b"RETURN (",
    b"PARTIAL -1:-5",
    b"\xff",
    b"\x00",
    b"abc",
]
structured = st.lists(st.sampled_from(TOKENS), max_size=40).map(b"".join)
raw = st.binary(max_size=600)
wire = st.one_of(raw, structured)


def _run(chunks: list[bytes], modes: list[int], authenticated: bool) -> list[Event]:
    """Feed chunks, draining after each; ``modes`` switches IDLE/AUTHENTICATE on as a
    session would after some commands."""
    conn = Connection(LIMITS, authenticated=authenticated)
    out: list[Event] = []
    switches = iter(modes)
    for chunk in [*chunks, b""]:
        conn.receive_data(chunk)
        while True:
            event = conn.next_event()
            if isinstance(event, NeedData | ConnectionClosed):
                break
            assert isinstance(event, KNOWN), event
            assert not (isinstance(event, CommandError) and event.reason == INTERNAL_ERROR)
            out.append(event)
            if isinstance(event, CommandReceived):
                mode = next(switches, 0)
                if mode == 1:
                    conn.start_idle(event.tag)
                elif mode == 2:
                    conn.start_authenticate(event.tag)
                elif mode == 3:
                    conn.authenticated = not conn.authenticated
    return out


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return [p for p in pieces if p]


@FUZZ
@given(
    data=wire,
    cuts=st.lists(st.integers(0, 600), max_size=12),
    modes=st.lists(st.integers(0, 3), max_size=20),
    authenticated=st.booleans(),
)
def test_any_input_in_any_chunking_gives_the_same_events(
    data: bytes, cuts: list[int], modes: list[int], authenticated: bool
) -> None:
    whole = _run([data], modes, authenticated)
    assert _run(_split(data, cuts), modes, authenticated) == whole


@FUZZ
@given(data=wire)
def test_byte_at_a_time(data: bytes) -> None:
    assert _run([bytes([b]) for b in data], [], True) == _run([data], [], True)


# ------------------------------------------------------------------ round trips

atoms = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=8)
strings = st.binary(max_size=20)
texts = st.text(max_size=12).filter(lambda s: "\x00" not in s and "\r" not in s and "\n" not in s)
numbers = st.integers(1, 2**32 - 1)
seq_numbers = st.one_of(numbers, st.just(STAR))
seqsets = st.one_of(
    st.just(SequenceSet(saved=True)),
    st.lists(st.tuples(seq_numbers, seq_numbers), min_size=1, max_size=4).map(
        lambda r: SequenceSet(tuple(r))
    ),
)
dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))
flag_names = st.one_of(
    st.sampled_from(["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]),
    atoms.map(lambda a: "$" + a),
)


def search_keys(depth: int = 2) -> st.SearchStrategy[c.SearchKey]:
    leaves: st.SearchStrategy[c.SearchKey] = st.one_of(
        st.sampled_from(["ALL", "SEEN", "UNSEEN", "NEW", "DRAFT", "RECENT"]).map(c.SearchFlag),
        st.builds(c.SearchText, st.sampled_from(["FROM", "TO", "BODY", "TEXT", "SUBJECT"]), texts),
        st.builds(c.SearchHeader, atoms, texts),
        st.builds(c.SearchKeyword, atoms, st.booleans()),
        st.builds(c.SearchDate, st.sampled_from(["BEFORE", "SENTON", "SAVEDSINCE"]), dates),
        st.builds(c.SearchNumber, st.sampled_from(["LARGER", "SMALLER", "OLDER"]), numbers),
        st.builds(c.SearchSet, seqsets, st.booleans()),
        st.builds(c.SearchModseq, st.integers(0, 2**63 - 1)),
    )
    if depth == 0:
        return leaves
    inner = search_keys(depth - 1)
    return st.one_of(
        leaves,
        st.builds(c.SearchNot, inner),
        st.builds(c.SearchOr, inner, inner),
        st.lists(inner, min_size=2, max_size=3).map(lambda ks: c.SearchAnd(tuple(ks))),
    )


sections = st.builds(
    c.Section,
    st.lists(st.integers(1, 9), max_size=3).map(tuple),
    st.sampled_from([None, "HEADER", "TEXT"]),
)
fetch_items = st.one_of(
    st.sampled_from(["FLAGS", "UID", "ENVELOPE", "RFC822.SIZE", "MODSEQ", "BODY"]).map(c.FetchAttr),
    st.builds(
        c.FetchBody,
        sections,
        st.none() | st.tuples(st.integers(0, 10**6), st.integers(1, 10**6)),
        st.booleans(),
    ),
    st.builds(c.FetchBinary, st.lists(st.integers(1, 9), max_size=3).map(tuple)),
    st.builds(c.FetchPreview, st.booleans()),
)
commands = st.one_of(
    st.builds(c.Search, search_keys(), st.booleans(), st.sampled_from([None, "UTF-8"])),
    st.builds(
        c.Fetch, seqsets, st.lists(fetch_items, min_size=1, max_size=4).map(tuple), st.booleans()
    ),
    st.builds(
        c.Store,
        seqsets,
        st.sampled_from(["", "+", "-"]),
        st.lists(flag_names, max_size=3).map(tuple),
        st.booleans(),
        st.booleans(),
        st.none() | st.integers(0, 2**63 - 1),
    ),
    st.builds(c.Login, strings, strings),
    st.builds(c.Select, strings, st.booleans(), st.booleans()),
    st.builds(c.Rename, strings, strings),
    st.builds(c.Status, strings, st.just(("MESSAGES", "UIDNEXT"))),
    st.builds(
        c.Append,
        strings,
        st.lists(
            st.builds(
                c.AppendMessage, st.binary(max_size=30), st.lists(flag_names, max_size=2).map(tuple)
            ),
            min_size=1,
            max_size=3,
        ).map(tuple),
    ),
    st.builds(
        c.Sort,
        st.lists(
            st.builds(c.SortCriterion, st.sampled_from(["DATE", "FROM", "SIZE"]), st.booleans()),
            min_size=1,
            max_size=3,
        ).map(tuple),
        st.just("UTF-8"),
        search_keys(1),
        st.booleans(),
    ),
)


@FUZZ
@given(command=commands)
def test_generated_commands_round_trip(command: c.Command) -> None:
    assert parse(to_bytes("t1", command)) == command


# ------------------------------------------------------------------ mutated RFC examples


@st.composite
def mutated_examples(draw: st.DrawFn) -> bytes:
    line = bytearray(draw(st.sampled_from(RFC_EXAMPLES)) + b"\r\n")
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(line)))
        action = draw(st.integers(0, 2))
        if action == 0 and pos < len(line):
            del line[pos]
        elif action == 1:
            line[pos:pos] = draw(st.sampled_from(TOKENS))
        elif pos < len(line):
            line[pos] = draw(st.integers(0, 255))
    return bytes(line)


@FUZZ
@given(
    data=st.lists(mutated_examples(), min_size=1, max_size=3).map(b"".join),
    cuts=st.lists(st.integers(0, 600), max_size=6),
)
def test_mutated_examples_never_break_the_connection(data: bytes, cuts: list[int]) -> None:
    whole = _run([data + b"zz NOOP\r\n"], [], True)
    assert _run(_split(data + b"zz NOOP\r\n", cuts), [], True) == whole
