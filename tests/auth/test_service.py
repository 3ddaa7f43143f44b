"""The authentication service over a real SQLite store: logins, SASL sessions, rules."""

from __future__ import annotations

import functools

import argon2
import pytest

from mailkeep.auth.passwords import (
    ScramKeys,
    hash_password,
    needs_rehash,
    parse_scram,
    scram_stored,
    verify_password,
)
from mailkeep.auth.sasl import Challenge, Failure, FailureCode, decode_response, encode_challenge
from mailkeep.auth.sasl_client import ClientMechanism, client_mechanism
from mailkeep.auth.service import (
    Authenticated,
    Authenticator,
    SaslResult,
    SaslSession,
    VerifiedCache,
    is_loopback,
    normalize_address,
    plaintext_allowed,
)
from mailkeep.auth.throttle import Throttle
from mailkeep.config import AuthConfig
from mailkeep.store.api import Credentials
from mailkeep.store.sqlstore import SqlStore

ADDRESS = "alice@example.org"
PASSWORD = "correct horse battery"
REMOTE = "192.0.2.10"


@functools.cache
def alice_hash() -> str:
    return hash_password(PASSWORD)


class Sleeps:
    """Records the delays the authenticator asks for instead of waiting them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def authenticator(
    store: SqlStore,
    sleeps: Sleeps,
    config: AuthConfig | None = None,
    default_domain: str | None = None,
) -> Authenticator:
    return Authenticator(store, config or AuthConfig(), default_domain=default_domain, sleep=sleeps)


@pytest.fixture
async def alice(store: SqlStore) -> Credentials:
    await store.create_account(ADDRESS, alice_hash(), scram_stored(PASSWORD))
    credentials = await store.get_credentials(ADDRESS)
    assert credentials is not None
    return credentials


# ------------------------------------------------------------------------------ login


async def test_login_success(store: SqlStore, sleeps: Sleeps, alice: Credentials) -> None:
    auth = authenticator(store, sleeps)
    credentials = await auth.login(ADDRESS, PASSWORD, REMOTE)
    assert credentials == alice
    assert sleeps.delays == []


async def test_login_address_is_case_insensitive(
    store: SqlStore, sleeps: Sleeps, alice: Credentials
) -> None:
    auth = authenticator(store, sleeps)
    credentials = await auth.login("Alice@EXAMPLE.org", PASSWORD, REMOTE)
    assert credentials is not None
    assert credentials.account_id == alice.account_id


async def test_bare_local_part_needs_a_default_domain(
    store: SqlStore, sleeps: Sleeps, alice: Credentials
) -> None:
    assert await authenticator(store, sleeps).login("alice", PASSWORD, REMOTE) is None
    with_domain = authenticator(store, sleeps, default_domain="Example.ORG")
    credentials = await with_domain.login("alice", PASSWORD, REMOTE)
    assert credentials is not None
    assert credentials.account_id == alice.account_id


async def test_wrong_password_and_unknown_user_look_alike(
    store: SqlStore, sleeps: Sleeps, alice: Credentials
) -> None:
    auth = authenticator(store, sleeps, config=AuthConfig(failure_delay=1.5))
    assert await auth.login(ADDRESS, "wrong", REMOTE) is None
    assert await auth.login("nobody@example.org", PASSWORD, "192.0.2.11") is None
    assert sleeps.delays == [1.5, 1.5]


async def test_failures_grow_the_delays(
    store: SqlStore, sleeps: Sleeps, alice: Credentials
) -> None:
    auth = authenticator(store, sleeps)
    for _ in range(3):
        assert await auth.login(ADDRESS, "wrong", REMOTE) is None
    # failure 1: 2 s; failure 2: 4 s; attempt 3 waits 2 s first, then fails after 8 s.
    assert sleeps.delays == [2.0, 4.0, 2.0, 8.0]
    sleeps.delays.clear()
    # The real user from elsewhere is not delayed by the attack on the account.
    assert await auth.login(ADDRESS, PASSWORD, "198.51.100.1") is not None
    assert sleeps.delays == []
    assert auth.throttle.failures(REMOTE, ADDRESS) == (3, 0)


async def test_login_creates_missing_scram_keys(store: SqlStore, sleeps: Sleeps) -> None:
    await store.create_account(ADDRESS, alice_hash(), None)
    auth = authenticator(store, sleeps)
    credentials = await auth.login(ADDRESS, PASSWORD, REMOTE)
    assert credentials is not None
    stored = await store.get_credentials(ADDRESS)
    assert stored == credentials
    keys = parse_scram(stored.scram_sha256)
    assert keys is not None
    assert keys == ScramKeys.derive(PASSWORD, keys.iterations, keys.salt)
    assert stored.password_hash == alice_hash()  # still current: not rehashed


async def test_login_upgrades_weak_hash_and_scram_keys(store: SqlStore, sleeps: Sleeps) -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    await store.create_account(ADDRESS, weak, scram_stored(PASSWORD, iterations=1000))
    auth = authenticator(store, sleeps)
    assert await auth.login(ADDRESS, PASSWORD, REMOTE) is not None
    stored = await store.get_credentials(ADDRESS)
    assert stored is not None
    assert not needs_rehash(stored.password_hash)
    assert verify_password(stored.password_hash, PASSWORD)
    keys = parse_scram(stored.scram_sha256)
    assert keys is not None
    assert keys.iterations == 4096


async def test_failed_login_changes_nothing(store: SqlStore, sleeps: Sleeps) -> None:
    await store.create_account(ADDRESS, alice_hash(), None)
    assert await authenticator(store, sleeps).login(ADDRESS, "wrong", REMOTE) is None
    stored = await store.get_credentials(ADDRESS)
    assert stored is not None
    assert stored.scram_sha256 is None


async def test_malformed_stored_hash_fails_cleanly(store: SqlStore, sleeps: Sleeps) -> None:
    await store.create_account(ADDRESS, "{CRYPT}garbage", None)
    assert await authenticator(store, sleeps).login(ADDRESS, PASSWORD, REMOTE) is None


# ------------------------------------------------------------------------------ rules


@pytest.mark.parametrize(
    ("config", "tls", "loopback", "allowed"),
    [
        (AuthConfig(), True, False, True),
        (AuthConfig(), False, True, True),
        (AuthConfig(), False, False, False),
        (AuthConfig(allow_plaintext_on_loopback=False), False, True, False),
        (AuthConfig(allow_plaintext_on_loopback=False), True, True, True),
        (AuthConfig(allow_plaintext=True), False, False, True),
    ],
)
def test_plaintext_rule(config: AuthConfig, tls: bool, loopback: bool, allowed: bool) -> None:
    assert plaintext_allowed(config, tls=tls, loopback=loopback) is allowed


async def test_mechanisms_advertised(store: SqlStore, sleeps: Sleeps) -> None:
    auth = authenticator(store, sleeps)
    assert auth.mechanisms(tls=True, loopback=False) == ("SCRAM-SHA-256", "PLAIN", "LOGIN")
    assert auth.mechanisms(tls=False, loopback=False) == ("SCRAM-SHA-256",)
    assert auth.plaintext_allowed(False, True)


@pytest.mark.parametrize(
    ("remote", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("192.0.2.1", False),
        ("2001:db8::1", False),
        ("localhost", False),
        ("", False),
    ],
)
def test_is_loopback(remote: str, loopback: bool) -> None:
    assert is_loopback(remote) is loopback


@pytest.mark.parametrize(
    ("name", "default", "expected"),
    [
        ("Bob@Example.ORG", None, "bob@example.org"),
        (" bob@example.org ", None, "bob@example.org"),
        ("bob", None, "bob"),
        ("bob", "Example.org", "bob@example.org"),
        ("bob@other.org", "example.org", "bob@other.org"),
        ("\u2168@example.org", None, "ix@example.org"),
    ],
)
def test_normalize_address(name: str, default: str | None, expected: str) -> None:
    assert normalize_address(name, default) == expected


# ------------------------------------------------------------------------------ SASL


async def converse(
    session: SaslSession, client: ClientMechanism, *, initial: bool = True
) -> SaslResult:
    """What a protocol handler does, including the base64 round trip of each line."""
    result = await session.start(client.initial_response() if initial else None)
    while isinstance(result, Challenge):
        line = encode_challenge(client.respond(result.data))
        data = decode_response(line)
        assert data is not None
        result = await session.step(data)
    return result


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "SCRAM-SHA-256"])
async def test_sasl_success(
    store: SqlStore, sleeps: Sleeps, alice: Credentials, mechanism: str
) -> None:
    auth = authenticator(store, sleeps)
    session = auth.sasl(mechanism, remote=REMOTE, tls=True)
    client = client_mechanism(mechanism, "ALICE@example.org", PASSWORD)
    result = await converse(session, client, initial=mechanism != "LOGIN")
    assert result == Authenticated(alice)
    assert session.done
    client.finish(None)  # SCRAM: the signature came as a last challenge and was verified


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "SCRAM-SHA-256"])
@pytest.mark.parametrize("user", [ADDRESS, "nobody@example.org"])
async def test_sasl_failure(
    store: SqlStore, sleeps: Sleeps, alice: Credentials, mechanism: str, user: str
) -> None:
    auth = authenticator(store, sleeps)
    session = auth.sasl(mechanism, remote=REMOTE, tls=True)
    result = await converse(session, client_mechanism(mechanism, user, "wrong"))
    assert result == Failure(FailureCode.AUTHENTICATION_FAILED, "authentication failed")
    assert sleeps.delays == [2.0]
    assert auth.throttle.failures(REMOTE, user) == (1, 1)


async def test_scram_success_data_in_final_reply(
    store: SqlStore, sleeps: Sleeps, alice: Credentials
) -> None:
    auth = authenticator(store, sleeps)
    session = auth.sasl("SCRAM-SHA-256", remote=REMOTE, tls=False, success_data=True)
    client = client_mechanism("SCRAM-SHA-256", ADDRESS, PASSWORD)
    result = await converse(session, client)
    assert isinstance(result, Authenticated)
    assert result.final is not None
    assert result.final.startswith(b"v=")
    client.finish(result.final)


async def test_scram_needs_keys(store: SqlStore, sleeps: Sleeps) -> None:
    await store.create_account(ADDRESS, alice_hash(), None)
    auth = authenticator(store, sleeps)
    scram = client_mechanism("SCRAM-SHA-256", ADDRESS, PASSWORD)
    result = await converse(auth.sasl("SCRAM-SHA-256", remote=REMOTE, tls=True), scram)
    assert isinstance(result, Failure)
    assert result.code is FailureCode.AUTHENTICATION_FAILED
    # A plain-text login derives the keys; SCRAM works from then on.
    plain = client_mechanism("PLAIN", ADDRESS, PASSWORD)
    assert isinstance(
        await converse(auth.sasl("PLAIN", remote=REMOTE, tls=True), plain), Authenticated
    )
    scram = client_mechanism("SCRAM-SHA-256", ADDRESS, PASSWORD)
    result = await converse(auth.sasl("SCRAM-SHA-256", remote=REMOTE, tls=True), scram)
    assert isinstance(result, Authenticated)


async def test_plaintext_mechanisms_need_tls_off_loopback(
    store: SqlStore, sleeps: Sleeps, alice: Credentials
) -> None:
    auth = authenticator(store, sleeps)
    for mechanism in ("PLAIN", "LOGIN"):
        session = auth.sasl(mechanism, remote=REMOTE, tls=False)
        result = await session.start(None)
        assert isinstance(result, Failure)
        assert result.code is FailureCode.ENCRYPTION_REQUIRED
        assert session.done
    loopback = auth.sasl("PLAIN", remote="127.0.0.1", tls=False)
    client = client_mechanism("PLAIN", ADDRESS, PASSWORD)
    assert isinstance(await converse(loopback, client), Authenticated)
    # SCRAM never sends the password, so it is allowed everywhere.
    scram = client_mechanism("SCRAM-SHA-256", ADDRESS, PASSWORD)
    result = await converse(auth.sasl("SCRAM-SHA-256", remote=REMOTE, tls=False), scram)
    assert isinstance(result, Authenticated)


async def test_authorization_identity(store: SqlStore, sleeps: Sleeps, alice: Credentials) -> None:
    auth = authenticator(store, sleeps)
    for mechanism in ("PLAIN", "SCRAM-SHA-256"):
        other = client_mechanism(mechanism, ADDRESS, PASSWORD, "bob@example.org")
        result = await converse(auth.sasl(mechanism, remote=REMOTE, tls=True), other)
        assert isinstance(result, Failure)
        assert result.code is FailureCode.AUTHORIZATION_FAILED
        same = client_mechanism(mechanism, ADDRESS, PASSWORD, "Alice@Example.org")
        result = await converse(auth.sasl(mechanism, remote=REMOTE, tls=True), same)
        assert result == Authenticated(alice)
    assert sleeps.delays == []  # a refused authzid is not a password guess


async def test_unknown_mechanism(store: SqlStore, sleeps: Sleeps) -> None:
    session = authenticator(store, sleeps).sasl("cram-md5", remote=REMOTE, tls=True)
    result = await session.start(b"x")
    assert result == Failure(FailureCode.UNKNOWN_MECHANISM, "unsupported SASL mechanism CRAM-MD5")
    assert isinstance(await session.step(b"x"), Failure)


async def test_cancel_is_not_a_failed_login(
    store: SqlStore, sleeps: Sleeps, alice: Credentials
) -> None:
    auth = authenticator(store, sleeps)
    session = auth.sasl("LOGIN", remote=REMOTE, tls=True)
    assert await session.start(None) == Challenge(b"Username:")
    assert decode_response(b"*") is None
    assert session.cancel().code is FailureCode.CANCELLED
    assert session.done
    after = await session.step(b"alice")
    assert isinstance(after, Failure)
    assert after.code is FailureCode.MALFORMED
    assert sleeps.delays == []
    assert auth.throttle.failures(REMOTE, ADDRESS) == (0, 0)


async def test_final_challenge_wants_an_empty_response(
    store: SqlStore, sleeps: Sleeps, alice: Credentials
) -> None:
    auth = authenticator(store, sleeps)
    client = client_mechanism("SCRAM-SHA-256", ADDRESS, PASSWORD)
    session = auth.sasl("SCRAM-SHA-256", remote=REMOTE, tls=True)
    first = await session.start(client.initial_response())
    assert isinstance(first, Challenge)
    final = await session.step(client.respond(first.data))
    assert isinstance(final, Challenge)
    assert final.data.startswith(b"v=")
    result = await session.step(b"unexpected")
    assert isinstance(result, Failure)
    assert result.code is FailureCode.MALFORMED


async def test_malformed_mechanism_data_is_a_failure(
    store: SqlStore, sleeps: Sleeps, alice: Credentials
) -> None:
    auth = authenticator(store, sleeps)
    result = await auth.sasl("PLAIN", remote=REMOTE, tls=True).start(b"no nul here")
    assert isinstance(result, Failure)
    assert result.code is FailureCode.MALFORMED
    session = auth.sasl("SCRAM-SHA-256", remote=REMOTE, tls=True)
    assert isinstance(await session.start(b"p=tls-unique,,n=alice,r=x"), Failure)
    assert sleeps.delays == []


async def test_sasl_start_twice(store: SqlStore, sleeps: Sleeps) -> None:
    session = authenticator(store, sleeps).sasl("PLAIN", remote=REMOTE, tls=True)
    assert await session.start(None) == Challenge(b"")
    assert isinstance(await session.start(None), Failure)


async def test_sasl_waits_the_client_penalty_first(
    store: SqlStore, sleeps: Sleeps, alice: Credentials
) -> None:
    throttle = Throttle(1.0)
    auth = Authenticator(store, AuthConfig(), throttle, sleep=sleeps)
    throttle.failed(REMOTE, "x")
    throttle.failed(REMOTE, "y")
    client = client_mechanism("SCRAM-SHA-256", ADDRESS, PASSWORD)
    result = await converse(auth.sasl("SCRAM-SHA-256", remote=REMOTE, tls=True), client)
    assert isinstance(result, Authenticated)
    assert sleeps.delays == [1.0]


async def server_first(auth: Authenticator, user: str) -> bytes:
    session = auth.sasl("SCRAM-SHA-256", remote=REMOTE, tls=True)
    challenge = await session.start(f"n,,n={user},r=nonce".encode())
    assert isinstance(challenge, Challenge)
    return challenge.data.split(b",", 1)[1]  # s=...,i=...


async def test_scram_salt_does_not_reveal_unknown_users(
    store: SqlStore, sleeps: Sleeps, alice: Credentials
) -> None:
    auth = authenticator(store, sleeps)
    # Case variants reach one real account, so they must reach one fake one too.
    assert await server_first(auth, "ALICE@example.org") == await server_first(auth, ADDRESS)
    assert await server_first(auth, "Nobody@Example.org") == await server_first(
        auth, "nobody@example.org"
    )
    unknown = await server_first(auth, "nobody@example.org")
    assert unknown != await server_first(auth, "someone@example.org")
    assert unknown.endswith(b",i=4096")


# ------------------------------------------------------------------------------ cache


def test_verified_cache_hits_only_the_right_password_and_hash() -> None:
    cache = VerifiedCache(size=2)
    cache.remember("hash-a", "secret")
    assert cache.hit("hash-a", "secret")
    assert not cache.hit("hash-a", "Secret")
    assert not cache.hit("hash-b", "secret")
    cache.remember("hash-b", "x")
    cache.remember("hash-c", "y")
    assert not cache.hit("hash-a", "secret")  # evicted: oldest of three with room for two
    assert cache.hit("hash-c", "y")


def test_verified_cache_expires() -> None:
    cache = VerifiedCache(ttl=-1)
    cache.remember("hash", "secret")
    assert not cache.hit("hash", "secret")


async def test_password_change_defeats_the_cache(
    store: SqlStore, sleeps: Sleeps, alice: Credentials
) -> None:
    auth = authenticator(store, sleeps)
    assert await auth.login(ADDRESS, PASSWORD, REMOTE) is not None
    assert await auth.login(ADDRESS, PASSWORD, REMOTE) is not None  # from the cache
    await store.set_credentials(alice.account_id, hash_password("changed"), None)
    assert await auth.login(ADDRESS, PASSWORD, REMOTE) is None
    assert await auth.login(ADDRESS, "changed", REMOTE) is not None
