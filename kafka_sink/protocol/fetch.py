"""Fetch (key 1): read record batches from partitions, from a given offset.

Kafka protocol guide, "Fetch"; KIP-74 (v3: ``max_bytes`` bounds the whole
response), KIP-98 (v4: isolation level, aborted transactions), KIP-227 (v7:
fetch sessions), KIP-392 (v11: preferred read replica) and KIP-482 (v12:
flexible). The library speaks v4 to v12: v4 is the first version that
carries only RecordBatch v2 (magic 2) and v13+ name topics by id instead of
by name.

The broker answers as soon as ``min_bytes`` are available or after
``max_wait_ms``, whichever comes first, so a consumer that is caught up
long-polls. ``max_bytes`` and ``partition_max_bytes`` are soft limits: the
first batch of the first non-empty partition is returned whole even when it
is larger, so a consumer always makes progress. The other partitions'
``records`` are cut at their limit, so their last batch may be partial;
:meth:`FetchPartitionResponse.batches` skips such a tail. A batch may also
start before the offset asked for (a compressed batch is returned whole):
the reader skips the records before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from kafka_sink.protocol.list_offsets import READ_UNCOMMITTED
from kafka_sink.protocol.produce import LeaderIdAndEpoch
from kafka_sink.protocol.records import (
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    RecordBatch,
    decode_batches,
)
from kafka_sink.protocol.schema import (
    INT8,
    INT16,
    INT32,
    INT64,
    NULLABLE_STRING,
    RECORDS,
    STRING,
    Array,
    Message,
    Request,
    Struct,
    field,
)

__all__ = [
    "AbortedTransaction",
    "EpochEndOffset",
    "FetchPartition",
    "FetchPartitionResponse",
    "FetchRequest",
    "FetchResponse",
    "FetchTopic",
    "FetchTopicResponse",
    "ForgottenTopic",
    "SnapshotId",
]

_INT32_MAX = 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class FetchPartition:
    """Where to read one partition from, and how many bytes of it at most."""

    partition: int = field(INT32)
    current_leader_epoch: int = field(INT32, versions="9+", default=-1)
    fetch_offset: int = field(INT64, default=0)
    last_fetched_epoch: int = field(INT32, versions="12+", default=-1)
    # Only followers fill this in; consumers send -1.
    log_start_offset: int = field(INT64, versions="5+", default=-1)
    partition_max_bytes: int = field(INT32, default=1 << 20)


@dataclass(frozen=True, slots=True)
class FetchTopic:
    topic: str = field(STRING)
    partitions: list[FetchPartition] = field(Array(Struct(FetchPartition)), default_factory=list)


@dataclass(frozen=True, slots=True)
class ForgottenTopic:
    """Partitions to drop from an incremental fetch session (v7+)."""

    topic: str = field(STRING)
    partitions: list[int] = field(Array(INT32), default_factory=list)


@dataclass(frozen=True, slots=True)
class FetchRequest(Request["FetchResponse"]):
    """Read from the listed partitions.

    The defaults describe a plain consumer outside any fetch session
    (``session_id`` 0, ``session_epoch`` -1: a full fetch each time) that sees
    every record (``READ_UNCOMMITTED``).

    Example::

        >>> request = FetchRequest.for_partitions("logs", {0: 42, 1: 7}, max_wait_ms=500)
        >>> [(p.partition, p.fetch_offset) for p in request.topics[0].partitions]
        [(0, 42), (1, 7)]
    """

    API_KEY: ClassVar[int] = 1
    VERSIONS: ClassVar[tuple[int, int]] = (4, 12)
    FLEXIBLE_FROM: ClassVar[int] = 12

    cluster_id: str | None = field(NULLABLE_STRING, versions="12+", tag=0, default=None)
    replica_id: int = field(INT32, default=-1)
    max_wait_ms: int = field(INT32, default=500)
    min_bytes: int = field(INT32, default=1)
    max_bytes: int = field(INT32, versions="3+", default=_INT32_MAX)
    isolation_level: int = field(INT8, versions="4+", default=READ_UNCOMMITTED)
    session_id: int = field(INT32, versions="7+", default=0)
    session_epoch: int = field(INT32, versions="7+", default=-1)
    topics: list[FetchTopic] = field(Array(Struct(FetchTopic)), default_factory=list)
    forgotten_topics_data: list[ForgottenTopic] = field(
        Array(Struct(ForgottenTopic)), versions="7+", default_factory=list
    )
    rack_id: str = field(STRING, versions="11+", default="")

    @classmethod
    def for_partitions(
        cls,
        topic: str,
        offsets: dict[int, int],
        *,
        max_wait_ms: int = 500,
        min_bytes: int = 1,
        max_bytes: int = 50 << 20,
        partition_max_bytes: int = 1 << 20,
        isolation_level: int = READ_UNCOMMITTED,
    ) -> FetchRequest:
        """A request reading each partition of ``offsets`` from its offset, in that order."""
        partitions = [
            FetchPartition(p, fetch_offset=o, partition_max_bytes=partition_max_bytes)
            for p, o in offsets.items()
        ]
        return cls(
            max_wait_ms=max_wait_ms,
            min_bytes=min_bytes,
            max_bytes=max_bytes,
            isolation_level=isolation_level,
            topics=[FetchTopic(topic, partitions)],
        )


@dataclass(frozen=True, slots=True)
class EpochEndOffset:
    epoch: int = field(INT32, default=-1)
    end_offset: int = field(INT64, default=-1)


@dataclass(frozen=True, slots=True)
class SnapshotId:
    end_offset: int = field(INT64, default=-1)
    epoch: int = field(INT32, default=-1)


@dataclass(frozen=True, slots=True)
class AbortedTransaction:
    """A transaction of ``producer_id`` aborted after ``first_offset`` (READ_COMMITTED)."""

    producer_id: int = field(INT64)
    first_offset: int = field(INT64)


@dataclass(frozen=True, slots=True)
class FetchPartitionResponse:
    """What one partition returned: an error code, its watermarks and record batches."""

    partition_index: int = field(INT32)
    error_code: int = field(INT16)
    high_watermark: int = field(INT64)
    last_stable_offset: int = field(INT64, versions="4+", default=-1)
    log_start_offset: int = field(INT64, versions="5+", default=-1)
    diverging_epoch: EpochEndOffset | None = field(
        Struct(EpochEndOffset), versions="12+", tag=0, default=None
    )
    current_leader: LeaderIdAndEpoch | None = field(
        Struct(LeaderIdAndEpoch), versions="12+", tag=1, default=None
    )
    snapshot_id: SnapshotId | None = field(Struct(SnapshotId), versions="12+", tag=2, default=None)
    aborted_transactions: list[AbortedTransaction] | None = field(
        Array(Struct(AbortedTransaction), nullable=True), versions="4+", default=None
    )
    preferred_read_replica: int = field(INT32, versions="11+", default=-1)
    records: bytes | None = field(RECORDS, default=None)

    def batches(
        self,
        *,
        verify_crc: bool = True,
        max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
    ) -> list[RecordBatch]:
        """The complete record batches of ``records``, decompressed (every codec).

        A partial batch at the end (the response's size limit cut it) is
        left out; anything else malformed raises
        :class:`~kafka_sink.errors.ProtocolError`.
        """
        if not self.records:
            return []
        return decode_batches(
            self.records,
            verify_crc=verify_crc,
            max_decompressed_bytes=max_decompressed_bytes,
            allow_partial_tail=True,
        )


@dataclass(frozen=True, slots=True)
class FetchTopicResponse:
    topic: str = field(STRING)
    partitions: list[FetchPartitionResponse] = field(
        Array(Struct(FetchPartitionResponse)), default_factory=list
    )


@dataclass(frozen=True, slots=True)
class FetchResponse(Message):
    """The answer to a Fetch: a top-level error (v7+) and each partition's data."""

    API_KEY: ClassVar[int] = 1
    VERSIONS: ClassVar[tuple[int, int]] = (4, 12)
    FLEXIBLE_FROM: ClassVar[int] = 12

    throttle_time_ms: int = field(INT32, default=0)
    error_code: int = field(INT16, versions="7+", default=0)
    session_id: int = field(INT32, versions="7+", default=0)
    responses: list[FetchTopicResponse] = field(
        Array(Struct(FetchTopicResponse)), default_factory=list
    )
