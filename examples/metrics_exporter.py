"""Export application metrics to Kafka, then read them back.

Run it from the repository root (it needs ``pip install -e '.[testing]'`` for
the embedded cluster and the reader)::

    python3 examples/metrics_exporter.py
    python3 examples/metrics_exporter.py --encoding influx --per snapshot
    python3 examples/metrics_exporter.py --bootstrap-servers localhost:9092

Without ``--bootstrap-servers`` it starts an embedded Kafka cluster
(librdkafka's mock cluster, :class:`kafka_sink.testing.MockCluster`). Four
threads serve simulated requests, counting them, timing them and tracking
how many are in flight; a :class:`kafka_sink.MetricsExporter` ships the
metrics every half second on its own thread, and once more when it closes.
An independent consumer (librdkafka) then reads the topic and prints each
record as ``kafka-sink tail`` would, through
:func:`kafka_sink.metrics.encodings.describe`. The exit status is 0 when
the last values read back are exactly the application's.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

from kafka_sink import MetricsExporter, MetricsRegistry
from kafka_sink.metrics import Sample
from kafka_sink.metrics.encodings import decode, describe
from kafka_sink.metrics.samples import series_id

TOPIC = "app-metrics"
ROUTES = ("/", "/login", "/search", "/cart")


@contextlib.contextmanager
def cluster(bootstrap_servers: str | None) -> Iterator[str]:
    if bootstrap_servers:
        yield bootstrap_servers
        return
    from kafka_sink.testing import MockCluster  # noqa: PLC0415 - only for the embedded cluster

    with MockCluster(num_brokers=3, topics={TOPIC: 3}) as embedded:
        print(f"embedded cluster (librdkafka mock) at {embedded.bootstrap_servers}")
        yield embedded.bootstrap_servers


def serve(registry: MetricsRegistry, seconds: float, seed: int) -> None:
    """Simulated request handlers: count, time and track requests from four threads."""
    requests = registry.counter("http_requests_total", "Requests served", labels=["route", "code"])
    latency = registry.histogram(
        "http_request_seconds", "Time to serve a request", buckets=[0.001, 0.01, 0.1, 1]
    )
    in_flight = registry.gauge("http_requests_in_flight", "Requests being served")
    deadline = time.monotonic() + seconds

    def handler(index: int) -> None:
        rng = random.Random(seed + index)
        ok = {route: requests.labels(route, 200) for route in ROUTES}  # look up once
        while time.monotonic() < deadline:
            route = rng.choice(ROUTES)
            with in_flight.track_inprogress():
                duration = rng.expovariate(200)
                latency.observe(duration)
                if rng.random() < 0.02:
                    requests.labels(route, 500).inc()
                else:
                    ok[route].inc()
            time.sleep(0.001)

    threads = [threading.Thread(target=handler, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def read_back(servers: str, expected: int) -> list[tuple[int, bytes, bytes, str]]:
    """Every record of the topic, read by librdkafka: (partition, key, value, encoding)."""
    from confluent_kafka import Consumer, TopicPartition  # noqa: PLC0415 - example-only dependency

    consumer = Consumer(
        {"bootstrap.servers": servers, "group.id": "metrics-example", "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(TOPIC, timeout=10)
        partitions = sorted(metadata.topics[TOPIC].partitions)
        consumer.assign([TopicPartition(TOPIC, p, 0) for p in partitions])
        out: list[tuple[int, bytes, bytes, str]] = []
        deadline = time.monotonic() + 30
        while len(out) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            headers = dict(message.headers() or [])
            encoding = (headers.get("metrics-encoding") or b"").decode()
            out.append((message.partition() or 0, message.key(), message.value(), encoding))
        return out
    finally:
        consumer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap-servers", help="an existing cluster (default: embedded)")
    parser.add_argument("--encoding", default="json", help="json (default), influx, prometheus")
    parser.add_argument("--per", choices=["series", "snapshot"], default="series")
    parser.add_argument("--seconds", type=float, default=1.2, help="how long to serve")
    args = parser.parse_args(argv)

    with cluster(args.bootstrap_servers) as servers:
        registry = MetricsRegistry()
        exporter = MetricsExporter(
            registry,
            TOPIC,
            servers,
            interval=0.5,
            encoding=args.encoding,
            per=args.per,
            labels={"service": "example-shop"},
            sink_metrics=False,  # True (the default) adds the sink's own kafka_sink_* series
        )
        serve(registry, args.seconds, seed=42)
        exporter.close(10)  # the final export: the values below
        stats = exporter.stats()
        print(
            f"{stats.exports} exports, {stats.records_produced} records produced, "
            f"{stats.records_delivered} delivered, {stats.records_dropped_total} dropped"
        )

        records = read_back(servers, stats.records_delivered)
        decoded = []
        for partition, key, value, encoding in records:
            snapshot = decode(value, encoding)
            if snapshot is not None:
                decoded.append((snapshot[1], partition, key, value, encoding))
        last = max((snapshot.timestamp_ms for snapshot, *_ in decoded), default=0)
        print(f"read back {len(records)} records from {TOPIC!r}; the last export's:")
        got = {}
        for snapshot, partition, key, value, encoding in decoded:
            if snapshot.timestamp_ms != last:
                continue
            print(f"  p{partition} key={key.decode()}")
            print(textwrap.indent(describe(value, encoding) or "", "    "))
            for sample in snapshot.samples:
                labels = tuple(pair for pair in sample.labels if pair[0] != "service")
                got[series_id(sample.name, labels)] = _values(sample)

    expected = {s.series_id: _values(s) for s in registry.collect()}
    if got != expected:
        print("the values read back differ from the application's", file=sys.stderr)
        return 1
    print(f"all {len(got)} series read back with the application's exact values")
    return 0


def _values(sample: Sample) -> tuple[object, ...]:
    return (sample.type, sample.value, sample.count, sample.sum, sample.buckets, sample.quantiles)


if __name__ == "__main__":
    sys.exit(main())
