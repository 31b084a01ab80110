"""Micro-benchmark of the metrics API's hot path and of one export.

Run it from the repository root (pytest does not collect it)::

    python3 tests/bench/bench_metrics.py [--rounds N] [--calls N] [--series 100,1000,10000]

Hot path, in ns per call (median of ``--rounds`` rounds; in each round every
case runs once, interleaved, so a busy neighbour hits them all alike; the
cost of the empty loop is subtracted from every figure):

* ``dict[key] += 1`` with a str key and with a tuple key: the yardstick;
* an uncontended ``threading.Lock`` around ``value += 1``: what a locked
  counter would cost;
* ``Counter.inc()`` (no labels), a labelled series kept by the caller
  (``child.inc()``), ``labels(route="/a").inc()`` and ``labels("/a").inc()``
  (a lookup each time), ``Histogram.observe()``, ``Gauge.set()`` and
  ``Gauge.inc()``.

Export, in ms per export of N counter series with one label (median of the
rounds): collecting the registry alone; collecting and encoding one record
per series (json, influx) and one record per snapshot; and a whole
``MetricsExporter.export()`` per series, with each record queued in a real
:class:`~kafka_sink.Sink` (whose broker does not answer, so nothing is sent
while timing; the buffer is large enough to hold every round).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable

from kafka_sink import Sink
from kafka_sink.integrations.metrics_exporter import MetricsExporter
from kafka_sink.metrics import MetricsRegistry, Snapshot
from kafka_sink.metrics.encodings import encode_influx, encode_json

Case = Callable[[int], None]


def loop_of(call: Callable[[], object]) -> Case:
    def run(calls: int) -> None:
        for _ in itertools.repeat(None, calls):
            call()

    return run


def hot_path_cases() -> dict[str, Case]:
    registry = MetricsRegistry()
    counter = registry.counter("ops_total", "Operations")
    routes = registry.counter("requests_total", "Requests", labels=["route"])
    child = routes.labels(route="/a")
    histogram = registry.histogram("latency_seconds", "Latency")
    gauge = registry.gauge("depth", "Depth")
    str_counts = {"requests_total/a": 0}
    tuple_counts = {("requests_total", "/a"): 0}
    lock = threading.Lock()
    box = [0]

    def dict_str(calls: int) -> None:
        d = str_counts
        for _ in itertools.repeat(None, calls):
            d["requests_total/a"] += 1

    def dict_tuple(calls: int) -> None:
        d = tuple_counts
        key = ("requests_total", "/a")
        for _ in itertools.repeat(None, calls):
            d[key] += 1

    def locked(calls: int) -> None:
        for _ in itertools.repeat(None, calls):
            with lock:
                box[0] += 1

    def empty(calls: int) -> None:
        for _ in itertools.repeat(None, calls):
            pass

    cases: dict[str, Case] = {
        "empty loop (subtracted)": empty,
        "dict[str] += 1": dict_str,
        "dict[tuple] += 1": dict_tuple,
        "with lock: value += 1": locked,
        "Counter.inc()": loop_of(counter.inc),
        "child.inc() (series kept)": loop_of(child.inc),
        'labels(route="/a").inc()': loop_of(lambda: routes.labels(route="/a").inc()),
        'labels("/a").inc()': loop_of(lambda: routes.labels("/a").inc()),
        "Histogram.observe(0.3)": loop_of(lambda: histogram.observe(0.3)),
        "Gauge.set(3)": loop_of(lambda: gauge.set(3)),
        "Gauge.inc()": loop_of(gauge.inc),
    }
    try:  # a reference, when installed: prometheus_client's counter takes a lock
        import prometheus_client
    except ImportError:
        return cases
    reference = prometheus_client.Counter(
        "bench_total", "", ["route"], registry=prometheus_client.CollectorRegistry()
    )
    cases["prometheus_client child.inc() (reference)"] = loop_of(reference.labels("/a").inc)
    return cases


def bench_hot_path(rounds: int, calls: int) -> dict[str, float]:
    cases = hot_path_cases()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, run in cases.items():
            start = time.perf_counter_ns()
            run(calls)
            samples[name].append((time.perf_counter_ns() - start) / calls)
    empty = statistics.median(samples.pop("empty loop (subtracted)"))
    # The lambdas add one Python call each: measure it and take it off too.
    return {name: statistics.median(values) - empty for name, values in samples.items()}


def lambda_cost(rounds: int, calls: int) -> float:
    def nothing() -> None:
        return None

    direct = loop_of(nothing)
    wrapped = loop_of(lambda: nothing())  # noqa: PLW0108 - the wrapper is what is measured
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        for run, out in ((direct, a), (wrapped, b)):
            start = time.perf_counter_ns()
            run(calls)
            out.append((time.perf_counter_ns() - start) / calls)
    return max(0.0, statistics.median(b) - statistics.median(a))


def registry_of(series: int) -> MetricsRegistry:
    registry = MetricsRegistry()
    counter = registry.counter("requests_total", "Requests", labels=["route"])
    for i in range(series):
        counter.labels(f"/route/{i}").inc(i)
    return registry


def per_series(
    registry: MetricsRegistry, encode: Callable[[Snapshot], bytes]
) -> Callable[[], None]:
    """Collect, then encode one snapshot per series and its key, as the exporter does."""

    def encode_each() -> None:
        snapshot = Snapshot(1, tuple(registry.collect()))
        for sample in snapshot.samples:
            encode(Snapshot(1, (sample,)))
            sample.series_id.encode()

    return encode_each


def per_snapshot(
    registry: MetricsRegistry, encode: Callable[[Snapshot], bytes]
) -> Callable[[], None]:
    """Collect, then encode the whole snapshot as one value."""

    def encode_all() -> None:
        encode(Snapshot(1, tuple(registry.collect())))

    return encode_all


def bench_export(rounds: int, series_counts: list[int]) -> dict[int, dict[str, float]]:
    results: dict[int, dict[str, float]] = {}
    with socket.socket() as closed_port:  # bound, never listening: nothing is delivered
        closed_port.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{closed_port.getsockname()[1]}"
        for series in series_counts:
            registry = registry_of(series)
            sink = Sink(
                address,
                buffer_memory=1 << 30,
                delivery_timeout_ms=3_600_000,
                compression_type="none",
            )
            exporter = MetricsExporter(
                registry, "metrics", sink=sink, interval=None, sink_metrics=False
            )

            cases: dict[str, Callable[[], object]] = {
                "collect": registry.collect,
                "collect + json per series": per_series(registry, encode_json),
                "collect + influx per series": per_series(registry, encode_influx),
                "collect + json per snapshot": per_snapshot(registry, encode_json),
                "collect + influx per snapshot": per_snapshot(registry, encode_influx),
                "export() json per series, into a Sink": exporter.export,
            }
            samples: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(rounds):
                for name, run in cases.items():
                    start = time.perf_counter_ns()
                    run()
                    samples[name].append((time.perf_counter_ns() - start) / 1e6)
            results[series] = {name: statistics.median(v) for name, v in samples.items()}
            exporter.close(0, final_export=False)
            sink.close(0)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="metrics hot path and export costs")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--series", default="100,1000,10000")
    args = parser.parse_args(argv)
    series_counts = [int(n) for n in args.series.split(",") if n]

    print(
        f"CPython {platform.python_version()} on {platform.system()} with "
        f"{os.cpu_count()} CPUs; median of {args.rounds} rounds\n"
    )
    hot = bench_hot_path(args.rounds, args.calls)
    call = lambda_cost(args.rounds, args.calls)
    base = hot["dict[str] += 1"]
    print("| operation | ns per call | vs dict[str] += 1 |")
    print("|---|---:|---:|")
    for name, measured in hot.items():
        wrapped = "labels(" in name or name.startswith(("Histogram", "Gauge.set"))
        ns = measured - call if wrapped else measured  # the lambda is not the operation
        print(f"| `{name}` | {ns:.0f} | {ns / base:.2f}x |")
    print(f"\n(one Python call, taken off the lambda-wrapped rows: {call:.0f} ns)\n")

    exports = bench_export(args.rounds, series_counts)
    names = list(next(iter(exports.values())))
    print("| ms per export | " + " | ".join(f"{n:,} series" for n in series_counts) + " |")
    print("|---|" + "---:|" * len(series_counts))
    for name in names:
        row = " | ".join(f"{exports[n][name]:.2f}" for n in series_counts)
        print(f"| {name} | {row} |")
    print()
    print("| µs per series | " + " | ".join(f"{n:,} series" for n in series_counts) + " |")
    print("|---|" + "---:|" * len(series_counts))
    for name in names:
        row = " | ".join(f"{exports[n][name] * 1000 / n:.2f}" for n in series_counts)
        print(f"| {name} | {row} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
