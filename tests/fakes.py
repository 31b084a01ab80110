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
                    log = self.logs.setdefault((topic.name, part.index), [])
                    offset = len(log)
                    log.append(bytes(part.records or b""))
                parts.append(PartitionProduceResponse(part.index, error, offset))
            results.append(TopicProduceResponse(topic.name, parts))
        return ProduceResponse(results)


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
