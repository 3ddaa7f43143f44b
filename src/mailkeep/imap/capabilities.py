"""The capability list, in one place: what CAPABILITY, the greeting and LOGIN's OK show.

Each entry says when it is advertised (``when``); an extension adds one line here and
its handlers under ``handlers/``. ``ENABLE`` accepts exactly the names in ``ENABLEABLE``
(RFC 5161 3.1: unknown or not-enableable names are ignored, not an error).

Decisions:

* Before login we show everything (so clients can plan) plus STARTTLS, the ``AUTH=``
  mechanisms allowed on this connection, and LOGINDISABLED where plain-text passwords
  are refused (RFC 9051 6.2.3, 7.2.2); after login those three disappear.
* ``IMAP4rev1`` and ``IMAP4rev2`` are both advertised: a session speaks IMAP4rev1 until
  the client sends ``ENABLE IMAP4rev2`` (RFC 9051 appendix E).
* ``LITERAL+`` (RFC 7888), not ``LITERAL-``: over-limit non-synchronising literals are
  skipped by the wire layer without being buffered, so the larger form costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Context:
    """What decides the list for one connection at one moment."""

    authenticated: bool
    can_starttls: bool
    plaintext_ok: bool
    mechanisms: tuple[str, ...]
    appendlimit: int | None


Names = Callable[[Context], Iterable[str]]


def _always(name: str) -> Names:
    return lambda ctx: (name,)


def _before_login(name: str, condition: Callable[[Context], bool]) -> Names:
    return lambda ctx: (name,) if not ctx.authenticated and condition(ctx) else ()


def _mechanisms(ctx: Context) -> Iterable[str]:
    return () if ctx.authenticated else tuple(f"AUTH={m}" for m in ctx.mechanisms)


def _appendlimit(ctx: Context) -> Iterable[str]:
    # RFC 7889 2: APPENDLIMIT=n when one limit applies to every mailbox.
    return ("APPENDLIMIT" if ctx.appendlimit is None else f"APPENDLIMIT={ctx.appendlimit}",)


CAPABILITIES: list[Names] = [
    _always("IMAP4rev1"),
    _always("IMAP4rev2"),
    _before_login("STARTTLS", lambda ctx: ctx.can_starttls),
    _before_login("LOGINDISABLED", lambda ctx: not ctx.plaintext_ok),
    _mechanisms,
    _always("SASL-IR"),  # RFC 4959
    _always("LITERAL+"),  # RFC 7888
    _always("ENABLE"),  # RFC 5161
    _always("ID"),  # RFC 2971
    _always("IDLE"),  # RFC 2177
    _always("NAMESPACE"),  # RFC 2342
    _always("UNSELECT"),  # RFC 3691
    _always("UIDPLUS"),  # RFC 4315
    _always("MOVE"),  # RFC 6851
    _always("CHILDREN"),  # RFC 3348
    _always("LIST-EXTENDED"),  # RFC 5258
    _always("LIST-STATUS"),  # RFC 5819
    _always("SPECIAL-USE"),  # RFC 6154
    _always("CREATE-SPECIAL-USE"),  # RFC 6154
    _always("ESEARCH"),  # RFC 4731
    _always("SEARCHRES"),  # RFC 5182
    _always("WITHIN"),  # RFC 5032
    _always("STATUS=SIZE"),  # RFC 8438
    _appendlimit,
    _always("MULTIAPPEND"),  # RFC 3502
    _always("BINARY"),  # RFC 3516
    _always("UTF8=ACCEPT"),  # RFC 6855
    _always("CONDSTORE"),  # RFC 7162
    _always("QRESYNC"),  # RFC 7162
    _always("OBJECTID"),  # RFC 8474
    _always("SAVEDATE"),  # RFC 8514
    _always("PREVIEW"),  # RFC 8970
    _always("PARTIAL"),  # RFC 9394
    _always("SORT"),  # RFC 5256
    _always("SORT=DISPLAY"),  # RFC 5957
    _always("ESORT"),  # RFC 5267
    _always("THREAD=ORDEREDSUBJECT"),  # RFC 5256
    _always("THREAD=REFERENCES"),  # RFC 5256
    _always("REPLACE"),  # RFC 8508
    _always("UNAUTHENTICATE"),  # RFC 8437
    _always("COMPRESS=DEFLATE"),  # RFC 4978
    _always("INPROGRESS"),  # RFC 9585
    _always("ACL"),  # RFC 4314
    _always("RIGHTS=texk"),  # RFC 4314 5.1.1
    _always("LIST-MYRIGHTS"),  # RFC 8440
    _always("QUOTA"),  # RFC 9208
    _always("QUOTA=RES-STORAGE"),  # RFC 9208 5.1
    _always("QUOTA=RES-MESSAGE"),  # RFC 9208 5.2
    _always("QUOTASET"),  # RFC 9208 4.1.3 (admins only)
    _always("METADATA"),  # RFC 5464
    _always("METADATA-SERVER"),  # RFC 5464
    _always("NOTIFY"),  # RFC 5465
]
"""In the order shown; an extension appends its entry."""


ENABLEABLE: frozenset[str] = frozenset({"IMAP4REV2", "UTF8=ACCEPT", "CONDSTORE", "QRESYNC"})
"""Upper-cased names ENABLE turns on (``ENABLED`` echoes the canonical spelling)."""

CANONICAL: dict[str, str] = {
    "IMAP4REV2": "IMAP4rev2",
    "UTF8=ACCEPT": "UTF8=ACCEPT",
    "CONDSTORE": "CONDSTORE",
    "QRESYNC": "QRESYNC",
}


def capabilities(ctx: Context) -> list[str]:
    return [name for entry in CAPABILITIES for name in entry(ctx)]
