"""The selected mailbox as one session sees it: sequence numbers, and the changes it has
not told its client about yet.

Invariants:

* ``uids`` is an ``array('q')`` of ascending UIDs: message ``n`` is ``uids[n - 1]``. No
  Python object per message: a million-message mailbox costs 8 MB here, and turning
  sequence sets into UIDs is slicing and bisecting.
* ``uids`` is never changed in place: sessions share it. The store hands every session
  that selects an unchanged mailbox the same array, and a change to the view makes a
  new one through ``_shared``, so that sessions making the same change (every session
  in IDLE told of the same new message) end up sharing again: ten thousand sessions on
  one mailbox of 5,000 messages hold one array, not 400 MB of copies.
* The view changes only when the session *announces*: expunges are applied when EXPUNGE
  responses are sent (never during FETCH, STORE or SEARCH by sequence number, RFC 9051
  7.5.1 / RFC 3501 7.4.1), new messages when EXISTS is sent. Until then a message expunged
  elsewhere keeps its sequence number (the store just no longer has it) and a new one has
  none.
* ``modseq`` is the mailbox HIGHESTMODSEQ this view has absorbed. A ``ChangeSet`` whose
  ``before`` equals it is absorbed directly; one that does not chain means we missed
  something (another node wrote) and the session catches up from the store's log
  (``absorb_changes``). The log is the truth; the hub is only a fast path.

Nothing here does I/O; the session feeds it and renders what ``announce`` returns
(learned from mox ``store/state.go`` and pymap ``selected.py``).
"""

from __future__ import annotations

import bisect
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from mailkeep.imap import sequence
from mailkeep.imap.sequence import SequenceSet, SequenceSetError
from mailkeep.mail.flags import SYSTEM_FLAG_NAMES
from mailkeep.store.api import Changes, Mailbox
from mailkeep.store.changes import ChangeSet, MessageState

Spans = list[tuple[int, int]]
"""Half-open index ranges ``[start, stop)`` into ``SelectedMailbox.uids``, ascending."""


def uid_array(uids: Iterable[int] = ()) -> array[int]:
    return array("q", uids)


_TRANSITIONS: OrderedDict[tuple[int, bytes, bytes], tuple[array[int], array[int]]] = OrderedDict()
_TRANSITIONS_KEPT = 8
_TRANSITIONS_OCTETS = 32 * 2**20
"""At most this many recent transitions, holding at most this many octets of arrays
beyond the newest (a million-message view is 8 MB)."""


def _shared(
    base: array[int], kind: bytes, change: array[int], make: Callable[[], array[int]]
) -> array[int]:
    """``make()``, the view ``base`` after ``change``, or the array an earlier session got
    for the same change of the same ``base``. Sessions woken by one commit make the same
    change one after another, so a few recent transitions are enough to remember (each
    entry keeps its ``base`` alive, so its id cannot be reused meanwhile)."""
    key = (id(base), kind, change.tobytes())
    found = _TRANSITIONS.get(key)
    if found is not None and found[0] is base:
        _TRANSITIONS.move_to_end(key)
        return found[1]
    result = make()
    _TRANSITIONS[key] = (base, result)
    held = sum(a.itemsize * (len(a) + len(b)) for a, b in _TRANSITIONS.values())
    while len(_TRANSITIONS) > 1 and (
        len(_TRANSITIONS) > _TRANSITIONS_KEPT or held > _TRANSITIONS_OCTETS
    ):
        _, (a, b) = _TRANSITIONS.popitem(last=False)
        held -= a.itemsize * (len(a) + len(b))
    return result


@dataclass
class Announcement:
    """What the client must be told, in the order to tell it."""

    expunged: list[int] = field(default_factory=list)
    """Sequence numbers for ``* n EXPUNGE``, each valid after the previous ones."""
    expunged_uids: list[int] = field(default_factory=list)
    flags: list[tuple[int, MessageState]] = field(default_factory=list)
    """(sequence number, new state) for ``* n FETCH (FLAGS ...)``."""
    exists: int | None = None
    """The new message count when messages arrived."""
    new_uids: Sequence[int] = ()


