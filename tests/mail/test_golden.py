"""Our ENVELOPE/BODY/BODYSTRUCTURE and BODY[section] answers against Dovecot's.

The golden files were recorded from Dovecot 2.3 by ``make_golden.py`` (see there); the test
needs no Dovecot. Where we differ from Dovecot on purpose, ``DELIBERATE`` says why and the
test checks our own answer instead.
"""

from __future__ import annotations

import re

import pytest

from mailkeep.mail.message import ParsedMessage, parse, to_crlf
from mailkeep.mail.structure import (
    decode,
    decode_transfer,
    find_part,
    header_fields,
    section_range,
)

from .corpus import corpus_message, corpus_names, golden, golden_bytes, same_as_golden

# Dovecot refuses to store a zero-octet message, so there is nothing to compare with.
COMPARED = [n for n in corpus_names() if "append" not in golden(n)]


def _parsed_for_dovecot(name: str) -> tuple[bytes, ParsedMessage]:
    """Dovecot stores bare-LF messages as they are but serves them with CRLF and counts
    sizes that way; we serve the stored octets. The comparison therefore runs on the
    CRLF form (what the store keeps if it normalises with ``to_crlf``)."""
    raw = to_crlf(corpus_message(name))
    return raw, parse(raw, max_depth=100)


# Where we differ from Dovecot on purpose: (message, item) -> (Dovecot's text, ours).
DELIBERATE = {
    # A NUL in a header: Dovecot cuts the address at the NUL (C strings) but shows U+FFFD in
    # the subject; we replace NUL by U+FFFD everywhere and keep the rest of the address.
    ("nul-bytes", "envelope"): (b'"a" "exa"', b'"a" {14}\r\nexa\xef\xbf\xbdmple.com'),
    # A base64-encoded message/rfc822: Dovecot parses the base64 text as a message header
    # that runs into the CRLF before the boundary (62 octets, 1 line); that CRLF belongs to
    # the boundary (RFC 2046 5.1.1), so the part has 60 octets and 0 lines for us.
    ("rfc822-base64", "body"): (b'"base64" 62 ', b'"base64" 60 '),
    ("rfc822-base64", "bodystructure"): (b'"base64" 62 ', b'"base64" 60 '),
}


@pytest.mark.parametrize("name", COMPARED)
@pytest.mark.parametrize("item", ["envelope", "body", "bodystructure"])
def test_fetch_items_match_dovecot(name: str, item: str) -> None:
    _, parsed = _parsed_for_dovecot(name)
    ours = getattr(parsed, item)
    recorded = golden(name)[item]
    if (name, item) in DELIBERATE:
        theirs, mine = DELIBERATE[name, item]
        ours = ours.replace(mine, theirs)
        if name == "rfc822-base64":
            ours = ours.replace(b"0 0 NIL NIL NIL NIL) 0 NIL", b"0 0 NIL NIL NIL NIL) 1 NIL", 1)
            ours = ours.replace(b'"7bit" 0 0) 0)("message"', b'"7bit" 0 0) 1)("message"', 1)
    assert same_as_golden(ours, recorded), ours[:3000]


def _strip_literal(answer: bytes) -> bytes:
    m = re.match(rb"\{(\d+)\}\r\n", answer)
    if m:
        return answer[m.end() :]
    if answer == b"NIL":
        return b""
    assert answer[:1] == answer[-1:] == b'"', answer
    return answer[1:-1]


def _our_section(raw: bytes, parsed: ParsedMessage, section: str) -> bytes:
    root = decode(parsed.structure)
    spec, _, names = section.partition(" (")
    parts = spec.split(".")
    path: list[int] = []
    while parts and parts[0].isdigit():
        path.append(int(parts.pop(0)))
    kind = ".".join(parts)
    fields = kind.startswith("HEADER.FIELDS")
    span = section_range(root, tuple(path), "HEADER" if fields else kind)
    if span is None:
        return b""  # Dovecot answers a missing section with an empty string
    data = raw[span[0] : span[1]]
    if fields:
        data = header_fields(data, names.rstrip(")").split(), kind.endswith(".NOT"))
    return data


