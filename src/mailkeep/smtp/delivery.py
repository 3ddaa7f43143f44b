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
import enum
import logging
import secrets
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
        self._inboxes: dict[int, int] = {}
        """INBOX's mailbox id by account id, so that a delivery need not look it up:
        INBOX is neither deleted nor renamed away (RENAME moves its messages), so the id
        lasts as long as the account. A delivery that finds it gone forgets it."""

    async def resolve(self, recipient: str) -> tuple[Account | None, Status]:
        """Who ``recipient`` is: the account, or why mail for it is refused."""
        address = base_address(recipient)
        if address == "postmaster":
            address = self.postmaster
        account = await self.store.get_account(address)
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
            quota = account.quota_bytes if account is not None else None
            too_big = quota is not None and len(message) > quota
            status = Status.TOO_BIG if too_big else Status.OVER_QUOTA
            log.info("%s to=<%s> %s: %s", queue_id, recipient, status.value, exc)
            return Outcome(recipient, status, str(exc))
        except (TemporaryFailure, MailkeepError) as exc:
            if isinstance(exc, NotFound) and account is not None:
                self._inboxes.pop(account.id, None)
            log.warning("%s to=<%s> deferred: %s", queue_id, recipient, exc)
            return Outcome(recipient, Status.TEMPORARY, str(exc))
        except Exception:  # our bug: this recipient fails temporarily, the others go on
            log.exception("%s to=<%s> deferred: internal error", queue_id, recipient)
            return Outcome(recipient, Status.TEMPORARY, "internal error")
        finally:
            parsing.cancel()  # unless done: not wanted after a refusal or a failure
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
