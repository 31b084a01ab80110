"""What the examples share: a Kafka cluster to talk to, and a way to read topics back.

Each example starts an embedded cluster (librdkafka's mock cluster, from
:mod:`kafka_sink.testing`; ``pip install -e '.[testing]'``) unless
``$KAFKA_SINK_BOOTSTRAP_SERVERS`` names a cluster of your own, where the
topics are created if they are missing. Either way, :meth:`Cluster.read`
returns only the records written since the example started.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from kafka_sink import Connection, KafkaSinkError
from kafka_sink.net.fetcher import FetchedRecord, Fetcher
from kafka_sink.testing import MockCluster

ENV_VAR = "KAFKA_SINK_BOOTSTRAP_SERVERS"
PARTITIONS = 3


class Cluster:
    """A cluster's bootstrap servers, and the end offsets its topics had at the start."""

    def __init__(self, bootstrap_servers: str, topics: tuple[str, ...]) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._start = {topic: self._end_offsets(topic) for topic in topics}

    def read(self, topic: str) -> list[FetchedRecord]:
        """The records written to ``topic`` since the example started, read by kafka_sink.

        In partition and offset order; ``record.key``, ``record.value`` and
        ``record.headers`` are bytes (``headers(record)`` decodes the headers).
        """
        with Connection(broker_list=self.bootstrap_servers, timeout=10) as connection:
            fetcher = Fetcher(connection)
            ranges = fetcher.offsets(topic)
            known = self._start.get(topic, {})
            start = {p: known.get(p, r.earliest) for p, r in ranges.items()}
            records = fetcher.read(topic, start, end={p: r.latest for p, r in ranges.items()})
            return sorted(records, key=lambda r: (r.partition, r.offset))

    def _end_offsets(self, topic: str) -> dict[int, int]:
        with Connection(broker_list=self.bootstrap_servers, timeout=10) as connection:
            try:
                connection.partitions(topic)
            except KafkaSinkError:  # a cluster of your own without the topic
                connection.create_topic(topic, PARTITIONS)
            return {p: r.latest for p, r in Fetcher(connection).offsets(topic).items()}


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
