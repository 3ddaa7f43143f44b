"""ParsedMessage contents: search and sort data, dates, ids, text, preview, defects, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mailkeep.mail.message import parse, parse_date, to_crlf
from mailkeep.mail.structure import decode

from .corpus import corpus_message, corpus_names


def test_plain_message() -> None:
    raw = corpus_message("plain")
    p = parse(raw)
    assert p.size == len(raw)
    assert p.header == raw[: raw.index(b"\r\n\r\n") + 4]
    assert p.subject == "Lunch tomorrow?"
    assert p.sent_date == datetime(1994, 2, 7, 21, 52, 25, tzinfo=timezone(timedelta(hours=-8)))
    assert p.from_ == "Alice Example <alice@example.org>"
    assert p.to == "Bob <bob@example.com>, carol@example.com"
    assert p.cc == "Dave, the Admin <dave@example.net>"
    assert p.bcc == ""
    assert (p.sort_from, p.sort_to, p.sort_cc) == ("alice", "bob", "dave")
    assert (p.display_from, p.display_to) == ("alice example", "bob")
    assert p.message_id == "<B27397-0100000@example.org>"
    assert p.preview == "Hi Bob, Are we still on for lunch tomorrow? -- Alice"
    assert "Are we still on for lunch tomorrow?" in p.body_text
    assert "Subject: Lunch tomorrow?" in p.header_text.split("\n")
    assert p.defects == ()


def test_rfc2047_and_raw_utf8_headers() -> None:
    p = parse(corpus_message("encoded-headers"))
    # two encoded-words in different charsets, white space between them dropped
    assert p.subject == "If you can read this you understand the example."
    assert p.from_ == "André Pirard <PIRARD@vm1.ulg.ac.be>"
    assert p.to == "Keith Moore <moore@cs.utk.edu>, テスト <jp@example.jp>"
    assert p.display_from == "andré pirard"
    assert p.body_text == "Café crème.\r\n"  # quoted-printable, ISO-8859-1
    u = parse(corpus_message("utf8-headers"))
    assert u.subject == "Ünïcödé ßubject — raw UTF-8 ✓"
    assert u.to == "Ĳsbrand Ŀ <ij@example.com>"
    assert u.sent_date == datetime(2024, 1, 8, 7, 0, tzinfo=UTC)  # -0000


def test_latin1_headers_fall_back() -> None:
    p = parse(corpus_message("8bit-headers"))
    assert p.subject == "Résumé à revoir"
    assert p.from_ == "René <rene@example.fr>"
    assert p.to == "François <f@example.fr>"
    assert p.body_text == "Café\r\n"


def test_broken_encoded_words() -> None:
    p = parse(corpus_message("bad-encodings"))
    # a UTF-8 character split over two encoded-words survives; an unknown encoding "X"
    # is left as it is
    assert p.subject == "Café split and éx =?foo?X?bar?="
    assert p.from_ == "=?utf-8?q?broken_encoded_word <a@example.com>"
    assert p.to.startswith("hello <b@example.com>, ")  # unknown charset: as UTF-8
    assert p.sent_date is None


def test_groups_in_search_text() -> None:
    p = parse(corpus_message("groups"))
    assert p.to == "undisclosed-recipients: ;"
    assert p.cc == "Friends: joe@example.com, Jane Doe <jane@example.com>;, outside@example.com"
    assert p.bcc == "Team: ;"
    assert p.sort_to == ""  # a group with no members has no first address
    assert p.sort_cc == "joe"


def test_threading_data() -> None:
    p = parse(corpus_message("reply"))
    assert p.base_subject == "Lunch tomorrow?"
    assert p.in_reply_to == "<B27397-0100000@example.org>"
    assert p.references == ("<first@example.org>", "<B27397-0100000@example.org>")
    f = parse(corpus_message("folded"))
    assert f.message_id == "<folded-msgid@example.com>"
    assert f.references == ("<ref1@example.com>", "<ref2@example.com>", "<ref3@example.com>")
    assert f.sent_date == datetime(2024, 1, 10, 16, 20, tzinfo=timezone(timedelta(hours=1)))
    assert f.subject.startswith("This is a very long subject line that has been folded over ")


def test_html_is_reduced_to_text() -> None:
    p = parse(corpus_message("alternative"))
    assert "<p>" not in p.body_text
    assert "var x" not in p.body_text  # scripts are not text
    assert "color: red" not in p.body_text  # nor styles
    assert "Grüße aus München&co." in p.body_text  # entities decoded
    assert p.preview.startswith("Grüße aus München, this line is long enough")
    h = parse(corpus_message("html-only"))
    assert h.preview == "Big sale Everything is 50% off <today> ☺ Second block"


def test_attachments_are_not_text() -> None:
    p = parse(corpus_message("mixed-attach"))
    assert p.body_text == "Please find the report attached.\r\n"
    n = parse(corpus_message("nested"))
    assert "a,b,c" in n.body_text  # a text/csv attachment is text
    assert "R0lGOD" not in n.body_text


def test_preview_skips_quotes_and_is_short() -> None:
    body = b"> quoted line\r\n" + b"word " * 100
    p = parse(b"Subject: x\r\n\r\n" + body)
    assert p.preview.startswith("word word")
    assert len(p.preview) == 200


def test_text_is_capped() -> None:
    p = parse(b"Content-Type: text/plain\r\n\r\n" + b"x" * 3_000_000)
    assert len(p.body_text) == 1_000_000


def test_missing_headers() -> None:
    p = parse(corpus_message("missing-headers"))
    assert p.envelope == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
    assert (p.subject, p.from_, p.message_id, p.sent_date) == ("", "", "", None)


def test_empty_message() -> None:
    p = parse(b"")
    assert p.size == 0
    assert p.header == b""
    assert p.body == b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
    assert p.defects == ("empty message",)


def test_bare_lf_message_keeps_its_octets() -> None:
    raw = corpus_message("bare-lf")
    p = parse(raw)
    assert "bare LF line endings" in p.defects
    # sizes count the stored octets: "Plain version.\n" is 15 here, 16 with CRLF
    assert b'"8bit" 15 1' in p.body
    assert b'"8bit" 16 1' in parse(to_crlf(raw)).body
    assert decode(p.structure).body_end == len(raw)


def test_to_crlf() -> None:
    assert to_crlf(b"a\nb\r\nc\n") == b"a\r\nb\r\nc\r\n"
    already = b"a\r\nb\r\n"
    assert to_crlf(already) is already


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"Mon, 7 Feb 1994 21:52:25 -0800 (PST)", datetime(1994, 2, 8, 5, 52, 25)),
        (b"21 Nov 97 09:55:06 GMT", datetime(1997, 11, 21, 9, 55, 6)),
        (b"Wed, 10 Jan 2024\n 16:20:00 +0100", datetime(2024, 1, 10, 15, 20)),
    ],
)
def test_parse_date(value: bytes, expected: datetime) -> None:
    parsed = parse_date(value)
    assert parsed is not None
    assert parsed.astimezone(UTC).replace(tzinfo=None) == expected


@pytest.mark.parametrize(
    "value", [None, b"", b"not a date", b"Mon, 99 Foo 99999 99:99:99", b"x" * 500]
)
def test_parse_date_rejects(value: bytes | None) -> None:
    assert parse_date(value) is None


def test_defects_are_recorded() -> None:
    assert (
        "multipart without a boundary parameter" in parse(corpus_message("bad-no-boundary")).defects
    )
    assert "multipart not terminated by its closing boundary" in (
        parse(corpus_message("bad-unterminated")).defects
    )
    assert "NUL octets" in parse(corpus_message("nul-bytes")).defects
    assert "header not terminated by a blank line" in parse(corpus_message("only-headers")).defects
    assert "header line without a colon" in parse(corpus_message("bad-header-no-colon")).defects


def test_part_limit() -> None:
    raw = corpus_message("gen-many-parts")
    p = parse(raw, max_parts=5)
    root = decode(p.structure)
    assert len(root.children) == 4  # the message itself is the first of the five
    assert root.children[-1].body_end == len(raw)  # the last one takes the rest
    assert "too many MIME parts: the rest of the message is one part" in p.defects


def test_depth_limit() -> None:
    p = parse(corpus_message("gen-deep-nesting"), max_depth=3)
    root = decode(p.structure)
    depth = 0
    part = root
    while part.children:
        part = part.children[0]
        depth += 1
    assert depth == 2
    assert (part.type, part.subtype) == ("application", "octet-stream")
    assert "MIME nesting too deep: inner parts kept opaque" in p.defects


def test_digest_parts_default_to_message() -> None:
    raw = (
        b'Content-Type: multipart/digest; boundary="d"\r\n\r\n--d\r\n\r\n'
        b"From: x@example.com\r\nSubject: in digest\r\n\r\nhi\r\n--d--\r\n"
    )
    p = parse(raw)
    assert b'("message" "rfc822" NIL NIL NIL "7bit" 45 (NIL "in digest"' in p.body
    root = decode(p.structure)
    assert root.children[0].embedded is not None


@pytest.mark.parametrize("name", corpus_names())
def test_corpus_parses_cleanly(name: str) -> None:
    p = parse(corpus_message(name))
    assert not any(d.startswith("internal") for d in p.defects)
    assert p.bodystructure.startswith(b"(")
    assert p.bodystructure.endswith(b")")


@pytest.mark.parametrize(
    "markup", [b"<script>" * 100_000, b"<" * 200_000, b"<!--" * 100_000, b"<br" * 100_000]
)
def test_hostile_html_is_reduced(markup: bytes) -> None:
    """Unclosed tags and comments must not make HTML reduction quadratic."""
    p = parse(b"Content-Type: text/html\r\n\r\n" + markup)
    assert len(p.body_text) <= len(markup)


def test_html_reduction() -> None:
    from mailkeep.mail.text import html_to_text

    markup = (
        b"<html><head><title>T</title></head><body><p>Hi <b>there</b></p>"
        b"<SCRIPT>x=1</script ><!-- no -->ok<![CDATA[zz]]>end"
    )
    assert html_to_text(markup).split() == [b"Hi", b"there", b"ok", b"end"]
