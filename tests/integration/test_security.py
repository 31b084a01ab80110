"""TLS and SASL against the real Apache Kafka 2.3.0 broker (``kafka23_secure``).

Every record produced over a secured listener is read back by the oracle over
the broker's PLAINTEXT listener, so what is checked is what the broker
stored. The broker's listeners: SSL, MTLS (SSL with client certificates
required), SASL_PLAINTEXT and SASL_SSL with PLAIN, SCRAM-SHA-256 and
SCRAM-SHA-512 (see :mod:`tests.brokers.kafka23`).
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from kafka_sink import (
    AuthenticationError,
    ConnectError,
    Connection,
    DeliveryError,
    Producer,
    ProtocolError,
    Sink,
    SinkConfig,
    TlsAuthenticationError,
    TlsError,
)
from kafka_sink.config import BrokerAddress, SecurityConfig
from kafka_sink.net.client import NetworkClient
from kafka_sink.net.security import transport_for
from kafka_sink.net.transport import Stream, Transport
from tests.brokers.kafka23 import SASL_PASSWORD, SASL_USER, Kafka23Cluster
from tests.oracle import consume, values_of

pytestmark = pytest.mark.integration

WRONG_PASSWORD = "Not-The-Password-41"
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
COMBINATIONS = [
    ("SSL", None),
    ("MTLS", None),
    *(("SASL_PLAINTEXT", m) for m in MECHANISMS),
    *(("SASL_SSL", m) for m in MECHANISMS),
]
IDS = [f"{listener}-{mechanism}" if mechanism else listener for listener, mechanism in COMBINATIONS]


def security(
    cluster: Kafka23Cluster,
    listener: str,
    mechanism: str | None = None,
    password: str = SASL_PASSWORD,
) -> dict[str, Any]:
    """The client options for one of the cluster's secured listeners."""
    pki = cluster.pki
    options: dict[str, Any] = {
        "security_protocol": "SSL" if listener == "MTLS" else listener,
    }
    if listener in ("SSL", "MTLS", "SASL_SSL"):
        options["ssl_cafile"] = str(pki.ca_file)
    if listener == "MTLS":
        options.update(
            ssl_certfile=str(pki.client_cert),
            ssl_keyfile=str(pki.client_key),
            ssl_password=pki.client_key_password,
        )
    if mechanism is not None:
        options.update(
            sasl_mechanism=mechanism, sasl_plain_username=SASL_USER, sasl_plain_password=password
        )
    return options


