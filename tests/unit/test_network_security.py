"""TLS and SASL in the NetworkClient's connection state machine, against loopback fake brokers.

The fake brokers of :mod:`tests.unit.test_network_client` accept SASL PLAIN for
the users of ``FakeCluster.sasl_users``; here they can also speak TLS (Python's
``ssl`` on the server side, with a certificate of :mod:`tests.brokers.tls`
issued for 127.0.0.1). The client's clock is a FakeClock, so the back-off after
a refused authentication is checked exactly, without waiting: how many
connections a client opens while its credentials are refused, over a stretch
of (fake) time.
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

import kafka_sink.net.client as client_module
from kafka_sink.config import BrokerAddress, SecurityConfig
from kafka_sink.errors import AuthenticationError, TlsAuthenticationError
from kafka_sink.net.client import AUTHENTICATING, HANDSHAKING, ClientResponse, NetworkClient
from kafka_sink.net.connection import NodeConnection
from kafka_sink.protocol.metadata import MetadataRequest, MetadataResponse
from kafka_sink.protocol.records import decode_batches
from tests.brokers.tls import TestPki, make_test_pki
from tests.unit.test_network_client import (
    Loopback,
    LoopbackBroker,
    _Listener,
    _ServerConn,
    connect,
    drive,
    offset_of,
    produce,
)

SECRET = "fake-broker-Passw0rd"
SASL_HANDSHAKE, SASL_AUTHENTICATE, API_VERSIONS, METADATA = 17, 36, 18, 3


def plain(password: str = SECRET) -> SecurityConfig:
    return SecurityConfig(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username="alice",
        sasl_plain_password=password,
    )


@pytest.fixture
def loop() -> Iterator[Loopback]:
    harness = Loopback(brokers=2)
    harness.cluster.sasl_users["alice"] = SECRET
    yield harness
    harness.close()


def connections(loop: Loopback) -> int:
    return sum(len(server.conns) for server in loop.servers.values())


def test_the_connection_authenticates_before_it_is_ready(loop: Loopback) -> None:
    client = loop.client(security=plain())
    states: set[str] = set()

    def ready() -> bool:  # and note each state on the way
        states.add(client.connection_states()[1])
        return client.ready(1)

    drive(client, ready)
    assert AUTHENTICATING in states
    server = loop.servers[1]
    order = [r.api_key for r in server.fake.received]
    assert order == [API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE]
    assert server.received(SASL_HANDSHAKE)[0].request.mechanism == "PLAIN"
    assert client.authentication_error() is None
    answers: list[ClientResponse[Any]] = []
    client.send(1, MetadataRequest.for_topics(["t"]), answers.append)
    drive(client, lambda: bool(answers))
    assert isinstance(answers[0].body, MetadataResponse)


def test_refused_credentials_back_off_and_are_reported(
    loop: Loopback, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kafka_sink")
    client = loop.client(
        security=plain("not-" + SECRET), reconnect_backoff=0.05, reconnect_backoff_max=1.0
    )
    drive(client, lambda: not client.ready(1) and client.authentication_error() is not None)
    error = client.authentication_error()
    assert isinstance(error, AuthenticationError)
    assert error.code == 58
    assert error.context["mechanism"] == "PLAIN"
    assert error.context["broker"] == str(loop.servers[1].address)
    assert "Invalid username or password" in error.message
    assert client.connection_states()[1] == "backoff"
    # The longest back-off at once (with -20 % jitter), for every node: the
    # credentials are the client's, so node 2 would refuse them too.
    assert 0.8 <= client.connection_delay(1) <= 1.0
    assert client.connection_delay(2) == client.connection_delay(1)
    assert not client.ready(2)
    assert connections(loop) == 1

    # Ten seconds of trying: at most one connection per 0.8 s.
    start = loop.clock.now
    while loop.clock.now < start + 10.0:
        loop.clock.now += 0.01
        client.ready(1)
        client.ready(2)
        client.poll(0)
    # The last attempt may still be under way (the broker runs in real time,
    # the clock does not): let it end before its refusal is counted.
    setting_up = {"connecting", "negotiating", "authenticating"}
    drive(client, lambda: not setting_up & set(client.connection_states().values()))
    attempts = connections(loop) - 1
    assert 9 <= attempts <= 13
    assert loop.cluster.sasl_refusals == attempts + 1

    text = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert "authentication failed" in text
    assert SECRET not in text


def test_authentication_succeeds_again_once_the_credentials_are_accepted(loop: Loopback) -> None:
    loop.cluster.sasl_users["alice"] = "the-old-password"
    client = loop.client(security=plain(), reconnect_backoff_max=1.0)
    drive(client, lambda: not client.ready(1) and client.authentication_error() is not None)
    loop.cluster.sasl_users["alice"] = SECRET  # the broker learns the new password
    loop.clock.now += client.connection_delay(1) + 0.001
    connect(client)
    assert client.authentication_error() is None
    assert client.connection_error(1) is None


def test_a_mechanism_the_broker_lacks_is_an_authentication_error(loop: Loopback) -> None:
    security = SecurityConfig(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_plain_username="alice",
        sasl_plain_password=SECRET,
    )
    client = loop.client(security=security)
    drive(client, lambda: not client.ready(1) and client.authentication_error() is not None)
    error = client.authentication_error()
    assert error is not None
    assert error.code == 33
    assert "offers: PLAIN" in error.message
    assert "SCRAM-SHA-256" in (client.connection_error(1) or "")


def test_a_plaintext_client_on_a_fresh_connection_gets_a_hint_when_dropped(
    loop: Loopback,
) -> None:
    client: NetworkClient = loop.client()
    connect(client)
    loop.servers[1].disconnect()  # as a SASL listener does with an unauthenticated request
    client.send(1, MetadataRequest.for_topics(["t"]), lambda response: None)
    drive(client, lambda: client.connection_error(1) is not None)
    assert "before answering any request" in (client.connection_error(1) or "")
    assert "security_protocol 'PLAINTEXT'" in (client.connection_error(1) or "")


# -- TLS --------------------------------------------------------------------------------


class _TlsServerConn(_ServerConn):
    """An accepted connection that speaks TLS: handshake, then FakeStream as before."""

    def __init__(
        self,
        server: LoopbackBroker,
        sock: socket.socket,
        selector: selectors.BaseSelector,
        context: ssl.SSLContext,
    ) -> None:
        self.handshaken = False
        tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        super().__init__(server, tls, selector)

    def handle(self, mask: int) -> None:
        if not self.handshaken:
            try:
                self.sock.do_handshake()  # type: ignore[attr-defined]  # the SSLSocket made above
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except (ssl.SSLError, OSError):
                self.close()
                return
            self.handshaken = True
        while True:  # TLS hands out one record per read: read until it wants more
            try:
                data = self.sock.recv(1 << 20)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except OSError:
                data = b""
            if not data:
                self.close()
                return
            self.bytes_in += len(data)
            self.stream.sendall(data, 0.0)
        self.flush()

    def flush(self) -> None:
        outbox = self.stream.outbox
        while outbox and self.handshaken:
            try:
                sent = self.sock.send(outbox[:65536])
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            del outbox[:sent]
        mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if outbox else 0)
        if mask != self.mask and not self.closed:
            self.mask = mask
            self.selector.modify(self.sock, mask, self)


class _TlsListener(_Listener):
    def __init__(
        self, server: LoopbackBroker, selector: selectors.BaseSelector, context: ssl.SSLContext
    ) -> None:
        super().__init__(server, selector)
        self.context = context

    def handle(self, mask: int) -> None:
        try:
            sock, _ = self.server.listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        self.server.conns.append(_TlsServerConn(self.server, sock, self.selector, self.context))


def _tls_loopback(pki: TestPki) -> Loopback:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(pki.broker_cert), str(pki.broker_key))
    harness = Loopback(brokers=1)
    for server in harness.servers.values():

        def attach(selector: selectors.BaseSelector, server: LoopbackBroker = server) -> None:
            selector.register(
                server.listener, selectors.EVENT_READ, _TlsListener(server, selector, context)
            )

        server.attach = attach  # type: ignore[method-assign]  # listen with TLS instead
    return harness


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"), keystores=False)


@pytest.fixture
def tls_loop(pki: TestPki) -> Iterator[Loopback]:
    harness = _tls_loopback(pki)
    harness.cluster.sasl_users["alice"] = SECRET
    yield harness
    harness.close()


def tls(pki: TestPki, **options: Any) -> SecurityConfig:
    values: dict[str, Any] = {"security_protocol": "SSL", "ssl_cafile": str(pki.ca_file)}
    values.update(options)
    return SecurityConfig(**values)


def test_tls_handshake_then_versions_then_requests(tls_loop: Loopback, pki: TestPki) -> None:
    client = tls_loop.client(security=tls(pki))
    states: set[str] = set()

    def ready() -> bool:  # and note each state on the way
        states.add(client.connection_states()[1])
        return client.ready(1)

    drive(client, ready)
    assert HANDSHAKING in states
    outcomes: list[Any] = []
    for i in range(5):  # pipelined on the one TLS connection
        client.send(1, produce(payload=f"tls-{i}".encode()), outcomes.append)
    drive(client, lambda: len(outcomes) == 5)
    assert [offset_of(o) for o in outcomes] == [0, 1, 2, 3, 4]
    assert tls_loop.cluster.logs[("t", 0)]


def test_tls_writes_of_a_megabyte_resume_after_want_write(
    tls_loop: Loopback, pki: TestPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    def small_buffers(*args: Any) -> socket.socket:
        sock = socket.socket(*args)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
        return sock

    client = tls_loop.client(security=tls(pki), socket_factory=small_buffers)
    connect(client)
    # Watch for writes that OpenSSL could not finish: their bytes are kept
    # for the retry, which must hand OpenSSL the same bytes again.
    write_tls = NodeConnection.write_tls
    pending: list[int] = []

    def watched(node: NodeConnection, sock: Any) -> str | None:
        failure = write_tls(node, sock)
        if node.tls_out is not None:
            pending.append(len(node.tls_out))
        return failure

    monkeypatch.setattr(NodeConnection, "write_tls", watched)  # a spy on each TLS write
    outcomes: list[Any] = []
    payloads = [bytes([65 + i]) * (1024 * 1024 - 200) for i in range(3)]
    for payload in payloads:
        client.send(1, produce(payload=payload), outcomes.append)
    drive(client, lambda: len(outcomes) == 3, polls=5000)
    assert [offset_of(o) for o in outcomes] == [0, 1, 2]
    assert pending, "no write had to wait for the socket"
    stored = [
        decode_batches(batch)[0].records[0].value for batch in tls_loop.cluster.logs[("t", 0)]
    ]
    assert stored == payloads


def test_tls_input_left_in_openssl_is_read_without_waiting(
    tls_loop: Loopback, pki: TestPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One small read per poll: the rest of each TLS record stays in OpenSSL's
    # buffer, where the selector cannot see it.
    monkeypatch.setattr(client_module, "_MAX_READS", 1)
    monkeypatch.setattr(client_module, "_RECV_BUFFER", 1000)
    client = tls_loop.client(security=tls(pki))
    connect(client)
    for i in range(200):
        tls_loop.cluster.add_topic(f"topic-with-a-rather-long-name-{i:04d}-" + "x" * 150, 4)
    tls_loop.selector.wait = False  # a poll that waited for the selector would stall here
    answers: list[Any] = []
    client.send(1, MetadataRequest.for_topics(None), answers.append)
    drive(client, lambda: bool(answers))
    assert answers[0].error is None
    assert len(answers[0].body.topics) == 201


def test_sasl_over_tls(tls_loop: Loopback, pki: TestPki) -> None:
    security = tls(
        pki,
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_plain_username="alice",
        sasl_plain_password=SECRET,
    )
    client = tls_loop.client(security=security)
    connect(client)
    order = [r.api_key for r in tls_loop.servers[1].fake.received]
    assert order == [API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE]


@pytest.mark.parametrize("problem", ["untrusted", "host name"])
def test_a_refused_certificate_is_an_authentication_error(
    tls_loop: Loopback, pki: TestPki, problem: str
) -> None:
    if problem == "untrusted":
        client = tls_loop.client(security=tls(pki, ssl_cafile=str(pki.other_ca_file)))
        expected = "unable to get local issuer certificate"
    else:
        client = tls_loop.client(security=tls(pki))
        port = tls_loop.servers[1].address.port
        client.set_nodes({1: BrokerAddress("localhost", port)})
        expected = "Hostname mismatch"
    drive(client, lambda: not client.ready(1) and client.authentication_error() is not None)
    error = client.authentication_error()
    assert isinstance(error, TlsAuthenticationError)
    assert expected in error.message
    assert client.connection_states()[1] == "backoff"
    assert client.connection_delay(1) >= 0.8 * 1.0  # the longest back-off (default 1 s)


def test_insecure_skip_verify_accepts_any_certificate(tls_loop: Loopback, pki: TestPki) -> None:
    security = tls(pki, ssl_cafile=None, ssl_insecure_skip_verify=True)
    with pytest.warns(UserWarning, match="not verified"):
        client = tls_loop.client(security=security)
    connect(client)
