"""NetworkClient against fake brokers on real loopback sockets, all on the test's thread.

The fake brokers answer with :class:`tests.fakes.FakeStream` (the library's own
schemas, the in-memory cluster's request handling). Their sockets are registered
in the client's own selector (:class:`ServingSelector`, injected through
``selector_factory``): when the client waits in ``poll()``, server-side readiness
is served right there and hidden from the client. So no thread and no sleep is
needed, and the client's clock is a :class:`~tests.fakes.FakeClock` that only the
test moves.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import struct
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kafka_sink.config import BrokerAddress
from kafka_sink.errors import (
    ConnectError,
    CorrelationIdMismatchError,
    InvalidArgumentError,
    NetworkError,
    ProtocolError,
    ReceiveError,
    RequestTimeoutError,
    SendError,
    UnsupportedVersionError,
)
from kafka_sink.net.client import ClientResponse, NetworkClient
from kafka_sink.protocol.metadata import MetadataRequest, MetadataResponse
from kafka_sink.protocol.produce import (
    PartitionProduceData,
    ProduceRequest,
    ProduceResponse,
    TopicProduceData,
)
from kafka_sink.protocol.records import encode_batch
from tests.fakes import FakeBroker, FakeClock, FakeCluster, FakeStream

PRODUCE, METADATA, API_VERSIONS = 0, 3, 18

# -- fake brokers on loopback ------------------------------------------------------------


class _Listener:
    def __init__(self, server: LoopbackBroker, selector: selectors.BaseSelector) -> None:
        self.server = server
        self.selector = selector

    def handle(self, mask: int) -> None:
        try:
            sock, _ = self.server.listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        self.server.conns.append(_ServerConn(self.server, sock, self.selector))


class _ServerConn:
    """One accepted connection: bytes in go to a FakeStream, its answers go out."""

    def __init__(
        self, server: LoopbackBroker, sock: socket.socket, selector: selectors.BaseSelector
    ) -> None:
        self.server = server
        self.sock = sock
        self.selector = selector
        self.stream = FakeStream(server.fake)
        self.bytes_in = 0
        self.closed = False
        self.mask = selectors.EVENT_READ
        selector.register(sock, self.mask, self)

    def handle(self, mask: int) -> None:
        if mask & selectors.EVENT_READ:
            try:
                data = self.sock.recv(1 << 20)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.close()
                return
            self.bytes_in += len(data)
            self.stream.sendall(data, 0.0)  # decodes the requests, queues the answers
        self.flush()

    def write(self, data: bytes) -> None:
        self.stream.outbox += data
        self.flush()

    def flush(self) -> None:
        outbox = self.stream.outbox
        while outbox:
            try:
                sent = self.sock.send(outbox)
            except BlockingIOError:
                break
            del outbox[:sent]
        mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if outbox else 0)
        if mask != self.mask:
            self.mask = mask
            self.selector.modify(self.sock, mask, self)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.selector.unregister(self.sock)
            self.sock.close()


class LoopbackBroker:
    """A FakeBroker listening on 127.0.0.1."""

    def __init__(self, fake: FakeBroker) -> None:
        self.fake = fake
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.address = BrokerAddress("127.0.0.1", self.listener.getsockname()[1])
        self.conns: list[_ServerConn] = []

    def attach(self, selector: selectors.BaseSelector) -> None:
        selector.register(self.listener, selectors.EVENT_READ, _Listener(self, selector))

    def live(self) -> list[_ServerConn]:
        return [c for c in self.conns if not c.closed]

    def raw(self, data: bytes) -> None:
        """Write bytes as they are to every open connection."""
        for conn in self.live():
            conn.write(data)

    def disconnect(self) -> None:
        for conn in self.live():
            conn.close()

    def received(self, api_key: int) -> list[Any]:
        return [r for r in self.fake.received if r.api_key == api_key]

    def close(self) -> None:
        self.disconnect()
        self.listener.close()


_SERVER_SIDE = (_Listener, _ServerConn)


class ServingSelector(selectors.DefaultSelector):
    """The client's selector, shared with the fake brokers' sockets.

    Records every ``select()`` timeout and how many events went back to the
    client. With ``wait`` False it never waits (for tests of what the client
    asks for, not of time passing).
    """

    def __init__(self, servers: list[LoopbackBroker]) -> None:
        super().__init__()
        self.timeouts: list[float | None] = []
        self.returned: list[int] = []
        self.entered = threading.Event()
        self.wait = True
        for server in servers:
            server.attach(self)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self.timeouts.append(timeout)
        self.entered.set()
        if not self.wait:
            timeout = 0
        for _ in range(10_000):
            events = super().select(timeout)
            mine = [(k, m) for k, m in events if not isinstance(k.data, _SERVER_SIDE)]
            for key, mask in events:
                if isinstance(key.data, _SERVER_SIDE):
                    key.data.handle(mask)
            if mine or len(mine) == len(events):
                self.returned.append(len(mine))
                return mine
            timeout = 0  # served a broker: look again for its answer, without waiting
        raise AssertionError("the fake brokers keep the selector busy")


class Loopback:
    """A FakeCluster whose brokers listen on loopback, and clients wired to it."""

    def __init__(self, brokers: int = 1) -> None:
        self.cluster = FakeCluster(brokers)
        self.cluster.add_topic("t", 2, leader=1)
        self.clock: FakeClock = self.cluster.clock
        self.servers = {n: LoopbackBroker(b) for n, b in self.cluster.brokers.items()}
        self.selectors: list[ServingSelector] = []
        self.clients: list[NetworkClient] = []

    @property
    def selector(self) -> ServingSelector:
        return self.selectors[-1]

    def nodes(self) -> dict[int, BrokerAddress]:
        return {n: s.address for n, s in self.servers.items()}

    def _selector_factory(self) -> ServingSelector:
        selector = ServingSelector(list(self.servers.values()))
        self.selectors.append(selector)
        return selector

    def client(self, **options: Any) -> NetworkClient:
        options.setdefault("selector_factory", self._selector_factory)
        client = NetworkClient(client_id="test", clock=self.clock, **options)
        client.set_nodes(self.nodes())
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for server in self.servers.values():
            server.close()


@pytest.fixture
def loop() -> Iterator[Loopback]:
    harness = Loopback(brokers=2)
    yield harness
    harness.close()


@pytest.fixture(params=["sendmsg", "send"])
def write_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of writing: several frames per sendmsg(), or one send() per frame."""
    import kafka_sink.net.connection as module  # where the write loop is

    if request.param == "sendmsg" and not module._HAS_SENDMSG:
        pytest.skip("no sendmsg() on this platform")
    if request.param == "send":
        monkeypatch.setattr(module, "_HAS_SENDMSG", False)
    return str(request.param)


