"""SASL/OAUTHBEARER without a broker, and KIP-368 re-authentication against the fake brokers.

The client-first message is checked byte for byte against RFC 7628's layout as
Kafka's client writes it; the re-authentication tests drive a NetworkClient
against the loopback fake brokers of :mod:`tests.unit.test_network_client`,
whose clock only the test moves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from kafka_sink import OAuthBearerToken
from kafka_sink.config import SecurityConfig, SinkConfig
from kafka_sink.errors import AuthenticationError, InvalidArgumentError
from kafka_sink.net.client import AUTHENTICATING, READY
from kafka_sink.protocol.metadata import MetadataRequest
from kafka_sink.protocol.oauthbearer import (
    MIN_REAUTHENTICATION_INTERVAL,
    OAuthBearerMechanism,
    client_first_message,
    fetch_token,
    reauthentication_delay,
)
from kafka_sink.protocol.sasl import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslAuthenticator,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)
from tests.unit.test_network_client import Loopback, drive

TOKEN = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.c2VjcmV0LXNpZ25hdHVyZQ"
BROKER = "kafka1:9092"
KAFKA_23 = {17: (0, 1), 36: (0, 1)}
SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36


def oauth(provider: object) -> SecurityConfig:
    return SecurityConfig(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="OAUTHBEARER",
        sasl_oauth_token_provider=provider,  # type: ignore[arg-type]  # bad providers too
    )


# -- the client-first message ---------------------------------------------------------------


def test_the_client_first_message_is_rfc_7628s() -> None:
    assert client_first_message(TOKEN) == b"n,,\x01auth=Bearer " + TOKEN.encode() + b"\x01\x01"
    assert client_first_message("abc", {"traceId": "x-1", "logicalCluster": "lkc 1"}) == (
        b"n,,\x01auth=Bearer abc\x01traceId=x-1\x01logicalCluster=lkc 1\x01\x01"
    )


def test_the_mechanism_sends_the_token_once_and_completes_on_an_empty_answer() -> None:
    mechanism = OAuthBearerMechanism(OAuthBearerToken(TOKEN, extensions={"traceId": "t"}))
    assert mechanism.initial_response() == client_first_message(TOKEN, {"traceId": "t"})
    assert not mechanism.complete
    assert mechanism.evaluate(b"") is None
    assert mechanism.complete
    assert TOKEN not in repr(mechanism)


def test_a_refused_token_is_acknowledged_then_reported_with_the_brokers_status() -> None:
    auth = SaslAuthenticator(
        OAuthBearerMechanism(OAuthBearerToken(TOKEN, principal="admin")),
        BROKER,
        KAFKA_23,
        user="admin",
    )
    assert auth.request() == (SaslHandshakeRequest("OAUTHBEARER"), 1)
    assert auth.handle(SaslHandshakeResponse(0, ["OAUTHBEARER"])) is False
    request, version = auth.request()
    assert isinstance(request, SaslAuthenticateRequest)
    assert version == 1
    assert request.auth_bytes == client_first_message(TOKEN)
    error_json = b'{"status":"invalid_token","scope":"kafka","openid-configuration":""}'
    assert auth.handle(SaslAuthenticateResponse(0, None, error_json, 0)) is False
    request, _ = auth.request()
    assert request == SaslAuthenticateRequest(b"\x01")  # RFC 7628 section 3.2.3
    with pytest.raises(AuthenticationError) as caught:
        auth.handle(SaslAuthenticateResponse(58, "Authentication failed", b"", 0))
    error = caught.value
    assert error.code == 58
    assert error.context["mechanism"] == "OAUTHBEARER"
    assert "status 'invalid_token', scope 'kafka'" in error.message
    assert "'admin'" in error.message
    assert BROKER in error.message
    assert TOKEN not in str(error)
    assert TOKEN not in repr(error)


def test_a_broker_that_accepts_after_an_error_is_not_believed() -> None:
    mechanism = OAuthBearerMechanism(OAuthBearerToken(TOKEN))
    mechanism.initial_response()
    assert mechanism.evaluate(b"not json") == b"\x01"
    with pytest.raises(AuthenticationError, match="refused the token"):
        mechanism.evaluate(b"")


def test_the_session_lifetime_of_sasl_authenticate_v1_is_kept() -> None:
    auth = SaslAuthenticator(OAuthBearerMechanism(OAuthBearerToken(TOKEN)), BROKER, KAFKA_23)
    auth.handle(SaslHandshakeResponse(0, ["OAUTHBEARER"]))
    assert auth.handle(SaslAuthenticateResponse(0, None, b"", 3000)) is True
    assert auth.session_lifetime_ms == 3000


# -- tokens and the provider ----------------------------------------------------------------


def test_a_token_never_shows_its_value() -> None:
    token = OAuthBearerToken(TOKEN, lifetime_ms=1_700_000_000_000, principal="admin")
    assert TOKEN not in repr(token)
    assert TOKEN not in str(token)
    assert f"<{len(TOKEN)} characters>" in repr(token)
    assert "principal='admin'" in repr(token)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"value": ""}, "value"),
        ({"value": "has space"}, "value"),
        ({"value": 42}, "value"),
        ({"lifetime_ms": 1.5}, "lifetime_ms"),
        ({"principal": ""}, "principal"),
        ({"extensions": {"auth": "x"}}, "extensions"),
        ({"extensions": {"trace-id": "x"}}, "extensions"),
        ({"extensions": {"traceId": "\x01"}}, "extensions"),
    ],
)
def test_a_bad_token_names_the_argument(kwargs: dict[str, object], argument: str) -> None:
    values: dict[str, object] = {"value": TOKEN, **kwargs}
    with pytest.raises(InvalidArgumentError) as caught:
        OAuthBearerToken(**values)  # type: ignore[arg-type]  # bad values on purpose
    assert caught.value.argument == argument
    assert "has space" not in caught.value.message


def test_the_provider_may_return_a_string_or_a_token() -> None:
    assert fetch_token(lambda: TOKEN, BROKER, wall_clock=time.time).value == TOKEN
    token = OAuthBearerToken(TOKEN, principal="admin")
    assert fetch_token(lambda: token, BROKER, wall_clock=time.time) is token


def test_what_goes_wrong_in_the_provider_is_an_authentication_error() -> None:
    def broken() -> str:
        raise ConnectionRefusedError("the identity provider is down")

    with pytest.raises(AuthenticationError, match="ConnectionRefusedError: the identity") as c:
        fetch_token(broken, BROKER, wall_clock=time.time)
    assert isinstance(c.value.__cause__, ConnectionRefusedError)
    assert c.value.context["mechanism"] == "OAUTHBEARER"
    assert c.value.context["broker"] == BROKER
    with pytest.raises(AuthenticationError, match="returned a int, not an OAuthBearerToken"):
        fetch_token(lambda: 42, BROKER, wall_clock=time.time)
    with pytest.raises(AuthenticationError, match="returned a string that has characters"):
        fetch_token(lambda: "two words", BROKER, wall_clock=time.time)
    expired = OAuthBearerToken(TOKEN, lifetime_ms=1_000, principal="admin")
    with pytest.raises(AuthenticationError, match="token for 'admin' that expired") as c:
        fetch_token(lambda: expired, BROKER, wall_clock=lambda: 2.0)
    assert TOKEN not in c.value.message


def test_reauthentication_is_due_at_85_to_95_percent_and_at_least_a_second_apart() -> None:
    assert reauthentication_delay(0) is None
    assert reauthentication_delay(-5) is None
    assert reauthentication_delay(10_000, lambda low, high: low) == pytest.approx(8.5)
    assert reauthentication_delay(10_000, lambda low, high: high) == pytest.approx(9.5)
    for lifetime in (1, 500, 1000):
        assert reauthentication_delay(lifetime) == MIN_REAUTHENTICATION_INTERVAL
    for _ in range(100):
        delay = reauthentication_delay(60_000)
        assert delay is not None
        assert 51.0 <= delay <= 57.0


# -- configuration ----------------------------------------------------------------------


def test_oauthbearer_needs_a_provider_and_no_password() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        SecurityConfig(security_protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER")
    assert caught.value.argument == "sasl_oauth_token_provider"
    with pytest.raises(InvalidArgumentError) as caught:
        SecurityConfig(
            security_protocol="SASL_SSL",
            sasl_mechanism="OAUTHBEARER",
            sasl_oauth_token_provider=lambda: TOKEN,
            sasl_plain_password="pw",
        )
    assert caught.value.argument == "sasl_plain_password"
    assert "pw" not in caught.value.message.replace("password", "")
    with pytest.raises(InvalidArgumentError, match="must be a callable") as caught:
        oauth(TOKEN)
    assert caught.value.argument == "sasl_oauth_token_provider"
    assert TOKEN not in caught.value.message


def test_a_provider_is_for_oauthbearer_on_a_sasl_listener_only() -> None:
    with pytest.raises(InvalidArgumentError, match="OAUTHBEARER' only") as caught:
        SecurityConfig(
            security_protocol="SASL_SSL",
            sasl_mechanism="PLAIN",
            sasl_plain_username="u",
            sasl_plain_password="p",
            sasl_oauth_token_provider=lambda: TOKEN,
        )
    assert caught.value.argument == "sasl_oauth_token_provider"
    with pytest.raises(InvalidArgumentError, match="is a SASL option") as caught:
        SecurityConfig(sasl_oauth_token_provider=lambda: TOKEN)
    assert caught.value.argument == "sasl_oauth_token_provider"


def test_the_options_take_oauthbearer_under_the_java_names() -> None:
    def provider() -> str:
        return TOKEN

    config = SinkConfig.from_mapping(
        {
            "bootstrap.servers": "kafka1:9092",
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "OAUTHBEARER",
            "sasl_oauth_token_provider": provider,
        },
        environ={"KAFKA_SINK_SASL_OAUTH_TOKEN_PROVIDER": "ignored: not text"},
    )
    assert config.security.sasl_mechanism == "OAUTHBEARER"
    assert config.security.sasl_oauth_token_provider is provider


# -- KIP-368 re-authentication in the NetworkClient --------------------------------------


class Provider:
    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.calls = 0

    def __call__(self) -> OAuthBearerToken:
        self.calls += 1
        return OAuthBearerToken(self.tokens[min(self.calls, len(self.tokens)) - 1])


@pytest.fixture
def loop() -> Iterator[Loopback]:
    harness = Loopback(brokers=1)
    harness.cluster.oauth_tokens = {"first", "second", "third"}
    yield harness
    harness.close()


def test_a_connection_renews_its_session_in_place_with_a_fresh_token(loop: Loopback) -> None:
    loop.cluster.sasl_session_ms = 10_000
    provider = Provider("first", "second", "third")
    client = loop.client(security=oauth(provider))
    drive(client, lambda: client.ready(1))
    server = loop.servers[1]
    assert provider.calls == 1
    answers: list[object] = []
    client.send(1, MetadataRequest.for_topics(["t"]), answers.append)
    drive(client, lambda: len(answers) == 1)
    # 95 % of the session at most, then the connection pauses and renews it.
    loop.clock.now += 9.6
    states: set[str] = set()

    def renewed() -> bool:  # and note each state on the way
        states.add(client.connection_states()[1])
        return provider.calls == 2

    drive(client, renewed)
    assert AUTHENTICATING in states
    drive(client, lambda: client.ready(1))
    assert client.connection_states()[1] == READY
    client.send(1, MetadataRequest.for_topics(["t"]), answers.append)
    drive(client, lambda: len(answers) == 2)
    assert len(server.conns) == 1  # the same connection, authenticated again
    keys = [r.api_key for r in server.fake.received]
    assert keys[-4:] == [3, SASL_HANDSHAKE, SASL_AUTHENTICATE, 3]
    assert keys.count(SASL_HANDSHAKE) == 2
    assert loop.cluster.sasl_tokens[-1] == client_first_message("second")
    client.close()


def test_a_session_shorter_than_a_second_is_renewed_a_second_later(loop: Loopback) -> None:
    loop.cluster.sasl_session_ms = 1
    provider = Provider("first", "second")
    client = loop.client(security=oauth(provider))
    drive(client, lambda: client.ready(1))
    for _ in range(5):
        client.poll(0.01)
    assert provider.calls == 1  # the clock has not moved: no renewal yet
    loop.clock.now += MIN_REAUTHENTICATION_INTERVAL
    drive(client, lambda: provider.calls == 2)
    drive(client, lambda: client.ready(1))
    client.close()


def test_a_refused_renewal_fails_the_connection_with_an_authentication_error(
    loop: Loopback,
) -> None:
    loop.cluster.sasl_session_ms = 10_000
    provider = Provider("first", "revoked")
    client = loop.client(security=oauth(provider))
    drive(client, lambda: client.ready(1))
    loop.clock.now += 9.6
    drive(client, lambda: client.authentication_error() is not None)
    error = client.authentication_error()
    assert error is not None
    assert error.code == 58
    assert "invalid_token" in error.message
    assert "revoked" not in error.message
    client.close()
