"""SASL without I/O: the SaslHandshake/SaslAuthenticate messages, PLAIN, SCRAM, the exchange.

The SCRAM tests replay the worked examples of RFC 5802 (section 5, SHA-1) and
RFC 7677 (section 3, SHA-256) byte for byte; SCRAM-SHA-512, which no RFC
illustrates, is checked against a broker side written here from RFC 5802's
server rules (it recovers the client key from the proof and compares hashes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import pickle
import string

import pytest

from kafka_sink.errors import AuthenticationError, KafkaSinkError, UnsupportedVersionError
from kafka_sink.protocol import schema
from kafka_sink.protocol.apis import ApiKey, request_class, response_class
from kafka_sink.protocol.client import ClientProtocol
from kafka_sink.protocol.sasl import (
    PlainMechanism,
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslAuthenticator,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
    ScramMechanism,
    create_mechanism,
    escape_username,
)

SECRET = "pencil-Secret-9q"
BROKER = "kafka1:9094"
# ApiVersions ranges of Kafka 2.3 (SaslHandshake 0-1, SaslAuthenticate 0-1) and of 2.5+.
KAFKA_23 = {17: (0, 1), 36: (0, 1)}
KAFKA_35 = {17: (0, 1), 36: (0, 2)}

# -- RFC test vectors ------------------------------------------------------------------


def test_rfc7677_scram_sha256_example() -> None:
    scram = ScramMechanism("SCRAM-SHA-256", "user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")
    assert scram.initial_response() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    final = scram.evaluate(
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    assert final == (
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    assert not scram.complete
    assert scram.evaluate(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=") is None
    assert scram.complete


def test_rfc5802_scram_sha1_example() -> None:
    scram = ScramMechanism(
        "SCRAM-SHA-1", "user", "pencil", nonce="fyko+d2lbbFgONRv9qkxdawL", hash_name="sha1"
    )
    assert scram.initial_response() == b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
    final = scram.evaluate(
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
    )
    assert final == (
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
    )
    assert scram.evaluate(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=") is None
    assert scram.complete


# -- SCRAM against a broker side written from RFC 5802 -----------------------------------


class ScramServer:
    """The broker's side of SCRAM (RFC 5802 section 3), from stored credentials only."""

    def __init__(self, digest: str, password: str, iterations: int = 4096) -> None:
        self.digest = digest
        self.salt = b"salt-of-the-broker"
        self.iterations = iterations
        salted = hashlib.pbkdf2_hmac(digest, password.encode(), self.salt, iterations)
        client_key = hmac.new(salted, b"Client Key", digest).digest()
        self.stored_key = hashlib.new(digest, client_key).digest()
        self.server_key = hmac.new(salted, b"Server Key", digest).digest()
        self.client_first_bare = ""
        self.server_first = ""
        self.user = ""

    def first(self, client_first: bytes, server_nonce: str = "SERVERnonce") -> bytes:
        text = client_first.decode()
        assert text.startswith("n,,")
        self.client_first_bare = text[3:]
        fields = dict(part.split("=", 1) for part in self.client_first_bare.split(","))
        self.user = fields["n"]
        salt = base64.b64encode(self.salt).decode()
        self.server_first = f"r={fields['r']}{server_nonce},s={salt},i={self.iterations}"
        return self.server_first.encode()

    def final(self, client_final: bytes) -> bytes | None:
        """The server-final message, or None when the proof is wrong."""
        text = client_final.decode()
        without_proof, _, proof = text.rpartition(",p=")
        auth_message = f"{self.client_first_bare},{self.server_first},{without_proof}".encode()
        signature = hmac.new(self.stored_key, auth_message, self.digest).digest()
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature, strict=True))
        if hashlib.new(self.digest, client_key).digest() != self.stored_key:
            return None
        server_signature = hmac.new(self.server_key, auth_message, self.digest).digest()
        return b"v=" + base64.b64encode(server_signature)


@pytest.mark.parametrize(
    ("mechanism", "digest"), [("SCRAM-SHA-256", "sha256"), ("SCRAM-SHA-512", "sha512")]
)
def test_scram_proves_the_password_and_checks_the_broker(mechanism: str, digest: str) -> None:
    server = ScramServer(digest, SECRET)
    scram = ScramMechanism(mechanism, "alice", SECRET)
    final = scram.evaluate(server.first(scram.initial_response()))
    assert final is not None
    assert SECRET.encode() not in final
    verifier = server.final(final)
    assert verifier is not None, "the broker side refused a correct proof"
    assert scram.evaluate(verifier) is None
    assert scram.complete


