"""MetricsRegistry: counters, gauges and histograms are exact under threads, labels behave."""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from kafka_sink import InvalidArgumentError
from kafka_sink.metrics import (
    DEFAULT_BUCKETS,
    Counter,
    CounterChild,
    Gauge,
    Histogram,
    MetricsRegistry,
    Sample,
)

THREADS = 8
PER_THREAD = 20_000


@pytest.fixture(autouse=True)
def _frequent_thread_switches() -> Iterator[None]:
    # Switch threads far more often than the default 5 ms, so that increments
    # of different threads interleave as much as the interpreter allows.
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


def run_threads(work: Callable[[int], None], threads: int = THREADS) -> None:
    """Start every thread at once (a barrier), then join them all."""
    barrier = threading.Barrier(threads)

    def body(index: int) -> None:
        barrier.wait()
        work(index)

    workers = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def by_series(samples: list[Sample]) -> dict[str, Sample]:
    return {s.series_id: s for s in samples}


def test_counter_counts_exactly_from_eight_threads() -> None:
    registry = MetricsRegistry()
    total = registry.counter("ops_total", "Operations")
    routes = registry.counter("requests_total", "Requests", labels=["route"])
    shared = routes.labels(route="/shared")

    def work(index: int) -> None:
        own = routes.labels(route=f"/t{index}")
        for _ in range(PER_THREAD):
            total.inc()
            shared.inc()
            own.inc(2)
        routes.labels("/shared").inc(0.5)  # a lookup by position finds the same series

    run_threads(work)
    series = by_series(registry.collect())
    assert series["ops_total"].value == THREADS * PER_THREAD
    assert series['requests_total{route="/shared"}'].value == THREADS * PER_THREAD + THREADS * 0.5
    for index in range(THREADS):
        assert series[f'requests_total{{route="/t{index}"}}'].value == 2 * PER_THREAD
    assert total.get() == THREADS * PER_THREAD


def test_histogram_and_gauge_are_exact_from_eight_threads() -> None:
    registry = MetricsRegistry()
    latency = registry.histogram("latency_seconds", "Latency", buckets=[0.1, 1.0])
    level = registry.gauge("level", "Level")
    values = (0.05, 0.1, 0.5, 1.0, 7.0)  # two on a bound: "le" counts them in that bucket

    def work(index: int) -> None:
        for i in range(PER_THREAD):
            latency.observe(values[i % len(values)])
            level.inc(3)
            level.dec(2)

    run_threads(work)
    count, total, buckets = latency.get()
    n = THREADS * PER_THREAD
    assert count == n
    assert buckets == ((0.1, 2 * n // 5), (1.0, 4 * n // 5), (math.inf, n))
    assert total == pytest.approx(n // 5 * sum(values))
    assert level.get() == n


def test_cells_of_ended_threads_are_folded_and_keep_their_counts() -> None:
    counter = CounterChild()
    run_threads(counter.inc, threads=6)
    counter.inc(100)
    assert counter.get() == sum(range(6)) + 100
    # Only the live (main) thread keeps a cell; the ended ones moved into the total.
    assert len(counter._store._cells) == 1
    assert counter.get() == sum(range(6)) + 100


def test_histogram_buckets_use_less_or_equal_and_plus_inf() -> None:
    histogram = Histogram("h", buckets=[1, 2, 5])
    for value in (0, 1, 1.5, 2, 4.99, 5, 5.01, 1e9, -3):
        histogram.observe(value)
    count, total, buckets = histogram.get()
    assert buckets == ((1.0, 3), (2.0, 5), (5.0, 7), (math.inf, 9))
    assert count == 9
    assert total == pytest.approx(0 + 1 + 1.5 + 2 + 4.99 + 5 + 5.01 + 1e9 - 3)
    histogram.observe(math.nan)  # counted in +Inf only, like Prometheus' Go client
    _, total, buckets = histogram.get()
    assert buckets[-1] == (math.inf, 10)
    assert buckets[0] == (1.0, 3)
    assert math.isnan(total)


def test_histogram_defaults_and_timer() -> None:
    registry = MetricsRegistry()
    latency = registry.histogram("request_seconds")
    assert latency.buckets == DEFAULT_BUCKETS
    with latency.time():
        pass
    count, total, buckets = latency.get()
    assert count == 1
    assert total >= 0
    assert len(buckets) == len(DEFAULT_BUCKETS) + 1


@pytest.mark.parametrize(
    ("buckets", "problem"),
    [
        ([], "at least one"),
        ([2, 1], "increasing"),
        ([1, 1], "increasing"),
        ([1, math.nan], "numbers"),
        ([-math.inf, 1], "finite"),
        (["1"], "numbers"),
        ("1,2", "sequence"),
    ],
)
def test_bad_buckets_are_refused(buckets: object, problem: str) -> None:
    with pytest.raises(InvalidArgumentError, match=problem) as info:
        Histogram("h", buckets=buckets)  # type: ignore[arg-type]  # bad buckets on purpose
    assert info.value.argument == "buckets"


def test_plus_inf_in_buckets_is_implied() -> None:
    assert Histogram("h", buckets=[1, math.inf]).buckets == (1.0,)


def test_gauge_set_inc_dec_function_and_in_progress() -> None:
    registry = MetricsRegistry()
    gauge = registry.gauge("queue_depth")
    gauge.set(10)
    gauge.inc()
    gauge.dec(4)
    assert gauge.get() == 7
    with gauge.track_inprogress():
        assert gauge.get() == 8
    assert gauge.get() == 7
    items = [1, 2, 3]
    gauge.set_function(lambda: len(items))
    assert registry.collect()[0].value == 3
    gauge.set_function(None)
    assert gauge.get() == 7


def test_a_failing_gauge_function_leaves_only_its_series_out() -> None:
    registry = MetricsRegistry()
    broken = registry.gauge("broken")
    broken.set_function(lambda: 1 / 0)
    registry.counter("fine_total").inc()
    assert [s.name for s in registry.collect()] == ["fine_total"]


def test_labels_by_name_or_position_and_text_values() -> None:
    counter = Counter("http_requests_total", "Requests", ["route", "code"])
    a = counter.labels(route="/a", code=200)
    assert counter.labels("/a", "200") is a
    assert counter.labels(code="200", route="/a") is a
    assert counter.labels("/a", 200) is a
    assert a.labelset == (("code", "200"), ("route", "/a"))
    a.inc()
    counter.labels("/b", 500).inc(3)
    samples = counter.collect()
    assert {s.labels: s.value for s in samples} == {
        (("code", "200"), ("route", "/a")): 1,
        (("code", "500"), ("route", "/b")): 3,
    }
    assert all(s.type == "counter" and s.help == "Requests" for s in samples)


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        (lambda c: c.labels(route="/a"), "needs label 'code'"),
        (lambda c: c.labels(route="/a", code=1, user="x"), "no label named 'user'"),
        (lambda c: c.labels("/a"), "takes 2 label values"),
        (lambda c: c.labels("/a", code=1), "by position or by name"),
        (lambda c: c.inc(), r"call \.labels"),
    ],
)
def test_label_mistakes_are_named(call: Callable[[Counter], object], problem: str) -> None:
    counter = Counter("c_total", "", ["route", "code"])
    with pytest.raises(InvalidArgumentError, match=problem) as info:
        call(counter)
    assert info.value.argument == "labels"


def test_labelled_gauge_and_histogram_need_labels_and_unlabelled_have_none() -> None:
    with pytest.raises(InvalidArgumentError, match=r"call \.labels"):
        Gauge("g", "", ["a"]).set(1)
    with pytest.raises(InvalidArgumentError, match=r"call \.labels"):
        Histogram("h", "", ["a"]).observe(1)
    with pytest.raises(InvalidArgumentError, match="has no label names"):
        Counter("c_total").labels("x")


def test_counter_refuses_to_go_down() -> None:
    counter = Counter("c_total")
    with pytest.raises(InvalidArgumentError) as info:
        counter.inc(-1)
    assert info.value.argument == "amount"
    assert counter.get() == 0


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda r: r.counter("bad name"), "name"),
        (lambda r: r.counter("1abc"), "name"),
        (lambda r: r.counter("ok", labels=["bad-label"]), "labels"),
        (lambda r: r.counter("ok", labels=["__reserved"]), "labels"),
        (lambda r: r.counter("ok", labels=["a", "a"]), "labels"),
        (lambda r: r.counter("ok", labels="route"), "labels"),
        (lambda r: r.histogram("ok", labels=["le"]), "labels"),
        (lambda r: r.gauge("ok", help=3), "help"),
    ],
)
def test_bad_names_are_refused(build: Callable[[MetricsRegistry], object], argument: str) -> None:
    registry = MetricsRegistry()
    with pytest.raises(InvalidArgumentError) as info:
        build(registry)
    assert info.value.argument == argument
    assert len(registry) == 0


