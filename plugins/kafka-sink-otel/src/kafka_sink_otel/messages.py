"""From one OTLP export request to the Kafka messages the Collector would write for it.

The SDK's OTLP encoders (``opentelemetry-exporter-otlp-proto-common``) turn
a batch into one ``Export{Trace,Logs,Metrics}ServiceRequest``, exactly what
the OTLP exporters send. :func:`plan` then splits that request the way the
Collector's Kafka exporter does, into messages that each hold a valid
request of their own:

* by destination topic, when ``topic_from_attribute`` names a resource
  attribute (each resource goes to the topic it names, or to the signal's);
* by key: one message per trace id (``partition_traces_by_id``,
  ``partition_logs_by_trace_id``) or per resource
  (``partition_*_by_resource_attributes``), keyed as the Collector keys them;
* by size: a request whose encoding exceeds the limit is halved, and halved
  again, until each part fits or holds a single span, log record or metric.

Each part keeps its items' resource and scope (copied whole: attributes,
schema URL, dropped counts), and items keep their order. A request that
needs no splitting is written as it came, without a copy.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from kafka_sink_otel.hashing import resource_attributes_key
from kafka_sink_otel.options import Encoding, ExporterOptions, Signal

__all__ = ["SHAPES", "KafkaMessage", "Shape", "encoder", "plan", "to_otlp_json"]


@dataclass(frozen=True, slots=True)
class Shape:
    """Where the items of a signal's request are: request.<resources>[].<scopes>[].<items>[]."""

    request: type[Message]
    resources: str
    scopes: str
    items: str

    def count(self, item: Any) -> int:
        """What the exporter's statistics count of an item: 1, or a metric's data points."""
        if self.items != "metrics":
            return 1
        kind = item.WhichOneof("data")
        return len(getattr(item, kind).data_points) if kind else 0


SHAPES: dict[Signal, Shape] = {
    "traces": Shape(ExportTraceServiceRequest, "resource_spans", "scope_spans", "spans"),
    "logs": Shape(ExportLogsServiceRequest, "resource_logs", "scope_logs", "log_records"),
    "metrics": Shape(ExportMetricsServiceRequest, "resource_metrics", "scope_metrics", "metrics"),
}


@dataclass(frozen=True, slots=True)
class KafkaMessage:
    """One message to produce: its topic, key and value, and the items it holds."""

    topic: str
    key: bytes | None
    value: bytes
    items: int


# One item of a request: (resource index, scope index, the item).
_Leaf = tuple[int, int, Any]

# The OTLP/JSON encoding writes these bytes fields in hex, where protobuf's
# JSON mapping writes base64 (spans, links, log records, exemplars).
_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})


def _hex_ids(node: Any) -> None:
    if isinstance(node, dict):
        for name, value in node.items():
            if name in _ID_FIELDS and isinstance(value, str):
                node[name] = base64.b64decode(value).hex()
            else:
                _hex_ids(value)
    elif isinstance(node, list):
        for value in node:
            _hex_ids(value)


def to_otlp_json(message: Message) -> bytes:
    """``message`` in the OTLP/JSON encoding, as the Collector writes ``otlp_json``.

    Protobuf's JSON mapping (lowerCamelCase names, 64-bit integers as
    decimal strings, default values left out) with enums as integers and
    trace and span ids as hex, as the OTLP specification requires; compact,
    UTF-8.
    """
    document = json_format.MessageToDict(message, use_integers_for_enums=True)
    _hex_ids(document)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _to_proto(message: Message) -> bytes:
    return message.SerializeToString()


def encoder(encoding: Encoding) -> Callable[[Message], bytes]:
    """The function that writes a request in ``encoding``."""
    return _to_proto if encoding == "otlp_proto" else to_otlp_json


def _topic_of(resource: Resource, attribute: str | None, default: str) -> str:
    if attribute is not None:
        for pair in resource.attributes:
            # As in the Collector: only a non-empty string names a topic.
            if pair.key == attribute and pair.value.WhichOneof("value") == "string_value":
                if pair.value.string_value:
                    return pair.value.string_value
                break
    return default