def test_scram_with_the_wrong_password_is_refused_by_the_broker_side() -> None:
    server = ScramServer("sha512", SECRET)
    scram = ScramMechanism("SCRAM-SHA-512", "alice", "not-" + SECRET)
    final = scram.evaluate(server.first(scram.initial_response()))
    assert final is not None
    assert server.final(final) is None


def test_a_broker_that_does_not_know_the_password_is_not_trusted() -> None:
    # An impostor that accepts any proof cannot compute the server signature.
    impostor = ScramServer("sha256", "some-other-password")
    scram = ScramMechanism("SCRAM-SHA-256", "alice", SECRET)
    scram.evaluate(impostor.first(scram.initial_response()))
    forged = b"v=" + base64.b64encode(b"\x00" * 32)
    with pytest.raises(AuthenticationError, match="does not verify") as caught:
        scram.evaluate(forged)
    assert caught.value.context["mechanism"] == "SCRAM-SHA-256"
    assert not scram.complete


def test_user_names_are_escaped_as_saslname() -> None:
    assert escape_username("a=b,c") == "a=3Db=2Cc"
    assert escape_username("=,") == "=3D=2C"
    scram = ScramMechanism("SCRAM-SHA-256", "x=y,z", SECRET, nonce="abc")
    assert scram.initial_response() == b"n,,n=x=3Dy=2Cz,r=abc"
    server = ScramServer("sha256", SECRET)
    server.first(ScramMechanism("SCRAM-SHA-256", "x=y,z", SECRET).initial_response())
    assert server.user == "x=3Dy=2Cz"


def test_each_authentication_draws_a_new_printable_nonce() -> None:
    nonces = set()
    for _ in range(20):
        first = ScramMechanism("SCRAM-SHA-256", "u", SECRET).initial_response().decode()
        nonce = first.split(",r=", 1)[1]
        assert len(nonce) >= 24
        assert "," not in nonce
        assert all(c in string.printable and not c.isspace() for c in nonce)
        nonces.add(nonce)
    assert len(nonces) == 20


