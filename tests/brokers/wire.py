"""Three raw Kafka requests for probing test brokers: ApiVersions v0, Metadata v4, Produce v3.

Written against the Kafka protocol guide (kafka.apache.org/protocol), on purpose
independent of kafka_sink's own protocol layer: the test infrastructure must not
share the bugs of the code it checks. All three versions are old, non-flexible
ones that every broker used here answers (Kafka 2.3, librdkafka's mock, Tansu).
Produce carries one uncompressed v2 record batch, whose CRC can be spoiled on
purpose to see whether a broker checks it.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

import crc32c

__all__ = [
    "BrokerInfo",
    "ClusterMetadata",
    "PartitionMetadata",
    "ProduceAnswer",
    "TopicMetadata",
    "api_versions",
    "metadata",
    "produce",
    "record_batch",
    "split_address",
]

_PRODUCE = 0
_API_VERSIONS = 18
_METADATA = 3
_CLIENT_ID = b"kafka-sink-tests"


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    node_id: int
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class PartitionMetadata:
    partition: int
    error_code: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TopicMetadata:
    name: str
    error_code: int
    partitions: tuple[PartitionMetadata, ...]


@dataclass(frozen=True, slots=True)
class ClusterMetadata:
    brokers: tuple[BrokerInfo, ...]
    controller_id: int
    topics: tuple[TopicMetadata, ...]

    def topic(self, name: str) -> TopicMetadata | None:
        return next((t for t in self.topics if t.name == name), None)


@dataclass(frozen=True, slots=True)
class ProduceAnswer:
    error_code: int
    base_offset: int
    log_append_time_ms: int


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def _take(self, fmt: str) -> tuple[int, ...]:
        size = struct.calcsize(fmt)
        if self._pos + size > len(self._data):
            raise ValueError("truncated response")
        values = struct.unpack_from(fmt, self._data, self._pos)
        self._pos += size
        return values

    def int8(self) -> int:
        return self._take(">b")[0]

    def int16(self) -> int:
        return self._take(">h")[0]

    def int32(self) -> int:
        return self._take(">i")[0]

    def int64(self) -> int:
        return self._take(">q")[0]

    def string(self) -> str | None:
        length = self.int16()
        if length < 0:
            return None
        text = self._data[self._pos : self._pos + length].decode()
        self._pos += length
        return text

    def int32_array(self) -> tuple[int, ...]:
        return tuple(self.int32() for _ in range(max(self.int32(), 0)))


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def _roundtrip(address: str, api_key: int, version: int, body: bytes, timeout: float) -> _Reader:
    reader = _send(address, api_key, version, body, timeout, expect_answer=True)
    assert reader is not None
    return reader


def _send(
    address: str, api_key: int, version: int, body: bytes, timeout: float, *, expect_answer: bool
) -> _Reader | None:
    """Send one request; return its answer, or None if ``expect_answer`` is false
    and none came within ``timeout``."""
    correlation_id = 0x5EED
    header = struct.pack(">hhih", api_key, version, correlation_id, len(_CLIENT_ID)) + _CLIENT_ID
    request = header + body
    with socket.create_connection(split_address(address), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        try:
            size = struct.unpack(">i", _receive(sock, 4))[0]
        except (TimeoutError, ConnectionError):
            if expect_answer:
                raise
            return None
        reader = _Reader(_receive(sock, size))
    if reader.int32() != correlation_id:
        raise ValueError("correlation id mismatch")
    return reader


def _receive(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def api_versions(address: str, *, timeout: float = 5.0) -> dict[int, tuple[int, int]]:
    """The broker's ``{api_key: (min_version, max_version)}`` from ApiVersions v0."""
    reader = _roundtrip(address, _API_VERSIONS, 0, b"", timeout)
    error = reader.int16()
    if error:
        raise ValueError(f"ApiVersions answered error {error}")
    table: dict[int, tuple[int, int]] = {}
    for _ in range(reader.int32()):
        key, low, high = reader.int16(), reader.int16(), reader.int16()
        table[key] = (low, high)
    return table


def metadata(
    address: str,
    topics: Sequence[str] | None = (),
    *,
    allow_auto_create: bool = False,
    timeout: float = 5.0,
) -> ClusterMetadata:
    """Metadata v4 from one broker: ``topics=None`` asks for all topics, ``()`` for none."""
    if topics is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(topics)) + b"".join(_string(t) for t in topics)
    body += struct.pack(">?", allow_auto_create)
    reader = _roundtrip(address, _METADATA, 4, body, timeout)
    reader.int32()  # throttle_time_ms
    brokers = []
    for _ in range(reader.int32()):
        node_id, host, port = reader.int32(), reader.string() or "", reader.int32()
        reader.string()  # rack
        brokers.append(BrokerInfo(node_id, host, port))
    reader.string()  # cluster_id
    controller_id = reader.int32()
    parsed_topics = []
    for _ in range(reader.int32()):
        error_code, name = reader.int16(), reader.string() or ""
        reader.int8()  # is_internal
        partitions = []
        for _ in range(reader.int32()):
            p_error, index, leader = reader.int16(), reader.int32(), reader.int32()
            replicas, isr = reader.int32_array(), reader.int32_array()
            partitions.append(PartitionMetadata(index, p_error, leader, replicas, isr))
        parsed_topics.append(
            TopicMetadata(name, error_code, tuple(sorted(partitions, key=lambda p: p.partition)))
        )
    return ClusterMetadata(tuple(brokers), controller_id, tuple(parsed_topics))


def _varint(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = zigzag & 0x7F
        zigzag >>= 7
        if zigzag:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _varbytes(data: bytes | None) -> bytes:
    return _varint(-1) if data is None else _varint(len(data)) + data


def record_batch(
    records: Sequence[tuple[bytes | None, bytes | None]],
    *,
    timestamp_ms: int | None = None,
    spoil_crc: bool = False,
) -> bytes:
    """An uncompressed v2 record batch of (key, value) records, without headers."""
    base_timestamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    encoded = b""
    for delta, (key, value) in enumerate(records):
        body = b"\x00" + _varint(0) + _varint(delta) + _varbytes(key) + _varbytes(value)
        body += _varint(0)  # no headers
        encoded += _varint(len(body)) + body
    after_crc = struct.pack(
        ">hiqqqhii",
        0,  # attributes: no compression, CreateTime
        len(records) - 1,  # last offset delta
        base_timestamp,
        base_timestamp,  # max timestamp
        -1,  # producer id
        -1,  # producer epoch
        -1,  # base sequence
        len(records),
    )
    after_crc += encoded
    crc = crc32c.crc32c(after_crc) ^ (1 if spoil_crc else 0)
    after_length = struct.pack(">ibI", -1, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


def produce(
    address: str,
    topic: str,
    partition: int,
    batch: bytes,
    *,
    acks: int,
    timeout: float = 5.0,
) -> ProduceAnswer | None:
    """Produce v3 of one batch to one partition; None when no answer comes (acks=0)."""
    body = struct.pack(">hhi", -1, acks, int(timeout * 1000))  # no transactional id
    body += struct.pack(">i", 1) + _string(topic)
    body += struct.pack(">iii", 1, partition, len(batch)) + batch
    reader = _send(address, _PRODUCE, 3, body, timeout, expect_answer=acks != 0)
    if reader is None:
        return None
    for _ in range(reader.int32()):
        reader.string()
        for _ in range(reader.int32()):
            reader.int32()  # partition
            return ProduceAnswer(reader.int16(), reader.int64(), reader.int64())
    raise ValueError("a Produce answer without partitions")
