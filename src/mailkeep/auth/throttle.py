"""Failed-login throttling, per client address and per account.

The rules (decided here, relied on by ``service.Authenticator``):

* Every failed login is counted twice: against the client address and against the
  account name tried (existing or not, so that the answer's timing reveals nothing).
* A failure is answered after ``failure_delay(n)`` = ``base * 2**(n-1)`` seconds, capped
  at ``max_delay``, where n is the larger of the two counts (including this failure).
* Before a login from an address with n >= 2 recent failures is even checked, the
  client waits ``failure_delay(n - 1)``: a single address cannot hammer in parallel.
* Account counts only ever delay *failed* answers: a third party guessing someone's
  password from elsewhere never slows, let alone locks out, the real user.
* A successful login clears the account's count but not the address's: otherwise an
  attacker could reset its penalty by logging into an account of its own.
* Counts decay: every ``decay`` seconds without a new failure forget one failure.
* Memory is bounded: each table keeps at most ``max_entries`` keys, least recently
  failed dropped first.
* IPv6 clients are counted per /64, the block one subscriber usually holds.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Record:
    failures: int
    last: float


class _Table:
    """Failure counts per key, with decay and an LRU cap."""

    def __init__(self, decay: float, max_entries: int, clock: Callable[[], float]) -> None:
        self._decay = decay
        self._max = max_entries
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def count(self, key: str) -> int:
        record = self._records.get(key)
        if record is None:
            return 0
        now = self._clock()
        forgiven = int((now - record.last) // self._decay) if self._decay > 0 else 0
        if forgiven >= record.failures:
            del self._records[key]
            return 0
        if forgiven:
            # Keep the remainder of the quiet period towards the next forgiveness.
            record.failures -= forgiven
            record.last += forgiven * self._decay
        return record.failures

    def add(self, key: str) -> int:
        failures = self.count(key) + 1
        self._records[key] = _Record(failures, self._clock())
        self._records.move_to_end(key)
        while len(self._records) > self._max:
            self._records.popitem(last=False)
        return failures

    def clear(self, key: str) -> None:
        self._records.pop(key, None)

    def __len__(self) -> int:
        return len(self._records)


class Throttle:
    """Login failure bookkeeping; it computes delays, the caller sleeps them."""

    def __init__(
        self,
        base_delay: float = 2.0,
        *,
        max_delay: float = 30.0,
        decay: float = 60.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._clients = _Table(decay, max_entries, clock)
        self._accounts = _Table(decay, max_entries, clock)

    def failure_delay(self, failures: int) -> float:
        """Delay after the ``failures``-th recent failure: base, doubling, capped."""
        if failures <= 0:
            return 0.0
        return min(self.max_delay, self.base_delay * 2.0 ** min(failures - 1, 64))

    def delay_before(self, remote: str) -> float:
        """Seconds to wait before checking a login from ``remote`` (0 when it is clean)."""
        return self.failure_delay(self._clients.count(client_key(remote)) - 1)

    def failed(self, remote: str, account: str) -> float:
        """Record a failed login; returns the seconds to wait before answering it."""
        by_client = self._clients.add(client_key(remote))
        by_account = self._accounts.add(account)
        return self.failure_delay(max(by_client, by_account))

    def succeeded(self, remote: str, account: str) -> None:
        """Record a successful login (clears the account's failures only, see above)."""
        self._accounts.clear(account)

    def failures(self, remote: str, account: str | None = None) -> tuple[int, int]:
        """Recent failure counts (client address, account), for logs and tests."""
        by_account = self._accounts.count(account) if account is not None else 0
        return self._clients.count(client_key(remote)), by_account

    def sizes(self) -> tuple[int, int]:
        """Entries held (client addresses, accounts)."""
        return len(self._clients), len(self._accounts)


def client_key(remote: str) -> str:
    """The key a client address is counted under: the IP itself, or its /64 for IPv6.
    An IPv4-mapped IPv6 address counts as the IPv4 address; anything that is not an IP
    address (a Unix socket peer, say) counts as itself."""
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return remote
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
