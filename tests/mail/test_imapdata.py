"""IMAP string rendering: quoted when safe, literal otherwise (RFC 9051 4.3), like Dovecot."""

from __future__ import annotations

import pytest

from mailkeep.mail.imapdata import literal, nstring, nstring_nolf, quote, string_for_humans


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"hello", b'"hello"'),
        (b"", b'""'),
        ("text", b'"text"'),
        (b'say "hi"', b'"say \\"hi\\""'),
        (b"a\\b", b'"a\\\\b"'),
        (b'""""', b'"\\"\\"\\"\\""'),  # four escapes: still quoted
        (b'"""""', b'{5}\r\n"""""'),  # five: a literal is shorter to read
        (b"caf\xc3\xa9", b"{5}\r\ncaf\xc3\xa9"),
        ("café", b"{5}\r\ncaf\xc3\xa9"),
        (b"two\r\nlines", b"{10}\r\ntwo\r\nlines"),
        (b"nul\x00", b"{4}\r\nnul\x00"),
    ],
)
def test_quote(value: bytes | str, expected: bytes) -> None:
    assert quote(value) == expected


def test_nstring() -> None:
    assert nstring(None) == b"NIL"
    assert nstring(b"NIL") == b'"NIL"'
    assert literal(b"x") == b"{1}\r\nx"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"Wed, 10 Jan 2024\n 16:20:00", b'"Wed, 10 Jan 2024 16:20:00"'),
        (b"\n <id@x>", b'" <id@x>"'),
        (b"a\r\nb", b'"a b"'),  # a break right before text becomes a space
        (None, b"NIL"),
    ],
)
def test_nstring_nolf(value: bytes | None, expected: bytes) -> None:
    assert nstring_nolf(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"Plain subject", b'"Plain subject"'),
        (b"folded\n subject", b"{14}\r\nfolded subject"),
        (b"  padded\t ", b"{6}\r\npadded"),
        (b'with "quotes"', b'{13}\r\nwith "quotes"'),
        (b"R\xe9sum\xe9", b"{6}\r\nR\xe9sum\xe9"),
        (b"   ", b'""'),
        (b"", b'""'),
    ],
)
def test_string_for_humans(value: bytes, expected: bytes) -> None:
    assert string_for_humans(value) == expected
