"""With no broker listening: FAILURE within the timeout, an application never held up.

The bootstrap address is a loopback port that nothing listens on (free a
moment ago; connections to it are refused). Nothing here sleeps to wait for
something: the tests wait on events the exporters set, and the only time
bounds asserted are generous ones, several times what is expected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from kafka_sink import Sink
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.brokers.common import LOOPBACK, free_ports

from kafka_sink_otel import KafkaLogExporter, KafkaMetricExporter, KafkaSpanExporter
from otel_helpers import logging_bridge

# Far above what each wait should take, far below the pytest timeout.
GENEROUS = 30.0


@pytest.fixture
def nowhere() -> str:
    """A loopback address nothing listens on."""
    (port,) = free_ports(1)
    return f"{LOOPBACK}:{port}"


def some_spans(count: int = 3) -> Sequence[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("app")
    for i in range(count):
        with tracer.start_as_current_span(f"work {i}"):
            pass
    return memory.get_finished_spans()


def test_an_export_fails_within_its_timeout(nowhere: str) -> None:
    exporter = KafkaSpanExporter(nowhere, timeout=1.0)
    spans = some_spans()
    started = time.monotonic()
    assert exporter.export(spans) is SpanExportResult.FAILURE
    assert time.monotonic() - started < GENEROUS
    stats = exporter.stats()
    assert stats.exports == 1
    assert dict(stats.exports_failed) == {"timeout": 1}
    assert stats.items_failed == 3
    assert stats.items_exported == 0
    exporter.shutdown()
    assert exporter.sink.closed
    # The messages left behind (one per trace) are settled by the close, and counted.
    stats = exporter.stats()
    assert stats.records_pending == 0
    assert stats.records_failed_total == stats.records_produced == 3
    # After shutdown, exports fail at once.
    assert exporter.export(spans) is SpanExportResult.FAILURE
    assert exporter.stats().exports_failed["shutdown"] == 1


def test_a_metric_export_keeps_to_the_reader_s_timeout(nowhere: str) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    provider.get_meter("app").create_counter("jobs").add(3)
    data = reader.get_metrics_data()
    assert data is not None
    # The exporter would wait a minute; the reader's 300 ms win.
    exporter = KafkaMetricExporter(nowhere, timeout=60.0)
    started = time.monotonic()
    assert exporter.export(data, timeout_millis=300) is MetricExportResult.FAILURE
    assert time.monotonic() - started < GENEROUS
    assert exporter.stats().items_failed == 1
    started = time.monotonic()
    exporter.shutdown(timeout=200)  # as the reader passes it: milliseconds
    assert time.monotonic() - started < GENEROUS
    assert exporter.sink.closed


class Recording:
    """Wraps an exporter's ``export``: events when one starts and ends, and the results."""

    def __init__(self, exporter: Any) -> None:
        self.started = threading.Event()
        self.finished = threading.Event()
        self.results: list[Any] = []
        export = exporter.export

        def recorded(batch: Any, *args: Any, **kwargs: Any) -> Any:
            self.started.set()
            try:
                result = export(batch, *args, **kwargs)
                self.results.append(result)
                return result
            finally:
                self.finished.set()

        exporter.export = recorded


@pytest.fixture
def exporters(nowhere: str) -> Iterator[tuple[KafkaSpanExporter, KafkaLogExporter]]:
    # A minute per export: longer than the whole test may take, so an export
    # still waiting proves the application went on without it.
    sink = Sink(nowhere)
    try:
        yield (
            KafkaSpanExporter(sink=sink, timeout=60.0),
            KafkaLogExporter(sink=sink, timeout=60.0),
        )
    finally:
        sink.close(timeout=0.1)  # nothing can be delivered: no need to wait


def test_the_application_is_not_held_up_while_exports_wait(
    exporters: tuple[KafkaSpanExporter, KafkaLogExporter],
) -> None:
    span_exporter, log_exporter = exporters
    spans, logs = Recording(span_exporter), Recording(log_exporter)
    resource = Resource.create({"service.name": "app"})
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    # A batch of one: the processor's thread starts exporting on the first span.
    tracer_provider.add_span_processor(
        BatchSpanProcessor(span_exporter, max_export_batch_size=1, max_queue_size=64)
    )
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(log_exporter, max_export_batch_size=1, max_queue_size=64)
    )
    tracer = tracer_provider.get_tracer("app")
    with logging_bridge(logger_provider, "app.unreachable") as log:
        with tracer.start_as_current_span("first"):
            log.info("first")
        assert spans.started.wait(GENEROUS)
        assert logs.started.wait(GENEROUS)
        # Both exports now wait on Kafka; the application goes on.
        for i in range(500):
            with tracer.start_as_current_span(f"request {i}") as span:
                span.set_attribute("i", i)
                log.warning("request %d", i)
        assert not spans.finished.is_set()
        assert not logs.finished.is_set()
    # Shutting the exporters down ends the waits: FAILURE, within the bound given.
    started = time.monotonic()
    span_exporter.shutdown(timeout_millis=500)
    log_exporter.shutdown(timeout_millis=500)
    assert spans.finished.wait(GENEROUS)
    assert logs.finished.wait(GENEROUS)
    assert time.monotonic() - started < GENEROUS
    assert spans.results[0] is SpanExportResult.FAILURE
    assert logs.results[0] is LogRecordExportResult.FAILURE
    # The providers' own shutdown finds the exporters shut: every later export fails at once.
    tracer_provider.shutdown()
    logger_provider.shutdown()
    for exporter in (span_exporter, log_exporter):
        stats = exporter.stats()
        assert stats.exports_failed["shutdown"] >= 1
        assert stats.items_exported == 0
        assert stats.exports_failed_total == stats.exports


def test_shutdown_is_bounded_and_fails_what_is_pending(nowhere: str) -> None:
    exporter = KafkaSpanExporter(nowhere, timeout=60.0)
    recording = Recording(exporter)
    export = threading.Thread(target=exporter.export, args=(some_spans(),))
    export.start()
    assert recording.started.wait(GENEROUS)
    started = time.monotonic()
    exporter.shutdown(timeout_millis=300)
    assert time.monotonic() - started < GENEROUS
    export.join(GENEROUS)
    assert not export.is_alive()
    assert recording.results == [SpanExportResult.FAILURE]
    stats = exporter.stats()
    assert stats.records_pending == 0
    # The sink was closed with the messages (one per trace) still queued: "closed".
    assert dict(stats.records_failed) == {"closed": 3}


def test_force_flush_reports_what_is_still_pending(nowhere: str) -> None:
    sink = Sink(nowhere)  # delivery_timeout_ms: two minutes, the Sink's default
    exporter = KafkaSpanExporter(sink=sink, timeout=0.5)
    assert exporter.export(some_spans()) is SpanExportResult.FAILURE
    assert exporter.stats().records_pending == 3  # one message per trace
    assert exporter.force_flush(timeout_millis=100) is False
    # Closing the sink settles the message; nothing is pending any more.
    sink.close(timeout=0.1)
    assert exporter.force_flush(timeout_millis=100) is True
    assert exporter.stats().records_failed == {"closed": 3}
