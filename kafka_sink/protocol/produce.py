"""Produce (key 0): append record batches to partitions.

Kafka protocol guide, "Produce". The library speaks v3 to v11: v3+ carry
RecordBatch v2 (magic 2) only, v7+ accept zstd, v8+ report per-record errors,
v9+ are flexible, v10+ may name the new leader of a partition in a tagged
field (KIP-951). With ``acks=0`` the broker sends no response at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from kafka_sink.protocol.schema import (
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
    "BatchIndexAndErrorMessage",
    "LeaderIdAndEpoch",
    "NodeEndpoint",
    "PartitionProduceData",
    "PartitionProduceResponse",
    "ProduceRequest",
    "ProduceResponse",
    "TopicProduceData",
    "TopicProduceResponse",
]

#: The first Produce version that accepts zstd-compressed batches.
ZSTD_MIN_VERSION = 7


@dataclass(frozen=True, slots=True)
class PartitionProduceData:
    """The encoded record batches for one partition."""

    index: int = field(INT32)
    records: bytes | bytearray | memoryview | None = field(RECORDS)


@dataclass(frozen=True, slots=True)
class TopicProduceData:
    name: str = field(STRING)
    partition_data: list[PartitionProduceData] = field(Array(Struct(PartitionProduceData)))


@dataclass(frozen=True, slots=True)
class ProduceRequest(Request["ProduceResponse | None"]):
    """Append batches; ``acks`` is 0 (no answer), 1 (leader) or -1 (all in-sync replicas)."""

    API_KEY: ClassVar[int] = 0
    VERSIONS: ClassVar[tuple[int, int]] = (3, 11)
    FLEXIBLE_FROM: ClassVar[int] = 9

    transactional_id: str | None = field(NULLABLE_STRING, versions="3+", default=None)
    acks: int = field(INT16, default=1)
    timeout_ms: int = field(INT32, default=1500)
    topic_data: list[TopicProduceData] = field(
        Array(Struct(TopicProduceData)), default_factory=list
    )

    def expects_response(self) -> bool:
        return self.acks != 0


@dataclass(frozen=True, slots=True)
class BatchIndexAndErrorMessage:
    """Which record of a batch made the broker reject it, and why (v8+)."""

    batch_index: int = field(INT32)
    batch_index_error_message: str | None = field(NULLABLE_STRING, default=None)


@dataclass(frozen=True, slots=True)
class LeaderIdAndEpoch:
    leader_id: int = field(INT32, default=-1)
    leader_epoch: int = field(INT32, default=-1)


@dataclass(frozen=True, slots=True)
class PartitionProduceResponse:
    """The outcome for one partition: error code and the offset of the first record."""

    index: int = field(INT32)
    error_code: int = field(INT16)
    base_offset: int = field(INT64)
    log_append_time_ms: int = field(INT64, versions="2+", default=-1)
    log_start_offset: int = field(INT64, versions="5+", default=-1)
    record_errors: list[BatchIndexAndErrorMessage] = field(
        Array(Struct(BatchIndexAndErrorMessage)), versions="8+", default_factory=list
    )
    error_message: str | None = field(NULLABLE_STRING, versions="8+", default=None)
    current_leader: LeaderIdAndEpoch | None = field(
        Struct(LeaderIdAndEpoch), versions="10+", tag=0, default=None
    )


@dataclass(frozen=True, slots=True)
class TopicProduceResponse:
    name: str = field(STRING)
    partition_responses: list[PartitionProduceResponse] = field(
        Array(Struct(PartitionProduceResponse))
    )


@dataclass(frozen=True, slots=True)
class NodeEndpoint:
    node_id: int = field(INT32)
    host: str = field(STRING)
    port: int = field(INT32)
    rack: str | None = field(NULLABLE_STRING, default=None)


@dataclass(frozen=True, slots=True)
class ProduceResponse(Message):
    API_KEY: ClassVar[int] = 0
    VERSIONS: ClassVar[tuple[int, int]] = (3, 11)
    FLEXIBLE_FROM: ClassVar[int] = 9

    responses: list[TopicProduceResponse] = field(
        Array(Struct(TopicProduceResponse)), default_factory=list
    )
    throttle_time_ms: int = field(INT32, versions="1+", default=0)
    node_endpoints: list[NodeEndpoint] | None = field(
        Array(Struct(NodeEndpoint)), versions="10+", tag=0, default=None
    )
