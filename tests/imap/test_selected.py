"""The selected-mailbox view on its own: sets to spans, absorbing changes in and out of
order, what announcing reports, and sequence numbers after expunges."""

from __future__ import annotations

import bisect

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailkeep.imap import sequence
from mailkeep.imap.selected import SelectedMailbox, uid_array
from mailkeep.imap.sequence import SequenceSetError
from mailkeep.store.api import Changes, Mailbox
from mailkeep.store.changes import ChangeSet, MessageState


def view(uids: list[int], modseq: int = 10, uidnext: int | None = None) -> SelectedMailbox:
    mailbox = Mailbox(1, 1, "INBOX", 77, uidnext or (max(uids, default=0) + 1), modseq, None)
    return SelectedMailbox(mailbox, uids, readonly=False)


def state(uid: int, modseq: int, flags: int = 0) -> MessageState:
    return MessageState(uid, modseq, flags, ())


def test_spans_for_sequence_and_uid_sets() -> None:
    v = view([3, 5, 8, 13, 21])
    assert v.spans(sequence.parse(b"2:4"), False, None) == [(1, 4)]
    assert v.spans(sequence.parse(b"*"), False, None) == [(4, 5)]
    assert v.spans(sequence.parse(b"9:*"), False, None) == [(4, 5)]
    assert v.spans(sequence.parse(b"5:14"), True, None) == [(1, 4)]
    assert v.spans(sequence.parse(b"22:*"), True, None) == [(4, 5)]
    assert v.spans(sequence.parse(b"1,2,4"), True, None) == []
    assert v.spans(sequence.parse(b"$"), True, [5, 13, 99]) == [(1, 2), (3, 4)]
    with pytest.raises(SequenceSetError):
        v.spans(sequence.parse(b"6"), False, None)
    assert [(i, list(b)) for i, b in v.batches([(0, 5)], 2)] == [
        (0, [3, 5]),
        (2, [8, 13]),
        (4, [21]),
    ]


def test_absorb_in_order_and_announce() -> None:
    v = view([1, 2, 3, 4], modseq=10)
    assert v.absorb(ChangeSet(1, 1, 10, 11, appended=(state(5, 11),), uidnext=6))
    assert v.absorb(ChangeSet(1, 1, 11, 12, changed=(state(2, 12, 1),)))
    assert v.absorb(ChangeSet(1, 1, 12, 13, expunged=(1, 3)))
    assert v.absorb(ChangeSet(1, 1, 13, 14, appended=(state(6, 14),), uidnext=7))
    assert v.absorb(ChangeSet(1, 1, 14, 15, expunged=(6,)))  # never announced: silent
    assert v.absorb(ChangeSet(1, 1, 9, 10))  # already seen
    assert not v.absorb(ChangeSet(1, 1, 16, 17))  # a gap: catch up
    # During FETCH/STORE/SEARCH: no expunge yet, the numbers stay.
    held = v.announce(allow_expunge=False)
    assert held.expunged == []
    assert held.flags == [(2, state(2, 12, 1))]
    assert held.exists == 5
    assert list(v.uids) == [1, 2, 3, 4, 5]
    assert v.is_expunged(3)
    done = v.announce(allow_expunge=True)
    assert done.expunged == [1, 2]  # UIDs 1 and 3: "lower to higher" numbering
    assert done.expunged_uids == [1, 3]
    assert list(v.uids) == [2, 4, 5]
    assert v.modseq == 15


def test_catch_up_from_the_log() -> None:
    v = view([1, 2, 3], modseq=5)
    changes = Changes(9, 6, (state(2, 7, 4), state(4, 8), state(5, 9)), (1,), True)
    v.absorb_changes(changes)
    news = v.announce(allow_expunge=True)
    assert news.expunged == [1]
    assert news.flags == [(1, state(2, 7, 4))]
    assert news.exists == 4
    assert list(v.uids) == [2, 3, 4, 5]
    v.absorb_existing([3, 5, 6])
    news = v.announce(allow_expunge=True)
    assert news.expunged == [1, 2]
    assert list(v.uids) == [3, 5, 6]


def test_reported_flags_are_not_announced_again() -> None:
    v = view([1, 2], modseq=3)
    v.absorb(ChangeSet(1, 1, 3, 4, changed=(state(1, 4, 1),)))
    v.absorb(ChangeSet(1, 1, 4, 5, changed=(state(2, 5, 1),)))
    v.reported(1, 4)
    v.reported(2, 4)  # older than the pending change: still announced
    assert v.announce(allow_expunge=True).flags == [(2, state(2, 5, 1))]


def test_many_expunges_at_once() -> None:
    uids = list(range(1, 1001))
    v = view(uids)
    gone = tuple(range(2, 1001, 3))
    v.absorb(ChangeSet(1, 1, 10, 11, expunged=gone))
    news = v.announce(allow_expunge=True)
    assert news.expunged_uids == list(gone)
    assert list(v.uids) == [u for u in uids if u not in set(gone)]


@given(
    st.sets(st.integers(1, 400), max_size=200),
    st.sets(st.integers(1, 450), max_size=200),
)
def test_uids_to_seqs_matches_bisection(in_view: set[int], found: set[int]) -> None:
    v = view(sorted(in_view))
    uids = sorted(found)
    expected = [
        bisect.bisect_left(v.uids, u) + 1
        for u in uids
        if bisect.bisect_left(v.uids, u) < len(v.uids)
        and v.uids[bisect.bisect_left(v.uids, u)] == u
    ]
    assert v.uids_to_seqs(uids) == expected


def test_recent_ranges() -> None:
    v = view([1, 2, 3, 4, 5])
    v.add_recent(2, 3)
    v.add_recent(4, 4)
    v.add_recent(9, 8)
    assert v.recent == [(2, 4)]
    assert v.recent_count() == 3
    assert v.is_recent(3)
    assert not v.is_recent(5)


def test_sessions_making_the_same_change_share_one_array() -> None:
    mailbox = Mailbox(1, 1, "INBOX", 77, 5, 10, None)
    base = uid_array([1, 2, 3, 4])
    views = [SelectedMailbox(mailbox, base, readonly=False) for _ in range(3)]
    for v in views:
        assert v.absorb(ChangeSet(1, 1, 10, 11, appended=(state(5, 11),), uidnext=6))
        v.announce(allow_expunge=True)
    assert list(base) == [1, 2, 3, 4]  # never changed in place
    assert list(views[0].uids) == [1, 2, 3, 4, 5]
    assert all(v.uids is views[0].uids for v in views)
    # A session that made another change has its own array; the others still share.
    assert views[2].absorb(ChangeSet(1, 1, 11, 12, expunged=(2,)))
    views[2].announce(allow_expunge=True)
    assert list(views[2].uids) == [1, 3, 4, 5]
    assert list(views[0].uids) == [1, 2, 3, 4, 5]
    for v in views[:2]:
        assert v.absorb(ChangeSet(1, 1, 11, 12, expunged=(2, 4)))
        v.announce(allow_expunge=True)
    assert list(views[0].uids) == [1, 3, 5]
    assert views[1].uids is views[0].uids
