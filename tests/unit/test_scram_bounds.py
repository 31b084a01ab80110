"""The SCRAM iteration count a broker asks for is bounded (``sasl_scram_max_iterations``).

The broker chooses the count and the client pays for it: PBKDF2 runs that
many rounds. A count of 2,000,000,000 kept a client busy for minutes, and one
past 2**63 ended the exchange with a bare OverflowError. These tests replay
RFC 7677's server-first message with such counts (PBKDF2 is watched, so a
count that should be refused is known never to reach it), check the
boundaries, the option's plumbing from the configuration, and that a
``Sink`` closes within its timeout while a broker stalls the exchange, on a
real loopback socket.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import kafka_sink
from kafka_sink.config import SecurityConfig, SinkConfig
from kafka_sink.errors import AuthenticationError, DeliveryError, InvalidArgumentError
from kafka_sink.net.broker import sasl_authenticator
from kafka_sink.protocol import apis, schema
from kafka_sink.protocol.api_versions import ApiVersionRange, ApiVersionsResponse
from kafka_sink.protocol.primitives import Reader, Writer
from kafka_sink.protocol.sasl import (
    DEFAULT_MAX_SCRAM_ITERATIONS,
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslAuthenticator,
    SaslHandshakeResponse,
    ScramMechanism,
)

CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = (
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i={}"
)
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")


def scram(**options: Any) -> ScramMechanism:
    mechanism = ScramMechanism("SCRAM-SHA-256", "user", "pencil", nonce=CLIENT_NONCE, **options)
    assert mechanism.initial_response() == b"n,,n=user,r=" + CLIENT_NONCE.encode()
    return mechanism


@pytest.fixture
def pbkdf2_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The iteration counts PBKDF2 was called with."""
    calls: list[int] = []
    real = hashlib.pbkdf2_hmac

    def watched(name: str, password: bytes, salt: bytes, iterations: int, *args: Any) -> bytes:
        calls.append(iterations)
        return real(name, password, salt, iterations, *args)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", watched)
    return calls


def server_final(iterations: int, client_final: bytes) -> bytes:
    """The broker's answer to ``client_final``, computed here from the password."""
    without_proof = client_final.rsplit(b",p=", 1)[0].decode()
    auth_message = f"n=user,r={CLIENT_NONCE},{SERVER_FIRST.format(iterations)},{without_proof}"
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", SALT, iterations)
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    signature = hmac.new(server_key, auth_message.encode(), "sha256").digest()
    return b"v=" + base64.b64encode(signature)


# -- the three reported counts ---------------------------------------------------------------


@pytest.mark.parametrize("count", [2_000_000_000, 99_999_999_999, 10**40])
def test_a_count_above_the_limit_is_refused_before_any_key_is_derived(
    count: int, pbkdf2_calls: list[int]
) -> None:
    mechanism = scram()
    with pytest.raises(AuthenticationError) as caught:
        mechanism.evaluate(SERVER_FIRST.format(count).encode())
    message = caught.value.message
    assert str(count) in message
    assert "limit of 16384" in message
    assert "sasl_scram_max_iterations" in message
    assert caught.value.context["mechanism"] == "SCRAM-SHA-256"
    assert pbkdf2_calls == []
    # The exchange is over: another message is refused too, not computed.
    with pytest.raises(AuthenticationError, match="state failed"):
        mechanism.evaluate(SERVER_FIRST.format(4096).encode())


def test_a_count_of_thousands_of_digits_is_refused_without_being_converted(
    pbkdf2_calls: list[int],
) -> None:
    with pytest.raises(AuthenticationError, match=r"\(5000 characters\)") as caught:
        scram().evaluate(SERVER_FIRST.format("9" * 5000).encode())
    assert len(caught.value.message) < 600
    assert pbkdf2_calls == []


# -- boundaries ---------------------------------------------------------------------------------


def test_kafkas_maximum_is_accepted_and_the_exchange_completes(pbkdf2_calls: list[int]) -> None:
    assert DEFAULT_MAX_SCRAM_ITERATIONS == 16384
    mechanism = scram()
    client_final = mechanism.evaluate(SERVER_FIRST.format(16384).encode())
    assert client_final is not None
    assert client_final.startswith(b"c=biws,r=" + CLIENT_NONCE.encode())
    assert pbkdf2_calls == [16384]
    assert mechanism.evaluate(server_final(16384, client_final)) is None
    assert mechanism.complete


