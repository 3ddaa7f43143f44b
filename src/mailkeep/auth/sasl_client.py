"""Client-side SASL mechanisms (PLAIN, LOGIN, SCRAM-SHA-256), sans-I/O, for mailkeep's
own client tools and the tests.

Use::

    mech = client_mechanism("SCRAM-SHA-256", "user@example.org", "secret")
    initial = mech.initial_response()      # send with the command (SASL-IR), or None
    while server sends a challenge c:      # raw bytes, base64-decoded by the caller
        send(mech.respond(c))
    on success: mech.finish(additional_data_or_None)

``finish`` matters for SCRAM: it raises unless the server proved that it knows the
password (RFC 5802 section 3, ServerSignature), whether the proof came as a last
challenge or as additional data with success. Every method raises ``SaslClientError``
when the server's messages make no sense.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import ClassVar

from mailkeep.auth.passwords import hmac_sha256, salted_password
from mailkeep.auth.sasl import encode_saslname
from mailkeep.auth.saslprep import SaslprepError, saslprep
from mailkeep.errors import MailkeepError

MAX_SCRAM_ITERATIONS = 10_000_000
"""A hostile server could ask for any count; past this we refuse to spend the CPU."""


class SaslClientError(MailkeepError):
    """The server broke the mechanism, or could not prove its identity."""


class ClientMechanism:
    name: ClassVar[str]

    def initial_response(self) -> bytes | None:
        """Data to send with the command, or None when the mechanism starts without."""
        raise NotImplementedError

    def respond(self, challenge: bytes) -> bytes:
        """The response to a server challenge."""
        raise NotImplementedError

    def finish(self, final: bytes | None = None) -> None:
        """The server reported success (with ``final``, its additional data, if any)."""
        if final:
            raise SaslClientError(f"{self.name} has no additional data with success")


class PlainClient(ClientMechanism):
    """RFC 4616."""

    name = "PLAIN"

    def __init__(self, username: str, password: str, authzid: str | None = None) -> None:
        self._message = f"{authzid or ''}\0{username}\0{password}".encode()
        self._sent = False

    def initial_response(self) -> bytes | None:
        self._sent = True
        return self._message

    def respond(self, challenge: bytes) -> bytes:
        if self._sent:
            raise SaslClientError("PLAIN server sent an unexpected challenge")
        self._sent = True
        return self._message


class LoginClient(ClientMechanism):
    """draft-murchison-sasl-login: the user name, then the password, one per challenge.

    The prompts' wording varies between servers, so they are answered by position."""

    name = "LOGIN"

    def __init__(self, username: str, password: str) -> None:
        self._answers = [username.encode(), password.encode()]

    def initial_response(self) -> bytes | None:
        return None

    def respond(self, challenge: bytes) -> bytes:
        if not self._answers:
            raise SaslClientError("LOGIN server sent more than two challenges")
        return self._answers.pop(0)


