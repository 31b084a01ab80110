"""``MetricsExporter``: ships snapshots of metrics to a Kafka topic on its own timer.

Theory of operation
-------------------
An exporter is built once: it builds a plugin manager, calls the metrics
factory hooks once (collectors, the encoder, dead-letter functions and, for
a sink it builds, partitioners) and keeps the callables they return. A
daemon thread then wakes every ``interval`` seconds and *exports*: it calls
the registry's and the plugins' collectors, adds the constant labels,
encodes the snapshot and hands the records to :meth:`kafka_sink.Sink.produce`,
which queues them without network I/O. The application's threads only
touch the registry, never the exporter.

Ticks are drift-free: the k-th export is due at ``start + k * interval`` on
the (injectable) monotonic clock, however long the exports before it took,
so a slow export or a late wake-up does not shift every later one. An export
that overruns one or more ticks does not cause a burst: the missed ticks are
skipped and counted (``stats().missed_intervals``). The thread sleeps in
:meth:`threading.Event.wait`, which :meth:`close` sets, so closing never
waits for a tick.

Records: with ``per="series"`` (the default) one record per series, keyed
by the series id (``name{label="value",...}``), so murmur2 keeps each series
on one partition and a compacted topic keeps each series' latest value; with
``per="snapshot"`` one record per export keyed by ``instance`` (the host
name by default), split in several when it would exceed the sink's
``max_request_size``. Every record carries the header ``metrics-encoding``
(the encoding's name) and the snapshot's time as its timestamp.

Bounded and never blocking the application: the sink buffers at most
``buffer_memory`` bytes and, with the default ``on_buffer_full="drop_oldest"``,
makes room by dropping the oldest unsent records when Kafka is unreachable.
Every record that is not delivered is counted by reason
(``stats().records_dropped``) and told to the dead-letter functions.

Lifecycle: :meth:`close` is idempotent and bounded by its timeout: it stops
the timer, exports one last time, then closes the sink it built (or flushes
a shared one). The interpreter's exit closes every open exporter, before the
sinks are closed. After ``os.fork()`` the child's copy of an exporter is
closed without exporting (the child has no timer thread): build an exporter
in each process, with labels that tell the processes apart.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import pluggy

from kafka_sink import lifecycle
from kafka_sink.config import check_topic
from kafka_sink.errors import InvalidArgumentError, SinkClosedError
from kafka_sink.hooks import plugin_manager
from kafka_sink.hooks.specs import (
    DeadLetterFunction,
    MetricsCollector,
    MetricsEncoder,
    RecordPartitioner,
)
from kafka_sink.integrations.shaping import (
    NO_OPTIONS,
    ChainPartitioner,
    DeliveryLedger,
    frozen_options,
    owned_or_shared_sink,
    parameter_names,
    sink_options_of,
)
from kafka_sink.metrics.encodings import ENCODING_HEADER
from kafka_sink.metrics.registry import MetricsRegistry
from kafka_sink.metrics.samples import Labels, Sample, Snapshot, check_label_name
from kafka_sink.producer.partitioner import (
    DefaultPartitioner,
    Murmur2Partitioner,
    Partitioner,
)
from kafka_sink.producer.sink import Sink

__all__ = ["METRICS_SINK_DEFAULTS", "ExporterConfig", "ExporterStats", "MetricsExporter"]

#: Sink options an exporter that builds its own sink uses unless told otherwise:
#: a smaller buffer than a Sink's 32 MiB (metrics are a few records per
#: series and interval; when Kafka is unreachable the newest snapshots are
#: the ones worth keeping), its own client id, and the handler's short
#: ``max_block_ms`` for whoever chooses ``on_buffer_full="block"``.
METRICS_SINK_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "client_id": "kafka-sink-metrics",
        "buffer_memory": 8 * 1024 * 1024,
        "on_buffer_full": "drop_oldest",
        "max_block_ms": 100.0,
    }
)

# Room left in a per-snapshot record for the batch and record framing,
# the key and the header, below the sink's max_request_size.
_FRAMING_ROOM = 512


@dataclass(frozen=True, slots=True)
class ExporterConfig:
    """What an exporter exports, where and how often (validated).

    The arguments of :class:`MetricsExporter` of the same names. ``labels``
    becomes sorted pairs and mappings are frozen.
    """

    topic: str
    interval: float | None = 10.0
    encoding: str = "json"
    encoding_options: Mapping[str, Any] = field(default_factory=lambda: NO_OPTIONS)
    per: Literal["series", "snapshot"] = "series"
    labels: Labels = ()
    instance: str = ""
    sink_metrics: bool = True
    prometheus_registry: object = None
    collector_options: Mapping[str, Any] = field(default_factory=lambda: NO_OPTIONS)
    close_timeout: float = 5.0

    def __post_init__(self) -> None:
        check_topic(self.topic)
        if self.interval is not None:
            interval = self.interval
            if (
                isinstance(interval, bool)
                or not isinstance(interval, int | float)
                or not math.isfinite(interval)
                or interval <= 0
            ):
                raise InvalidArgumentError(
                    "interval", f"must be None or a number of seconds > 0, got {interval!r}"
                )
            object.__setattr__(self, "interval", float(interval))
        if not isinstance(self.encoding, str) or not self.encoding:
            raise InvalidArgumentError("encoding", f"must be a name, got {self.encoding!r}")
        if self.per not in ("series", "snapshot"):
            raise InvalidArgumentError("per", f"must be 'series' or 'snapshot', got {self.per!r}")
        for name in ("encoding_options", "collector_options"):
            object.__setattr__(self, name, frozen_options(getattr(self, name), name))
        object.__setattr__(self, "labels", _const_labels(self.labels))
        if not isinstance(self.instance, str):
            raise InvalidArgumentError("instance", f"must be a string, got {self.instance!r}")
        if not self.instance:
            object.__setattr__(self, "instance", socket.gethostname() or "localhost")
        if not isinstance(self.sink_metrics, bool):
            raise InvalidArgumentError(
                "sink_metrics", f"must be True or False, got {self.sink_metrics!r}"
            )
        timeout = self.close_timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or timeout < 0
        ):
            raise InvalidArgumentError(
                "close_timeout", f"must be a number of seconds >= 0, got {timeout!r}"
            )


@dataclass(frozen=True, slots=True)
class ExporterStats:
    """What an exporter did so far (see :meth:`MetricsExporter.stats`)."""

    #: Exports completed (timer ticks, ``export()``, ``flush()`` and the final one).
    exports: int
    #: Samples collected over every export.
    samples: int
    #: Records handed to the sink.
    records_produced: int
    #: Records the brokers acknowledged.
    records_delivered: int
    #: Records that will not be delivered, by reason (``"buffer_full"``,
    #: ``"too_large"``, ``"timeout"``, ``"closed"``, ``"broker"``...).
    records_dropped: Mapping[str, int]
    #: Collector calls that raised (their samples of that export are lost).
    collect_errors: int
    #: Samples (or snapshots) the encoder failed on.
    encode_errors: int
    #: Timer ticks skipped because an export overran them.
    missed_intervals: int
    #: Calls of dead-letter functions that raised.
    dead_letter_errors: int
    #: Duration of the latest export, in seconds (collect, encode, produce).
    last_export_seconds: float

    @property
    def records_dropped_total(self) -> int:
        """The sum of :attr:`records_dropped`."""
        return sum(self.records_dropped.values())


class MetricsExporter:
    """Exports a :class:`~kafka_sink.MetricsRegistry` (and plugins' metrics) to Kafka.

    Example::

        registry = kafka_sink.MetricsRegistry()
        requests = registry.counter("http_requests_total", "Requests", labels=["route"])
        exporter = kafka_sink.MetricsExporter(
            registry, "app-metrics", bootstrap_servers="kafka1:9092",
            interval=10, encoding="influx", labels={"service": "billing"},
        )
        requests.labels(route="/").inc()
        ...
        exporter.close()   # a final export; also done at exit

    Arguments:

    ``registry``
        The application's metrics, or None for only the plugins' metrics.
    ``topic``
        Where the records go.
    ``bootstrap_servers`` / ``sink``
        Either the brokers of a :class:`~kafka_sink.Sink` the exporter builds,
        owns and closes, or a shared ``sink`` that its owner configures and
        closes. A Sink built here takes each option (any option of
        :class:`~kafka_sink.SinkConfig`) from the keyword arguments or the
        ``sink_options`` mapping (our names or the Java client's and
        librdkafka's: ``"linger.ms"``), else from its ``KAFKA_SINK_*``
        environment variable, else from :data:`METRICS_SINK_DEFAULTS`, as
        :class:`~kafka_sink.KafkaHandler` does.
    ``interval``
        Seconds between exports, on the exporter's own daemon thread; None
        for no timer (export with :meth:`export` or :meth:`flush`).
    ``encoding``, ``encoding_options``
        ``"json"`` (JSON lines, default; option ``help``), ``"influx"``
        (Influx line protocol), or a plugin's (e.g. ``"prometheus"`` from
        the ``kafka-sink-prometheus`` plugin).
    ``per``
        ``"series"``: one record per series, keyed by the series id (default);
        ``"snapshot"``: one record per export, keyed by ``instance``.
    ``labels``
        Labels added to every series that does not have them already,
        e.g. ``{"service": "billing", "instance": socket.gethostname()}``.
    ``instance``
        The key of per-snapshot records (default: the host name).
    ``sink_metrics``
        Export the sink's own metrics too (``kafka_sink_*``, default True).
    ``prometheus_registry``
        ``True`` to export ``prometheus_client``'s default registry too, or a
        ``prometheus_client`` registry (needs ``prometheus_client``).
    ``collector_options``
        More options for the plugins' collectors.
    ``dead_letter``
        A function called with a :class:`~kafka_sink.DeadLetter` for each
        record that will not be delivered, in addition to plugins'.
    ``plugins``, ``block_plugins``, ``entry_points``
        Plugins (objects or dotted module names) to add, plugin names to
        block, and whether to load the ``kafka_sink`` entry points.
    ``close_timeout``
        The bound of :meth:`close` without a timeout, and of the exit's close.
    ``clock``, ``wall_clock``, ``wait``
        For tests: the monotonic clock that schedules exports, the clock of
        the snapshots' timestamps (seconds since the epoch), and the sleep
        between ticks, ``wait(seconds) -> True when the exporter must stop``
        (default: an event that :meth:`close` sets).
    """

    def __init__(
        self,
        registry: MetricsRegistry | None,
        topic: str,
        bootstrap_servers: str | Sequence[str] | None = None,
        *,
        sink: Sink | None = None,
        interval: float | None = 10.0,
        encoding: str = "json",
        encoding_options: Mapping[str, Any] | None = None,
        per: Literal["series", "snapshot"] = "series",
        labels: Mapping[str, str] | None = None,
        instance: str | None = None,
        sink_metrics: bool = True,
        prometheus_registry: object = None,
        collector_options: Mapping[str, Any] | None = None,
        dead_letter: DeadLetterFunction | None = None,
        plugins: Iterable[object] = (),
        block_plugins: Iterable[str] = (),
        entry_points: bool = True,
        close_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        wait: Callable[[float], bool] | None = None,
        sink_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        if registry is not None and not isinstance(registry, MetricsRegistry):
            raise InvalidArgumentError(
                "registry", f"must be a MetricsRegistry or None, got {registry!r}"
            )
        if dead_letter is not None and not callable(dead_letter):
            raise InvalidArgumentError("dead_letter", "must be callable")
        self.config = ExporterConfig(
            topic=topic,
            interval=interval,
            encoding=encoding,
            encoding_options=encoding_options or NO_OPTIONS,
            per=per,
            labels=labels or (),  # type: ignore[arg-type]  # validated into sorted pairs
            instance=instance or "",
            sink_metrics=sink_metrics,
            prometheus_registry=prometheus_registry,
            collector_options=collector_options or NO_OPTIONS,
            close_timeout=close_timeout,
        )
        self.registry = registry
        self._clock = clock
        self._wall_clock = wall_clock
        manager = plugin_manager(plugins, block=block_plugins, entry_points=entry_points)
        self.sink, self.owns_sink = self._resolve_sink(
            manager, bootstrap_servers, sink, sink_options_of(options, sink_options)
        )
        try:
            self._collectors = self._resolve_collectors(manager)
            self._encode = self._resolve_encoder(manager)
            letters = manager.hook.kafka_sink_dead_letter(
                kind="metrics", options=MappingProxyType({"topic": self.config.topic})
            )
        except BaseException:
            if self.owns_sink:
                self.sink.close(0.0)
            raise
        if dead_letter is not None:
            letters.append(dead_letter)
        self._ledger = DeliveryLedger(letters)
        self._headers = ((ENCODING_HEADER, self.config.encoding.encode("utf-8")),)
        self._snapshot_key = self.config.instance.encode("utf-8")

        self._export_lock = threading.Lock()  # one export at a time, from any thread
        self._stats_lock = threading.Lock()
        self._exports = 0
        self._samples = 0
        self._produced = 0
        self._collect_errors = 0
        self._encode_errors = 0
        self._missed = 0
        self._last_export = 0.0

        self._lifecycle = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._wait = wait if wait is not None else self._stop.wait
        self._thread: threading.Thread | None = None
        lifecycle.track(self, lifecycle.Stage.EXPORTERS)
        if self.config.interval is not None:
            self._thread = threading.Thread(
                target=self._run, name="kafka-sink-metrics", daemon=True
            )
            self._thread.start()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<MetricsExporter topic={self.config.topic!r} every {self.config.interval} s "
            f"{self.config.encoding} {state}>"
        )

    def __enter__(self) -> MetricsExporter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- resolving hooks (once) ---------------------------------------------------------

    def _resolve_sink(
        self,
        manager: pluggy.PluginManager,
        bootstrap_servers: str | Sequence[str] | None,
        sink: Sink | None,
        sink_options: Mapping[str, Any],
    ) -> tuple[Sink, bool]:
        return owned_or_shared_sink(
            bootstrap_servers,
            sink,
            sink_options,
            defaults=METRICS_SINK_DEFAULTS,
            partitioner=lambda: _resolve_partitioner(manager),
            owner=type(self).__name__,
            owner_options=parameter_names(MetricsExporter.__init__),
        )

    def _resolve_collectors(self, manager: pluggy.PluginManager) -> tuple[MetricsCollector, ...]:
        config = self.config
        options = MappingProxyType(
            {
                **config.collector_options,
                "sink_metrics": config.sink_metrics,
                "prometheus_registry": config.prometheus_registry,
            }
        )
        found: list[MetricsCollector | None] = manager.hook.kafka_sink_metrics_collector(
            sink=self.sink, options=options
        )
        collectors = [c for c in found if c is not None]
        if self.registry is not None:
            collectors.insert(0, self.registry.collect)
        return tuple(collectors)

    def _resolve_encoder(self, manager: pluggy.PluginManager) -> MetricsEncoder:
        encoder: MetricsEncoder | None = manager.hook.kafka_sink_metrics_encoder(
            name=self.config.encoding, options=self.config.encoding_options
        )
        if encoder is None:
            raise InvalidArgumentError(
                "encoding",
                f"no plugin provides the metrics encoding {self.config.encoding!r} "
                "(built in: json, influx)",
            )
        return encoder

    # -- the timer thread -------------------------------------------------------------

    def _run(self) -> None:
        interval = self.config.interval
        assert interval is not None
        start = self._clock()
        tick = 1
        while not self._stop.is_set():
            due = start + tick * interval
            try:
                while (delay := due - self._clock()) > 0:
                    if self._wait(delay) or self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                self._export()
                # The next tick is the first one not yet past: ticks that an
                # export overran are skipped (and counted), not bunched.
                tick += 1
                next_tick = math.ceil((self._clock() - start) / interval)
                if next_tick > tick:
                    with self._stats_lock:
                        self._missed += next_tick - tick
                    tick = next_tick
            except Exception:  # the timer must survive anything; the export counted it
                tick += 1

    # -- exporting --------------------------------------------------------------------

    def export(self) -> int:
        """Collect and queue one snapshot now, on this thread; return the records queued.

        Never raises for a collector, encoder or sink problem (they are
        counted in :meth:`stats`); returns 0 once the exporter is closed.
        """
        if self._closed:
            return 0
        return self._export()

    def flush(self, timeout: float | None = None) -> int:
        """Export now, then wait up to ``timeout`` seconds for delivery.

        ``None`` waits at most ``close_timeout``. Returns how many records
        are still undelivered in the sink (a shared sink counts every record
        it holds, not only the exporter's).
        """
        self.export()
        bound = self.config.close_timeout if timeout is None else max(0.0, timeout)
        if self.sink.closed:
            return 0
        return self.sink.flush(bound)

    def _export(self, lock_timeout: float = -1) -> int:
        if not self._export_lock.acquire(timeout=lock_timeout):
            return 0
        try:
            return self._export_locked()
        finally:
            self._export_lock.release()

    def _export_locked(self) -> int:
        started = self._clock()
        timestamp = int(self._wall_clock() * 1000)
        samples = self._collect()
        produced = 0
        if samples:
            snapshot = Snapshot(timestamp, tuple(samples))
            for key, value in self._records(snapshot):
                produced += self._produce(key, value, timestamp)
        with self._stats_lock:
            self._exports += 1
            self._samples += len(samples)
            self._produced += produced
            self._last_export = max(0.0, self._clock() - started)
        return produced

    def _collect(self) -> list[Sample]:
        samples: list[Sample] = []
        errors = 0
        for collector in self._collectors:
            try:
                for sample in collector():
                    samples.append(sample)
            except Exception:  # a plugin's bug costs its own samples, never the export
                errors += 1
        if errors:
            with self._stats_lock:
                self._collect_errors += errors
        const = self.config.labels
        if const:
            samples = [_with_labels(s, const) for s in samples]
        return samples

    def _records(self, snapshot: Snapshot) -> list[tuple[bytes, bytes]]:
        encode = self._encode
        records: list[tuple[bytes, bytes]] = []
        errors = 0
        if self.config.per == "series":
            timestamp = snapshot.timestamp_ms
            for sample in snapshot.samples:
                try:
                    value = encode(Snapshot(timestamp, (sample,)))
                    key = sample.series_id.encode("utf-8")
                except Exception:
                    errors += 1
                    continue
                if value:
                    records.append((key, value))
        else:
            limit = max(1024, self.sink.config.max_request_size - _FRAMING_ROOM)
            errors = self._snapshot_records(snapshot, limit, records)
        if errors:
            with self._stats_lock:
                self._encode_errors += errors
        return records

    def _snapshot_records(
        self, snapshot: Snapshot, limit: int, out: list[tuple[bytes, bytes]]
    ) -> int:
        """Encode ``snapshot`` as one record, or halves of it while it is too large."""
        try:
            value = self._encode(snapshot)
        except Exception:
            return 1
        samples = snapshot.samples
        if len(value) + len(self._snapshot_key) > limit and len(samples) > 1:
            half = len(samples) // 2
            first = Snapshot(snapshot.timestamp_ms, samples[:half])
            second = Snapshot(snapshot.timestamp_ms, samples[half:])
            return self._snapshot_records(first, limit, out) + self._snapshot_records(
                second, limit, out
            )
        if value:
            out.append((self._snapshot_key, value))
        return 0

    def _produce(self, key: bytes, value: bytes, timestamp: int) -> int:
        topic, headers = self.config.topic, self._headers
        try:
            self.sink.enqueue(
                topic, value, key=key, timestamp=timestamp, headers=headers, report=self._ledger
            )
        except SinkClosedError as error:
            self._ledger.fail("closed", error, None, topic, key, value, headers)
            return 0
        except Exception as error:
            self._ledger.fail("invalid", error, None, topic, key, value, headers)
            return 0
        return 1

    # -- stats, close -----------------------------------------------------------------

    def stats(self) -> ExporterStats:
        """What the exporter did so far: exports, records, drops by reason, errors."""
        delivered, dropped, dead_letter_errors = self._ledger.counts()
        with self._stats_lock:
            return ExporterStats(
                exports=self._exports,
                samples=self._samples,
                records_produced=self._produced,
                records_delivered=delivered,
                records_dropped=MappingProxyType(dropped),
                collect_errors=self._collect_errors,
                encode_errors=self._encode_errors,
                missed_intervals=self._missed,
                dead_letter_errors=dead_letter_errors,
                last_export_seconds=self._last_export,
            )

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, timeout: float | None = None, *, final_export: bool = True) -> None:
        """Stop the timer, export one last time, then close (or flush) the sink.

        Bounded by ``timeout`` seconds (None: ``close_timeout``) in all: an
        export in progress on the timer thread is waited for within the
        bound, and the final export is skipped if it cannot start in time.
        Records still undelivered at the end fail and are counted
        (``"closed"``). A shared sink is flushed, never closed. Idempotent.
        """
        with self._lifecycle:
            if self._closed:
                return
            self._closed = True
        lifecycle.forget(self)
        budget = self.config.close_timeout if timeout is None else max(0.0, timeout)
        deadline = time.monotonic() + budget
        self._stop.set()
        thread = self._thread
        on_timer = thread is threading.current_thread()
        if thread is not None and not on_timer:
            thread.join(budget)
        if final_export and not self.sink.closed:
            remaining = max(0.0, deadline - time.monotonic())
            self._export(lock_timeout=-1 if on_timer else remaining)
        remaining = max(0.0, deadline - time.monotonic())
        if self.owns_sink:
            self.sink.close(remaining)
        elif not self.sink.closed:
            self.sink.flush(remaining)

    def _after_fork_in_child(self) -> None:
        # The timer thread does not exist here, and the locks may have been held
        # by threads that do not exist either: the child's copy is closed, inert.
        self._lifecycle = threading.Lock()
        self._export_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._ledger = DeliveryLedger(self._ledger.dead_letters)
        self._closed = True
        self._thread = None


def _resolve_partitioner(manager: pluggy.PluginManager) -> Partitioner:
    """The plugins' partitioners for a sink the exporter builds (murmur2 by default).

    Every record is keyed, so the built-in murmur2 keeps each series on one
    partition; a plugin's partitioner registered later may still choose first.
    """
    found: list[RecordPartitioner | None] = manager.hook.kafka_sink_partitioner(
        kind="metrics", name="murmur2", options=NO_OPTIONS
    )
    chain = [p for p in found if p is not None]
    if not chain:
        return DefaultPartitioner()
    first = chain[0]
    if isinstance(first, Murmur2Partitioner):  # always chooses: the rest is unreachable
        return first
    return ChainPartitioner(chain)


def _with_labels(sample: Sample, const: Labels) -> Sample:
    own = dict(sample.labels)
    merged = dict(const)
    merged.update(own)  # the series' own labels win over the constant ones
    return Sample(
        sample.name,
        sample.type,
        tuple(sorted(merged.items())),
        sample.value,
        sample.count,
        sample.sum,
        sample.buckets,
        sample.quantiles,
        sample.help,
    )


def _const_labels(value: object) -> Labels:
    pairs = value.items() if isinstance(value, Mapping) else value
    if isinstance(pairs, str | bytes) or not isinstance(pairs, Iterable):
        raise InvalidArgumentError("labels", f"must be a mapping of names to values, got {value!r}")
    out: dict[str, str] = {}
    for item in pairs:
        if not isinstance(item, tuple) or len(item) != 2:
            raise InvalidArgumentError(
                "labels", f"must be a mapping of names to values, got {value!r}"
            )
        name, text = item
        check_label_name(name)
        if not isinstance(text, str):
            raise InvalidArgumentError(
                "labels", f"label {name!r} must have a string value, got {text!r}"
            )
        out[name] = text
    return tuple(sorted(out.items()))
