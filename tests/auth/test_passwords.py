"""argon2id hashes, SCRAM stored keys and SASLprep."""

from __future__ import annotations

import base64

import argon2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailkeep.auth.passwords import (
    DUMMY_HASH,
    ScramKeys,
    hash_password,
    needs_rehash,
    parse_scram,
    scram_stored,
    verify_password,
)
from mailkeep.auth.saslprep import SaslprepError, prepare_password, saslprep


def test_hash_verifies_only_its_password() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "correct horsE")
    assert not needs_rehash(stored)


def test_hashes_are_salted() -> None:
    assert hash_password("same") != hash_password("same")


@pytest.mark.parametrize(
    "stored",
    ["", "plain", "$argon2id$v=19$m=65536,t=3,p=4$bad", "$2b$12$abcdefghijklmnopqrstuv", "$$$"],
)
def test_malformed_hash_is_false_not_an_error(stored: str) -> None:
    assert verify_password(stored, "anything") is False
    assert needs_rehash(stored)


def test_old_parameters_need_rehash() -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("pw")
    assert verify_password(weak, "pw")
    assert needs_rehash(weak)


def test_dummy_hash_matches_current_parameters() -> None:
    # Equal work for unknown users only holds while the dummy uses today's parameters.
    assert not needs_rehash(DUMMY_HASH)
    assert argon2.extract_parameters(DUMMY_HASH) == argon2.extract_parameters(hash_password("x"))
    assert not verify_password(DUMMY_HASH, "")


def test_password_is_saslprepped_before_hashing() -> None:
    # RFC 4013 section 3 example 5: U+2168 ROMAN NUMERAL NINE prepares to "IX".
    stored = hash_password("I\u00adX")
    assert verify_password(stored, "\u2168")
    assert verify_password(stored, "IX")


# ----------------------------------------------------------------------------- SCRAM keys


def test_scram_keys_match_rfc7677_example() -> None:
    # RFC 7677 section 3: user "user", password "pencil", salt and count from the example.
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    keys = ScramKeys.parse(scram_stored("pencil", 4096, salt))
    assert keys.iterations == 4096
    assert keys.salt == salt
    # The keys themselves are checked against the example's proof and signature in
    # test_sasl.py; here the stored form round-trips.
    assert ScramKeys.parse(keys.encode()) == keys
    assert len(keys.stored_key) == len(keys.server_key) == 32


def test_scram_stored_format() -> None:
    text = scram_stored("secret")
    iterations, salt, stored_key, server_key = text.split("$")
    assert iterations == "4096"
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(stored_key)) == len(base64.b64decode(server_key)) == 32
    assert scram_stored("secret") != text  # fresh salt each time


@pytest.mark.parametrize(
    "text",
    [
        "",
        "4096",
        "x$AAAA$AAAA$AAAA",
        "0$" + "QUJD$" + "A" * 43 + "=$" + "A" * 43 + "=",
        "4096$$" + "A" * 43 + "=$" + "A" * 43 + "=",
        "4096$QUJD$notbase64!$" + "A" * 43 + "=",
        "4096$QUJD$QUJD$QUJD",
        "4096$QUJD$QUJD$QUJD$QUJD",
    ],
)
def test_malformed_scram_keys(text: str) -> None:
    with pytest.raises(ValueError):
        ScramKeys.parse(text)
    assert parse_scram(text) is None


def test_parse_scram_none() -> None:
    assert parse_scram(None) is None


@given(st.text(max_size=60))
def test_parse_scram_never_raises_anything_else(text: str) -> None:
    assert parse_scram(text) is None or isinstance(parse_scram(text), ScramKeys)


# ------------------------------------------------------------------------------- SASLprep


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ("I\u00adX", "IX"),  # RFC 4013 section 3, examples 1-5
        ("user", "user"),
        ("USER", "USER"),
        ("\u00aa", "a"),
        ("\u2168", "IX"),
        ("a\u00a0b", "a b"),  # non-ASCII space maps to SPACE
        ("\u0627\u0628", "\u0627\u0628"),  # all right-to-left is fine
    ],
)
def test_saslprep_rfc4013_examples(given_: str, expected: str) -> None:
    assert saslprep(given_) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "\u0007",  # example 6: prohibited control character
        "\u06271",  # example 7: bidi check
        "a\u0627",  # LCat and RandALCat mixed
        "\ue000",  # private use
        "x\ufffdy",  # C.6 inappropriate for plain text
    ],
)
def test_saslprep_prohibited(bad: str) -> None:
    with pytest.raises(SaslprepError):
        saslprep(bad)


def test_saslprep_unassigned_only_in_queries() -> None:
    unassigned = "\u0221"  # unassigned in Unicode 3.2
    with pytest.raises(SaslprepError):
        saslprep(unassigned)
    assert saslprep(unassigned, allow_unassigned=True) == unassigned


def test_prepare_password_keeps_unpreparable_passwords() -> None:
    assert prepare_password("tab\there") == "tab\there"
    assert prepare_password("\u2168") == "IX"


@given(st.text(max_size=40))
def test_saslprep_only_raises_saslprep_error(text: str) -> None:
    try:
        result = saslprep(text, allow_unassigned=True)
    except SaslprepError:
        return
    assert not any(ord(c) < 0x20 or c == "\u00ad" for c in result)
