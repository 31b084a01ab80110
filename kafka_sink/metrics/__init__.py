"""Application metrics, exported to Kafka.

A :class:`MetricsRegistry` holds counters, gauges and histograms with
labels, cheap to update from any thread; a :class:`MetricsExporter` ships
snapshots of them (and of plugins' metrics: the Sink's own, a
``prometheus_client`` registry) to a topic on its own timer, encoded as JSON
lines, Influx line protocol or a plugin's encoding::

    registry = MetricsRegistry()
    requests = registry.counter("http_requests_total", "Requests", labels=["route"])
    with MetricsExporter(registry, "metrics", bootstrap_servers="localhost:9092"):
        requests.labels(route="/").inc()

:mod:`kafka_sink.metrics.encodings` decodes and describes the built-in
encodings.
"""

from kafka_sink.metrics.exporter import (
    METRICS_SINK_DEFAULTS,
    ExporterConfig,
    ExporterStats,
    MetricsExporter,
)
from kafka_sink.metrics.registry import (
    DEFAULT_BUCKETS,
    Counter,
    CounterChild,
    Gauge,
    GaugeChild,
    Histogram,
    HistogramChild,
    MetricsRegistry,
)
from kafka_sink.metrics.samples import METRIC_TYPES, Labels, MetricType, Sample, Snapshot

__all__ = [
    "DEFAULT_BUCKETS",
    "METRICS_SINK_DEFAULTS",
    "METRIC_TYPES",
    "Counter",
    "CounterChild",
    "ExporterConfig",
    "ExporterStats",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "Labels",
    "MetricType",
    "MetricsExporter",
    "MetricsRegistry",
    "Sample",
    "Snapshot",
]
