"""What the plugin's tests share: the protobuf oracle, an SDK pipeline per signal, reading back.

The oracle for a message's value is opentelemetry-proto's request classes:
``otlp_proto`` values are parsed with ``FromString``; ``otlp_json`` values
with protobuf's own JSON parser in strict mode (``ignore_unknown_fields=False``:
a misspelt field, a wrong type or a malformed 64-bit integer fails), after
turning the hex trace and span ids of OTLP/JSON into the base64 that
protobuf's JSON mapping expects. The parsed request is then written back
with the plugin's encoder and must give the very same bytes, so nothing
was dropped, added or reordered on the way.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk._logs import LoggingHandler
from tests.oracle import ConsumedRecord, consume

from kafka_sink_otel import to_otlp_json

REQUESTS: dict[str, type[Message]] = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}
_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})


def _ids_to_base64(node: Any) -> None:
    if isinstance(node, dict):
        for name, value in node.items():
            if name in _ID_FIELDS and isinstance(value, str):
                node[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            else:
                _ids_to_base64(value)
    elif isinstance(node, list):
        for value in node:
            _ids_to_base64(value)


def parse_json(value: bytes, signal: str) -> Any:
    """A strict parse of an ``otlp_json`` value; fails unless it is exactly OTLP/JSON."""
    document = json.loads(value.decode("utf-8"))  # strict UTF-8 too
    _ids_to_base64(document)
    message = REQUESTS[signal]()
    json_format.Parse(json.dumps(document), message, ignore_unknown_fields=False)
    assert to_otlp_json(message) == value, "the value does not round-trip exactly"
    return message


def parse(value: bytes, encoding: str, signal: str) -> Any:
    """The request a message's value holds."""
    if encoding == "otlp_json":
        return parse_json(value, signal)
    message = REQUESTS[signal]()
    message.ParseFromString(value)
    assert message.SerializeToString() == value
    return message


def python_value(value: AnyValue) -> Any:
    """An AnyValue as the Python value the SDK was given."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(python_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(pairs: Any) -> dict[str, Any]:
    """KeyValue pairs as a dict (sequences as tuples, as the SDK keeps them)."""
    found: dict[str, Any] = {}
    for pair in pairs:
        assert isinstance(pair, KeyValue)
        found[pair.key] = python_value(pair.value)
    return found


@dataclass(frozen=True)
class Item:
    """One span, log record or metric read back, with the message it came in."""

    record: ConsumedRecord | None
    resource: dict[str, Any]
    scope: str
    value: Any

    @property
    def consumed(self) -> ConsumedRecord:
        """``record``, for an item read back from Kafka (one parsed in-process has none)."""
        assert self.record is not None, "the item was not read back from Kafka"
        return self.record


_PATHS = {
    "traces": ("resource_spans", "scope_spans", "spans"),
    "logs": ("resource_logs", "scope_logs", "log_records"),
    "metrics": ("resource_metrics", "scope_metrics", "metrics"),
}


def items(request: Any, signal: str, record: ConsumedRecord | None = None) -> Iterator[Item]:
    """The spans, log records or metrics of a request (read in ``record``, if from Kafka)."""
    resources, scopes, leaves = _PATHS[signal]
    for resource in getattr(request, resources):
        for scope in getattr(resource, scopes):
            for leaf in getattr(scope, leaves):
                yield Item(record, attributes(resource.resource.attributes), scope.scope.name, leaf)


def read_back(
    bootstrap_servers: str, topic: str, expected: int, encoding: str, signal: str
) -> list[Item]:
    """Exactly ``expected`` messages of ``topic``, by the oracle consumer; their items."""
    records = consume(bootstrap_servers, topic, expected=expected)
    found: list[Item] = []
    for record in records:
        assert record.value is not None
        found.extend(items(parse(record.value, encoding, signal), signal, record))
    return found


@contextlib.contextmanager
def logging_bridge(provider: Any, name: str) -> Iterator[logging.Logger]:
    """The stdlib logger ``name``, bridged to ``provider`` by the SDK's LoggingHandler only."""
    with warnings.catch_warnings():
        # The SDK's handler is deprecated in favour of the one of
        # opentelemetry-instrumentation-logging; both feed the provider's
        # processors the same way, and the SDK's needs no other package.
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
