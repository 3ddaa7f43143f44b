"""Local delivery: the one path by which SMTP, LMTP and ``mailkeep deliver`` store mail.

Per recipient (RFC 2033 wants one answer each): resolve the account, prepend
Return-Path, Delivered-To and Received, parse once, append to the mailbox (INBOX unless
asked otherwise and it exists) with the quota enforced, and say what happened. An
``Outcome`` is only ``delivered`` once the store has committed and synced the message.

Decisions:

* Sub-addresses (``user+tag@domain``) deliver to ``user@domain``.
* Over quota is a temporary failure (452 4.2.2, exit 75): the sender retries while the
  user makes room; a message larger than the whole quota is refused for good (552 5.2.2).
* Mail for a domain we do not serve is refused at RCPT: we are never an open relay.
* ``accept`` is the RCPT-time check: existence, and the quota as far as it can be known
  then (already full, or the declared ``SIZE=`` plus room for our trace headers does not
  fit). SMTP has one reply per message, so failing early per recipient is what keeps a
  multi-recipient SMTP delivery from ending half done.
* ``<postmaster>`` without a domain (RFC 5321 4.1.1.3) is postmaster at the first
  configured domain, else at the host name.
* A store failure or a bug while delivering to one recipient is a temporary failure for
  that recipient only (logged with its traceback); the other recipients are unaffected.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from mailkeep import metrics
from mailkeep.errors import MailkeepError, NotFound, QuotaExceeded, TemporaryFailure
from mailkeep.mail.parser import Parser
from mailkeep.store.api import Account, NewMessage, Store
from mailkeep.store.names import INBOX

log = logging.getLogger("mailkeep.delivery")

TRACE_ALLOWANCE = 512
"""Octets reserved for Return-Path, Delivered-To and Received in the RCPT quota check."""
ACCOUNT_TTL = 1.0
"""Seconds an account looked up for one recipient answers for the next ones: RCPT and
then DATA, and a stream of mail for one address, without a store read each (on
PostgreSQL two round trips fewer per delivery: 5,000 over one LMTP connection 277 -> 295
msg/s, over four 491 -> 529). Each delivery leaves the account's quota and usage as its
transaction saw them. What can be up to that old is the RCPT-time estimate after a change
made elsewhere (an expunge, a new quota): the append checks the quota exactly, and a
refusal or an account found deleted is looked up again for its answer."""
ACCOUNTS_HELD = 10_000
"""At most this many accounts are held so (all are dropped when it is reached)."""


class Status(enum.Enum):
    DELIVERED = "delivered"
    UNKNOWN_USER = "unknown user"
    NOT_OURS = "relay denied"
    OVER_QUOTA = "over quota"
    TOO_BIG = "too big"
    TEMPORARY = "temporary failure"


@dataclass(frozen=True, slots=True)
class Outcome:
    recipient: str
    status: Status
    detail: str = ""
    uid: int | None = None

    @property
    def delivered(self) -> bool:
        return self.status is Status.DELIVERED

    @property
    def permanent(self) -> bool:
        return self.status in {Status.UNKNOWN_USER, Status.NOT_OURS, Status.TOO_BIG}


@dataclass(frozen=True, slots=True)
class Envelope:
    """Where a message came from, for the trace headers."""

    mail_from: str
    helo: str = ""
    client: str = ""
    protocol: str = "ESMTP"
    """``ESMTP``, ``ESMTPS``, ``LMTP``, ``LMTPS``, ``local`` (RFC 3848 names)."""
    tls: bool = False


class Delivery:
    def __init__(
        self,
        store: Store,
        hostname: str,
        domains: Sequence[str] = (),
        parser: Parser | None = None,
    ) -> None:
        self.store = store
        self.parser = parser or Parser()
        self.hostname = hostname
        self.domains = {d.lower() for d in domains}
        self.postmaster = f"postmaster@{domains[0] if domains else hostname}".lower()
        self._accounts: dict[str, tuple[float, Account]] = {}
        """By address: when it was looked up, and the account (``ACCOUNT_TTL``)."""
        self._inboxes: dict[int, int] = {}
        """INBOX's mailbox id by account id, so that a delivery need not look it up:
        INBOX is neither deleted nor renamed away (RENAME moves its messages), so the id
        lasts as long as the account. A delivery that finds it gone forgets it."""

    async def resolve(self, recipient: str) -> tuple[Account | None, Status]:
        """Who ``recipient`` is: the account, or why mail for it is refused."""
        address = base_address(recipient)
        if address == "postmaster":
            address = self.postmaster
        account = await self._account(address)
        if account is not None:
            return account, Status.DELIVERED
        if not await self._serves_domain(address.rpartition("@")[2]):
            return None, Status.NOT_OURS
        return None, Status.UNKNOWN_USER

    async def accept(self, recipient: str, size: int | None = None) -> Status:
        """The RCPT-time check (see the module docstring); ``size`` is the declared
        ``SIZE=``. ``DELIVERED`` means "accept this recipient"."""
        account, status = await self.resolve(recipient)
        if account is None:
            return status
        return quota_status(account, size)

    async def _account(self, address: str) -> Account | None:
        held = self._accounts.get(address)
        if held is not None and time.monotonic() - held[0] < ACCOUNT_TTL:
            return held[1]
        account = await self.store.get_account(address)
        if account is None:
            self._accounts.pop(address, None)
        else:
            self._hold(address, account)
        return account

    def _hold(self, address: str, account: Account) -> None:
        if len(self._accounts) >= ACCOUNTS_HELD:
            self._accounts.clear()
        self._accounts[address] = (time.monotonic(), account)

    async def _reread(self, account: Account) -> Account | None:
        """``account`` as the store has it now (None: deleted); as remembered should the
        store not answer."""
        self._accounts.pop(account.address, None)
        try:
            return await self._account(account.address)
        except MailkeepError:
            return account

    async def _serves_domain(self, domain: str) -> bool:
        if self.domains:
            return domain in self.domains
        accounts = await self.store.list_accounts()
        return any(a.address.rpartition("@")[2] == domain for a in accounts)

    async def deliver(
        self,
        raw: bytes,
        envelope: Envelope,
        recipients: Sequence[str],
        mailbox: str | None = None,
    ) -> list[Outcome]:
        """Deliver to each recipient, independently; one Outcome per recipient, in order."""
        queue_id = secrets.token_hex(6)
        if len(recipients) == 1:  # most mail: no task to gather, one turn of the loop less
            outcomes = [await self._deliver_one(raw, envelope, recipients[0], mailbox, queue_id)]
        else:
            outcomes = await asyncio.gather(
                *(self._deliver_one(raw, envelope, r, mailbox, queue_id) for r in recipients)
            )
        for outcome in outcomes:
            metrics.DELIVERIES.labels(outcome.status.value).inc()
        return list(outcomes)

    async def _deliver_one(
        self, raw: bytes, envelope: Envelope, recipient: str, mailbox: str | None, queue_id: str
    ) -> Outcome:
        account: Account | None = None
        message = self.trace_headers(envelope, recipient, queue_id) + raw
        # Parsed (in a worker process, mostly) while the recipient is looked up: the
        # recipient was accepted at RCPT, so the parse is almost never wasted.
        parsing = asyncio.ensure_future(self.parser.parse(message))
        try:
            account, status = await self.resolve(recipient)
            if account is None:
                return Outcome(recipient, status, f"no mailbox here by the name {recipient}")
            target = await self._target(account, mailbox)
            parsed = await parsing
            result = await self.store.append(target, [NewMessage(message, parsed)])
        except QuotaExceeded as exc:
            # Too big for the quota as it is now, not as remembered (``ACCOUNT_TTL``).
            current = await self._reread(account) if account is not None else None
            quota = current.quota_bytes if current is not None else None
            too_big = quota is not None and len(message) > quota
            status = Status.TOO_BIG if too_big else Status.OVER_QUOTA
            log.info("%s to=<%s> %s: %s", queue_id, recipient, status.value, exc)
            return Outcome(recipient, status, str(exc))
        except (TemporaryFailure, MailkeepError) as exc:
            if isinstance(exc, NotFound) and account is not None:
                # Remembered, but deleted since: the recipient is unknown now.
                self._inboxes.pop(account.id, None)
                if await self._reread(account) is None:
                    log.info("%s to=<%s> unknown user: %s", queue_id, recipient, exc)
                    return Outcome(
                        recipient, Status.UNKNOWN_USER, f"no mailbox here by the name {recipient}"
                    )
            log.warning("%s to=<%s> deferred: %s", queue_id, recipient, exc)
            return Outcome(recipient, Status.TEMPORARY, str(exc))
        except Exception:  # our bug: this recipient fails temporarily, the others go on
            log.exception("%s to=<%s> deferred: internal error", queue_id, recipient)
            return Outcome(recipient, Status.TEMPORARY, "internal error")
        finally:
            parsing.cancel()  # unless done: not wanted after a refusal or a failure
        if (usage := result.usage) is not None:  # the account as this append left it
            held = dataclasses.replace(
                account,
                quota_bytes=usage.quota_bytes,
                quota_messages=usage.quota_messages,
                used_bytes=usage.used_bytes,
                used_messages=usage.used_messages,
            )
            self._hold(account.address, held)
        log.info(
            "%s from=<%s> to=<%s> size=%d uid=%d delivered",
            queue_id,
            envelope.mail_from,
            recipient,
            len(message),
            result.uids[0],
        )
        return Outcome(recipient, Status.DELIVERED, queue_id, result.uids[0])

    async def _target(self, account: Account, mailbox: str | None) -> int:
        if mailbox:
            found = await self.store.get_mailbox(account.id, mailbox)
            if found is not None:
                return found.id
            log.info("no mailbox %r for %s: delivering to INBOX", mailbox, account.address)
        inbox = self._inboxes.get(account.id)
        if inbox is None:
            found = await self.store.get_mailbox(account.id, INBOX)
            if found is None:  # INBOX cannot be deleted; an account without one is broken
                raise NotFound(f"account {account.address} has no INBOX")
            inbox = self._inboxes[account.id] = found.id
        return inbox

    def trace_headers(self, envelope: Envelope, recipient: str, queue_id: str) -> bytes:
        """Return-Path (RFC 5321 4.4), Delivered-To, Received (RFC 5321 4.4, RFC 3848)."""
        now = format_datetime(datetime.now(UTC).astimezone())
        source = envelope.helo or "localhost"
        if envelope.client:
            source += f" ([{envelope.client}])"
        received = (
            f"Received: from {source}\r\n\tby {self.hostname} (mailkeep) with {envelope.protocol}"
            f" id {queue_id}\r\n\tfor <{recipient}>; {now}\r\n"
        )
        return (
            f"Return-Path: <{envelope.mail_from}>\r\nDelivered-To: {recipient}\r\n{received}"
        ).encode("utf-8", "surrogateescape")


def quota_status(account: Account, size: int | None) -> Status:
    """Whether a message of ``size`` octets (None: unknown) fits the account now."""
    if account.quota_bytes is not None:
        if size is not None and size > account.quota_bytes:
            return Status.TOO_BIG
        needed = 1 if size is None else size + TRACE_ALLOWANCE
        if account.used_bytes + needed > account.quota_bytes:
            return Status.OVER_QUOTA
    if account.quota_messages is not None and account.used_messages >= account.quota_messages:
        return Status.OVER_QUOTA
    return Status.DELIVERED


def base_address(recipient: str) -> str:
    """``User+tag@Example.COM`` → ``user@example.com``."""
    local, at, domain = recipient.strip().strip("<>").rpartition("@")
    if not at:
        local, domain = domain, ""
    local = local.split("+", 1)[0]
    return f"{local}@{domain}".lower() if domain else local.lower()


def to_crlf(data: bytes) -> bytes:
    """A message read from a Unix pipe ends lines with LF: give it SMTP's CRLF. Input
    that already has CRLF anywhere is kept byte for byte."""
    if b"\r\n" in data or b"\n" not in data:
        return data
    return data.replace(b"\n", b"\r\n")
