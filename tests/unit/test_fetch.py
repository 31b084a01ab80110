"""Fetch and ListOffsets: pinned wire bytes, record batches in responses, the Fetcher.

The Fetcher runs against the in-memory cluster of ``tests.fakes``, extended
here with a log per partition that answers Fetch and ListOffsets the way a
broker does (whole batches up to the byte limit, a cut batch at the end,
OFFSET_OUT_OF_RANGE, NOT_LEADER_OR_FOLLOWER), at every version both sides
speak. No sockets, no sleeps: back-offs go to the fake clock.
"""

from __future__ import annotations

import contextlib
import itertools
import struct
from collections.abc import Generator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_sink.errors import BrokerResponseError, InvalidArgumentError, ProtocolError
from kafka_sink.net.cluster import Connection
from kafka_sink.net.fetcher import FetchedRecord, Fetcher, OffsetRange
from kafka_sink.protocol import schema
from kafka_sink.protocol.codecs import Compression
from kafka_sink.protocol.fetch import (
    FetchPartitionResponse,
    FetchRequest,
    FetchResponse,
    FetchTopicResponse,
)
from kafka_sink.protocol.list_offsets import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    ListOffsetsPartitionResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsetsTopicResponse,
)
from kafka_sink.protocol.records import TimestampType, encode_batch
from tests.fakes import FakeBroker, FakeCluster

NOW = 1_700_000_000_000
CODECS = list(Compression)
FETCH_VERSIONS = list(range(FetchRequest.VERSIONS[0], FetchRequest.VERSIONS[1] + 1))
LIST_OFFSETS_VERSIONS = list(
    range(ListOffsetsRequest.VERSIONS[0], ListOffsetsRequest.VERSIONS[1] + 1)
)


def batch(
    base_offset: int,
    values: list[bytes],
    codec: Compression = Compression.NONE,
    key: bytes | None = None,
    headers: tuple[tuple[str, bytes | None], ...] = (),
) -> bytes:
    """A record batch whose records start at ``base_offset``."""
    wire = encode_batch([(NOW + i, key, v, headers) for i, v in enumerate(values)], codec)
    # The base offset is outside the CRC: a broker rewrites it the same way.
    return struct.pack(">q", base_offset) + wire[8:]


def control_batch(base_offset: int) -> bytes:
    """A transaction marker (attributes bit 5) with one record, CRC recomputed."""
    from crc32c import crc32c

    wire = bytearray(batch(base_offset, [b"\x00\x00\x00\x00"], key=b"\x00\x00\x00\x00"))
    attributes = struct.unpack_from(">h", wire, 21)[0] | 0x30  # control + transactional
    struct.pack_into(">h", wire, 21, attributes)
    struct.pack_into(">I", wire, 17, crc32c(bytes(wire[21:])))
    return bytes(wire)


# -- pinned encodings -------------------------------------------------------------------