def test_registering_again_returns_the_same_metric_or_refuses_a_different_one() -> None:
    registry = MetricsRegistry()
    counter = registry.counter("jobs_total", "Jobs", labels=["queue"])
    assert registry.counter("jobs_total", "Jobs", labels=["queue"]) is counter
    assert registry.get("jobs_total") is counter
    with pytest.raises(InvalidArgumentError, match="already registered as a counter"):
        registry.gauge("jobs_total")
    with pytest.raises(InvalidArgumentError, match="other label names"):
        registry.counter("jobs_total", labels=["queue", "host"])
    histogram = registry.histogram("h", buckets=[1])
    with pytest.raises(InvalidArgumentError, match="buckets"):
        registry.histogram("h", buckets=[2])
    assert registry.histogram("h", buckets=[1.0]) is histogram
    registry.unregister("jobs_total")
    assert registry.get("jobs_total") is None
    assert [m.name for m in registry] == ["h"]


def test_remove_clear_and_reset() -> None:
    registry = MetricsRegistry()
    counter = registry.counter("c_total", labels=["k"])
    plain = registry.counter("plain_total")
    counter.labels(1).inc()
    counter.labels("2").inc()
    plain.inc(5)
    counter.remove(1)
    assert [s.labels for s in counter.collect()] == [(("k", "2"),)]
    counter.clear()
    assert counter.collect() == []
    gauges = registry.gauge("g", labels=["k"])
    gauges.labels("a").set(3)
    histogram = registry.histogram("h", buckets=[1])
    histogram.observe(0.5)
    counter.labels("3").inc()
    registry.reset()
    assert plain.get() == 0
    assert gauges.labels("a").get() == 0
    assert histogram.get() == (0, 0, ((1.0, 0), (math.inf, 0)))
    assert counter.labels("3").get() == 0


def test_collect_keeps_registration_order_and_types() -> None:
    registry = MetricsRegistry()
    registry.counter("a_total").inc()
    registry.gauge("b").set(-2.5)
    registry.histogram("c", buckets=[1]).observe(0.5)
    samples = registry.collect()
    assert [(s.name, s.type) for s in samples] == [
        ("a_total", "counter"),
        ("b", "gauge"),
        ("c", "histogram"),
    ]
    assert samples[1].value == -2.5
    assert samples[2].count == 1
    assert samples[2].buckets == ((1.0, 1), (math.inf, 1))
