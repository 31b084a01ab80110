"""What a metrics export carries: samples, grouped into a snapshot.

A :class:`Sample` is the current state of one *series*: a metric name plus
one set of label values. Its shape follows Prometheus' data model, so that
every source (the :class:`~kafka_sink.metrics.MetricsRegistry`, the Sink's
own counters, a ``prometheus_client`` registry) and every encoding speak the
same language:

==============  ================================================================
``type``        what the sample holds
==============  ================================================================
``counter``     ``value``: a total that only goes up (restarts at 0 with the process)
``gauge``       ``value``: a level that goes up and down
``untyped``     ``value``: a number whose kind is unknown
``histogram``   ``count``, ``sum`` and ``buckets``: ``(upper bound, cumulative
                count)`` pairs in increasing order, the last bound ``+inf``
``summary``     ``count``, ``sum`` and ``quantiles``: ``(quantile, value)`` pairs
==============  ================================================================

A :class:`Snapshot` is the samples collected at one moment. Collectors
(:data:`~kafka_sink.hooks.specs.MetricsCollector`) return samples; encoders
(:data:`~kafka_sink.hooks.specs.MetricsEncoder`) turn a snapshot into the
bytes of one Kafka record.

This module imports nothing from the rest of the package but its errors, so
that the hook specifications can name these types without an import cycle.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from kafka_sink.errors import InvalidArgumentError

__all__ = [
    "METRIC_TYPES",
    "Labels",
    "MetricType",
    "Sample",
    "Snapshot",
    "check_label_name",
    "check_metric_name",
    "escape_label_value",
    "format_number",
    "labels_of",
    "series_id",
]

MetricType = Literal["counter", "gauge", "histogram", "summary", "untyped"]
#: Every value of :attr:`Sample.type`.
METRIC_TYPES: tuple[MetricType, ...] = ("counter", "gauge", "histogram", "summary", "untyped")

#: Label pairs ``(name, value)``, sorted by name, names unique.
Labels = tuple[tuple[str, str], ...]

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class Sample:
    """The state of one series at the time it was collected.

    Example::

        Sample("http_requests_total", "counter", (("route", "/a"),), value=42)
        Sample("latency_seconds", "histogram", count=3, sum=0.7,
               buckets=((0.1, 1), (0.5, 2), (math.inf, 3)))

    ``labels`` must be sorted by name (:func:`labels_of` builds them from a
    mapping). ``help`` is the metric's description, for the encodings that
    carry one.
    """

    name: str
    type: MetricType
    labels: Labels = ()
    value: float = 0.0
    count: float = 0
    sum: float = 0.0
    buckets: tuple[tuple[float, float], ...] = ()
    quantiles: tuple[tuple[float, float], ...] = ()
    help: str = ""

    @property
    def series_id(self) -> str:
        """``name{label="value",...}``: the same for the same series, different otherwise."""
        return series_id(self.name, self.labels)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Samples collected together; ``timestamp_ms`` is when (ms since the epoch)."""

    timestamp_ms: int
    samples: tuple[Sample, ...]


def labels_of(labels: Mapping[str, object] | Iterable[tuple[str, object]]) -> Labels:
    """Label pairs sorted by name, values as text, from a mapping or pairs.

    >>> labels_of({"route": "/a", "code": 200})
    (('code', '200'), ('route', '/a'))
    """
    items = labels.items() if isinstance(labels, Mapping) else labels
    return tuple(sorted((str(k), v if type(v) is str else str(v)) for k, v in items))


def series_id(name: str, labels: Labels) -> str:
    """The text that names a series, as in Prometheus: ``name{a="1",b="x"}``.

    Label values are escaped (backslash, double quote, newline), so two
    different series never share an id. Without labels it is the bare name.
    """
    if not labels:
        return name
    inner = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels)
    return f"{name}{{{inner}}}"


def escape_label_value(value: str) -> str:
    """A label value inside double quotes, escaped as the Prometheus text format says."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def format_number(value: float) -> str:
    """A number as Prometheus writes it: ``3``, ``0.25``, ``1e+20``, ``+Inf``, ``NaN``."""
    if type(value) is int:
        return str(value)
    if math.isfinite(value):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


def check_metric_name(name: object, argument: str = "name") -> str:
    """A metric name as Prometheus allows it: ``[a-zA-Z_:][a-zA-Z0-9_:]*``."""
    if not isinstance(name, str) or not _METRIC_NAME.match(name):
        raise InvalidArgumentError(
            argument, f"must match [a-zA-Z_:][a-zA-Z0-9_:]* (a metric name), got {name!r}"
        )
    return name


def check_label_name(name: object, argument: str = "labels") -> str:
    """A label name as Prometheus allows it; names starting with ``__`` are reserved."""
    if not isinstance(name, str) or not _LABEL_NAME.match(name) or name.startswith("__"):
        raise InvalidArgumentError(
            argument,
            f"label names must match [a-zA-Z_][a-zA-Z0-9_]* and not start with '__', got {name!r}",
        )
    return name
