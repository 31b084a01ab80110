"""What the examples share: a Kafka cluster to talk to, and a way to read topics back.

Each example starts an embedded cluster (librdkafka's mock cluster, from
:mod:`kafka_sink.testing`; ``pip install -e '.[testing]'``) unless
``$KAFKA_SINK_BOOTSTRAP_SERVERS`` names a cluster of your own, where the
topics are created if they are missing. Either way, :meth:`Cluster.read`
returns only the records written since the example started.

Topics are read back by librdkafka (the confluent-kafka consumer the testing
extra installs), not by kafka_sink: what an example reports as arrived is
what another Kafka client finds in the topic, so a mistake in kafka_sink's
encoding cannot pass unnoticed by being decoded by kafka_sink again.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

from kafka_sink import Connection, KafkaSinkError
from kafka_sink.net.fetcher import FetchedRecord
from kafka_sink.protocol.records import TimestampType
from kafka_sink.testing import MockCluster

ENV_VAR = "KAFKA_SINK_BOOTSTRAP_SERVERS"
PARTITIONS = 3
READ_TIMEOUT = 30.0  # seconds to read a topic up to the end it had when the read began


class Cluster:
    """A cluster's bootstrap servers, and the end offsets its topics had at the start."""

    def __init__(self, bootstrap_servers: str, topics: tuple[str, ...]) -> None:
        self.bootstrap_servers = bootstrap_servers
        for topic in topics:
            self._ensure_topic(topic)
        with self._consumer() as consumer:
            self._start = {
                topic: {p: high for p, (_, high) in _offsets(consumer, topic).items()}
                for topic in topics
            }

    def read(self, topic: str) -> list[FetchedRecord]:
        """The records written to ``topic`` since the example started, read by librdkafka.

        In partition and offset order; ``record.key``, ``record.value`` and
        ``record.headers`` are bytes (``headers(record)`` decodes the headers).
        Raises RuntimeError when the topic cannot be read to its end in time.
        """
        from confluent_kafka import KafkaError, TopicPartition  # noqa: PLC0415 - testing extra

        with self._consumer() as consumer:
            offsets = _offsets(consumer, topic)
            known = self._start.get(topic, {})
            start = {p: known.get(p, low) for p, (low, _) in offsets.items()}
            end = {p: high for p, (_, high) in offsets.items()}
            pending = {p for p in end if start[p] < end[p]}
            consumer.assign([TopicPartition(topic, p, start[p]) for p in sorted(pending)])
            records: list[FetchedRecord] = []
            last_error = "none"
            deadline = time.monotonic() + READ_TIMEOUT
            while pending:
                if time.monotonic() >= deadline:
                    raise RuntimeError(
                        f"{topic}: partitions {sorted(pending)} not read up to offsets "
                        f"{end} within {READ_TIMEOUT} s (last consumer error: {last_error})"
                    )
                for message in consumer.consume(num_messages=500, timeout=0.1):
                    error = message.error()
                    partition = message.partition()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            pending.discard(partition)  # at the end the partition had then
                        elif error.fatal():
                            raise RuntimeError(f"{topic}: cannot read it back: {error}")
                        else:
                            last_error = str(error)  # librdkafka retries on its own
                        continue
                    if message.offset() >= end[partition]:
                        continue  # written after the read began
                    records.append(_record(message))
                    if message.offset() == end[partition] - 1:
                        pending.discard(partition)
            return sorted(records, key=lambda r: (r.partition, r.offset))

    def _ensure_topic(self, topic: str) -> None:
        with Connection(broker_list=self.bootstrap_servers, timeout=10) as connection:
            try:
                connection.partitions(topic)
            except KafkaSinkError:  # a cluster of your own without the topic
                connection.create_topic(topic, PARTITIONS)

    @contextlib.contextmanager
    def _consumer(self) -> Iterator[Any]:
        from confluent_kafka import Consumer  # noqa: PLC0415 - testing extra

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                # assign() needs no group, but the consumer insists on an id;
                # nothing is ever committed under it.
                "group.id": f"kafka-sink-examples-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "fetch.wait.max.ms": 50,
            }
        )
        try:
            yield consumer
        finally:
            consumer.close()


def _offsets(consumer: Any, topic: str) -> dict[int, tuple[int, int]]:
    """Each partition's first offset and log end offset (the offset its next record gets)."""
    from confluent_kafka import TopicPartition  # noqa: PLC0415 - testing extra

    metadata = consumer.list_topics(topic, timeout=10)
    partitions = sorted(metadata.topics[topic].partitions)
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
        for p in partitions
    }


def _record(message: Any) -> FetchedRecord:
    kind, timestamp = message.timestamp()
    return FetchedRecord(
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        timestamp=timestamp,
        # confluent-kafka numbers them 0 (none), 1 (create time), 2 (log append time).
        timestamp_type=TimestampType.LOG_APPEND_TIME if kind == 2 else TimestampType.CREATE_TIME,
        key=message.key(),
        value=message.value(),
        headers=tuple(message.headers() or ()),
    )


@contextlib.contextmanager
def example_cluster(*topics: str) -> Iterator[Cluster]:
    """The cluster of ``$KAFKA_SINK_BOOTSTRAP_SERVERS``, or an embedded one with ``topics``."""
    servers = os.environ.get(ENV_VAR)
    if servers:
        print(f"cluster: {servers} (${ENV_VAR})")
        yield Cluster(servers, topics)
        return
    with MockCluster(num_brokers=3, topics=dict.fromkeys(topics, PARTITIONS)) as embedded:
        print(f"cluster: embedded (librdkafka mock) at {embedded.bootstrap_servers}")
        yield Cluster(embedded.bootstrap_servers, topics)


def headers(record: FetchedRecord) -> dict[str, str]:
    """A record's headers as text (the last value of a repeated name)."""
    return {name: (value or b"").decode("utf-8", "replace") for name, value in record.headers}
