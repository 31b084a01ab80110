"""The OpenTelemetry SDK exporters: spans, log records and metrics into Kafka topics.

Each one implements the SDK's exporter interface, so the SDK's own
processors drive it: ``BatchSpanProcessor`` (or ``SimpleSpanProcessor``),
``BatchLogRecordProcessor`` (which the logging bridge, ``LoggingHandler``,
feeds) and ``PeriodicExportingMetricReader``. See :mod:`kafka_sink_otel`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from kafka_sink import Sink
from kafka_sink.errors import InvalidArgumentError
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.metrics.view import Aggregation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from kafka_sink_otel.delivery import ExportCore, ExporterStats
from kafka_sink_otel.options import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_TIMEOUT,
    DEFAULT_TOPICS,
    Encoding,
    ExporterOptions,
    HeaderInput,
    MessageKey,
)

__all__ = ["KafkaLogExporter", "KafkaMetricExporter", "KafkaSpanExporter"]


def _flag(value: object, argument: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgumentError(argument, f"must be True or False, got {value!r}")
    return value


def _seconds(millis: object) -> float | None:
    """An SDK timeout in milliseconds as seconds; anything but a number means none."""
    if isinstance(millis, bool) or not isinstance(millis, (int, float)) or math.isnan(millis):
        return None
    return max(0.0, float(millis)) / 1000.0


class _KafkaExporter:
    """What the three exporters have in common besides the SDK's interface."""

    _core: ExportCore

    @property
    def sink(self) -> Sink:
        """The :class:`kafka_sink.Sink` the messages go through (built here, or the one given)."""
        return self._core.sink

    @property
    def options(self) -> ExporterOptions:
        """The exporter's options, checked."""
        return self._core.options

    def stats(self) -> ExporterStats:
        """What the exporter did so far: exports, failures by cause, messages by outcome."""
        return self._core.stats()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait for the messages of exports that gave up to settle; True when none is left."""
        return self._core.force_flush(_seconds(timeout_millis))

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Stop exporting; deliver what is pending, close the sink if the exporter built it.

        Bounded by ``timeout_millis`` (the batch processor passes what is
        left of its own bound), or by the exporter's ``timeout``. Idempotent.
        """
        self._core.shutdown(_seconds(timeout_millis))

    def __repr__(self) -> str:
        options = self._core.options
        state = "shut down" if self._core.closed else "open"
        return (
            f"<{type(self).__name__} topic={options.topic!r} encoding={options.encoding}"
            f" key={options.key} {state}>"
        )


class KafkaSpanExporter(_KafkaExporter, SpanExporter):
    """Spans into a Kafka topic, as the Collector's Kafka exporter writes them.

    Example::

        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from kafka_sink_otel import KafkaSpanExporter

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(KafkaSpanExporter("kafka1:9092")))
        trace.set_tracer_provider(provider)

    ``bootstrap_servers`` / ``sink``
        Either the brokers of a :class:`kafka_sink.Sink` the exporter builds
        (from ``**sink_options``, any :class:`kafka_sink.SinkConfig` option)
        and closes at shutdown, or a shared ``sink`` that its owner
        configures and closes.
    ``topic``
        Default ``"otlp_spans"``.
    ``encoding``
        ``"otlp_proto"`` (default) or ``"otlp_json"``.
    ``partition_traces_by_id``
        One message per trace, keyed by the trace id in hex, so every span
        of a trace lands on one partition (default True: an application's
        batches mix traces, and consumers that assemble traces want them
        whole; the Collector's own default is False).
    ``topic_from_attribute``
        A resource attribute whose string value is the topic.
    ``timeout``
        Seconds an export may take (default 10, as the OTLP exporters).
    ``max_message_bytes``, ``record_headers``
        See :class:`~kafka_sink_otel.ExporterOptions`.
    """

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str] | None = None,
        *,
        sink: Sink | None = None,
        topic: str = DEFAULT_TOPICS["traces"],
        encoding: Encoding = "otlp_proto",
        partition_traces_by_id: bool = True,
        topic_from_attribute: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        record_headers: HeaderInput = (),
        **sink_options: Any,
    ) -> None:
        key: MessageKey = (
            "trace_id" if _flag(partition_traces_by_id, "partition_traces_by_id") else "none"
        )
        options = ExporterOptions(
            "traces",
            topic,
            encoding=encoding,
            key=key,
            topic_from_attribute=topic_from_attribute,
            timeout=timeout,
            max_message_bytes=max_message_bytes,
            record_headers=record_headers,
        )
        self._core = ExportCore(options, bootstrap_servers, sink, sink_options)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write ``spans``; SUCCESS once every message is acknowledged, within ``timeout``."""
        delivered = self._core.export(lambda: encode_spans(spans), lambda: len(spans))
        return SpanExportResult.SUCCESS if delivered else SpanExportResult.FAILURE


class KafkaLogExporter(_KafkaExporter, LogRecordExporter):
    """Log records into a Kafka topic, as the Collector's Kafka exporter writes them.

    Example, with the logging bridge::

        import logging
        from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from kafka_sink_otel import KafkaLogExporter

        provider = LoggerProvider()
        provider.add_log_record_processor(BatchLogRecordProcessor(KafkaLogExporter("kafka1:9092")))
        logging.getLogger().addHandler(LoggingHandler(logger_provider=provider))

    The arguments are those of :class:`KafkaSpanExporter`, with ``topic``
    defaulting to ``"otlp_logs"`` and these keys instead of
    ``partition_traces_by_id`` (both off by default, as in the Collector;
    at most one of them):

    ``partition_logs_by_resource_attributes``
        One message per resource, keyed by the Collector's hash of its
        attributes.
    ``partition_logs_by_trace_id``
        One message per trace id, keyed by it in hex (records outside any
        trace get no key): a request's logs land on the partition number its
        spans have in the span topic, when both topics have as many.
    """

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str] | None = None,
        *,
        sink: Sink | None = None,
        topic: str = DEFAULT_TOPICS["logs"],
        encoding: Encoding = "otlp_proto",
        partition_logs_by_resource_attributes: bool = False,
        partition_logs_by_trace_id: bool = False,
        topic_from_attribute: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        record_headers: HeaderInput = (),
        **sink_options: Any,
    ) -> None:
        by_resource = _flag(
            partition_logs_by_resource_attributes, "partition_logs_by_resource_attributes"
        )
        by_trace = _flag(partition_logs_by_trace_id, "partition_logs_by_trace_id")
        if by_resource and by_trace:
            raise InvalidArgumentError(
                "partition_logs_by_trace_id",
                "cannot be combined with partition_logs_by_resource_attributes",
            )
        key: MessageKey = (
            "resource_attributes" if by_resource else "trace_id" if by_trace else "none"
        )
        options = ExporterOptions(
            "logs",
            topic,
            encoding=encoding,
            key=key,
            topic_from_attribute=topic_from_attribute,
            timeout=timeout,
            max_message_bytes=max_message_bytes,
            record_headers=record_headers,
        )
        self._core = ExportCore(options, bootstrap_servers, sink, sink_options)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Write ``batch``; SUCCESS once every message is acknowledged, within ``timeout``."""
        delivered = self._core.export(lambda: encode_logs(batch), lambda: len(batch))
        return LogRecordExportResult.SUCCESS if delivered else LogRecordExportResult.FAILURE


