"""Part tree: section ranges (RFC 9051 6.4.5), HEADER.FIELDS, transfer decoding, encoding."""

from __future__ import annotations

import base64

import pytest

from mailkeep.mail.message import parse
from mailkeep.mail.structure import (
    Part,
    decode,
    decode_transfer,
    encode,
    find_part,
    header_fields,
    section_range,
)

from .corpus import corpus_message


def _section(raw: bytes, path: tuple[int, ...], kind: str) -> bytes | None:
    root = decode(parse(raw).structure)
    span = section_range(root, path, kind)
    return None if span is None else raw[span[0] : span[1]]


SIMPLE = b"Subject: hi\r\nContent-Type: text/plain\r\n\r\nbody\r\n"


def test_single_part_message() -> None:
    assert _section(SIMPLE, (), "") == SIMPLE
    assert _section(SIMPLE, (), "HEADER") == b"Subject: hi\r\nContent-Type: text/plain\r\n\r\n"
    assert _section(SIMPLE, (), "TEXT") == b"body\r\n"
    assert _section(SIMPLE, (1,), "") == b"body\r\n"  # part 1 of a non-multipart: its body
    assert _section(SIMPLE, (1,), "MIME") == b"Subject: hi\r\nContent-Type: text/plain\r\n\r\n"
    assert _section(SIMPLE, (2,), "") is None
    assert _section(SIMPLE, (1, 1), "") is None
    assert _section(SIMPLE, (1,), "HEADER") is None  # not a message/rfc822
    assert _section(SIMPLE, (), "MIME") is None
    assert _section(SIMPLE, (0,), "") is None


def test_multipart_with_embedded_message() -> None:
    raw = corpus_message("rfc822-attach")
    assert _section(raw, (1,), "") == b"See the forwarded message.\r\n"
    assert _section(raw, (1,), "MIME") == b"Content-Type: text/plain\r\n\r\n"
    embedded = _section(raw, (2,), "")
    assert embedded is not None
    assert embedded.startswith(b"Date: Thu, 04 Jan 2024 18:00:00 +0200\r\n")
    assert embedded.endswith(b"--orig-alt--\r\n")
    header = _section(raw, (2,), "HEADER")
    assert header is not None
    assert header.startswith(b"Date:")
    assert header.endswith(b'boundary="orig-alt"\r\n\r\n')
    text = _section(raw, (2,), "TEXT")
    assert text is not None
    assert text.startswith(b"--orig-alt\r\n")
    # part numbers go on into the embedded message's parts
    assert _section(raw, (2, 1), "") == b"Original text.\r\n"
    assert _section(raw, (2, 2), "") == b"<p>Original text.</p>\r\n"
    assert _section(raw, (2, 2), "MIME") == b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    assert _section(raw, (2, 3), "") is None
    assert _section(raw, (1,), "TEXT") is None
    assert _section(raw, (3,), "") is None


def test_embedded_single_part_message() -> None:
    raw = corpus_message("rfc822-simple")
    assert _section(raw, (1, 1), "") == b"Inner body\r\nline two\r\n"
    assert _section(raw, (1,), "TEXT") == b"Inner body\r\nline two\r\n"
    assert _section(raw, (1, 2), "") is None


def test_find_part() -> None:
    root = decode(parse(corpus_message("nested")).structure)
    part = find_part(root, (1, 2, 2))
    assert part is not None
    assert (part.type, part.subtype, part.encoding) == ("image", "gif", "base64")
    assert find_part(root, ()) is None
    assert find_part(root, (1, 2, 3)) is None


def test_structure_round_trips() -> None:
    for name in ("nested", "rfc822-attach", "rfc2231", "bad-content-type"):
        root = decode(parse(corpus_message(name)).structure)
        assert decode(encode(root)) == root


def test_structure_params_are_decoded() -> None:
    root = decode(parse(corpus_message("rfc2231")).structure)
    first, second = root.children
    assert first.param("name") == "very long file name.txt"
    assert second.param("title") == "This is ***fun***"
    assert root.param("boundary") == "b1"
    assert root.param("missing") is None


def test_decode_rejects_unknown_format() -> None:
    with pytest.raises(ValueError, match="format"):
        decode(b"[99, []]")


def test_walk_is_depth_first() -> None:
    root = Part(0, 0, 10, "multipart", "mixed", children=(Part(1, 2, 3), Part(4, 5, 6)))
    assert [p.header_start for p in root.walk()] == [0, 1, 4]


HEADER = (
    b"From: a@example.com\r\n"
    b"Subject: folded\r\n subject\r\n"
    b"To: b@example.com\r\n"
    b"X-Junk line without colon\r\n"
    b"subject: second\r\n"
    b"\r\n"
)


def test_header_fields() -> None:
    assert header_fields(HEADER, ["SUBJECT"], exclude=False) == (
        b"Subject: folded\r\n subject\r\nsubject: second\r\n\r\n"
    )
    assert header_fields(HEADER, ["subject", "from", "x-junk line without colon"], True) == (
        b"To: b@example.com\r\n\r\n"
    )
    assert header_fields(HEADER, ["nothing"], exclude=False) == b"\r\n"
    # a header without its blank line stays without one
    assert header_fields(b"From: a\r\nTo: b", ["to"], exclude=False) == b"To: b"


@pytest.mark.parametrize(
    ("data", "encoding", "expected"),
    [
        (b"plain", "7bit", b"plain"),
        (b"\xff\x00", "BINARY", b"\xff\x00"),
        (b"8bit \xe9", "8bit", b"8bit \xe9"),
        (b"aGVsbG8=\r\n", "base64", b"hello"),
        (b"aGVs\r\nbG8", "Base64", b"hello"),  # missing padding
        (b"a G!V*s b#G8=", "base64", b"hello"),  # junk between
        (b"caf=C3=A9 soft=\r\nbreak", "quoted-printable", b"caf\xc3\xa9 softbreak"),
        (b"bad =ZZ", "quoted-printable", b"bad =ZZ"),
        (b"begin 644 x", "x-uuencode", None),
    ],
)
def test_decode_transfer(data: bytes, encoding: str, expected: bytes | None) -> None:
    assert decode_transfer(data, encoding) == expected


def test_decode_transfer_of_attachment() -> None:
    payload = bytes(range(256)) * 3
    raw = (
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(payload)
    )
    root = decode(parse(raw).structure)
    span = section_range(root, (1,), "")
    assert span is not None
    assert decode_transfer(raw[span[0] : span[1]], root.encoding) == payload
