"""A small instrumented application, its telemetry read back from the test brokers.

The application serves requests: a server span per request (with an event,
and a link to the previous request's span), a client span inside it, log
records through the logging bridge (``LoggingHandler``) inside both, and a
counter and a histogram. Its providers have the Kafka exporters behind the
SDK's own batch processors and periodic reader, and, beside them, the SDK's
in-memory exporters: what the SDK itself saw is the expected outcome.

The topics are read back by the oracle consumer (librdkafka), every message
is parsed with opentelemetry-proto's classes (strict JSON parsing for
``otlp_json``), and the spans, log records and metric points must match
the SDK's, ids, attributes and resource included. The number of messages
read must be exactly the number the exporters report delivered.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kafka_sink import Sink
from opentelemetry.exporter.otlp.proto.common._internal import _encode_resource
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, StatusCode

from kafka_sink_otel import (
    Encoding,
    KafkaLogExporter,
    KafkaMetricExporter,
    KafkaSpanExporter,
    resource_attributes_key,
)
from otel_helpers import Item, attributes, logging_bridge, read_back

REQUESTS = 12
PARTITIONS = 3


@dataclass
class Pipeline:
    """One service's providers, with the Kafka exporters and the SDK's own record of everything."""

    resource: Resource
    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    meter_provider: MeterProvider
    spans: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    logs: InMemoryLogRecordExporter = field(default_factory=InMemoryLogRecordExporter)
    requests: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)

    def shutdown(self) -> None:
        # Each provider flushes its processors (and reader) through the exporters, then shuts them.
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown()


def pipeline(
    resource: Resource,
    span_exporter: KafkaSpanExporter,
    log_exporter: KafkaLogExporter,
    metric_exporter: KafkaMetricExporter,
) -> Pipeline:
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    # One export at the end (shutdown), so the values read back are the final ones.
    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
    meter_provider = MeterProvider(
        resource=resource, metric_readers=[reader], shutdown_on_exit=False
    )
    built = Pipeline(resource, tracer_provider, logger_provider, meter_provider)
    tracer_provider.add_span_processor(SimpleSpanProcessor(built.spans))
    # Small batches and a short delay: several exports, each from the processor's own thread.
    tracer_provider.add_span_processor(
        BatchSpanProcessor(span_exporter, max_export_batch_size=7, schedule_delay_millis=50)
    )
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(built.logs))
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(log_exporter, max_export_batch_size=5, schedule_delay_millis=50)
    )
    return built


def serve(app: Pipeline, name: str, requests: int = REQUESTS) -> None:
    """The application: ``requests`` requests, traced, logged and measured."""
    tracer = app.tracer_provider.get_tracer("shop.http", "2.0")
    meter = app.meter_provider.get_meter("shop.http", "2.0")
    counter = meter.create_counter("http.server.requests", unit="1", description="Requests")
    histogram = meter.create_histogram("http.server.duration", unit="ms")
    previous = None
    with logging_bridge(app.logger_provider, f"{name}.orders") as log:
        for i in range(requests):
            route = ("/orders", "/cart", "/pay")[i % 3]
            status = 500 if i % 5 == 4 else 200
            links: list[Link] = (
                [Link(previous, {"link.reason": "previous request"})] if previous else []
            )
            with tracer.start_as_current_span(
                f"GET {route}",
                kind=SpanKind.SERVER,
                links=links,
                attributes={"http.route": route, "request.index": i, "tags": ("a", "b")},
            ) as span:
                span.add_event("request.validated", {"items": i % 4, "ok": True})
                log.info("serving %s", route, extra={"request.index": i})
                with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT) as query:
                    query.set_attribute("db.rows", i * 2)
                    if status == 500:
                        log.error("query failed", extra={"db.rows": i * 2})
                if status == 500:
                    span.set_status(StatusCode.ERROR, "query failed")
                previous = span.get_span_context()
            counter.add(1, {"http.route": route, "http.status_code": status})
            histogram.record(1.5 * i, {"http.route": route})
            app.requests[route, status] += 1
            app.latencies.setdefault(route, []).append(1.5 * i)


def _hex(value: int, digits: int) -> str:
    return format(value, f"0{digits}x")


def check_spans(app: Pipeline, found: list[Item], keyed: bool) -> None:
    expected = {
        span.context.span_id.to_bytes(8, "big"): span for span in app.spans.get_finished_spans()
    }
    assert len(found) == len(expected) == 2 * REQUESTS
    assert {item.value.span_id for item in found} == set(expected)
    partitions: dict[bytes, set[int]] = collections.defaultdict(set)
    for item in found:
        span, sdk = item.value, expected[item.value.span_id]
        assert item.resource == dict(app.resource.attributes)
        assert item.scope == "shop.http"
        assert span.name == sdk.name
        assert span.trace_id == sdk.context.trace_id.to_bytes(16, "big")
        assert span.parent_span_id == (sdk.parent.span_id.to_bytes(8, "big") if sdk.parent else b"")
        assert span.kind == sdk.kind.value + 1  # the proto's enum counts SPAN_KIND_UNSPECIFIED
        assert attributes(span.attributes) == dict(sdk.attributes or {})
        assert span.start_time_unix_nano == sdk.start_time
        assert span.end_time_unix_nano == sdk.end_time
        assert [(e.name, attributes(e.attributes)) for e in span.events] == [
            (e.name, dict(e.attributes or {})) for e in sdk.events
        ]
        assert [
            (link.trace_id.hex(), link.span_id.hex(), attributes(link.attributes))
            for link in span.links
        ] == [
            (
                _hex(link.context.trace_id, 32),
                _hex(link.context.span_id, 16),
                dict(link.attributes or {}),
            )
            for link in sdk.links
        ]
        assert span.status.code == sdk.status.status_code.value
        if keyed:
            assert item.consumed.key == span.trace_id.hex().encode()
            partitions[span.trace_id].add(item.consumed.partition)
    # partition_traces_by_id: a trace's spans are on one partition.
    assert all(len(found_in) == 1 for found_in in partitions.values())


def check_logs(app: Pipeline, found: list[Item]) -> None:
    sdk_logs = [log.log_record for log in app.logs.get_finished_logs()]
    assert len(found) == len(sdk_logs) == REQUESTS + REQUESTS // 5
    expected = {(log.timestamp, log.body, log.span_id): log for log in sdk_logs}
    assert len(expected) == len(sdk_logs)
    for item in found:
        record = item.value
        span_id = int.from_bytes(record.span_id, "big")
        sdk = expected.pop((record.time_unix_nano, record.body.string_value, span_id))
        assert item.resource == dict(app.resource.attributes)
        assert sdk.severity_number is not None
        assert record.severity_number == sdk.severity_number.value
        assert record.severity_text == sdk.severity_text
        assert record.trace_id == sdk.trace_id.to_bytes(16, "big")
        assert record.span_id == sdk.span_id.to_bytes(8, "big")
        assert attributes(record.attributes) == dict(sdk.attributes or {})


def check_metrics(app: Pipeline, found: list[Item]) -> None:
    by_name = {item.value.name: item for item in found}
    assert set(by_name) == {"http.server.requests", "http.server.duration"}
    assert by_name["http.server.requests"].resource == dict(app.resource.attributes)
    counted = {
        (
            attributes(p.attributes)["http.route"],
            attributes(p.attributes)["http.status_code"],
        ): p.as_int
        for p in by_name["http.server.requests"].value.sum.data_points
    }
    assert counted == dict(app.requests)
    histogram = {
        attributes(p.attributes)["http.route"]: (p.count, p.sum)
        for p in by_name["http.server.duration"].value.histogram.data_points
    }
    assert histogram == {route: (len(v), sum(v)) for route, v in app.latencies.items()}


@contextlib.contextmanager
def shared_sink(bootstrap_servers: str) -> Iterator[Sink]:
    with Sink(bootstrap_servers, linger_ms=5) as sink:
        yield sink


def _topics(broker: Any, base: str) -> dict[str, str]:
    topics = {signal: f"{base}-{signal}" for signal in ("traces", "logs", "metrics")}
    for topic in topics.values():
        broker.create_topic(topic, PARTITIONS)
    return topics


def _no_failures(*exporters: Any) -> None:
    for exporter in exporters:
        stats = exporter.stats()
        assert stats.exports_failed_total == 0, stats
        assert stats.records_failed_total == 0, stats
        assert stats.records_pending == 0, stats
        assert stats.records_delivered == stats.records_produced > 0, stats


@pytest.mark.parametrize("encoding", ["otlp_proto", "otlp_json"])
def test_an_application_s_telemetry_arrives_whole(
    broker: Any, topic_name: str, encoding: Encoding
) -> None:
    topics = _topics(broker, topic_name)
    resource = Resource.create(
        {"service.name": "shop", "service.version": "2.0", "pod": broker.kind}
    )
    with shared_sink(broker.bootstrap_servers) as sink:
        spans = KafkaSpanExporter(sink=sink, topic=topics["traces"], encoding=encoding)
        logs = KafkaLogExporter(sink=sink, topic=topics["logs"], encoding=encoding)
        metrics = KafkaMetricExporter(sink=sink, topic=topics["metrics"], encoding=encoding)
        app = pipeline(resource, spans, logs, metrics)
        serve(app, topic_name)
        app.shutdown()
        assert not sink.closed  # shared: the exporters leave it to its owner
    _no_failures(spans, logs, metrics)
    servers = broker.bootstrap_servers
    found = {
        signal: read_back(
            servers, topics[signal], exporter.stats().records_delivered, encoding, signal
        )
        for signal, exporter in (("traces", spans), ("logs", logs), ("metrics", metrics))
    }
    check_spans(app, found["traces"], keyed=True)
    check_logs(app, found["logs"])
    check_metrics(app, found["metrics"])
    assert spans.stats().items_exported == 2 * REQUESTS
    assert logs.stats().items_exported == len(found["logs"])
    assert metrics.stats().items_exported == len(app.requests) + len(app.latencies)


def test_keys_by_trace_and_by_resource(mock_cluster: Any, topic_name: str) -> None:
    """Spans and logs keyed by trace id share partition numbers; resources keep theirs.

    Two services, each with its own providers and exporters (an exporter
    belongs to the provider that shuts it down), all through one Sink.
    """
    topics = _topics(mock_cluster, topic_name)
    topics["logs by resource"] = f"{topic_name}-logs-by-resource"
    mock_cluster.create_topic(topics["logs by resource"], PARTITIONS)
    resources = {
        "shop": Resource.create({"service.name": "shop"}),
        "billing": Resource.create(
            {"service.name": "billing", "deployment.environment.name": "prod"}
        ),
    }
    exporters: dict[str, list[Any]] = collections.defaultdict(list)
    with shared_sink(mock_cluster.bootstrap_servers) as sink:
        apps = []
        for name, resource in resources.items():
            spans = KafkaSpanExporter(sink=sink, topic=topics["traces"])
            logs = KafkaLogExporter(
                sink=sink, topic=topics["logs"], partition_logs_by_trace_id=True
            )
            logs_by_resource = KafkaLogExporter(
                sink=sink,
                topic=topics["logs by resource"],
                partition_logs_by_resource_attributes=True,
            )
            metrics = KafkaMetricExporter(
                sink=sink, topic=topics["metrics"], partition_metrics_by_resource_attributes=True
            )
            app = pipeline(resource, spans, logs, metrics)
            app.logger_provider.add_log_record_processor(BatchLogRecordProcessor(logs_by_resource))
            serve(app, f"{topic_name}-{name}")
            apps.append(app)
            for kind, exporter in (
                ("traces", spans),
                ("logs", logs),
                ("logs by resource", logs_by_resource),
                ("metrics", metrics),
            ):
                exporters[kind].append(exporter)
        for app in apps:
            app.shutdown()
    _no_failures(*(e for kind in exporters.values() for e in kind))

    def read(kind: str, signal: str) -> list[Item]:
        delivered = sum(e.stats().records_delivered for e in exporters[kind])
        return read_back(
            mock_cluster.bootstrap_servers, topics[kind], delivered, "otlp_proto", signal
        )

    span_partition = {
        item.value.trace_id: item.consumed.partition for item in read("traces", "traces")
    }
    assert len(span_partition) == 2 * REQUESTS  # twelve traces per service
    traced_logs = read("logs", "logs")
    assert len(traced_logs) == 2 * (REQUESTS + REQUESTS // 5)
    for item in traced_logs:
        assert item.consumed.key == item.value.trace_id.hex().encode()
        # Same key, same partition count, same partitioner: the trace's partition.
        assert item.consumed.partition == span_partition[item.value.trace_id]
    for kind, signal in (("logs by resource", "logs"), ("metrics", "metrics")):
        partition_of: dict[str, set[int]] = collections.defaultdict(set)
        for item in read(kind, signal):
            resource = resources[item.resource["service.name"]]
            assert item.resource == dict(resource.attributes)
            assert item.consumed.key == resource_attributes_key(
                _encode_resource(resource).attributes
            )
            partition_of[item.resource["service.name"]].add(item.consumed.partition)
        assert set(partition_of) == set(resources)
        assert all(len(p) == 1 for p in partition_of.values())
