"""Capture wire bytes written by librdkafka, for tests/unit/test_pinned_librdkafka.py.

Two independent implementations write the bytes:

- **librdkafka's producer** (confluent-kafka): it produces three records, in
  each codec, to a tiny broker here on loopback, which records the
  RecordBatch of each ProduceRequest it receives.
- **librdkafka's mock cluster** (:class:`kafka_sink.testing.MockCluster`):
  the same producer writes to it, then the responses of the mock broker to
  Fetch, Produce and Metadata requests are recorded as they arrive.

Run ``python -m tests.capture_librdkafka`` and paste its output into the test
module. Only this script needs the broker; the test runs from the pinned hex.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Any

from kafka_sink.config import BrokerAddress
from kafka_sink.net.broker import BrokerConnection
from kafka_sink.net.transport import Stream, TcpTransport
from kafka_sink.protocol import apis, schema
from kafka_sink.protocol.api_versions import ApiVersionRange, ApiVersionsResponse
from kafka_sink.protocol.fetch import FetchRequest
from kafka_sink.protocol.metadata import (
    BrokerMetadata,
    MetadataRequest,
    MetadataResponse,
    PartitionMetadata,
    TopicMetadata,
)
from kafka_sink.protocol.primitives import Reader, Writer
from kafka_sink.protocol.produce import (
    PartitionProduceData,
    PartitionProduceResponse,
    ProduceRequest,
    ProduceResponse,
    TopicProduceData,
    TopicProduceResponse,
)
from kafka_sink.protocol.records import encode_batch

TOPIC = "pinned"
TIMESTAMP = 1_700_000_000_000
RECORDS: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]] = [
    (b"k1", b"first value", [("source", b"librdkafka")]),
    # Long and repetitive enough that every codec makes it smaller: librdkafka
    # sends a batch uncompressed when compression would not shrink it.
    (None, b"second value " * 24, []),
    (b"k3", None, [("trace", None)]),
]
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


def produce_all(bootstrap: str, codec: str) -> None:
    # Imported here: the pinned test imports RECORDS from this module, and
    # needs neither librdkafka nor a broker.
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "compression.codec": codec,
            "linger.ms": 200,
            "acks": 1,
            "enable.idempotence": False,
            "message.timeout.ms": 10000,
        }
    )
    for key, value, headers in RECORDS:
        producer.produce(TOPIC, value, key, partition=0, timestamp=TIMESTAMP, headers=list(headers))
    assert producer.flush(15) == 0, f"librdkafka could not deliver the {codec} records"


# -- a broker just able to take librdkafka's produce requests -----------------------------


class CapturingBroker:
    """Answers ApiVersions, Metadata and Produce; keeps each Produce's record batches."""

    # Everything kafka_sink speaks: librdkafka derives its features from this
    # list (magic 2 batches need Fetch v4 too, zstd Fetch v10, and lz4 the
    # FindCoordinator API, 10, which is never called here).
    VERSIONS = {key: apis.supported_versions(key) for key in (0, 1, 2, 3, 18, 22)} | {10: (0, 0)}

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.batches: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(sock,), daemon=True).start()

    def _connection(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError), sock:
            buffer = b""
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
        request_cls = apis.request_class(api_key)
        if request_cls.is_flexible(version):
            reader.tagged_fields()
        request: Any = schema.decode(request_cls, reader, version, strict=False)
        response: Any
        if api_key == 18:
            ranges = [ApiVersionRange(k, low, high) for k, (low, high) in self.VERSIONS.items()]
            response = ApiVersionsResponse(0, ranges)
        elif api_key == 3:
            partition = PartitionMetadata(0, 0, 1, replica_nodes=[1], isr_nodes=[1])
            response = MetadataResponse(
                brokers=[BrokerMetadata(1, "127.0.0.1", self.port)],
                cluster_id="capture",
                controller_id=1,
                topics=[TopicMetadata(0, TOPIC, partitions=[partition])],
            )
        elif api_key == 0:
            parts = []
            for topic in request.topic_data:
                for data in topic.partition_data:
                    self.batches.append(bytes(data.records))
                    parts.append(PartitionProduceResponse(data.index, 0, len(self.batches)))
            response = ProduceResponse([TopicProduceResponse(TOPIC, parts)])
        else:
            return None
        writer = Writer()
        writer.int32(correlation_id)
        if response.is_flexible(version) and api_key != 18:
            writer.tagged_fields()
        schema.encode_into(response, version, writer)
        return struct.pack(">i", len(writer.buffer)) + bytes(writer.buffer)

    def close(self) -> None:
        self.listener.close()


