"""Pinned wire bytes, accepted by real brokers and decoded by librdkafka.

The pinned batch of tests/unit/test_records.py is sent as-is (producer fields
reset to "not idempotent" and the CRC recomputed here, independently of the
encoder) in a raw ProduceRequest. Kafka 2.3 verifies the CRC and decompresses
nothing it cannot parse; librdkafka then reads every record back.
"""

from __future__ import annotations

import struct
from typing import Any

import crc32c
import pytest

from kafka_sink import Connection
from kafka_sink.protocol.produce import PartitionProduceData, ProduceRequest, TopicProduceData
from tests.oracle import consume
from tests.unit.test_records import PINNED_BATCH, PINNED_INPUT

pytestmark = pytest.mark.integration


def _without_producer_fields(batch: bytes) -> bytes:
    patched = bytearray(batch)
    # producerId (offset 43), producerEpoch (51), baseSequence (53): "none".
    struct.pack_into(">qhi", patched, 43, -1, -1, -1)
    struct.pack_into(">I", patched, 17, crc32c.crc32c(bytes(patched[21:])))
    return bytes(patched)


def test_pinned_batch_is_read_back_by_librdkafka(broker: Any, topic_name: str) -> None:
    broker.create_topic(topic_name, partitions=1)
    batch = _without_producer_fields(PINNED_BATCH)
    request = ProduceRequest(
        acks=-1,
        timeout_ms=5000,
        topic_data=[TopicProduceData(topic_name, [PartitionProduceData(0, batch)])],
    )
    with Connection(broker_list=broker.bootstrap_servers, timeout=10) as connection:
        response = connection.request_to_leader(topic_name, 0, request)
    assert response is not None  # acks is not 0: the broker answers
    (part,) = response.responses[0].partition_responses
    assert part.error_code == 0
    records = consume(broker.bootstrap_servers, topic_name, expected=len(PINNED_INPUT))
    assert [(r.timestamp_ms, r.key, r.value, list(r.headers)) for r in records] == [
        (stamp, key, value, list(headers)) for stamp, key, value, headers in PINNED_INPUT
    ]


@pytest.mark.kafka23
def test_corrupted_crc_is_refused_by_kafka(kafka23: Any, topic_name: str) -> None:
    kafka23.create_topic(topic_name, 1, 1)
    batch = bytearray(_without_producer_fields(PINNED_BATCH))
    batch[-1] ^= 0xFF  # a record byte, under the CRC
    request = ProduceRequest(
        acks=1,
        timeout_ms=5000,
        topic_data=[TopicProduceData(topic_name, [PartitionProduceData(0, bytes(batch))])],
    )
    with Connection(broker_list=kafka23.bootstrap_servers, timeout=10) as connection:
        response = connection.request_to_leader(topic_name, 0, request)
    assert response is not None  # acks is not 0: the broker answers
    (part,) = response.responses[0].partition_responses
    assert part.error_code == 2  # CORRUPT_MESSAGE


@pytest.mark.parametrize("kind", ["kafka23", "tansu"])
def test_create_topic_through_the_controller(
    request: pytest.FixtureRequest, kind: str, topic_name: str
) -> None:
    backend = request.getfixturevalue(kind)
    with Connection(broker_list=backend.bootstrap_servers, timeout=10) as connection:
        connection.create_topic(topic_name, partitions=3, replication_factor=1)
        assert connection.partitions(topic_name) == [0, 1, 2]
        connection.create_topic(topic_name, partitions=3)  # exists already: not an error