# Written field by field from Kafka's ListOffsets and Fetch schemas: they catch a
# field declared out of wire order, which a round-trip cannot.
PINNED = [
    (
        "ListOffsetsRequest v1",
        ListOffsetsRequest.for_partitions("t", [3], LATEST_TIMESTAMP),
        1,
        # replica -1, topics[1]: "t", partitions[1]: 3, timestamp -1
        "ffffffff" + "00000001" + "000174" + "00000001" + "00000003" + "ff" * 8,
    ),
    (
        "ListOffsetsRequest v5",
        ListOffsetsRequest.for_partitions("t", [3], EARLIEST_TIMESTAMP),
        5,
        # replica -1, isolation 0, topics[1]: "t", partitions[1]: 3, leader epoch -1, ts -2
        "ffffffff00" + "00000001" + "000174" + "00000001" + "00000003" + "fffffffffffffffffffffffe",
    ),
    (
        "ListOffsetsRequest v7",
        ListOffsetsRequest.for_partitions("t", [3], LATEST_TIMESTAMP),
        7,
        # compact arrays and strings, a tagged-field section closing each struct
        "ffffffff00" + "02" + "0274" + "02" + "00000003" + "ffffffff" + "ff" * 8 + "00" + "0000",
    ),
    (
        "FetchRequest v4",
        FetchRequest.for_partitions(
            "t", {3: 42}, max_wait_ms=500, max_bytes=1024, partition_max_bytes=256
        ),
        4,
        # replica -1, max wait 500, min bytes 1, max bytes 1024, isolation 0,
        # topics[1]: "t", partitions[1]: 3, offset 42, partition max 256
        "ffffffff" + "000001f4" + "00000001" + "00000400" + "00" + "00000001" + "000174"
        "00000001" + "00000003" + "000000000000002a" + "00000100",
    ),
    (
        "FetchRequest v11",
        FetchRequest.for_partitions(
            "t", {3: 42}, max_wait_ms=500, max_bytes=1024, partition_max_bytes=256
        ),
        11,
        # ... session id 0, epoch -1, topics: partition 3, leader epoch -1, offset 42,
        # log start -1, partition max 256; forgotten topics [], rack id ""
        "ffffffff" + "000001f4" + "00000001" + "00000400" + "00" + "00000000" + "ffffffff"
        "00000001" + "000174" + "00000001" + "00000003" + "ffffffff" + "000000000000002a"
        "ffffffffffffffff" + "00000100" + "00000000" + "0000",
    ),
    (
        "FetchRequest v12",
        FetchRequest.for_partitions(
            "t", {3: 42}, max_wait_ms=500, max_bytes=1024, partition_max_bytes=256
        ),
        12,
        # ... compact forms; last fetched epoch -1 after the offset; empty tag sections
        "ffffffff" + "000001f4" + "00000001" + "00000400" + "00" + "00000000" + "ffffffff"
        "02" + "0274" + "02" + "00000003" + "ffffffff" + "000000000000002a" + "ffffffff"
        "ffffffffffffffff" + "00000100" + "00" + "00" + "01" + "01" + "00",
    ),
]


@pytest.mark.parametrize(
    ("name", "message", "version", "hexdump"), PINNED, ids=[p[0] for p in PINNED]
)
def test_pinned_request_encodings(name: str, message: Any, version: int, hexdump: str) -> None:
    assert schema.encode(message, version).hex() == hexdump


def test_fetch_request_v12_carries_the_cluster_id_as_tag_0() -> None:
    request = FetchRequest(cluster_id="c", topics=[])
    body = schema.encode(request, 12)
    # empty topics, empty forgotten topics, rack "", then one tagged field:
    # tag 0, 2 bytes, compact string "c"
    assert body.hex().endswith("01" + "01" + "01" + "01" + "00" + "02" + "0263")
    assert schema.decode(FetchRequest, body, 12) == request


def test_fetch_response_v4_decodes_its_records() -> None:
    records = batch(7, [b"a", b"b"], Compression.GZIP)
    body = (
        "00000000"
        + "00000001"
        + "000174"
        + "00000001"
        + "00000003"
        + "0000"
        + "0000000000000009"
        + "0000000000000009"
        + "ffffffff"
        + f"{len(records):08x}"
    )
    response = schema.decode(FetchResponse, bytes.fromhex(body) + records, 4)
    [part] = response.responses[0].partitions
    assert (part.partition_index, part.high_watermark, part.aborted_transactions) == (3, 9, None)
    [decoded] = part.batches()
    assert [(r.offset, r.value) for r in decoded.records] == [(7, b"a"), (8, b"b")]


def test_fetch_response_v12_skips_unknown_tags_and_reads_known_ones() -> None:
    records = batch(0, [b"x"])
    body = (
        "00000000"
        + "0000"
        + "00000000"
        + "02"
        + "0274"
        + "02"
        + "00000000"
        + "0006"
        + "0000000000000001"
        + "0000000000000001"
        + "0000000000000000"
        + "01"
        + "ffffffff"
        + f"{len(records) + 1:02x}"
    )
    # Partition tags: tag 1 (current leader 2, epoch 5), tag 9 (unknown, 1 byte).
    tags = "02" + "01" + "09" + "00000002" + "00000005" + "00" + "09" + "01" + "ff"
    wire = bytes.fromhex(body) + records + bytes.fromhex(tags + "00" + "00")
    response = schema.decode(FetchResponse, wire, 12)
    [part] = response.responses[0].partitions
    assert part.error_code == 6
    assert part.current_leader is not None
    assert (part.current_leader.leader_id, part.current_leader.leader_epoch) == (2, 5)
    assert part.aborted_transactions == []
    assert part.batches()[0].records[0].value == b"x"


