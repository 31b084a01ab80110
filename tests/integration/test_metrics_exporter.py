"""The metrics exporter end to end: what the topic holds, read back by the oracle consumer."""

from __future__ import annotations

import socket
import threading
from collections import defaultdict
from typing import Any

import pytest

from kafka_sink import Sink, hookimpl
from kafka_sink.integrations.metrics_exporter import MetricsExporter
from kafka_sink.metrics import MetricsRegistry, Sample
from kafka_sink.metrics.encodings import decode
from kafka_sink.metrics.samples import series_id
from tests.child import run_python
from tests.oracle import ConsumedRecord, consume

pytestmark = pytest.mark.integration

THREADS = 8
PER_THREAD = 5_000
ROUTES = ("/", "/login", "/search", "/cart")


def busy_registry() -> MetricsRegistry:
    """A registry after 8 threads each counted, observed and moved a gauge PER_THREAD times."""
    registry = MetricsRegistry()
    requests = registry.counter("http_requests_total", "Requests", labels=["route"])
    latency = registry.histogram("http_request_seconds", "Latency", buckets=[0.01, 0.1, 1])
    in_flight = registry.gauge("http_in_flight", "In flight")
    barrier = threading.Barrier(THREADS)

    def work(index: int) -> None:
        children = [requests.labels(route=r) for r in ROUTES]
        barrier.wait()
        for i in range(PER_THREAD):
            children[(index + i) % len(children)].inc()
            latency.observe((0.005, 0.05, 0.5, 5.0)[i % 4])
            in_flight.inc()
            in_flight.dec()
        in_flight.inc()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return registry


def decoded_samples(records: list[ConsumedRecord]) -> list[tuple[ConsumedRecord, Sample]]:
    out: list[tuple[ConsumedRecord, Sample]] = []
    for record in records:
        assert record.value is not None
        headers = dict(record.headers)
        encoding = headers["metrics-encoding"]
        assert encoding is not None
        decoded = decode(record.value, encoding.decode())
        assert decoded is not None, record.value
        out.extend((record, sample) for sample in decoded[1].samples)
    return out


