"""Login failure throttling, with a fake clock."""

from __future__ import annotations

import pytest

from mailkeep.auth.throttle import Throttle, client_key


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock) -> Throttle:
    return Throttle(2.0, max_delay=30.0, decay=60.0, clock=clock)


def test_delays_double_and_cap(clock: FakeClock) -> None:
    throttle = make(clock)
    delays = [throttle.failed("192.0.2.1", "a@example.org") for _ in range(7)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_clean_client_waits_nothing_before(clock: FakeClock) -> None:
    throttle = make(clock)
    assert throttle.delay_before("192.0.2.1") == 0.0
    throttle.failed("192.0.2.1", "a@example.org")
    assert throttle.delay_before("192.0.2.1") == 0.0  # one typo costs no extra wait
    throttle.failed("192.0.2.1", "a@example.org")
    assert throttle.delay_before("192.0.2.1") == 2.0
    throttle.failed("192.0.2.1", "b@example.org")
    assert throttle.delay_before("192.0.2.1") == 4.0
    assert throttle.delay_before("192.0.2.2") == 0.0


def test_account_failures_slow_other_clients_failures_only(clock: FakeClock) -> None:
    throttle = make(clock)
    for n in range(10):
        throttle.failed(f"198.51.100.{n}", "victim@example.org")
    # The real user, from a clean address, is not delayed before checking...
    assert throttle.delay_before("192.0.2.7") == 0.0
    # ...only a wrong password for that account is answered slowly.
    assert throttle.failed("192.0.2.7", "victim@example.org") == 30.0
    assert throttle.failed("192.0.2.8", "other@example.org") == 2.0


def test_success_clears_account_but_not_client(clock: FakeClock) -> None:
    throttle = make(clock)
    for _ in range(3):
        throttle.failed("192.0.2.1", "a@example.org")
    throttle.succeeded("192.0.2.1", "a@example.org")
    assert throttle.failures("192.0.2.1", "a@example.org") == (3, 0)
    assert throttle.delay_before("192.0.2.1") == 4.0
    # An attacker logging into its own account does not reset its address's penalty.
    throttle.succeeded("192.0.2.1", "mine@example.org")
    assert throttle.failures("192.0.2.1")[0] == 3


def test_failures_decay_after_quiet_period(clock: FakeClock) -> None:
    throttle = make(clock)
    for _ in range(4):
        throttle.failed("192.0.2.1", "a@example.org")
    assert throttle.failures("192.0.2.1", "a@example.org") == (4, 4)
    clock.now += 59
    assert throttle.failures("192.0.2.1", "a@example.org") == (4, 4)
    clock.now += 1
    assert throttle.failures("192.0.2.1", "a@example.org") == (3, 3)
    clock.now += 150  # two more decays; the half period carries over
    assert throttle.failures("192.0.2.1", "a@example.org") == (1, 1)
    clock.now += 30
    assert throttle.failures("192.0.2.1", "a@example.org") == (0, 0)
    assert throttle.sizes() == (0, 0)  # forgotten entirely
    assert throttle.failed("192.0.2.1", "a@example.org") == 2.0


def test_new_failure_restarts_the_quiet_period(clock: FakeClock) -> None:
    throttle = make(clock)
    throttle.failed("192.0.2.1", "a@example.org")
    clock.now += 50
    throttle.failed("192.0.2.1", "a@example.org")
    clock.now += 50
    assert throttle.failures("192.0.2.1")[0] == 2


def test_memory_is_bounded(clock: FakeClock) -> None:
    throttle = Throttle(2.0, max_entries=100, clock=clock)
    for n in range(1000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}", f"user{n}@example.org")
    assert throttle.sizes() == (100, 100)
    # The most recent entries are the ones kept.
    assert throttle.failures("10.0.3.231", "user999@example.org") == (1, 1)
    assert throttle.failures("10.0.0.0", "user0@example.org") == (0, 0)


def test_recently_failing_key_survives_eviction(clock: FakeClock) -> None:
    throttle = Throttle(2.0, max_entries=3, clock=clock)
    throttle.failed("10.0.0.1", "a")
    throttle.failed("10.0.0.2", "b")
    throttle.failed("10.0.0.1", "a")  # refreshed: now the newest
    throttle.failed("10.0.0.3", "c")
    throttle.failed("10.0.0.4", "d")  # evicts 10.0.0.2, the least recent
    assert throttle.failures("10.0.0.1", "a") == (2, 2)
    assert throttle.failures("10.0.0.2", "b") == (0, 0)


def test_zero_base_delay_never_sleeps(clock: FakeClock) -> None:
    throttle = Throttle(0.0, clock=clock)
    assert [throttle.failed("192.0.2.1", "a") for _ in range(5)] == [0.0] * 5
    assert throttle.delay_before("192.0.2.1") == 0.0


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("fe80::1%eth0", "fe80::/64"),
        ("/run/mailkeep.sock", "/run/mailkeep.sock"),
    ],
)
def test_client_key(remote: str, key: str) -> None:
    assert client_key(remote) == key


def test_ipv6_subnet_shares_one_count(clock: FakeClock) -> None:
    throttle = make(clock)
    for n in range(3):
        throttle.failed(f"2001:db8::{n + 1}", f"u{n}")
    assert throttle.delay_before("2001:db8::ffff") == 4.0
    assert throttle.delay_before("2001:db8:0:1::1") == 0.0
