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


def _trailer_start(text: str, start: int, end: int) -> int:
    """Where trailing white space and "(fwd)" begin (a loop, not a regex: linear)."""
    while end > start:
        if text[end - 1] in " \t":
            end -= 1
        elif end - 5 >= start and text[end - 5 : end].lower() == "(fwd)":
            end -= 5
        else:
            break
    return end


def base_subject(subject: str) -> str:
    # Indices rather than slices, so that hostile subjects ("[a][a]...", "(fwd)(fwd)...",
    # "[fwd: [fwd: ...") cost linear time.
    text = _WSP_RUN.sub(" ", subject)
    start, end = 0, len(text)
    while True:
        end = _trailer_start(text, start, end)  # step 2
        while True:  # steps 3-5
            before = start
            m = _LEADER.match(text, start, end)
            if m is not None:
                start = m.end()
            # Step 4, for every leading blob at once: step 3 just failed at each of their
            # boundaries, so removing them one by one (and retrying) finds nothing new.
            while (m := _LEADING_BLOB.match(text, start, end)) is not None and m.end() < end:
                start = m.end()
            if start == before:
                break
        # step 6
        if (
            end - start >= 6
            and text[start : start + 5].lower() == _FWD_HEAD
            and text[end - 1] == "]"
        ):
            start += 5
            end -= 1
            continue
        return text[start:end].strip(" ")