class CountingTransport:
    """Counts the connections a Connection opens."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.connects = 0

    def connect(self, host: str, port: int, timeout: float) -> Stream:
        self.connects += 1
        return self.inner.connect(host, port, timeout)


class CountingSockets:
    """A NetworkClient socket factory that records when each connection starts."""

    def __init__(self) -> None:
        self.started: list[float] = []
        self.changed = threading.Condition()

    def __call__(self, *args: Any) -> socket.socket:
        with self.changed:
            self.started.append(time.monotonic())
            self.changed.notify_all()
        return socket.socket(*args)

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.started) >= count, timeout), (
                f"only {len(self.started)} connections were started"
            )


def network_factory(sockets: CountingSockets) -> Callable[[SinkConfig], NetworkClient]:
    def factory(config: SinkConfig) -> NetworkClient:
        return NetworkClient(
            client_id=config.client_id,
            request_timeout=config.request_timeout_ms / 1000.0,
            security=config.security,
            socket_factory=sockets,
        )

    return factory


# -- produce and read back over every listener and mechanism -------------------------------


@pytest.mark.parametrize(("listener", "mechanism"), COMBINATIONS, ids=IDS)
def test_producer_send_over_each_protocol(
    kafka23_secure: Kafka23Cluster, topic_name: str, listener: str, mechanism: str | None
) -> None:
    kafka23_secure.create_topic(topic_name, partitions=1)
    values = [f"{listener} {mechanism} {i}".encode() for i in range(5)]
    with Connection(
        broker_list=kafka23_secure.servers(listener),
        timeout=10,
        **security(kafka23_secure, listener, mechanism),
    ) as connection:
        result = Producer(connection).send(topic_name, 0, values, keys=b"k")
        assert result.acknowledged
        assert result.base_offset == 0
    got = consume(kafka23_secure.bootstrap_servers, topic_name, expected=5)
    assert [(r.key, r.value) for r in got] == [(b"k", v) for v in values]


@pytest.mark.parametrize(("listener", "mechanism"), COMBINATIONS, ids=IDS)
def test_sink_over_each_protocol(
    kafka23_secure: Kafka23Cluster, topic_name: str, listener: str, mechanism: str | None
) -> None:
    kafka23_secure.create_topic(topic_name, partitions=2)
    values = [f"{listener} {mechanism} {i}".encode() for i in range(200)]
    with Sink(
        kafka23_secure.servers(listener),
        linger_ms=5,
        **security(kafka23_secure, listener, mechanism),
    ) as sink:
        futures = [
            sink.produce(topic_name, v, key=str(i % 7).encode()) for i, v in enumerate(values)
        ]
        assert sink.flush(timeout=60) == 0
        assert all(f.exception(timeout=0) is None for f in futures)
        assert sink.metrics()["records_sent"] == 200
    got = consume(kafka23_secure.bootstrap_servers, topic_name, expected=200)
    assert sorted(values_of(got)) == sorted(values)


def test_megabytes_through_tls_arrive_intact(
    kafka23_secure: Kafka23Cluster, topic_name: str
) -> None:
    """Requests of up to 1 MiB: TLS writes that fill the socket and resume."""
    kafka23_secure.create_topic(topic_name, partitions=3)
    values = [(f"{i:08d}".encode() * 128) for i in range(6000)]  # 1 KiB each, 6 MiB
    with Sink(
        kafka23_secure.servers("SASL_SSL"),
        compression_type="none",
        linger_ms=50,
        batch_size=512 * 1024,
        **security(kafka23_secure, "SASL_SSL", "SCRAM-SHA-512"),
    ) as sink:
        for value in values:
            sink.produce(topic_name, value)
        assert sink.flush(timeout=120) == 0
        stats = sink.metrics()
    assert stats["records_sent"] == 6000
    assert stats["records_failed_total"] == 0
    got = consume(kafka23_secure.bootstrap_servers, topic_name, expected=6000, timeout=60)
    assert sorted(values_of(got)) == sorted(values)


def test_the_oracle_reads_back_over_sasl_ssl_too(
    kafka23_secure: Kafka23Cluster, topic_name: str
) -> None:
    kafka23_secure.create_topic(topic_name, partitions=1)
    with Connection(
        broker_list=kafka23_secure.servers("SASL_SSL"),
        **security(kafka23_secure, "SASL_SSL", "SCRAM-SHA-256"),
    ) as connection:
        Producer(connection).send(topic_name, 0, [b"over", b"sasl_ssl"])
    got = consume(
        kafka23_secure.servers("SASL_SSL"),
        topic_name,
        expected=2,
        config={
            "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(kafka23_secure.pki.ca_file),
            "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": SASL_USER,
            "sasl.password": SASL_PASSWORD,
        },
    )
    assert [r.value for r in got] == [b"over", b"sasl_ssl"]


def test_host_name_checking_can_be_turned_off(
    kafka23_secure: Kafka23Cluster, topic_name: str
) -> None:
    # The certificate names 127.0.0.1 only; "localhost" passes once the check is off.
    kafka23_secure.create_topic(topic_name, partitions=1)
    port = kafka23_secure.servers("SSL").rsplit(":", 1)[1]
    with Connection(
        broker_list=f"localhost:{port}",
        ip_version=4,
        ssl_check_hostname=False,
        **security(kafka23_secure, "SSL"),
    ) as connection:
        headers: list[list[tuple[str, bytes | None]]] = [
            [("checked", b"no")],
            [("empty", b""), ("null", None)],
        ]
        result = Producer(connection).send(
            topic_name,
            0,
            [b"no host check", b"\x00\xff binary"],
            keys=[b"localhost", None],
            timestamps=[1_700_000_000_000, 1_700_000_000_001],
            headers=headers,
        )
        assert result.acknowledged
        assert result.base_offset == 0
    got = consume(kafka23_secure.bootstrap_servers, topic_name, expected=2)
    assert [(r.offset, r.key, r.value, r.headers, r.timestamp_ms) for r in got] == [
        (0, b"localhost", b"no host check", headers[0], 1_700_000_000_000),
        (1, None, b"\x00\xff binary", headers[1], 1_700_000_000_001),
    ]


# -- refused credentials ----------------------------------------------------------------


@pytest.mark.parametrize("listener", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_wrong_password_is_refused_once_without_retries(
    kafka23_secure: Kafka23Cluster, listener: str, mechanism: str
) -> None:
    options = security(kafka23_secure, listener, mechanism, password=WRONG_PASSWORD)
    transport = CountingTransport(transport_for(SecurityConfig(**options)))
    servers = kafka23_secure.servers(listener)
    with pytest.raises(AuthenticationError) as caught:
        Connection(
            broker_list=servers, send_max_attempts=5, transport=transport, timeout=10, **options
        )
    error = caught.value
    assert type(error) is AuthenticationError
    assert error.code == 58  # SASL_AUTHENTICATION_FAILED
    assert error.context["mechanism"] == mechanism
    assert error.context["broker"] == servers
    assert mechanism in error.message
    assert servers in error.message
    assert transport.connects == 1  # refused credentials are not tried again


def test_a_sink_with_a_wrong_password_fails_its_records_and_backs_off(
    kafka23_secure: Kafka23Cluster, topic_name: str
) -> None:
    sockets = CountingSockets()
    with Sink(
        kafka23_secure.servers("SASL_SSL"),
        network_factory=network_factory(sockets),
        **security(kafka23_secure, "SASL_SSL", "SCRAM-SHA-256", password=WRONG_PASSWORD),
    ) as sink:
        first = sink.produce(topic_name, b"never delivered")
        error = first.exception(timeout=30)
        assert isinstance(error, DeliveryError)
        assert error.reason == "authentication"
        cause = error.context["cause"]
        assert isinstance(cause, AuthenticationError)
        assert cause.context["mechanism"] == "SCRAM-SHA-256"
        assert "SCRAM-SHA-256" in str(error)
        assert kafka23_secure.servers("SASL_SSL") in str(error)
        # Records produced later fail the same way, without waiting for a timeout.
        later = sink.produce(topic_name, b"nor this one")
        assert isinstance(later.exception(timeout=30), DeliveryError)
        sockets.wait_for(3)
        assert sink.metrics()["records_failed"] == {"authentication": 2}
    started = list(sockets.started)
    gaps = [b - a for a, b in itertools.pairwise(started)]
    # The longest reconnect back-off (1 s, less up to 20 % jitter) between tries.
    assert all(gap >= 0.8 for gap in gaps), gaps


# -- refused TLS handshakes ----------------------------------------------------------------


def _refused_by_tls(connect: Callable[[], object], match: str) -> TlsAuthenticationError:
    with pytest.raises(TlsAuthenticationError, match=match) as caught:
        connect()
    assert isinstance(caught.value, TlsError)
    assert isinstance(caught.value, AuthenticationError)
    return caught.value


def test_an_untrusted_certificate_is_a_tls_error(kafka23_secure: Kafka23Cluster) -> None:
    options = security(kafka23_secure, "SSL")
    options["ssl_cafile"] = str(kafka23_secure.pki.other_ca_file)
    servers = kafka23_secure.servers("SSL")
    error = _refused_by_tls(
        lambda: Connection(broker_list=servers, **options), "failed verification"
    )
    assert "self-signed certificate in certificate chain" in error.message
    assert error.context["broker"] == servers


def test_a_certificate_for_another_host_name_is_a_tls_error(
    kafka23_secure: Kafka23Cluster,
) -> None:
    port = kafka23_secure.servers("SSL").rsplit(":", 1)[1]
    _refused_by_tls(
        lambda: Connection(
            broker_list=f"localhost:{port}", ip_version=4, **security(kafka23_secure, "SSL")
        ),
        "Hostname mismatch",
    )


def test_a_broker_that_requires_a_client_certificate_refuses_none(
    kafka23_secure: Kafka23Cluster,
) -> None:
    _refused_by_tls(
        lambda: Connection(
            broker_list=kafka23_secure.servers("MTLS"), **security(kafka23_secure, "SSL")
        ),
        "refused the TLS handshake",
    )


@pytest.mark.parametrize("problem", ["untrusted", "host name"])
def test_a_sink_fails_its_records_on_a_refused_certificate(
    kafka23_secure: Kafka23Cluster, topic_name: str, problem: str
) -> None:
    options = security(kafka23_secure, "SSL")
    servers = kafka23_secure.servers("SSL")
    if problem == "untrusted":
        options["ssl_cafile"] = str(kafka23_secure.pki.other_ca_file)
    else:
        servers = servers.replace("127.0.0.1", "localhost")
        options["ip_version"] = 4
    with Sink(servers, **options) as sink:
        error = sink.produce(topic_name, b"x").exception(timeout=30)
    assert isinstance(error, DeliveryError)
    assert error.reason == "authentication"
    assert isinstance(error.context["cause"], TlsAuthenticationError)


# -- the wrong security_protocol ------------------------------------------------------------


def test_a_plaintext_client_against_a_tls_listener_gets_a_clear_error(
    kafka23_secure: Kafka23Cluster,
) -> None:
    servers = kafka23_secure.servers("SSL")
    with pytest.raises(ProtocolError, match="answered with TLS") as caught:
        Connection(broker_list=servers, timeout=5)
    assert "security_protocol" in caught.value.message
    assert servers in caught.value.message
    # The same diagnosis from the Sink's network client, within its connect timeout.
    client = NetworkClient(client_id="t", connect_timeout=5)
    try:
        host, port = servers.rsplit(":", 1)
        client.set_nodes({-1: BrokerAddress(host, int(port))})
        deadline = time.monotonic() + 10
        while client.connection_error(-1) is None and time.monotonic() < deadline:
            client.ready(-1)
            client.poll(0.1)
        assert "answered with TLS" in (client.connection_error(-1) or "")
    finally:
        client.close()


def test_a_tls_client_against_a_plaintext_listener_gets_a_clear_error(
    kafka23_secure: Kafka23Cluster,
) -> None:
    with pytest.raises(TlsError, match="does the listener speak TLS"):
        Connection(
            broker_list=kafka23_secure.bootstrap_servers,
            timeout=5,
            **security(kafka23_secure, "SSL"),
        )


def test_a_plaintext_client_against_a_sasl_listener_gets_a_hint(
    kafka23_secure: Kafka23Cluster,
) -> None:
    with pytest.raises(ConnectError, match="before answering any request") as caught:
        Connection(broker_list=kafka23_secure.servers("SASL_PLAINTEXT"), timeout=5)
    assert "security_protocol 'PLAINTEXT'" in str(caught.value)


# -- secrets stay secret ----------------------------------------------------------------------


def test_secrets_are_absent_from_logs_errors_and_reprs(
    kafka23_secure: Kafka23Cluster, topic_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kafka_sink")
    kafka23_secure.create_topic(topic_name, partitions=1)
    key_password = kafka23_secure.pki.client_key_password
    texts: list[str] = []

    def keep(*values: object) -> None:
        texts.extend(str(v) for v in values)
        texts.extend(repr(v) for v in values)

    for mechanism in MECHANISMS:
        for password in (SASL_PASSWORD, WRONG_PASSWORD):
            options = security(kafka23_secure, "SASL_SSL", mechanism, password=password)
            try:
                with Connection(broker_list=kafka23_secure.servers("SASL_SSL"), **options) as c:
                    keep(c, c.config, Producer(c).send(topic_name, 0, b"v"))
            except AuthenticationError as exc:
                keep(exc, exc.context, exc.__cause__, exc.__context__)
            with Sink(kafka23_secure.servers("SASL_SSL"), **options) as sink:
                future = sink.produce(topic_name, b"v")
                sink.flush(timeout=30)
                keep(sink, sink.config, sink.metrics(), future.exception(timeout=30))
    mtls = security(kafka23_secure, "MTLS")
    with Sink(kafka23_secure.servers("MTLS"), **mtls) as sink:
        keep(sink.config, sink.produce(topic_name, b"v").result(timeout=30))
    logged = [caplog.text]
    for record in caplog.records:
        logged.append(record.getMessage())
        logged.append(repr(record.args))
        if record.exc_info:
            logged.append(logging.Formatter().formatException(record.exc_info))
    assert any("authentication failed" in text for text in logged)  # something was logged
    for secret in (SASL_PASSWORD, WRONG_PASSWORD, key_password):
        for text in texts + logged:
            assert secret not in text


# -- the command line -------------------------------------------------------------------


def test_the_command_line_sends_and_tails_over_sasl_ssl(
    kafka23_secure: Kafka23Cluster,
    topic_name: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io
    import json

    from kafka_sink.cli import SASL_PASSWORD_ENV_VAR, main

    kafka23_secure.create_topic(topic_name, partitions=1)
    monkeypatch.setenv(SASL_PASSWORD_ENV_VAR, SASL_PASSWORD)
    options = [
        "-b",
        kafka23_secure.servers("SASL_SSL"),
        "--security-protocol",
        "SASL_SSL",
        "--ssl-cafile",
        str(kafka23_secure.pki.ca_file),
        "--sasl-mechanism",
        "SCRAM-SHA-512",
        "--sasl-username",
        SASL_USER,
    ]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"one\ntwo\nthree\n")))
    assert main(["send", "-t", topic_name, *options]) == 0
    sent = capsys.readouterr()

    assert main(["tail", "-t", topic_name, "-n", "3", "--format", "json", *options]) == 0
    tailed = capsys.readouterr()
    assert [json.loads(line)["value"] for line in tailed.out.splitlines()] == [
        "one",
        "two",
        "three",
    ]
    # The password came from the environment and appears in no output.
    for text in (sent.out, sent.err, tailed.out, tailed.err):
        assert SASL_PASSWORD not in text


def test_the_command_line_reports_a_wrong_password_in_one_line(
    kafka23_secure: Kafka23Cluster,
    topic_name: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kafka_sink.cli import SASL_PASSWORD_ENV_VAR, main

    monkeypatch.setenv(SASL_PASSWORD_ENV_VAR, WRONG_PASSWORD)
    code = main(
        [
            "tail",
            "-t",
            topic_name,
            "-b",
            kafka23_secure.servers("SASL_PLAINTEXT"),
            "--security-protocol",
            "SASL_PLAINTEXT",
            "--sasl-mechanism",
            "SCRAM-SHA-256",
            "--sasl-username",
            SASL_USER,
        ]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert len(err.strip().splitlines()) == 1
    assert "SCRAM-SHA-256" in err
    assert WRONG_PASSWORD not in err
