"""Generated corpus messages: too big (or too regular) to keep as files.

Each generator is deterministic so the golden answers recorded from Dovecot stay valid.
"""

from __future__ import annotations

from collections.abc import Callable


def many_parts(count: int = 10_000) -> bytes:
    """A multipart/mixed with ``count`` tiny text/plain parts."""
    part = b"--p\r\nContent-Type: text/plain\r\n\r\npart\r\n"
    head = (
        b"From: many@example.com\r\nSubject: many parts\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="p"\r\n\r\n'
    )
    return head + part * count + b"--p--\r\n"


def deep_nesting(depth: int = 1_000) -> bytes:
    """``depth`` multiparts nested inside one another, a text part at the bottom."""
    head = b"From: deep@example.com\r\nSubject: deep nesting\r\nMIME-Version: 1.0\r\n"
    opening = [
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(depth)
    ]
    closing = [b"\r\n--b%d--\r\n" % i for i in reversed(range(depth))]
    return head + b"".join(opening) + b"Content-Type: text/plain\r\n\r\nbottom" + b"".join(closing)


def long_line(size: int = 5 * 1024 * 1024) -> bytes:
    """A text/plain message whose body is one line of ``size`` octets."""
    head = b"From: long@example.com\r\nSubject: one long line\r\nContent-Type: text/plain\r\n\r\n"
    return head + b"x" * size + b"\r\n"


def deep_rfc822(depth: int = 200) -> bytes:
    """message/rfc822 parts nested ``depth`` deep."""
    out = b"From: bottom@example.com\r\nSubject: bottom\r\n\r\nbottom\r\n"
    for i in range(depth):
        out = b"From: level%d@example.com\r\nContent-Type: message/rfc822\r\n\r\n" % i + out
    return out


GENERATED: dict[str, Callable[[], bytes]] = {
    "gen-many-parts": many_parts,
    "gen-deep-nesting": deep_nesting,
    "gen-long-line": long_line,
    "gen-deep-rfc822": deep_rfc822,
}
