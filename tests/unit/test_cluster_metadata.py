"""The one model of cluster metadata (kafka_sink.net.metadata), as both clients read it."""

from __future__ import annotations

from kafka_sink.config import BrokerAddress
from kafka_sink.error_codes import KafkaErrorCode
from kafka_sink.net.metadata import ClusterMetadata
from kafka_sink.protocol.metadata import PartitionMetadata

BROKERS = {1: BrokerAddress("b1", 9092), 2: BrokerAddress("b2", 9092)}


def _partitions(*leaders: int, error: int = 0) -> dict[int, PartitionMetadata]:
    return {
        index: PartitionMetadata(error, index, leader, -1, [leader], [leader], [])
        for index, leader in enumerate(leaders)
    }


def test_leaders_count_only_when_they_are_brokers_of_the_snapshot_without_error() -> None:
    metadata = ClusterMetadata(
        BROKERS,
        {"logs": _partitions(1, 2, 3), "audit": _partitions(2, error=6)},
    )
    assert metadata.partition_counts == {"logs": 3, "audit": 1}
    assert metadata.leader("logs", 0) == 1
    assert metadata.leader("logs", 1) == 2
    assert metadata.leader("logs", 2) is None  # node 3 is not in the broker list
    assert metadata.leader("audit", 0) is None  # NOT_LEADER_OR_FOLLOWER
    assert metadata.missing_leaders()


def test_a_refresh_keeps_what_it_does_not_describe_and_the_partitions_of_an_erring_topic() -> None:
    before = ClusterMetadata(BROKERS, {"logs": _partitions(1, 2), "audit": _partitions(2)})
    newer = ClusterMetadata(
        BROKERS,
        {"logs": _partitions(2, 2)},
        {"audit": KafkaErrorCode.LEADER_NOT_AVAILABLE},
    )
    after = before.updated(newer, ["logs", "audit"])
    assert after.leader("logs", 0) == 2  # the newer leader
    assert after.partition_counts == {"logs": 2, "audit": 1}  # audit's last known
    assert after.topic_errors == {"audit": KafkaErrorCode.LEADER_NOT_AVAILABLE}
    assert after.missing_leaders()  # leaderless: ask again soon
    assert before.leader("logs", 0) == 1  # snapshots are never edited
    calm = after.updated(ClusterMetadata(BROKERS, {"audit": _partitions(1)}), ["audit"])
    assert calm.topic_errors == {}
    assert not calm.missing_leaders()
    assert calm.partition_counts == {"logs": 2, "audit": 1}


def test_a_topic_known_without_partitions_is_no_longer_countable() -> None:
    before = ClusterMetadata(BROKERS, {"logs": _partitions(1)})
    after = before.updated(ClusterMetadata(BROKERS, {}), ["logs"])
    assert "logs" not in after.partition_counts


def test_the_blocking_connection_merges_by_the_topics_it_asked_for() -> None:
    before = ClusterMetadata(BROKERS, {"logs": _partitions(1), "audit": _partitions(1)})
    newer = ClusterMetadata({1: BROKERS[1]}, {"logs": _partitions(1, 1)})
    merged = before.merged(newer, ["logs"])
    assert merged.partition_counts == {"audit": 1, "logs": 2}
    assert before.merged(newer, None) is newer
