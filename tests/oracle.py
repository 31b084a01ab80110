"""An independent consumer that tells what a topic really holds: the tests' oracle.

It is built on confluent-kafka (librdkafka), not on kafka_sink, so that a bug in
kafka_sink's encoding cannot hide itself by being decoded by the same code.
It reads every partition from the beginning with ``assign()`` (no group
membership, no offset commits) and works with the three test brokers (Apache
Kafka 2.3, librdkafka's mock cluster, Tansu) with librdkafka's default
protocol settings: ``api.version.request`` stays on and every broker answers
the Fetch and ListOffsets versions librdkafka picks (Tansu advertises Fetch
v0-17 and ListOffsets v0-9, the mock v0-16 and v0-7, Kafka 2.3 v0-11 and v0-5).

Example::

    records = consume(broker.bootstrap_servers, "logs", expected=3)
    assert [r.value for r in records] == [b"a", b"b", b"c"]
"""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.brokers.admin import librdkafka_logger

__all__ = ["ConsumedRecord", "OracleError", "TimestampType", "consume", "values_of"]


class TimestampType(enum.IntEnum):
    """Kafka's timestamp types, numbered as on the wire and in the Java client."""

    NOT_AVAILABLE = -1
    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    """One record as the oracle read it back."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_type: TimestampType
    timestamp_ms: int
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


class OracleError(AssertionError):
    """The topic did not hold what the test expected; ``records`` is what was read.

    An AssertionError so that pytest reports it as a test failure, not an error.
    """

    def __init__(self, message: str, records: list[ConsumedRecord]) -> None:
        super().__init__(message)
        self.records = records


# confluent-kafka numbers timestamp types 0 (none), 1 (create), 2 (log append).
_TIMESTAMP_TYPES = {
    0: TimestampType.NOT_AVAILABLE,
    1: TimestampType.CREATE_TIME,
    2: TimestampType.LOG_APPEND_TIME,
}


def consume(
    bootstrap_servers: str,
    topic: str,
    *,
    expected: int,
    timeout: float = 30.0,
    drain_timeout: float = 5.0,
    config: Mapping[str, Any] | None = None,
    exact: bool = True,
) -> list[ConsumedRecord]:
    """Read ``expected`` records of ``topic``, from every partition's beginning.

    Returns them sorted by (partition, offset). Raises :class:`OracleError`
    when ``timeout`` seconds pass with fewer records, or as soon as one record
    too many is read.

    Once ``expected`` records are in, the oracle checks that nothing follows:
    it keeps reading until every partition has reported end-of-partition
    (librdkafka's ``enable.partition.eof``: the consumer position reached the
    partition's high watermark) after its last record. A record arriving in the
    meantime fails the call; if some partition does not report its end within
    ``drain_timeout`` seconds, the call fails too, because the absence of
    extra records could not be confirmed. No fixed sleep is involved.

    ``config`` adds or overrides librdkafka consumer properties. With
    ``exact=False`` more than ``expected`` records are allowed: everything up
    to every partition's end is returned (for brokers that may store a retried
    batch twice).
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    settings: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        # confluent-kafka insists on a group id even for assign(); a unique one
        # that never commits leaves no trace worth mentioning on the broker.
        "group.id": f"kafka-sink-oracle-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "allow.auto.create.topics": False,
        "topic.metadata.refresh.interval.ms": 1000,
        # A fetch at the end of a partition returns after this long; the end is
        # what the oracle waits for, so waiting less makes every call faster.
        "fetch.wait.max.ms": 50,
    }
    settings.update(config or {})
    deadline = time.monotonic() + timeout
    records: list[ConsumedRecord] = []
    consumer = Consumer(settings, logger=librdkafka_logger())
    try:
        partitions = _partitions_of(consumer, topic, deadline)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end = dict.fromkeys(partitions, False)
        drain_deadline: float | None = None
        last_error: str | None = None
        while True:
            now = time.monotonic()
            if len(records) == expected or (not exact and len(records) > expected):
                if all(at_end.values()):
                    return sorted(records, key=lambda r: (r.partition, r.offset))
                drain_deadline = drain_deadline or now + drain_timeout
                if now >= drain_deadline:
                    waiting = sorted(p for p, done in at_end.items() if not done)
                    raise OracleError(
                        f"{topic}: read the {expected} expected records, but partitions "
                        f"{waiting} did not report their end within {drain_timeout} s, so "
                        "extra records cannot be ruled out",
                        _sorted(records),
                    )
            elif now >= deadline:
                raise OracleError(
                    f"{topic}: expected {expected} records within {timeout} s, got "
                    f"{len(records)} ({_per_partition(records)})"
                    + (f"; last consumer error: {last_error}" if last_error else ""),
                    _sorted(records),
                )
            for message in consumer.consume(num_messages=500, timeout=0.1):
                error = message.error()
                partition = message.partition()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF and partition is not None:
                        at_end[partition] = True
                    elif error.fatal():
                        message_text = f"{topic}: fatal consumer error {error}"
                        raise OracleError(message_text, _sorted(records))
                    else:
                        last_error = str(error)
                    continue
                if partition is not None:
                    at_end[partition] = False
                records.append(_record(message))
                if exact and len(records) > expected:
                    raise OracleError(
                        f"{topic}: expected {expected} records, found more: "
                        f"{_per_partition(records)}",
                        _sorted(records),
                    )
    finally:
        consumer.close()


def values_of(records: Iterable[ConsumedRecord]) -> list[bytes]:
    """The values of ``records``, in their order; every record must have one."""
    out: list[bytes] = []
    for record in records:
        assert record.value is not None, record
        out.append(record.value)
    return out


def _partitions_of(consumer: Any, topic: str, deadline: float) -> list[int]:
    """The topic's partitions, waiting (until ``deadline``) for it to exist with leaders."""
    problem = "no metadata"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OracleError(f"{topic}: cannot read it: {problem}", [])
        try:
            metadata = consumer.list_topics(topic, timeout=min(remaining, 5.0))
        except Exception as exc:  # KafkaException: the cluster did not answer in time
            problem = str(exc)
        else:
            info = metadata.topics.get(topic)
            if info is None or info.error is not None:
                problem = f"the topic is unknown ({None if info is None else info.error})"
            elif not info.partitions:
                problem = "the topic has no partitions"
            elif any(p.leader < 0 for p in info.partitions.values()):
                problem = "some partitions have no leader"
            else:
                return sorted(info.partitions)
        time.sleep(0.1)


def _record(message: Any) -> ConsumedRecord:
    kind, timestamp = message.timestamp()
    return ConsumedRecord(
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        key=message.key(),
        value=message.value(),
        timestamp_type=_TIMESTAMP_TYPES[kind],
        timestamp_ms=timestamp,
        headers=list(message.headers() or []),
    )


def _sorted(records: list[ConsumedRecord]) -> list[ConsumedRecord]:
    return sorted(records, key=lambda r: (r.partition, r.offset))


def _per_partition(records: list[ConsumedRecord]) -> str:
    counts: dict[int, int] = {}
    for record in records:
        counts[record.partition] = counts.get(record.partition, 0) + 1
    return ", ".join(f"partition {p}: {n}" for p, n in sorted(counts.items())) or "none"