def drive(client: NetworkClient, until: Callable[[], bool], polls: int = 200) -> None:
    """Poll until ``until()`` holds; each poll returns as soon as the client has I/O."""
    for _ in range(polls):
        if until():
            return
        client.poll(0.5)
    assert until(), "the condition was not reached"


def connect(client: NetworkClient, node_id: int = 1) -> None:
    drive(client, lambda: client.ready(node_id))


def produce(acks: int = 1, payload: bytes = b"x", partition: int = 0) -> ProduceRequest:
    batch = encode_batch([(1_700_000_000_000, None, payload, ())])
    return ProduceRequest(
        acks=acks, topic_data=[TopicProduceData("t", [PartitionProduceData(partition, batch)])]
    )


def offset_of(response: ClientResponse[ProduceResponse]) -> int:
    assert response.error is None, response.error
    assert response.body is not None
    base_offset: int = response.body.responses[0].partition_responses[0].base_offset
    return base_offset


@pytest.fixture
def refused_address() -> Iterator[BrokerAddress]:
    # A bound socket that does not listen: connections to it are refused.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield BrokerAddress("127.0.0.1", sock.getsockname()[1])
    sock.close()


EPSILON = 1e-6  # past a deadline computed in floating point


# -- connecting and negotiating --------------------------------------------------------


def test_connects_negotiates_and_reports_states(loop: Loopback) -> None:
    client = loop.client()
    assert client.connection_states() == {1: "disconnected", 2: "disconnected"}
    assert client.api_versions(1) == {}
    assert not client.ready(1)
    assert client.connection_states()[1] in ("connecting", "negotiating")
    connect(client)
    assert client.connection_states() == {1: "ready", 2: "disconnected"}
    assert client.api_versions(1)[PRODUCE] == (3, 11)
    assert client.version_for(1, PRODUCE) == 11
    assert [r.version for r in loop.servers[1].received(API_VERSIONS)] == [3]
    assert client.in_flight() == 0
    assert client.connection_error(1) is None


