"""The prometheus_client bridge: its families become samples that every encoding round-trips."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import prometheus_client  # the "test" extra installs it
import pytest
from prometheus_client import CollectorRegistry, Enum, Histogram, Info, Summary
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge as PromGauge

from kafka_sink import InvalidArgumentError, Sink
from kafka_sink.integrations.metrics_exporter import MetricsExporter
from kafka_sink.metrics import Sample, Snapshot
from kafka_sink.metrics.collectors import prometheus_collector
from kafka_sink.metrics.encodings import decode_influx, decode_json, encode_influx, encode_json


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    requests = PromCounter("http_requests", "Requests served", ["route"], registry=registry)
    requests.labels(route="/a").inc(3)
    requests.labels(route="/b").inc()
    PromGauge("temperature_celsius", "Room temperature", registry=registry).set(21.5)
    latency = Histogram(
        "latency_seconds", "Latency", ["route"], buckets=[0.1, 1.0], registry=registry
    )
    for value in (0.05, 0.5, 0.7, 3.0):
        latency.labels(route="/a").observe(value)
    rpc = Summary("rpc_seconds", "RPC time", registry=registry)
    rpc.observe(1.5)
    rpc.observe(2.5)
    Info("build", "Build", registry=registry).info({"version": "1.2.3"})
    Enum("state", "State", states=["up", "down"], registry=registry).state("down")
    return registry


def by_series(samples: list[Sample]) -> dict[str, Sample]:
    return {s.series_id: s for s in samples}


def test_families_become_samples(registry: CollectorRegistry) -> None:
    samples = by_series(prometheus_collector(registry)())
    assert samples['http_requests_total{route="/a"}'] == Sample(
        "http_requests_total", "counter", (("route", "/a"),), 3.0, help="Requests served"
    )
    assert samples['http_requests_total{route="/b"}'].value == 1.0
    assert samples["temperature_celsius"].type == "gauge"
    assert samples["temperature_celsius"].value == 21.5
    histogram = samples['latency_seconds{route="/a"}']
    assert (histogram.type, histogram.count, histogram.sum) == ("histogram", 4.0, 4.25)
    assert histogram.buckets == ((0.1, 1.0), (1.0, 3.0), (math.inf, 4.0))
    summary = samples["rpc_seconds"]
    assert (summary.type, summary.count, summary.sum, summary.quantiles) == (
        "summary",
        2.0,
        4.0,
        (),
    )
    assert samples['build_info{version="1.2.3"}'].value == 1.0
    assert samples['state{state="down"}'].value == 1.0
    assert samples['state{state="up"}'].value == 0.0
    # "_created" samples are timestamps, not counts: left out.
    assert not any(name.endswith("_created") for name in (s.name for s in samples.values()))


@pytest.mark.parametrize(
    ("encode", "decode"), [(encode_json, decode_json), (encode_influx, decode_influx)]
)
def test_bridged_samples_round_trip_in_each_encoding(
    registry: CollectorRegistry, encode: Any, decode: Any
) -> None:
    samples = tuple(prometheus_collector(registry)())
    decoded = decode(encode(Snapshot(1_700_000_000_000, samples)))
    assert decoded.timestamp_ms == 1_700_000_000_000
    assert [_plain(s) for s in decoded.samples] == [_plain(s) for s in samples]


def test_default_registry_is_bridged_by_the_exporter() -> None:
    gauge = PromGauge("kafka_sink_bridge_test_value", "A test gauge")
    try:
        gauge.set(42)
        sink = Sink("127.0.0.1:1")
        exporter = MetricsExporter(
            None,
            "metrics",
            sink=sink,
            interval=None,
            sink_metrics=False,
            prometheus_registry=True,
            entry_points=False,
        )
        samples = {s.name: s for s in exporter._collect()}
        assert samples["kafka_sink_bridge_test_value"].value == 42
        exporter.close(0, final_export=False)
        sink.close(0)
    finally:
        prometheus_client.REGISTRY.unregister(gauge)


def test_bridge_refuses_what_is_not_a_registry() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        prometheus_collector("REGISTRY")
    assert info.value.argument == "prometheus_registry"


def test_native_only_histograms_are_left_out() -> None:
    class Family:
        name = "native"
        type = "histogram"
        documentation = ""
        samples: Iterator[Any] = iter(())

    class Registry:
        def collect(self) -> list[Any]:
            return [Family()]

    assert prometheus_collector(Registry())() == []


def _plain(sample: Sample) -> Sample:
    return dataclasses.replace(sample, help="")
