"""Built-in partitioners: ``"murmur2"``, ``"sticky"`` and ``"round_robin"``.

Each is one of the producer's own partitioner classes
(:mod:`kafka_sink.producer.partitioner`), so a handler or processor places
records exactly as a :class:`~kafka_sink.Sink` would:

``"murmur2"`` (the default)
    Keyed records by murmur2 of the key, as the Java client and librdkafka
    do; keyless records stick to one partition until it opens a new batch.
``"sticky"``
    Every record sticks to one partition until it opens a new batch, key or
    no key: the fewest, largest batches.
``"round_robin"``
    Every record to the next partition in turn: an even spread of records.

They always choose a partition, so partitioners of plugins registered
before them (none by default) are never asked. They take no options.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kafka_sink.errors import InvalidArgumentError
from kafka_sink.hooks.specs import Kind, RecordPartitioner, hookimpl
from kafka_sink.producer.partitioner import (
    Murmur2Partitioner,
    RoundRobinPartitioner,
    StickyPartitioner,
)

__all__ = ["BUILTIN_PARTITIONERS", "kafka_sink_partitioner"]

#: The built-in partitioners by name.
BUILTIN_PARTITIONERS: Mapping[str, Callable[[], RecordPartitioner]] = {
    "murmur2": Murmur2Partitioner,
    "sticky": StickyPartitioner,
    "round_robin": RoundRobinPartitioner,
}


@hookimpl
def kafka_sink_partitioner(
    kind: Kind, name: str, options: Mapping[str, Any]
) -> RecordPartitioner | None:
    """A new instance of the built-in partitioner called ``name`` (state is per sink)."""
    factory = BUILTIN_PARTITIONERS.get(name)
    if factory is None:
        return None
    if options:
        raise InvalidArgumentError(
            f"partitioner_options.{next(iter(options))}",
            f"the built-in {name!r} partitioner takes no options",
        )
    return factory()