def test_api_versions_falls_back_to_the_version_the_broker_offers(loop: Loopback) -> None:
    loop.cluster.brokers[1].max_versions[API_VERSIONS] = 1
    client = loop.client()
    connect(client)
    # KIP-511: the broker answered v3 with error 35 and its range (0-1) at v0.
    assert [r.version for r in loop.servers[1].received(API_VERSIONS)] == [3, 1]
    assert client.api_versions(1)[API_VERSIONS] == (0, 1)


def test_api_versions_falls_back_to_v0_on_an_undecodable_answer(loop: Loopback) -> None:
    server = loop.servers[1]
    server.fake.silent = True
    client = loop.client()
    drive(client, lambda: client.ready(1) or bool(server.received(API_VERSIONS)))
    server.fake.silent = False
    first = server.received(API_VERSIONS)[0]
    # Error 35 followed by an api_keys array that claims 1000 entries and has none.
    body = struct.pack(">ihi", first.correlation_id, 35, 1000)
    server.raw(struct.pack(">i", len(body)) + body)
    connect(client)
    assert [r.version for r in server.received(API_VERSIONS)] == [3, 0]


def test_connection_setup_is_bounded_by_connect_timeout(loop: Loopback) -> None:
    server = loop.servers[1]
    server.fake.silent = True  # accepts, never answers ApiVersions
    client = loop.client(connect_timeout=5.0)
    drive(client, lambda: client.ready(1) or bool(server.received(API_VERSIONS)))
    assert client.connection_states()[1] == "negotiating"
    loop.clock.now += 5.0
    client.poll(0.0)
    assert client.connection_states()[1] == "backoff"
    assert "no connection within 5s" in (client.connection_error(1) or "")
    drive(client, lambda: not server.live())  # the socket was closed


def test_refused_connection_backs_off_without_spinning(
    loop: Loopback, refused_address: BrokerAddress
) -> None:
    sockets = 0

    def counting_socket(*args: Any) -> socket.socket:
        nonlocal sockets
        sockets += 1
        return socket.socket(*args)

    client = loop.client(
        socket_factory=counting_socket, reconnect_backoff=0.05, reconnect_backoff_max=1.0
    )
    client.set_nodes({7: refused_address})
    drive(client, lambda: client.connection_states()[7] == "backoff" or client.ready(7))
    assert client.connection_states()[7] == "backoff"
    assert sockets == 1
    assert "refused" in (client.connection_error(7) or "").lower()
    first_delay = client.connection_delay(7)
    assert 0.04 <= first_delay <= 0.06  # 50 ms +- 20 % jitter

    # A request for it fails through its callback, naming the cause.
    outcomes: list[ClientResponse[Any]] = []
    client.send(7, MetadataRequest.for_topics(["t"]), outcomes.append)
    client.poll(0.0)
    [outcome] = outcomes
    assert isinstance(outcome.error, ConnectError)
    assert "backoff" in outcome.error.message
    assert "refused" in outcome.error.message.lower()

    # Nothing to do: one select() per poll, with the whole timeout.
    loop.selector.wait = False
    calls = len(loop.selector.timeouts)
    assert not client.ready(7)  # still backing off: no new attempt
    client.poll(5.0)
    assert loop.selector.timeouts[calls:] == [5.0]
    assert sockets == 1

    # After the back-off, a new attempt; the next back-off is longer, up to the maximum.
    loop.selector.wait = True
    loop.clock.now += first_delay + EPSILON
    assert not client.ready(7)
    assert sockets == 2
    drive(client, lambda: client.connection_states()[7] == "backoff")
    assert 0.08 <= client.connection_delay(7) <= 0.12
    for _ in range(8):
        loop.clock.now += client.connection_delay(7) + EPSILON
        client.ready(7)
        drive(client, lambda: client.connection_states()[7] == "backoff")
        assert client.connection_delay(7) <= 1.0
    assert client.connection_delay(7) >= 0.8
    assert sockets == 10