class ScramSha256Client(ClientMechanism):
    """RFC 7677 / RFC 5802, without channel binding (gs2 header ``n``)."""

    name = "SCRAM-SHA-256"

    def __init__(
        self,
        username: str,
        password: str,
        authzid: str | None = None,
        *,
        nonce: str | None = None,
    ) -> None:
        try:
            username = saslprep(username, allow_unassigned=True)
        except SaslprepError:
            pass  # let the server judge it
        self._password = password
        self._nonce = nonce if nonce is not None else secrets.token_urlsafe(24)
        authz = f"a={encode_saslname(authzid)}" if authzid else ""
        self._gs2_header = f"n,{authz},"
        self._first_bare = f"n={encode_saslname(username)},r={self._nonce}"
        self._state = "start"
        self._server_signature = b""

    def initial_response(self) -> bytes | None:
        if self._state != "start":
            raise SaslClientError("SCRAM exchange already started")
        self._state = "first-sent"
        return (self._gs2_header + self._first_bare).encode()

    def respond(self, challenge: bytes) -> bytes:
        if self._state == "start":
            if challenge:
                raise SaslClientError("SCRAM server spoke before the client")
            initial = self.initial_response()
            assert initial is not None
            return initial
        if self._state == "first-sent":
            return self._client_final(challenge)
        if self._state == "final-sent":
            self._verify(challenge)
            return b""
        raise SaslClientError("SCRAM server sent a challenge after its signature")

    def finish(self, final: bytes | None = None) -> None:
        if final:
            if self._state != "final-sent":
                raise SaslClientError("SCRAM server sent its signature out of turn")
            self._verify(final)
        if self._state != "verified":
            raise SaslClientError("SCRAM server reported success without proving its identity")

    def _client_final(self, server_first: bytes) -> bytes:
        try:
            text = server_first.decode("utf-8")
        except UnicodeDecodeError:
            raise SaslClientError("SCRAM server-first message is not UTF-8") from None
        attrs = text.split(",")
        if attrs[0].startswith("m="):
            raise SaslClientError("SCRAM server requires an unsupported extension")
        if len(attrs) < 3 or [a[:2] for a in attrs[:3]] != ["r=", "s=", "i="]:
            raise SaslClientError("SCRAM server-first message is not r=...,s=...,i=...")
        nonce, salt_b64, count = (a[2:] for a in attrs[:3])
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise SaslClientError("SCRAM server nonce does not extend the client nonce")
        try:
            salt = base64.b64decode(salt_b64, validate=True)
        except binascii.Error:
            raise SaslClientError("SCRAM salt is not base64") from None
        if not count.isdigit() or not 1 <= int(count) <= MAX_SCRAM_ITERATIONS:
            raise SaslClientError(f"SCRAM iteration count {count!r} is not acceptable")
        salted = salted_password(self._password, salt, int(count))
        client_key = hmac_sha256(salted, b"Client Key")
        stored_key = hashlib.sha256(client_key).digest()
        channel = base64.b64encode(self._gs2_header.encode()).decode()
        without_proof = f"c={channel},r={nonce}"
        auth_message = f"{self._first_bare},{text},{without_proof}".encode()
        signature = hmac_sha256(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac_sha256(salted, b"Server Key")
        self._server_signature = hmac_sha256(server_key, auth_message)
        self._state = "final-sent"
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def _verify(self, server_final: bytes) -> None:
        # server-final-message = (server-error / verifier) ["," extensions]
        self._state = "failed"
        text = server_final.decode("utf-8", "replace")
        first = text.split(",")[0]
        if first.startswith("e="):
            raise SaslClientError(f"SCRAM server error: {first[2:]}")
        if not first.startswith("v="):
            raise SaslClientError("SCRAM server-final message lacks v=")
        try:
            signature = base64.b64decode(first[2:], validate=True)
        except binascii.Error:
            raise SaslClientError("SCRAM server signature is not base64") from None
        if not hmac.compare_digest(signature, self._server_signature):
            raise SaslClientError("SCRAM server signature is wrong: the server is not genuine")
        self._state = "verified"


def client_mechanism(
    name: str, username: str, password: str, authzid: str | None = None
) -> ClientMechanism:
    """A client mechanism by name (case-insensitive); raises ValueError if unsupported.
    LOGIN has no authorization identity: one that is given must be the user name."""
    match name.upper():
        case "PLAIN":
            return PlainClient(username, password, authzid)
        case "LOGIN":
            if authzid and authzid != username:
                raise ValueError("LOGIN cannot carry an authorization identity")
            return LoginClient(username, password)
        case "SCRAM-SHA-256":
            return ScramSha256Client(username, password, authzid)
    raise ValueError(f"unsupported SASL mechanism {name!r}")


CLIENT_PREFERENCE = ("SCRAM-SHA-256", "PLAIN", "LOGIN")


def choose_mechanism(offered: list[str] | tuple[str, ...]) -> str | None:
    """The best mechanism among those a server offers, or None."""
    upper = {m.upper() for m in offered}
    return next((m for m in CLIENT_PREFERENCE if m in upper), None)
