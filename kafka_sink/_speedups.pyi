# The compiled hot path (kafka_sink/_speedups.c); each name mirrors its
# pure-Python reference, named beside it.
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from kafka_sink.protocol.codecs import Compression

def configure(*, records: ModuleType, invalid_argument: type[Exception]) -> None: ...
def bind_slots(batch_type: type, future_type: type) -> None: ...
def crc32c(data: bytes, crc: int = 0) -> int: ...
def plain_json(value: object) -> bool: ...
def murmur2(data: bytes) -> int: ...
def partition_for_key(key: bytes, num_partitions: int) -> int: ...

class BatchBuilder:  # kafka_sink.protocol.records.PureBatchBuilder
    def __init__(
        self,
        compression: Compression | str | int = ...,
        max_bytes: int = ...,
        compression_level: int | None = ...,
    ) -> None: ...
    compression: Compression
    max_bytes: int
    record_count: int
    size_in_bytes: int
    first_timestamp: int | None
    max_timestamp: int | None
    def __len__(self) -> int: ...
    def append(
        self,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes | None]] = ...,
    ) -> bool: ...
    def build(
        self,
        producer_id: int = ...,
        producer_epoch: int = ...,
        base_sequence: int = ...,
        transactional: bool = ...,
    ) -> bytes: ...

def __getattr__(name: str) -> Any: ...
