"""A kafka_sink plugin: a serializer that masks secrets, and a router for audit records.

kafka_sink calls each hook below once, when a handler is built, and keeps the
function it returns; only that function runs for each record. A hook returns
None for what it does not provide, and the built-ins (or other plugins) answer.

``serializer="redacted-json"``
    JSON with the record's level, logger, message and ``extra`` fields, where
    the fields named in ``serializer_options={"fields": [...]}`` (default:
    ``password``, ``card_number``, ``token``) are written as ``"***"``.
Audit records
    A record logged with ``extra={"audit": True}`` goes to the ``audit-logs``
    topic instead of the handler's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import kafka_sink
from kafka_sink.hooks.specs import Kind, LogSerializer, TopicFunction

__all__ = ["AUDIT_TOPIC", "MASK", "RedactingSerializer"]

AUDIT_TOPIC = "audit-logs"
MASK = "***"
_SECRETS = ("password", "card_number", "token")
# What every LogRecord has: anything else came from ``extra=``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


@kafka_sink.hookimpl
def kafka_sink_log_serializer(name: str, options: Mapping[str, Any]) -> LogSerializer | None:
    if name != "redacted-json":
        return None
    return RedactingSerializer(options.get("fields", _SECRETS))


@kafka_sink.hookimpl
def kafka_sink_record_topic(kind: Kind) -> TopicFunction | None:
    if kind != "log":
        return None
    return lambda record: AUDIT_TOPIC if getattr(record, "audit", False) else None


class RedactingSerializer:
    """A log record as JSON, with secret fields masked."""

    __slots__ = ("_secrets",)

    def __init__(self, fields: Iterable[str]) -> None:
        self._secrets = frozenset(fields)

    def __call__(self, record: logging.LogRecord) -> bytes:
        out: dict[str, Any] = {
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD:
                out[name] = MASK if name in self._secrets else value
        return json.dumps(out, default=str).encode("utf-8")
