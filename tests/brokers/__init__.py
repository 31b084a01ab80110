"""Test brokers the suite installs and starts by itself (not shipped with kafka_sink).

* :mod:`tests.brokers.kafka23`: Apache Kafka 2.3.0 on the JVM, ZooKeeper mode.
* :mod:`tests.brokers.tansu`: Tansu 0.6.0, a Kafka-compatible broker in Rust.
* librdkafka's mock cluster, from :class:`kafka_sink.testing.MockCluster`.

:class:`BrokerUnderTest` gives tests one shape over the three kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["BrokerUnderTest", "TopicCreator"]


class TopicCreator(Protocol):
    def create_topic(self, name: str, partitions: int, replication_factor: int = 1) -> None: ...


@dataclass(frozen=True, slots=True)
class BrokerUnderTest:
    """A running broker (or cluster) of one kind, as the ``broker`` fixture yields it.

    ``backend`` is the object that runs it (:class:`~kafka_sink.testing.MockCluster`,
    :class:`~tests.brokers.kafka23.Kafka23Cluster` or
    :class:`~tests.brokers.tansu.TansuBroker`) for kind-specific operations.
    """

    kind: str
    bootstrap_servers: str
    backend: TopicCreator

    def create_topic(self, name: str, partitions: int, replication_factor: int = 1) -> None:
        """Create a topic; it has leaders for all partitions when this returns."""
        self.backend.create_topic(name, partitions, replication_factor)
