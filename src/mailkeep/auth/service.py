"""Authentication as the protocols use it: password logins, SASL exchanges, the
plain-text rule, throttling. One ``Authenticator`` per server process.

Decisions:

* Login names are full addresses, SASLprep'd, stripped and lower-cased entirely: the
  store matches addresses case-insensitively, and the throttle must count "Bob@x" and
  "bob@x" as one account or an attacker could dodge it by varying case. A bare local
  part is completed with ``default_domain`` when the server has one (one served
  domain); otherwise it is looked up as given. No search for "the one account with
  that local part": that would cost a scan per login and answer who exists.
* Unknown users cost the same argon2 verification as wrong passwords (``DUMMY_HASH``)
  and get the same answer and throttling; only the log tells them apart.
* argon2 runs in a worker thread, at most ``hash_concurrency`` at a time, so the event
  loop never stalls and a login flood cannot take all memory (64 MiB per hash).
* On success the stored credentials are refreshed: rehashed when the argon2 parameters
  changed, SCRAM keys derived when missing or weaker than ``scram_iterations``. A store
  failure there is logged and does not fail the login.
* Store failures while looking credentials up propagate from ``login`` (the protocol
  maps ``TemporaryFailure`` once) and become ``Failure(UNAVAILABLE)`` in SASL sessions.
* Failed logins per connection (``AuthConfig.max_failures``) are counted by the
  protocol session, which closes the connection; this module only delays.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import ipaddress
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mailkeep import metrics
from mailkeep.auth.passwords import (
    DUMMY_HASH,
    SCRAM_ITERATIONS,
    ScramKeys,
    hash_password,
    needs_rehash,
    parse_scram,
    scram_stored,
    verify_password,
)
from mailkeep.auth.sasl import (
    SERVER_MECHANISMS,
    Challenge,
    CheckPassword,
    Failure,
    FailureCode,
    NeedScramKeys,
    ScramSha256Server,
    ServerMechanism,
    Step,
    Success,
    server_mechanism,
)
from mailkeep.auth.saslprep import SaslprepError, saslprep
from mailkeep.auth.throttle import Throttle
from mailkeep.config import AuthConfig
from mailkeep.errors import MailkeepError, TemporaryFailure
from mailkeep.store.api import Credentials, Store

log = logging.getLogger("mailkeep.auth")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A finished, successful SASL exchange."""

    credentials: Credentials
    final: bytes | None = None
    """Additional data with success, only when the session was created with
    ``success_data=True`` (otherwise it was sent as a last challenge already)."""


SaslResult = Challenge | Authenticated | Failure


def normalize_address(name: str, default_domain: str | None = None) -> str:
    """The account name a login name refers to (see the module docstring)."""
    try:
        name = saslprep(name, allow_unassigned=True)
    except SaslprepError:
        pass  # such a name matches no account; keep it for the log
    name = name.strip().lower()
    if "@" not in name and default_domain:
        return f"{name}@{default_domain.lower()}"
    return name


def is_loopback(remote: str) -> bool:
    """Whether a client address is on this machine (127.0.0.0/8, ::1, mapped IPv4)."""
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def plaintext_allowed(config: AuthConfig, *, tls: bool, loopback: bool) -> bool:
    """DESIGN.md: clear-text passwords are refused on unencrypted connections, except
    from loopback (``allow_plaintext_on_loopback``) or when ``allow_plaintext`` is set."""
    if tls or config.allow_plaintext:
        return True
    return loopback and config.allow_plaintext_on_loopback


class VerifiedCache:
    """Recently verified passwords, so that a client logging in again (phones reconnect
    all day; POP3 clients poll) does not cost a 64 MiB argon2 run each time — what
    Dovecot's auth cache does. Entries are keyed by the stored hash, so a password change
    misses at once; only an HMAC of the password under a per-process secret is kept, and
    only successes are cached, so failures still take the full, uniform time."""

    def __init__(self, size: int = 100_000, ttl: float = 3600.0) -> None:
        self._secret = os.urandom(32)
        self._size = size
        self._ttl = ttl
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    def _digest(self, password: str) -> bytes:
        return hmac.digest(self._secret, password.encode("utf-8", "surrogatepass"), "sha256")

    def hit(self, password_hash: str, password: str) -> bool:
        entry = self._entries.get(password_hash)
        if entry is None or entry[1] < time.monotonic():
            return False
        return hmac.compare_digest(entry[0], self._digest(password))

    def remember(self, password_hash: str, password: str) -> None:
        self._entries[password_hash] = (self._digest(password), time.monotonic() + self._ttl)
        self._entries.move_to_end(password_hash)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


