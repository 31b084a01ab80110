"""From SDK batches to messages, without a broker: encodings, keys, topics, sizes, options.

The batches come from the real SDK (spans, the logging bridge, metric
instruments) through its in-memory exporters and reader, are encoded by the
SDK's OTLP encoders as the exporters do, and every message is parsed back
by the protobuf oracle of ``otel_helpers``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from kafka_sink import InvalidArgumentError, Sink
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind

from kafka_sink_otel import (
    ExporterOptions,
    KafkaLogExporter,
    KafkaMetricExporter,
    KafkaSpanExporter,
    Signal,
    resource_attributes_key,
)
from kafka_sink_otel.messages import SHAPES, KafkaMessage, plan
from otel_helpers import attributes, items, logging_bridge, parse, parse_json

LIMIT = 1_000_000


def _tracer_provider(resource: Resource) -> tuple[TracerProvider, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider, memory


def spans_of(
    traces: int, spans: int, resource: Resource | None = None, attribute_bytes: int = 0
) -> Sequence[ReadableSpan]:
    """``traces`` traces of ``spans`` spans each (a root, its children), with events and links."""
    provider, memory = _tracer_provider(resource or Resource.create({"service.name": "shop"}))
    tracer = provider.get_tracer("shop.orders", "1.2")
    previous = None
    for t in range(traces):
        links: list[Link] = [Link(previous, {"link.kind": "previous"})] if previous else []
        with tracer.start_as_current_span(
            "GET /orders", kind=SpanKind.SERVER, links=links, attributes={"order": t}
        ) as root:
            root.add_event("validated", {"items": t, "tags": ("a", "b")})
            for s in range(spans - 1):
                with tracer.start_as_current_span(f"step {s}") as child:
                    child.set_attribute("payload", "x" * attribute_bytes)
            previous = root.get_span_context()
    return memory.get_finished_spans()


def _plan(signal: Signal, request: Any, limit: int = LIMIT, **options: Any) -> list[KafkaMessage]:
    topic = {"traces": "otlp_spans", "logs": "otlp_logs", "metrics": "otlp_metrics"}[signal]
    return plan(SHAPES[signal], request, ExporterOptions(signal, topic, **options), limit)


def _spans(messages: Sequence[KafkaMessage], encoding: str = "otlp_proto") -> list[Any]:
    found = []
    for message in messages:
        for item in items(parse(message.value, encoding, "traces"), "traces"):
            found.append(item.value)
    return found


def test_otlp_json_is_strict_otlp_json_with_hex_ids() -> None:
    spans = spans_of(2, 3)
    (message,) = _plan("traces", encode_spans(spans), encoding="otlp_json")
    request = parse_json(message.value, "traces")  # strict: no unknown field, right types
    assert request == encode_spans(spans)
    document = json.loads(message.value)
    (resource_spans,) = document["resourceSpans"]
    written = {span["spanId"]: span for span in resource_spans["scopeSpans"][0]["spans"]}
    assert set(written) == {format(s.context.span_id, "016x") for s in spans}
    for span in spans:
        out = written[format(span.context.span_id, "016x")]
        assert out["traceId"] == format(span.context.trace_id, "032x")
        assert isinstance(out["startTimeUnixNano"], str)  # 64-bit integers as decimal text
        assert isinstance(out["kind"], int)  # enums as integers
        if span.parent is not None:
            assert out["parentSpanId"] == format(span.parent.span_id, "016x")
        for link, written_link in zip(span.links, out.get("links", []), strict=True):
            assert written_link["traceId"] == format(link.context.trace_id, "032x")
            assert written_link["spanId"] == format(link.context.span_id, "016x")


def test_without_a_key_one_message_is_the_request_itself() -> None:
    request = encode_spans(spans_of(3, 2))
    (message,) = _plan("traces", request)
    assert message.key is None
    assert message.value == request.SerializeToString()
    assert message.items == 6


@pytest.mark.parametrize("encoding", ["otlp_proto", "otlp_json"])
def test_one_message_per_trace_keyed_by_its_hex_id(encoding: str) -> None:
    spans = spans_of(4, 3)
    messages = _plan("traces", encode_spans(spans), key="trace_id", encoding=encoding)
    assert len(messages) == 4
    for message in messages:
        request = parse(message.value, encoding, "traces")
        (resource_spans,) = request.resource_spans
        assert attributes(resource_spans.resource.attributes)["service.name"] == "shop"
        (scope_spans,) = resource_spans.scope_spans
        assert (scope_spans.scope.name, scope_spans.scope.version) == ("shop.orders", "1.2")
        assert {span.trace_id.hex().encode() for span in scope_spans.spans} == {message.key}
        assert message.items == len(scope_spans.spans) == 3
    assert sorted(s.span_id for s in _spans(messages, encoding)) == sorted(
        s.context.span_id.to_bytes(8, "big") for s in spans
    )


def _logs(resource: Resource, traced: int, untraced: int) -> list[ReadableLogRecord]:
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]  # the SDK's has no hints
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    tracer_provider, _ = _tracer_provider(resource)
    tracer = tracer_provider.get_tracer("shop")
    with logging_bridge(provider, f"shop.{id(provider)}") as logger:
        for i in range(traced):
            with tracer.start_as_current_span(f"request {i}"):
                logger.info("served %d", i, extra={"order": i})
        for i in range(untraced):
            logger.warning("idle %d", i)
    return list(memory.get_finished_logs())


def test_logs_by_trace_id_and_logs_outside_traces_have_no_key() -> None:
    logs = _logs(Resource.create({"service.name": "shop"}), traced=3, untraced=2)
    messages = _plan("logs", encode_logs(logs), key="trace_id")
    keys = [m.key for m in messages]
    assert keys.count(None) == 1
    traced = [m for m in messages if m.key is not None]
    assert len(traced) == 3
    for message in traced:
        (record,) = [i.value for i in items(parse(message.value, "otlp_proto", "logs"), "logs")]
        assert record.trace_id.hex().encode() == message.key
        assert record.body.string_value.startswith("served")
    (untraced,) = [m for m in messages if m.key is None]
    assert untraced.items == 2


def test_logs_by_resource_attributes_one_message_per_resource() -> None:
    first = Resource.create({"service.name": "shop", "deployment.environment.name": "prod"})
    second = Resource.create({"service.name": "billing"})
    logs = _logs(first, 2, 1) + _logs(second, 1, 0)
    messages = _plan("logs", encode_logs(logs), key="resource_attributes")
    assert len(messages) == 2
    for message in messages:
        request = parse(message.value, "otlp_proto", "logs")
        (resource_logs,) = request.resource_logs
        assert message.key == resource_attributes_key(resource_logs.resource.attributes)
    assert [m.items for m in messages] == [3, 1]


def test_topic_from_a_resource_attribute_else_the_signal_topic() -> None:
    routed = Resource.create({"service.name": "a", "kafka.topic": "team-a-spans"})
    not_text = Resource.create({"service.name": "b", "kafka.topic": 7})
    empty = Resource.create({"service.name": "c", "kafka.topic": ""})
    spans = [*spans_of(1, 2, routed), *spans_of(1, 1, not_text), *spans_of(1, 1, empty)]
    messages = _plan("traces", encode_spans(spans), topic_from_attribute="kafka.topic")
    # The two resources that name no topic share a message to the signal's.
    assert sorted((m.topic, m.items) for m in messages) == [
        ("otlp_spans", 2),
        ("team-a-spans", 2),
    ]
    (default,) = [m for m in messages if m.topic == "otlp_spans"]
    request = parse(default.value, "otlp_proto", "traces")
    assert [attributes(r.resource.attributes)["service.name"] for r in request.resource_spans] == [
        "b",
        "c",
    ]
    # With keys too: each part goes to its resource's topic.
    keyed = _plan("traces", encode_spans(spans), key="trace_id", topic_from_attribute="kafka.topic")
    assert sorted(m.topic for m in keyed) == ["otlp_spans", "otlp_spans", "team-a-spans"]


@pytest.mark.parametrize("encoding", ["otlp_proto", "otlp_json"])
def test_a_large_request_is_split_into_messages_that_fit(encoding: str) -> None:
    spans = spans_of(1, 60, attribute_bytes=1000)
    request = encode_spans(spans)
    limit = 8000
    messages = _plan("traces", request, limit=limit, encoding=encoding)
    assert len(messages) > 8
    assert all(len(m.value) <= limit for m in messages)
    assert sum(m.items for m in messages) == 60
    # Every span once, in the request's order, each with its resource and scope.
    expected = list(request.resource_spans[0].scope_spans[0].spans)
    assert _spans(messages, encoding) == expected
    for message in messages:
        (resource_spans,) = parse(message.value, encoding, "traces").resource_spans
        assert resource_spans.resource == request.resource_spans[0].resource
        assert resource_spans.scope_spans[0].scope == request.resource_spans[0].scope_spans[0].scope


def test_a_single_span_larger_than_the_limit_stays_whole() -> None:
    spans = spans_of(1, 1)
    request = encode_spans(spans)
    (message,) = _plan("traces", request, limit=10)
    assert message.value == request.SerializeToString()


def _metrics() -> Any:
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        resource=Resource.create({"service.name": "shop"}),
        metric_readers=[reader],
        shutdown_on_exit=False,
    )
    meter = provider.get_meter("shop.metrics")
    requests = meter.create_counter("requests", unit="1")
    latency = meter.create_histogram("latency", unit="ms")
    for i, route in zip(range(9), itertools.cycle(["/", "/cart", "/pay"]), strict=False):
        requests.add(1, {"route": route})
        latency.record(i * 2.5, {"route": route if i % 2 else "/"})
    return reader.get_metrics_data()


def test_metric_messages_count_data_points() -> None:
    data = _metrics()
    (message,) = _plan("metrics", encode_metrics(data))
    assert message.items == 3 + 3  # three routes counted, three histogram series
    request = parse_json(
        _plan("metrics", encode_metrics(data), encoding="otlp_json")[0].value, "metrics"
    )
    assert request == encode_metrics(data)
    keyed = _plan("metrics", encode_metrics(data), key="resource_attributes")
    assert keyed[0].key == resource_attributes_key(
        encode_metrics(data).resource_metrics[0].resource.attributes
    )


@pytest.fixture
def sink() -> Iterator[Sink]:
    # Never used to send: only built and closed (no network I/O before a produce()).
    with Sink("127.0.0.1:9") as shared:
        yield shared


@pytest.mark.parametrize(
    ("factory", "arguments", "named"),
    [
        (KafkaSpanExporter, {"encoding": "otlp_xml"}, "encoding"),
        (KafkaSpanExporter, {"topic": "spaces are not allowed"}, "topic"),
        (KafkaSpanExporter, {"timeout": 0}, "timeout"),
        (KafkaSpanExporter, {"timeout": float("inf")}, "timeout"),
        (KafkaSpanExporter, {"max_message_bytes": 0}, "max_message_bytes"),
        (KafkaSpanExporter, {"partition_traces_by_id": "yes"}, "partition_traces_by_id"),
        (KafkaSpanExporter, {"topic_from_attribute": ""}, "topic_from_attribute"),
        (KafkaSpanExporter, {"record_headers": "not headers"}, "record_headers"),
        (
            KafkaLogExporter,
            {"partition_logs_by_resource_attributes": True, "partition_logs_by_trace_id": True},
            "partition_logs_by_trace_id",
        ),
        (
            KafkaMetricExporter,
            {"partition_metrics_by_resource_attributes": 1},
            "partition_metrics_by_resource_attributes",
        ),
    ],
)
def test_a_bad_option_names_itself(
    sink: Sink, factory: Any, arguments: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        factory(sink=sink, **arguments)
    assert raised.value.argument == named


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"signal": "profiles", "topic": "t"}, "signal"),
        ({"signal": "metrics", "topic": "t", "key": "trace_id"}, "key"),
        ({"signal": "traces", "topic": "t", "key": "resource_attributes"}, "key"),
        ({"signal": "logs", "topic": "", "key": "none"}, "topic"),
        ({"signal": "logs", "topic": "t", "timeout": True}, "timeout"),
        ({"signal": "logs", "topic": "t", "max_message_bytes": 1.5}, "max_message_bytes"),
    ],
)
def test_options_are_checked_when_built(arguments: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        ExporterOptions(**arguments)
    assert raised.value.argument == named


def test_options_are_frozen_values() -> None:
    options = ExporterOptions("logs", "app-logs", record_headers={"source": "shop"})
    assert options.headers == (("source", b"shop"),)
    assert options == ExporterOptions("logs", "app-logs", record_headers=[("source", "shop")])
    with pytest.raises(AttributeError):
        options.topic = "other"  # type: ignore[misc]  # read-only: the write must fail


def test_sink_or_bootstrap_servers(sink: Sink) -> None:
    with pytest.raises(InvalidArgumentError, match="bootstrap_servers"):
        KafkaSpanExporter()
    with pytest.raises(InvalidArgumentError, match="not both"):
        KafkaSpanExporter("127.0.0.1:9", sink=sink)
    with pytest.raises(InvalidArgumentError, match="configure that Sink instead") as raised:
        KafkaLogExporter(sink=sink, linger_ms=5)
    assert raised.value.argument == "linger_ms"
    with pytest.raises(InvalidArgumentError, match="not an option of Sink") as unknown:
        KafkaMetricExporter("127.0.0.1:9", lingr_ms=5)
    assert unknown.value.argument == "lingr_ms"


def test_an_owned_sink_follows_the_export_timeout_and_a_shared_one_is_left_open(
    sink: Sink,
) -> None:
    owned = KafkaSpanExporter("127.0.0.1:9", timeout=3, linger_ms=1)
    assert owned.sink.config.delivery_timeout_ms == 3000
    assert owned.sink.config.request_timeout_ms == 3000
    assert owned.sink.config.linger_ms == 1
    owned.shutdown()
    assert owned.sink.closed
    shared = KafkaSpanExporter(sink=sink)
    assert shared.sink is sink
    shared.shutdown()
    shared.shutdown()  # idempotent
    assert not sink.closed
    assert "shut down" in repr(shared)