class _Parts:
    """Builds requests from some of the items of one request, copying resources and scopes."""

    def __init__(self, shape: Shape, request: Message) -> None:
        self._shape = shape
        self._resources: Sequence[Any] = getattr(request, shape.resources)
        self._resource_shells: dict[int, Any] = {}
        self._scope_shells: dict[tuple[int, int], Any] = {}

    def _resource_shell(self, index: int) -> Any:
        shell = self._resource_shells.get(index)
        if shell is None:
            source = self._resources[index]
            shell = type(source)()
            shell.CopyFrom(source)
            shell.ClearField(self._shape.scopes)
            self._resource_shells[index] = shell
        return shell

    def _scope_shell(self, resource: int, scope: int) -> Any:
        shell = self._scope_shells.get((resource, scope))
        if shell is None:
            source = getattr(self._resources[resource], self._shape.scopes)[scope]
            shell = type(source)()
            shell.CopyFrom(source)
            shell.ClearField(self._shape.items)
            self._scope_shells[resource, scope] = shell
        return shell

    def build(self, leaves: Sequence[_Leaf]) -> Message:
        shape = self._shape
        request = shape.request()
        resources = getattr(request, shape.resources)
        last_resource = last_scope = -1
        scopes: Any = None
        items: Any = None
        for resource_index, scope_index, item in leaves:
            if resource_index != last_resource:
                resource = resources.add()
                resource.CopyFrom(self._resource_shell(resource_index))
                scopes = getattr(resource, shape.scopes)
                last_resource, last_scope = resource_index, -1
            if scope_index != last_scope:
                scope = scopes.add()
                scope.CopyFrom(self._scope_shell(resource_index, scope_index))
                items = getattr(scope, shape.items)
                last_scope = scope_index
            items.append(item)
        return request


def _leaves(shape: Shape, request: Message) -> Iterator[_Leaf]:
    for resource_index, resource in enumerate(getattr(request, shape.resources)):
        for scope_index, scope in enumerate(getattr(resource, shape.scopes)):
            for item in getattr(scope, shape.items):
                yield resource_index, scope_index, item


def plan(
    shape: Shape, request: Message, options: ExporterOptions, limit: int
) -> list[KafkaMessage]:
    """The messages of ``request``: split by topic, key and size (``limit`` bytes), encoded."""
    encode = encoder(options.encoding)
    resources: Sequence[Any] = getattr(request, shape.resources)
    topics = [_topic_of(r.resource, options.topic_from_attribute, options.topic) for r in resources]
    resource_keys: list[bytes | None] = [
        resource_attributes_key(r.resource.attributes)
        if options.key == "resource_attributes"
        else None
        for r in resources
    ]
    by_trace = options.key == "trace_id"
    groups: dict[tuple[str, bytes | None], list[_Leaf]] = {}
    for leaf in _leaves(shape, request):
        resource_index = leaf[0]
        if by_trace:
            trace_id: bytes = leaf[2].trace_id
            # Log records outside any trace get no key, as in the Collector.
            key = trace_id.hex().encode("ascii") if trace_id else None
        else:
            key = resource_keys[resource_index]
        groups.setdefault((topics[resource_index], key), []).append(leaf)
    parts = _Parts(shape, request)
    messages: list[KafkaMessage] = []
    for (topic, key), leaves in groups.items():
        whole = request if len(groups) == 1 else None
        for value, items in _fit(shape, parts, leaves, encode, limit, whole):
            messages.append(KafkaMessage(topic, key, value, items))
    return messages


def _fit(
    shape: Shape,
    parts: _Parts,
    leaves: Sequence[_Leaf],
    encode: Callable[[Message], bytes],
    limit: int,
    whole: Message | None = None,
) -> Iterator[tuple[bytes, int]]:
    """Encoded parts of ``leaves``, each within ``limit`` bytes unless it holds a single item."""
    value = encode(whole if whole is not None else parts.build(leaves))
    if len(value) <= limit or len(leaves) == 1:
        yield value, sum(shape.count(item) for _, _, item in leaves)
        return
    middle = len(leaves) // 2
    yield from _fit(shape, parts, leaves[:middle], encode, limit)
    yield from _fit(shape, parts, leaves[middle:], encode, limit)
