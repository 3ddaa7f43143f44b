"""Password storage: argon2id hashes and SCRAM-SHA-256 stored keys.

Every function prepares the password with SASLprep first (``prepare_password``), so a
password set once verifies the same over PLAIN, LOGIN and SCRAM-SHA-256.

Two stored forms per account (``Credentials`` in ``mailkeep.store.api``):

* ``password_hash``: argon2id in PHC string format (argon2-cffi's RFC 9106 low-memory
  defaults: t=3, m=64 MiB, p=4). Verifying costs ~0.1 s of CPU: callers run it in a thread.
* ``scram_sha256``: ``iterations$salt_b64$stored_key_b64$server_key_b64``, the RFC 5802
  section 3 keys. They let the server check a SCRAM proof without the password; they are
  derived when the password is set, or on the first successful plain-text login.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mailkeep.auth.saslprep import prepare_password

_HASHER = PasswordHasher()

DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$bWFpbGtlZXA6ZHVtbXk6MA$"
    "C6a7WUWi4J0iumo3ABL27Pn5tr1/BqDStkV1IVCDpaQ"
)
"""A valid hash (of a password nobody knows) with the current parameters. Verifying a
login for an unknown user against it costs the same time as a wrong password for a
real one, so response times do not reveal which accounts exist."""

SCRAM_ITERATIONS = 4096
"""RFC 7677 section 4: the iteration count SHOULD be at least 4096."""

SCRAM_SALT_BYTES = 16


def hash_password(password: str) -> str:
    """An argon2id PHC string for ``password`` (with a fresh random salt)."""
    return _HASHER.hash(prepare_password(password))


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches; False (never an exception) for a malformed hash."""
    try:
        return _HASHER.verify(password_hash, prepare_password(password))
    except (VerificationError, InvalidHashError):
        return False
    except ValueError:  # e.g. a hash of another type argon2-cffi cannot parse
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (rehash on login)."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


# ------------------------------------------------------------------------------- SCRAM


@dataclass(frozen=True, slots=True)
class ScramKeys:
    """RFC 5802 section 3: what the server stores instead of the password."""

    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    def encode(self) -> str:
        """The ``iterations$salt$stored_key$server_key`` form kept in the store."""
        parts = (self.salt, self.stored_key, self.server_key)
        return "$".join([str(self.iterations), *(base64.b64encode(p).decode() for p in parts)])

    @classmethod
    def parse(cls, text: str) -> ScramKeys:
        """Read the stored form; raises ValueError when it is malformed."""
        fields = text.split("$")
        if len(fields) != 4 or not fields[0].isdigit():
            raise ValueError("SCRAM keys are not iterations$salt$stored_key$server_key")
        try:
            salt, stored, server = (base64.b64decode(f, validate=True) for f in fields[1:])
        except binascii.Error:
            raise ValueError("SCRAM keys contain invalid base64") from None
        iterations = int(fields[0])
        if iterations < 1 or not salt or len(stored) != 32 or len(server) != 32:
            raise ValueError("SCRAM keys have a bad iteration count, salt or key length")
        return cls(iterations, salt, stored, server)

    @classmethod
    def derive(cls, password: str, iterations: int, salt: bytes) -> ScramKeys:
        """RFC 5802 section 3: SaltedPassword, then StoredKey and ServerKey."""
        salted = salted_password(password, salt, iterations)
        client_key = hmac_sha256(salted, b"Client Key")
        server_key = hmac_sha256(salted, b"Server Key")
        return cls(iterations, salt, hashlib.sha256(client_key).digest(), server_key)


def scram_stored(
    password: str, iterations: int = SCRAM_ITERATIONS, salt: bytes | None = None
) -> str:
    """The stored SCRAM-SHA-256 keys for ``password``, encoded for ``Credentials``."""
    if salt is None:
        salt = secrets.token_bytes(SCRAM_SALT_BYTES)
    return ScramKeys.derive(password, iterations, salt).encode()


def parse_scram(text: str | None) -> ScramKeys | None:
    """Parse stored keys; None when absent or malformed (the caller treats both alike)."""
    if text is None:
        return None
    try:
        return ScramKeys.parse(text)
    except ValueError:
        return None


def salted_password(password: str, salt: bytes, iterations: int) -> bytes:
    """RFC 5802 section 2.2: Hi(Normalize(password), salt, i) is PBKDF2 with HMAC-SHA-256."""
    return hashlib.pbkdf2_hmac("sha256", prepare_password(password).encode(), salt, iterations)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")
