"""Application metrics: the registry, its samples and their encodings.

A :class:`MetricsRegistry` holds counters, gauges and histograms with
labels, cheap to update from any thread. :class:`kafka_sink.MetricsExporter`
(an integration, :mod:`kafka_sink.integrations.metrics_exporter`) ships
snapshots of them (and of plugins' metrics: the Sink's own, a
``prometheus_client`` registry) to a topic on its own timer, encoded as JSON
lines, Influx line protocol or a plugin's encoding::

    from kafka_sink import MetricsExporter

    registry = MetricsRegistry()
    requests = registry.counter("http_requests_total", "Requests", labels=["route"])
    with MetricsExporter(registry, "metrics", bootstrap_servers="localhost:9092"):
        requests.labels(route="/").inc()

:mod:`kafka_sink.metrics.encodings` decodes and describes the built-in
encodings.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

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
    "METRIC_TYPES",
    "Counter",
    "CounterChild",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "Labels",
    "MetricType",
    "MetricsRegistry",
    "Sample",
    "Snapshot",
]

# The exporter ships through a Sink, so it sits with the integrations, above
# this package; these names were importable from here before it moved and
# still are, with a warning, without this package importing anything above it.
_MOVED = frozenset({"METRICS_SINK_DEFAULTS", "ExporterConfig", "ExporterStats", "MetricsExporter"})
_MOVED_TO = "kafka_sink.integrations.metrics_exporter"


def __getattr__(name: str) -> Any:
    """``kafka_sink.metrics.MetricsExporter`` and its companions, from their new module."""
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"kafka_sink.metrics.{name} has moved: import it from kafka_sink"
        f"{'' if name == 'MetricsExporter' else '.integrations.metrics_exporter'}",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(_MOVED_TO), name)