def _data_points(metrics_data: MetricsData) -> int:
    return sum(
        len(getattr(metric.data, "data_points", ()))
        for resource_metrics in metrics_data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    )


class KafkaMetricExporter(_KafkaExporter, MetricExporter):
    """Metrics into a Kafka topic, as the Collector's Kafka exporter writes them.

    Example::

        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from kafka_sink_otel import KafkaMetricExporter

        reader = PeriodicExportingMetricReader(KafkaMetricExporter("kafka1:9092"))
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

    The arguments are those of :class:`KafkaSpanExporter`, with ``topic``
    defaulting to ``"otlp_metrics"`` and, instead of
    ``partition_traces_by_id``:

    ``partition_metrics_by_resource_attributes``
        One message per resource, keyed by the Collector's hash of its
        attributes (default False, as in the Collector).
    ``preferred_temporality``, ``preferred_aggregation``
        As for every SDK metric exporter (the reader's defaults otherwise:
        cumulative temporality).

    Each export is bounded by the shorter of ``timeout`` and the reader's
    ``export_timeout_millis``.
    """

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str] | None = None,
        *,
        sink: Sink | None = None,
        topic: str = DEFAULT_TOPICS["metrics"],
        encoding: Encoding = "otlp_proto",
        partition_metrics_by_resource_attributes: bool = False,
        topic_from_attribute: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        record_headers: HeaderInput = (),
        preferred_temporality: dict[type, AggregationTemporality] | None = None,
        preferred_aggregation: dict[type, Aggregation] | None = None,
        **sink_options: Any,
    ) -> None:
        by_resource = _flag(
            partition_metrics_by_resource_attributes, "partition_metrics_by_resource_attributes"
        )
        options = ExporterOptions(
            "metrics",
            topic,
            encoding=encoding,
            key="resource_attributes" if by_resource else "none",
            topic_from_attribute=topic_from_attribute,
            timeout=timeout,
            max_message_bytes=max_message_bytes,
            record_headers=record_headers,
        )
        self._core = ExportCore(options, bootstrap_servers, sink, sink_options)
        MetricExporter.__init__(
            self,
            preferred_temporality=preferred_temporality,
            preferred_aggregation=preferred_aggregation,
        )

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Write ``metrics_data``; SUCCESS once every message is acknowledged in time."""
        delivered = self._core.export(
            lambda: encode_metrics(metrics_data),
            lambda: _data_points(metrics_data),
            _seconds(timeout_millis),
        )
        return MetricExportResult.SUCCESS if delivered else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Wait for the messages of exports that gave up to settle; True when none is left."""
        return self._core.force_flush(_seconds(timeout_millis))

    def shutdown(self, timeout_millis: float | None = None, **kwargs: Any) -> None:
        """Stop exporting; deliver what is pending, close the sink if the exporter built it.

        Bounded by ``timeout_millis`` (the metric reader passes what is left of
        its own bound, as ``timeout``, also in milliseconds), or by the
        exporter's ``timeout``. Idempotent.
        """
        given = kwargs.get("timeout", timeout_millis)
        self._core.shutdown(_seconds(given))
