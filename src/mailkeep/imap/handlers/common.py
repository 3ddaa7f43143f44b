"""Helpers several handlers share: flag lists from the client, message sets of the
selected mailbox."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mailkeep.imap.handlers.base import bad
from mailkeep.imap.selected import SelectedMailbox, Spans
from mailkeep.imap.sequence import SequenceSet, SequenceSetError
from mailkeep.mail.flags import normalize_keywords, system_flag

if TYPE_CHECKING:
    from mailkeep.imap.session import Session


def client_flags(names: Iterable[str]) -> tuple[int, tuple[str, ...]]:
    """System flag bits and keywords from a client's flag list (APPEND, STORE).

    ``\\Recent`` cannot be set by a client (RFC 3501 2.3.2) and other ``\\`` names are
    not flags we keep: both are refused rather than silently dropped.
    """
    system = 0
    keywords: list[str] = []
    for name in names:
        flag = system_flag(name)
        if flag is not None:
            system |= flag
        elif name.startswith("\\"):
            raise bad(f"flag {name} cannot be set")
        else:
            keywords.append(name)
    return system, normalize_keywords(keywords)


def selected_mailbox(session: Session) -> SelectedMailbox:
    selected = session.selected
    assert selected is not None  # the command table only lets selected-state commands in
    return selected


def message_spans(session: Session, seqset: SequenceSet, uid: bool) -> Spans:
    """The selected messages a sequence or UID set names; BAD if it names a message
    number that does not exist (RFC 9051 9, ``seq-number``)."""
    try:
        return selected_mailbox(session).spans(seqset, uid, session.saved)
    except SequenceSetError as exc:
        raise bad(str(exc)) from None
