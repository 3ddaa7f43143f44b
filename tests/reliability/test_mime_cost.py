"""The MIME parser's cost on hostile boundary stacks (src/mailkeep/mail/mime.py).

A message can make each of its multiparts open a new boundary stack dozens of levels
deep; compiling one regular expression per stack then cost time in proportion to the
depth for every multipart (a 600 KB message took 25 s of CPU at delivery, over SMTP from
anyone). Deep stacks are now matched without compiling: these tests check that the cost
stays small, and that both ways of matching give the same tree on adversarial input.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailkeep.mail import mime


def stairs(multiparts: int, depth: int = 45) -> bytes:
    """Runs of ``depth`` nested multiparts, each run ended by the root boundary, so the
    parser pops back and every multipart opens a stack never seen before."""
    out = [
        b"Subject: stairs\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="root"\r\n\r\n'
    ]
    n = 0
    while n < multiparts:
        out.append(b"--root\r\n")
        for _ in range(depth):
            out.append(b'Content-Type: multipart/mixed; boundary="u%d"\r\n\r\n--u%d\r\n' % (n, n))
            n += 1
        out.append(b"\r\n")
    out.append(b"--root--\r\n")
    return b"".join(out)


def test_new_deep_stack_per_multipart_is_cheap() -> None:
    raw = stairs(9000)
    started = time.process_time()
    tree = mime.parse_mime(raw)
    took = time.process_time() - started
    assert tree.root.children
    assert took < 8, f"{len(raw)} octets took {took:.1f}s of CPU to parse"


def shape(entity: mime.Entity) -> object:
    part = entity.part
    return (
        part.header_start,
        part.body_start,
        part.body_end,
        part.type,
        part.subtype,
        entity.lines,
        [shape(child) for child in entity.children],
    )


BOUNDARIES = st.sampled_from([b"a", b"ab", b"abc", b"b", b"1", b"10", b"x y", b"a-"])


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    """Nested multiparts with boundaries that are prefixes of each other, repeated,
    left unclosed, and lines that start with ``--`` but are no boundary."""
    lines = [b"MIME-Version: 1.0"]
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.integers(0, 5))
        boundary = draw(BOUNDARIES)
        if kind == 0:
            lines += [b'Content-Type: multipart/mixed; boundary="' + boundary + b'"', b""]
        elif kind == 1:
            lines.append(b"--" + boundary)
        elif kind == 2:
            lines.append(b"--" + boundary + b"--")
        elif kind == 3:
            lines.append(b"--" + draw(st.binary(max_size=4)).replace(b"\n", b""))
        elif kind == 4:
            lines.append(b"")
        else:
            lines.append(b"text " + boundary)
    return b"\r\n".join(lines) + b"\r\n"


@given(raw=hostile(), max_depth=st.integers(1, 60))
def test_deep_stack_matching_agrees_with_compiled(raw: bytes, max_depth: int) -> None:
    compiled_depth = mime._COMPILED_DEPTH
    try:
        mime._COMPILED_DEPTH = 10_000
        compiled = mime.parse_mime(raw, max_depth=max_depth)
        mime._COMPILED_DEPTH = 0
        matched = mime.parse_mime(raw, max_depth=max_depth)
    finally:
        mime._COMPILED_DEPTH = compiled_depth
    assert shape(matched.root) == shape(compiled.root)
    assert matched.defects == compiled.defects


@pytest.mark.parametrize("depth", [9, 30])
def test_deep_and_shallow_agree_on_a_stair(depth: int) -> None:
    raw = stairs(200, depth)
    compiled_depth = mime._COMPILED_DEPTH
    try:
        mime._COMPILED_DEPTH = 10_000
        compiled = mime.parse_mime(raw)
        mime._COMPILED_DEPTH = 0
        matched = mime.parse_mime(raw)
    finally:
        mime._COMPILED_DEPTH = compiled_depth
    assert shape(matched.root) == shape(compiled.root)
