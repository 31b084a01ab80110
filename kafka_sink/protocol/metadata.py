"""Metadata (key 3): brokers, topics, partitions and their leaders.

Kafka protocol guide, "Metadata". The library speaks v1 to v12; v9+ are flexible.
A null topic list (v1+) asks for every topic; ``allow_auto_topic_creation``
(v4+) lets a broker configured with ``auto.create.topics.enable`` create the
requested topics.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar

from kafka_sink.protocol.schema import (
    BOOL,
    INT16,
    INT32,
    NULLABLE_STRING,
    STRING,
    UUID,
    Array,
    Message,
    Request,
    Struct,
    field,
)

__all__ = [
    "BrokerMetadata",
    "MetadataRequest",
    "MetadataRequestTopic",
    "MetadataResponse",
    "PartitionMetadata",
    "TopicMetadata",
]

_AUTHORIZED_OPS_UNKNOWN = -(2**31)


@dataclass(frozen=True, slots=True)
class MetadataRequestTopic:
    # Wire order: the topic id (v10+) comes before the name.
    topic_id: uuid.UUID | None = field(UUID, versions="10+", default=None)
    name: str | None = field(NULLABLE_STRING, default=None)


@dataclass(frozen=True, slots=True)
class MetadataRequest(Request["MetadataResponse"]):
    """Ask for metadata of ``topics`` (None: every topic)."""

    API_KEY: ClassVar[int] = 3
    VERSIONS: ClassVar[tuple[int, int]] = (1, 12)
    FLEXIBLE_FROM: ClassVar[int] = 9

    topics: list[MetadataRequestTopic] | None = field(
        Array(Struct(MetadataRequestTopic), nullable=True)
    )
    allow_auto_topic_creation: bool = field(BOOL, versions="4+", default=True)
    include_cluster_authorized_operations: bool = field(BOOL, versions="8-10", default=False)
    include_topic_authorized_operations: bool = field(BOOL, versions="8+", default=False)

    @classmethod
    def for_topics(
        cls, topics: list[str] | None, allow_auto_topic_creation: bool = False
    ) -> MetadataRequest:
        """A request for the named topics (None: every topic)."""
        return cls(
            None if topics is None else [MetadataRequestTopic(name=t) for t in topics],
            allow_auto_topic_creation,
        )


@dataclass(frozen=True, slots=True)
class BrokerMetadata:
    """One broker of the cluster."""

    node_id: int = field(INT32)
    host: str = field(STRING)
    port: int = field(INT32)
    rack: str | None = field(NULLABLE_STRING, versions="1+", default=None)


@dataclass(frozen=True, slots=True)
class PartitionMetadata:
    """One partition: its leader (-1 when none), replicas and in-sync replicas."""

    error_code: int = field(INT16)
    partition_index: int = field(INT32)
    leader_id: int = field(INT32)
    leader_epoch: int = field(INT32, versions="7+", default=-1)
    replica_nodes: list[int] = field(Array(INT32), default_factory=list)
    isr_nodes: list[int] = field(Array(INT32), default_factory=list)
    offline_replicas: list[int] = field(Array(INT32), versions="5+", default_factory=list)


@dataclass(frozen=True, slots=True)
class TopicMetadata:
    """One topic and its partitions, or the error that prevents describing it."""

    error_code: int = field(INT16)
    name: str | None = field(NULLABLE_STRING)
    topic_id: uuid.UUID | None = field(UUID, versions="10+", default=None)
    is_internal: bool = field(BOOL, versions="1+", default=False)
    partitions: list[PartitionMetadata] = field(
        Array(Struct(PartitionMetadata)), default_factory=list
    )
    topic_authorized_operations: int = field(INT32, versions="8+", default=_AUTHORIZED_OPS_UNKNOWN)


@dataclass(frozen=True, slots=True)
class MetadataResponse(Message):
    """The cluster as one broker sees it."""

    API_KEY: ClassVar[int] = 3
    VERSIONS: ClassVar[tuple[int, int]] = (1, 12)
    FLEXIBLE_FROM: ClassVar[int] = 9

    throttle_time_ms: int = field(INT32, versions="3+", default=0)
    brokers: list[BrokerMetadata] = field(Array(Struct(BrokerMetadata)), default_factory=list)
    cluster_id: str | None = field(NULLABLE_STRING, versions="2+", default=None)
    controller_id: int = field(INT32, versions="1+", default=-1)
    topics: list[TopicMetadata] = field(Array(Struct(TopicMetadata)), default_factory=list)
    cluster_authorized_operations: int = field(
        INT32, versions="8-10", default=_AUTHORIZED_OPS_UNKNOWN
    )
