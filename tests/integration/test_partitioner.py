"""kafka_sink's key partitioning against librdkafka's ``murmur2_random``.

librdkafka (through confluent-kafka) produces 1000 random keys to topics of 1
to 50 partitions on the mock cluster and reports, for each record, the
partition its partitioner chose: :func:`partition_for_key` must agree on every
one. The oracle then reads one topic back, to confirm that the delivery
reports tell where the records really are.
"""

from __future__ import annotations

import random
from typing import Any

from kafka_sink.producer.partitioner import DefaultPartitioner, partition_for_key
from kafka_sink.testing import MockCluster
from tests.brokers.admin import librdkafka_logger
from tests.oracle import consume

NUM_KEYS = 1000
PARTITION_COUNTS = range(1, 51)


def random_keys(rng: random.Random) -> list[bytes]:
    """Distinct keys: binary and text, 0 to 80 bytes, so every tail length occurs.

    The empty key is among them: librdkafka hashes it like any key, as the
    Java client does; only a missing key is partitioned without the hash.
    """
    keys: set[bytes] = {b""}
    while len(keys) < NUM_KEYS:
        size = rng.randint(1, 80)
        if rng.random() < 0.5:
            keys.add(rng.randbytes(size))
        else:
            alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_.:"
            keys.add("".join(rng.choices(alphabet, k=size)).encode())
    return sorted(keys)


def produce_with_librdkafka(
    bootstrap_servers: str, topics: dict[str, int], keys: list[bytes]
) -> dict[tuple[str, bytes], int]:
    """Produce every key to every topic; return where librdkafka put each record."""
    from confluent_kafka import Producer

    placed: dict[tuple[str, bytes], int] = {}
    errors: list[str] = []

    def on_delivery(error: Any, message: Any) -> None:
        if error is not None:
            errors.append(f"{message.topic()} {message.key()!r}: {error}")
        else:
            placed[(message.topic(), message.key())] = message.partition()

    producer = Producer(
        {
            "bootstrap.servers": bootstrap_servers,
            "partitioner": "murmur2_random",
            "linger.ms": 5,
        },
        logger=librdkafka_logger(),
    )
    for topic in topics:
        for key in keys:
            producer.produce(topic, value=b"v", key=key, on_delivery=on_delivery)
            producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0, f"{remaining} records not delivered"
    assert errors == []
    return placed


def test_partition_for_key_matches_librdkafka_murmur2_random(
    mock_cluster: MockCluster, topic_name: str
) -> None:
    keys = random_keys(random.Random(480))
    topics = {f"{topic_name}-{count}": count for count in PARTITION_COUNTS}
    for topic, count in topics.items():
        mock_cluster.create_topic(topic, count)

    placed = produce_with_librdkafka(mock_cluster.bootstrap_servers, topics, keys)

    assert len(placed) == NUM_KEYS * len(topics)
    mismatches = [
        (count, key, partition_for_key(key, count), placed[(topic, key)])
        for topic, count in topics.items()
        for key in keys
        if partition_for_key(key, count) != placed[(topic, key)]
    ]
    assert mismatches == [], f"{len(mismatches)} keys differ, e.g. {mismatches[:5]}"
    partitioner = DefaultPartitioner()
    assert all(
        partitioner(topic, key, None, count) == placed[(topic, key)]
        for topic, count in topics.items()
        for key in keys[:100]
    )

    # The delivery reports tell the truth: read one topic back.
    topic = f"{topic_name}-7"
    records = consume(mock_cluster.bootstrap_servers, topic, expected=NUM_KEYS)
    assert {record.key: record.partition for record in records} == {
        key: partition_for_key(key, 7) for key in keys
    }
