"""Search text and preview from the text parts of a parsed message.

Only text/* parts are decoded (transfer encoding, then charset with U+FFFD for errors);
attachments of other types are never touched. Parts with Content-Disposition: attachment
still count when they are text (a .txt or .csv attachment is worth finding). HTML is
reduced to its visible text. The extracted text is capped (``TEXT_LIMIT`` characters per
message) so that one huge part cannot make delivery or the index slow.
"""

from __future__ import annotations

import html
import re

from mailkeep.mail.charsets import decode_text
from mailkeep.mail.mime import Entity
from mailkeep.mail.structure import decode_transfer

TEXT_LIMIT = 1_000_000
"""Characters of body text kept per message for full-text search."""
PREVIEW_LIMIT = 200
"""RFC 8970 3: a preview is at most 200 characters."""

# Elements whose content is not visible text, and where their content ends.
_INVISIBLE_OPEN = re.compile(rb"<(script|style|head|title)\b|<!--|<!\[CDATA\[", re.I)
_INVISIBLE_CLOSE = {b"<!--": b"-->", b"<![cdata[": b"]]>"}
# "[^<>]" rather than "[^>]": an unclosed "<" then costs a scan to the next "<" only,
# so hostile markup ("<<<<...") stays linear.
_BLOCK_TAG = re.compile(
    rb"<(?:br|p|div|tr|li|h[1-6]|table|blockquote|pre|hr)\b[^<>]*>"
    rb"|</(?:p|div|tr|li|h[1-6]|table|blockquote|pre)\s*>",
    re.I,
)
_TAG = re.compile(rb"<[^<>]*>")
_SPACES = re.compile(r"\s+")
_QUOTED_LINE = re.compile(r"^[ \t]*>.*$", re.M)


def _drop_invisible(markup: bytes) -> bytes:
    """Remove script/style/head/title elements, comments and CDATA, in one pass."""
    lowered = markup.lower()
    out: list[bytes] = []
    pos = 0
    while True:
        m = _INVISIBLE_OPEN.search(markup, pos)
        if m is None:
            out.append(markup[pos:])
            return b" ".join(out)
        out.append(markup[pos : m.start()])
        opener = m.group().lower()
        closer = _INVISIBLE_CLOSE.get(opener, b"</" + opener[1:])
        end = lowered.find(closer, m.end())
        if end < 0:
            return b" ".join(out)  # never closed: the rest is not text
        gt = lowered.find(b">", end) if closer.startswith(b"</") else end + len(closer) - 1
        pos = len(markup) if gt < 0 else gt + 1


def html_to_text(markup: bytes) -> bytes:
    """Visible text of an HTML document (entities still encoded; see :func:`_decode_part`)."""
    markup = _drop_invisible(markup)
    markup = _BLOCK_TAG.sub(b"\n", markup)
    return _TAG.sub(b"", markup)


def _text_parts(root: Entity) -> list[Entity]:
    out: list[Entity] = []
    stack = [root]
    while stack:
        entity = stack.pop()
        if entity.children:
            stack.extend(reversed(entity.children))
        elif entity.part.type == "text" and not entity.content.is_multipart:
            out.append(entity)
    return out


def _decode_part(raw: bytes, entity: Entity, budget: int) -> str:
    part = entity.part
    # Decoding ~4 octets per character at worst covers the budget; never more than that.
    end = min(part.body_end, part.body_start + budget * 4 + 4)
    data = raw[part.body_start : end]
    decoded = decode_transfer(data, part.encoding)
    if decoded is None:
        decoded = data
    is_html = part.subtype == "html"
    if is_html:
        decoded = html_to_text(decoded)
    text = decode_text(decoded, part.param("charset"))
    if is_html:
        text = html.unescape(text)
    return text[:budget]


def extract(raw: bytes, root: Entity) -> tuple[str, str]:
    """(body text for search, RFC 8970 preview)."""
    chunks: list[str] = []
    budget = TEXT_LIMIT
    preview = ""
    preview_done = False
    for entity in _text_parts(root):
        if budget <= 0:
            break
        text = _decode_part(raw, entity, budget)
        budget -= len(text)
        chunks.append(text)
        if not preview_done:
            preview = make_preview(text)
            preview_done = bool(preview)
    return "\n".join(chunks), preview


def make_preview(text: str) -> str:
    """Quoted lines dropped, white space collapsed, at most 200 characters (looking at
    no more than the first 10,000).

    Cleaning a prefix of the text gives a prefix of the cleaned text (up to one trailing
    space), so a growing prefix is cleaned until it yields more than 200 characters:
    usually the first 800 characters do, and delivery does not clean 10,000."""
    end = min(len(text), PREVIEW_LIMIT * 50)
    size = min(end, PREVIEW_LIMIT * 4)
    while True:
        sample = _QUOTED_LINE.sub(" ", text[:size])
        cleaned = _SPACES.sub(" ", sample).strip()
        if len(cleaned) > PREVIEW_LIMIT or size >= end:
            return cleaned[:PREVIEW_LIMIT]
        size = min(end, size * 4)
