"""The plugin is found through its entry point and the exporter ships its encoding."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from importlib.metadata import entry_points

import pytest
from confluent_kafka import Consumer, TopicPartition
from kafka_sink import InvalidArgumentError, MetricsExporter, MetricsRegistry, plugin_manager
from kafka_sink.testing import MockCluster
from prometheus_client.parser import text_string_to_metric_families

import kafka_sink_prometheus.plugin
from kafka_sink_prometheus import PrometheusEncoder


def test_entry_point_is_installed() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="kafka_sink")}

    assert found.get("prometheus") == "kafka_sink_prometheus.plugin"


def test_plugin_manager_loads_the_entry_point_and_answers_its_name_only() -> None:
    manager = plugin_manager()

    assert manager.get_plugin("prometheus") is kafka_sink_prometheus.plugin
    encoder = manager.hook.kafka_sink_metrics_encoder(name="prometheus", options={})
    assert isinstance(encoder, PrometheusEncoder)
    assert kafka_sink_prometheus.plugin.kafka_sink_metrics_encoder("json", {}) is None
    # The built-in encodings are still there beside it.
    assert manager.hook.kafka_sink_metrics_encoder(name="json", options={}) is not None


def test_bad_options_are_refused_when_the_exporter_is_built() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        MetricsExporter(
            MetricsRegistry(),
            "metrics",
            "127.0.0.1:1",
            interval=None,
            encoding="prometheus",
            encoding_options={"openmetrics": True},
        )
    assert info.value.argument == "encoding_options"


@pytest.fixture(scope="module")
def cluster() -> Iterator[MockCluster]:
    with MockCluster(1) as started:
        yield started


def read(cluster: MockCluster, topic: str, expected: int) -> list[tuple[bytes, bytes]]:
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "group.id": "prometheus-tests",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        out: list[tuple[bytes, bytes]] = []
        deadline = time.monotonic() + 30
        while len(out) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            key, value = message.key(), message.value()
            assert key is not None
            assert value is not None
            assert dict(message.headers() or [])["metrics-encoding"] == b"prometheus"
            out.append((key, value))
        return out
    finally:
        consumer.close()


@pytest.mark.integration
@pytest.mark.mock  # starts librdkafka's mock cluster (a broker on loopback)
def test_exported_records_parse_as_prometheus_text(cluster: MockCluster) -> None:
    topic = f"prometheus-{uuid.uuid4().hex[:12]}"
    cluster.create_topic(topic, 1)
    registry = MetricsRegistry()
    requests = registry.counter("http_requests_total", "Requests", labels=["route"])
    requests.labels("/a").inc(7)
    requests.labels("/b").inc(2)
    registry.histogram("latency_seconds", "Latency", buckets=[0.1, 1]).observe(0.5)
    exporter = MetricsExporter(
        registry,
        topic,
        cluster.bootstrap_servers,
        interval=None,
        encoding="prometheus",
        sink_metrics=False,
    )
    exporter.close(10)
    records = read(cluster, topic, 3)
    assert len(records) == 3
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for key, value in records:
        families = list(text_string_to_metric_families(value.decode("utf-8")))
        assert len(families) == 1  # one series per record, with its own TYPE line
        assert key.decode().startswith(families[0].name)
        for sample in families[0].samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert values == {
        ("http_requests_total", (("route", "/a"),)): 7,
        ("http_requests_total", (("route", "/b"),)): 2,
        ("latency_seconds_bucket", (("le", "0.1"),)): 0,
        ("latency_seconds_bucket", (("le", "1"),)): 1,
        ("latency_seconds_bucket", (("le", "+Inf"),)): 1,
        ("latency_seconds_sum", ()): 0.5,
        ("latency_seconds_count", ()): 1,
    }