def test_one_more_than_kafkas_maximum_is_refused(pbkdf2_calls: list[int]) -> None:
    with pytest.raises(AuthenticationError, match="16385 SCRAM iterations, more than the limit"):
        scram().evaluate(SERVER_FIRST.format(16385).encode())
    assert pbkdf2_calls == []


def test_a_custom_limit_moves_the_boundary(pbkdf2_calls: list[int]) -> None:
    assert scram(max_iterations=20000).evaluate(SERVER_FIRST.format(20000).encode())
    with pytest.raises(AuthenticationError, match="more than the limit of 20000"):
        scram(max_iterations=20000).evaluate(SERVER_FIRST.format(20001).encode())
    with pytest.raises(AuthenticationError, match="more than the limit of 4096"):
        scram(max_iterations=4096).evaluate(SERVER_FIRST.format(4097).encode())
    assert scram(max_iterations=4096).evaluate(SERVER_FIRST.format(4096).encode())
    assert pbkdf2_calls == [20000, 4096]


def test_the_minimum_still_holds(pbkdf2_calls: list[int]) -> None:
    with pytest.raises(AuthenticationError, match="at least 4096 are required"):
        scram().evaluate(SERVER_FIRST.format(4095).encode())
    assert pbkdf2_calls == []


@pytest.mark.parametrize(
    "count", ["+4096", " 4096", "4096 ", "4_096", "04096", "٤٠٩٦", "", "-4096", "0x1000", "4e3"]
)
def test_a_count_that_is_not_a_plain_number_is_malformed(
    count: str, pbkdf2_calls: list[int]
) -> None:
    with pytest.raises(AuthenticationError, match="malformed salt or iteration count"):
        scram().evaluate(SERVER_FIRST.format(count).encode())
    assert pbkdf2_calls == []


@pytest.mark.parametrize("limit", [4095, 0, -1, 2**31, 1.5e4, "16384", True, None])
def test_an_invalid_limit_is_refused_naming_the_option(limit: Any) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        scram(max_iterations=limit)
    assert caught.value.argument == "sasl_scram_max_iterations"
    with pytest.raises(InvalidArgumentError) as caught:
        SecurityConfig(
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-256",
            sasl_plain_username="user",
            sasl_plain_password="pencil",
            sasl_scram_max_iterations=limit,
        )
    assert caught.value.argument == "sasl_scram_max_iterations"
    assert "between 4096 and 2147483647" in caught.value.message


def test_the_limit_is_a_sasl_option() -> None:
    with pytest.raises(InvalidArgumentError, match="is a SASL option") as caught:
        SecurityConfig(security_protocol="SSL", sasl_scram_max_iterations=20000)
    assert caught.value.argument == "sasl_scram_max_iterations"


# -- plumbing: from the options to the mechanism --------------------------------------------------

KAFKA_35 = {17: (0, 1), 36: (0, 2)}


def scram_security(**options: Any) -> SecurityConfig:
    return SecurityConfig(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_plain_username="user",
        sasl_plain_password="pencil",
        **options,
    )


def first_answer(authenticator: SaslAuthenticator, count: int) -> None:
    """Take the handshake, then a server-first asking for ``count`` iterations."""
    assert authenticator.handle(SaslHandshakeResponse(0, ["SCRAM-SHA-256"])) is False
    request, _ = authenticator.request()
    assert isinstance(request, SaslAuthenticateRequest)
    nonce = request.auth_bytes.decode().split("r=")[1]
    first = f"r={nonce}srv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i={count}".encode()
    authenticator.handle(SaslAuthenticateResponse(0, None, first, 0))


