"""The corpus generator: deterministic, well-formed MIME, needles exactly where counted."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage

import pytest
from bench.corpus import NEEDLES, Corpus, CorpusSpec, encode_word

from bench import vocab

SPEC = CorpusSpec(size=600, seed=3, attachment_rate=0.05)


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus(SPEC)


@pytest.fixture(scope="module")
def parsed(corpus: Corpus) -> list[EmailMessage]:
    out = []
    for raw in corpus.messages():
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def test_same_seed_same_bytes_other_seed_other_bytes(corpus: Corpus) -> None:
    again = Corpus(SPEC)
    other = Corpus(CorpusSpec(size=600, seed=4, attachment_rate=0.05))
    for i in (0, 1, 57, 599):
        assert corpus.message(i) == again.message(i)
        assert corpus.message(i) != other.message(i)


def test_messages_are_crlf_and_parse_without_defects(
    corpus: Corpus, parsed: list[EmailMessage]
) -> None:
    for raw, msg in zip(corpus.messages(), parsed, strict=True):
        assert b"\n" not in raw.replace(b"\r\n", b"")
        assert all(len(line) <= 998 for line in raw.split(b"\r\n"))  # RFC 5322 section 2.1.1
        for part in msg.walk():
            assert not part.defects, part.defects


def test_realistic_mix(corpus: Corpus, parsed: list[EmailMessage]) -> None:
    types = [m.get_content_type() for m in parsed]
    assert types.count("text/plain") > 100
    assert types.count("multipart/alternative") > 100
    assert types.count("multipart/mixed") > 10
    attachments = [
        len(part.get_payload(decode=True) or b"")
        for m in parsed
        for part in m.walk()
        if part.get_content_disposition() == "attachment"
    ]
    assert attachments
    assert all(50_000 <= n <= 1_000_000 for n in attachments)
    assert sum(1 for m in parsed if m["In-Reply-To"]) > 100  # threads
    assert sum(1 for raw in corpus.messages() if b"=?utf-8?b?" in raw) > 300  # RFC 2047
    assert any(m["Message-ID"] == corpus.message_id(i) for i, m in enumerate(parsed))


def test_replies_reference_their_thread(corpus: Corpus, parsed: list[EmailMessage]) -> None:
    for i, msg in enumerate(parsed):
        ancestors = corpus.ancestors(i)
        if ancestors:
            assert msg["In-Reply-To"] == corpus.message_id(ancestors[-1])
            assert str(msg["Subject"]).endswith(corpus.root_subject(ancestors[0]))


def _text_of(msg: EmailMessage) -> str:
    texts = []
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            texts.append(part.get_content())
    return "\n".join(texts)


@pytest.mark.parametrize("needle", list(NEEDLES))
def test_expected_counts_match_a_scan_of_the_messages(
    corpus: Corpus, parsed: list[EmailMessage], needle: str
) -> None:
    """Counted independently of ``carries``: by decoding each message like a server would."""
    text = NEEDLES[needle].text.lower()
    found = 0
    for msg in parsed:
        match needle:
            case "from":
                hit = text in str(msg["From"]).lower()
            case "subject" | "subject-utf8":
                hit = text in str(msg["Subject"]).lower()
            case "body":
                hit = text in _text_of(msg).lower()
            case _:  # TEXT: any header or the body
                headers = " ".join(str(v) for v in msg.values()).lower()
                hit = text in headers or text in _text_of(msg).lower()
        found += hit
    assert found == corpus.expected_counts()[needle]
    assert found > 0


def test_no_needle_hides_in_the_word_pools() -> None:
    pools = " ".join(vocab.WORDS + vocab.FIRST_NAMES + vocab.LAST_NAMES + vocab.DOMAINS).lower()
    for needle in NEEDLES.values():
        assert needle.text.lower() not in pools


def test_check_accepts_trace_fields_and_rejects_changes(corpus: Corpus) -> None:
    original = corpus.message(42)
    assert Corpus.index_of(original) == 42
    delivered = b"Return-Path: <a@b>\r\nDelivered-To: bench@example.com\r\n" + original
    assert corpus.check(delivered) == 42
    with pytest.raises(ValueError, match="do not end with"):
        corpus.check(delivered[:-3] + b"X\r\n")
    with pytest.raises(ValueError, match="no corpus Message-ID"):
        corpus.check(b"Subject: hi\r\n\r\nbody\r\n")


def test_encoded_words_stay_within_rfc2047_limits() -> None:
    text = "Grüße aus Zürich und Kraków " * 6
    encoded = encode_word(text)
    words = encoded.split(" ")
    assert all(len(w) <= 75 and re.fullmatch(r"=\?utf-8\?b\?[A-Za-z0-9+/=]+\?=", w) for w in words)
    decoded = str(
        email.message_from_string(f"Subject: {encoded}\n\n", policy=email.policy.default)["Subject"]
    )
    assert decoded == text
