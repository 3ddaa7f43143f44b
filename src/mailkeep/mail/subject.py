"""RFC 5256 2.1 base subject, for SORT SUBJECT and THREAD ORDEREDSUBJECT/REFERENCES.

    subj-refwd  = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
    subj-blob   = "[" *BLOBCHAR "]" *WSP
    subj-leader = (*subj-blob subj-refwd) / WSP
    subj-trailer = "(fwd)" / WSP
    subj-fwd    = "[fwd:" subj-base "]"

The input is the decoded subject (step 1's charset conversion is done by the caller). The
result keeps its case; the comparator (i;ascii-casemap / i;unicode-casemap) ignores it.
"""

from __future__ import annotations

import re

_WSP_RUN = re.compile(r"[ \t\r\n]+")
_BLOB = r"\[[^\[\]]*\][ \t]*"
_LEADER = re.compile(r"(?:(?:" + _BLOB + r")*(?:re|fwd?)[ \t]*(?:" + _BLOB + r")?:|[ \t])+", re.I)
_LEADING_BLOB = re.compile(_BLOB)
_FWD_HEAD = "[fwd:"


def _strip_trailer(text: str) -> str:
    """Remove trailing white space and "(fwd)" (a loop, not a regex: no quadratic case)."""
    while True:
        text = text.rstrip(" \t")
        if text[-5:].lower() != "(fwd)":
            return text
        text = text[:-5]


def base_subject(subject: str) -> str:
    text = _WSP_RUN.sub(" ", subject)
    while True:
        text = _strip_trailer(text)  # step 2
        while True:  # steps 3-5
            before = text
            m = _LEADER.match(text)
            if m is not None:
                text = text[m.end() :]
            m = _LEADING_BLOB.match(text)
            if m is not None and text[m.end() :]:
                text = text[m.end() :]
            if text == before:
                break
        # step 6
        if text[:5].lower() == _FWD_HEAD and text.endswith("]"):
            text = text[5:-1]
            continue
        return text.strip(" ")
