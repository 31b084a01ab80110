"""The built-in metric encodings, their decoders, and a readable rendering.

JSON lines (``encoding="json"``)
--------------------------------
One JSON object per sample and per line (lines joined by ``\\n``, none
trailing), keys in this order::

    {"name":"http_requests_total","type":"counter","labels":{"route":"/a"},"value":3,"ts":1700000000000}
    {"name":"latency_seconds","type":"histogram","labels":{},"count":3,"sum":0.7,
     "buckets":{"0.1":1,"0.5":2,"+Inf":3},"ts":1700000000000}

``ts`` is the snapshot's time in milliseconds since the epoch. Counters,
gauges and untyped samples carry ``value``; histograms ``count``, ``sum``
and cumulative ``buckets`` keyed by upper bound; summaries ``count``,
``sum`` and ``quantiles``. Numbers JSON cannot hold are the strings
``"NaN"``, ``"+Inf"`` and ``"-Inf"``, and bounds are written as Prometheus
writes them (``"0.1"``, ``"1"``, ``"+Inf"``). With the option ``help``,
each line also carries the metric's ``help``.

Influx line protocol (``encoding="influx"``)
--------------------------------------------
One line per sample, laid out as Telegraf's Prometheus input does (its
``metric_version = 1``), so Telegraf and InfluxDB users find what they know::

    http_requests_total,route=/a counter=3 1700000000000000000
    queue_depth gauge=12 1700000000000000000
    latency_seconds count=3,sum=0.7,0.1=1,0.5=2,+Inf=3 1700000000000000000

The measurement is the metric name, tags are the labels (sorted), the field
says the type (``counter``, ``gauge``, ``value`` for untyped; histograms
have a ``+Inf`` field, summaries quantile fields) and the timestamp is in
nanoseconds. Every number is written as a float: InfluxDB fixes a field's
type on first write, so a count that is sometimes ``3i`` and sometimes
``2.5`` would be refused. Escaping follows the line protocol reference
(InfluxDB v2 "Special characters"): commas and spaces in the measurement;
commas, equals signs and spaces in tag keys, tag values and field keys; a
backslash is written as two. The format cannot carry everything: NaN and
infinite values are left out (a line left with no field is left out), empty
label values are left out (Prometheus treats them as absent), and a newline
in a label value becomes the two characters ``\\n``.

Reading them back
-----------------
:func:`decode_json` and :func:`decode_influx` parse a record's value into a
:class:`~kafka_sink.metrics.Snapshot` (or raise
:class:`~kafka_sink.InvalidArgumentError`); :func:`decode` recognises either;
:func:`describe` renders a value as readable text, and :func:`as_data` as a
JSON-compatible structure, for ``kafka-sink tail``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kafka_sink.errors import InvalidArgumentError
from kafka_sink.metrics.samples import (
    METRIC_TYPES,
    Labels,
    MetricType,
    Sample,
    Snapshot,
    format_number,
    series_id,
)

__all__ = [
    "ENCODING_HEADER",
    "as_data",
    "decode",
    "decode_influx",
    "decode_json",
    "describe",
    "encode_influx",
    "encode_json",
    "influx_encoder",
    "json_encoder",
]

#: The header the exporter adds to every record: the encoding's name, e.g. ``b"json"``.
ENCODING_HEADER = "metrics-encoding"

_SPECIAL_TEXT = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf, "Inf": math.inf}


# -- JSON lines -------------------------------------------------------------------------


def _json_number(value: float) -> float | str:
    if type(value) is int or math.isfinite(value):
        return value
    return format_number(value)


def _sample_object(sample: Sample, with_help: bool) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "name": sample.name,
        "type": sample.type,
        "labels": dict(sample.labels),
    }
    if sample.type == "histogram":
        obj["count"] = _json_number(sample.count)
        obj["sum"] = _json_number(sample.sum)
        obj["buckets"] = {format_number(le): _json_number(n) for le, n in sample.buckets}
    elif sample.type == "summary":
        obj["count"] = _json_number(sample.count)
        obj["sum"] = _json_number(sample.sum)
        obj["quantiles"] = {format_number(q): _json_number(v) for q, v in sample.quantiles}
    else:
        obj["value"] = _json_number(sample.value)
    if with_help and sample.help:
        obj["help"] = sample.help
    return obj


def encode_json(snapshot: Snapshot, *, help: bool = False) -> bytes:
    """The snapshot as JSON lines, one object per sample (see the module doc)."""
    ts = snapshot.timestamp_ms
    lines = []
    for sample in snapshot.samples:
        obj = _sample_object(sample, help)
        obj["ts"] = ts
        lines.append(json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False))
    return "\n".join(lines).encode("utf-8")


def json_encoder(options: Mapping[str, Any]) -> Callable[[Snapshot], bytes]:
    """The ``json`` encoding; option ``help`` (bool) adds each metric's help text."""
    _check_options(options, {"help"})
    with_help = bool(options.get("help", False))

    def encode(snapshot: Snapshot) -> bytes:
        return encode_json(snapshot, help=with_help)

    return encode


