"""MetricsExporter without a broker: schedule, records, keys, errors, plugins, lifecycle."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from kafka_sink import BufferFullError, DeadLetter, InvalidArgumentError, Sink, hookimpl
from kafka_sink.integrations.metrics_exporter import MetricsExporter
from kafka_sink.metrics import MetricsRegistry, Sample, Snapshot
from kafka_sink.metrics.collectors import sink_samples
from kafka_sink.metrics.encodings import decode_influx, decode_json
from kafka_sink.producer.futures import UndeliveredRecord
from tests.child import run_python
from tests.fakes import FakeClock


class RecordingSink(Sink):
    """A Sink that keeps what it is given and never connects (produce is replaced)."""

    def __init__(self, **options: Any) -> None:
        super().__init__("127.0.0.1:1", **options)
        self.records: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.fail_with: BufferFullError | None = None

    def enqueue(  # type: ignore[override]  # takes what the exporter passes, no more
        self, topic: str, value: bytes, key: bytes | None = None, **kwargs: Any
    ) -> None:
        with self.lock:
            self.records.append({"topic": topic, "value": value, "key": key, **kwargs})
        report = kwargs["report"]
        if self.fail_with is not None:
            headers = tuple(kwargs.get("headers") or ())
            report.failed(self.fail_with, [UndeliveredRecord(topic, key, value, headers)])
        else:
            report.delivered(1)


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    recording = RecordingSink()
    yield recording
    recording.close(0)


def exporter_for(sink: Sink, registry: MetricsRegistry | None, **options: Any) -> MetricsExporter:
    options.setdefault("interval", None)
    options.setdefault("sink_metrics", False)
    options.setdefault("entry_points", False)
    return MetricsExporter(registry, "metrics", sink=sink, **options)


def small_registry() -> MetricsRegistry:
    registry = MetricsRegistry()
    registry.counter("requests_total", "Requests", labels=["route"]).labels("/a").inc(3)
    registry.gauge("depth").set(7)
    return registry


# -- schedule ---------------------------------------------------------------------------


class FakeTimer:
    """A clock and a ``wait`` in one: waiting moves the clock, plus a late wake-up.

    Exports take time too (a collector moves the clock). After ``ticks``
    waits it tells the exporter to stop, so the test joins a finished thread;
    no real time passes.
    """

    def __init__(self, ticks: int, seed: int = 7) -> None:
        self.clock = FakeClock()
        self.ticks = ticks
        self.rng = random.Random(seed)
        self.waits: list[float] = []
        self.export_times: list[float] = []
        self.done = threading.Event()

    def wait(self, seconds: float) -> bool:
        if len(self.export_times) >= self.ticks:
            self.done.set()
            return True
        self.waits.append(seconds)
        self.clock.now += seconds + self.rng.uniform(0.0, 0.05)  # wakes up late
        return False

    def collect(self) -> list[Sample]:
        self.export_times.append(self.clock.now)
        self.clock.now += self.rng.uniform(0.0, 0.3)  # the export itself takes time
        return []


def collector_plugin(collect: Any) -> object:
    class Plugin:
        @hookimpl
        def kafka_sink_metrics_collector(self) -> Any:
            return collect

    return Plugin()


def test_ticks_do_not_drift_over_many_intervals(sink: RecordingSink) -> None:
    timer = FakeTimer(ticks=2000)
    start = timer.clock.now
    exporter = exporter_for(
        sink,
        None,
        interval=1.0,
        clock=timer.clock,
        wait=timer.wait,
        plugins=[collector_plugin(timer.collect)],
    )
    assert timer.done.wait(30)
    exporter.close(0, final_export=False)
    times = timer.export_times
    assert len(times) == 2000
    # The k-th export happens after its due time start + k, and before the
    # next one: late wake-ups and slow exports never add up.
    for k, at in enumerate(times, 1):
        assert start + k <= at < start + k + 0.05 + 1e-9
    assert exporter.stats().missed_intervals == 0
    assert exporter.stats().exports == 2000


def test_an_overrunning_export_skips_ticks_instead_of_bunching(sink: RecordingSink) -> None:
    clock = FakeClock()
    start = clock.now
    times: list[float] = []
    done = threading.Event()

    def wait(seconds: float) -> bool:
        if len(times) >= 5:
            done.set()
            return True
        clock.now += seconds
        return False

    def slow_collect() -> list[Sample]:
        times.append(clock.now)
        if len(times) == 2:
            clock.now += 3.5  # overruns three ticks
        elif len(times) == 3:
            clock.now += 1.0  # ends just as the next tick is due: not a miss
        return []

    exporter = exporter_for(
        sink,
        None,
        interval=1.0,
        clock=clock,
        wait=wait,
        plugins=[collector_plugin(slow_collect)],
    )
    assert done.wait(30)
    exporter.close(0, final_export=False)
    assert [t - start for t in times] == [1.0, 2.0, 6.0, 7.0, 8.0]
    assert exporter.stats().missed_intervals == 3


def test_close_wakes_the_timer_at_once(sink: RecordingSink) -> None:
    exporter = exporter_for(sink, small_registry(), interval=3600.0)
    thread = exporter._thread
    assert thread is not None
    assert thread.is_alive()
    exporter.close(5)
    assert not thread.is_alive()  # the hour-long wait was cut short
    assert exporter.stats().exports == 1  # the final export only
    assert exporter.closed
    exporter.close()  # idempotent
    assert exporter.export() == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork() is POSIX only")
def test_a_forked_child_gets_an_inert_copy() -> None:
    code = """
        import os
        from kafka_sink import Sink
        from kafka_sink.integrations.metrics_exporter import MetricsExporter
        from kafka_sink.metrics import MetricsRegistry
        registry = MetricsRegistry()
        registry.counter("c_total").inc()
        sink = Sink("127.0.0.1:1")
        exporter = MetricsExporter(
            registry, "metrics", sink=sink, interval=3600, sink_metrics=False
        )
        pid = os.fork()
        if pid == 0:  # the child: closed, no timer, exports nothing, closes at once
            ok = exporter.closed and exporter._thread is None and exporter.export() == 0
            exporter.close()
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        assert not exporter.closed and exporter._thread.is_alive()  # the parent's runs on
        assert exporter.export() == 1
        exporter.close(0, final_export=False)
        sink.close(0)
        """
    result = run_python(code)
    assert result.returncode == 0, result.stderr


# -- records ------------------------------------------------------------------------------


def test_per_series_records_are_keyed_by_series_id(sink: RecordingSink) -> None:
    exporter = exporter_for(sink, small_registry(), wall_clock=lambda: 1_700_000_000.5)
    assert exporter.export() == 2
    assert [r["key"] for r in sink.records] == [b'requests_total{route="/a"}', b"depth"]
    for record in sink.records:
        assert record["topic"] == "metrics"
        assert record["timestamp"] == 1_700_000_000_500
        assert record["headers"] == (("metrics-encoding", b"json"),)
        snapshot = decode_json(record["value"])
        assert snapshot.timestamp_ms == 1_700_000_000_500
        assert len(snapshot.samples) == 1
    assert decode_json(sink.records[0]["value"]).samples[0].value == 3
    stats = exporter.stats()
    assert (stats.exports, stats.samples, stats.records_produced) == (1, 2, 2)
    assert stats.records_delivered == 2
    exporter.close(0, final_export=False)


def test_per_snapshot_record_is_keyed_by_instance(sink: RecordingSink) -> None:
    exporter = exporter_for(
        sink, small_registry(), per="snapshot", instance="web-1", encoding="influx"
    )
    assert exporter.export() == 1
    (record,) = sink.records
    assert record["key"] == b"web-1"
    assert record["headers"] == (("metrics-encoding", b"influx"),)
    assert [s.name for s in decode_influx(record["value"]).samples] == ["requests_total", "depth"]
    exporter.close(0, final_export=False)


def test_a_large_snapshot_is_split_below_max_request_size() -> None:
    sink = RecordingSink(max_request_size=2048)
    registry = MetricsRegistry()
    counter = registry.counter("events_total", labels=["user"])
    for i in range(300):
        counter.labels(f"user-{i:04d}").inc(i)
    exporter = exporter_for(sink, registry, per="snapshot")
    produced = exporter.export()
    assert produced > 1
    assert all(len(r["value"]) <= 2048 - 512 for r in sink.records)
    values = {}
    for record in sink.records:
        for sample in decode_json(record["value"]).samples:
            values[sample.labels[0][1]] = sample.value
    assert values == {f"user-{i:04d}": i for i in range(300)}  # every series exactly once
    exporter.close(0, final_export=False)
    sink.close(0)


def test_constant_labels_are_added_and_series_labels_win(sink: RecordingSink) -> None:
    registry = MetricsRegistry()
    registry.counter("a_total", labels=["env"]).labels("test").inc()
    exporter = exporter_for(sink, registry, labels={"service": "billing", "env": "prod"})
    exporter.export()
    sample = decode_json(sink.records[0]["value"]).samples[0]
    assert sample.labels == (("env", "test"), ("service", "billing"))
    assert sink.records[0]["key"] == b'a_total{env="test",service="billing"}'
    exporter.close(0, final_export=False)


def test_nothing_to_export_produces_nothing(sink: RecordingSink) -> None:
    exporter = exporter_for(sink, MetricsRegistry())
    assert exporter.export() == 0
    assert sink.records == []
    assert exporter.stats().exports == 1
    exporter.close(0)


def test_close_exports_a_last_time_and_leaves_a_shared_sink_open(sink: RecordingSink) -> None:
    registry = small_registry()
    exporter = exporter_for(sink, registry)
    registry.gauge("depth").set(9)
    exporter.close(1)
    assert len(sink.records) == 2
    assert decode_json(sink.records[1]["value"]).samples[0].value == 9
    assert not sink.closed


def test_owned_sink_is_built_with_metrics_defaults_and_closed() -> None:
    exporter = MetricsExporter(
        MetricsRegistry(), "metrics", "127.0.0.1:1", interval=None, linger_ms=50
    )
    assert exporter.owns_sink
    config = exporter.sink.config
    assert (config.client_id, config.buffer_memory, config.linger_ms) == (
        "kafka-sink-metrics",
        8 * 1024 * 1024,
        50.0,
    )
    exporter.close(0)
    assert exporter.sink.closed


# -- errors and drops -------------------------------------------------------------------


def test_failing_collectors_and_encoders_cost_only_their_share(sink: RecordingSink) -> None:
    def broken() -> list[Sample]:
        raise RuntimeError("collector bug")

    def half_broken() -> Iterator[Sample]:
        yield Sample("before_total", "counter", (), 1)
        raise RuntimeError("fails half way")

    class PickyEncoder:
        @hookimpl
        def kafka_sink_metrics_encoder(self, name: str) -> Any:
            if name != "picky":
                return None

            def encode(snapshot: Snapshot) -> bytes:
                if snapshot.samples[0].name == "depth":
                    raise ValueError("will not encode depth")
                return snapshot.samples[0].name.encode()

            return encode

    exporter = exporter_for(
        sink,
        small_registry(),
        encoding="picky",
        plugins=[collector_plugin(broken), collector_plugin(half_broken), PickyEncoder()],
    )
    assert exporter.export() == 2
    assert sorted(r["value"] for r in sink.records) == [b"before_total", b"requests_total"]
    stats = exporter.stats()
    assert stats.collect_errors == 2
    assert stats.encode_errors == 1
    exporter.close(0, final_export=False)


def test_drops_are_counted_by_reason_and_told_to_dead_letters(sink: RecordingSink) -> None:
    letters: list[DeadLetter] = []
    sink.fail_with = BufferFullError("dropped to make room")
    exporter = exporter_for(sink, small_registry(), dead_letter=letters.append)
    exporter.export()
    stats = exporter.stats()
    assert stats.records_dropped == {"buffer_full": 2}
    assert stats.records_dropped_total == 2
    assert stats.records_delivered == 0
    assert [(d.reason, d.topic, d.key) for d in letters] == [
        ("buffer_full", "metrics", b'requests_total{route="/a"}'),
        ("buffer_full", "metrics", b"depth"),
    ]
    assert letters[0].value is not None
    assert decode_json(letters[0].value).samples[0].value == 3
    assert stats.dead_letter_errors == 0


def test_a_failing_dead_letter_function_is_counted(sink: RecordingSink) -> None:
    def broken(letter: DeadLetter) -> None:
        raise RuntimeError("dead-letter bug")

    sink.fail_with = BufferFullError("dropped to make room")
    exporter = exporter_for(sink, small_registry(), dead_letter=broken)
    exporter.export()
    assert exporter.stats().dead_letter_errors == 2
    assert exporter.stats().records_dropped == {"buffer_full": 2}


def test_a_closed_shared_sink_is_counted_not_raised() -> None:
    sink = Sink("127.0.0.1:1")
    exporter = exporter_for(sink, small_registry())
    sink.close(0)
    assert exporter.export() == 0
    assert exporter.stats().records_dropped == {"closed": 2}
    exporter.close(0)  # no final export into a closed sink, no error


# -- plugins and arguments -----------------------------------------------------------------


def test_plugin_collectors_see_the_sink_and_options(sink: RecordingSink) -> None:
    seen: dict[str, Any] = {}

    class Plugin:
        @hookimpl
        def kafka_sink_metrics_collector(self, sink: Sink, options: Mapping[str, Any]) -> Any:
            seen["sink"] = sink
            seen["options"] = dict(options)
            return lambda: [Sample("plugin_value", "gauge", (), 1.5)]

    exporter = exporter_for(
        sink, small_registry(), plugins=[Plugin()], collector_options={"region": "eu"}
    )
    exporter.export()
    assert seen["sink"] is sink
    assert seen["options"] == {"region": "eu", "sink_metrics": False, "prometheus_registry": None}
    names = [decode_json(r["value"]).samples[0].name for r in sink.records]
    assert names == ["requests_total", "depth", "plugin_value"]  # the registry's first
    exporter.close(0, final_export=False)


def test_the_sink_metrics_are_exported_by_default(sink: RecordingSink) -> None:
    exporter = exporter_for(sink, None, sink_metrics=True)
    exporter.export()
    names = {decode_json(r["value"]).samples[0].name for r in sink.records}
    assert {"kafka_sink_records_sent_total", "kafka_sink_buffer_bytes_used"} <= names
    exporter.close(0, final_export=False)


def test_sink_samples_map_counts_levels_and_states() -> None:
    metrics = {
        "records_sent": 10,
        "records_dropped": {"buffer_full": 3},
        "records_dropped_total": 3,
        "buffer_bytes_used": 512,
        "idempotence": "enabled",
        "connections": {"1": "ready"},
        "records_per_batch": 2.5,
        "future_thing": {"x": 1, "y": "not a number"},
    }
    samples = {s.series_id: s for s in sink_samples(metrics, (("client_id", "c"),))}
    assert samples == {
        'kafka_sink_records_sent_total{client_id="c"}': Sample(
            "kafka_sink_records_sent_total", "counter", (("client_id", "c"),), 10
        ),
        'kafka_sink_records_dropped_total{client_id="c",reason="buffer_full"}': Sample(
            "kafka_sink_records_dropped_total",
            "counter",
            (("client_id", "c"), ("reason", "buffer_full")),
            3,
        ),
        'kafka_sink_buffer_bytes_used{client_id="c"}': Sample(
            "kafka_sink_buffer_bytes_used", "gauge", (("client_id", "c"),), 512
        ),
        'kafka_sink_idempotence{client_id="c",state="enabled"}': Sample(
            "kafka_sink_idempotence", "gauge", (("client_id", "c"), ("state", "enabled")), 1
        ),
        'kafka_sink_connection_state{client_id="c",node="1",state="ready"}': Sample(
            "kafka_sink_connection_state",
            "gauge",
            (("client_id", "c"), ("node", "1"), ("state", "ready")),
            1,
        ),
        'kafka_sink_records_per_batch{client_id="c"}': Sample(
            "kafka_sink_records_per_batch", "gauge", (("client_id", "c"),), 2.5
        ),
        'kafka_sink_future_thing{client_id="c",key="x"}': Sample(
            "kafka_sink_future_thing", "gauge", (("client_id", "c"), ("key", "x")), 1
        ),
    }


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"interval": 0}, "interval"),
        ({"interval": -1}, "interval"),
        ({"interval": float("inf")}, "interval"),
        ({"interval": "10"}, "interval"),
        ({"per": "record"}, "per"),
        ({"encoding": "yaml"}, "encoding"),
        ({"encoding": ""}, "encoding"),
        ({"encoding_options": {"indent": 1}}, "encoding_options"),
        ({"labels": {"bad-name": "x"}}, "labels"),
        ({"labels": {"env": 1}}, "labels"),
        ({"labels": "env=prod"}, "labels"),
        ({"close_timeout": -1}, "close_timeout"),
        ({"sink_metrics": "yes"}, "sink_metrics"),
        ({"dead_letter": "print"}, "dead_letter"),
        ({"prometheus_registry": object()}, "prometheus_registry"),
    ],
)
def test_bad_arguments_are_named(
    sink: RecordingSink, options: dict[str, Any], argument: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        exporter_for(sink, MetricsRegistry(), **options)
    assert info.value.argument == argument


def test_sink_arguments_are_checked(sink: RecordingSink) -> None:
    registry = MetricsRegistry()
    with pytest.raises(InvalidArgumentError) as info:
        MetricsExporter(registry, "metrics", interval=None)
    assert info.value.argument == "bootstrap_servers"
    with pytest.raises(InvalidArgumentError) as info:
        MetricsExporter(registry, "metrics", "h:1", sink=sink, interval=None)
    assert info.value.argument == "bootstrap_servers"
    with pytest.raises(InvalidArgumentError) as info:
        MetricsExporter(registry, "metrics", sink=sink, interval=None, linger_ms=5)
    assert info.value.argument == "linger_ms"
    with pytest.raises(InvalidArgumentError) as info:
        MetricsExporter(registry, "bad topic", sink=sink, interval=None)
    assert info.value.argument == "topic"
    not_a_registry: Any = {}
    with pytest.raises(InvalidArgumentError) as info:
        MetricsExporter(not_a_registry, "metrics", sink=sink, interval=None)
    assert info.value.argument == "registry"
    with pytest.raises(InvalidArgumentError) as info:
        MetricsExporter(registry, "metrics", "h:1", interval=None, lingerms=5)
    assert info.value.argument == "lingerms"


@pytest.mark.parametrize(
    "name", ["MetricsExporter", "ExporterConfig", "ExporterStats", "METRICS_SINK_DEFAULTS"]
)
def test_the_exporter_s_old_import_path_still_works_and_says_where_it_went(name: str) -> None:
    import kafka_sink.integrations.metrics_exporter as moved
    import kafka_sink.metrics

    with pytest.warns(DeprecationWarning, match=rf"kafka_sink\.metrics\.{name} has moved"):
        value = getattr(kafka_sink.metrics, name)
    assert value is getattr(moved, name)
    with pytest.raises(AttributeError, match="no attribute 'Exporter'"):
        kafka_sink.metrics.Exporter  # noqa: B018 - the lookup itself is what is tested
