"""Topic creation and readiness checks shared by the real-broker test clusters.

Topics are created with confluent-kafka's AdminClient (CreateTopics), then
awaited with raw Metadata requests sent to *every* live broker, because each
broker answers from its own metadata cache and a producer may ask any of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from tests.brokers import wire
from tests.brokers.common import BrokerError, ManagedProcess, wait_until

__all__ = ["create_topic", "librdkafka_logger", "wait_for_brokers", "wait_for_topic"]


def librdkafka_logger() -> logging.Logger:
    """Where librdkafka clients of the test infrastructure log (instead of stderr)."""
    return logging.getLogger("tests.brokers.librdkafka")


def create_topic(
    addresses: Sequence[str],
    name: str,
    partitions: int,
    replication_factor: int,
    *,
    timeout: float = 30.0,
    processes: Iterable[ManagedProcess] = (),
    config: Mapping[str, str] | None = None,
) -> None:
    """Create a topic and wait until every broker in ``addresses`` knows its leaders.

    ``config`` holds topic settings, such as ``{"min.insync.replicas": "2"}``.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    admin = AdminClient({"bootstrap.servers": ",".join(addresses)}, logger=librdkafka_logger())
    futures = admin.create_topics(
        [NewTopic(name, partitions, replication_factor, config=dict(config or {}))],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    try:
        futures[name].result(timeout=timeout)
    except KafkaException as exc:
        raise BrokerError(
            f"cannot create topic {name!r} ({partitions} partitions, "
            f"replication factor {replication_factor}): {exc.args[0]}"
        ) from exc
    wait_for_topic(addresses, name, partitions, timeout=timeout, processes=processes)


def wait_for_topic(
    addresses: Sequence[str],
    name: str,
    partitions: int,
    *,
    timeout: float = 30.0,
    processes: Iterable[ManagedProcess] = (),
) -> None:
    """Wait until each broker's metadata shows ``partitions`` partitions of ``name``, all led."""

    def ready_everywhere() -> bool:
        for address in addresses:
            topic = wire.metadata(address, [name]).topic(name)
            if topic is None or topic.error_code or len(topic.partitions) != partitions:
                return False
            if any(p.leader < 0 or p.error_code for p in topic.partitions):
                return False
        return True

    wait_until(
        ready_everywhere,
        timeout=timeout,
        what=f"leaders for the {partitions} partition(s) of {name!r}",
        processes=processes,
    )


def wait_for_brokers(
    addresses: Sequence[str],
    broker_ids: Iterable[int],
    *,
    timeout: float,
    processes: Iterable[ManagedProcess] = (),
) -> None:
    """Wait until every broker in ``addresses`` lists ``broker_ids`` and a controller."""
    expected = set(broker_ids)

    def all_registered() -> bool:
        for address in addresses:
            cluster = wire.metadata(address)
            if {b.node_id for b in cluster.brokers} != expected or cluster.controller_id < 0:
                return False
        return True

    wait_until(
        all_registered,
        timeout=timeout,
        what=f"brokers {sorted(expected)} to register with a controller",
        processes=processes,
    )
