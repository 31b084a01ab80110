"""CreateTopics (key 19): create topics, used by tests and tools.

Kafka protocol guide, "CreateTopics". The request must go to the controller
(Metadata's ``controller_id``); v5+ are flexible.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar

from kafka_sink.protocol.schema import (
    BOOL,
    INT8,
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
    "CreatableTopic",
    "CreatableTopicConfig",
    "CreatableTopicResult",
    "CreateTopicsRequest",
    "CreateTopicsResponse",
]


@dataclass(frozen=True, slots=True)
class CreatableReplicaAssignment:
    partition_index: int = field(INT32)
    broker_ids: list[int] = field(Array(INT32))


@dataclass(frozen=True, slots=True)
class CreatableTopicConfig:
    name: str = field(STRING)
    value: str | None = field(NULLABLE_STRING)


@dataclass(frozen=True, slots=True)
class CreatableTopic:
    """A topic to create; -1 partitions / replication factor take the broker's default (v4+)."""

    name: str = field(STRING)
    num_partitions: int = field(INT32, default=-1)
    replication_factor: int = field(INT16, default=-1)
    assignments: list[CreatableReplicaAssignment] = field(
        Array(Struct(CreatableReplicaAssignment)), default_factory=list
    )
    configs: list[CreatableTopicConfig] = field(
        Array(Struct(CreatableTopicConfig)), default_factory=list
    )


@dataclass(frozen=True, slots=True)
class CreateTopicsRequest(Request["CreateTopicsResponse"]):
    API_KEY: ClassVar[int] = 19
    VERSIONS: ClassVar[tuple[int, int]] = (0, 7)
    FLEXIBLE_FROM: ClassVar[int] = 5

    topics: list[CreatableTopic] = field(Array(Struct(CreatableTopic)))
    timeout_ms: int = field(INT32, default=60000)
    validate_only: bool = field(BOOL, versions="1+", default=False)


@dataclass(frozen=True, slots=True)
class CreatableTopicConfigs:
    name: str = field(STRING)
    value: str | None = field(NULLABLE_STRING)
    read_only: bool = field(BOOL)
    config_source: int = field(INT8, default=-1)
    is_sensitive: bool = field(BOOL, default=False)


@dataclass(frozen=True, slots=True)
class CreatableTopicResult:
    name: str = field(STRING)
    topic_id: uuid.UUID | None = field(UUID, versions="7+", default=None)
    error_code: int = field(INT16, default=0)
    error_message: str | None = field(NULLABLE_STRING, versions="1+", default=None)
    topic_config_error_code: int = field(INT16, versions="5+", tag=0, default=0)
    num_partitions: int = field(INT32, versions="5+", default=-1)
    replication_factor: int = field(INT16, versions="5+", default=-1)
    configs: list[CreatableTopicConfigs] | None = field(
        Array(Struct(CreatableTopicConfigs), nullable=True), versions="5+", default=None
    )


@dataclass(frozen=True, slots=True)
class CreateTopicsResponse(Message):
    API_KEY: ClassVar[int] = 19
    VERSIONS: ClassVar[tuple[int, int]] = (0, 7)
    FLEXIBLE_FROM: ClassVar[int] = 5

    throttle_time_ms: int = field(INT32, versions="2+", default=0)
    topics: list[CreatableTopicResult] = field(
        Array(Struct(CreatableTopicResult)), default_factory=list
    )
