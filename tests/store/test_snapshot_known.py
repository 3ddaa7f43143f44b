"""SELECT's snapshot of a large mailbox is built from the previous one (only what changed
is read): it must always equal a snapshot read from scratch, on every backend."""

from __future__ import annotations

import pytest

from mailkeep.mail.flags import SystemFlag
from mailkeep.store import sqlstore
from mailkeep.store.api import FlagMode, Mailbox, Snapshot
from mailkeep.store.sqlstore import SqlStore

from ._support import msg

ARGON = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


def _view(snapshot: Snapshot) -> tuple[list[int], int | None, int, int]:
    box = snapshot.mailbox
    return list(snapshot.uids), snapshot.first_unseen_uid, box.uidnext, box.highestmodseq


async def _fresh(store: SqlStore, mailbox_id: int) -> tuple[list[int], int | None, int, int]:
    store._known_uids.clear()
    return _view(await store.snapshot(mailbox_id))


@pytest.fixture
async def inbox(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> Mailbox:
    """A new account's INBOX, its UIDs kept between snapshots however small it is."""
    monkeypatch.setattr(sqlstore, "KNOWN_UIDS_FROM", 1)
    account = await store.create_account("alice@example.org", ARGON, None)
    found = await store.get_mailbox(account.id, "INBOX")
    assert found is not None
    return found


async def test_snapshot_follows_appends_expunges_flags_and_moves(
    store: SqlStore, inbox: Mailbox
) -> None:
    other = await store.get_mailbox(inbox.account_id, "Archive")
    assert other is not None
    uids = list((await store.append(inbox.id, [msg(f"m{i}") for i in range(8)])).uids)

    first = await store.snapshot(inbox.id)
    assert list(first.uids) == uids
    # Sessions selecting an unchanged mailbox share one array (none modifies it).
    assert (await store.snapshot(inbox.id)).uids is first.uids
    assert _view(await store.snapshot(inbox.id)) == await _fresh(store, inbox.id)
    await store.snapshot(inbox.id)

    async def step(number: int) -> object:
        match number:
            case 0:
                return await store.append(inbox.id, [msg("new1"), msg("new2")])
            case 1:
                seen = int(SystemFlag.SEEN)
                return await store.store_flags(inbox.id, uids[:3], FlagMode.ADD, seen, ())
            case 2:
                deleted = int(SystemFlag.DELETED)
                return await store.store_flags(inbox.id, uids[3:5], FlagMode.ADD, deleted, ())
            case 3:
                return await store.expunge(inbox.id)
            case 4:
                return await store.copy(inbox.id, [uids[6]], other.id, move=True)
        return await store.append(inbox.id, [msg("new3")])

    for number in range(6):
        await step(number)
        incremental = _view(await store.snapshot(inbox.id))
        assert incremental == await _fresh(store, inbox.id)
        await store.snapshot(inbox.id)  # keep the known UIDs for the next step


async def test_trimmed_expunge_log_reads_everything_again(store: SqlStore, inbox: Mailbox) -> None:
    uids = list((await store.append(inbox.id, [msg(f"m{i}") for i in range(4)])).uids)
    await store.snapshot(inbox.id)
    await store.remove(inbox.id, uids[:2])
    await store.trim_expunge_log(-1)  # everything logged so far is older than the cutoff
    assert _view(await store.snapshot(inbox.id)) == await _fresh(store, inbox.id)
    assert list((await store.snapshot(inbox.id)).uids) == uids[2:]


async def test_keywords_accumulate_from_changes_since_the_known_snapshot(
    store: SqlStore, inbox: Mailbox
) -> None:
    uids = list((await store.append(inbox.id, [msg(f"m{i}") for i in range(3)])).uids)
    await store.store_flags(inbox.id, uids[:1], FlagMode.ADD, 0, ("$Forwarded",))
    assert (await store.snapshot(inbox.id)).keywords == ("$Forwarded",)
    await store.store_flags(inbox.id, uids[1:2], FlagMode.ADD, 0, ("Work", "$forwarded"))
    await store.store_flags(inbox.id, uids[:1], FlagMode.REMOVE, 0, ("$Forwarded",))
    # Read from the known snapshot: the new keyword joins; $Forwarded, still on a
    # message (spelled otherwise), keeps its first spelling.
    assert (await store.snapshot(inbox.id)).keywords == ("$Forwarded", "Work")
    await store.store_flags(inbox.id, uids[1:2], FlagMode.REMOVE, 0, ("Work",))
    # A keyword no message carries any more stays until the next full read.
    assert (await store.snapshot(inbox.id)).keywords == ("$Forwarded", "Work")
    store._known_uids.clear()
    assert (await store.snapshot(inbox.id)).keywords == ("$forwarded",)
