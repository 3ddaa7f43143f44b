"""Server-side SASL mechanisms (RFC 4422) as sans-I/O challenge/response objects.

A mechanism sees raw bytes only. The protocol layer owns the wire: base64, the
continuation syntax (IMAP ``+ ...``, POP3 ``+ ...``, SMTP ``334 ...``) and the client's
``*`` cancel; ``decode_response``, ``decode_initial_response`` and ``encode_challenge``
below do the common part of that.

Design. Mechanisms are synchronous and touch no store: where they need the account
they return a request step, and whoever drives them answers it:

* ``CheckPassword(authcid, password, authzid)`` — PLAIN and LOGIN end here; the driver
  verifies the password (argon2id, throttling) and the exchange is over.
* ``NeedScramKeys(authcid, authzid)`` — SCRAM-SHA-256 after the client-first message;
  the driver looks the keys up and calls ``ScramSha256Server.provide_keys(keys)``
  (``None`` for an unknown user: the exchange goes on with fake keys and fails at the
  proof, so the wire never reveals whether the account exists).

This keeps every mechanism testable with plain bytes, and puts the async part in one
place: ``mailkeep.auth.service.SaslSession``, which protocol handlers use as
``await session.start(initial)`` / ``await session.step(data)`` → ``Challenge`` |
``Authenticated`` | ``Failure``. Mechanisms never raise on client data: malformed input
is a ``Failure`` with a reason.

Authorization identities (``authzid``) are passed through; the driver refuses any that
differs from the authentication identity (no proxy authentication yet).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import ClassVar

from mailkeep.auth.passwords import SCRAM_ITERATIONS, SCRAM_SALT_BYTES, ScramKeys, hmac_sha256
from mailkeep.auth.saslprep import SaslprepError, saslprep

# ------------------------------------------------------------------------------- steps


class FailureCode(enum.Enum):
    """Why an exchange failed; each protocol maps these onto its replies once."""

    MALFORMED = "malformed"
    """The client's mechanism data is not what the mechanism defines."""
    AUTHENTICATION_FAILED = "authentication-failed"
    """Wrong user name or password (never says which)."""
    AUTHORIZATION_FAILED = "authorization-failed"
    """Authenticated, but the requested authorization identity is refused."""
    UNKNOWN_MECHANISM = "unknown-mechanism"
    ENCRYPTION_REQUIRED = "encryption-required"
    """A plain-text mechanism on a connection where passwords are refused."""
    CANCELLED = "cancelled"
    """The client sent ``*``."""
    UNAVAILABLE = "unavailable"
    """The store failed temporarily; trying again later may succeed."""


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send ``data`` to the client (base64-encoded by the protocol) and await a response."""

    data: bytes


@dataclass(frozen=True, slots=True)
class CheckPassword:
    """The mechanism has a user name and password; the driver verifies them."""

    authcid: str
    password: str
    authzid: str | None


@dataclass(frozen=True, slots=True)
class NeedScramKeys:
    """SCRAM needs the user's stored keys: answer with ``provide_keys``."""

    authcid: str
    authzid: str | None


@dataclass(frozen=True, slots=True)
class Success:
    """The mechanism authenticated ``authcid``. ``final`` is RFC 4422 "additional data
    with success" (SCRAM's server signature), None when there is none."""

    authcid: str
    authzid: str | None
    final: bytes | None


@dataclass(frozen=True, slots=True)
class Failure:
    code: FailureCode
    reason: str
    """Human-readable, safe to show to the client."""


Step = Challenge | CheckPassword | NeedScramKeys | Success | Failure


# --------------------------------------------------------------------------- wire helpers


class SaslEncodingError(ValueError):
    """A client response that is not valid base64."""


CANCEL = b"*"


def decode_response(line: bytes) -> bytes | None:
    """A client's continuation line (without CRLF) → raw bytes, or None when the client
    cancelled with ``*`` (RFC 9051 6.2.2, RFC 4954 section 4, RFC 5034 section 4).
    Raises SaslEncodingError for anything that is not strict base64."""
    line = line.strip(b" \t\r\n")
    if line == CANCEL:
        return None
    return _b64decode(line)


