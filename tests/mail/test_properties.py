"""Property tests: parse() is total, its structure is consistent, sections stay in bounds.

Set MAILKEEP_FUZZ=long for a longer run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailkeep.mail.address import parse_addresses
from mailkeep.mail.message import ParsedMessage, parse, parse_date
from mailkeep.mail.rfc2047 import decode_words
from mailkeep.mail.structure import Part, decode, encode, section_range

from .corpus import CORPUS_DIR, corpus_message

EXAMPLES = 5_000 if os.environ.get("MAILKEEP_FUZZ") == "long" else 150
PROFILE = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
SMALL_CORPUS = sorted(p.stem for p in CORPUS_DIR.glob("*.eml"))

# Fragments that steer random input towards the interesting paths of a MIME parser.
FRAGMENTS = [
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"--",
    b"--b\r\n",
    b"--b--\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/plain; charset=utf-8\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename*0*=utf-8''%E2%82; filename*1=x\r\n",
    b'From: "a\\" b" <@r:x@y>, g: c@d;, (comment\r\n',
    b"Subject: =?utf-8?q?a=C3?= =?utf-8?b?qQ==?=\r\n",
    b"Date: Mon, 31 Feb 99999 25:61:00 +9999\r\n",
    b" folded\r\n",
    b"\x00",
    b"\xff\xfe",
    b"=?",
    b"(",
    b'"',
]

message_like = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=20)), max_size=40
).map(b"".join)


def _check(raw: bytes, parsed: ParsedMessage) -> None:
    assert not any(d.startswith("internal") for d in parsed.defects), parsed.defects
    assert parsed.size == len(raw)
    root = decode(parsed.structure)
    assert decode(encode(root)) == root
    assert root.header_start == 0
    assert root.body_end == len(raw)
    assert parsed.header == raw[: root.body_start]
    _check_part(root, 0, len(raw))
    assert parsed.body.startswith(b"(")
    assert parsed.bodystructure.endswith(b")")
    assert len(parsed.preview) <= 200


def _check_part(part: Part, low: int, high: int) -> None:
    assert low <= part.header_start <= part.body_start <= part.body_end <= high
    if part.type == "message":
        assert len(part.children) <= 1
    previous_end = part.body_start
    for child in part.children:
        assert child.header_start >= previous_end
        _check_part(child, part.body_start, part.body_end)
        previous_end = child.body_end


@PROFILE
@given(st.binary(max_size=2000))
def test_parse_accepts_any_bytes(raw: bytes) -> None:
    _check(raw, parse(raw))


@PROFILE
@given(message_like)
def test_parse_accepts_message_like_bytes(raw: bytes) -> None:
    _check(raw, parse(raw, max_parts=50, max_depth=8))


@st.composite
def mutated_corpus(draw: st.DrawFn) -> bytes:
    raw = bytearray(corpus_message(draw(st.sampled_from(SMALL_CORPUS))))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(raw)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "fragment"]))
        if action == "insert":
            raw[pos:pos] = draw(st.binary(min_size=1, max_size=30))
        elif action == "delete":
            del raw[pos : pos + draw(st.integers(1, 200))]
        elif action == "replace":
            raw[pos : pos + 1] = draw(st.binary(min_size=1, max_size=1))
        else:
            raw[pos:pos] = draw(st.sampled_from(FRAGMENTS))
    return bytes(raw)


@PROFILE
@given(mutated_corpus())
def test_parse_accepts_mutated_corpus(raw: bytes) -> None:
    _check(raw, parse(raw))


@PROFILE
@given(
    mutated_corpus(),
    st.lists(st.integers(0, 4), max_size=4).map(tuple),
    st.sampled_from(["", "HEADER", "TEXT", "MIME"]),
)
def test_sections_stay_inside_the_message(raw: bytes, path: tuple[int, ...], kind: str) -> None:
    root = decode(parse(raw).structure)
    span = section_range(root, path, kind)
    if span is not None:
        assert 0 <= span[0] <= span[1] <= len(raw)


@PROFILE
@given(st.binary(max_size=500))
def test_header_helpers_accept_any_bytes(value: bytes) -> None:
    assert isinstance(decode_words(value), str)
    for fill in (True, False):
        for address in parse_addresses(value, fill_missing=fill):
            assert address.mailbox is not None or address.domain is None


@PROFILE
@given(
    st.one_of(
        st.binary(max_size=80),
        st.from_regex(rb"\A[A-Za-z]{3}, \d{1,3} [A-Za-z]{3} \d{1,6} \d\d:\d\d(:\d\d)? [+-]\d{4}\Z"),
    )
)
def test_dates_never_raise(value: bytes) -> None:
    parsed = parse_date(value)
    assert parsed is None or parsed.tzinfo is not None