def test_the_configured_limit_reaches_the_exchange(pbkdf2_calls: list[int]) -> None:
    default = sasl_authenticator(scram_security(), "kafka1:9094", KAFKA_35)
    with pytest.raises(AuthenticationError) as caught:
        first_answer(default, 20000)
    assert caught.value.context["broker"] == "kafka1:9094"
    assert "as 'user' with broker kafka1:9094" in caught.value.message
    assert "20000 SCRAM iterations, more than the limit of 16384" in caught.value.message

    raised = sasl_authenticator(
        scram_security(sasl_scram_max_iterations=20000), "kafka1:9094", KAFKA_35
    )
    first_answer(raised, 20000)  # accepted: the client-final is the next request
    assert pbkdf2_calls == [20000]


def test_the_option_is_taken_wherever_security_options_are() -> None:
    security = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "user",
        "sasl_plain_password": "pencil",
        "sasl_scram_max_iterations": 32768,
    }
    assert SinkConfig.build("kafka1:9094", **security).security.sasl_scram_max_iterations == 32768
    assert SecurityConfig.from_options(security, "Connection").sasl_scram_max_iterations == 32768
    with pytest.raises(InvalidArgumentError) as caught:
        SinkConfig.build("kafka1:9094", **{**security, "sasl_scram_max_iterations": 100})
    assert caught.value.argument == "sasl_scram_max_iterations"


# -- nothing but AuthenticationError leaves the exchange ----------------------------------------


class BrokenMechanism:
    """A mechanism of another author whose evaluate() raises something else."""

    name = "SCRAM-SHA-256"
    complete = False

    def initial_response(self) -> bytes:
        return b"n,,n=user,r=abc"

    def evaluate(self, challenge: bytes) -> bytes | None:
        raise OverflowError("iteration value is too great.")


def test_another_exception_from_a_mechanism_becomes_an_authentication_error() -> None:
    authenticator = SaslAuthenticator(BrokenMechanism(), "kafka1:9094", KAFKA_35)
    authenticator.handle(SaslHandshakeResponse(0, ["SCRAM-SHA-256"]))
    with pytest.raises(
        AuthenticationError, match=r"failed on the broker's token \(OverflowError\)"
    ):
        authenticator.handle(SaslAuthenticateResponse(0, None, b"r=abcdef,s=c2FsdA==,i=4096", 0))


@pytest.mark.parametrize(
    "message",
    [
        "r=rOprNGfwEbeRWgbNEkqOé,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",  # nonce not ASCII
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22Zé0SNY7soEsUEjb6gQ==,i=4096",  # salt not ASCII
    ],
)
def test_non_ascii_server_first_fields_are_authentication_errors(message: str) -> None:
    with pytest.raises(AuthenticationError):
        scram().evaluate(message.encode())


def test_a_non_ascii_signature_is_an_authentication_error() -> None:
    mechanism = scram()
    assert mechanism.evaluate(SERVER_FIRST.format(4096).encode())
    with pytest.raises(AuthenticationError, match="malformed signature"):
        mechanism.evaluate("v=ë".encode())


def test_broker_text_in_errors_is_cut_to_a_readable_length() -> None:
    authenticator = SaslAuthenticator(scram(), "kafka1:9094", KAFKA_35)
    with pytest.raises(AuthenticationError) as caught:
        authenticator.handle(SaslHandshakeResponse(33, [f"MECH-{i}" for i in range(1000)]))
    assert "and 984 more" in caught.value.message
    authenticator = SaslAuthenticator(scram(), "kafka1:9094", KAFKA_35)
    authenticator.handle(SaslHandshakeResponse(0, ["SCRAM-SHA-256"]))
    with pytest.raises(AuthenticationError) as caught:
        authenticator.handle(SaslAuthenticateResponse(58, "x" * 100_000, b"", 0))
    assert "(100000 characters)" in caught.value.message
    assert len(caught.value.message) < 600


# -- a Sink closes on time while a broker stalls the SASL exchange --------------------------------