def check_busy_values(samples: list[Sample]) -> None:
    series = {
        series_id(s.name, tuple(p for p in s.labels if p[0] != "service")): s for s in samples
    }
    total = THREADS * PER_THREAD
    for route in ROUTES:
        assert series[f'http_requests_total{{route="{route}"}}'].value == total // len(ROUTES)
    histogram = series["http_request_seconds"]
    assert histogram.count == total
    assert [n for _, n in histogram.buckets] == [total // 4, total // 2, 3 * total // 4, total]
    assert histogram.sum == pytest.approx(total // 4 * 5.555)
    assert series["http_in_flight"].value == THREADS


@pytest.mark.mock
def test_values_are_exact_and_each_series_stays_on_its_partition(
    mock_cluster: Any, topic_name: str
) -> None:
    mock_cluster.create_topic(topic_name, 3, 3)
    registry = busy_registry()
    exporter = MetricsExporter(
        registry,
        topic_name,
        mock_cluster.bootstrap_servers,
        interval=None,
        sink_metrics=False,
        labels={"service": "shop"},
    )
    exports = 3
    for _ in range(exports):
        assert exporter.flush(30) == 0
    exporter.close(10, final_export=False)
    series_count = len(ROUTES) + 2
    stats = exporter.stats()
    assert stats.records_produced == stats.records_delivered == exports * series_count
    assert stats.records_dropped_total == 0

    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=exports * series_count)
    partitions: dict[bytes | None, set[int]] = defaultdict(set)
    by_key: dict[bytes | None, list[Sample]] = defaultdict(list)
    for record, sample in decoded_samples(got):
        assert record.key == sample.series_id.encode()
        assert dict(sample.labels)["service"] == "shop"
        partitions[record.key].add(record.partition)
        by_key[record.key].append(sample)
    assert len(by_key) == series_count
    assert all(len(p) == 1 for p in partitions.values())  # a series keeps its partition
    assert len(set().union(*partitions.values())) > 1  # and series spread over partitions
    for samples in by_key.values():
        assert len(samples) == exports
    check_busy_values([samples[-1] for samples in by_key.values()])


@pytest.mark.kafka23
def test_influx_snapshots_on_kafka23(kafka23: Any, topic_name: str) -> None:
    kafka23.create_topic(topic_name, 2, 1)
    registry = busy_registry()
    exporter = MetricsExporter(
        registry,
        topic_name,
        kafka23.bootstrap_servers,
        interval=None,
        encoding="influx",
        per="snapshot",
        instance="web-7",
        sink_metrics=False,
    )
    exporter.export()
    exporter.close(30)  # and a final export
    assert exporter.stats().records_delivered == 2
    got = consume(kafka23.bootstrap_servers, topic_name, expected=2, timeout=60)
    assert {r.key for r in got} == {b"web-7"}
    assert len({r.partition for r in got}) == 1
    pairs = decoded_samples(got)
    assert len(pairs) == 2 * (len(ROUTES) + 2)
    check_busy_values([sample for record, sample in pairs if record.offset == got[-1].offset])


class _CountingCollector:
    """A plugin whose collector reports the export count and wakes the test after ``n``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0
        self.threads: set[str] = set()
        self.reached = threading.Event()

    @hookimpl
    def kafka_sink_metrics_collector(self) -> Any:
        def collect() -> list[Sample]:
            self.threads.add(threading.current_thread().name)
            self.calls += 1
            if self.calls >= self.n:
                self.reached.set()
            return [Sample("exports_seen_total", "counter", (), self.calls)]

        return collect


@pytest.mark.mock
def test_the_timer_exports_on_its_own_thread(mock_cluster: Any, topic_name: str) -> None:
    mock_cluster.create_topic(topic_name, 1, 1)
    plugin = _CountingCollector(3)
    exporter = MetricsExporter(
        None,
        topic_name,
        mock_cluster.bootstrap_servers,
        interval=0.2,
        sink_metrics=False,
        plugins=[plugin],
        linger_ms=0,
    )
    assert plugin.reached.wait(30)
    exporter.close(10, final_export=False)
    assert plugin.threads == {"kafka-sink-metrics"}  # never the caller's thread
    count = exporter.stats().records_produced
    assert count >= 3
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=count)
    values = [sample.value for _, sample in decoded_samples(got)]
    assert values == list(range(1, count + 1))  # one record per tick, in order


def test_brokers_down_stays_bounded_counts_drops_and_closes() -> None:
    with socket.socket() as closed_port:  # bound, never listening: connections are refused
        closed_port.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{closed_port.getsockname()[1]}"
        registry = MetricsRegistry()
        counter = registry.counter("events_total", labels=["user"])
        for i in range(200):
            counter.labels(f"user-{i}").inc(i)
        exporter = MetricsExporter(
            registry,
            "metrics",
            address,
            interval=None,
            buffer_memory=32_768,
            delivery_timeout_ms=600_000,
        )
        for _ in range(20):
            exporter.export()
            assert exporter.sink.metrics()["buffer_bytes_used"] <= 32_768
        stats = exporter.stats()
        assert stats.records_dropped.get("buffer_full", 0) > 0
        assert stats.records_delivered == 0
        exporter.close(0.5)
        exporter.close(0.5)
        assert exporter.sink.closed
        stats = exporter.stats()
    # Every record produced (the final export's too) is accounted for: never delivered,
    # each dropped for the full buffer or failed at close.
    assert stats.records_produced > 0
    assert stats.records_dropped_total == stats.records_produced
    assert set(stats.records_dropped) <= {"buffer_full", "closed"}


@pytest.mark.mock
def test_brokers_going_down_keeps_the_timer_bounded(new_mock_cluster: Any, topic_name: str) -> None:
    cluster = new_mock_cluster(1)
    cluster.create_topic(topic_name, 1, 1)
    registry = MetricsRegistry()
    registry.counter("c_total", labels=["k"])
    for i in range(100):
        registry.counter("c_total", labels=["k"]).labels(i).inc()
    plugin = _CountingCollector(30)
    exporter = MetricsExporter(
        registry,
        topic_name,
        cluster.bootstrap_servers,
        interval=0.01,
        buffer_memory=20_000,
        delivery_timeout_ms=600_000,
        plugins=[plugin],
    )
    assert exporter.flush(30) == 0
    cluster.broker_down(1)
    assert plugin.reached.wait(60)
    assert exporter.sink.metrics()["buffer_bytes_used"] <= 20_000
    thread = exporter._thread
    exporter.close(0.5)
    assert thread is not None
    assert not thread.is_alive()
    stats = exporter.stats()
    assert stats.records_dropped.get("buffer_full", 0) > 0
    assert stats.records_delivered + stats.records_dropped_total == stats.records_produced


@pytest.mark.mock
def test_the_interpreter_exit_exports_a_last_time(mock_cluster: Any, topic_name: str) -> None:
    mock_cluster.create_topic(topic_name, 2, 3)
    code = """
        import os
        from kafka_sink.integrations.metrics_exporter import MetricsExporter
        from kafka_sink.metrics import MetricsRegistry
        registry = MetricsRegistry()
        exporter = MetricsExporter(
            registry, os.environ["TOPIC"], os.environ["SERVERS"],
            interval=3600, sink_metrics=False,
        )
        registry.counter("jobs_total").inc(41)
        registry.counter("jobs_total").inc()
        # no close: the exit exports and delivers
        """
    result = run_python(code, {"SERVERS": mock_cluster.bootstrap_servers, "TOPIC": topic_name})
    assert result.returncode == 0, result.stderr
    (record,) = consume(mock_cluster.bootstrap_servers, topic_name, expected=1)
    ((_, sample),) = decoded_samples([record])
    assert (sample.name, sample.value) == ("jobs_total", 42)


@pytest.mark.mock
def test_a_shared_sink_carries_metrics_and_other_records(
    mock_cluster: Any, topic_name: str
) -> None:
    mock_cluster.create_topic(topic_name, 1, 1)
    with Sink(mock_cluster.bootstrap_servers) as sink:
        registry = MetricsRegistry()
        registry.gauge("temperature").set(21.5)
        exporter = MetricsExporter(registry, topic_name, sink=sink, interval=None)
        sink.produce(topic_name, b"an ordinary record")
        exporter.close(10)
        assert not sink.closed
        assert sink.flush(10) == 0
        metrics_records = exporter.stats().records_delivered
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=1 + metrics_records)
    names = {s.name for _, s in decoded_samples([r for r in got if r.headers])}
    assert "temperature" in names
    assert "kafka_sink_records_sent_total" in names  # the shared sink's own metrics
    assert any(r.value == b"an ordinary record" for r in got)