def decode_json(value: bytes) -> Snapshot:
    """Parse JSON lines written by :func:`encode_json`; raise InvalidArgumentError if not."""
    samples: list[Sample] = []
    timestamp: int | None = None
    for number, line in enumerate(_lines(value), 1):
        try:
            obj = json.loads(line)
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            raise _not_metrics("JSON lines", number, str(exc)) from None
        try:
            sample, ts = _sample_from_object(obj)
        except (KeyError, TypeError, ValueError) as exc:
            raise _not_metrics("JSON lines", number, f"{type(exc).__name__}: {exc}") from None
        if timestamp is None:
            timestamp = ts
        samples.append(sample)
    if timestamp is None:
        raise InvalidArgumentError("value", "holds no metric sample")
    return Snapshot(timestamp, tuple(samples))


def _sample_from_object(obj: object) -> tuple[Sample, int]:
    if not isinstance(obj, dict):
        raise TypeError("a line is not a JSON object")
    name = obj["name"]
    kind = obj["type"]
    if not isinstance(name, str) or not name or kind not in METRIC_TYPES:
        raise ValueError("name or type is not a metric's")
    labels_obj = obj.get("labels", {})
    if not isinstance(labels_obj, dict) or not all(isinstance(v, str) for v in labels_obj.values()):
        raise TypeError("labels must map names to strings")
    labels: Labels = tuple(sorted(labels_obj.items()))
    ts = obj["ts"]
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise TypeError("ts must be an integer")
    help_text = obj.get("help", "")
    if not isinstance(help_text, str):
        raise TypeError("help must be a string")
    metric_type: MetricType = kind
    if metric_type == "histogram":
        sample = Sample(
            name,
            metric_type,
            labels,
            count=_number(obj["count"]),
            sum=_number(obj["sum"]),
            buckets=_pairs(obj["buckets"]),
            help=help_text,
        )
    elif metric_type == "summary":
        sample = Sample(
            name,
            metric_type,
            labels,
            count=_number(obj["count"]),
            sum=_number(obj["sum"]),
            quantiles=_pairs(obj["quantiles"]),
            help=help_text,
        )
    else:
        sample = Sample(name, metric_type, labels, _number(obj["value"]), help=help_text)
    return sample, ts


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise TypeError("a number was expected, got a boolean")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and value in _SPECIAL_TEXT:
        return _SPECIAL_TEXT[value]
    raise TypeError(f"a number was expected, got {value!r}")


def _pairs(obj: object) -> tuple[tuple[float, float], ...]:
    if not isinstance(obj, dict):
        raise TypeError("buckets and quantiles must be JSON objects")
    return tuple((_bound(k), _number(v)) for k, v in obj.items())


def _bound(text: str) -> float:
    special = _SPECIAL_TEXT.get(text)
    return special if special is not None else float(text)


# -- Influx line protocol ----------------------------------------------------------------

_MEASUREMENT_ESCAPES = str.maketrans({"\\": "\\\\", ",": "\\,", " ": "\\ ", "\n": "\\n"})
_KEY_ESCAPES = str.maketrans({"\\": "\\\\", ",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\n"})
_VALUE_FIELD = {"counter": "counter", "gauge": "gauge", "untyped": "value"}
_FIELD_TYPE: dict[str, MetricType] = {"counter": "counter", "gauge": "gauge", "value": "untyped"}


