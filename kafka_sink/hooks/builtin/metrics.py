"""Built-in hook implementations: metrics.

Collector: the Sink's own metrics (unless ``options["sink_metrics"]`` is
false) and, when ``options["prometheus_registry"]`` is set (``True`` for
``prometheus_client.REGISTRY``, or a registry), the series of that
``prometheus_client`` registry. Encoders: ``"json"`` (JSON lines) and
``"influx"`` (Influx line protocol); see :mod:`kafka_sink.metrics.encodings`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from kafka_sink.hooks.specs import MetricsCollector, MetricsEncoder, hookimpl
from kafka_sink.metrics.collectors import prometheus_collector, sink_collector
from kafka_sink.metrics.encodings import influx_encoder, json_encoder

if TYPE_CHECKING:
    from kafka_sink.metrics.samples import Sample
    from kafka_sink.producer.sink import Sink

_ENCODERS: dict[str, Callable[[Mapping[str, Any]], MetricsEncoder]] = {
    "json": json_encoder,
    "influx": influx_encoder,
}


@hookimpl
def kafka_sink_metrics_collector(sink: Sink, options: Mapping[str, Any]) -> MetricsCollector | None:
    parts: list[MetricsCollector] = []
    if options.get("sink_metrics", True):
        parts.append(sink_collector(sink))
    registry = options.get("prometheus_registry")
    if registry is not None and registry is not False:
        parts.append(prometheus_collector(registry))
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]

    def collect() -> Iterator[Sample]:
        for part in parts:
            yield from part()

    return collect


@hookimpl
def kafka_sink_metrics_encoder(name: str, options: Mapping[str, Any]) -> MetricsEncoder | None:
    factory = _ENCODERS.get(name)
    return None if factory is None else factory(options)
