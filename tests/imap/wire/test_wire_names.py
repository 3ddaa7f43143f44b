"""Modified UTF-7 (RFC 3501 5.1.3), mailbox name decoding per session mode, sequence sets
and IMAP dates."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailkeep.imap import mutf7, sequence
from mailkeep.imap.dates import DateError, format_date_time, parse_date_time
from mailkeep.imap.sequence import STAR, SequenceSet

PAIRS = [
    ("~peter/mail/台北/日本語", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501 5.1.3
    ("☺!", b"&Jjo-!"),
    ("Entwürfe", b"Entw&APw-rfe"),
    ("&", b"&-"),
    ("A&B", b"A&-B"),
    ("", b""),
    ("𝄞", b"&2DTdHg-"),  # astral plane: a surrogate pair
    ("Ç&Ç", b"&AMc-&-&AMc-"),
]


@pytest.mark.parametrize(("text", "encoded"), PAIRS)
def test_mutf7_known_pairs(text: str, encoded: bytes) -> None:
    assert mutf7.encode(text) == encoded
    assert mutf7.decode(encoded) == text


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"&Jjo", "unterminated"),
        (b"&AGE-", "printable ASCII"),  # "a" must stand for itself
        (b"&Jjo-&Jjo-", "adjacent"),
        (b"Entw\xc3\xbcrfe", "octet 0xc3"),
        (b"tab\there", "octet 0x09"),
        (b"&Jj-", "partial character"),
        (b"&Jjp-", "non-zero padding bits"),
        (b"&2DQ-", "unpaired surrogate"),
    ],
)
def test_mutf7_rejects_malformed(raw: bytes, reason: str) -> None:
    with pytest.raises(mutf7.MUTF7Error, match=reason):
        mutf7.decode(raw)


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"])))
def test_mutf7_round_trip(text: str) -> None:
    encoded = mutf7.encode(text)
    assert encoded.isascii()
    assert mutf7.decode(encoded) == text


def test_decode_mailbox_depends_on_mode() -> None:
    assert mutf7.decode_mailbox(b"Entw&APw-rfe", utf8=False) == "Entwürfe"
    assert mutf7.decode_mailbox(b"Entw&APw-rfe", utf8=True) == "Entw&APw-rfe"
    assert mutf7.decode_mailbox("Entwürfe".encode(), utf8=True) == "Entwürfe"
    with pytest.raises(mutf7.MUTF7Error):
        mutf7.decode_mailbox("Entwürfe".encode(), utf8=False)
    with pytest.raises(mutf7.MUTF7Error, match="control character"):
        mutf7.decode_mailbox(b"&AAA-", utf8=False)  # an encoded NUL
    with pytest.raises(mutf7.MUTF7Error, match="control character"):
        mutf7.decode_mailbox(b"a\tb", utf8=True)
    with pytest.raises(mutf7.MUTF7Error, match="not valid UTF-8"):
        mutf7.decode_mailbox(b"\xff", utf8=True)
    assert mutf7.encode_mailbox("Entwürfe", utf8=False) == b"Entw&APw-rfe"
    assert mutf7.encode_mailbox("Entwürfe", utf8=True) == "Entwürfe".encode()


@pytest.mark.parametrize("spelling", [b"inbox", b"InBox", b"INBOX"])
def test_inbox_is_case_insensitive(spelling: bytes) -> None:
    assert mutf7.decode_mailbox(spelling, utf8=False) == "INBOX"
    assert mutf7.decode_mailbox(spelling, utf8=True) == "INBOX"
    assert mutf7.decode_mailbox(b"inbox/Sub", utf8=False) == "inbox/Sub"


# ------------------------------------------------------------------ sequence sets


def test_sequence_parse_and_format() -> None:
    seqset = sequence.parse(b"2,4:7,9,12:*,*:3")
    assert seqset.ranges == ((2, 2), (4, 7), (9, 9), (12, STAR), (STAR, 3))
    assert bytes(seqset) == b"2,4:7,9,12:*,*:3"
    assert sequence.parse(b"$") == SequenceSet(saved=True)
    with pytest.raises(sequence.SequenceSetError):
        sequence.parse(b"0")
    with pytest.raises(sequence.SequenceSetError):
        sequence.parse(b"1:")


def test_resolve_reversed_and_star() -> None:
    assert sequence.resolve(sequence.parse(b"5:2"), 10) == ((2, 5),)
    assert sequence.resolve(sequence.parse(b"*"), 10) == ((10, 10),)
    assert sequence.resolve(sequence.parse(b"12:*"), 10) == ((10, 12),)  # RFC 9051 9
    assert sequence.resolve(sequence.parse(b"1,2,3,7:9,8"), 10) == ((1, 3), (7, 9))


def test_resolve_star_on_empty_mailbox_is_nothing() -> None:
    assert sequence.resolve(sequence.parse(b"1:*"), 0) == ()
    assert sequence.resolve(sequence.parse(b"*"), 0) == ()
    assert sequence.resolve(sequence.parse(b"3,1:*"), 0) == ((3, 3),)


def test_resolve_saved_result() -> None:
    saved = ((2, 4),)
    assert sequence.resolve(SequenceSet(saved=True), 9, saved) == saved
    with pytest.raises(sequence.SequenceSetError):
        sequence.resolve(SequenceSet(saved=True), 9)


@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=6),
    st.integers(0, 30),
)
def test_resolve_matches_naive_expansion(pairs: list[tuple[int, int]], largest: int) -> None:
    seqset = SequenceSet(tuple((a or STAR, b or STAR) for a, b in pairs))
    expected: set[int] = set()
    for a, b in seqset.ranges:
        a, b = (largest if a == STAR else a), (largest if b == STAR else b)
        if a and b:
            expected.update(range(min(a, b), max(a, b) + 1))
    ranges = sequence.resolve(seqset, largest)
    assert set(sequence.iterate(ranges)) == expected
    assert sequence.count(ranges) == len(expected)
    assert all(sequence.contains(ranges, n) == (n in expected) for n in range(45))
    assert all(hi + 1 < lo for (_, hi), (lo, _) in itertools.pairwise(ranges))


def test_formatting_number_sets() -> None:
    assert sequence.format_numbers([5, 1, 2, 3, 9, 10]) == b"1:3,5,9:10"
    assert sequence.format_ordered([304, 319, 320]) == b"304,319:320"
    assert sequence.format_ordered([3, 2, 1]) == b"3,2,1"
    assert SequenceSet.of([4, 5, 6, 8]) == SequenceSet(((4, 6), (8, 8)))


# ------------------------------------------------------------------ dates


def test_date_time_round_trip() -> None:
    moment = parse_date_time(b'"17-Jul-1996 02:44:25 -0700"')
    assert moment == datetime(1996, 7, 17, 2, 44, 25, tzinfo=timezone(timedelta(hours=-7)))
    assert format_date_time(moment) == b'"17-Jul-1996 02:44:25 -0700"'
    assert format_date_time(datetime(1994, 2, 7, 21, 52, 25, tzinfo=UTC)) == (
        b'" 7-Feb-1994 21:52:25 +0000"'
    )
    ist = timezone(timedelta(hours=5, minutes=30))
    assert format_date_time(datetime(2024, 1, 1, tzinfo=ist)) == b'" 1-Jan-2024 00:00:00 +0530"'


@pytest.mark.parametrize(
    "bad",
    [
        b'"31-Feb-1994 00:00:00 +0000"',
        b'"1-Foo-1994 00:00:00 +0000"',
        b'"01-Jan-1994 25:00:00 +0000"',
        b"x",
    ],
)
def test_date_time_errors(bad: bytes) -> None:
    with pytest.raises(DateError):
        parse_date_time(bad)


@given(
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)),
    st.integers(-23 * 60, 23 * 60),
)
def test_date_time_formatting_round_trips(moment: datetime, minutes: int) -> None:
    aware = moment.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=minutes)))
    assert parse_date_time(format_date_time(aware)) == aware
