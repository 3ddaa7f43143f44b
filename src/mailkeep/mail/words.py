"""The whole words of a message's text, as a PostgreSQL store indexes them.

A PostgreSQL store keeps the distinct words of each message's casefolded header and
body text as a ``tsvector`` that narrows SEARCH BODY/TEXT before its substring match
(``store/postgres.py``). Finding them is a regular expression over all the text: a
parse worker does it beside the parse when asked (``ParsedMessage.words``), so that the
server's event loop does not.
"""

from __future__ import annotations

import re

WORD = re.compile(r"\w+")
MAX_LEXEME = 2046
"""Octets of the longest word a tsvector holds; longer ones are left out."""
MAX_WORDS_BYTES = 900_000
"""A tsvector holds at most 1 MB; texts with more distinct words are left unindexed."""


def fold(text: str) -> str:
    """Text as stored and searched: casefolded, without NUL (PostgreSQL text has none)."""
    return text.casefold().replace("\x00", "")


def index_words(folded: str) -> list[str] | None:
    """The distinct whole words of already folded text, in no order (array_to_tsvector
    sorts them), or None when too many to index. Octets are counted only where
    characters might not tell (4 octets at most each): encoding every word was half the
    time this took."""
    words = set(WORD.findall(folded))
    words.difference_update(
        [w for w in words if len(w) > MAX_LEXEME // 4 and len(w.encode()) > MAX_LEXEME]
    )
    if (
        sum(map(len, words)) * 4 + 8 * len(words) > MAX_WORDS_BYTES
        and sum(len(w.encode()) + 8 for w in words) > MAX_WORDS_BYTES
    ):
        return None
    return list(words)


def fold_text(header_text: str, body_text: str) -> tuple[str, str, list[str] | None]:
    """A message's header and body text as stored (folded), and their whole words
    (``index_words``)."""
    headers, body = fold(header_text), fold(body_text)
    return headers, body, index_words(headers + "\n" + body)
