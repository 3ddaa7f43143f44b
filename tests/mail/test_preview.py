"""``make_preview`` cleans only as much of the text as the 200 characters need: it must
give what cleaning the first 10,000 characters gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailkeep.mail import text as t

_PIECES = ["a", "bb ", " ", "\n", ">", "  > q\n", "\t", "word ", "x" * 150, " " * 300, "é"]


def _reference(text: str) -> str:
    sample = t._QUOTED_LINE.sub(" ", text[: t.PREVIEW_LIMIT * 50])
    return t._SPACES.sub(" ", sample).strip()[: t.PREVIEW_LIMIT]


@settings(max_examples=500)
@given(st.lists(st.sampled_from([*_PIECES, "\n> quoted line\n"]), max_size=200).map("".join))
def test_preview_is_the_cleaned_first_characters(text: str) -> None:
    assert t.make_preview(text) == _reference(text)


def test_preview_skips_quoted_lines_and_collapses_space() -> None:
    assert t.make_preview("> old\n  new   text\n>> older\nend") == "new text end"
