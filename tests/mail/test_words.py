"""The whole words a PostgreSQL store keeps of a message's text (its tsvector
prefilter): what a search for a needle's words relies on finding there, found by the
store or beforehand by the parser."""

from __future__ import annotations

from mailkeep.mail.message import parse
from mailkeep.mail.words import MAX_LEXEME, MAX_WORDS_BYTES, fold, fold_text, index_words


def test_the_distinct_whole_words_of_the_folded_text() -> None:
    words = index_words(fold("Grüße, GRÜSSE und grüße: re-run_2 re-run_2!"))
    assert words is not None
    assert sorted(words) == ["grüsse", "re", "run_2", "und"]


def test_words_too_long_for_a_lexeme_are_left_out_by_their_octets() -> None:
    ascii_word = "a" * (MAX_LEXEME // 4 + 10)  # long in characters, short in octets
    wide_word = "😀" * (MAX_LEXEME // 4 + 10)  # four octets each: too long
    words = index_words(f"{ascii_word} {wide_word} short")
    assert words is not None
    assert sorted(words) == [ascii_word, "short"]


def test_too_many_words_are_not_indexed() -> None:
    count = MAX_WORDS_BYTES // 16  # 16 octets each with the overhead of 8
    fits = " ".join(f"w{n:07d}" for n in range(count))
    assert len(index_words(fits) or ()) == count
    assert index_words(fits + " w9999999 x9999999") is None
    # Counted in octets, not characters: as many two-octet letters are too many.
    wide = " ".join(f"é{n:06d}" for n in range(count))
    assert len(index_words(wide) or ()) == count
    assert index_words(" ".join(f"éé{n:06d}" for n in range(count))) is None


def test_the_parser_finds_the_words_only_when_asked() -> None:
    raw = b"Subject: Quarterly Zebra\r\n\r\nThe aardvark sleeps.\r\n"
    assert parse(raw).words is None
    parsed = parse(raw, words=True)
    assert parsed.words is not None
    assert parsed.words == tuple(sorted(fold_text(parsed.header_text, parsed.body_text)[2] or ()))
    assert {"quarterly", "zebra", "aardvark", "sleeps"} <= set(parsed.words)
