"""OpenTelemetry SDK exporters that write to Kafka in the OpenTelemetry Collector's formats.

Spans, log records and metrics go to Kafka through a :class:`kafka_sink.Sink`,
each export as one OTLP request per message (``otlp_proto``, or
``otlp_json``), keyed and routed as the Collector's Kafka exporter does it,
so the Collector's Kafka receiver, or any consumer that reads OTLP, takes
the topics as they are::

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from kafka_sink_otel import KafkaSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(KafkaSpanExporter("kafka1:9092")))

:class:`KafkaLogExporter` (for ``BatchLogRecordProcessor``, and so the
logging bridge) and :class:`KafkaMetricExporter` (for
``PeriodicExportingMetricReader``) work the same way; all three can share
one Sink (``sink=``). An export returns SUCCESS once the brokers have
acknowledged every message, FAILURE otherwise, never later than its
timeout; ``stats()`` counts both.
"""

from kafka_sink_otel.delivery import OWNED_SINK_DEFAULTS, ExporterStats
from kafka_sink_otel.exporters import KafkaLogExporter, KafkaMetricExporter, KafkaSpanExporter
from kafka_sink_otel.hashing import resource_attributes_key
from kafka_sink_otel.messages import to_otlp_json
from kafka_sink_otel.options import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_TIMEOUT,
    DEFAULT_TOPICS,
    Encoding,
    ExporterOptions,
    MessageKey,
    Signal,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOPICS",
    "OWNED_SINK_DEFAULTS",
    "Encoding",
    "ExporterOptions",
    "ExporterStats",
    "KafkaLogExporter",
    "KafkaMetricExporter",
    "KafkaSpanExporter",
    "MessageKey",
    "Signal",
    "__version__",
    "resource_attributes_key",
    "to_otlp_json",
]