def test_unresolvable_host_backs_off(loop: Loopback, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    client = loop.client()
    client.set_nodes({5: BrokerAddress("no-such-host.invalid", 9092)})
    assert not client.ready(5)
    assert client.connection_states()[5] == "backoff"
    assert "cannot resolve" in (client.connection_error(5) or "")


def test_backoff_resets_after_a_successful_connection(loop: Loopback) -> None:
    client = loop.client(reconnect_backoff=0.05, reconnect_backoff_max=1.0)
    connect(client)
    for _ in range(3):
        loop.servers[1].disconnect()
        drive(client, lambda: client.connection_states()[1] == "backoff")
        assert 0.04 <= client.connection_delay(1) <= 0.06  # the first step each time
        loop.clock.now += 0.06 + EPSILON
        connect(client)


# -- requests --------------------------------------------------------------------------


def test_pipelined_requests_are_matched_in_order(loop: Loopback, write_path: str) -> None:
    client = loop.client(max_in_flight=5)
    connect(client)
    outcomes: list[ClientResponse[Any]] = []
    requests = [
        produce(),
        MetadataRequest.for_topics(["t"]),
        produce(),
        MetadataRequest.for_topics(None),
        produce(),
    ]
    for request in requests:
        client.send(1, request, outcomes.append)
    assert client.in_flight(1) == 5
    assert not client.ready(1)  # max_in_flight reached
    assert not client.can_send_more(1)
    drive(client, lambda: len(outcomes) == 5)
    assert [o.request for o in outcomes] == requests
    assert [o.error for o in outcomes] == [None] * 5
    assert [offset_of(o) for o in outcomes[::2]] == [0, 1, 2]
    assert isinstance(outcomes[1].body, MetadataResponse)
    assert [o.version for o in outcomes] == [11, 12, 11, 12, 11]
    assert all(o.node_id == 1 and o.latency >= 0 for o in outcomes)
    server = loop.servers[1]
    ids = [r.correlation_id for r in server.fake.received if r.api_key != API_VERSIONS]
    assert ids == sorted(ids)
    assert len(server.conns) == 1  # all on one connection
    assert client.in_flight() == 0
    assert client.ready(1)


def test_acks_0_completes_once_written(loop: Loopback, write_path: str) -> None:
    client = loop.client()
    connect(client)
    outcomes: list[ClientResponse[Any]] = []
    client.send(1, produce(acks=0, payload=b"fire"), outcomes.append)
    client.send(1, produce(acks=1, payload=b"then"), outcomes.append)
    drive(client, lambda: len(outcomes) == 2)
    no_answer, answered = outcomes
    assert (no_answer.body, no_answer.error) == (None, None)
    assert offset_of(answered) == 1  # the acks=0 batch was appended first
    assert len(loop.cluster.logs[("t", 0)]) == 2


def test_large_requests_are_written_in_pieces(loop: Loopback, write_path: str) -> None:
    client = loop.client()
    connect(client)
    outcomes: list[ClientResponse[Any]] = []
    payloads = [bytes([i]) * (3 << 20) for i in range(3)]  # larger than socket buffers
    for payload in payloads:
        client.send(1, produce(payload=payload), outcomes.append)
    drive(client, lambda: len(outcomes) == 3)
    assert [offset_of(o) for o in outcomes] == [0, 1, 2]
    assert loop.cluster.logs[("t", 0)] == [
        encode_batch([(1_700_000_000_000, None, p, ())]) for p in payloads
    ]


def test_send_refusals_reach_the_callback(loop: Loopback) -> None:
    loop.cluster.brokers[1].max_versions[METADATA] = 0  # below what the library speaks
    client = loop.client(max_in_flight=2)
    outcomes: list[ClientResponse[Any]] = []
    client.send(99, produce(), outcomes.append)  # unknown node
    client.send(2, produce(), outcomes.append)  # not connected
    connect(client)
    client.send(1, ProduceRequest(acks=1, timeout_ms=2**40), outcomes.append)  # not an int32
    client.send(1, MetadataRequest.for_topics(["t"]), outcomes.append)  # no common version
    client.send(1, produce(), outcomes.append)
    client.send(1, produce(), outcomes.append)
    client.send(1, produce(), outcomes.append)  # over max_in_flight
    drive(client, lambda: len(outcomes) == 7)
    assert [type(o.error) for o in outcomes] == [
        ConnectError,
        ConnectError,
        InvalidArgumentError,
        UnsupportedVersionError,
        SendError,
        type(None),
        type(None),
    ]
    assert "not known" in str(outcomes[0].error)
    assert "not ready" in str(outcomes[1].error)
    assert "max_in_flight" in str(outcomes[4].error)
    assert [offset_of(o) for o in outcomes[5:]] == [0, 1]
    assert client.callback_errors == 0


def test_version_for_raises_when_no_version_is_shared(loop: Loopback) -> None:
    loop.cluster.brokers[1].max_versions[PRODUCE] = 2
    client = loop.client()
    connect(client)
    with pytest.raises(UnsupportedVersionError, match="PRODUCE"):
        client.version_for(1, PRODUCE)
    outcomes: list[ClientResponse[Any]] = []
    client.send(1, produce(), outcomes.append)
    client.poll(0.0)
    assert isinstance(outcomes[0].error, UnsupportedVersionError)
    with pytest.raises(ConnectError, match="not ready"):
        client.version_for(2, PRODUCE)


# -- failures --------------------------------------------------------------------------


def test_request_timeout_fails_in_flight_requests_and_reconnects(loop: Loopback) -> None:
    client = loop.client(request_timeout=30.0, reconnect_backoff=0.05)
    connect(client)
    server = loop.servers[1]
    server.fake.silent = True
    outcomes: list[ClientResponse[Any]] = []
    client.send(1, produce(), outcomes.append)
    loop.clock.now += 10
    client.send(1, produce(), outcomes.append)
    client.send(1, produce(), outcomes.append)
    drive(client, lambda: len(server.received(PRODUCE)) == 3)
    loop.clock.now += 19.5
    client.poll(0.0)
    assert outcomes == []
    loop.clock.now += 0.5  # the first request is 30 s old, the others 20 s
    client.poll(0.0)
    assert [type(o.error) for o in outcomes] == [RequestTimeoutError, ReceiveError, ReceiveError]
    assert outcomes[0].latency == pytest.approx(30.0)
    assert all(isinstance(o.error, NetworkError) for o in outcomes)
    assert client.connection_states()[1] == "backoff"
    assert client.in_flight() == 0
    drive(client, lambda: not server.live())  # the stream position is lost: closed

    server.fake.silent = False
    loop.clock.now += 1.0
    connect(client)
    assert len(server.conns) == 2
    client.send(1, produce(), outcomes.append)
    drive(client, lambda: len(outcomes) == 4)
    assert outcomes[3].error is None


def test_poll_waits_no_longer_than_the_next_request_deadline(loop: Loopback) -> None:
    client = loop.client(request_timeout=30.0)
    connect(client)
    loop.servers[1].fake.silent = True
    client.send(1, produce(), lambda _: None)
    loop.clock.now += 25
    loop.selector.wait = False
    client.poll(60.0)
    assert loop.selector.timeouts[-1] == pytest.approx(5.0)


def test_end_of_stream_mid_response_fails_the_request(loop: Loopback) -> None:
    client = loop.client()
    connect(client)
    server = loop.servers[1]
    server.fake.silent = True
    outcomes: list[ClientResponse[Any]] = []
    client.send(1, MetadataRequest.for_topics(["t"]), outcomes.append)
    client.send(1, produce(acks=0), outcomes.append)  # written: completes on its own
    drive(client, lambda: bool(server.received(PRODUCE)))
    request_id = server.received(METADATA)[0].correlation_id
    server.raw(struct.pack(">ii", 100, request_id) + b"\0" * 10)  # 14 of 104 bytes
    server.disconnect()
    drive(client, lambda: len(outcomes) == 2)
    fire_and_forget, metadata = outcomes
    assert fire_and_forget.error is None
    assert isinstance(metadata.error, ReceiveError)
    assert "closed by the broker" in metadata.error.message
    assert client.connection_states()[1] == "backoff"


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        pytest.param(lambda cid: struct.pack(">i", 1 << 30), ProtocolError, id="oversized"),
        pytest.param(lambda cid: struct.pack(">i", 2) + b"\0\0", ProtocolError, id="undersized"),
        pytest.param(
            lambda cid: struct.pack(">ii", 7, cid) + b"\xff\xff\xff", ProtocolError, id="garbage"
        ),
        pytest.param(
            lambda cid: struct.pack(">ii", 4, cid + 1000),
            CorrelationIdMismatchError,
            id="wrong-correlation-id",
        ),
    ],
)
def test_bad_frames_fail_requests_not_poll(
    loop: Loopback, frame: Callable[[int], bytes], error: type[ProtocolError]
) -> None:
    client = loop.client(max_response_size=1 << 20)
    connect(client)
    server = loop.servers[1]
    server.fake.silent = True
    outcomes: list[ClientResponse[Any]] = []
    client.send(1, MetadataRequest.for_topics(["t"]), outcomes.append)
    client.send(1, produce(), outcomes.append)
    drive(client, lambda: bool(server.received(PRODUCE)))
    server.raw(frame(server.received(METADATA)[0].correlation_id))
    drive(client, lambda: len(outcomes) == 2)
    first, second = outcomes
    assert type(first.error) is error
    assert first.error.context["broker"] == str(server.address)
    assert isinstance(second.error, ReceiveError)  # collateral: sent, answer lost
    assert "bad response" in second.error.message
    assert client.connection_states()[1] == "backoff"


