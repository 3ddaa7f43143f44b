"""The FETCH cache keeps what fits its budget, least recently used out first."""

from __future__ import annotations

from mailkeep.imap.fetchcache import _ENTRY_OVERHEAD, FetchCache


def test_least_recently_used_goes_first_within_the_budget() -> None:
    cache = FetchCache(budget=3 * (100 + _ENTRY_OVERHEAD))
    for uid in (1, 2, 3):
        cache.put("key", uid, b"x" * 100)
    assert cache.get("key", 1) == b"x" * 100  # 1 is now the most recently used
    cache.put("key", 4, b"y" * 100)
    assert cache.get("key", 2) is None
    assert [cache.get("key", uid) is not None for uid in (1, 3, 4)] == [True, True, True]
    cache.put("key", 4, b"z" * 100)  # replaced, not counted twice
    assert len(cache) == 3
    assert cache.get("other", 1) is None
    cache.put("key", 5, b"w" * (3 * 100 + 2 * _ENTRY_OVERHEAD))  # alone it fills the budget
    assert len(cache) == 1
    cache.put("key", 6, b"v" * (3 * 100 + 3 * _ENTRY_OVERHEAD))  # larger: not kept at all
    assert len(cache) == 0
