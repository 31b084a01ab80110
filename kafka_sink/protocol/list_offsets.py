"""ListOffsets (key 2): the offset of a partition at a point in time.

Kafka protocol guide, "ListOffsets"; KIP-79 (v1: one offset per partition,
looked up by timestamp) and KIP-734 (v7: the offset of the largest
timestamp). The library speaks v1 to v7; v6+ are flexible.

Instead of a real timestamp a partition may ask for one of the special
values below: :data:`LATEST_TIMESTAMP` answers the log end offset (the
offset the next record will get), :data:`EARLIEST_TIMESTAMP` the log start
offset (the first offset still stored). A timestamp in milliseconds answers
the first offset whose record has a timestamp at or after it, or -1 when
there is none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from kafka_sink.protocol.schema import (
    INT8,
    INT16,
    INT32,
    INT64,
    STRING,
    Array,
    Message,
    Request,
    Struct,
    field,
)

__all__ = [
    "EARLIEST_TIMESTAMP",
    "LATEST_TIMESTAMP",
    "MAX_TIMESTAMP",
    "READ_COMMITTED",
    "READ_UNCOMMITTED",
    "ListOffsetsPartition",
    "ListOffsetsPartitionResponse",
    "ListOffsetsRequest",
    "ListOffsetsResponse",
    "ListOffsetsTopic",
    "ListOffsetsTopicResponse",
]

#: Ask for the log end offset (the high watermark with READ_UNCOMMITTED).
LATEST_TIMESTAMP = -1
#: Ask for the log start offset.
EARLIEST_TIMESTAMP = -2
#: Ask for the offset of the record with the largest timestamp (v7+).
MAX_TIMESTAMP = -3

#: Isolation levels (ListOffsets v2+, Fetch v4+): every record is visible...
READ_UNCOMMITTED = 0
#: ...or only records of committed transactions, up to the last stable offset.
READ_COMMITTED = 1


@dataclass(frozen=True, slots=True)
class ListOffsetsPartition:
    """One partition to look up, at ``timestamp`` (ms, or a special value above)."""

    partition_index: int = field(INT32)
    current_leader_epoch: int = field(INT32, versions="4+", default=-1)
    timestamp: int = field(INT64, default=LATEST_TIMESTAMP)


@dataclass(frozen=True, slots=True)
class ListOffsetsTopic:
    name: str = field(STRING)
    partitions: list[ListOffsetsPartition] = field(
        Array(Struct(ListOffsetsPartition)), default_factory=list
    )


@dataclass(frozen=True, slots=True)
class ListOffsetsRequest(Request["ListOffsetsResponse"]):
    """Look up one offset for each listed partition.

    Example::

        >>> request = ListOffsetsRequest.for_partitions("logs", [0, 1], EARLIEST_TIMESTAMP)
        >>> [p.timestamp for p in request.topics[0].partitions]
        [-2, -2]
    """

    API_KEY: ClassVar[int] = 2
    VERSIONS: ClassVar[tuple[int, int]] = (1, 7)
    FLEXIBLE_FROM: ClassVar[int] = 6

    # -1: a consumer, not a follower replica.
    replica_id: int = field(INT32, default=-1)
    isolation_level: int = field(INT8, versions="2+", default=READ_UNCOMMITTED)
    topics: list[ListOffsetsTopic] = field(Array(Struct(ListOffsetsTopic)), default_factory=list)

    @classmethod
    def for_partitions(
        cls,
        topic: str,
        partitions: Iterable[int],
        timestamp: int,
        isolation_level: int = READ_UNCOMMITTED,
    ) -> ListOffsetsRequest:
        """A request for the same ``timestamp`` in several partitions of one topic."""
        wanted = [ListOffsetsPartition(p, timestamp=timestamp) for p in partitions]
        return cls(-1, isolation_level, [ListOffsetsTopic(topic, wanted)])


@dataclass(frozen=True, slots=True)
class ListOffsetsPartitionResponse:
    """The offset found for one partition (-1 when none), or an error code."""

    partition_index: int = field(INT32)
    error_code: int = field(INT16)
    timestamp: int = field(INT64, default=-1)
    offset: int = field(INT64, default=-1)
    leader_epoch: int = field(INT32, versions="4+", default=-1)


@dataclass(frozen=True, slots=True)
class ListOffsetsTopicResponse:
    name: str = field(STRING)
    partitions: list[ListOffsetsPartitionResponse] = field(
        Array(Struct(ListOffsetsPartitionResponse)), default_factory=list
    )


@dataclass(frozen=True, slots=True)
class ListOffsetsResponse(Message):
    API_KEY: ClassVar[int] = 2
    VERSIONS: ClassVar[tuple[int, int]] = (1, 7)
    FLEXIBLE_FROM: ClassVar[int] = 6

    throttle_time_ms: int = field(INT32, versions="2+", default=0)
    topics: list[ListOffsetsTopicResponse] = field(
        Array(Struct(ListOffsetsTopicResponse)), default_factory=list
    )