def _dovecot_view(name: str, section: str, ours: bytes, raw: bytes, parsed: ParsedMessage) -> bytes:
    """What Dovecot answers where we differ on purpose, derived from our own answer.

    * BODY[n.1] (and n.1.MIME ...) of a part that is neither multipart nor message/rfc822:
      Dovecot answers as for BODY[n]; RFC 9051 6.4.5 gives such a part no part 1, so we
      answer "no such section" (None; Dovecot's empty string in this comparison).
    * HEADER.FIELDS of a header with no blank line after it (a message that ends inside its
      header, or the empty message of an empty message/rfc822 part): Dovecot appends CRLF;
      RFC 9051 6.4.5 says the blank line is included "except
      in the case of a message which has no body and no blank line", so we do not.
    * NUL octets: Dovecot stores them as 0x80; we keep the octets we were given (the IMAP
      layer must send such content as literal8 or replace NUL itself).
    * A lone CR at the very end of a message: Dovecot drops it when storing; we keep it.
    """
    spec, _, _ = section.partition(" (")
    parts = spec.split(".")
    numbers = [p for p in parts if p.isdigit()]
    if not ours and len(numbers) >= 2 and numbers[-1] == "1":
        shorter = [*numbers[:-1], *parts[len(numbers) :]]
        ours = _our_section(raw, parsed, ".".join(shorter))
    if name == "rfc822-base64" and section == "1":
        ours += b"\r\n"  # see DELIBERATE
    if name == "rfc822-base64" and section in ("1.HEADER", "1.1.MIME"):
        ours = _our_section(raw, parsed, "1")  # Dovecot took the base64 text as a header
    if name == "cr-only" and ours.endswith(b"\r"):
        ours = ours[:-1]
    blank_line_kept = ours in (b"\r\n", b"\n") or ours.endswith((b"\n\r\n", b"\n\n"))
    if spec.endswith("HEADER.FIELDS") and not blank_line_kept:
        ours += b"\r\n"
    return ours.replace(b"\x00", b"\x80")


# gen-deep-nesting's boundaries are prefixes of each other (b1, b10, b100...); its
# BODYSTRUCTURE matches Dovecot's, but in its sections Dovecot keeps one more CRLF at the end
# of a multipart cut short by an enclosing boundary. Not worth emulating.
SECTIONS_COMPARED = [n for n in COMPARED if n != "gen-deep-nesting"]


@pytest.mark.parametrize("name", SECTIONS_COMPARED)
def test_sections_match_dovecot(name: str) -> None:
    raw, parsed = _parsed_for_dovecot(name)
    for section, recorded in golden(name)["sections"].items():
        if recorded.startswith("ERROR"):
            continue
        ours = _our_section(raw, parsed, section)
        if recorded.startswith("sha256:"):
            assert same_as_golden(b"{%d}\r\n" % len(ours) + ours, recorded), section
            continue
        theirs = _strip_literal(golden_bytes(recorded))
        if ours != theirs:
            assert _dovecot_view(name, section, ours, raw, parsed) == theirs, section


# Where Dovecot's BINARY answer is not what the RFC asks for, we check our own instead.
DOVECOT_BINARY_QUIRKS = {
    # Dovecot refuses to decode this valid quoted-printable ("[PARSE] Invalid data").
    "alternative": "refused",
    # Once any part has an unknown (or empty) encoding, Dovecot answers UNKNOWN-CTE for
    # every part of the message.
    "bad-content-type": "refused",
    "bad-encodings": "refused",
    # Dovecot reports 5094 for a base64 part that decodes to the 5120 octets it encodes.
    "mixed-attach": "size",
}


@pytest.mark.parametrize("name", COMPARED)
def test_binary_sizes_match_dovecot(name: str) -> None:
    raw, parsed = _parsed_for_dovecot(name)
    root = decode(parsed.structure)
    for section, recorded in golden(name)["binary_size"].items():
        path = tuple(int(n) for n in section.split("."))
        part = find_part(root, path)
        span = section_range(root, path, "")
        if part is None or span is None or part.children or part.type == "message":
            continue  # Dovecot's sizes for missing sections and containers are artefacts
        decoded = decode_transfer(raw[span[0] : span[1]], part.encoding)
        quirk = DOVECOT_BINARY_QUIRKS.get(name)
        if recorded.startswith("ERROR"):
            if quirk == "refused" and part.encoding in ("7bit", "quoted-printable", "base64"):
                assert decoded is not None, section
            else:
                assert decoded is None, section
        elif quirk == "size" and section == "2":
            assert decoded == bytes(range(256)) * 20
        else:
            assert decoded is not None, section
            assert len(decoded) == int(recorded), section


def test_binary_of_mixed_attach_image_is_the_png() -> None:
    raw = corpus_message("mixed-attach")
    root = decode(parse(raw).structure)
    part = find_part(root, (3,))
    span = section_range(root, (3,), "")
    assert part is not None
    assert span is not None
    decoded = decode_transfer(raw[span[0] : span[1]], part.encoding)
    assert decoded is not None
    assert decoded.startswith(b"\x89PNG\r\n")
