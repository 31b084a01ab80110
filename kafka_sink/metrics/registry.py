"""Application metrics: counters, gauges and histograms with labels.

Theory of operation
-------------------
The hot path is an increment from an application thread, so it must cost
about what a ``dict[key] += 1`` costs, and stay exact when many threads
increment the same series. An uncontended ``threading.Lock`` costs two to
four times a dict update here (about 200-400 ns against 90 ns on the test
machine, see ``tests/bench/bench_metrics.py``), so counters and histograms
take no lock per increment. Instead each series keeps one *cell* per thread
that touched it: a small list that only its own thread writes, found
through a :class:`threading.local`. An increment is then one thread-local
lookup and one in-place add on memory no other thread writes, which is exact
whatever the interpreter does between bytecodes (GIL or not).

Reading a series (at export time, on the exporter's thread) takes the
series' lock, sums the cells and folds the cells of threads that have ended
into a running total, so short-lived threads do not leak cells. A reader may
see a cell an instant before or after a concurrent add: the snapshot is a
moment, not a barrier. A histogram's count is computed from its buckets, so
``count`` always equals the ``+Inf`` bucket.

Gauges are set, not only added to, and a set must not be lost under a
concurrent add: they take a lock on every change (about 0.2-0.4 us), which
their use (a level read now and then) affords. A gauge can also be computed
at collection time with :meth:`GaugeChild.set_function`.

A metric without label names is its own single series (``counter.inc()``);
a metric with label names is a family whose series come from
:meth:`labels`, cached, so keeping the child is the cheapest way to count::

    requests = registry.counter("http_requests_total", "Requests", labels=["route"])
    home = requests.labels(route="/")      # look the series up once
    home.inc()                             # then: the hot path
"""

from __future__ import annotations

import bisect
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from typing import Any, ClassVar, Generic, TypeVar

from kafka_sink.errors import InvalidArgumentError
from kafka_sink.metrics.samples import (
    Labels,
    MetricType,
    Sample,
    check_label_name,
    check_metric_name,
)

__all__ = [
    "DEFAULT_BUCKETS",
    "Counter",
    "CounterChild",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "MetricsRegistry",
]

#: Prometheus' default histogram buckets, in seconds (``+Inf`` is implied).
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)


class _NeedsLabels:
    """Stands in for the thread-local of a family with label names.

    Any attribute read raises, so that ``family.inc()`` on a labelled family
    fails with a clear message at no cost to the unlabelled hot path (which
    reads ``self._local.cell`` and would otherwise find nothing).
    """

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        raise self._error()

    def __enter__(self) -> None:  # a gauge's lock: looked up on the type, not the instance
        raise self._error()

    def __exit__(self, *exc_info: object) -> None:
        return None

    def _error(self) -> InvalidArgumentError:
        return InvalidArgumentError(
            "labels", f"metric {self._name!r} has label names: call .labels(...) first"
        )


def _live_threads() -> AbstractSet[threading.Thread]:
    return set(threading.enumerate())


class _Cells:
    """The per-thread cells of one series, and what ended threads left behind."""

    __slots__ = ("_cells", "_local", "_lock", "_retired", "_width")

    def __init__(self, width: int) -> None:
        self._width = width
        self._local: Any = threading.local()
        self._lock = threading.Lock()
        self._cells: list[tuple[threading.Thread, list[float]]] = []
        self._retired: list[float] = [0] * width

    def new_cell(self) -> list[float]:
        """The calling thread's cell, created on its first add to this series."""
        cell: list[float] = [0] * self._width
        with self._lock:
            self._cells.append((threading.current_thread(), cell))
        self._local.cell = cell
        return cell

    def total(self, live: AbstractSet[threading.Thread] | None = None) -> float:
        """The sum of a one-slot store (a counter), without building lists."""
        with self._lock:
            cells = self._cells
            if len(cells) == 1:
                return self._retired[0] + cells[0][1][0]
        return self.totals(live)[0]

    def totals(self, live: AbstractSet[threading.Thread] | None = None) -> list[float]:
        """The sum over every thread, slot by slot; folds the cells of ended threads.

        ``live`` is the set of live threads when the caller has it (one set
        for a whole collection); otherwise it is read here if needed. A lone
        cell is summed without looking: it is folded once a second thread
        adds to the series.
        """
        with self._lock:
            cells = self._cells
            totals = list(self._retired)
            if len(cells) <= 1:
                for _, cell in cells:
                    for i, v in enumerate(cell):
                        totals[i] += v
                return totals
            alive = live if live is not None else _live_threads()
            kept: list[tuple[threading.Thread, list[float]]] = []
            for thread, cell in cells:
                values = list(cell)  # one read of the cell (a C-level copy)
                for i, v in enumerate(values):
                    totals[i] += v
                if thread in alive:
                    kept.append((thread, cell))
                else:  # no writer left: its counts move into the retired total
                    for i, v in enumerate(values):
                        self._retired[i] += v
            self._cells = kept
            return totals

    def reset(self) -> None:
        with self._lock:
            self._retired = [0] * self._width
            for _, cell in self._cells:
                for i in range(self._width):
                    cell[i] = 0


