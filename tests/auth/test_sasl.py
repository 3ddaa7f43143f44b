"""Server and client SASL mechanisms, without sockets or a store."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailkeep.auth.passwords import ScramKeys, hmac_sha256, salted_password
from mailkeep.auth.sasl import (
    SERVER_MECHANISMS,
    Challenge,
    CheckPassword,
    Failure,
    FailureCode,
    LoginServer,
    NeedScramKeys,
    PlainServer,
    SaslEncodingError,
    ScramSha256Server,
    ServerMechanism,
    Step,
    Success,
    decode_initial_response,
    decode_response,
    decode_saslname,
    encode_challenge,
    encode_saslname,
    server_mechanism,
)
from mailkeep.auth.sasl_client import (
    ClientMechanism,
    LoginClient,
    PlainClient,
    SaslClientError,
    ScramSha256Client,
    choose_mechanism,
    client_mechanism,
)

# RFC 7677 section 3
RFC_CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
PENCIL_KEYS = ScramKeys.derive("pencil", 4096, RFC_SALT)


def malformed(step: Step) -> str:
    assert isinstance(step, Failure), step
    assert step.code is FailureCode.MALFORMED
    return step.reason


# ------------------------------------------------------------------------------ wire helpers


def test_decode_response() -> None:
    assert decode_response(b"dGVzdA==") == b"test"
    assert decode_response(b"dGVzdA==\r\n") == b"test"
    assert decode_response(b"") == b""
    assert decode_response(b"*") is None
    assert decode_response(b" * ") is None


@pytest.mark.parametrize("bad", [b"dGVzdA=", b"dGV*dA==", b"dGVzdA==dGVz", b"====", b"a"])
def test_decode_response_rejects_bad_base64(bad: bytes) -> None:
    with pytest.raises(SaslEncodingError):
        decode_response(bad)


def test_initial_response_equals_sign_is_empty() -> None:
    assert decode_initial_response(b"=") == b""
    assert decode_initial_response(b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm") == b"\0tim\0tanstaaftanstaaf"
    with pytest.raises(SaslEncodingError):
        decode_initial_response(b"==")


def test_encode_challenge() -> None:
    assert encode_challenge(b"") == b""
    assert encode_challenge(b"Username:") == b"VXNlcm5hbWU6"


def test_server_mechanism_lookup() -> None:
    assert isinstance(server_mechanism("plain"), PlainServer)
    assert isinstance(server_mechanism("SCRAM-SHA-256"), ScramSha256Server)
    assert server_mechanism("CRAM-MD5") is None
    assert list(SERVER_MECHANISMS) == ["SCRAM-SHA-256", "PLAIN", "LOGIN"]
    assert [m.plaintext for m in SERVER_MECHANISMS.values()] == [False, True, True]


# ------------------------------------------------------------------------------------ PLAIN


def test_plain_rfc4616_examples() -> None:
    # RFC 4616 section 4: no initial response, an empty challenge, then the message.
    server = PlainServer()
    assert server.start(None) == Challenge(b"")
    assert server.step(b"\0tim\0tanstaaftanstaaf") == CheckPassword("tim", "tanstaaftanstaaf", None)
    # Second example: Kurt authenticates and asks to act as Ursel (refused later, by the
    # service; the mechanism reports the identities).
    assert PlainServer().start(b"Ursel\0Kurt\0xipj3plmq") == CheckPassword(
        "Kurt", "xipj3plmq", "Ursel"
    )


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"", "authzid NUL authcid NUL password"),
        (b"tim\0secret", "authzid NUL authcid NUL password"),
        (b"\0tim\0sec\0ret", "authzid NUL authcid NUL password"),
        (b"\0\0secret", "must not be empty"),
        (b"\0tim\0", "must not be empty"),
        (b"\0t\xffm\0secret", "not UTF-8"),
    ],
)
def test_plain_malformed(message: bytes, reason: str) -> None:
    assert reason in malformed(PlainServer().start(message))


def test_plain_utf8_identities() -> None:
    step = PlainServer().start("\0jürgen@example.org\0pässwörd".encode())
    assert step == CheckPassword("jürgen@example.org", "pässwörd", None)


def test_plain_is_one_shot() -> None:
    server = PlainServer()
    server.start(b"\0tim\0x")
    assert "already finished" in malformed(server.step(b"\0tim\0x"))
    assert "already finished" in malformed(PlainServer().step(b"\0tim\0x"))


# ------------------------------------------------------------------------------------ LOGIN


def test_login_challenges_username_then_password() -> None:
    server = LoginServer()
    assert server.start(None) == Challenge(b"Username:")
    assert server.step(b"tim") == Challenge(b"Password:")
    assert server.step(b"secret") == CheckPassword("tim", "secret", None)
    assert "already finished" in malformed(server.step(b"more"))


def test_login_accepts_username_as_initial_response() -> None:
    server = LoginServer()
    assert server.start(b"tim") == Challenge(b"Password:")
    assert server.step(b"secret") == CheckPassword("tim", "secret", None)


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        (b"", None, "user name must not be empty"),
        (b"\xff", None, "user name is not UTF-8"),
        (b"tim", b"", "password must not be empty"),
        (b"tim", b"\xfe", "password is not UTF-8"),
    ],
)
def test_login_malformed(username: bytes, password: bytes | None, reason: str) -> None:
    server = LoginServer()
    server.start(None)
    step = server.step(username)
    if password is not None:
        step = server.step(password)
    assert reason in malformed(step)
    assert "already finished" in malformed(server.step(b"x"))


# ------------------------------------------------------------------------------------ SCRAM


def test_scram_server_rfc7677_exchange() -> None:
    server = ScramSha256Server(nonce=RFC_SERVER_NONCE)
    assert server.start(RFC_CLIENT_FIRST) == NeedScramKeys("user", None)
    assert server.provide_keys(PENCIL_KEYS) == Challenge(RFC_SERVER_FIRST)
    assert server.step(RFC_CLIENT_FINAL) == Success("user", None, RFC_SERVER_FINAL)


def test_scram_client_rfc7677_exchange() -> None:
    client = ScramSha256Client("user", "pencil", nonce=RFC_CLIENT_NONCE)
    assert client.initial_response() == RFC_CLIENT_FIRST
    assert client.respond(RFC_SERVER_FIRST) == RFC_CLIENT_FINAL
    assert client.respond(RFC_SERVER_FINAL) == b""
    client.finish(None)


def test_scram_client_accepts_signature_as_success_data() -> None:
    client = ScramSha256Client("user", "pencil", nonce=RFC_CLIENT_NONCE)
    client.initial_response()
    client.respond(RFC_SERVER_FIRST)
    client.finish(RFC_SERVER_FINAL)


def test_scram_without_initial_response_starts_with_empty_challenge() -> None:
    server = ScramSha256Server(nonce=RFC_SERVER_NONCE)
    assert server.start(None) == Challenge(b"")
    assert server.step(RFC_CLIENT_FIRST) == NeedScramKeys("user", None)
    client = ScramSha256Client("user", "pencil", nonce=RFC_CLIENT_NONCE)
    assert client.respond(b"") == RFC_CLIENT_FIRST


def test_scram_wrong_password_fails_authentication() -> None:
    server = ScramSha256Server(nonce=RFC_SERVER_NONCE)
    server.start(RFC_CLIENT_FIRST)
    server.provide_keys(ScramKeys.derive("crayon", 4096, RFC_SALT))
    step = server.step(RFC_CLIENT_FINAL)
    assert step == Failure(FailureCode.AUTHENTICATION_FAILED, "authentication failed")


def test_scram_unknown_user_gets_stable_fake_salt_and_fails() -> None:
    first = []
    for _ in range(2):
        server = ScramSha256Server()
        assert server.start(b"n,,n=nobody,r=abc") == NeedScramKeys("nobody", None)
        challenge = server.provide_keys(None)
        assert isinstance(challenge, Challenge)
        first.append(challenge.data.split(b",", 1)[1])
    assert first[0] == first[1]  # same s= and i= every time: no hint that it is fake
    assert first[0].endswith(b",i=4096")
    # Even a client that knows the fake salt cannot produce a valid proof.
    client = ScramSha256Client("nobody", "guess", nonce="abc")
    server = ScramSha256Server()
    server.start(client.initial_response())
    challenge = server.provide_keys(None)
    assert isinstance(challenge, Challenge)
    step = server.step(client.respond(challenge.data))
    assert isinstance(step, Failure)
    assert step.code is FailureCode.AUTHENTICATION_FAILED


def test_scram_y_flag_and_authzid() -> None:
    # gs2 header "y,a=user," must come back base64'd in c= ("eSxhPXVzZXIs").
    server = ScramSha256Server(nonce="srv")
    assert server.start(b"y,a=user,n=user,r=cli") == NeedScramKeys("user", "user")
    challenge = server.provide_keys(PENCIL_KEYS)
    assert challenge == Challenge(b"r=clisrv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    without_proof = "c=eSxhPXVzZXIs,r=clisrv"
    auth_message = f"n=user,r=cli,{challenge.data.decode()},{without_proof}".encode()
    salted = salted_password("pencil", RFC_SALT, 4096)
    client_key = hmac_sha256(salted, b"Client Key")
    signature = hmac_sha256(PENCIL_KEYS.stored_key, auth_message)
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature, strict=True)))
    step = server.step(f"{without_proof},p={proof.decode()}".encode())
    expected = b"v=" + base64.b64encode(hmac_sha256(PENCIL_KEYS.server_key, auth_message))
    assert step == Success("user", "user", expected)


def test_scram_channel_binding_must_echo_the_header() -> None:
    server = ScramSha256Server(nonce="srv")
    server.start(b"y,,n=user,r=cli")
    server.provide_keys(PENCIL_KEYS)
    # "biws" is "n,,": a client claiming y must not switch to n (RFC 5802 section 6).
    assert "does not match" in malformed(server.step(b"c=biws,r=clisrv,p=" + PROOF[2:]))


def test_scram_escaped_username() -> None:
    assert decode_saslname("a=2Cb=3Dc") == "a,b=c"
    assert encode_saslname("a,b=c") == "a=2Cb=3Dc"
    assert decode_saslname("a=2") is None
    assert decode_saslname("a=41") is None
    step = ScramSha256Server().start(b"n,,n=a=2Cb=3Dc,r=x")
    assert step == NeedScramKeys("a,b=c", None)


def test_scram_username_is_saslprepped() -> None:
    step = ScramSha256Server().start("n,,n=\u2168,r=x".encode())
    assert step == NeedScramKeys("IX", None)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"\xff", "not UTF-8"),
        (b"n=user,r=abc", "gs2 header"),
        (b"p=tls-unique,,n=user,r=abc", "channel binding is not supported"),
        (b"x,,n=user,r=abc", "flag must be n or y"),
        (b"n,b=foo,n=user,r=abc", "a=saslname"),
        (b"n,a=,n=user,r=abc", "authorization identity is malformed"),
        (b"n,,m=ext,n=user,r=abc", "mandatory extensions"),
        (b"n,,r=abc,n=user", "n=user,r=nonce"),
        (b"n,,n=user", "n=user,r=nonce"),
        (b"n,,n=us=er,r=abc", "user name is malformed"),
        (b"n,,n=,r=abc", "user name is malformed"),
        (b"n,,n=\xc2\xad,r=abc", "user name is empty"),
        (b"n,,n=\x07,r=abc", "prohibited character"),
        (b"n,,n=user,r=", "nonce is empty"),
        (b"n,,n=user,r=a\x7fb", "nonce is empty or not printable"),
        (b"n,,n=user,r=abc,1=x", "extension attribute"),
    ],
)
def test_scram_malformed_client_first(message: bytes, reason: str) -> None:
    assert reason in malformed(ScramSha256Server().start(message))


def started_scram() -> ScramSha256Server:
    server = ScramSha256Server(nonce=RFC_SERVER_NONCE)
    server.start(RFC_CLIENT_FIRST)
    server.provide_keys(PENCIL_KEYS)
    return server


NONCE = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
PROOF = b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"\xff", "not UTF-8"),
        (b"c=biws," + NONCE, "lacks a proof"),
        (b"c=biws," + PROOF, "must be c=...,r=...,p=..."),
        (NONCE + b",c=biws," + PROOF, "must be c=...,r=...,p=..."),
        (b"c=biws," + NONCE + b",!x," + PROOF, "extension attribute"),
        (b"c=biws!," + NONCE + b"," + PROOF, "not base64"),
        (b"c=biws," + NONCE + b",p=!!", "not base64"),
        (b"c=eSws," + NONCE + b"," + PROOF, "does not match the gs2 header"),
        (b"c=biws,r=rOprNGfwEbeRWgbNEkqO," + PROOF, "nonce does not match"),
        (b"c=biws," + NONCE + b",p=AAAA", "wrong length"),
    ],
)
def test_scram_malformed_client_final(message: bytes, reason: str) -> None:
    server = started_scram()
    assert reason in malformed(server.step(message))
    assert "already finished" in malformed(server.step(RFC_CLIENT_FINAL))


def test_scram_extensions_are_ignored_but_covered_by_the_proof() -> None:
    server = ScramSha256Server(nonce="srv")
    assert server.start(b"n,,n=user,r=cli,x=ext") == NeedScramKeys("user", None)


def test_scram_out_of_order_calls() -> None:
    server = ScramSha256Server()
    assert "already finished" in malformed(server.provide_keys(PENCIL_KEYS))
    assert "already finished" in malformed(server.step(b"n,,n=user,r=x"))
    server.start(b"n,,n=user,r=x")
    assert "already finished" in malformed(server.start(b"n,,n=user,r=x"))
    assert "already finished" in malformed(server.step(b"c=biws"))  # keys not provided yet


# ---------------------------------------------------------------------------------- client


def test_plain_client() -> None:
    client = PlainClient("tim", "tanstaaftanstaaf")
    assert client.initial_response() == b"\0tim\0tanstaaftanstaaf"
    with pytest.raises(SaslClientError):
        client.respond(b"")
    without_ir = PlainClient("Kurt", "xipj3plmq", "Ursel")
    assert without_ir.respond(b"") == b"Ursel\0Kurt\0xipj3plmq"
    without_ir.finish(None)
    with pytest.raises(SaslClientError):
        without_ir.finish(b"unexpected")


def test_login_client() -> None:
    client = LoginClient("tim", "secret")
    assert client.initial_response() is None
    assert client.respond(b"Username:") == b"tim"
    assert client.respond(b"Password:") == b"secret"
    with pytest.raises(SaslClientError):
        client.respond(b"Again:")


def scram_client_after_first() -> ScramSha256Client:
    client = ScramSha256Client("user", "pencil", nonce=RFC_CLIENT_NONCE)
    client.initial_response()
    return client


@pytest.mark.parametrize(
    ("server_first", "reason"),
    [
        (b"\xff", "not UTF-8"),
        (b"m=x," + RFC_SERVER_FIRST, "unsupported extension"),
        (b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "not r=...,s=...,i=..."),
        (b"r=other,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "does not extend"),
        (b"r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "does not extend"),
        (RFC_SERVER_FIRST.replace(b"s=W22", b"s=!22"), "salt is not base64"),
        (RFC_SERVER_FIRST.replace(b"i=4096", b"i=0"), "iteration count"),
        (RFC_SERVER_FIRST.replace(b"i=4096", b"i=-1"), "iteration count"),
        (RFC_SERVER_FIRST.replace(b"i=4096", b"i=99999999999"), "iteration count"),
    ],
)
def test_scram_client_rejects_bad_server_first(server_first: bytes, reason: str) -> None:
    with pytest.raises(SaslClientError, match=reason):
        scram_client_after_first().respond(server_first)


@pytest.mark.parametrize(
    ("server_final", "reason"),
    [
        (b"v=" + base64.b64encode(bytes(32)), "signature is wrong"),
        (b"e=invalid-proof", "server error: invalid-proof"),
        (b"x=1", "lacks v="),
        (b"v=!!", "not base64"),
    ],
)
def test_scram_client_rejects_bad_server_final(server_final: bytes, reason: str) -> None:
    client = scram_client_after_first()
    client.respond(RFC_SERVER_FIRST)
    with pytest.raises(SaslClientError, match=reason):
        client.respond(server_final)
    with pytest.raises(SaslClientError):
        client.finish(None)


def test_scram_client_requires_server_proof() -> None:
    client = scram_client_after_first()
    client.respond(RFC_SERVER_FIRST)
    with pytest.raises(SaslClientError, match="without proving"):
        client.finish(None)
    early = scram_client_after_first()
    with pytest.raises(SaslClientError, match="out of turn"):
        early.finish(RFC_SERVER_FINAL)


def test_scram_client_misc_protocol_errors() -> None:
    with pytest.raises(SaslClientError, match="spoke before"):
        ScramSha256Client("u", "p").respond(b"r=x")
    client = scram_client_after_first()
    with pytest.raises(SaslClientError, match="already started"):
        client.initial_response()
    client.respond(RFC_SERVER_FIRST)
    client.respond(RFC_SERVER_FINAL)
    with pytest.raises(SaslClientError, match="after its signature"):
        client.respond(b"more")


def test_client_mechanism_factory() -> None:
    assert isinstance(client_mechanism("plain", "u", "p"), PlainClient)
    assert isinstance(client_mechanism("LOGIN", "u", "p", "u"), LoginClient)
    assert isinstance(client_mechanism("scram-sha-256", "u", "p"), ScramSha256Client)
    with pytest.raises(ValueError, match="authorization identity"):
        client_mechanism("LOGIN", "u", "p", "other")
    with pytest.raises(ValueError, match="unsupported"):
        client_mechanism("CRAM-MD5", "u", "p")
    assert choose_mechanism(["LOGIN", "plain"]) == "PLAIN"
    assert choose_mechanism(("PLAIN", "SCRAM-SHA-256")) == "SCRAM-SHA-256"
    assert choose_mechanism(["GSSAPI"]) is None


# ------------------------------------------------------------------------------ round trips

KEYS_CACHE: dict[tuple[str, str], ScramKeys] = {}


def run(
    client: ClientMechanism,
    server: ServerMechanism,
    accounts: dict[str, str],
    *,
    use_initial: bool,
) -> Step:
    """Drive a client against a server mechanism, playing the store and verifier."""
    initial = client.initial_response() if use_initial else None
    step = server.start(initial)
    for _ in range(10):
        match step:
            case Challenge(data=data):
                step = server.step(client.respond(data))
            case NeedScramKeys(authcid=authcid):
                assert isinstance(server, ScramSha256Server)
                password = accounts.get(authcid)
                keys = None
                if password is not None:
                    keys = ScramKeys.derive(password, 4096, b"salt" + authcid.encode())
                step = server.provide_keys(keys)
            case CheckPassword(authcid=authcid, password=password, authzid=authzid):
                if accounts.get(authcid) != password:
                    return Failure(FailureCode.AUTHENTICATION_FAILED, "wrong")
                return Success(authcid, authzid, None)
            case Success(final=final):
                client.finish(final)
                return step
            case Failure():
                return step
    raise AssertionError("exchange did not end")


@pytest.mark.parametrize("name", ["PLAIN", "LOGIN", "SCRAM-SHA-256"])
@pytest.mark.parametrize("use_initial", [True, False])
def test_round_trip(name: str, use_initial: bool) -> None:
    accounts = {"user@example.org": "s3cret, with = signs"}
    server = server_mechanism(name)
    assert server is not None
    client = client_mechanism(name, "user@example.org", "s3cret, with = signs")
    step = run(client, server, accounts, use_initial=use_initial)
    assert isinstance(step, Success)
    assert (step.authcid, step.authzid) == ("user@example.org", None)
    assert (step.final is not None) == (name == "SCRAM-SHA-256")  # the server signature
    server = server_mechanism(name)
    assert server is not None
    wrong = client_mechanism(name, "user@example.org", "wrong")
    step = run(wrong, server, accounts, use_initial=use_initial)
    assert isinstance(step, Failure)
    assert step.code is FailureCode.AUTHENTICATION_FAILED


@settings(max_examples=40, deadline=None)
@given(
    username=st.text(alphabet="abcxyz.@,=-+", min_size=1, max_size=20),
    password=st.text(min_size=1, max_size=20).filter(lambda p: "\0" not in p),
    name=st.sampled_from(["PLAIN", "LOGIN", "SCRAM-SHA-256"]),
)
def test_round_trip_any_credentials(username: str, password: str, name: str) -> None:
    server = server_mechanism(name)
    assert server is not None
    client = client_mechanism(name, username, password)
    step = run(client, server, {username: password}, use_initial=name != "LOGIN")
    assert isinstance(step, Success), step
    assert step.authcid == username


# ------------------------------------------------------------------------------------ fuzz


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(SERVER_MECHANISMS)),
    initial=st.none() | st.binary(max_size=80),
    responses=st.lists(st.binary(max_size=120), max_size=4),
    known=st.booleans(),
)
def test_fuzz_mechanisms_never_raise(
    name: str, initial: bytes | None, responses: list[bytes], known: bool
) -> None:
    server = server_mechanism(name)
    assert server is not None
    step = server.start(initial)
    for data in responses:
        if isinstance(step, NeedScramKeys):
            assert isinstance(server, ScramSha256Server)
            step = server.provide_keys(PENCIL_KEYS if known else None)
        else:
            step = server.step(data)
        assert isinstance(step, Challenge | CheckPassword | NeedScramKeys | Success | Failure)


scram_attr = st.builds(
    lambda k, v: f"{k}={v}",
    st.sampled_from("cnrpmaxs"),
    st.text(alphabet="biwsAZaz09+/=,!$%", max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(
    first=st.builds(",".join, st.lists(scram_attr | st.sampled_from(["n", "y", ""]), max_size=6)),
    final=st.builds(",".join, st.lists(scram_attr, max_size=5)),
)
def test_fuzz_scram_structured(first: str, final: str) -> None:
    # Messages shaped like SCRAM's reach deeper than random bytes.
    server = ScramSha256Server()
    step = server.start(first.encode())
    if isinstance(step, NeedScramKeys):
        step = server.provide_keys(PENCIL_KEYS)
        assert isinstance(step, Challenge)
        step = server.step(final.encode())
    assert isinstance(step, Failure | NeedScramKeys | Challenge)


@settings(max_examples=200, deadline=None)
@given(final=st.binary(max_size=200))
def test_fuzz_scram_final_after_valid_first(final: bytes) -> None:
    step = started_scram().step(final)
    assert isinstance(step, Failure)  # nothing but the real proof succeeds


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_fuzz_scram_client_raises_only_its_error(data: bytes) -> None:
    # Random bytes never extend the client nonce, so they are always refused, cleanly.
    with pytest.raises(SaslClientError):
        scram_client_after_first().respond(data)
