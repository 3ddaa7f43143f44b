"""``header_selector`` (the prepared HEADER.FIELDS filter FETCH uses for every message)
selects exactly what ``header_fields`` selects, for any header and any list of names."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailkeep.mail.headers import header_fields, header_selector

_NAMES = ["From", "to", "SUBJECT", "x-a", "Received", "fro", "from2", "a:b", "Dätum", " x"]
_PIECES = [
    b"From: a\r\n",
    b"from : b\r\n",
    b"FROM\t:c\n",
    b"From\r\n",
    b"Fromage: no\r\n",
    b"To: x,\r\n y\r\n",
    b" leading continuation\r\n",
    b"\tcont\r\n",
    b"Subject: =?utf-8?q?x?=\r\n",
    b"no colon line\r\n",
    b"a:b: weird\r\n",
    b"x-A: 1\n",
    b"Received: from x\r\n\tby y\r\n",
    b"\r\n",
    b"\n",
    b"From: after blank\r\n",
    b"Subject: no newline",
    b"\r",
    b"From\x00: nul\r\n",
]


@given(
    st.lists(st.sampled_from(_PIECES), max_size=12).map(b"".join),
    st.lists(st.sampled_from(_NAMES), min_size=1, max_size=4).map(tuple),
    st.booleans(),
)
def test_selector_matches_header_fields(
    header: bytes, names: tuple[str, ...], exclude: bool
) -> None:
    assert header_selector(names, exclude)(header) == header_fields(header, names, exclude)


def test_folded_field_kept_whole_and_blank_line_kept() -> None:
    header = b"From: a\r\nTo: b,\r\n c\r\nSubject: s\r\n\r\n"
    assert (
        header_selector(("to", "SUBJECT"), False)(header) == b"To: b,\r\n c\r\nSubject: s\r\n\r\n"
    )