def decode_initial_response(argument: bytes) -> bytes:
    """An initial response given with the command (IMAP SASL-IR, SMTP AUTH, POP3 AUTH):
    ``=`` stands for an empty one (RFC 4959 section 3, RFC 4954 section 4)."""
    argument = argument.strip(b" \t\r\n")
    if argument == b"=":
        return b""
    return _b64decode(argument)


def encode_challenge(data: bytes) -> bytes:
    """Base64 for a continuation line; empty data gives an empty string."""
    return base64.b64encode(data)


def _b64decode(text: bytes) -> bytes:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise SaslEncodingError("invalid base64 in SASL response") from None


# --------------------------------------------------------------------------- mechanisms


def _malformed(reason: str) -> Failure:
    return Failure(FailureCode.MALFORMED, reason)


_FINISHED = _malformed("the authentication exchange is already finished")


class ServerMechanism:
    """One exchange of one mechanism; create a new object for every AUTHENTICATE."""

    name: ClassVar[str]
    plaintext: ClassVar[bool]
    """Whether the client sends its password in the clear (refused without TLS)."""

    def start(self, initial: bytes | None) -> Step:
        """Begin, with the initial response if the client sent one (None if not)."""
        raise NotImplementedError

    def step(self, data: bytes) -> Step:
        """The client's response to the last ``Challenge``."""
        raise NotImplementedError


class PlainServer(ServerMechanism):
    """RFC 4616: one message ``[authzid] NUL authcid NUL passwd``, UTF-8."""

    name = "PLAIN"
    plaintext = True

    def __init__(self) -> None:
        self._waiting = False
        self._done = False

    def start(self, initial: bytes | None) -> Step:
        if self._done or self._waiting:
            return _FINISHED
        if initial is None:
            # RFC 4616 section 2: no initial response → an empty challenge.
            self._waiting = True
            return Challenge(b"")
        return self._message(initial)

    def step(self, data: bytes) -> Step:
        if not self._waiting:
            return _FINISHED
        return self._message(data)

    def _message(self, message: bytes) -> Step:
        self._waiting = False
        self._done = True
        # message = [authzid] UTF8NUL authcid UTF8NUL passwd  (RFC 4616 section 2)
        parts = message.split(b"\0")
        if len(parts) != 3:
            return _malformed("PLAIN expects authzid NUL authcid NUL password")
        try:
            authzid, authcid, password = (p.decode("utf-8") for p in parts)
        except UnicodeDecodeError:
            return _malformed("PLAIN message is not UTF-8")
        if not authcid or not password:
            return _malformed("PLAIN user name and password must not be empty")
        return CheckPassword(authcid, password, authzid or None)


class LoginServer(ServerMechanism):
    """draft-murchison-sasl-login: challenges ``Username:`` then ``Password:``.

    Some clients send the user name as an initial response; that is accepted and
    skips the first challenge.
    """

    name = "LOGIN"
    plaintext = True

    def __init__(self) -> None:
        self._state = "start"
        self._user = ""

    def start(self, initial: bytes | None) -> Step:
        if self._state != "start":
            return _FINISHED
        if initial is None:
            self._state = "user"
            return Challenge(b"Username:")
        return self._username(initial)

    def step(self, data: bytes) -> Step:
        if self._state == "user":
            return self._username(data)
        if self._state == "password":
            self._state = "done"
            try:
                password = data.decode("utf-8")
            except UnicodeDecodeError:
                return _malformed("LOGIN password is not UTF-8")
            if not password:
                return _malformed("LOGIN password must not be empty")
            return CheckPassword(self._user, password, None)
        return _FINISHED

    def _username(self, data: bytes) -> Step:
        try:
            user = data.decode("utf-8")
        except UnicodeDecodeError:
            self._state = "done"
            return _malformed("LOGIN user name is not UTF-8")
        if not user:
            self._state = "done"
            return _malformed("LOGIN user name must not be empty")
        self._user = user
        self._state = "password"
        return Challenge(b"Password:")


# Fake keys for unknown users are derived from this, so that the salt a user name gets
# is stable for the life of the process (a changing salt would reveal a fake account).
_FAKE_KEY_SECRET = secrets.token_bytes(32)