# -- record batches in a response ---------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS, ids=[c.name.lower() for c in CODECS])
def test_a_cut_last_batch_is_left_out_at_every_cut(codec: Compression) -> None:
    first = batch(0, [b"one", b"two"], codec)
    second = batch(2, [b"three " * 20, b"four"], codec)
    for cut in range(len(second)):
        part = FetchPartitionResponse(0, 0, 4, records=first + second[:cut])
        assert [[r.value for r in b.records] for b in part.batches()] == [[b"one", b"two"]]
    whole = FetchPartitionResponse(0, 0, 4, records=first + second)
    assert [len(b.records) for b in whole.batches()] == [2, 2]


def test_only_a_partial_batch_gives_no_batches() -> None:
    wire = batch(0, [b"v" * 100])
    assert FetchPartitionResponse(0, 0, 1, records=wire[:80]).batches() == []
    assert FetchPartitionResponse(0, 0, 1, records=None).batches() == []


@settings(max_examples=200, deadline=None)
@given(blob=st.binary(max_size=300))
def test_arbitrary_records_decode_or_raise_protocol_error(blob: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        FetchPartitionResponse(0, 0, 0, records=blob).batches()


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.binary(max_size=30), min_size=1, max_size=5),
    codec=st.sampled_from(CODECS),
    version=st.sampled_from(FETCH_VERSIONS),
    data=st.data(),
)
def test_batches_survive_a_response_round_trip_and_any_flip_is_caught(
    values: list[bytes], codec: Compression, version: int, data: st.DataObject
) -> None:
    records = batch(5, values, codec) + batch(5 + len(values), values, codec)
    response = FetchResponse(
        responses=[FetchTopicResponse("t", [FetchPartitionResponse(0, 0, 99, records=records)])]
    )
    decoded = schema.decode(FetchResponse, schema.encode(response, version), version)
    [part] = decoded.responses[0].partitions
    assert [r.value for b in part.batches() for r in b.records] == values + values
    # Flip a byte of the records: the CRC (or the framing) must notice.
    flipped = bytearray(records)
    where = data.draw(st.integers(8, len(flipped) - 1))  # the base offset is outside the CRC
    flipped[where] ^= data.draw(st.integers(1, 255))
    changed = FetchPartitionResponse(0, 0, 99, records=bytes(flipped))
    with contextlib.suppress(ProtocolError):
        batches = changed.batches()
        # A change the decoder accepts can only be a cut tail or a length/record
        # count change that still decodes to the same CRC-checked bytes.
        assert [r.value for b in batches for r in b.records] in (values + values, values, [])


# -- the fetcher against an in-memory cluster ----------------------------------------------