def test_callback_exceptions_are_counted_not_raised(loop: Loopback) -> None:
    client = loop.client()
    connect(client)
    outcomes: list[ClientResponse[Any]] = []

    def explode(response: ClientResponse[Any]) -> None:
        raise RuntimeError("callback bug")

    client.send(1, produce(), explode)
    client.send(1, produce(), outcomes.append)
    drive(client, lambda: len(outcomes) == 1)
    assert client.callback_errors == 1
    assert offset_of(outcomes[0]) == 1


def test_callbacks_may_send_and_close(loop: Loopback) -> None:
    client = loop.client()
    connect(client, 1)
    connect(client, 2)
    outcomes: list[ClientResponse[Any]] = []

    def chain(response: ClientResponse[Any]) -> None:
        outcomes.append(response)
        client.send(1, produce(), outcomes.append)

    client.send(1, produce(), chain)
    drive(client, lambda: len(outcomes) == 2)
    assert [offset_of(o) for o in outcomes] == [0, 1]

    loop.servers[2].fake.silent = True
    client.send(2, produce(), outcomes.append)  # stays in flight
    client.send(1, produce(), lambda _: client.close())
    drive(client, lambda: len(outcomes) == 3)
    assert isinstance(outcomes[2].error, NetworkError)
    assert "closed" in outcomes[2].error.message
    assert client.closed


