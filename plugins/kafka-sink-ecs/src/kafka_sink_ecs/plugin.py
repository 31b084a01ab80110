"""The hook implementations kafka_sink finds through the ``kafka_sink`` entry point.

Both factories answer to the name ``"ecs"`` and return None for any other,
so the other serializers stay available next to this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafka_sink import hookimpl
from kafka_sink.hooks.specs import EventSerializer, LogSerializer

from kafka_sink_ecs.options import EcsOptions
from kafka_sink_ecs.serializer import EcsEventSerializer, EcsLogSerializer

__all__ = ["NAME", "kafka_sink_event_serializer", "kafka_sink_log_serializer"]

#: The serializer name to choose: ``serializer="ecs"``.
NAME = "ecs"


@hookimpl
def kafka_sink_log_serializer(name: str, options: Mapping[str, Any]) -> LogSerializer | None:
    """The ECS serializer for log records, when ``name`` is ``"ecs"``."""
    if name != NAME:
        return None
    return EcsLogSerializer(EcsOptions.from_mapping(options))


@hookimpl
def kafka_sink_event_serializer(name: str, options: Mapping[str, Any]) -> EventSerializer | None:
    """The ECS serializer for structlog event dicts, when ``name`` is ``"ecs"``."""
    if name != NAME:
        return None
    return EcsEventSerializer(EcsOptions.from_mapping(options))
