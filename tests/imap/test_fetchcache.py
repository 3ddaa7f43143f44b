"""The FETCH cache keeps what fits its budget: segments per (mailbox, UIDVALIDITY, items),
the least recently used segment out first, and a segment larger than the budget keeps
its first part."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

from mailkeep.config import Config, LimitsConfig
from mailkeep.imap.fetchcache import _ENTRY_OVERHEAD, FetchCache
from mailkeep.imap.server import services

if TYPE_CHECKING:
    from mailkeep.app import App

ENTRY = 100 + _ENTRY_OVERHEAD
"""What an entry of 100 octets counts against the budget."""


def test_entries_are_found_by_segment_and_uid() -> None:
    cache = FetchCache(budget=10 * ENTRY)
    cache.put("a", 1, b"x" * 100)
    cache.put("b", 1, b"y" * 100)
    assert cache.segment("a").get(1) == b"x" * 100
    assert cache.segment("b") == {1: b"y" * 100}
    assert cache.segment("a").get(2) is None
    assert cache.segment("c").get(1) is None
    assert cache.segment("c") == {}
    cache.put("a", 1, b"z" * 100)  # replaced, not counted twice
    assert len(cache) == 2
    for uid in range(2, 10):
        cache.put("a", uid, b"w" * 100)
    assert len(cache) == 10  # exactly the budget


def test_least_recently_used_segment_goes_first() -> None:
    cache = FetchCache(budget=4 * ENTRY)
    for key in ("a", "b"):
        cache.put(key, 1, b"x" * 100)
        cache.put(key, 2, b"x" * 100)
    assert cache.segment("a").get(1) is not None  # "a" is now the most recently used
    cache.put("c", 1, b"x" * 100)
    assert cache.segment("b") == {}
    assert set(cache.segment("a")) == {1, 2}
    assert set(cache.segment("c")) == {1}
    cache.segment("a")  # looking at a segment counts as use too
    cache.put("d", 1, b"x" * 200)  # room for this needs one more segment gone: "c"
    assert cache.segment("c") == {}
    assert len(cache.segment("a")) == 2


def test_a_segment_larger_than_the_budget_keeps_its_first_part() -> None:
    # A FETCH of a folder larger than the cache, in UID order, twice: the second finds the
    # first part again (least recently used entries out first would find nothing).
    cache = FetchCache(budget=5 * ENTRY)
    cache.put("other", 1, b"x" * 100)
    for _ in range(2):
        hits = 0
        for uid in range(1, 21):
            if cache.segment("folder").get(uid) is None:
                cache.put("folder", uid, b"x" * 100)
            else:
                hits += 1
    assert hits == 5
    assert sorted(cache.segment("folder")) == [1, 2, 3, 4, 5]
    assert cache.segment("other") == {}  # the folder took its room first


def test_what_cannot_fit_is_not_kept() -> None:
    cache = FetchCache(budget=3 * ENTRY)
    cache.put("a", 1, b"x" * 100)
    cache.put("b", 1, b"x" * (3 * 100 + 3 * _ENTRY_OVERHEAD))  # larger than the budget
    assert cache.segment("b") == {}
    assert cache.segment("a").get(1) is not None  # nothing made room in vain
    off = FetchCache(budget=0)
    off.put("a", 1, b"")
    assert len(off) == 0


def test_the_server_cache_has_the_configured_budget() -> None:
    config = Config(limits=LimitsConfig(fetch_cache="1K"))
    app = SimpleNamespace(store=None, auth=None, config=config, delivery=SimpleNamespace())
    app.delivery.parser = None
    cache = services(cast("App", app)).fetch_cache
    cache.put("folder", 1, b"x" * 1024)
    assert len(cache) == 0
    cache.put("folder", 1, b"x" * 100)
    assert len(cache) == 1
