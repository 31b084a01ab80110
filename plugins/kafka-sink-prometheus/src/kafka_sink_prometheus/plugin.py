"""The hook implementation kafka_sink finds through the ``kafka_sink`` entry point.

It answers to the encoding name ``"prometheus"`` and returns None for any
other, so the built-in encodings stay available next to this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafka_sink import hookimpl
from kafka_sink.hooks.specs import MetricsEncoder

from kafka_sink_prometheus.exposition import PrometheusEncoder, PrometheusOptions

__all__ = ["NAME", "kafka_sink_metrics_encoder"]

#: The encoding name to choose: ``MetricsExporter(..., encoding="prometheus")``.
NAME = "prometheus"


@hookimpl
def kafka_sink_metrics_encoder(name: str, options: Mapping[str, Any]) -> MetricsEncoder | None:
    """The Prometheus text format encoder, when ``name`` is ``"prometheus"``."""
    if name != NAME:
        return None
    return PrometheusEncoder(PrometheusOptions.from_mapping(options))