class Authenticator:
    def __init__(
        self,
        store: Store,
        config: AuthConfig,
        throttle: Throttle | None = None,
        *,
        default_domain: str | None = None,
        scram_iterations: int = SCRAM_ITERATIONS,
        hash_concurrency: int | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.store = store
        self.config = config
        self.throttle = throttle if throttle is not None else Throttle(config.failure_delay)
        self.default_domain = default_domain
        self.scram_iterations = scram_iterations
        self._hashing = asyncio.Semaphore(hash_concurrency or os.cpu_count() or 2)
        self._verified = VerifiedCache()
        self._sleep = sleep

    # ---------------------------------------------------------------- plain passwords

    def plaintext_allowed(self, tls: bool, loopback: bool) -> bool:
        return plaintext_allowed(self.config, tls=tls, loopback=loopback)

    async def login(self, address: str, password: str, remote: str) -> Credentials | None:
        """Check a user name and password (IMAP LOGIN, POP3 USER/PASS, SASL PLAIN/LOGIN).

        Returns the credentials, or None after the failure delay. The caller checks
        ``plaintext_allowed`` first: this method does not know the connection.
        """
        await self.wait_before(remote)
        return await self.check_password(
            normalize_address(address, self.default_domain), password, remote
        )

    async def wait_before(self, remote: str) -> None:
        """Sleep the penalty of a client address with recent failures (see throttle)."""
        delay = self.throttle.delay_before(remote)
        if delay > 0:
            await self._sleep(delay)

    async def check_password(self, account: str, password: str, remote: str) -> Credentials | None:
        """``login`` without the penalty wait, for an already normalised account name."""
        credentials = await self.store.get_credentials(account)
        stored = credentials.password_hash if credentials is not None else DUMMY_HASH
        ok = credentials is not None and self._verified.hit(stored, password)
        if not ok:
            async with self._hashing:
                ok = await asyncio.to_thread(verify_password, stored, password)
            if ok and credentials is not None:
                self._verified.remember(stored, password)
        if credentials is None or not ok:
            why = "unknown user" if credentials is None else "wrong password"
            await self.failed(account, remote, why)
            return None
        self.throttle.succeeded(remote, account)
        metrics.LOGINS.labels("success").inc()
        log.info("login %s from %s", account, remote)
        return await self._refresh(credentials, password)

    async def failed(self, account: str, remote: str, why: str) -> None:
        """Count a failed login and sleep its delay before the caller answers."""
        delay = self.throttle.failed(remote, account)
        metrics.LOGINS.labels("failure").inc()
        log.info("authentication failed for %r from %s: %s", account, remote, why)
        await self._sleep(delay)

    async def _refresh(self, credentials: Credentials, password: str) -> Credentials:
        password_hash = credentials.password_hash
        scram = credentials.scram_sha256
        async with self._hashing:
            if needs_rehash(password_hash):
                password_hash = await asyncio.to_thread(hash_password, password)
            keys = parse_scram(scram)
            if keys is None or keys.iterations < self.scram_iterations:
                scram = await asyncio.to_thread(scram_stored, password, self.scram_iterations)
        if (password_hash, scram) == (credentials.password_hash, credentials.scram_sha256):
            return credentials
        try:
            await self.store.set_credentials(credentials.account_id, password_hash, scram)
        except MailkeepError as exc:
            log.warning("could not update the credentials of %s: %s", credentials.address, exc)
            return credentials
        return dataclasses.replace(credentials, password_hash=password_hash, scram_sha256=scram)

    # ---------------------------------------------------------------- SASL

    def mechanisms(self, *, tls: bool, loopback: bool) -> tuple[str, ...]:
        """SASL mechanisms to advertise on a connection, strongest first."""
        allowed = self.plaintext_allowed(tls, loopback)
        return tuple(n for n, m in SERVER_MECHANISMS.items() if allowed or not m.plaintext)

    async def scram_keys(self, authcid: str) -> tuple[Credentials | None, ScramKeys | None]:
        """What SCRAM needs for a user name: the credentials and their parsed keys."""
        credentials = await self.store.get_credentials(
            normalize_address(authcid, self.default_domain)
        )
        if credentials is None:
            return None, None
        keys = parse_scram(credentials.scram_sha256)
        if keys is None:
            log.info(
                "%s has no SCRAM keys yet (they are made at a plain-text login)",
                credentials.address,
            )
        return credentials, keys

    def sasl(
        self,
        mechanism: str,
        *,
        remote: str,
        tls: bool,
        loopback: bool | None = None,
        success_data: bool = False,
    ) -> SaslSession:
        """A new SASL exchange; see ``SaslSession``. ``loopback`` defaults to whether
        ``remote`` is a loopback address. ``success_data``: the protocol can carry
        additional data in its success reply; when False (IMAP, POP3, SMTP as we speak
        them) SCRAM's server signature is sent as one last challenge, answered empty
        (RFC 4422 section 5, item 7)."""
        if loopback is None:
            loopback = is_loopback(remote)
        return SaslSession(
            self,
            mechanism,
            server_mechanism(mechanism),
            remote=remote,
            plaintext_ok=self.plaintext_allowed(tls, loopback),
            success_data=success_data,
        )


class SaslSession:
    """One server-side SASL exchange, with the store lookups and throttling done.

    Protocol handlers::

        session = authenticator.sasl(name, remote=peer, tls=secure)
        result = await session.start(initial_response_or_None)
        while isinstance(result, Challenge):
            data = decode_response(line)          # base64 errors are the protocol's
            result = session.cancel() if data is None else await session.step(data)
        match result:
            case Authenticated(credentials): ...
            case Failure(code, reason): ...

    Never raises on client data; a failed exchange has already slept its delay.
    """

    def __init__(
        self,
        authenticator: Authenticator,
        name: str,
        mechanism: ServerMechanism | None,
        *,
        remote: str,
        plaintext_ok: bool,
        success_data: bool,
    ) -> None:
        self._auth = authenticator
        self.name = name.upper()
        self._mechanism = mechanism
        self._remote = remote
        self._plaintext_ok = plaintext_ok
        self._success_data = success_data
        self._credentials: Credentials | None = None
        self._account = ""
        self._pending: Credentials | None = None
        self._started = False
        self.done = False

    async def start(self, initial: bytes | None) -> SaslResult:
        """Begin the exchange, with the client's initial response if it sent one."""
        if self._started:
            return self._finish(Failure(FailureCode.MALFORMED, "exchange already started"))
        self._started = True
        if self._mechanism is None:
            reason = f"unsupported SASL mechanism {self.name}"
            return self._finish(Failure(FailureCode.UNKNOWN_MECHANISM, reason))
        if self._mechanism.plaintext and not self._plaintext_ok:
            reason = f"{self.name} sends the password in the clear: use TLS first"
            return self._finish(Failure(FailureCode.ENCRYPTION_REQUIRED, reason))
        await self._auth.wait_before(self._remote)
        return await self._handle(self._mechanism.start(initial))

    async def step(self, data: bytes) -> SaslResult:
        """The client's (base64-decoded) response to the last challenge."""
        if self.done or not self._started or self._mechanism is None:
            return self._finish(Failure(FailureCode.MALFORMED, "no exchange in progress"))
        if self._pending is not None:
            credentials, self._pending = self._pending, None
            if data:
                reason = "expected an empty response to the final server message"
                return self._finish(Failure(FailureCode.MALFORMED, reason))
            self.done = True
            return Authenticated(credentials)
        return await self._handle(self._mechanism.step(data))

    def cancel(self) -> Failure:
        """The client sent ``*``: end the exchange (not counted as a failed login)."""
        return self._finish(Failure(FailureCode.CANCELLED, "authentication cancelled"))

    def _finish(self, failure: Failure) -> Failure:
        self.done = True
        self._pending = None
        return failure

    async def _handle(self, step: Step) -> SaslResult:
        auth = self._auth
        match step:
            case Challenge():
                return step
            case Failure(code=FailureCode.AUTHENTICATION_FAILED):
                await auth.failed(self._account, self._remote, f"{self.name} proof invalid")
                return self._finish(step)
            case Failure():
                return self._finish(step)
            case CheckPassword(authcid=authcid, password=password, authzid=authzid):
                refused = self._identify(authcid, authzid)
                if refused is not None:
                    return self._finish(refused)
                try:
                    credentials = await auth.check_password(self._account, password, self._remote)
                except TemporaryFailure as exc:
                    return self._finish(Failure(FailureCode.UNAVAILABLE, str(exc)))
                if credentials is None:
                    return self._finish(_auth_failed())
                return self._succeed(credentials, None)
            case NeedScramKeys(authcid=authcid, authzid=authzid):
                refused = self._identify(authcid, authzid)
                if refused is not None:
                    return self._finish(refused)
                try:
                    credentials, keys = await auth.scram_keys(self._account)
                except TemporaryFailure as exc:
                    return self._finish(Failure(FailureCode.UNAVAILABLE, str(exc)))
                self._credentials = credentials if keys is not None else None
                assert isinstance(self._mechanism, ScramSha256Server)
                step = self._mechanism.provide_keys(
                    keys, account=self._account, iterations=auth.scram_iterations
                )
                return await self._handle(step)
            case Success(final=final):
                credentials = self._credentials
                if credentials is None:  # cannot happen: fake keys never verify
                    return self._finish(_auth_failed())
                auth.throttle.succeeded(self._remote, self._account)
                metrics.LOGINS.labels("success").inc()
                log.info("login %s from %s (%s)", credentials.address, self._remote, self.name)
                return self._succeed(credentials, final)

    def _identify(self, authcid: str, authzid: str | None) -> Failure | None:
        """Remember the account; refuse an authorization identity other than it."""
        default = self._auth.default_domain
        self._account = normalize_address(authcid, default)
        if authzid and normalize_address(authzid, default) != self._account:
            reason = "acting as another user (authorization identity) is not supported"
            return Failure(FailureCode.AUTHORIZATION_FAILED, reason)
        return None

    def _succeed(self, credentials: Credentials, final: bytes | None) -> SaslResult:
        if final is not None and not self._success_data:
            self._pending = credentials
            return Challenge(final)
        self.done = True
        return Authenticated(credentials, final)


def _auth_failed() -> Failure:
    return Failure(FailureCode.AUTHENTICATION_FAILED, "authentication failed")
