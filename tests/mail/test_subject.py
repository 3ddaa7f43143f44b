"""RFC 5256 2.1 base subject."""

from __future__ import annotations

import pytest

from mailkeep.mail.subject import base_subject


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Lunch tomorrow?", "Lunch tomorrow?"),
        ("Re: [list] Fwd: RE: re: Lunch tomorrow? (fwd)", "Lunch tomorrow?"),
        ("[list] Re: [other] hello", "hello"),
        ("Re: [fwd: Re: x]", "x"),
        ("[fwd: Re: hello]", "hello"),
        ("  re : x (FWD)  (fwd) ", "x"),
        ("Fw: Fwd:  spaced\t out", "spaced out"),
        ("[a][b]", "[b]"),  # a blob is kept when nothing would remain
        ("[list] ", "[list]"),
        ("Re:", ""),
        ("", ""),
        ("Réponse: été", "Réponse: été"),  # only re/fw/fwd are leaders
    ],
)
def test_base_subject(subject: str, expected: str) -> None:
    assert base_subject(subject) == expected


@pytest.mark.parametrize(
    "subject",
    ["[a]" * 300_000 + "x", "(fwd)" * 300_000, "[fwd: " * 100_000 + "x" + "]" * 100_000],
)
def test_hostile_subjects_finish(subject: str) -> None:
    """These were quadratic with slicing and regex backtracking; now they are linear."""
    assert base_subject(subject) in ("x", "")