def test_set_nodes_closes_connections_to_nodes_that_left(loop: Loopback) -> None:
    client = loop.client()
    connect(client, 1)
    connect(client, 2)
    loop.servers[1].fake.silent = True
    outcomes: list[ClientResponse[Any]] = []
    client.send(1, produce(), outcomes.append)
    client.poll(0.0)
    client.set_nodes({2: loop.servers[2].address, -1: loop.servers[1].address})
    assert client.connection_states() == {2: "ready", -1: "disconnected"}
    client.poll(0.0)
    [outcome] = outcomes
    assert isinstance(outcome.error, ReceiveError)
    assert "left the cluster" in outcome.error.message
    drive(client, lambda: not loop.servers[1].live())
    assert loop.servers[2].live()


def test_least_loaded_node(loop: Loopback) -> None:
    client = loop.client()
    assert client.least_loaded_node() in (1, 2)  # none connected: any may be tried
    connect(client, 1)
    assert client.least_loaded_node() == 1  # ready beats connectable
    connect(client, 2)
    loop.servers[1].fake.silent = True
    client.send(1, produce(), lambda _: None)
    assert client.least_loaded_node() == 2
    client.close()
    assert client.least_loaded_node() is None


# -- wakeup, close, fork ---------------------------------------------------------------


@pytest.mark.timeout(60)
def test_wakeup_from_another_thread_interrupts_a_long_poll(loop: Loopback) -> None:
    client = loop.client()
    selector = loop.selector
    selector.entered.clear()

    def wake() -> None:
        assert selector.entered.wait(30)
        client.wakeup()

    thread = threading.Thread(target=wake)
    thread.start()
    client.poll(3600.0)
    thread.join()
    assert selector.timeouts[-1] == 3600.0
    assert selector.returned[-1] == 1  # the wakeup


def test_wakeups_are_coalesced(loop: Loopback) -> None:
    client = loop.client()
    selector = loop.selector
    selector.wait = False
    for _ in range(10_000):
        client.wakeup()
    client.poll(1.0)
    client.poll(1.0)
    assert selector.returned[-2:] == [1, 0]
    client.wakeup()
    client.poll(1.0)
    assert selector.returned[-1] == 1


