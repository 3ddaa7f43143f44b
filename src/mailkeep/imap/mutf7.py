"""Modified UTF-7 mailbox names (RFC 3501 section 5.1.3), used with IMAP4rev1 clients.

Printable US-ASCII except ``&`` stands for itself; ``&`` is ``&-``; any other run of
characters is ``&`` + base64 of its UTF-16BE form with ``,`` for ``/`` and no padding + ``-``.

``decode`` is strict and accepts only the canonical encoding that ``encode`` produces
(the RFC says printable characters MUST represent themselves, so ``&AGE-`` for ``a`` is
rejected, as are adjacent shifted runs, bad padding bits and lone surrogates): one name,
one spelling, so two clients cannot reach one mailbox under two names.
"""

from __future__ import annotations

import binascii
import re


class MUTF7Error(ValueError):
    """A mailbox name that is not valid modified UTF-7; ``str()`` says what is wrong."""


_DIRECT = re.compile(r"[\x20-\x25\x27-\x7e]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SHIFTED = re.compile(rb"&([A-Za-z0-9+,]*)(-?)")


def encode(name: str) -> bytes:
    """``name`` in modified UTF-7."""
    out: list[bytes] = []
    pos = 0
    while pos < len(name):
        match = _DIRECT.match(name, pos)
        if match:
            out.append(match.group().encode("ascii"))
            pos = match.end()
            continue
        if name[pos] == "&":
            out.append(b"&-")
            pos += 1
            continue
        end = pos
        while end < len(name) and not ("\x20" <= name[end] <= "\x7e"):
            end += 1
        utf16 = name[pos:end].encode("utf-16-be", "surrogatepass")
        b64 = binascii.b2a_base64(utf16, newline=False).rstrip(b"=").replace(b"/", b",")
        out.append(b"&" + b64 + b"-")
        pos = end
    return b"".join(out)


def decode(raw: bytes) -> str:
    """The name spelled by ``raw`` in modified UTF-7; ``MUTF7Error`` if malformed."""
    if b"&" not in raw:
        if not _printable(raw):
            raise MUTF7Error(_bad_octet(raw))
        return raw.decode("ascii")
    out: list[str] = []
    pos = 0
    previous_shift_end = -1
    while pos < len(raw):
        amp = raw.find(b"&", pos)
        direct = raw[pos:] if amp < 0 else raw[pos:amp]
        if not _printable(direct):
            raise MUTF7Error(_bad_octet(direct))
        out.append(direct.decode("ascii"))
        if amp < 0:
            break
        match = _SHIFTED.match(raw, amp)
        assert match is not None  # the group may match empty
        b64, dash = match.groups()
        if not dash:
            raise MUTF7Error(f"unterminated '&' shift at offset {amp} (expected base64 then '-')")
        if not b64:
            out.append("&")
        else:
            if amp == previous_shift_end:
                raise MUTF7Error(f"adjacent encoded runs at offset {amp} must be merged")
            out.append(_decode_run(b64, amp))
            previous_shift_end = match.end()
        pos = match.end()
    return "".join(out)


def _printable(chunk: bytes) -> bool:
    return all(0x20 <= c <= 0x7E for c in chunk)


def _bad_octet(chunk: bytes) -> str:
    bad = next(c for c in chunk if not 0x20 <= c <= 0x7E)
    return f"octet 0x{bad:02x} is not allowed in a modified UTF-7 mailbox name"


def _decode_run(b64: bytes, offset: int) -> str:
    bits = len(b64) * 6
    if bits % 16 >= 6:
        raise MUTF7Error(f"encoded run at offset {offset} has a partial character")
    padded = b64.replace(b",", b"/") + b"=" * (-len(b64) % 4)
    try:
        data = binascii.a2b_base64(padded, strict_mode=True)
    except binascii.Error as exc:
        raise MUTF7Error(f"bad base64 at offset {offset}: {exc}") from None
    if binascii.b2a_base64(data, newline=False).rstrip(b"=") != padded.rstrip(b"="):
        raise MUTF7Error(f"encoded run at offset {offset} has non-zero padding bits")
    try:
        text = data.decode("utf-16-be")
    except UnicodeDecodeError:
        raise MUTF7Error(f"encoded run at offset {offset} has an unpaired surrogate") from None
    if any("\x20" <= ch <= "\x7e" for ch in text):
        raise MUTF7Error(
            f"encoded run at offset {offset} encodes printable ASCII, which must stand for itself"
        )
    return text


def decode_mailbox(raw: bytes, *, utf8: bool) -> str:
    """A mailbox name as sent by the client, decoded for this session.

    ``utf8`` is True once the client has ENABLEd IMAP4rev2 or UTF8=ACCEPT (RFC 9051 5.1,
    RFC 6855 3): names are then UTF-8; otherwise modified UTF-7. ``INBOX`` is matched
    case-insensitively and returned as ``INBOX`` (RFC 9051 5.1); only the name itself, not
    a prefix of it: ``inbox/x`` stays as sent. Raises ``MUTF7Error`` (a ``ValueError``)
    with the reason when the name is malformed.
    """
    if len(raw) == 5 and raw.upper() == b"INBOX":
        return "INBOX"
    if utf8:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MUTF7Error(f"mailbox name is not valid UTF-8 at offset {exc.start}") from None
    else:
        text = decode(raw)
    if _CONTROL.search(text):
        raise MUTF7Error("mailbox name contains a control character")
    return text


def encode_mailbox(name: str, *, utf8: bool) -> bytes:
    """A mailbox name for this session's responses (LIST, STATUS, ...)."""
    return name.encode("utf-8") if utf8 else encode(name)
