"""The asynchronous producer: ``Sink``.

``produce()`` validates a record, picks its partition from metadata the
sender thread already has, encodes it into its partition's open batch and
returns a :class:`~kafka_sink.DeliveryFuture`; it does no network I/O and
waits at most ``max_block_ms`` (only with ``on_buffer_full="block"``). A
daemon thread started on first use delivers the batches.

Lifecycle: :meth:`Sink.close` is idempotent and bounded (by its timeout,
default ``close_timeout_ms``); an interpreter exit closes every open sink
with that bound; after ``os.fork()`` the child's sink starts empty and lazily
starts its own thread (the parent's buffered records stay the parent's), and
the parent is unaffected. The sink never logs from its sender thread.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
import types
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from kafka_sink import lifecycle
from kafka_sink._accel import IMPLEMENTATION
from kafka_sink._accel import speedups as _speedups
from kafka_sink.config import SinkConfig, as_bytes, check_topic, header_pairs
from kafka_sink.errors import DeliveryError, InvalidArgumentError, SinkClosedError
from kafka_sink.net.client import NetworkClient
from kafka_sink.net.transport import Clock, monotonic
from kafka_sink.producer.accumulator import RecordAccumulator
from kafka_sink.producer.futures import (
    DeliveryCallback,
    DeliveryFuture,
    DeliveryReport,
    RecordMetadata,
    UndeliveredRecord,
)
from kafka_sink.producer.metrics import SinkMetrics
from kafka_sink.producer.partitioner import (
    DefaultPartitioner,
    Murmur2Partitioner,
    StickyPartitioner,
)
from kafka_sink.producer.sender import Network, Partitioner, Sender
from kafka_sink.protocol.records import Header

if TYPE_CHECKING:
    from kafka_sink.producer.spool import Spool

__all__ = ["SENDER_THREAD_NAME", "Sink"]

#: The name of every sink's sender thread (integrations use it to keep that
#: thread's own log records out of a handler).
SENDER_THREAD_NAME = "kafka-sink-sender"

HeaderInput = Mapping[str, Any] | Sequence[tuple[str, Any]]

_T = TypeVar("_T")


class Sink:
    """Buffers records into per-partition batches and delivers them in the background.

    Example::

        with kafka_sink.Sink("localhost:9092", linger_ms=5) as sink:
            future = sink.produce("logs", b'{"msg": "hello"}', key=b"user-1")
            sink.flush(timeout=10)
            print(future.result().offset)

    Options are those of :class:`~kafka_sink.config.SinkConfig` (Java
    producer names in snake case); an unknown option raises
    :class:`~kafka_sink.InvalidArgumentError` naming it.
    """

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str] | None = None,
        *,
        config: SinkConfig | None = None,
        partitioner: Partitioner | None = None,
        clock: Clock = monotonic,
        wall_clock: Callable[[], float] = time.time,
        network_factory: Callable[[SinkConfig], Network] | None = None,
        **options: Any,
    ) -> None:
        if config is None:
            # bootstrap_servers may come from $KAFKA_SINK_BOOTSTRAP_SERVERS.
            config = SinkConfig.build(bootstrap_servers, **options)
        elif options or bootstrap_servers is not None:
            raise InvalidArgumentError("config", "pass either config or options, not both")
        self.config = config
        self._clock = clock
        self._wall_clock = wall_clock
        self._network_factory = network_factory or _default_network
        self._partitioner = partitioner or _default_partitioner()
        self._on_new_batch = getattr(self._partitioner, "on_new_batch", None)
        # Bound once: calling an object runs its __call__ through a slow
        # special-method lookup, and produce() calls it for nearly every record.
        chosen: Any = self._partitioner
        self._partition: Partitioner = (
            chosen if isinstance(chosen, types.FunctionType | types.MethodType) else chosen.__call__
        )
        self._lifecycle = threading.Lock()
        self._closed = False
        self._core: Any = None
        self._markers: dict[DeliveryReport, _Enqueued] = {}
        self._spool: Spool | None = None
        self._setup()
        if config.spool_dir is not None:
            self._open_spool()
            if self._accumulator.incomplete:
                self._start()  # records left by an earlier process go first
        lifecycle.track(self, lifecycle.Stage.SINKS)

    def _setup(self) -> None:
        self._abandon_parents_spool()
        self._metrics = SinkMetrics()
        self._accumulator = RecordAccumulator(
            self.config, clock=self._clock, wakeup=self._wakeup, metrics=self._metrics
        )
        self._append = self._accumulator.append
        self._network: Network | None = None
        self._sender: Sender | None = None
        self._thread: threading.Thread | None = None
        self._stop = False
        self._pid = os.getpid()
        self._topics_ok: set[str] = set()
        if self._core is None:
            self._core = self._compiled_core()
        else:
            # The same core object, on the new state: callers (a handler, say)
            # may hold sink.produce from before a fork.
            self._core.reset(self._accumulator, self._accumulator.append, self._topics_ok)

    def _compiled_core(self) -> Any:
        """The compiled produce() and enqueue(), where the extension is built.

        They take the common case (bytes or None, a checked topic, plain
        header pairs, a running sender) in one C call, and hand anything else
        to :meth:`_submit`, the reference implementation.
        """
        if _speedups is None or self.config.spool_dir is not None:
            # With a spool every record is written to disk first: the Python
            # path (RecordAccumulator._append_spooled) does that.
            return None
        partitioner = self._partitioner
        murmur = type(partitioner) in (DefaultPartitioner, Murmur2Partitioner)
        keyless = (
            partitioner.keyless
            if murmur and isinstance(partitioner, Murmur2Partitioner)
            else partitioner
        )
        sticky = keyless._current if type(keyless) is StickyPartitioner else None
        core = _speedups.SinkCore(
            accumulator=self._accumulator,
            submit=self._submit,
            append=self._accumulator.append,
            future_type=DeliveryFuture,
            wall_clock=None if self._wall_clock is time.time else self._wall_clock,
            topics_ok=self._topics_ok,
            unreported=_UNREPORTED,
            partition=self._partition,
            sticky=sticky,
            on_new_batch=self._on_new_batch,
            murmur=murmur,
        )
        # Instance attributes shadow the methods, so that sink.produce(...) is
        # one C call; the methods stay the documented reference. A subclass
        # that overrides one keeps its own.
        if type(self).produce is Sink.produce:
            vars(self)["produce"] = core.produce
        if type(self).enqueue is Sink.enqueue:
            vars(self)["enqueue"] = core.enqueue
        return core

    def _open_spool(self) -> None:
        """Open this Sink's log in ``spool_dir`` (and adopt orphaned ones)."""
        from kafka_sink.producer.spool import Spool  # noqa: PLC0415 - only sinks with a spool

        spool = Spool.open(self.config)
        self._accumulator.attach_spool(spool)
        self._append = self._accumulator.append
        self._spool = spool

    def _abandon_parents_spool(self) -> None:
        # In a forked child: the parent's spool files stay the parent's; the
        # child lets go of its copies of their descriptors (the lock's included,
        # so that the parent's lock dies with the parent) and writes a log of
        # its own once it produces.
        spool = self._spool
        if spool is not None and spool.owner_pid != os.getpid():
            spool.abandon()
            self._spool = None

    def __repr__(self) -> str:
        servers = ",".join(str(b) for b in self.config.bootstrap_servers)
        state = "closed" if self._closed else "open"
        return f"<Sink {servers} client_id={self.config.client_id!r} {state}>"

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Sink:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- producing --------------------------------------------------------------------

    def produce(
        self,
        topic: str,
        value: bytes | str | None,
        key: bytes | str | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
        headers: HeaderInput | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> DeliveryFuture:
        """Queue one record; return its delivery future.

        ``timestamp`` is in milliseconds since the epoch (default: now);
        ``headers`` are ``(name, value)`` pairs or a mapping, values bytes,
        str or None. Invalid arguments raise
        :class:`~kafka_sink.InvalidArgumentError`; a full buffer or an
        oversized record fail the future instead.

        The future is a :class:`concurrent.futures.Future`: wait on it with
        ``result(timeout)``, ``concurrent.futures.wait`` or ``as_completed``,
        or await it in a coroutine with ``await asyncio.wrap_future(future)``.

        ``on_delivery(metadata, error)`` runs on the sender thread once the
        record is delivered (a :class:`~kafka_sink.RecordMetadata`, and None)
        or has finally failed (None, and the
        :class:`~kafka_sink.DeliveryError`); an exception it raises is counted
        in ``metrics()["callback_errors"]``. The result comes first, as in
        the future (``result()``, then ``exception()``) and in
        ``concurrent.futures``; confluent-kafka's ``on_delivery(err, msg)``
        puts the error first. Wrap a callback written for confluent-kafka in
        :func:`kafka_sink.confluent_style` (a callable of two arguments
        cannot tell which order it expects, so no order is guessed)::

            def delivery_report(err, msg):
                ...

            sink.produce("logs", b"hello", on_delivery=kafka_sink.confluent_style(delivery_report))

        A caller that needs no future per record uses :meth:`enqueue`.
        """
        if topic not in self._topics_ok:
            self._check_topic(topic)
        # bytes and None are the common case: no call, no copy.
        value_b = value if value is None or type(value) is bytes else as_bytes(value, "value")
        key_b = key if key is None or type(key) is bytes else as_bytes(key, "key")
        if timestamp is None:
            timestamp = int(self._wall_clock() * 1000)
        elif isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
            raise InvalidArgumentError(
                "timestamp", f"must be milliseconds since the epoch (int >= 0), got {timestamp!r}"
            )
        header_list: Sequence[Header] = header_pairs(headers) if headers else ()
        if partition is not None and (
            isinstance(partition, bool) or not isinstance(partition, int) or partition < 0
        ):
            raise InvalidArgumentError(
                "partition", f"must be None or an integer >= 0, got {partition!r}"
            )
        if on_delivery is not None and not callable(on_delivery):
            raise InvalidArgumentError("on_delivery", "must be callable")
        if self._closed:
            raise SinkClosedError("the sink is closed", topic=topic)
        sender = self._sender
        if sender is None:  # first use, or first use in a forked child (see the fork hook)
            sender = self._start()
        report: DeliveryReport | None = None
        if on_delivery is None:
            future: DeliveryFuture | None = DeliveryFuture(timestamp)
        elif type(on_delivery) is _Enqueued:
            # enqueue(): no future; the outcome goes to the report, per batch.
            report, future = on_delivery.report, None
        else:
            future = DeliveryFuture(timestamp, on_delivery)
        if partition is not None:
            self._append(
                topic, partition, timestamp, key_b, value_b, header_list, future, True, report
            )
            return future  # type: ignore[return-value]  # None for enqueue() only
        count = sender.partition_counts.get(topic)
        if count:
            partition = self._partition(topic, key_b, value_b, count)
            if (
                key_b is None
                and self._on_new_batch is not None
                and not self._accumulator.has_room(topic, partition)
            ):
                # Sticky partitioning (KIP-480): a keyless record that would
                # start a new batch moves on to another partition first.
                self._on_new_batch(topic, partition, count)
                partition = self._partition(topic, key_b, value_b, count)
        self._append(
            topic, partition, timestamp, key_b, value_b, header_list, future, False, report
        )
        return future  # type: ignore[return-value]  # None for enqueue() only

    def enqueue(
        self,
        topic: str,
        value: bytes | str | None,
        key: bytes | str | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
        headers: HeaderInput | None = None,
        report: DeliveryReport | None = None,
    ) -> None:
        """Queue one record without a future: the cheapest way to ship at volume.

        The arguments are those of :meth:`produce`. Outcomes are reported per
        batch to ``report`` (a :class:`~kafka_sink.DeliveryReport`: how many
        records were delivered, and which ones failed and why), and counted in
        :meth:`metrics` in any case; nothing is kept per record while it is in
        flight. Invalid arguments raise as in :meth:`produce`.

        Example::

            sink.enqueue("logs", b'{"msg": "hello"}', key=b"web-1")
        """
        Sink.produce(
            self,
            topic,
            value,
            key,
            partition,
            timestamp,
            headers,
            self._enqueued(report or _UNREPORTED),
        )

    def _submit(
        self,
        topic: str,
        value: bytes | str | None,
        key: bytes | str | None,
        partition: int | None,
        timestamp: int | None,
        headers: HeaderInput | None,
        on_delivery: DeliveryCallback | None,
        report: DeliveryReport | None,
    ) -> DeliveryFuture | None:
        """produce() (``report`` None: returns the future) or enqueue() (returns None),
        through the reference implementation: the compiled path's way out."""
        if report is not None:
            on_delivery = self._enqueued(report)
        return Sink.produce(self, topic, value, key, partition, timestamp, headers, on_delivery)

    def _enqueued(self, report: DeliveryReport) -> DeliveryCallback:
        """The marker that tells produce() to queue for ``report`` without a future
        (one per report, kept: enqueue() makes no object per record)."""
        marker = self._markers.get(report)
        if marker is None:
            marker = _Enqueued(report)
            if len(self._markers) < 1000:
                self._markers[report] = marker
        return marker

    def _check_topic(self, topic: object) -> None:
        name = check_topic(topic)
        if len(self._topics_ok) < 10000:  # remembered: checked once per topic
            self._topics_ok.add(name)

    # -- background thread ------------------------------------------------------------

    def _start(self) -> Sender:
        with self._lifecycle:
            if self._closed:
                # A caller that passed produce()'s closed check as close() ran:
                # a sender started now would outlive the sink.
                raise SinkClosedError("the sink is closed")
            if self._pid != os.getpid():  # forked: the parent's state is the parent's
                self._setup()
            if self._sender is not None:
                return self._sender
            if self.config.spool_dir is not None and self._spool is None:
                self._open_spool()  # a forked child's own log
            network = self._network_factory(self.config)
            sender = Sender(
                self.config,
                self._accumulator,
                network,
                self._partitioner,
                self._metrics,
                self._clock,
                spool=self._spool,
            )
            self._network = network
            if self._core is not None:
                self._core.sender = sender
            thread = threading.Thread(
                target=self._run, args=(sender, network), name=SENDER_THREAD_NAME, daemon=True
            )
            self._thread = thread
            self._sender = sender
            thread.start()
            return sender

    def _run(self, sender: Sender, network: Network) -> None:
        try:
            while not self._stop:
                try:
                    sender.run_once()
                except Exception:  # the loop must survive anything; counted, never logged
                    sender.loop_errors += 1
                    network.poll(0.01)
            message = "the sink closed before the record was delivered"
            spool = self._spool
            if spool is not None:
                message += (
                    f"; it stays in the spool ({spool.root}) and the next Sink opened "
                    "on that spool_dir delivers it"
                )
            sender.abort(SinkClosedError(message))
            self._accumulator.stop_sending()
        finally:
            network.close()
            spool = self._spool
            if spool is not None and spool.owner_pid == os.getpid():
                spool.close()

    def _wakeup(self) -> None:
        network = self._network
        if network is not None:
            network.wakeup()

    # -- flush and close ----------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> int:
        """Send everything buffered now; wait up to ``timeout`` seconds (None: until done).

        Returns how many records are still undelivered (0 when all were
        delivered or finally failed).
        """
        if self._thread is None:
            return self._accumulator.incomplete
        return self._accumulator.wait_idle(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Deliver what can be delivered within ``timeout`` seconds, then stop.

        ``None`` uses ``close_timeout_ms``. Records still undelivered at the
        end fail with :class:`~kafka_sink.SinkClosedError`; with a
        ``spool_dir`` they stay in the spool, and the next Sink opened on it
        delivers them first. Idempotent, and always returns within the
        timeout (plus a few milliseconds).
        """
        with self._lifecycle:
            if self._closed:
                return
            network = self._network
            if network is not None:
                # No log record from the sender once closing began: silenced
                # before the sink reads as closed.
                network.silence()
            self._closed = True
            if self._core is not None:
                self._core.closed = True
        lifecycle.forget(self)
        budget = self.config.close_timeout_ms / 1000.0 if timeout is None else max(0.0, timeout)
        deadline = time.monotonic() + budget
        self._accumulator.begin_close()
        thread = self._thread
        if thread is None or self._pid != os.getpid():
            spool = self._spool
            if thread is None and spool is not None and spool.owner_pid == os.getpid():
                spool.close()  # no sender thread to do it
            return
        if thread.is_alive():
            self._accumulator.wait_idle(max(0.0, deadline - time.monotonic()))
        self._stop = True
        self._wakeup()
        thread.join(max(0.0, deadline - time.monotonic()) + 0.05)

    async def flush_async(self, timeout: float | None = None) -> int:
        """:meth:`flush` for a coroutine: the wait does not block the event loop.

        ``await sink.flush_async(10)`` sends everything buffered now, waits up
        to ``timeout`` seconds (None: until done) in a thread of its own, and
        returns how many records are still undelivered. Cancelling the await
        stops waiting at once; the records are delivered all the same.
        """
        return await _off_the_loop(lambda: self.flush(timeout))

    async def aclose(self, timeout: float | None = None) -> None:
        """:meth:`close` for a coroutine: the wait does not block the event loop.

        ``await sink.aclose(10)`` delivers what it can within ``timeout``
        seconds (None: ``close_timeout_ms``), then stops, as :meth:`close`
        does; ``async with Sink(...) as sink:`` calls it on the way out.
        Cancelling the await does not cancel the close, which still ends
        within its timeout.
        """
        await _off_the_loop(lambda: self.close(timeout))

    @property
    def closed(self) -> bool:
        return self._closed

    def metrics(self) -> dict[str, Any]:
        """A snapshot of the pipeline's metrics (counts, sizes, latencies, states)."""
        network = self._network
        states: dict[int, str] = {}
        in_flight = 0
        if network is not None:
            for _ in range(3):  # read from another thread: retry if it changed under us
                try:
                    states = network.connection_states()
                    in_flight = network.in_flight()
                    break
                except RuntimeError:
                    continue
        snapshot = self._metrics.snapshot(
            records_queued=self._accumulator.queued,
            buffer_bytes_used=self._accumulator.buffer_used,
            buffer_bytes_limit=self.config.buffer_memory,
            records_incomplete=self._accumulator.incomplete,
            requests_in_flight=in_flight,
            connections={str(node): state for node, state in states.items()},
            loop_errors=self._sender.loop_errors if self._sender is not None else 0,
        )
        snapshot["implementation"] = IMPLEMENTATION
        spool = self._spool
        if spool is not None:
            snapshot.update(spool.metrics())
        return snapshot

    def _after_fork_in_child(self) -> None:
        # Locks may have been held by threads that do not exist in the child.
        self._lifecycle = threading.Lock()
        self._abandon_parents_spool()
        if not self._closed:
            self._setup()


class _Enqueued:
    """What enqueue() hands produce() as ``on_delivery``: queue for this report,
    without a future (a marker, so that produce() makes no extra call)."""

    __slots__ = ("report",)

    def __init__(self, report: DeliveryReport) -> None:
        self.report = report

    def __call__(self, metadata: RecordMetadata | None, error: DeliveryError | None) -> None:
        raise AssertionError("never called: produce() takes it apart")


class _Unreported:
    """The report of records enqueued without one: the Sink's metrics count them."""

    __slots__ = ()

    def delivered(self, count: int) -> None:
        pass

    def failed(self, error: DeliveryError, records: Sequence[UndeliveredRecord]) -> None:
        pass


_UNREPORTED = _Unreported()


async def _off_the_loop(call: Callable[[], _T]) -> _T:
    """Run a blocking call in a thread and await its result on the running loop."""
    # A thread of its own rather than the loop's default executor: that one
    # may be busy with the application's blocking calls, and a flush queued
    # behind them would outlast its timeout.
    import asyncio  # noqa: PLC0415 - only a process that awaits the sink pays for asyncio

    future: concurrent.futures.Future[_T] = concurrent.futures.Future()

    def run() -> None:
        # Running at once, so that a cancelled await cannot cancel the call:
        # a close must happen even when nobody waits for it any more.
        wanted = future.set_running_or_notify_cancel()
        try:
            result = call()
        except BaseException as error:  # handed to the awaiting coroutine
            if wanted:
                future.set_exception(error)
        else:
            if wanted:
                future.set_result(result)

    threading.Thread(target=run, name="kafka-sink-wait", daemon=True).start()
    return await asyncio.wrap_future(future)


def _default_network(config: SinkConfig) -> Network:
    return NetworkClient(
        client_id=config.client_id,
        request_timeout=config.request_timeout_ms / 1000.0,
        max_in_flight=config.max_in_flight,
        ip_version=config.ip_version,
        security=config.security,
    )


def _default_partitioner() -> Partitioner:
    return DefaultPartitioner()