# -- recording what the mock cluster answers ------------------------------------------------


class RecordingStream:
    def __init__(self, inner: Stream, sink: bytearray) -> None:
        self._inner = inner
        self._sink = sink

    def sendall(self, data: bytes | bytearray | memoryview, timeout: float) -> None:
        self._inner.sendall(data, timeout)

    def recv(self, max_bytes: int, timeout: float) -> bytes:
        data = self._inner.recv(max_bytes, timeout)
        self._sink += data
        return data

    def close(self) -> None:
        self._inner.close()


class RecordingTransport:
    def __init__(self) -> None:
        self.received = bytearray()

    def connect(self, host: str, port: int, timeout: float) -> Stream:
        return RecordingStream(TcpTransport().connect(host, port, timeout), self.received)


def last_body(received: bytearray, flexible: bool) -> bytes:
    """The body of the last response frame received (header removed)."""
    pos, last = 0, b""
    while pos < len(received):
        (size,) = struct.unpack_from(">i", received, pos)
        last = bytes(received[pos + 4 : pos + 4 + size])
        pos += 4 + size
    reader = Reader(last)
    reader.int32()
    if flexible:
        reader.tagged_fields()
    return bytes(last[reader.pos :])


def capture_mock() -> dict[str, str]:
    from kafka_sink.testing import MockCluster

    out: dict[str, str] = {}
    with MockCluster(1, topics={TOPIC: 1}) as cluster:
        for codec in CODECS:
            produce_all(cluster.bootstrap_servers, codec)
        host, _, port = cluster.bootstrap_servers.split(",")[0].rpartition(":")
        transport = RecordingTransport()
        conn = BrokerConnection(BrokerAddress(host, int(port)), transport, client_id="capture")
        conn.connect(10)
        # The mock answers a Fetch with one batch: one fetch per codec's batch,
        # the oldest and the newest version both sides speak.
        low, high = conn.api_versions[1]
        versions = [max(low, 4), *[min(high, 12)] * (len(CODECS) - 1)]
        for index, (codec, version) in enumerate(zip(CODECS, versions, strict=True)):
            offset = index * len(RECORDS)
            request = FetchRequest.for_partitions(TOPIC, {0: offset}, max_wait_ms=100)
            conn.request(request, 10, version=version)
            flexible = FetchRequest.is_flexible(version)
            body = last_body(transport.received, flexible).hex()
            out[f"FetchResponse v{version} {codec}"] = body
        batch = encode_batch([(TIMESTAMP, b"k", b"from kafka_sink", ())])
        produce = ProduceRequest(
            None, 1, 5000, [TopicProduceData(TOPIC, [PartitionProduceData(0, batch)])]
        )
        for version in (3, 8, 9):
            conn.request(produce, 10, version=version)
            flexible = ProduceRequest.is_flexible(version)
            out[f"ProduceResponse v{version}"] = last_body(transport.received, flexible).hex()
        for version in (1, 12):
            conn.request(MetadataRequest.for_topics([TOPIC]), 10, version=version)
            flexible = MetadataRequest.is_flexible(version)
            out[f"MetadataResponse v{version}"] = last_body(transport.received, flexible).hex()
        conn.close()
        out["librdkafka"] = cluster.librdkafka_version
    return out


def capture_producer() -> dict[str, str]:
    broker = CapturingBroker()
    out: dict[str, str] = {}
    try:
        for codec in CODECS:
            before = len(broker.batches)
            produce_all(f"127.0.0.1:{broker.port}", codec)
            assert len(broker.batches) == before + 1, "expected one batch per codec"
            out[f"RecordBatch {codec}"] = broker.batches[-1].hex()
    finally:
        broker.close()
    return out


def main() -> None:
    captured = {**capture_producer(), **capture_mock()}
    print("{")
    for name, value in captured.items():
        print(f"    {name!r}: (")
        for start in range(0, len(value), 88):
            print(f'        "{value[start : start + 88]}"')
        print("    ),")
    print("}")


if __name__ == "__main__":
    main()