def _influx_line(sample: Sample, ts_ns: int) -> str | None:
    fields: list[str] = []
    field = _VALUE_FIELD.get(sample.type)
    if field is not None:
        if math.isfinite(sample.value):
            fields.append(f"{field}={format_number(sample.value)}")
    else:
        pairs = sample.buckets if sample.type == "histogram" else sample.quantiles
        for key, number in (("count", sample.count), ("sum", sample.sum)):
            if math.isfinite(number):
                fields.append(f"{key}={format_number(number)}")
        for bound, number in pairs:
            if math.isfinite(number) and not math.isnan(bound):
                fields.append(
                    f"{format_number(bound).translate(_KEY_ESCAPES)}={format_number(number)}"
                )
    if not fields:
        return None
    head = sample.name.translate(_MEASUREMENT_ESCAPES)
    tags = ",".join(
        f"{k.translate(_KEY_ESCAPES)}={v.translate(_KEY_ESCAPES)}" for k, v in sample.labels if v
    )
    if tags:
        head = f"{head},{tags}"
    return f"{head} {','.join(fields)} {ts_ns}"


def encode_influx(snapshot: Snapshot) -> bytes:
    """The snapshot in Influx line protocol, one line per sample (see the module doc)."""
    ts_ns = snapshot.timestamp_ms * 1_000_000
    lines = [line for s in snapshot.samples if (line := _influx_line(s, ts_ns)) is not None]
    return "\n".join(lines).encode("utf-8")


def influx_encoder(options: Mapping[str, Any]) -> Callable[[Snapshot], bytes]:
    """The ``influx`` encoding (no options)."""
    _check_options(options, set())
    return encode_influx


def decode_influx(value: bytes) -> Snapshot:
    """Parse line protocol laid out as :func:`encode_influx` writes it.

    Raises :class:`~kafka_sink.InvalidArgumentError` when a line is not line
    protocol or its fields are not those of a metric sample.
    """
    samples: list[Sample] = []
    timestamp: int | None = None
    for number, line_bytes in enumerate(_lines(value), 1):
        try:
            line = line_bytes.decode("utf-8")
            measurement, tags, fields, ts_ns = _parse_line(line)
            sample = _sample_from_fields(measurement, tags, fields)
        except (ValueError, KeyError) as exc:
            raise _not_metrics("Influx line protocol", number, str(exc)) from None
        if timestamp is None:
            timestamp = ts_ns // 1_000_000 if ts_ns is not None else 0
        samples.append(sample)
    if timestamp is None:
        raise InvalidArgumentError("value", "holds no metric sample")
    return Snapshot(timestamp, tuple(samples))


def _sample_from_fields(measurement: str, tags: Labels, fields: dict[str, float]) -> Sample:
    for field, metric_type in _FIELD_TYPE.items():
        if field in fields:
            if len(fields) != 1:
                raise ValueError(f"a {metric_type} line has one field, got {sorted(fields)}")
            return Sample(measurement, metric_type, tags, fields[field])
    count = fields.pop("count", math.nan)
    total = fields.pop("sum", math.nan)
    pairs = tuple(sorted((_bound(k), v) for k, v in fields.items()))
    if "+Inf" in fields:
        return Sample(measurement, "histogram", tags, count=count, sum=total, buckets=pairs)
    if math.isnan(count) and math.isnan(total) and not pairs:
        raise ValueError("no field of a metric sample")
    return Sample(measurement, "summary", tags, count=count, sum=total, quantiles=pairs)


def _parse_line(line: str) -> tuple[str, Labels, dict[str, float], int | None]:
    """Split one line into measurement, tags, numeric fields and timestamp (ns)."""
    key_part, *rest = _split_unescaped(line, " ", quotes=False, limit=1)
    if not rest or not rest[0]:
        raise ValueError("no field set")
    field_part, *ts_part = _split_unescaped(rest[0], " ", quotes=True, limit=1)
    elements = _split_unescaped(key_part, ",", quotes=False)
    measurement = _unescape(elements[0], ", ")
    if not measurement:
        raise ValueError("empty measurement")
    tags = []
    for element in elements[1:]:
        k, v = _key_value(element)
        tags.append((_unescape(k, ",= "), _unescape(v, ",= ")))
    fields: dict[str, float] = {}
    for element in _split_unescaped(field_part, ",", quotes=True):
        k, v = _key_value(element)
        fields[_unescape(k, ",= ")] = _field_number(v)
    ts_ns = int(ts_part[0]) if ts_part and ts_part[0] else None
    return measurement, tuple(sorted(tags)), fields, ts_ns


