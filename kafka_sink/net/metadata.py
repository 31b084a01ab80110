"""The one model of a cluster's metadata: brokers, topics, partitions, leaders.

Theory of operation
-------------------
A Metadata response describes the brokers of the cluster and some topics.
:class:`ClusterMetadata` is an immutable snapshot of what is known; a newer
response makes a new snapshot, never edits the old one, so a snapshot read by
another thread (``produce()`` reads partition counts) is always whole. Both
ways of talking to a cluster read this one model: the blocking
:class:`~kafka_sink.net.cluster.Connection` (and the fetcher built on it)
with :meth:`ClusterMetadata.merged`, and the producer's sender thread with
:meth:`ClusterMetadata.updated`.

A partition's leader counts only when it is a broker of the same snapshot and
the partition reports no error: a leader that is down is missing from the
broker list, and waiting on it would stall its partition. A topic that a
response reports with an error keeps, in :meth:`~ClusterMetadata.updated`,
the partitions last known for it: a transient error (a leader election) must
not make its records wait for metadata again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kafka_sink.config import BrokerAddress
from kafka_sink.error_codes import KafkaErrorCode
from kafka_sink.protocol.metadata import MetadataResponse, PartitionMetadata

__all__ = ["ClusterMetadata", "TopicPartition"]

#: A partition of a topic: (topic, partition id).
TopicPartition = tuple[str, int]

# Topic errors that mean "no leader yet" (a topic being created, an election).
_LEADERLESS = (KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION, KafkaErrorCode.LEADER_NOT_AVAILABLE)


@dataclass(frozen=True, slots=True)
class ClusterMetadata:
    """A snapshot of the cluster: brokers by node id, partitions by topic.

    ``partition_counts`` and ``leaders`` are derived from the rest when the
    snapshot is made, for the readers that look them up per record.
    """

    brokers: dict[int, BrokerAddress] = field(default_factory=dict)
    topics: dict[str, dict[int, PartitionMetadata]] = field(default_factory=dict)
    topic_errors: dict[str, int] = field(default_factory=dict)
    controller_id: int = -1
    cluster_id: str | None = None
    #: Partitions by topic, for the topics whose partitions are known.
    partition_counts: dict[str, int] = field(init=False, repr=False, compare=False)
    #: The leader's node id of each partition that has a usable one.
    leaders: dict[TopicPartition, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        brokers = self.brokers
        leaders = {
            (topic, index): part.leader_id
            for topic, partitions in self.topics.items()
            for index, part in partitions.items()
            if part.leader_id in brokers and not part.error_code
        }
        counts = {topic: len(partitions) for topic, partitions in self.topics.items()}
        object.__setattr__(self, "partition_counts", counts)
        object.__setattr__(self, "leaders", leaders)

    @classmethod
    def from_response(cls, response: MetadataResponse) -> ClusterMetadata:
        topics: dict[str, dict[int, PartitionMetadata]] = {}
        errors: dict[str, int] = {}
        for topic in response.topics:
            if topic.name is None:
                continue
            if topic.error_code:
                errors[topic.name] = topic.error_code
            if topic.partitions:
                topics[topic.name] = {p.partition_index: p for p in topic.partitions}
        return cls(
            {b.node_id: BrokerAddress(b.host, b.port) for b in response.brokers},
            topics,
            errors,
            response.controller_id,
            response.cluster_id,
        )

    def merged(self, newer: ClusterMetadata, requested: Sequence[str] | None) -> ClusterMetadata:
        """Combine with a newer snapshot that may describe only some topics.

        ``requested``: the topics the newer snapshot was asked about (None:
        every topic, so it replaces this one).
        """
        if requested is None:
            return newer
        topics = {t: p for t, p in self.topics.items() if t not in requested}
        topics.update(newer.topics)
        errors = {t: e for t, e in self.topic_errors.items() if t not in requested}
        errors.update(newer.topic_errors)
        return ClusterMetadata(
            newer.brokers or self.brokers, topics, errors, newer.controller_id, newer.cluster_id
        )

    def updated(self, newer: ClusterMetadata, described: Iterable[str]) -> ClusterMetadata:
        """The producer's view after a refresh: ``newer`` describes the topics ``described``.

        A described topic without an error takes the newer partitions; one
        with an error keeps those last known (see the module docstring), and
        the errors are the newer snapshot's.
        """
        topics = dict(self.topics)
        for name in described:
            if name in newer.topic_errors:
                continue
            partitions = newer.topics.get(name)
            if partitions:
                topics[name] = partitions
            else:  # the broker knows the topic, with no partition (yet)
                topics.pop(name, None)
        return ClusterMetadata(
            newer.brokers, topics, dict(newer.topic_errors), newer.controller_id, newer.cluster_id
        )

    def missing_leaders(self) -> bool:
        """Whether a topic or partition of this snapshot waits for a leader."""
        if any(code in _LEADERLESS for code in self.topic_errors.values()):
            return True
        return any(
            (topic, index) not in self.leaders
            for topic, partitions in self.topics.items()
            if topic not in self.topic_errors
            for index in partitions
        )

    def leader(self, topic: str, partition: int) -> int | None:
        """The node id of the partition's leader, or None when it has no usable one."""
        return self.leaders.get((topic, partition))
