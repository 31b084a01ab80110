"""InitProducerId (key 22): a producer id and epoch for idempotent produce.

Kafka protocol guide, "InitProducerId"; KIP-98 (idempotence) and KIP-360
(v3+: bump the epoch of an existing producer id instead of taking a new one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from kafka_sink.protocol.schema import INT16, INT32, INT64, NULLABLE_STRING, Message, Request, field

__all__ = ["InitProducerIdRequest", "InitProducerIdResponse"]


@dataclass(frozen=True, slots=True)
class InitProducerIdRequest(Request["InitProducerIdResponse"]):
    """Ask for a producer id (and epoch); non-transactional when ``transactional_id`` is None."""

    API_KEY: ClassVar[int] = 22
    VERSIONS: ClassVar[tuple[int, int]] = (0, 5)
    FLEXIBLE_FROM: ClassVar[int] = 2

    transactional_id: str | None = field(NULLABLE_STRING, default=None)
    transaction_timeout_ms: int = field(INT32, default=-1)
    producer_id: int = field(INT64, versions="3+", default=-1)
    producer_epoch: int = field(INT16, versions="3+", default=-1)


@dataclass(frozen=True, slots=True)
class InitProducerIdResponse(Message):
    """The producer id and epoch granted, or an error code."""

    API_KEY: ClassVar[int] = 22
    VERSIONS: ClassVar[tuple[int, int]] = (0, 5)
    FLEXIBLE_FROM: ClassVar[int] = 2

    throttle_time_ms: int = field(INT32)
    error_code: int = field(INT16)
    producer_id: int = field(INT64, default=-1)
    producer_epoch: int = field(INT16, default=-1)