# -- series ---------------------------------------------------------------------------


class CounterChild:
    """One counter series: a total that only goes up. Thread-safe; see the module doc."""

    __slots__ = ("_local", "_store", "labelset")

    def __init__(self, labels: Labels = ()) -> None:
        self.labelset = labels
        self._store = _Cells(1)
        self._local: Any = self._store._local

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` (default 1, must be >= 0)."""
        if amount < 0:
            raise InvalidArgumentError("amount", f"a counter only goes up, got {amount!r}")
        try:
            cell = self._local.cell
        except AttributeError:  # this thread's first add to this series
            cell = self._store.new_cell()
        cell[0] += amount

    def get(self) -> float:
        """The current total."""
        return self._store.total()

    def _reset(self) -> None:
        self._store.reset()


class GaugeChild:
    """One gauge series: a level that goes up and down, or is computed when read."""

    __slots__ = ("_function", "_lock", "_value", "labelset")

    def __init__(self, labels: Labels = ()) -> None:
        self.labelset = labels
        self._lock: threading.Lock | _NeedsLabels = threading.Lock()
        self._value: float = 0
        self._function: Callable[[], float] | None = None

    def set(self, value: float) -> None:
        """Set the level."""
        with self._lock:
            self._value = value

    def inc(self, amount: float = 1) -> None:
        """Raise the level by ``amount`` (default 1)."""
        with self._lock:
            self._value += amount

    def dec(self, amount: float = 1) -> None:
        """Lower the level by ``amount`` (default 1)."""
        with self._lock:
            self._value -= amount

    def set_function(self, function: Callable[[], float] | None) -> None:
        """Compute the level by calling ``function()`` at each collection (None: stop).

        The function runs on the exporter's thread; when it raises, the
        series is left out of that collection.
        """
        if function is not None and not callable(function):
            raise InvalidArgumentError("function", "must be callable or None")
        with self._lock:
            self._function = function

    @contextmanager
    def track_inprogress(self) -> Iterator[None]:
        """Count the block as in progress: +1 on entry, -1 on exit."""
        self.inc()
        try:
            yield
        finally:
            self.dec()

    def get(self) -> float:
        """The current level (calls the function when one is set)."""
        function = self._function
        if function is not None:
            return function()
        return self._value

    def _reset(self) -> None:
        with self._lock:
            self._value = 0


class HistogramChild:
    """One histogram series: counts of observations per bucket, and their sum."""

    __slots__ = ("_bounds", "_inf", "_local", "_store", "labelset")

    def __init__(self, bounds: tuple[float, ...], labels: Labels = ()) -> None:
        self.labelset = labels
        self._bounds = bounds
        self._inf = len(bounds)  # index of the +Inf bucket; the sum follows it
        self._store = _Cells(len(bounds) + 2)
        self._local: Any = self._store._local

    def observe(self, value: float) -> None:
        """Record one observation (e.g. a duration in seconds)."""
        try:
            cell = self._local.cell
        except AttributeError:
            cell = self._store.new_cell()
        # bisect_left: the first bucket whose upper bound is >= value ("le").
        i = bisect.bisect_left(self._bounds, value)
        # NaN compares false with every bound, so bisect puts it first: it belongs in +Inf.
        if i == 0 and value != value:  # noqa: PLR0124 - the NaN test, without a call
            i = self._inf
        cell[i] += 1
        cell[-1] += value

    @contextmanager
    def time(self) -> Iterator[None]:
        """Observe the duration of the block, in seconds."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - start)

    def get(self) -> tuple[float, float, tuple[tuple[float, float], ...]]:
        """``(count, sum, buckets)`` with cumulative bucket counts, the last for +inf."""
        return self._read(None)

    def _read(
        self, live: AbstractSet[threading.Thread] | None
    ) -> tuple[float, float, tuple[tuple[float, float], ...]]:
        totals = self._store.totals(live)
        buckets: list[tuple[float, float]] = []
        running: float = 0
        for bound, n in zip((*self._bounds, math.inf), totals[:-1], strict=True):
            running += n
            buckets.append((bound, running))
        return running, totals[-1], tuple(buckets)

    def _reset(self) -> None:
        self._store.reset()


# -- metrics (families of series) ----------------------------------------------------

ChildT = TypeVar("ChildT", CounterChild, GaugeChild, HistogramChild)


class _Family(Generic[ChildT]):
    """What counters, gauges and histograms share: a name, help, label names, series."""

    type: ClassVar[MetricType]

    def _init_family(self, name: str, help: str, labelnames: Sequence[str]) -> None:
        self.name = check_metric_name(name)
        if not isinstance(help, str):
            raise InvalidArgumentError("help", f"must be a string, got {help!r}")
        self.help = help
        self.labelnames = _check_labelnames(labelnames, self.type)
        self._children: dict[tuple[object, ...], ChildT] = {}
        self._family_lock = threading.Lock()

    def _make_child(self, labels: Labels) -> ChildT:
        raise NotImplementedError

    def labels(self, *values: object, **named: object) -> ChildT:
        """The series for these label values, by position or by name.

        Values are turned into text (``200`` and ``"200"`` are one series).
        The series is created on first use and cached: keep it for the
        cheapest increments.
        """
        key: tuple[object, ...] = values
        if named:
            try:  # the common case in one C-level pass; any mistake is explained below
                key = tuple(map(named.__getitem__, self.labelnames))
            except KeyError:
                key = ()
            if values or len(key) != len(named) or not key:
                key = self._key_from_names(values, named)
        child = self._children.get(key)
        if child is not None:
            return child
        return self._create_child(key)

    def _key_from_names(
        self, values: tuple[object, ...], named: dict[str, object]
    ) -> tuple[object, ...]:
        if values:
            raise InvalidArgumentError(
                "labels", "give label values by position or by name, not both"
            )
        try:
            key = tuple(named[n] for n in self.labelnames)
        except KeyError as missing:
            raise InvalidArgumentError(
                "labels", f"metric {self.name!r} needs label {missing.args[0]!r}"
            ) from None
        if len(named) != len(self.labelnames):
            extra = sorted(set(named) - set(self.labelnames))
            raise InvalidArgumentError(
                "labels", f"metric {self.name!r} has no label named {extra[0]!r}"
            )
        return key

    def _create_child(self, key: tuple[object, ...]) -> ChildT:
        if not self.labelnames:
            raise InvalidArgumentError("labels", f"metric {self.name!r} has no label names")
        if len(key) != len(self.labelnames):
            raise InvalidArgumentError(
                "labels",
                f"metric {self.name!r} takes {len(self.labelnames)} label values "
                f"({', '.join(self.labelnames)}), got {len(key)}",
            )
        text = tuple(v if type(v) is str else str(v) for v in key)
        with self._family_lock:
            child = self._children.get(text)
            if child is None:
                child = self._make_child(tuple(sorted(zip(self.labelnames, text, strict=True))))
                self._children[text] = child
            if key != text:  # remember the caller's spelling too: next time it is one lookup
                self._children[key] = child
        return child

    def remove(self, *values: object, **named: object) -> None:
        """Forget the series with these label values (it is no longer exported)."""
        key = values if not named else self._key_from_names(values, named)
        text = tuple(v if type(v) is str else str(v) for v in key)
        with self._family_lock:
            child = self._children.get(text)
            if child is not None:
                self._children = {k: c for k, c in self._children.items() if c is not child}

    def clear(self) -> None:
        """Forget every labelled series."""
        with self._family_lock:
            self._children = {}

    def _series(self) -> list[ChildT]:
        with self._family_lock:
            unique = {id(c): c for c in self._children.values()}
        return list(unique.values())

    def collect(self, live: AbstractSet[threading.Thread] | None = None) -> list[Sample]:
        """The current sample of every series of this metric.

        ``live``: the live threads, when the caller read them already.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        labels = f" labels={list(self.labelnames)}" if self.labelnames else ""
        return f"<{type(self).__name__} {self.name}{labels}>"


class Counter(CounterChild, _Family[CounterChild]):
    """A counter: a total that only goes up, e.g. requests served or bytes sent.

    Example::

        requests = registry.counter("http_requests_total", "Requests", labels=["route"])
        requests.labels(route="/").inc()
        errors = registry.counter("errors_total", "Errors")
        errors.inc()

    By convention counter names end with ``_total``.
    """

    type: ClassVar[MetricType] = "counter"

    def __init__(self, name: str, help: str = "", labelnames: Sequence[str] = ()) -> None:
        CounterChild.__init__(self)
        self._init_family(name, help, labelnames)
        if self.labelnames:
            self._local = _NeedsLabels(self.name)

    def _make_child(self, labels: Labels) -> CounterChild:
        return CounterChild(labels)

    def collect(self, live: AbstractSet[threading.Thread] | None = None) -> list[Sample]:
        series: Iterable[CounterChild] = self._series() if self.labelnames else (self,)
        name, help_text = self.name, self.help
        return [
            Sample(name, "counter", c.labelset, c._store.total(live), help=help_text)
            for c in series
        ]


class Gauge(GaugeChild, _Family[GaugeChild]):
    """A gauge: a level that goes up and down, e.g. queue depth or memory in use.

    Example::

        depth = registry.gauge("queue_depth", "Jobs waiting")
        depth.set(12)
        depth.set_function(lambda: len(queue))   # or computed at each export
    """

    type: ClassVar[MetricType] = "gauge"

    def __init__(self, name: str, help: str = "", labelnames: Sequence[str] = ()) -> None:
        GaugeChild.__init__(self)
        self._init_family(name, help, labelnames)
        if self.labelnames:
            self._lock = _NeedsLabels(self.name)

    def _make_child(self, labels: Labels) -> GaugeChild:
        return GaugeChild(labels)

    def collect(self, live: AbstractSet[threading.Thread] | None = None) -> list[Sample]:
        series: Iterable[GaugeChild] = self._series() if self.labelnames else (self,)
        samples = []
        for child in series:
            try:
                value = child.get()
            except Exception:  # a gauge function failed: leave the series out this time
                continue
            samples.append(Sample(self.name, "gauge", child.labelset, value, help=self.help))
        return samples


class Histogram(HistogramChild, _Family[HistogramChild]):
    """A histogram: observations counted into buckets, e.g. request durations.

    Example::

        latency = registry.histogram("request_seconds", "Latency", buckets=[0.01, 0.1, 1])
        latency.observe(0.042)
        with latency.time():
            handle()

    Each bucket counts observations less than or equal to its upper bound
    (``le``); a ``+Inf`` bucket is always added.
    """

    type: ClassVar[MetricType] = "histogram"

    def __init__(
        self,
        name: str,
        help: str = "",
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        HistogramChild.__init__(self, _check_buckets(buckets))
        self._init_family(name, help, labelnames)
        if self.labelnames:
            self._local = _NeedsLabels(self.name)

    @property
    def buckets(self) -> tuple[float, ...]:
        """The upper bounds of the buckets, without the implied ``+Inf``."""
        return self._bounds

    def _make_child(self, labels: Labels) -> HistogramChild:
        return HistogramChild(self._bounds, labels)

    def collect(self, live: AbstractSet[threading.Thread] | None = None) -> list[Sample]:
        series: Iterable[HistogramChild] = self._series() if self.labelnames else (self,)
        samples = []
        for child in series:
            count, total, buckets = child._read(live)
            samples.append(
                Sample(
                    self.name,
                    "histogram",
                    child.labelset,
                    count=count,
                    sum=total,
                    buckets=buckets,
                    help=self.help,
                )
            )
        return samples


Metric = Counter | Gauge | Histogram
_M = TypeVar("_M", Counter, Gauge, Histogram)


class MetricsRegistry:
    """A set of metrics, collected together by a :class:`~kafka_sink.MetricsExporter`.

    Example::

        registry = kafka_sink.MetricsRegistry()
        requests = registry.counter("http_requests_total", "Requests", labels=["route"])
        in_flight = registry.gauge("http_in_flight", "Requests being served")
        latency = registry.histogram("http_request_seconds", "Latency")

    Asking again for a metric of the same name returns the one registered,
    when type, label names (and buckets) match; otherwise it is an error.
    Thread-safe.
    """

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}
        self._lock = threading.Lock()

    def counter(self, name: str, help: str = "", labels: Sequence[str] = ()) -> Counter:
        """Register (or return) the counter ``name`` with these label names."""
        return self._register(Counter, name, help, labels, (), lambda: Counter(name, help, labels))

    def gauge(self, name: str, help: str = "", labels: Sequence[str] = ()) -> Gauge:
        """Register (or return) the gauge ``name`` with these label names."""
        return self._register(Gauge, name, help, labels, (), lambda: Gauge(name, help, labels))

    def histogram(
        self,
        name: str,
        help: str = "",
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        """Register (or return) the histogram ``name`` with these label names and buckets."""
        bounds = _check_buckets(buckets)
        return self._register(
            Histogram, name, help, labels, bounds, lambda: Histogram(name, help, labels, bounds)
        )

    def _register(
        self,
        kind: type[_M],
        name: str,
        help: str,
        labels: Sequence[str],
        bounds: tuple[float, ...],
        build: Callable[[], _M],
    ) -> _M:
        existing = self._metrics.get(name)
        if existing is None:
            created = build()  # validates every argument before anything is registered
            with self._lock:
                existing = self._metrics.setdefault(name, created)
        if not isinstance(existing, kind):
            raise InvalidArgumentError(
                "name", f"{name!r} is already registered as a {existing.type}"
            )
        if existing.labelnames != _check_labelnames(labels, existing.type) or (
            isinstance(existing, Histogram) and existing.buckets != bounds
        ):
            raise InvalidArgumentError(
                "name",
                f"{name!r} is already registered with other label names or buckets "
                f"({', '.join(existing.labelnames) or 'no labels'})",
            )
        return existing

    def get(self, name: str) -> Metric | None:
        """The metric registered as ``name``, or None."""
        return self._metrics.get(name)

    def unregister(self, name: str) -> None:
        """Forget the metric ``name`` (no error when there is none)."""
        with self._lock:
            self._metrics.pop(name, None)

    def __iter__(self) -> Iterator[Metric]:
        with self._lock:
            metrics = list(self._metrics.values())
        return iter(metrics)

    def __len__(self) -> int:
        return len(self._metrics)

    def collect(self) -> list[Sample]:
        """The current sample of every series of every metric, in registration order.

        This is a :data:`~kafka_sink.hooks.specs.MetricsCollector`.
        """
        samples: list[Sample] = []
        live = _live_threads()  # read once for every series
        for metric in self:
            samples.extend(metric.collect(live))
        return samples

    def reset(self) -> None:
        """Set every counter, gauge and histogram back to zero (for tests)."""
        for metric in self:
            series: list[Any] = metric._series() if metric.labelnames else [metric]
            for child in series:
                child._reset()


def _check_labelnames(labelnames: object, metric_type: str) -> tuple[str, ...]:
    if isinstance(labelnames, str):
        raise InvalidArgumentError("labels", "must be a sequence of label names, not a string")
    if not isinstance(labelnames, Iterable):
        raise InvalidArgumentError(
            "labels", f"must be a sequence of label names, got {labelnames!r}"
        )
    names = tuple(check_label_name(n) for n in labelnames)
    if len(set(names)) != len(names):
        raise InvalidArgumentError("labels", f"label names repeat: {list(names)}")
    if metric_type == "histogram" and "le" in names:
        raise InvalidArgumentError("labels", "'le' is reserved for the buckets of a histogram")
    return names


def _check_buckets(buckets: object) -> tuple[float, ...]:
    if isinstance(buckets, str) or not isinstance(buckets, Iterable):
        raise InvalidArgumentError("buckets", f"must be a sequence of numbers, got {buckets!r}")
    bounds: list[float] = []
    for b in buckets:
        if isinstance(b, bool) or not isinstance(b, (int, float)) or math.isnan(b):
            raise InvalidArgumentError("buckets", f"must hold numbers, got {b!r}")
        bounds.append(float(b))
    if bounds and bounds[-1] == math.inf:
        bounds.pop()  # +Inf is always there
    if not bounds:
        raise InvalidArgumentError("buckets", "must hold at least one finite upper bound")
    if any(not math.isfinite(b) for b in bounds) or any(
        a >= b for a, b in itertools.pairwise(bounds)
    ):
        raise InvalidArgumentError(
            "buckets", f"must be finite and strictly increasing, got {list(bounds)}"
        )
    return tuple(bounds)