@pytest.mark.parametrize(
    ("server_first", "problem"),
    [
        (b"r=OTHERnonce,s=c2FsdA==,i=4096", "does not extend"),
        (b"r=abc,s=c2FsdA==,i=4096", "does not extend"),  # not longer than the client's
        (b"r=abcXYZ,s=c2FsdA==,i=1024", "at least 4096"),
        (b"r=abcXYZ,s=!!!,i=4096", "malformed salt"),
        (b"r=abcXYZ,s=,i=4096", "empty salt"),
        (b"r=abcXYZ,s=c2FsdA==,i=many", "malformed salt or iteration"),
        (b"m=ext,r=abcXYZ,s=c2FsdA==,i=4096", "malformed"),
        (b"garbage", "malformed"),
        (b"r=abcXYZ,r=abcXYZ,s=c2FsdA==,i=4096", "malformed"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_a_bad_server_first_message_is_refused(server_first: bytes, problem: str) -> None:
    scram = ScramMechanism("SCRAM-SHA-256", "u", SECRET, nonce="abc")
    scram.initial_response()
    with pytest.raises(AuthenticationError, match=problem):
        scram.evaluate(server_first)
    assert not scram.complete


@pytest.mark.parametrize(
    ("server_final", "problem"),
    [
        (b"e=invalid-proof", "error 'invalid-proof'"),
        (b"v=***", "malformed signature"),
        (b"nonsense", "malformed"),
    ],
)
def test_a_bad_server_final_message_is_refused(server_final: bytes, problem: str) -> None:
    server = ScramServer("sha256", SECRET)
    scram = ScramMechanism("SCRAM-SHA-256", "u", SECRET)
    scram.evaluate(server.first(scram.initial_response()))
    with pytest.raises(AuthenticationError, match=problem):
        scram.evaluate(server_final)


def test_scram_refuses_a_message_after_completion() -> None:
    server = ScramServer("sha256", SECRET)
    scram = ScramMechanism("SCRAM-SHA-256", "u", SECRET)
    final = scram.evaluate(server.first(scram.initial_response()))
    assert final is not None
    verifier = server.final(final)
    assert verifier is not None
    scram.evaluate(verifier)
    with pytest.raises(AuthenticationError, match="unexpected SCRAM message"):
        scram.evaluate(b"v=again")


def test_plain_sends_the_rfc4616_message() -> None:
    plain = PlainMechanism("alice", SECRET)
    assert plain.initial_response() == b"\0alice\0" + SECRET.encode()
    assert not plain.complete
    assert plain.evaluate(b"") is None
    assert plain.complete
    with pytest.raises(AuthenticationError, match="unexpected data"):
        PlainMechanism("alice", SECRET).evaluate(b"challenge?")


def test_create_mechanism_and_reprs_without_the_password() -> None:
    for name in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        mechanism = create_mechanism(name, "alice", SECRET)
        assert mechanism.name == name
        assert SECRET not in repr(mechanism)
        assert "alice" in repr(mechanism)


# -- the messages -------------------------------------------------------------------------


def test_the_messages_are_registered_under_their_api_keys() -> None:
    assert ApiKey.SASL_HANDSHAKE.value == 17
    assert ApiKey.SASL_AUTHENTICATE.value == 36
    assert request_class(17) is SaslHandshakeRequest
    assert response_class(17) is SaslHandshakeResponse
    assert request_class(36) is SaslAuthenticateRequest
    assert response_class(36) is SaslAuthenticateResponse


@pytest.mark.parametrize(
    ("message", "version", "hexdump"),
    [
        # string "PLAIN"
        (SaslHandshakeRequest("PLAIN"), 1, "0005504c41494e"),
        # bytes of length 3
        (SaslAuthenticateRequest(b"\0a\0"), 0, "00000003006100"),
        (SaslAuthenticateRequest(b"\0a\0"), 1, "00000003006100"),
        # flexible: compact bytes (length + 1), then an empty tagged-field section
        (SaslAuthenticateRequest(b"\0a\0"), 2, "0400610000"),
        # error 0, mechanisms ["PLAIN", "SCRAM-SHA-256"]
        (
            SaslHandshakeResponse(0, ["PLAIN", "SCRAM-SHA-256"]),
            1,
            "000000000002" + "0005504c41494e" + "000d" + b"SCRAM-SHA-256".hex(),
        ),
        # error 58, message "no", token b"", session lifetime (v1+) 1000
        (
            SaslAuthenticateResponse(58, "no", b"", 1000),
            1,
            "003a00026e6f00000000" + "00000000000003e8",
        ),
        (
            SaslAuthenticateResponse(0, None, b"v=", 0),
            2,
            "0000" + "00" + "03763d" + "00" * 8 + "00",
        ),
    ],
)
def test_pinned_encodings(message: schema.Message, version: int, hexdump: str) -> None:
    encoded = schema.encode(message, version)
    assert encoded.hex() == hexdump
    assert schema.decode(type(message), encoded, version) == message


def test_the_v0_response_has_no_session_lifetime() -> None:
    body = bytes.fromhex("0000ffff00000002763d")
    assert schema.decode(SaslAuthenticateResponse, body, 0) == SaslAuthenticateResponse(
        0, None, b"v=", 0
    )


def test_auth_bytes_never_show_in_a_repr() -> None:
    request = SaslAuthenticateRequest(b"\0alice\0" + SECRET.encode())
    assert SECRET not in repr(request)
    assert repr(request) == f"SaslAuthenticateRequest(auth_bytes=<{len(request.auth_bytes)} bytes>)"
    response = SaslAuthenticateResponse(0, None, SECRET.encode(), 0)
    assert SECRET not in repr(response)


def test_a_flexible_sasl_authenticate_response_is_framed_with_header_v1() -> None:
    protocol = ClientProtocol("c")
    protocol.send(SaslAuthenticateRequest(b"x"), 2)
    body = schema.encode(SaslAuthenticateResponse(0, None, b"ok", 0), 2)
    frame = (4 + 1 + len(body)).to_bytes(4, "big") + (0).to_bytes(4, "big") + b"\0" + body
    protocol.receive_data(frame)
    response = protocol.next_response()
    assert response is not None
    assert response.body == SaslAuthenticateResponse(0, None, b"ok", 0)


# -- the exchange -----------------------------------------------------------------------


def _authenticator(
    mechanism: str = "PLAIN", ranges: dict[int, tuple[int, int]] | None = None
) -> SaslAuthenticator:
    return SaslAuthenticator(
        create_mechanism(mechanism, "alice", SECRET), BROKER, ranges or KAFKA_23, user="alice"
    )


def test_plain_exchange_with_a_kafka_23_broker() -> None:
    auth = _authenticator()
    request, version = auth.request()
    assert (request, version) == (SaslHandshakeRequest("PLAIN"), 1)
    assert auth.handle(SaslHandshakeResponse(0, ["PLAIN", "SCRAM-SHA-256"])) is False
    request, version = auth.request()
    assert isinstance(request, SaslAuthenticateRequest)
    assert version == 1  # Kafka 2.3 has SaslAuthenticate v0-1
    assert request.auth_bytes == b"\0alice\0" + SECRET.encode()
    assert auth.handle(SaslAuthenticateResponse(0, None, b"", 0)) is True


def test_scram_exchange_uses_the_flexible_version_when_the_broker_has_it() -> None:
    server = ScramServer("sha512", SECRET)
    auth = _authenticator("SCRAM-SHA-512", KAFKA_35)
    auth.handle(SaslHandshakeResponse(0, ["SCRAM-SHA-512"]))
    request, version = auth.request()
    assert version == 2
    assert isinstance(request, SaslAuthenticateRequest)
    assert auth.handle(SaslAuthenticateResponse(0, None, server.first(request.auth_bytes))) is False
    request, _ = auth.request()
    assert isinstance(request, SaslAuthenticateRequest)
    verifier = server.final(request.auth_bytes)
    assert verifier is not None
    assert auth.handle(SaslAuthenticateResponse(0, None, verifier)) is True


def _assert_names_the_context(exc: AuthenticationError, mechanism: str) -> None:
    assert mechanism in exc.message
    assert BROKER in exc.message
    assert exc.context["broker"] == BROKER
    assert exc.context["mechanism"] == mechanism
    for text in (exc.message, str(exc), repr(exc), repr(exc.context)):
        assert SECRET not in text
    clone = pickle.loads(pickle.dumps(exc))
    assert (type(clone), clone.message, clone.code) == (type(exc), exc.message, exc.code)


def test_refused_credentials_name_the_mechanism_and_the_broker_never_the_secret() -> None:
    auth = _authenticator("SCRAM-SHA-256")
    auth.handle(SaslHandshakeResponse(0, ["SCRAM-SHA-256"]))
    with pytest.raises(AuthenticationError) as caught:
        auth.handle(SaslAuthenticateResponse(58, "Authentication failed: invalid credentials", b""))
    exc = caught.value
    assert exc.code == 58
    assert "invalid credentials" in exc.message
    assert "'alice'" in exc.message
    _assert_names_the_context(exc, "SCRAM-SHA-256")


def test_a_mechanism_the_broker_does_not_enable_lists_what_it_offers() -> None:
    auth = _authenticator("SCRAM-SHA-512")
    with pytest.raises(AuthenticationError, match=r"offers: PLAIN, SCRAM-SHA-256") as caught:
        auth.handle(SaslHandshakeResponse(33, ["PLAIN", "SCRAM-SHA-256"]))
    assert caught.value.code == 33
    _assert_names_the_context(caught.value, "SCRAM-SHA-512")


def test_a_listener_without_sasl_is_named_as_the_likely_cause() -> None:
    with pytest.raises(AuthenticationError, match=r"ILLEGAL_SASL_STATE.*SASL_SSL") as caught:
        _authenticator().handle(SaslHandshakeResponse(34, []))
    _assert_names_the_context(caught.value, "PLAIN")


def test_a_failed_server_signature_is_reported_with_the_context() -> None:
    server = ScramServer("sha256", "a-different-password")
    auth = _authenticator("SCRAM-SHA-256")
    auth.handle(SaslHandshakeResponse(0, ["SCRAM-SHA-256"]))
    first, _ = auth.request()
    assert isinstance(first, SaslAuthenticateRequest)
    auth.handle(SaslAuthenticateResponse(0, None, server.first(first.auth_bytes)))
    with pytest.raises(AuthenticationError, match="does not verify") as caught:
        auth.handle(SaslAuthenticateResponse(0, None, b"v=" + base64.b64encode(b"x" * 32)))
    _assert_names_the_context(caught.value, "SCRAM-SHA-256")


def test_an_answer_out_of_order_is_an_authentication_error() -> None:
    with pytest.raises(AuthenticationError, match="unexpected SaslAuthenticateResponse"):
        _authenticator().handle(SaslAuthenticateResponse(0, None, b""))


def test_a_broker_older_than_kafka_1_0_is_refused() -> None:
    with pytest.raises(UnsupportedVersionError, match=r"Kafka 1\.0") as caught:
        _authenticator(ranges={17: (0, 0)})
    assert caught.value.context["broker"] == BROKER
    with pytest.raises(UnsupportedVersionError):
        _authenticator(ranges={18: (0, 2)})


def test_authentication_error_is_a_kafka_sink_error() -> None:
    assert issubclass(AuthenticationError, KafkaSinkError)