class LogCluster(FakeCluster):
    """A fake cluster whose partitions hold record batches and answer Fetch/ListOffsets."""

    def __init__(self, brokers: int = 3) -> None:
        super().__init__(brokers)
        self.batches: dict[tuple[str, int], list[tuple[int, int, bytes]]] = {}
        self.log_start: dict[tuple[str, int], int] = {}
        self.fetch_errors: list[tuple[int, int]] = []  # (partition, code), popped in order
        self.fetches: list[tuple[int, dict[int, int]]] = []  # (node id, {partition: offset})

    def append(self, topic: str, partition: int, values: list[bytes], **options: Any) -> int:
        log = self.batches.setdefault((topic, partition), [])
        base = self.end(topic, partition)
        wire = batch(base, values, **options)
        log.append((base, base + len(values), wire))
        return base

    def append_raw(self, topic: str, partition: int, wire: bytes, count: int) -> None:
        base = self.end(topic, partition)
        self.batches.setdefault((topic, partition), []).append((base, base + count, wire))

    def end(self, topic: str, partition: int) -> int:
        log = self.batches.get((topic, partition))
        return log[-1][1] if log else self.log_start.get((topic, partition), 0)

    def handle(self, broker: FakeBroker, api_key: int, version: int, request: Any) -> Any:
        if api_key == 1:
            return self._fetch(broker, request)
        if api_key == 2:
            return self._list_offsets(broker, request)
        return super().handle(broker, api_key, version, request)

    def _list_offsets(self, broker: FakeBroker, request: ListOffsetsRequest) -> Any:
        topics = []
        for topic in request.topics:
            parts = []
            for p in topic.partitions:
                index = p.partition_index
                if self.topics[topic.name].get(index) != broker.node_id:
                    parts.append(ListOffsetsPartitionResponse(index, 6))
                    continue
                start = self.log_start.get((topic.name, index), 0)
                offset = start if p.timestamp == EARLIEST_TIMESTAMP else self.end(topic.name, index)
                parts.append(ListOffsetsPartitionResponse(index, 0, -1, offset))
            topics.append(ListOffsetsTopicResponse(topic.name, parts))
        return ListOffsetsResponse(topics=topics)

    def _fetch(self, broker: FakeBroker, request: FetchRequest) -> FetchResponse:
        topics = []
        budget = request.max_bytes
        first = True
        for topic in request.topics:
            self.fetches.append(
                (broker.node_id, {p.partition: p.fetch_offset for p in topic.partitions})
            )
            parts = []
            for p in topic.partitions:
                key = (topic.topic, p.partition)
                end = self.end(*key)
                start = self.log_start.get(key, 0)
                error = 0
                if self.fetch_errors and self.fetch_errors[0][0] == p.partition:
                    error = self.fetch_errors.pop(0)[1]
                elif self.topics[topic.topic].get(p.partition) != broker.node_id:
                    error = 6
                elif not start <= p.fetch_offset <= end:
                    error = 1
                if error:
                    parts.append(FetchPartitionResponse(p.partition, error, -1))
                    continue
                data = b""
                for base, stop, wire in self.batches.get(key, []):
                    if stop <= p.fetch_offset or base < start:
                        continue
                    limit = min(p.partition_max_bytes, budget) - len(data)
                    if len(wire) > limit and not (first and not data):
                        data += wire[: max(0, limit)]  # the broker cuts the last batch
                        break
                    data += wire
                budget -= len(data)
                first = first and not data
                parts.append(FetchPartitionResponse(p.partition, 0, end, end, start, records=data))
            topics.append(FetchTopicResponse(topic.topic, parts))
        return FetchResponse(responses=topics)


def connect(cluster: LogCluster, **options: Any) -> Connection:
    brokers = [f"{b.host}:{b.port}" for b in cluster.brokers.values()]
    return Connection(
        broker_list=brokers,
        transport=cluster.transport(),
        clock=cluster.clock,
        sleep=cluster.clock.sleep,
        **options,
    )


def fetcher_for(cluster: LogCluster, **options: Any) -> Fetcher:
    return Fetcher(connect(cluster), sleep=cluster.clock.sleep, **options)


def values(records: list[FetchedRecord]) -> list[tuple[int, int, bytes | None]]:
    return [(r.partition, r.offset, r.value) for r in records]


@pytest.mark.parametrize("version", LIST_OFFSETS_VERSIONS)
def test_offsets_come_from_each_partitions_leader(version: int) -> None:
    cluster = LogCluster()
    cluster.add_topic("t", 3)
    cluster.topics["t"] = {0: 1, 1: 2, 2: 2}
    for broker in cluster.brokers.values():
        broker.max_versions[2] = version
    cluster.append("t", 0, [b"a", b"b"])
    cluster.append("t", 1, [b"c"])
    cluster.log_start[("t", 2)] = 5
    fetcher = fetcher_for(cluster)
    assert fetcher.offsets("t") == {
        0: OffsetRange(0, 2),
        1: OffsetRange(0, 1),
        2: OffsetRange(5, 5),
    }
    # One request per leader and timestamp, at the version both sides speak.
    asked = [r for b in cluster.brokers.values() for r in b.received if r.api_key == 2]
    assert {r.version for r in asked} == {version}
    assert sorted(len(r.request.topics[0].partitions) for r in asked) == [1, 1, 2, 2]
    assert fetcher.offsets("t", [1]) == {1: OffsetRange(0, 1)}
    assert OffsetRange(3, 10).size == 7
    assert OffsetRange(3, 1).size == 0


