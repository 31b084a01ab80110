"""SASL/OAUTHBEARER and KIP-368 re-authentication against Apache Kafka 2.3.0.

The ``SASL_OAUTH`` listener of ``kafka23_secure`` validates tokens with Kafka's
unsecured JWT validator and keeps a session for at most
:data:`~tests.brokers.kafka23.OAUTH_REAUTH_MS` (3 s): a connection that is
used after its session ended is closed by the broker, so a client that
produces for longer must authenticate again, with a fresh token. What was
produced is read back by the oracle.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from kafka_sink import (
    AuthenticationError,
    Connection,
    DeliveryError,
    OAuthBearerToken,
    Producer,
    Sink,
)
from tests.brokers.kafka23 import OAUTH_REAUTH_MS, Kafka23Cluster, unsecured_jwt
from tests.integration.test_security import CountingSockets, network_factory
from tests.oracle import consume

pytestmark = pytest.mark.integration

PRINCIPAL = "admin"
# Longer than the broker's session (3 s): the session lifetime is the shorter of the two.
TOKEN_SECONDS = 5.0


class TokenProvider:
    """Mints an unsigned JWT at each call, and counts the calls."""

    def __init__(self, seconds: float = TOKEN_SECONDS) -> None:
        self.seconds = seconds
        self.tokens: list[str] = []
        self.changed = threading.Condition()

    def __call__(self) -> OAuthBearerToken:
        now = time.time()
        value = unsecured_jwt(PRINCIPAL, now + self.seconds, now)
        with self.changed:
            self.tokens.append(value)
            self.changed.notify_all()
        return OAuthBearerToken(
            value, lifetime_ms=int((now + self.seconds) * 1000), principal=PRINCIPAL
        )

    @property
    def calls(self) -> int:
        with self.changed:
            return len(self.tokens)

    def wait_for(self, calls: int, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.tokens) >= calls, timeout)


def oauth(provider: Any) -> dict[str, Any]:
    return {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "OAUTHBEARER",
        "sasl_oauth_token_provider": provider,
    }


def test_a_connection_produces_over_oauthbearer(
    kafka23_secure: Kafka23Cluster, topic_name: str
) -> None:
    kafka23_secure.create_topic(topic_name, partitions=1)
    provider = TokenProvider()
    with Connection(
        broker_list=kafka23_secure.servers("SASL_OAUTH"), timeout=10, **oauth(provider)
    ) as connection:
        result = Producer(connection).send(topic_name, 0, [b"bearer", b"token"], keys=b"k")
        assert result.acknowledged
    assert provider.calls >= 1
    got = consume(kafka23_secure.bootstrap_servers, topic_name, expected=2)
    assert [(r.key, r.value) for r in got] == [(b"k", b"bearer"), (b"k", b"token")]
    # librdkafka's own unsecured OAUTHBEARER reads the same records over the listener.
    again = consume(
        kafka23_secure.servers("SASL_OAUTH"),
        topic_name,
        expected=2,
        config={
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "OAUTHBEARER",
            "enable.sasl.oauthbearer.unsecure.jwt": True,
            "sasl.oauthbearer.config": f"principal={PRINCIPAL}",
        },
    )
    assert [r.value for r in again] == [b"bearer", b"token"]


def test_a_blocking_connection_renews_its_session_in_place(
    kafka23_secure: Kafka23Cluster, topic_name: str
) -> None:
    kafka23_secure.create_topic(topic_name, partitions=1)
    provider = TokenProvider()
    sent: list[bytes] = []
    with Connection(
        broker_list=kafka23_secure.servers("SASL_OAUTH"), timeout=10, **oauth(provider)
    ) as connection:
        producer = Producer(connection)
        first = provider.calls
        # Sends, spaced out, until the session has been renewed twice.
        deadline = time.monotonic() + 60
        while provider.calls < first + 2 and time.monotonic() < deadline:
            value = f"blocking {len(sent)}".encode()
            assert producer.send(topic_name, 0, value).acknowledged
            sent.append(value)
            time.sleep(0.1)
        assert provider.calls >= first + 2, "the session was never renewed"
    got = consume(kafka23_secure.bootstrap_servers, topic_name, expected=len(sent))
    assert [r.value for r in got] == sent


def test_a_sink_produces_across_session_renewals_without_loss_or_duplicates(
    kafka23_secure: Kafka23Cluster, topic_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kafka_sink")
    kafka23_secure.create_topic(topic_name, partitions=2)
    provider = TokenProvider()
    sockets = CountingSockets()
    renewals = 3
    produced: list[bytes] = []
    with Sink(
        kafka23_secure.servers("SASL_OAUTH"),
        linger_ms=5,
        network_factory=network_factory(sockets),
        **oauth(provider),
    ) as sink:
        futures = [sink.produce(topic_name, b"warm-up")]
        produced.append(b"warm-up")
        assert sink.flush(timeout=60) == 0
        connections = len(sockets.started)
        calls = provider.calls
        deadline = time.monotonic() + 120
        # Each session lasts 3 s and every connection renews its own: produce
        # until the provider was asked for a token `renewals` times more.
        while provider.calls < calls + renewals and time.monotonic() < deadline:
            for _ in range(20):
                value = f"record {len(produced)}".encode()
                futures.append(sink.produce(topic_name, value, key=value[-1:]))
                produced.append(value)
            provider.wait_for(provider.calls + 1, timeout=0.02)
        assert provider.calls >= calls + renewals, "the sessions were never renewed"
        assert sink.flush(timeout=60) == 0
        assert all(f.exception(timeout=0) is None for f in futures)
        stats = sink.metrics()
        # Renewed in place: no connection was closed and opened again.
        assert len(sockets.started) == connections
        shown = [str(stats), repr(sink), caplog.text]
    assert "re-authenticated" in caplog.text
    for token in provider.tokens:
        for text in shown:
            assert token not in text
    assert stats["records_sent"] == len(produced)
    assert stats["records_failed_total"] == 0
    got = consume(kafka23_secure.bootstrap_servers, topic_name, expected=len(produced), timeout=60)
    values = [r.value for r in got]
    assert len(values) == len(produced)
    assert sorted(v for v in values if v is not None) == sorted(produced)
    assert OAUTH_REAUTH_MS < TOKEN_SECONDS * 1000  # what made the sessions end


# -- refused tokens -----------------------------------------------------------------------


@pytest.mark.parametrize("problem", ["expired", "not a JWT"])
def test_a_refused_token_is_a_clear_authentication_error(
    kafka23_secure: Kafka23Cluster, problem: str
) -> None:
    now = time.time()
    if problem == "expired":
        token = unsecured_jwt(PRINCIPAL, now - 60, now - 120)
    else:
        token = "not-a-jwt.at-all"
    servers = kafka23_secure.servers("SASL_OAUTH")
    with pytest.raises(AuthenticationError) as caught:
        Connection(broker_list=servers, timeout=10, **oauth(lambda: token))
    error = caught.value
    assert type(error) is AuthenticationError
    assert error.code == 58  # SASL_AUTHENTICATION_FAILED
    assert error.context["mechanism"] == "OAUTHBEARER"
    assert servers in error.message
    assert "invalid_token" in error.message
    for text in (str(error), repr(error), str(error.context)):
        assert token not in text


def test_a_failing_token_provider_is_an_authentication_error(
    kafka23_secure: Kafka23Cluster,
) -> None:
    def provider() -> str:
        raise RuntimeError("the identity provider is down")

    with pytest.raises(AuthenticationError, match="identity provider is down") as caught:
        Connection(broker_list=kafka23_secure.servers("SASL_OAUTH"), timeout=10, **oauth(provider))
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert "sasl_oauth_token_provider" in caught.value.message


def test_a_sink_with_a_refused_token_fails_its_records(
    kafka23_secure: Kafka23Cluster, topic_name: str
) -> None:
    token = unsecured_jwt(PRINCIPAL, time.time() - 60, time.time() - 120)
    with Sink(kafka23_secure.servers("SASL_OAUTH"), **oauth(lambda: token)) as sink:
        error = sink.produce(topic_name, b"never delivered").exception(timeout=30)
        text = str(sink.metrics())
    assert isinstance(error, DeliveryError)
    assert error.reason == "authentication"
    cause = error.context["cause"]
    assert isinstance(cause, AuthenticationError)
    assert cause.context["mechanism"] == "OAUTHBEARER"
    for shown in (str(error), repr(error), str(cause), text):
        assert token not in shown