class StallingSaslBroker:
    """A broker on loopback that answers ApiVersions and SaslHandshake, then stalls.

    The first SaslAuthenticate (client-first) is answered with a server-first
    asking for ``iterations`` when that is set, else never; the next one is
    never answered. ``stalled`` is set once a request will not be answered.
    """

    def __init__(self, iterations: int | None = None) -> None:
        self.iterations = iterations
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stalled = threading.Event()
        self.received: list[int] = []
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self._conns.append(sock)
            threading.Thread(target=self._connection, args=(sock,), daemon=True).start()

    def _connection(self, sock: socket.socket) -> None:
        buffer = b""
        with contextlib.suppress(OSError):
            while True:
                while len(buffer) < 4 or len(buffer) < 4 + struct.unpack_from(">i", buffer)[0]:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buffer += data
                size = struct.unpack_from(">i", buffer)[0]
                frame, buffer = buffer[4 : 4 + size], buffer[4 + size :]
                answer = self._answer(frame)
                if answer is not None:
                    sock.sendall(answer)

    def _answer(self, frame: bytes) -> bytes | None:
        reader = Reader(frame)
        api_key, version, correlation_id = reader.int16(), reader.int16(), reader.int32()
        reader.nullable_string()
        cls = apis.request_class(api_key)
        if cls.is_flexible(version):
            reader.tagged_fields()
        request: Any = schema.decode(cls, reader, version)
        self.received.append(api_key)
        response: Any
        if api_key == 18:
            keys = (0, 3, 17, 18, 22, 36)
            ranges = [ApiVersionRange(k, *apis.supported_versions(k)) for k in keys]
            response = ApiVersionsResponse(0, ranges)
        elif api_key == 17:
            response = SaslHandshakeResponse(0, ["SCRAM-SHA-256"])
        elif api_key == 36 and self.iterations is not None and self.received.count(36) == 1:
            nonce = bytes(request.auth_bytes).decode().split("r=")[1]
            first = f"r={nonce}srv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i={self.iterations}"
            response = SaslAuthenticateResponse(0, None, first.encode(), 0)
        else:
            self.stalled.set()
            return None
        writer = Writer()
        writer.int32(correlation_id)
        if response.is_flexible(version) and api_key != 18:
            writer.tagged_fields()
        schema.encode_into(response, version, writer)
        return struct.pack(">i", len(writer.buffer)) + bytes(writer.buffer)

    def close(self) -> None:
        self.listener.close()
        for sock in self._conns:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture
def stalling_broker() -> Iterator[Callable[..., StallingSaslBroker]]:
    made: list[StallingSaslBroker] = []

    def make(iterations: int | None = None) -> StallingSaslBroker:
        broker = StallingSaslBroker(iterations)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()


def scram_sink(broker: StallingSaslBroker) -> kafka_sink.Sink:
    return kafka_sink.Sink(
        f"127.0.0.1:{broker.port}",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_plain_username="user",
        sasl_plain_password="pencil",
        linger_ms=0,
    )


# Generous: close(0.2) promises its timeout plus a few milliseconds.
CLOSE_BOUND = 5.0


@pytest.mark.parametrize("iterations", [None, 16384], ids=["client-first", "client-final"])
def test_close_is_bounded_while_the_broker_stalls_the_exchange(
    stalling_broker: Callable[..., StallingSaslBroker], iterations: int | None
) -> None:
    broker = stalling_broker(iterations)
    sink = scram_sink(broker)
    future = sink.produce("events", b"waits for authentication")
    assert broker.stalled.wait(30), "the broker never saw the SASL exchange"
    started = time.monotonic()
    sink.close(0.2)
    assert time.monotonic() - started < CLOSE_BOUND
    error = future.exception(timeout=0)
    assert isinstance(error, DeliveryError)
    assert broker.received.count(36) == (1 if iterations is None else 2)


def test_a_sink_refuses_a_huge_count_at_once_and_fails_its_records(
    stalling_broker: Callable[..., StallingSaslBroker],
) -> None:
    broker = stalling_broker(2_000_000_000)
    sink = scram_sink(broker)
    try:
        future = sink.produce("events", b"never derived")
        error = future.exception(timeout=30)
        assert isinstance(error, DeliveryError)
        assert error.reason == "authentication"
        cause = error.context["cause"]
        assert isinstance(cause, AuthenticationError)
        assert "2000000000 SCRAM iterations, more than the limit of 16384" in cause.message
    finally:
        started = time.monotonic()
        sink.close(0.2)
        assert time.monotonic() - started < CLOSE_BOUND