# RFC 5802 section 7: printable = %x21-2B / %x2D-7E  (no comma)
_PRINTABLE = frozenset(chr(c) for c in range(0x21, 0x7F)) - {","}


def decode_saslname(text: str) -> str | None:
    """RFC 5802 section 5.1: ``=2C`` is ``,`` and ``=3D`` is ``=``; any other ``=`` (or a
    bare ``,``) makes the name invalid (None)."""
    if "," in text:
        return None
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "=":
            escape = text[i : i + 3]
            if escape == "=2C":
                out.append(",")
            elif escape == "=3D":
                out.append("=")
            else:
                return None
            i += 3
        else:
            out.append(c)
            i += 1
    return "".join(out)


def encode_saslname(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


class ScramSha256Server(ServerMechanism):
    """SCRAM-SHA-256 (RFC 7677, RFC 5802) without channel binding.

    gs2 headers ``n,,`` and ``y,,`` are accepted (we never advertise the -PLUS variant,
    so ``y`` is no downgrade, RFC 5802 section 6); ``p=`` is refused. The user name is
    SASLprep'd (RFC 5802 section 5.1, query semantics).
    """

    name = "SCRAM-SHA-256"
    plaintext = False

    def __init__(self, *, nonce: str | None = None) -> None:
        """``nonce`` fixes the server nonce part (tests reproduce RFC 7677 section 3)."""
        self._server_nonce = nonce if nonce is not None else secrets.token_urlsafe(18)
        self._state = "start"
        self._gs2_header = ""
        self._client_first_bare = ""
        self._authcid = ""
        self._authzid: str | None = None
        self._nonce = ""
        self._server_first = ""
        self._keys: ScramKeys | None = None
        self._real = False

    def start(self, initial: bytes | None) -> Step:
        if self._state != "start":
            return _FINISHED
        if initial is None:
            self._state = "first"
            return Challenge(b"")
        return self._client_first(initial)

    def step(self, data: bytes) -> Step:
        if self._state == "first":
            return self._client_first(data)
        if self._state == "final":
            return self._client_final(data)
        return _FINISHED

    def provide_keys(
        self,
        keys: ScramKeys | None,
        *,
        account: str | None = None,
        iterations: int = SCRAM_ITERATIONS,
    ) -> Step:
        """Answer ``NeedScramKeys``: the user's keys, or None for an unknown user.

        For an unknown user, fake keys are made whose salt depends on ``account`` (the
        normalised name; default the user name as sent) and whose iteration count is
        ``iterations``: name variants that reach one real account get one salt, so
        variants of a fake one must too, and the count must be the one real keys have.
        """
        if self._state != "keys":
            return _FINISHED
        if keys is None:
            name = account if account is not None else self._authcid
            seed = hmac_sha256(_FAKE_KEY_SECRET, name.encode())
            salt = hmac_sha256(seed, b"salt")[:SCRAM_SALT_BYTES]
            keys = ScramKeys(iterations, salt, secrets.token_bytes(32), seed)
            self._real = False
        else:
            self._real = True
        self._keys = keys
        salt_b64 = base64.b64encode(keys.salt).decode()
        # server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count
        self._server_first = f"r={self._nonce},s={salt_b64},i={keys.iterations}"
        self._state = "final"
        return Challenge(self._server_first.encode())

    def _client_first(self, data: bytes) -> Step:
        self._state = "done"  # until proven otherwise
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return _malformed("SCRAM client-first message is not UTF-8")
        # client-first-message = gs2-header client-first-message-bare
        # gs2-header = gs2-cbind-flag "," [ authzid ] ","
        fields = text.split(",", 2)
        if len(fields) != 3:
            return _malformed("SCRAM client-first message lacks a gs2 header")
        cbind, authz, bare = fields
        if cbind.startswith("p="):
            return _malformed("SCRAM channel binding is not supported")
        if cbind not in ("n", "y"):
            return _malformed("SCRAM gs2 channel binding flag must be n or y")
        authzid: str | None = None
        if authz:
            if not authz.startswith("a="):
                return _malformed("SCRAM authorization identity must be a=saslname")
            authzid = decode_saslname(authz[2:])
            if not authzid:
                return _malformed("SCRAM authorization identity is malformed")
        # client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
        attrs = bare.split(",")
        if attrs[0].startswith("m="):
            return _malformed("SCRAM mandatory extensions are not supported")
        if len(attrs) < 2 or not attrs[0].startswith("n=") or not attrs[1].startswith("r="):
            return _malformed("SCRAM client-first message must be n=user,r=nonce")
        if not all(_is_attr(a) for a in attrs[2:]):
            return _malformed("SCRAM extension attribute is malformed")
        username = decode_saslname(attrs[0][2:])
        if not username:
            return _malformed("SCRAM user name is malformed")
        try:
            username = saslprep(username, allow_unassigned=True)
        except SaslprepError as exc:
            return _malformed(f"SCRAM user name: {exc}")
        if not username:
            return _malformed("SCRAM user name is empty")
        nonce = attrs[1][2:]
        if not nonce or not set(nonce) <= _PRINTABLE:
            return _malformed("SCRAM client nonce is empty or not printable")
        self._gs2_header = f"{cbind},{authz},"
        self._client_first_bare = bare
        self._authcid = username
        self._authzid = authzid
        self._nonce = nonce + self._server_nonce
        self._state = "keys"
        return NeedScramKeys(username, authzid)

    def _client_final(self, data: bytes) -> Step:
        self._state = "done"
        keys = self._keys
        assert keys is not None  # set by provide_keys before the "final" state
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return _malformed("SCRAM client-final message is not UTF-8")
        # client-final-message = channel-binding "," nonce ["," extensions] "," proof
        without_proof, sep, proof_b64 = text.rpartition(",p=")
        if not sep:
            return _malformed("SCRAM client-final message lacks a proof")
        attrs = without_proof.split(",")
        if len(attrs) < 2 or not attrs[0].startswith("c=") or not attrs[1].startswith("r="):
            return _malformed("SCRAM client-final message must be c=...,r=...,p=...")
        if not all(_is_attr(a) for a in attrs[2:]):
            return _malformed("SCRAM extension attribute is malformed")
        try:
            cbind_data = base64.b64decode(attrs[0][2:], validate=True)
            proof = base64.b64decode(proof_b64, validate=True)
        except binascii.Error:
            return _malformed("SCRAM channel binding or proof is not base64")
        # Without channel binding, c= carries the gs2 header alone (RFC 5802 section 7).
        if cbind_data != self._gs2_header.encode():
            return _malformed("SCRAM channel binding does not match the gs2 header")
        if attrs[1][2:] != self._nonce:
            return _malformed("SCRAM nonce does not match")
        if len(proof) != hashlib.sha256().digest_size:
            return _malformed("SCRAM proof has the wrong length")
        # RFC 5802 section 3: recover ClientKey from the proof and compare its hash.
        auth_message = ",".join((self._client_first_bare, self._server_first, without_proof))
        client_signature = hmac_sha256(keys.stored_key, auth_message.encode())
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
        valid = hmac.compare_digest(hashlib.sha256(client_key).digest(), keys.stored_key)
        if not (valid and self._real):
            return Failure(FailureCode.AUTHENTICATION_FAILED, "authentication failed")
        server_signature = hmac_sha256(keys.server_key, auth_message.encode())
        final = b"v=" + base64.b64encode(server_signature)
        return Success(self._authcid, self._authzid, final)


def _is_attr(text: str) -> bool:
    """attr-val = ALPHA "=" value  (RFC 5802 section 7, extensions)."""
    return len(text) >= 2 and text[0].isascii() and text[0].isalpha() and text[1] == "="


SERVER_MECHANISMS: dict[str, type[ServerMechanism]] = {
    "SCRAM-SHA-256": ScramSha256Server,
    "PLAIN": PlainServer,
    "LOGIN": LoginServer,
}
"""Supported mechanisms, in the order they should be advertised (strongest first)."""


def server_mechanism(name: str) -> ServerMechanism | None:
    """A fresh mechanism for ``name`` (case-insensitive), or None when unsupported."""
    cls = SERVER_MECHANISMS.get(name.upper())
    return cls() if cls is not None else None
