"""The built-in metric encodings: pinned output, escaping, round trips, recognition."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kafka_sink import InvalidArgumentError
from kafka_sink.metrics import Sample, Snapshot
from kafka_sink.metrics.encodings import (
    as_data,
    decode,
    decode_influx,
    decode_json,
    describe,
    encode_influx,
    encode_json,
    influx_encoder,
    json_encoder,
)
from kafka_sink.metrics.samples import MetricType, labels_of, series_id

TS = 1_700_000_000_123

COUNTER = Sample("http_requests_total", "counter", (("code", "200"), ("route", "/a")), 42)
GAUGE = Sample("queue_depth", "gauge", (), -2.5, help="Jobs waiting")
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
UNTYPED = Sample("temperature", "untyped", (("room", "a b,c=d"),), 21.5)
SNAPSHOT = Snapshot(TS, (COUNTER, GAUGE, HISTOGRAM, SUMMARY, UNTYPED))


def test_json_lines_are_pinned() -> None:
    lines = encode_json(SNAPSHOT).decode().split("\n")
    assert lines[0] == (
        '{"name":"http_requests_total","type":"counter","labels":{"code":"200","route":"/a"},'
        '"value":42,"ts":1700000000123}'
    )
    assert lines[2] == (
        '{"name":"latency_seconds","type":"histogram","labels":{"route":"/a"},"count":3,'
        '"sum":0.75,"buckets":{"0.1":1,"0.5":2,"+Inf":3},"ts":1700000000123}'
    )
    assert lines[3] == (
        '{"name":"rpc_seconds","type":"summary","labels":{},"count":10,"sum":4.5,'
        '"quantiles":{"0.5":0.25,"0.99":1.5},"ts":1700000000123}'
    )
    assert len(lines) == 5
    assert all(json.loads(line)["ts"] == TS for line in lines)


def test_json_round_trip_and_help_option() -> None:
    assert decode_json(encode_json(SNAPSHOT)) == Snapshot(
        TS, tuple(_without_help(s) for s in SNAPSHOT.samples)
    )
    with_help = json_encoder({"help": True})(SNAPSHOT)
    assert json.loads(with_help.split(b"\n")[1])["help"] == "Jobs waiting"
    assert decode_json(with_help) == SNAPSHOT


def test_json_writes_non_finite_numbers_as_prometheus_text() -> None:
    sample = Sample("g", "gauge", (), math.nan)
    inf = Sample("h", "histogram", (), count=1, sum=math.inf, buckets=((math.inf, 1),))
    value = encode_json(Snapshot(1, (sample, inf)))
    assert b'"value":"NaN"' in value
    assert b'"sum":"+Inf"' in value
    decoded = decode_json(value)
    assert math.isnan(decoded.samples[0].value)
    assert decoded.samples[1].sum == math.inf


def test_influx_lines_are_pinned() -> None:
    lines = encode_influx(SNAPSHOT).decode().split("\n")
    ns = TS * 1_000_000
    assert lines == [
        f"http_requests_total,code=200,route=/a counter=42 {ns}",
        f"queue_depth gauge=-2.5 {ns}",
        f"latency_seconds,route=/a count=3,sum=0.75,0.1=1,0.5=2,+Inf=3 {ns}",
        f"rpc_seconds count=10,sum=4.5,0.5=0.25,0.99=1.5 {ns}",
        f"temperature,room=a\\ b\\,c\\=d value=21.5 {ns}",
    ]


@pytest.mark.parametrize(
    ("name", "labels", "line"),
    [
        ("cpu load", (), "cpu\\ load value=1 0"),
        ("a,b", (), "a\\,b value=1 0"),
        ("m=1", (), "m=1 value=1 0"),  # an equals sign needs no escape in a measurement
        ("m", (("k", 'quote"d'),), 'm,k=quote"d value=1 0'),  # nor a quote in a tag
        ("m", (("k", "back\\slash\\"),), "m,k=back\\\\slash\\\\ value=1 0"),
        ("m", (("k", "two\nlines"),), "m,k=two\\nlines value=1 0"),
        ("m", (("k", ""), ("z", "x")), "m,z=x value=1 0"),  # an empty value is no tag
    ],
)
def test_influx_escaping(name: str, labels: tuple[tuple[str, str], ...], line: str) -> None:
    sample = Sample(name, "untyped", labels, 1)
    assert encode_influx(Snapshot(0, (sample,))).decode() == line


def test_influx_round_trip() -> None:
    decoded = decode_influx(encode_influx(SNAPSHOT))
    assert decoded == Snapshot(TS, tuple(_without_help(s) for s in SNAPSHOT.samples))


def test_influx_leaves_out_what_it_cannot_carry() -> None:
    nan_gauge = Sample("g", "gauge", (), math.nan)
    nan_sum = Sample("h", "histogram", (), count=1, sum=math.nan, buckets=((math.inf, 1),))
    value = encode_influx(Snapshot(0, (nan_gauge, nan_sum)))
    assert value == b"h count=1,+Inf=1 0"
    decoded = decode_influx(value).samples[0]
    assert decoded.count == 1
    assert math.isnan(decoded.sum)
    assert encode_influx(Snapshot(0, (nan_gauge,))) == b""
    # A newline in a label value comes back as backslash-n: line protocol has no newline.
    line = encode_influx(Snapshot(0, (Sample("m", "gauge", (("k", "a\nb"),), 1),)))
    assert decode_influx(line).samples[0].labels == (("k", "a\\nb"),)


def test_influx_decoder_reads_what_influx_writers_write() -> None:
    value = b"# comment\ncpu,host=a\\ b usage=1i 5000000\n\nmem gauge=3i 7000000"
    with pytest.raises(InvalidArgumentError):
        decode_influx(value)  # "usage" is not a field of a metric sample
    decoded = decode_influx(b"# comment\nmem,host=a\\ b gauge=3i 7000000\n")
    assert decoded == Snapshot(7, (Sample("mem", "gauge", (("host", "a b"),), 3),))


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"   ",
        b"not metrics at all",
        b'{"msg": "a log line", "level": "INFO"}',
        b'{"name": "x", "type": "counter"}',  # no value, no ts
        b'{"name": "x", "type": "meter", "labels": {}, "value": 1, "ts": 1}',
        b'{"name": "x", "type": "gauge", "labels": {"a": 1}, "value": 1, "ts": 1}',
        b'{"name": "x", "type": "gauge", "labels": {}, "value": true, "ts": 1}',
        b"cpu usage=1",
        b'm value="text" 1',
        b"m,a=b",
        b"\xff\xfe",
    ],
)
def test_values_that_are_not_metrics_are_not_recognised(value: bytes) -> None:
    assert decode(value) is None
    assert describe(value) is None
    assert as_data(value) is None


def test_describe_renders_one_line_per_sample() -> None:
    text = describe(encode_influx(SNAPSHOT))
    assert text is not None
    assert text.split("\n") == [
        'http_requests_total{code="200",route="/a"} counter 42',
        "queue_depth gauge -2.5",
        'latency_seconds{route="/a"} histogram count=3 sum=0.75 buckets[0.1:1 0.5:2 +Inf:3]',
        "rpc_seconds summary count=10 sum=4.5 quantiles[0.5:0.25 0.99:1.5]",
        'temperature{room="a b,c=d"} untyped 21.5',
    ]
    assert describe(encode_json(SNAPSHOT)) == text


def test_as_data_is_json_compatible() -> None:
    data = as_data(encode_json(Snapshot(TS, (COUNTER, HISTOGRAM))), "json")
    assert data is not None
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["encoding"] == "json"
    assert data["timestamp_ms"] == TS
    assert data["samples"][1]["buckets"] == {"0.1": 1, "0.5": 2, "+Inf": 3}
    influx = as_data(encode_influx(SNAPSHOT), "influx")
    assert influx is not None
    assert influx["encoding"] == "influx"
    assert decode(encode_influx(SNAPSHOT), "prometheus") is None  # not a built-in


def test_encoders_refuse_unknown_options() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        json_encoder({"indent": 2})
    assert info.value.argument == "encoding_options"
    with pytest.raises(InvalidArgumentError):
        influx_encoder({"precision": "ms"})


def test_series_ids_tell_series_apart() -> None:
    assert series_id("m", ()) == "m"
    assert series_id("m", labels_of({"b": "2", "a": 1})) == 'm{a="1",b="2"}'
    tricky = [labels_of({"a": 'x",b="y'}), labels_of({"a": "x", "b": "y"})]
    assert len({series_id("m", labels) for labels in tricky}) == 2


# -- properties ---------------------------------------------------------------------------

_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,20}", fullmatch=True)
_label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,10}", fullmatch=True).filter(
    lambda n: not n.startswith("__")
)
_any_text = st.text(max_size=12)
_finite = st.one_of(st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False))
_counts = st.integers(0, 2**40)
_kinds: list[MetricType] = ["counter", "gauge", "untyped", "histogram", "summary"]


@st.composite
def samples(draw: st.DrawFn, label_values: st.SearchStrategy[str] = _any_text) -> Sample:
    name = draw(_names)
    labels = labels_of(draw(st.dictionaries(_label_names, label_values, max_size=4)))
    kind = draw(st.sampled_from(_kinds))
    if kind == "histogram":
        bounds = sorted(draw(st.sets(st.floats(-1e6, 1e6), max_size=5)))
        counts = sorted(draw(st.lists(_counts, min_size=len(bounds) + 1, max_size=len(bounds) + 1)))
        buckets = tuple(zip([*bounds, math.inf], counts, strict=True))
        return Sample(name, kind, labels, count=counts[-1], sum=draw(_finite), buckets=buckets)
    if kind == "summary":
        quantiles = tuple(
            sorted(draw(st.dictionaries(st.floats(0, 1), _finite, max_size=4)).items())
        )
        return Sample(
            name, kind, labels, count=draw(_counts), sum=draw(_finite), quantiles=quantiles
        )
    return Sample(name, kind, labels, draw(_finite))


_snapshots = st.builds(
    Snapshot, st.integers(0, 2**43), st.lists(samples(), min_size=1, max_size=5).map(tuple)
)


@given(_snapshots)
def test_json_round_trips_any_snapshot(snapshot: Snapshot) -> None:
    assert decode_json(encode_json(snapshot)) == snapshot
    assert decode(encode_json(snapshot)) == ("json", snapshot)


# Line protocol cannot carry newlines nor empty tag values (see the module doc).
_influx_values = st.text(min_size=1, max_size=12).filter(lambda v: "\n" not in v)
_influx_snapshots = st.builds(
    Snapshot,
    st.integers(0, 2**43),
    st.lists(samples(_influx_values), min_size=1, max_size=5).map(tuple),
)


@given(_influx_snapshots)
def test_influx_round_trips_any_snapshot(snapshot: Snapshot) -> None:
    decoded = decode_influx(encode_influx(snapshot))
    assert decoded.timestamp_ms == snapshot.timestamp_ms
    assert decoded.samples == snapshot.samples


@given(st.binary(max_size=200))
def test_decoding_arbitrary_bytes_succeeds_or_raises_invalid_argument(value: bytes) -> None:
    for decoder in (decode_json, decode_influx):
        with contextlib.suppress(InvalidArgumentError):
            decoder(value)
    decode(value)  # never raises


def _without_help(sample: Sample) -> Sample:
    return dataclasses.replace(sample, help="")
