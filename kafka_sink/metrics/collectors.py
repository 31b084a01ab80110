"""Collectors that turn other sources into samples: a Sink's own metrics, prometheus_client.

Both are offered to the exporter by the built-in plugin
(:mod:`kafka_sink.hooks.builtin.metrics`); they can also be called directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from kafka_sink.errors import InvalidArgumentError
from kafka_sink.metrics.samples import Labels, MetricType, Sample, labels_of

if TYPE_CHECKING:
    from kafka_sink.producer.sink import Sink

__all__ = [
    "SINK_METRIC_PREFIX",
    "prometheus_collector",
    "samples_from_prometheus",
    "sink_collector",
    "sink_samples",
]

#: The prefix of the names of a Sink's own metrics.
SINK_METRIC_PREFIX = "kafka_sink_"

# Keys of Sink.metrics() that only go up: exported as counters named <key>_total.
_SINK_COUNTERS = frozenset(
    {
        "records_queued",
        "records_sent",
        "bytes_uncompressed",
        "bytes_compressed",
        "batches_sent",
        "requests",
        "retries",
        "callback_errors",
        "metadata_refreshes",
        "loop_errors",
    }
)
# Per-cause counters: key -> the name of the label that holds the cause.
_SINK_LABELLED_COUNTERS = {
    "records_failed": "reason",
    "records_dropped": "reason",
    "broker_errors": "error",
}
# Sums of the per-cause counters: derivable, so not exported twice.
_SINK_SKIPPED = frozenset({"records_failed_total", "records_dropped_total"})


def sink_samples(metrics: Mapping[str, Any], labels: Labels = ()) -> list[Sample]:
    """Samples from a :meth:`Sink.metrics() <kafka_sink.Sink.metrics>` snapshot.

    Counts become counters (``kafka_sink_records_sent_total``), counts by
    cause counters with a label (``kafka_sink_records_dropped_total{reason=...}``),
    levels gauges (``kafka_sink_buffer_bytes_used``), states gauges of value 1
    with the state as a label (``kafka_sink_idempotence{state="enabled"}``,
    ``kafka_sink_connection_state{node="1",state="ready"}``). ``labels`` are
    added to every sample (e.g. the client id).
    """
    out: list[Sample] = []
    for key, value in metrics.items():
        if key in _SINK_SKIPPED:
            continue
        name = SINK_METRIC_PREFIX + key
        if key in _SINK_LABELLED_COUNTERS and isinstance(value, Mapping):
            label = _SINK_LABELLED_COUNTERS[key]
            for cause, count in value.items():
                if _is_number(count):
                    extra = labels_of([*labels, (label, cause)])
                    out.append(Sample(name + "_total", "counter", extra, count))
        elif key == "connections" and isinstance(value, Mapping):
            for node, state in value.items():
                extra = labels_of([*labels, ("node", node), ("state", state)])
                out.append(Sample(SINK_METRIC_PREFIX + "connection_state", "gauge", extra, 1))
        elif key in _SINK_COUNTERS and _is_number(value):
            out.append(Sample(name + "_total", "counter", labels, value))
        elif _is_number(value):
            out.append(Sample(name, "gauge", labels, value))
        elif isinstance(value, str):
            out.append(Sample(name, "gauge", labels_of([*labels, ("state", value)]), 1))
        elif isinstance(value, Mapping):
            for sub, number in value.items():
                if _is_number(number):
                    out.append(Sample(name, "gauge", labels_of([*labels, ("key", sub)]), number))
    return out


def sink_collector(sink: Sink) -> Callable[[], list[Sample]]:
    """A collector of ``sink``'s own metrics, labelled with its ``client_id``."""
    labels: Labels = (("client_id", sink.config.client_id),)

    def collect() -> list[Sample]:
        return sink_samples(sink.metrics(), labels)

    return collect


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- prometheus_client ------------------------------------------------------------------

_PROMETHEUS_TYPES: dict[str, MetricType] = {
    "counter": "counter",
    "gauge": "gauge",
    "info": "gauge",
    "stateset": "gauge",
    "unknown": "untyped",
    "untyped": "untyped",
}


def prometheus_collector(registry: object = True) -> Callable[[], list[Sample]]:
    """A collector of a ``prometheus_client`` registry (``True``: the default ``REGISTRY``).

    Raises :class:`~kafka_sink.InvalidArgumentError` when prometheus_client
    is not installed or ``registry`` has no ``collect()``.
    """
    if registry is True:
        try:
            import prometheus_client  # noqa: PLC0415 - optional dependency
        except ImportError:
            raise InvalidArgumentError(
                "prometheus_registry", "prometheus_client is not installed"
            ) from None
        registry = prometheus_client.REGISTRY
    collect_families = getattr(registry, "collect", None)
    if not callable(collect_families):
        raise InvalidArgumentError(
            "prometheus_registry", f"must be True or a registry with collect(), got {registry!r}"
        )

    def collect() -> list[Sample]:
        return samples_from_prometheus(collect_families())

    return collect


def samples_from_prometheus(families: Iterable[Any]) -> list[Sample]:
    """Samples from ``prometheus_client`` metric families (what ``registry.collect()`` yields).

    Counters keep their ``_total`` sample name; ``_created`` samples (a
    timestamp, not a count) are left out. Histograms (and gauge histograms)
    become one histogram sample per label set, summaries one summary sample;
    info and state-set metrics become gauges.
    """
    out: list[Sample] = []
    for family in families:
        kind = family.type
        documentation = family.documentation or ""
        if kind in ("histogram", "gaugehistogram", "summary"):
            out.extend(_grouped(family.name, kind, documentation, family.samples))
            continue
        metric_type = _PROMETHEUS_TYPES.get(kind, "untyped")
        for s in family.samples:
            if s.name.endswith("_created") and s.name == family.name + "_created":
                continue
            out.append(
                Sample(s.name, metric_type, labels_of(s.labels), s.value, help=documentation)
            )
    return out


def _grouped(name: str, kind: str, documentation: str, samples: Iterable[Any]) -> list[Sample]:
    groups: dict[Labels, dict[str, Any]] = {}
    for s in samples:
        special = "le" if kind != "summary" else "quantile"
        labels = labels_of((k, v) for k, v in s.labels.items() if k != special)
        group = groups.setdefault(labels, {"pairs": [], "count": math.nan, "sum": math.nan})
        suffix = s.name[len(name) :]
        if suffix == "_bucket" or (kind == "summary" and suffix == "" and special in s.labels):
            group["pairs"].append((float(s.labels[special]), s.value))
        elif suffix in ("_count", "_gcount"):
            group["count"] = s.value
        elif suffix in ("_sum", "_gsum"):
            group["sum"] = s.value
    out = []
    for labels, group in groups.items():
        pairs = tuple(sorted(group["pairs"]))
        if kind == "summary":
            out.append(
                Sample(
                    name,
                    "summary",
                    labels,
                    count=group["count"],
                    sum=group["sum"],
                    quantiles=pairs,
                    help=documentation,
                )
            )
        elif pairs:  # a native histogram without classic buckets has nothing to map
            out.append(
                Sample(
                    name,
                    "histogram",
                    labels,
                    count=group["count"],
                    sum=group["sum"],
                    buckets=pairs,
                    help=documentation,
                )
            )
    return out
