"""The demo: send records through the producer core and read them back.

It starts librdkafka's mock cluster (``kafka_sink.testing.MockCluster``,
which needs the ``confluent-kafka`` wheel for its bundled librdkafka) unless a
cluster is named, sends messages with keys, timestamps, headers and several
codecs through :class:`kafka_sink.Producer`, and reads them back with an
independent consumer (librdkafka), printing what arrived.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from kafka_sink.constants import (
    BLOCK_UNTIL_IS_COMMITTED,
    COMPRESSION_GZIP,
    COMPRESSION_LZ4,
    COMPRESSION_NONE,
    COMPRESSION_SNAPPY,
)
from kafka_sink.net.cluster import Connection
from kafka_sink.producer.sync import Producer

TOPIC = "kafka-sink-demo"
_CODECS = {
    "none": COMPRESSION_NONE,
    "gzip": COMPRESSION_GZIP,
    "snappy": COMPRESSION_SNAPPY,
    "lz4": COMPRESSION_LZ4,
}


@contextlib.contextmanager
def _cluster(bootstrap_servers: str | None) -> Iterator[str]:
    if bootstrap_servers:
        yield bootstrap_servers
        return
    from kafka_sink.testing import MockCluster  # noqa: PLC0415 - only for the embedded cluster

    with MockCluster(num_brokers=3, topics={TOPIC: 3}) as cluster:
        print(f"embedded cluster (librdkafka mock) at {cluster.bootstrap_servers}")
        yield cluster.bootstrap_servers


def run_demo(count: int, bootstrap_servers: str | None = None) -> int:
    with _cluster(bootstrap_servers) as servers:
        connection = Connection(broker_list=servers, timeout=10, auto_create_topics_enable=True)
        producer = Producer(connection, client_id="demo", required_acks=BLOCK_UNTIL_IS_COMMITTED)
        partitions = connection.partitions(TOPIC)
        print(f"topic {TOPIC!r}: partitions {partitions}, brokers {connection.get_known_servers()}")
        sent = 0
        for i, (name, codec) in enumerate(_CODECS.items()):
            partition = partitions[i % len(partitions)]
            size = count // len(_CODECS) or 1
            batch = [
                f'{{"event": "demo", "n": {sent + j}, "codec": "{name}"}}' for j in range(size)
            ]
            now = int(time.time() * 1000)
            result = producer.send(
                TOPIC,
                partition,
                batch,
                keys=f"user-{i}",
                compression_codec=codec,
                timestamps=now,
                headers=[("codec", name.encode()), ("source", b"kafka_sink.demo")],
            )
            sent += len(batch)
            print(
                f"sent {len(batch):3} records with {name:6} to partition {partition}: "
                f"base offset {result.base_offset}"
            )
        connection.close()
        records = _read_back(servers, sent)
        print(f"read back {len(records)} of {sent} records:")
        for partition, offset, key, value, headers in records:
            print(f"  p{partition} @{offset:<3} key={key!r:10} headers={headers} {value}")
        return 0 if len(records) == sent else 1


def _read_back(servers: str, expected: int) -> list[tuple[int, int, str, str, dict[str, str]]]:
    """Read the topic with librdkafka, an independent consumer."""
    # The reader is librdkafka on purpose: an independent implementation checks ours.
    from confluent_kafka import Consumer, TopicPartition  # noqa: PLC0415 - demo-only dependency

    consumer = Consumer(
        {"bootstrap.servers": servers, "group.id": "kafka-sink-demo", "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(TOPIC, timeout=10)
        consumer.assign(
            [TopicPartition(TOPIC, p, 0) for p in sorted(metadata.topics[TOPIC].partitions)]
        )
        out: list[tuple[int, int, str, str, dict[str, str]]] = []
        deadline = time.monotonic() + 20
        while len(out) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            out.append(
                (
                    message.partition() or 0,
                    message.offset() or 0,
                    _text(message.key()),
                    _text(message.value()),
                    {h[0]: _text(h[1]) for h in (message.headers() or [])},
                )
            )
        return sorted(out)
    finally:
        consumer.close()


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")