@pytest.mark.parametrize("version", FETCH_VERSIONS)
@pytest.mark.parametrize("codec", CODECS, ids=[c.name.lower() for c in CODECS])
def test_read_to_the_end_decodes_every_codec_at_every_version(
    codec: Compression, version: int
) -> None:
    cluster = LogCluster()
    cluster.add_topic("t", 2)
    cluster.topics["t"] = {0: 1, 1: 2}
    for broker in cluster.brokers.values():
        broker.max_versions[1] = version
    cluster.append("t", 0, [b"a", b"b"], codec=codec, key=b"k", headers=(("h", b"1"), ("n", None)))
    cluster.append("t", 0, [b"c"], codec=codec)
    cluster.append("t", 1, [b"d"], codec=codec)
    fetcher = fetcher_for(cluster)
    records = list(fetcher.read("t", {0: 0, 1: 0}, end={0: 3, 1: 1}))
    assert sorted(values(records)) == [(0, 0, b"a"), (0, 1, b"b"), (0, 2, b"c"), (1, 0, b"d")]
    first = next(r for r in records if r.offset == 0 and r.partition == 0)
    assert first == FetchedRecord(
        "t", 0, 0, NOW, TimestampType.CREATE_TIME, b"k", b"a", (("h", b"1"), ("n", None))
    )
    fetched = [r for b in cluster.brokers.values() for r in b.received if r.api_key == 1]
    assert {r.version for r in fetched} == {version}


def test_records_before_the_start_and_past_the_end_are_not_returned() -> None:
    cluster = LogCluster(1)
    cluster.add_topic("t", 1)
    cluster.append("t", 0, [b"0", b"1", b"2", b"3", b"4"], codec=Compression.LZ4)
    fetcher = fetcher_for(cluster)
    # The compressed batch comes whole; only offsets 2 and 3 are asked for.
    assert values(list(fetcher.read("t", {0: 2}, end={0: 4}))) == [(0, 2, b"2"), (0, 3, b"3")]
    assert list(fetcher.read("t", {0: 5}, end={0: 5})) == []


def test_control_batches_are_skipped_but_counted_in_the_position() -> None:
    cluster = LogCluster(1)
    cluster.add_topic("t", 1)
    cluster.append("t", 0, [b"a"])
    cluster.append_raw("t", 0, control_batch(1), 1)
    cluster.append("t", 0, [b"b"])
    fetcher = fetcher_for(cluster)
    assert values(list(fetcher.read("t", {0: 0}, end={0: 3}))) == [(0, 0, b"a"), (0, 2, b"b")]


def test_a_batch_larger_than_the_partition_limit_is_fetched_with_a_larger_limit() -> None:
    cluster = LogCluster(1)
    cluster.add_topic("t", 2)
    cluster.append("t", 0, [b"small"])
    cluster.append("t", 1, [b"x" * 3000])
    fetcher = fetcher_for(cluster, partition_max_bytes=1024)
    records = list(fetcher.read("t", {0: 0, 1: 0}, end={0: 1, 1: 1}))
    assert sorted(values(records)) == [(0, 0, b"small"), (1, 0, b"x" * 3000)]
    # Partition 1 came back cut while it was not the first partition with data,
    # then was asked for with a larger limit (or first, after the rotation).
    limits = [
        p.partition_max_bytes
        for b in cluster.brokers.values()
        for r in b.received
        if r.api_key == 1
        for t in r.request.topics
        for p in t.partitions
        if p.partition == 1
    ]
    assert limits[0] == 1024
    assert len(limits) >= 2


def test_follow_long_polls_and_returns_records_written_later() -> None:
    cluster = LogCluster(1)
    cluster.add_topic("t", 1)
    cluster.append("t", 0, [b"old"])
    fetcher = fetcher_for(cluster, max_wait_ms=250)
    stream = fetcher.read("t", {0: 1})
    assert isinstance(stream, Generator)  # closed below
    cluster.append("t", 0, [b"new 1", b"new 2"], codec=Compression.SNAPPY)
    assert values(list(itertools.islice(stream, 2))) == [(0, 1, b"new 1"), (0, 2, b"new 2")]
    cluster.append("t", 0, [b"newer"])
    assert values([next(stream)]) == [(0, 3, b"newer")]
    stream.close()
    waits = [
        r.request.max_wait_ms
        for b in cluster.brokers.values()
        for r in b.received
        if r.api_key == 1
    ]
    assert set(waits) == {250}


