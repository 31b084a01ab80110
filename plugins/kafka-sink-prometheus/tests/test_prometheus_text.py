"""The encoding, checked against prometheus_client's own text parser (the oracle)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka_sink import InvalidArgumentError
from kafka_sink.metrics import Sample, Snapshot
from kafka_sink.metrics.samples import MetricType, labels_of
from prometheus_client.parser import text_string_to_metric_families

from kafka_sink_prometheus import PrometheusOptions, encode_text

TS = 1_700_000_000_123

COUNTER = Sample(
    "http_requests_total", "counter", (("route", "/a"),), 42, help="Requests\nserved \\ here"
)
GAUGE = Sample("queue_depth", "gauge", (), -2.5)
HISTOGRAM = Sample(
    "latency_seconds",
    "histogram",
    (("route", "/a"),),
    count=3,
    sum=0.75,
    buckets=((0.1, 1), (0.5, 2), (math.inf, 3)),
)
SUMMARY = Sample(
    "rpc_seconds", "summary", (), count=10, sum=4.5, quantiles=((0.5, 0.25), (0.99, 1.5))
)
UNTYPED = Sample("temperature", "untyped", (("room", 'a "b"\\c\nd'),), math.nan)


def parse(value: bytes) -> dict[str, Any]:
    """Families by name, as prometheus_client's parser reads them."""
    return {f.name: f for f in text_string_to_metric_families(value.decode("utf-8"))}


def test_the_text_is_pinned() -> None:
    text = encode_text(Snapshot(TS, (COUNTER, HISTOGRAM)), PrometheusOptions(timestamps=False))
    assert text.decode() == (
        "# HELP http_requests_total Requests\\nserved \\\\ here\n"
        "# TYPE http_requests_total counter\n"
        'http_requests_total{route="/a"} 42\n'
        "# TYPE latency_seconds histogram\n"
        'latency_seconds_bucket{route="/a",le="0.1"} 1\n'
        'latency_seconds_bucket{route="/a",le="0.5"} 2\n'
        'latency_seconds_bucket{route="/a",le="+Inf"} 3\n'
        'latency_seconds_sum{route="/a"} 0.75\n'
        'latency_seconds_count{route="/a"} 3\n'
    )


def test_every_type_parses_with_its_values() -> None:
    families = parse(encode_text(Snapshot(TS, (COUNTER, GAUGE, HISTOGRAM, SUMMARY, UNTYPED))))
    counter = families["http_requests"]  # the parser names a counter family without _total
    assert counter.type == "counter"
    assert counter.documentation == "Requests\nserved \\ here"
    (sample,) = counter.samples
    assert (sample.name, sample.labels, sample.value) == (
        "http_requests_total",
        {"route": "/a"},
        42,
    )
    assert sample.timestamp == TS / 1000
    assert families["queue_depth"].samples[0].value == -2.5
    histogram = {(s.name, s.labels.get("le")): s.value for s in families["latency_seconds"].samples}
    assert histogram == {
        ("latency_seconds_bucket", "0.1"): 1,
        ("latency_seconds_bucket", "0.5"): 2,
        ("latency_seconds_bucket", "+Inf"): 3,
        ("latency_seconds_sum", None): 0.75,
        ("latency_seconds_count", None): 3,
    }
    summary = {(s.name, s.labels.get("quantile")): s.value for s in families["rpc_seconds"].samples}
    assert summary == {
        ("rpc_seconds", "0.5"): 0.25,
        ("rpc_seconds", "0.99"): 1.5,
        ("rpc_seconds_sum", None): 4.5,
        ("rpc_seconds_count", None): 10,
    }
    (untyped,) = families["temperature"].samples
    assert families["temperature"].type == "unknown"
    assert untyped.labels == {"room": 'a "b"\\c\nd'}
    assert math.isnan(untyped.value)


def test_samples_of_one_name_are_grouped_and_names_made_valid() -> None:
    a = Sample("jobs.done", "counter", (("queue", "a"),), 1)
    other = Sample("other", "gauge", (), 1)
    b = Sample("jobs.done", "counter", (("queue", "b"), ("9lives", "x")), 2)
    text = encode_text(Snapshot(TS, (a, other, b)), PrometheusOptions(timestamps=False))
    families = parse(text)
    assert [s.labels for s in families["jobs_done"].samples] == [
        {"queue": "a"},
        {"_9lives": "x", "queue": "b"},
    ]
    assert text.decode().count("# TYPE jobs_done counter") == 1


def test_options() -> None:
    text = encode_text(Snapshot(TS, (COUNTER,)), PrometheusOptions(help=False, timestamps=False))
    assert text == b'# TYPE http_requests_total counter\nhttp_requests_total{route="/a"} 42\n'
    assert PrometheusOptions.from_mapping({"help": False}) == PrometheusOptions(help=False)
    with pytest.raises(InvalidArgumentError) as info:
        PrometheusOptions.from_mapping({"format": "openmetrics"})
    assert info.value.argument == "encoding_options"
    with pytest.raises(InvalidArgumentError) as info:
        PrometheusOptions.from_mapping({"timestamps": "yes"})
    assert info.value.argument == "encoding_options.timestamps"
    assert encode_text(Snapshot(TS, ())) == b""


_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,15}", fullmatch=True).filter(
    lambda n: not n.endswith(("_total", "_count", "_sum", "_bucket", "_created", "_info"))
)
_label_names = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: n not in ("le", "quantile")
)
_values = st.floats(allow_nan=False)


@given(
    name=_names,
    kind=st.sampled_from(["gauge", "untyped"]),
    labels=st.dictionaries(_label_names, st.text(max_size=10), max_size=4),
    value=_values,
    timestamp=st.integers(0, 2**42),
)
def test_any_gauge_round_trips_through_the_oracle(
    name: str, kind: MetricType, labels: dict[str, str], value: float, timestamp: int
) -> None:
    sample = Sample(name, kind, labels_of(labels), value)
    families = parse(encode_text(Snapshot(timestamp, (sample,))))
    (parsed,) = families[name].samples
    assert parsed.labels == labels
    assert parsed.value == value
    assert parsed.timestamp * 1000 == pytest.approx(timestamp)


@given(
    bounds=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=5, unique=True).map(sorted),
    counts=st.lists(st.integers(0, 2**40), min_size=6, max_size=6).map(sorted),
    total=st.floats(allow_nan=False, allow_infinity=False),
)
def test_any_histogram_round_trips_through_the_oracle(
    bounds: list[float], counts: list[int], total: float
) -> None:
    buckets = tuple(zip([*bounds, math.inf], counts, strict=False))
    count = buckets[-1][1]
    sample = Sample("h", "histogram", (("k", "v"),), count=count, sum=total, buckets=buckets)
    families = parse(encode_text(Snapshot(TS, (sample,))))
    parsed = families["h"].samples
    got = [(float(s.labels["le"]), s.value) for s in parsed if s.name == "h_bucket"]
    assert got == list(buckets)
    assert {s.name: s.value for s in parsed if s.name != "h_bucket"} == {
        "h_sum": total,
        "h_count": count,
    }