def _key_value(element: str) -> tuple[str, str]:
    parts = _split_unescaped(element, "=", quotes=False, limit=1)
    if len(parts) != 2 or not parts[0]:
        raise ValueError(f"{element!r} is not key=value")
    return parts[0], parts[1]


def _split_unescaped(text: str, separator: str, *, quotes: bool, limit: int = -1) -> list[str]:
    """Split on ``separator`` where it is not escaped (nor quoted, with ``quotes``)."""
    parts: list[str] = []
    start = 0
    i = 0
    quoted = False
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if quotes and c == '"':
            quoted = not quoted
        elif c == separator and not quoted and (limit < 0 or len(parts) < limit):
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quoted:
        raise ValueError("unterminated string field")
    parts.append(text[start:])
    return parts


def _unescape(text: str, escapable: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and (text[i + 1] in escapable or text[i + 1] == "\\"):
            out.append(text[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _field_number(text: str) -> float:
    if text.endswith(("i", "u")):
        return int(text[:-1])
    if text.startswith('"') or text in ("t", "T", "true", "True", "TRUE", "f", "F", "false"):
        raise ValueError(f"field value {text!r} is not a number")
    return float(text)


# -- recognising and rendering ---------------------------------------------------------


def decode(value: bytes, encoding: str | None = None) -> tuple[str, Snapshot] | None:
    """``(encoding name, snapshot)`` when ``value`` is in a built-in encoding, else None.

    ``encoding`` (e.g. the record's ``metrics-encoding`` header) says which
    to try; without it JSON lines are tried when the value starts with
    ``{``, Influx line protocol otherwise.
    """
    if not value:
        return None
    if encoding is None:
        encoding = "json" if value.lstrip()[:1] == b"{" else "influx"
    decoder = _DECODERS.get(encoding)
    if decoder is None:
        return None
    try:
        return encoding, decoder(value)
    except InvalidArgumentError:
        return None


def describe(value: bytes, encoding: str | None = None) -> str | None:
    """A readable rendering of a metrics record's value, or None if it is not one.

    One line per sample::

        http_requests_total{route="/a"} counter 3
        latency_seconds histogram count=3 sum=0.7 buckets[0.1:1 0.5:2 +Inf:3]
    """
    decoded = decode(value, encoding)
    if decoded is None:
        return None
    return "\n".join(_describe_sample(s) for s in decoded[1].samples)


def _describe_sample(sample: Sample) -> str:
    head = f"{series_id(sample.name, sample.labels)} {sample.type}"
    if sample.type in ("histogram", "summary"):
        pairs = sample.buckets if sample.type == "histogram" else sample.quantiles
        inner = " ".join(f"{format_number(a)}:{format_number(b)}" for a, b in pairs)
        label = "buckets" if sample.type == "histogram" else "quantiles"
        return (
            f"{head} count={format_number(sample.count)} sum={format_number(sample.sum)} "
            f"{label}[{inner}]"
        )
    return f"{head} {format_number(sample.value)}"


def as_data(value: bytes, encoding: str | None = None) -> dict[str, Any] | None:
    """A metrics record's value as a JSON-compatible structure, or None if it is not one.

    ``{"encoding": "influx", "timestamp_ms": ..., "samples": [...]}`` with
    samples shaped as the JSON lines encoding writes them (without ``ts``).
    """
    decoded = decode(value, encoding)
    if decoded is None:
        return None
    name, snapshot = decoded
    return {
        "encoding": name,
        "timestamp_ms": snapshot.timestamp_ms,
        "samples": [_sample_object(s, True) for s in snapshot.samples],
    }


_DECODERS: dict[str, Callable[[bytes], Snapshot]] = {
    "json": decode_json,
    "influx": decode_influx,
}


def _lines(value: bytes) -> Iterator[bytes]:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidArgumentError("value", f"must be bytes, got {type(value).__name__}")
    for line in bytes(value).split(b"\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith(b"#"):
            yield stripped


def _not_metrics(what: str, line: int, why: str) -> InvalidArgumentError:
    return InvalidArgumentError("value", f"line {line} is not a metric sample in {what}: {why}")


def _check_options(options: Mapping[str, Any], known: set[str]) -> None:
    for name in options:
        if name not in known:
            allowed = ", ".join(sorted(known)) or "none"
            raise InvalidArgumentError(
                "encoding_options", f"unknown option {name!r} (known: {allowed})"
            )