def test_a_moved_leader_is_found_again_and_nothing_is_returned_twice() -> None:
    cluster = LogCluster()
    cluster.add_topic("t", 2)
    cluster.topics["t"] = {0: 1, 1: 2}
    cluster.append("t", 0, [b"a"])
    cluster.append("t", 1, [b"b"])
    fetcher = fetcher_for(cluster)
    stream = fetcher.read("t", {0: 0, 1: 0}, end={0: 2, 1: 1})
    first = values([next(stream)])
    assert first in ([(0, 0, b"a")], [(1, 0, b"b")])
    cluster.append("t", 0, [b"c"])
    cluster.topics["t"] = {0: 3, 1: 3}  # both partitions move to broker 3
    rest = values(list(stream))
    everything = sorted(first + rest)
    assert everything == [(0, 0, b"a"), (0, 1, b"c"), (1, 0, b"b")]
    assert cluster.clock.sleeps  # backed off before retrying
    assert any(node == 3 for node, _ in cluster.fetches)


def test_retriable_partition_errors_are_retried_then_raised() -> None:
    cluster = LogCluster(1)
    cluster.add_topic("t", 1)
    cluster.append("t", 0, [b"a"])
    cluster.fetch_errors = [(0, 56), (0, 56)]  # KAFKA_STORAGE_ERROR, retriable
    fetcher = fetcher_for(cluster)
    assert values(list(fetcher.read("t", {0: 0}, end={0: 1}))) == [(0, 0, b"a")]
    assert [e.context["name"] for e in fetcher.nonfatal_errors()] == ["KAFKA_STORAGE_ERROR"] * 2
    cluster.fetch_errors = [(0, 56)] * 10
    with pytest.raises(BrokerResponseError) as info:
        list(fetcher.read("t", {0: 0}, end={0: 1}))
    assert info.value.name == "KAFKA_STORAGE_ERROR"
    assert "t-0" in info.value.message


def test_a_fatal_partition_error_is_raised_at_once() -> None:
    cluster = LogCluster(1)
    cluster.add_topic("t", 1)
    cluster.fetch_errors = [(0, 29)]  # TOPIC_AUTHORIZATION_FAILED
    fetcher = fetcher_for(cluster)
    with pytest.raises(BrokerResponseError) as info:
        list(fetcher.read("t", {0: 0}, end={0: 1}))
    assert info.value.code == 29
    assert not cluster.clock.sleeps


@pytest.mark.parametrize(
    ("position", "expected", "read"),
    [(2, 5, [(0, 5, b"five"), (0, 6, b"six"), (0, 7, b"seven")]), (50, 8, [])],
    ids=["below-the-log-start", "past-the-end"],
)
def test_offset_out_of_range_moves_to_the_nearest_end(
    position: int, expected: int, read: list[tuple[int, int, bytes]]
) -> None:
    cluster = LogCluster(1)
    cluster.add_topic("t", 1)
    cluster.log_start[("t", 0)] = 5
    cluster.append("t", 0, [b"five", b"six", b"seven"])
    resets: list[tuple[str, int, int, int]] = []
    fetcher = fetcher_for(cluster, on_offset_reset=lambda *args: resets.append(args))
    assert values(list(fetcher.read("t", {0: position}, end={0: 60}))) == read
    assert resets == [("t", 0, position, expected)]


def test_a_log_that_ends_early_ends_the_read() -> None:
    cluster = LogCluster(1)
    cluster.add_topic("t", 1)
    cluster.append("t", 0, [b"a"])
    fetcher = fetcher_for(cluster)
    # The end asked for lies beyond the log (it was truncated): the high watermark wins.
    records = list(fetcher.read("t", {0: 0}, end={0: 5}))
    assert values(records) == [(0, 0, b"a")]


def test_invalid_arguments_are_named() -> None:
    cluster = LogCluster(1)
    cluster.add_topic("t", 2)
    fetcher = fetcher_for(cluster)
    with pytest.raises(InvalidArgumentError, match="'partition'"):
        fetcher.offsets("t", [7])
    with pytest.raises(InvalidArgumentError, match="'end'"):
        list(fetcher.read("t", {0: 0, 1: 0}, end={0: 1}))
    with pytest.raises(InvalidArgumentError, match="'start'"):
        list(fetcher.read("t", {0: -1}))
    with pytest.raises(InvalidArgumentError, match="'topic'"):
        fetcher.offsets("bad topic")
    with pytest.raises(InvalidArgumentError, match="'max_wait_ms'"):
        Fetcher(fetcher.connection, max_wait_ms=-1)
