"""Snapshots in the Prometheus text exposition format (version 0.0.4).

Each metric family is written as Prometheus writes it::

    # HELP http_requests_total Requests served
    # TYPE http_requests_total counter
    http_requests_total{code="200",route="/"} 1027 1700000000000
    # TYPE http_request_seconds histogram
    http_request_seconds_bucket{le="0.1"} 3 1700000000000
    http_request_seconds_bucket{le="+Inf"} 4 1700000000000
    http_request_seconds_sum 0.52 1700000000000
    http_request_seconds_count 4 1700000000000

Samples of one name are grouped under one ``# TYPE`` line, in the order the
names first appear. Histograms become ``_bucket`` (with ``le``), ``_sum``
and ``_count`` lines, summaries ``quantile`` lines, ``_sum`` and ``_count``;
``le`` and ``quantile`` come after the series' own labels. Values are
written as Prometheus writes them (``+Inf``, ``-Inf``, ``NaN``), label
values and help text escaped as the format says (backslash, double quote,
newline). The snapshot's time (milliseconds since the epoch) ends each line
unless ``timestamps`` is off. A character a metric or label name may not
hold becomes ``_``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kafka_sink import InvalidArgumentError
from kafka_sink.metrics import Sample, Snapshot
from kafka_sink.metrics.samples import escape_label_value, format_number

__all__ = ["CONTENT_TYPE", "PrometheusEncoder", "PrometheusOptions", "encode_text"]

#: The content type of what :func:`encode_text` writes, as Prometheus names it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_NOT_METRIC = re.compile(r"[^a-zA-Z0-9_:]")
_NOT_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_TYPES = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "summary": "summary",
    "untyped": "untyped",
}


@dataclass(frozen=True, slots=True)
class PrometheusOptions:
    """The encoding's options: ``help`` lines (default on) and per-line ``timestamps`` (on)."""

    help: bool = True
    timestamps: bool = True

    def __post_init__(self) -> None:
        for name in ("help", "timestamps"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidArgumentError(
                    f"encoding_options.{name}",
                    f"must be True or False, got {getattr(self, name)!r}",
                )

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> PrometheusOptions:
        """Build from ``encoding_options``; an unknown option is named in the error."""
        for name in options:
            if name not in cls.__dataclass_fields__:
                raise InvalidArgumentError(
                    "encoding_options", f"unknown option {name!r} (known: help, timestamps)"
                )
        return cls(**options)


def encode_text(snapshot: Snapshot, options: PrometheusOptions = PrometheusOptions()) -> bytes:
    """The snapshot in the Prometheus text format (see the module doc)."""
    families: dict[str, list[Sample]] = {}
    for sample in snapshot.samples:
        families.setdefault(_metric_name(sample.name), []).append(sample)
    suffix = f" {snapshot.timestamp_ms}" if options.timestamps else ""
    lines: list[str] = []
    for name, samples in families.items():
        first = samples[0]
        if options.help and first.help:
            help_text = first.help.replace("\\", "\\\\").replace("\n", "\\n")
            lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {_TYPES.get(first.type, 'untyped')}")
        for sample in samples:
            labels = [(_label_name(k), v) for k, v in sample.labels]
            if sample.type == "histogram":
                for bound, count in sample.buckets:
                    le = _labels([*labels, ("le", format_number(bound))])
                    lines.append(f"{name}_bucket{le} {format_number(count)}{suffix}")
            elif sample.type == "summary":
                for quantile, value in sample.quantiles:
                    q = _labels([*labels, ("quantile", format_number(quantile))])
                    lines.append(f"{name}{q} {format_number(value)}{suffix}")
            else:
                lines.append(f"{name}{_labels(labels)} {format_number(sample.value)}{suffix}")
                continue
            own = _labels(labels)
            lines.append(f"{name}_sum{own} {format_number(sample.sum)}{suffix}")
            lines.append(f"{name}_count{own} {format_number(sample.count)}{suffix}")
    if not lines:
        return b""
    return ("\n".join(lines) + "\n").encode("utf-8")


class PrometheusEncoder:
    """The ``prometheus`` metrics encoding: a callable from snapshot to record value."""

    __slots__ = ("options",)

    def __init__(self, options: PrometheusOptions = PrometheusOptions()) -> None:
        self.options = options

    def __call__(self, snapshot: Snapshot) -> bytes:
        return encode_text(snapshot, self.options)


def _labels(pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{escape_label_value(v)}"' for k, v in pairs) + "}"


def _metric_name(name: str) -> str:
    if _METRIC_NAME.match(name):
        return name
    cleaned = _NOT_METRIC.sub("_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else "_" + cleaned


def _label_name(name: str) -> str:
    if _LABEL_NAME.match(name):
        return name
    cleaned = _NOT_LABEL.sub("_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else "_" + cleaned
