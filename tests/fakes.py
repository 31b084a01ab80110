"""An in-memory Kafka cluster behind an injectable transport, for deterministic unit tests.

Requests are decoded with the library's own schemas and answered by
Python handlers, so tests can script leader moves, errors and silence
without sockets, threads or sleeps.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka_sink.protocol import apis, schema
from kafka_sink.protocol.api_versions import ApiVersionRange, ApiVersionsResponse
from kafka_sink.protocol.init_producer_id import InitProducerIdResponse
from kafka_sink.protocol.metadata import (
    BrokerMetadata,
    MetadataResponse,
    PartitionMetadata,
    TopicMetadata,
)
from kafka_sink.protocol.primitives import Reader, Writer
from kafka_sink.protocol.produce import (
    PartitionProduceResponse,
    ProduceRequest,
    ProduceResponse,
    TopicProduceResponse,
)
from kafka_sink.protocol.sasl import SaslAuthenticateResponse, SaslHandshakeResponse

Handler = Callable[["FakeBroker", Any, int], Any]


class FakeClock:
    """A clock that only moves when told to (or when something sleeps on it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Received:
    api_key: int
    version: int
    correlation_id: int
    client_id: str | None
    request: Any


@dataclass
class FakeBroker:
    node_id: int
    host: str
    port: int
    cluster: FakeCluster
    up: bool = True
    silent: bool = False  # accepts requests but never answers
    received: list[Received] = field(default_factory=list)
    max_versions: dict[int, int] = field(default_factory=dict)


class FakeCluster:
    """Brokers, topics (partition -> leader) and scripted produce errors."""

    def __init__(self, brokers: int = 3, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.brokers = {n: FakeBroker(n, "fake", 9000 + n, self) for n in range(1, brokers + 1)}
        self.topics: dict[str, dict[int, int]] = {}
        self.produce_errors: list[int] = []  # popped one per produce request
        self.logs: dict[tuple[str, int], list[bytes]] = {}
        self.auto_create = False
        self.next_producer_id = 1000
        # (producer id, topic, partition) -> next expected sequence, as a broker keeps it
        self.sequences: dict[tuple[int, str, int], int] = {}
        # SASL PLAIN: the users and passwords the brokers accept, and how many
        # SaslAuthenticate requests they refused.
        self.sasl_users: dict[str, str] = {}
        self.sasl_refusals = 0
        # OAUTHBEARER: the tokens the brokers accept; the session lifetime they
        # announce in SaslAuthenticate v1+ (KIP-368, 0: none); every auth_bytes.
        self.oauth_tokens: set[str] = set()
        self.sasl_session_ms = 0
        self.sasl_tokens: list[bytes] = []

    def add_topic(self, name: str, partitions: int, leader: int = 1) -> None:
        self.topics[name] = dict.fromkeys(range(partitions), leader)

    def transport(self) -> FakeTransport:
        return FakeTransport(self)

    # -- request handling ---------------------------------------------------------

    def handle(self, broker: FakeBroker, api_key: int, version: int, request: Any) -> Any:
        if api_key == 18:
            ranges = []
            for key in sorted(apis._PAIRS):
                low, high = apis.supported_versions(key)
                ranges.append(ApiVersionRange(key, low, broker.max_versions.get(key, high)))
            return ApiVersionsResponse(0, ranges)
        if api_key == 3:
            return self._metadata(request)
        if api_key == 0:
            return self._produce(broker, request)
        if api_key == 22:
            self.next_producer_id += 1
            return InitProducerIdResponse(0, 0, self.next_producer_id, 0)
        if api_key == 17:
            mechanisms = ["PLAIN", "OAUTHBEARER"] if self.oauth_tokens else ["PLAIN"]
            return SaslHandshakeResponse(0 if request.mechanism in mechanisms else 33, mechanisms)
        if api_key == 36:
            token = bytes(request.auth_bytes)
            self.sasl_tokens.append(token)
            if token.startswith(b"n,,\x01auth=Bearer "):
                value = token[len(b"n,,\x01auth=Bearer ") :].split(b"\x01", 1)[0].decode()
                if value in self.oauth_tokens:
                    return SaslAuthenticateResponse(0, None, b"", self.sasl_session_ms)
                return SaslAuthenticateResponse(0, None, b'{"status":"invalid_token"}', 0)
            if token == b"\x01":  # RFC 7628: the client acknowledges the error
                self.sasl_refusals += 1
                return SaslAuthenticateResponse(58, '{"status":"invalid_token"}', b"", 0)
            _, user, password = token.split(b"\0", 2)
            if self.sasl_users.get(user.decode()) == password.decode():
                return SaslAuthenticateResponse(0, None, b"", self.sasl_session_ms)
            self.sasl_refusals += 1
            return SaslAuthenticateResponse(
                58, "Authentication failed: Invalid username or password", b"", 0
            )
        raise AssertionError(f"unexpected api {api_key}")

    def _metadata(self, request: Any) -> MetadataResponse:
        names = list(self.topics) if request.topics is None else [t.name for t in request.topics]
        topics = []
        for name in names:
            if name not in self.topics and self.auto_create and request.allow_auto_topic_creation:
                self.add_topic(name, 1)
                topics.append(TopicMetadata(5, name))  # LEADER_NOT_AVAILABLE while creating
                continue
            if name not in self.topics:
                topics.append(TopicMetadata(3, name))
                continue
            parts = [
                PartitionMetadata(0, p, leader, replica_nodes=[leader], isr_nodes=[leader])
                for p, leader in sorted(self.topics[name].items())
            ]
            topics.append(TopicMetadata(0, name, partitions=parts))
        return MetadataResponse(
            brokers=[BrokerMetadata(b.node_id, b.host, b.port) for b in self.brokers.values()],
            cluster_id="fake",
            controller_id=1,
            topics=topics,
        )

    def _produce(self, broker: FakeBroker, request: ProduceRequest) -> ProduceResponse:
        results = []
        for topic in request.topic_data:
            parts = []
            for part in topic.partition_data:
                leader = self.topics.get(topic.name, {}).get(part.index)
                error = 0
                if self.produce_errors:
                    error = self.produce_errors.pop(0)
                elif leader != broker.node_id:
                    error = 6  # NOT_LEADER_OR_FOLLOWER
                offset = -1
                if not error:
                    error = self._check_sequence(topic.name, part.index, bytes(part.records or b""))
                if not error:
                    log = self.logs.setdefault((topic.name, part.index), [])
                    offset = sum(self._count(b) for b in log)
                    log.append(bytes(part.records or b""))
                parts.append(PartitionProduceResponse(part.index, error, offset))
            results.append(TopicProduceResponse(topic.name, parts))
        return ProduceResponse(results)

    @staticmethod
    def _count(batch: bytes) -> int:
        return struct.unpack_from(">i", batch, 57)[0] if len(batch) >= 61 else 0

    def _check_sequence(self, topic: str, partition: int, batch: bytes) -> int:
        if len(batch) < 61:
            return 0
        producer_id, _epoch, sequence, count = struct.unpack_from(">qhii", batch, 43)
        if producer_id < 0:
            return 0
        key = (producer_id, topic, partition)
        expected = self.sequences.get(key, 0)
        if sequence < expected:
            return 46  # DUPLICATE_SEQUENCE_NUMBER
        if sequence > expected:
            return 45  # OUT_OF_ORDER_SEQUENCE_NUMBER
        self.sequences[key] = expected + count
        return 0


class FakeTransport:
    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster
        self.connects: list[tuple[str, int]] = []

    def connect(self, host: str, port: int, timeout: float) -> FakeStream:
        self.connects.append((host, port))
        for broker in self.cluster.brokers.values():
            if (broker.host, broker.port) == (host, port):
                if not broker.up:
                    raise ConnectionRefusedError(111, "Connection refused")
                return FakeStream(broker)
        raise ConnectionRefusedError(111, "Connection refused")


class FakeStream:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.closed = False

    def sendall(self, data: bytes | bytearray | memoryview, timeout: float) -> None:
        if not self.broker.up:
            raise BrokenPipeError(32, "Broken pipe")
        self.inbox += data
        while len(self.inbox) >= 4:
            size = struct.unpack_from(">i", self.inbox)[0]
            if len(self.inbox) < 4 + size:
                break
            frame = bytes(self.inbox[4 : 4 + size])
            del self.inbox[: 4 + size]
            self._answer(frame)

    def _answer(self, frame: bytes) -> None:
        r = Reader(frame)
        api_key, version, correlation_id = r.int16(), r.int16(), r.int32()
        client_id = r.nullable_string()
        cls = apis.request_class(api_key)
        flexible = cls.is_flexible(version)
        if flexible:
            r.tagged_fields()
        limit = self.broker.max_versions.get(api_key)
        if api_key == 18 and limit is not None and version > limit:
            # KIP-511: answer an unknown ApiVersions version at v0 with error 35.
            self.broker.received.append(Received(api_key, version, correlation_id, client_id, None))
            self._reply(correlation_id, ApiVersionsResponse(35, [ApiVersionRange(18, 0, limit)]), 0)
            return
        request = schema.decode(cls, r, version)
        self.broker.received.append(Received(api_key, version, correlation_id, client_id, request))
        if self.broker.silent:
            return
        response = self.broker.cluster.handle(self.broker, api_key, version, request)
        if not request.expects_response():
            return
        self._reply(correlation_id, response, version)

    def _reply(self, correlation_id: int, response: Any, version: int) -> None:
        api_key = response.API_KEY
        flexible = response.is_flexible(version)
        w = Writer()
        w.int32(correlation_id)
        if flexible and api_key != 18:
            w.tagged_fields()
        schema.encode_into(response, version, w)
        self.outbox += struct.pack(">i", len(w.buffer)) + w.buffer

    def recv(self, max_bytes: int, timeout: float) -> bytes:
        if not self.broker.up:
            return b""
        if not self.outbox:
            # Nothing will ever arrive: behave like a socket timing out.
            self.broker.cluster.clock.now += timeout
            raise TimeoutError
        data = bytes(self.outbox[:max_bytes])
        del self.outbox[:max_bytes]
        return data

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeResponse:
    node_id: int
    request: Any
    version: int
    body: Any
    error: Any
    latency: float


class FakeNetwork:
    """The sender's network interface over a FakeCluster, driven synchronously.

    ``poll`` answers every request sent since the last poll (except those to
    silent brokers, which time out after ``request_timeout``), then advances
    the fake clock by the poll's timeout when there was nothing to do.
    """

    def __init__(self, cluster: FakeCluster, request_timeout: float = 30.0) -> None:
        self.cluster = cluster
        self.clock = cluster.clock
        self.request_timeout = request_timeout
        self.nodes: dict[int, tuple[str, int]] = {}
        self.queue: list[tuple[int, Any, Any, int, float]] = []
        self.sent: list[tuple[int, Any, int]] = []
        self.polls: list[float] = []
        self.wakeups = 0
        self.closed = False
        self.lost: dict[int, Any] = {}

    def _broker(self, node_id: int) -> FakeBroker | None:
        address = self.nodes.get(node_id)
        for broker in self.cluster.brokers.values():
            if (broker.host, broker.port) == address:
                return broker
        return None

    def set_nodes(self, nodes: Any) -> None:
        self.nodes = {n: (a.host, a.port) for n, a in nodes.items()}

    def ready(self, node_id: int) -> bool:
        broker = self._broker(node_id)
        pending = sum(1 for q in self.queue if q[0] == node_id)
        return broker is not None and broker.up and pending < 5

    def version_for(self, node_id: int, api_key: int) -> int:
        broker = self._broker(node_id)
        assert broker is not None
        ranges = {}
        for key in apis._PAIRS:
            low, high = apis.supported_versions(key)
            top = broker.max_versions.get(key, high)
            if top >= 0:
                ranges[key] = (low, top)
        return apis.choose_version(api_key, ranges)

    def send(
        self, node_id: int, request: Any, callback: Any, *, version: int | None = None
    ) -> None:
        version = self.version_for(node_id, request.API_KEY) if version is None else version
        self.sent.append((node_id, request, version))
        self.queue.append((node_id, request, callback, version, self.clock()))

    def poll(self, timeout: float) -> None:
        from kafka_sink.errors import ReceiveError, RequestTimeoutError

        self.polls.append(timeout)
        queue, self.queue = self.queue, []
        answered = False
        for item in queue:
            node_id, request, callback, version, started = item
            if callback is None:  # handled by a silent broker: its answer is lost
                if self.clock() - started >= self.request_timeout:
                    original = self.lost.pop(id(item))
                    original(
                        FakeResponse(
                            node_id, request, version, None, RequestTimeoutError("lost"), 0
                        )
                    )
                    answered = True
                else:
                    self.queue.append(item)
                continue
            broker = self._broker(node_id)
            if broker is None or not broker.up:
                callback(FakeResponse(node_id, request, version, None, ReceiveError("down"), 0.0))
                answered = True
                continue
            wire = schema.encode(request, version)  # through the wire format, both ways
            decoded = schema.decode(type(request), wire, version)
            broker.received.append(Received(request.API_KEY, version, 0, None, decoded))
            response = self.cluster.handle(broker, request.API_KEY, version, decoded)
            if broker.silent:
                lost_item = (node_id, request, None, version, started)
                self.lost[id(lost_item)] = callback
                self.queue.append(lost_item)
                continue
            body = None if not decoded.expects_response() else response
            callback(FakeResponse(node_id, request, version, body, None, 0.001))
            answered = True
        if not answered:
            # Like a real poll: wake at the first request deadline if it comes sooner.
            deadlines = [started + self.request_timeout for *_, started in self.queue]
            wake = min([self.clock() + max(timeout, 0.0), *deadlines])
            self.clock.now = max(self.clock.now, wake)

    def wakeup(self) -> None:
        self.wakeups += 1

    def least_loaded_node(self) -> int | None:
        for node_id in sorted(self.nodes, key=lambda n: (n < 0, n)):
            broker = self._broker(node_id)
            if broker is not None and broker.up:
                return node_id
        return None

    def in_flight(self, node_id: int | None = None) -> int:
        return sum(1 for q in self.queue if node_id is None or q[0] == node_id)

    def authentication_error(self) -> Any:
        return None

    def connection_states(self) -> dict[int, str]:
        return dict.fromkeys(self.nodes, "ready")

    def silence(self) -> None:
        pass  # it logs nothing to silence

    def close(self) -> None:
        self.closed = True
