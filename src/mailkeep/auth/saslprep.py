"""SASLprep (RFC 4013), the stringprep profile for user names and passwords.

Used by PLAIN (RFC 4616 section 5), SCRAM (RFC 5802 section 2.2, "Normalize") and
by password hashing, so that a password typed as "I\\u2168" and "IX" (NFKC-equal) verify
the same way over every mechanism. Python's ``stringprep`` module supplies the
RFC 3454 tables (Unicode 3.2), so normalisation uses the Unicode 3.2 database too.
"""

from __future__ import annotations

import stringprep
import unicodedata

_UCD = unicodedata.ucd_3_2_0

# RFC 4013 section 2.3: prohibited output. C.1.2 (non-ASCII spaces) is mapped to SPACE
# in step 2.1 before this check, so it never reaches it.
_PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
)


class SaslprepError(ValueError):
    """The string contains a character SASLprep prohibits."""


def saslprep(text: str, *, allow_unassigned: bool = False) -> str:
    """Prepare ``text`` per RFC 4013; raises SaslprepError for prohibited input.

    ``allow_unassigned`` selects "query" semantics (RFC 3454 section 7): unassigned code
    points pass through. Stored strings (passwords being set) use the default, False.
    """
    if text.isascii() and all(0x20 <= ord(c) < 0x7F for c in text):
        return text  # fast path: printable ASCII is unchanged by every step
    # 2.1 mapping: non-ASCII space to SPACE; 2.2: "commonly mapped to nothing" removed.
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c)
    )
    # 2.2 normalisation: Unicode form KC.
    normal = _UCD.normalize("NFKC", mapped)
    for c in normal:
        if any(table(c) for table in _PROHIBITED):
            raise SaslprepError(f"prohibited character U+{ord(c):04X}")
        if not allow_unassigned and stringprep.in_table_a1(c):
            raise SaslprepError(f"unassigned code point U+{ord(c):04X}")
    # 2.4 bidirectional characters (RFC 3454 section 6).
    rand_al = [stringprep.in_table_d1(c) for c in normal]
    if any(rand_al):
        if any(stringprep.in_table_d2(c) for c in normal):
            raise SaslprepError("mixes right-to-left and left-to-right characters")
        if not (rand_al[0] and rand_al[-1]):
            raise SaslprepError("right-to-left string must start and end with RandALCat")
    return normal


def prepare_password(password: str) -> str:
    """SASLprep a password, or keep it as it is when SASLprep refuses it.

    Refusing such a password would lock its owner out for no security gain; the same
    leniency is what PostgreSQL's SCRAM does. Applied identically when hashing and when
    verifying, so the result is consistent across PLAIN, LOGIN and SCRAM.
    """
    try:
        return saslprep(password, allow_unassigned=True)
    except SaslprepError:
        return password