def _clamp(pair: tuple[int, int], count: int) -> tuple[int, int]:
    """The other end of a range with ``*``, capped at the message count."""
    low, high = pair
    if high == sequence.STAR:
        return min(low, count), high
    if low == sequence.STAR:
        return low, min(high, count)
    return pair


def mailbox_flags(keywords: Iterable[str]) -> list[str]:
    """A mailbox's FLAGS (RFC 9051 7.3.5): the system flags and the keywords in use."""
    return [*SYSTEM_FLAG_NAMES.values(), *keywords]


class SelectedMailbox:
    def __init__(
        self,
        mailbox: Mailbox,
        uids: Sequence[int],
        *,
        readonly: bool,
        recent: Iterable[tuple[int, int]] = (),
    ) -> None:
        self.id = mailbox.id
        self.account_id = mailbox.account_id
        """The owner: another account's for a shared mailbox."""
        self.name = mailbox.name
        """The owner's name for it (store name), kept current on RENAME."""
        self.uidvalidity = mailbox.uidvalidity
        self.readonly = readonly
        self.uids = uids if isinstance(uids, array) else uid_array(uids)
        self.uidnext = mailbox.uidnext
        self.modseq = mailbox.highestmodseq
        self.recent: list[tuple[int, int]] = [r for r in recent if r[0] <= r[1]]
        """UID ranges that are \\Recent for this session (RFC 3501 2.3.2)."""
        self._new = uid_array()
        self._expunged: set[int] = set()
        self._flags: dict[int, MessageState] = {}
        self.keywords: dict[str, str] = {}
        """The keywords the client was given in a FLAGS response (lower case → spelling).
        A FETCH may show only those (RFC 9051 7.3.5; imaptest reports "Keyword used
        without being in FLAGS"), so a new one is announced before the FETCH that uses it."""
        self.keywords_changed = False
        """A keyword was added since the last FLAGS response: send FLAGS again."""

    def note_keywords(self, keywords: Iterable[str]) -> None:
        """Remember keywords about to be shown; new ones make ``keywords_changed``."""
        for keyword in keywords:
            key = keyword.lower()
            if key not in self.keywords:
                self.keywords[key] = keyword
                self.keywords_changed = True

    # ------------------------------------------------------------------ lookups

    @property
    def count(self) -> int:
        return len(self.uids)

    @property
    def last_uid(self) -> int:
        """The largest UID the client knows (0 for an empty view)."""
        return self.uids[-1] if self.uids else 0

    def seq_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        if i < len(self.uids) and self.uids[i] == uid:
            return i + 1
        return None

    def is_expunged(self, uid: int) -> bool:
        """Expunged in the store but not yet announced."""
        return uid in self._expunged

    @property
    def has_pending_expunges(self) -> bool:
        return bool(self._expunged)

    def recent_count(self) -> int:
        total = 0
        for low, high in self.recent:
            total += bisect.bisect_right(self.uids, high) - bisect.bisect_left(self.uids, low)
        return total

    def is_recent(self, uid: int) -> bool:
        # A loop, not any() over a generator: FLAGS asks this once per message.
        for low, high in self.recent:  # noqa: SIM110
            if low <= uid <= high:
                return True
        return False

    def add_recent(self, low: int, high: int) -> None:
        if low > high:
            return
        if self.recent and self.recent[-1][1] + 1 >= low:
            self.recent[-1] = (self.recent[-1][0], max(high, self.recent[-1][1]))
        else:
            self.recent.append((low, high))

    # ------------------------------------------------------------------ sets → spans

    def sequence_spans(self, seqset: SequenceSet, saved: Sequence[int] | None) -> Spans:
        """Index spans of a sequence set (RFC 9051 9 ``sequence-set``). A number beyond
        the message count raises ``SequenceSetError`` (the command is answered BAD)."""
        if seqset.saved:
            return self._positions(self._saved(saved))
        # ``n:*`` with n beyond the last message means the last message, as a UID range
        # ``n:*`` includes the last UID (RFC 9051 9, seq-range): clients ask "anything
        # from n on" this way. Explicit numbers beyond the count stay an error.
        clamped = sequence.SequenceSet(tuple(_clamp(r, self.count) for r in seqset.ranges))
        ranges = sequence.resolve(clamped, self.count)
        if ranges and ranges[-1][1] > self.count:
            raise SequenceSetError(
                f"message {ranges[-1][1]} does not exist (the mailbox has {self.count})"
            )
        return [(low - 1, high) for low, high in ranges]

    def uid_spans(self, seqset: SequenceSet, saved: Sequence[int] | None) -> Spans:
        """Index spans of the messages a UID set names; UIDs without a message are
        ignored, ``*`` is the largest UID (RFC 9051 6.4.9)."""
        if seqset.saved:
            return self._positions(self._saved(saved))
        spans: Spans = []
        for low, high in sequence.resolve(seqset, self.last_uid):
            start = bisect.bisect_left(self.uids, low)
            stop = bisect.bisect_right(self.uids, high)
            if start < stop:
                if spans and spans[-1][1] >= start:
                    spans[-1] = (spans[-1][0], max(stop, spans[-1][1]))
                else:
                    spans.append((start, stop))
        return spans

    def spans(self, seqset: SequenceSet, uid: bool, saved: Sequence[int] | None) -> Spans:
        return self.uid_spans(seqset, saved) if uid else self.sequence_spans(seqset, saved)

    @staticmethod
    def _saved(saved: Sequence[int] | None) -> Sequence[int]:
        if saved is None:
            raise SequenceSetError("no search result was saved ('$' needs SEARCH RETURN (SAVE))")
        return saved

    def uid_positions(self, uids: Iterable[int]) -> Spans:
        """Index spans of those of ``uids`` (ascending) that are in the view."""
        return self._positions(uids)

    def _positions(self, uids: Iterable[int]) -> Spans:
        spans: Spans = []
        for uid in uids:
            i = bisect.bisect_left(self.uids, uid)
            if i < len(self.uids) and self.uids[i] == uid:
                if spans and spans[-1][1] == i:
                    spans[-1] = (spans[-1][0], i + 1)
                else:
                    spans.append((i, i + 1))
        return spans

    def batches(self, spans: Spans, size: int = 500) -> Iterator[tuple[int, array[int]]]:
        """(index of the first message, its UIDs) in slices of at most ``size``."""
        for start, stop in spans:
            for i in range(start, stop, size):
                yield i, self.uids[i : min(stop, i + size)]

    def span_uids(self, spans: Spans) -> array[int]:
        out = uid_array()
        for start, stop in spans:
            out.extend(self.uids[start:stop])
        return out

    @staticmethod
    def span_count(spans: Spans) -> int:
        return sum(stop - start for start, stop in spans)

    def uids_to_seqs(self, uids: Sequence[int]) -> list[int]:
        """Sequence numbers of those of ``uids`` (ascending) that are in the view.

        Runs of results that are also consecutive in the view (the common case: ALL,
        UNDELETED, a range) are matched by comparing slices, not one bisection per
        message, so a million results cost milliseconds, not a second of event loop.
        """
        found = uid_array(uids) if not isinstance(uids, array) else uids
        view = self.uids
        n, total = len(view), len(found)
        out: list[int] = []
        i = pos = 0
        while i < total:
            pos = bisect.bisect_left(view, found[i], pos)
            if pos >= n:
                break
            if view[pos] != found[i]:
                i += 1
                continue
            run = 1
            while run < total - i and view[pos : pos + run * 2] == found[i : i + run * 2]:
                run *= 2
            # The run is at least ``run`` long; find its exact end by halving.
            step = run // 2
            while step:
                if view[pos : pos + run + step] == found[i : i + run + step]:
                    run += step
                step //= 2
            run = min(run, total - i, n - pos)
            out.extend(range(pos + 1, pos + run + 1))
            i += run
            pos += run
        return out

    # ------------------------------------------------------------------ absorbing

    def absorb(self, change: ChangeSet) -> bool:
        """Take in one committed change; False when it does not follow on from what we
        have (the caller then catches up with ``absorb_changes``)."""
        if change.after <= self.modseq:
            return True  # already seen (e.g. through a catch-up)
        if change.before != self.modseq:
            return False
        for state in change.appended:
            self._appended(state.uid)
        for state in change.changed:
            self._changed(state)
        for uid in change.expunged:
            self._gone(uid)
        self.modseq = change.after
        self.uidnext = max(self.uidnext, change.uidnext)
        return True

    def absorb_changes(self, changes: Changes) -> None:
        """Catch up from the store's log (``Store.changes_since(self.modseq)``). When
        the expunge log does not reach back far enough, the caller follows with
        ``absorb_existing``."""
        for state in changes.changed:
            known = self._last_known()
            if state.uid > known:
                self._appended(state.uid)
            else:
                self._changed(state)
        for uid in changes.expunged:
            self._gone(uid)
        self.modseq = max(self.modseq, changes.highestmodseq)
        self.uidnext = max(self.uidnext, changes.uidnext)

    def absorb_existing(self, existing: Sequence[int]) -> None:
        """Full resynchronisation: ``existing`` are all UIDs now in the mailbox; every
        known message not among them was expunged."""
        present = set(existing)
        for uid in list(self.uids) + list(self._new):
            if uid not in present:
                self._gone(uid)
        known = self._last_known()
        for uid in existing:
            if uid > known:
                self._appended(uid)

    def _last_known(self) -> int:
        if self._new:
            return self._new[-1]
        return self.last_uid

    def _appended(self, uid: int) -> None:
        if uid > self._last_known():
            self._new.append(uid)

    def _changed(self, state: MessageState) -> None:
        previous = self._flags.get(state.uid)
        if previous is None or previous.modseq <= state.modseq:
            self._flags[state.uid] = state

    def _gone(self, uid: int) -> None:
        i = bisect.bisect_left(self._new, uid)
        if i < len(self._new) and self._new[i] == uid:
            del self._new[i]  # never announced: the client need not hear of it
            return
        if self.seq_of(uid) is not None:
            self._expunged.add(uid)
        self._flags.pop(uid, None)

    def reported(self, uid: int, modseq: int) -> None:
        """The client was just shown this message's flags as of ``modseq`` (by STORE or
        by FETCH setting \\Seen): do not announce the same change again."""
        pending = self._flags.get(uid)
        if pending is not None and pending.modseq <= modseq:
            del self._flags[uid]

    # ------------------------------------------------------------------ announcing

    def announce(self, *, allow_expunge: bool) -> Announcement:
        """Apply what has been absorbed to the view and say what to tell the client."""
        out = Announcement()
        if allow_expunge and self._expunged:
            positions = sorted(
                i
                for uid in self._expunged
                if (i := bisect.bisect_left(self.uids, uid)) < len(self.uids)
                and self.uids[i] == uid
            )
            out.expunged = [p + 1 - n for n, p in enumerate(positions)]
            out.expunged_uids = [self.uids[p] for p in positions]
            self._remove_positions(positions)
            self._expunged.clear()
        if self._flags:
            for uid in sorted(self._flags):
                if uid in self._expunged:
                    continue
                seq = self.seq_of(uid)
                if seq is not None:
                    out.flags.append((seq, self._flags[uid]))
            self._flags.clear()
        if self._new:
            out.new_uids = new = self._new
            self.uids = _shared(self.uids, b"+", new, lambda: self.uids + new)
            self._new = uid_array()
            out.exists = len(self.uids)
        return out

    def _remove_positions(self, positions: list[int]) -> None:
        def kept() -> array[int]:
            out = uid_array()
            previous = 0
            for p in positions:
                out.extend(self.uids[previous:p])
                previous = p + 1
            out.extend(self.uids[previous:])
            return out

        self.uids = _shared(self.uids, b"-", uid_array(positions), kept)