def test_a_wakeup_during_the_drain_is_not_lost(loop: Loopback) -> None:
    client = loop.client()
    selector = loop.selector
    selector.wait = False
    real = client._poller._wake_r

    class Racing:
        """The wakeup socket's reader, with another thread's wakeup() landing mid-drain."""

        def recv(self, size: int) -> bytes:
            client.wakeup()
            return real.recv(size)

    client._poller._wake_r = Racing()  # type: ignore[assignment]  # the drain only calls recv()
    client.wakeup()
    client.poll(0.0)
    client._poller._wake_r = real
    # Whatever the interleaving, a later wakeup must still wake the poll.
    client.poll(0.0)
    client.wakeup()
    client.poll(0.0)
    assert selector.returned[-1] == 1


def test_close_fails_everything_and_is_idempotent(loop: Loopback) -> None:
    client = loop.client()
    connect(client)
    loop.servers[1].fake.silent = True
    outcomes: list[ClientResponse[Any]] = []
    client.send(1, produce(), outcomes.append)
    client.poll(0.0)  # written
    client.send(1, produce(), outcomes.append)  # queued only
    client.close()
    assert [type(o.error) for o in outcomes] == [ReceiveError, SendError]
    client.close()
    client.wakeup()
    client.poll(0.0)
    assert client.connection_states() == {}
    assert not client.ready(1)
    client.send(1, produce(), outcomes.append)
    client.poll(0.0)
    assert isinstance(outcomes[-1].error, ConnectError)
    assert "closed" in outcomes[-1].error.message


def test_importing_the_client_loads_the_codec_name_resolution_needs() -> None:
    # getaddrinfo() needs the "idna" codec. Were it first imported by the sender
    # thread while another thread forks, the child could not load it and could
    # not resolve any name; so the module loads it itself.
    code = "import sys, kafka_sink.net.client; print('encodings.idna' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "True"


def test_a_name_that_cannot_be_resolved_is_a_connection_failure(
    loop: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_codec(*args: Any) -> Any:
        raise LookupError("unknown encoding: idna")

    monkeypatch.setattr(socket, "getaddrinfo", broken_codec)
    client = loop.client()
    assert not client.ready(1)  # does not raise
    assert client.connection_states()[1] == "backoff"
    assert "idna" in (client.connection_error(1) or "")


def test_bad_arguments_are_named() -> None:
    with pytest.raises(InvalidArgumentError, match="request_timeout"):
        NetworkClient(client_id="x", request_timeout=0)
    with pytest.raises(InvalidArgumentError, match="reconnect_backoff_max"):
        NetworkClient(client_id="x", reconnect_backoff=2.0, reconnect_backoff_max=1.0)
    with pytest.raises(InvalidArgumentError, match="ip_version"):
        NetworkClient(client_id="x", ip_version=5)
    with pytest.raises(InvalidArgumentError, match="max_in_flight"):
        NetworkClient(client_id="x", max_in_flight=0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_reset_after_fork_leaves_the_parents_connection_alone(loop: Loopback) -> None:
    client = loop.client()
    connect(client)
    server = loop.servers[1]
    before = server.conns[0].bytes_in
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads elsewhere
        pid = os.fork()
    if pid == 0:  # the child: forget, then leave without any cleanup
        code = 1
        try:
            client.reset_after_fork()
            fresh = client.connection_states() == {1: "disconnected", 2: "disconnected"}
            code = 0 if fresh and client.in_flight() == 0 else 3
            client.wakeup()  # the new pair works
            client.poll(0.0)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's connection saw nothing from the child and still works.
    assert server.conns[0].bytes_in == before
    outcomes: list[ClientResponse[Any]] = []
    client.send(1, produce(), outcomes.append)
    drive(client, lambda: bool(outcomes))
    assert offset_of(outcomes[0]) == 0
    assert len(server.conns) == 1


def test_reset_after_fork_in_process_starts_afresh(loop: Loopback) -> None:
    client = loop.client()
    connect(client)
    loop.servers[1].fake.silent = True
    outcomes: list[ClientResponse[Any]] = []
    client.send(1, produce(), outcomes.append)
    client.reset_after_fork()
    assert client.connection_states() == {1: "disconnected", 2: "disconnected"}
    assert client.in_flight() == 0
    client.poll(0.0)
    assert outcomes == []  # the parent's requests are not the child's to complete
    loop.servers[1].fake.silent = False
    connect(client)
    client.send(1, produce(), outcomes.append)
    drive(client, lambda: bool(outcomes))
    assert outcomes[0].error is None
