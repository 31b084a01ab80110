"""Delivery futures: what :meth:`Sink.produce` returns for each record.

A :class:`DeliveryFuture` is a :class:`concurrent.futures.Future`: ``result``,
``exception``, ``done``, ``add_done_callback``, :func:`concurrent.futures.wait`,
:func:`concurrent.futures.as_completed` and :func:`asyncio.wrap_future` work
with it as with any other. It is resolved once, on the sender thread, when
the record's batch is acknowledged or finally fails.

It is cheap on the hot path: unlike a plain ``concurrent.futures.Future`` it
makes no lock per record; the lock and the lists that waiting needs are made
only when something waits on the future or adds a callback to it, and every
record of a batch shares one outcome object.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Sequence
from concurrent.futures._base import FINISHED, LOGGER, RUNNING
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from kafka_sink import lifecycle
from kafka_sink.errors import DeliveryError, InvalidArgumentError, WaitTimeoutError

if TYPE_CHECKING:
    from concurrent.futures._base import _Waiter

__all__ = [
    "BatchOutcome",
    "ConfluentDeliveryCallback",
    "DeliveryCallback",
    "DeliveryFuture",
    "DeliveryReport",
    "DoneCallback",
    "RecordMetadata",
    "ReportedRecord",
    "UndeliveredRecord",
    "confluent_style",
]


@dataclass(frozen=True, slots=True)
class RecordMetadata:
    """Where a record was written: topic, partition, offset and timestamp (ms).

    ``offset`` is -1 when the broker does not say (acks=0, or a retry that
    the broker recognised as a duplicate of a write already done).
    """

    topic: str
    partition: int
    offset: int
    timestamp: int


#: ``on_delivery(metadata, error)``: exactly one of the two is None.
DeliveryCallback = Callable[[RecordMetadata | None, DeliveryError | None], None]

#: confluent-kafka's order, ``on_delivery(err, msg)``: see :func:`confluent_style`.
ConfluentDeliveryCallback = Callable[[DeliveryError | None, RecordMetadata | None], object]

#: What :meth:`DeliveryFuture.add_done_callback` takes (the signature of
#: ``concurrent.futures.Future``'s).
DoneCallback = Callable[[concurrent.futures.Future[RecordMetadata]], object]


class BatchOutcome:
    """The result of one batch, shared by the futures of its records."""

    __slots__ = ("base_offset", "error", "log_append_time", "partition", "topic")

    def __init__(
        self,
        topic: str,
        partition: int,
        base_offset: int,
        log_append_time: int = -1,
        error: DeliveryError | None = None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.base_offset = base_offset
        self.log_append_time = log_append_time
        self.error = error


class _Completion(threading.Condition):
    """What waiting on one future needs, made the first time something waits.

    The condition is what ``concurrent.futures.wait`` and ``as_completed``
    lock as the future's ``_condition``; ``waiters`` is the future's
    ``_waiters``, the list those functions add their waiter to.
    """

    def __init__(self) -> None:
        super().__init__()
        self.waiters: list[_Waiter] = []
        self.callbacks: list[DoneCallback] = []


# Serialises the making of a future's _Completion: two threads that begin to
# wait at once must share one, or the one that loses would never be woken.
_making = threading.Lock()


def _reset_after_fork() -> None:
    global _making  # noqa: PLW0603 - a lock held by a thread that the child does not have
    _making = threading.Lock()


lifecycle.on_fork_in_child(_reset_after_fork)


class DeliveryFuture(concurrent.futures.Future[RecordMetadata]):
    """The pending delivery of one record: a :class:`concurrent.futures.Future`.

    Example::

        future = sink.produce("logs", b"hello")
        metadata = future.result(timeout=5)   # raises DeliveryError on failure
        print(metadata.partition, metadata.offset)

        # In a coroutine: await the delivery without blocking the event loop.
        metadata = await asyncio.wrap_future(sink.produce("logs", b"hello"))

        # Many at once.
        done, pending = concurrent.futures.wait(futures, timeout=10)

    The result is a :class:`RecordMetadata`; a record that could not be
    delivered fails with a :class:`~kafka_sink.DeliveryError` (its
    ``exception()``). A record already handed to the sink cannot be recalled:
    the future is *running* from the start, and :meth:`cancel` returns False
    as it does for a running ``concurrent.futures.Future``.
    """

    # concurrent.futures.Future.__init__ is deliberately not called: it makes
    # a Condition and two lists per future, which would cost every record
    # more than all the rest of produce(). What concurrent.futures.wait() and
    # as_completed() read of a future (_condition, _state, _waiters) is made
    # by the properties below, the first time they are read.
    __slots__ = ("_callback", "_index", "_outcome", "_timestamp", "_waiter")

    def __init__(
        self, timestamp: int, callback: DeliveryCallback | None = None, index: int = 0
    ) -> None:
        self._timestamp = timestamp
        self._callback = callback
        self._index = index
        self._outcome: BatchOutcome | None = None
        # Not None once something waits or adds a callback: resolve() must
        # then be called (batches skip the futures where both are None).
        self._waiter: _Completion | None = None

    def __repr__(self) -> str:
        if self._outcome is None:
            return "<DeliveryFuture pending>"
        if self._outcome.error is not None:
            return f"<DeliveryFuture failed: {self._outcome.error.message}>"
        return f"<DeliveryFuture done: {self._metadata()}>"

    # -- the state, as concurrent.futures sees it --------------------------------------

    def cancel(self) -> bool:
        """Return False: a record handed to the sink cannot be recalled."""
        return False

    def cancelled(self) -> bool:
        """Return False: a delivery future is never cancelled."""
        return False

    def running(self) -> bool:
        """Whether the record is still on its way (neither delivered nor failed)."""
        return self._outcome is None

    def done(self) -> bool:
        """Whether the record was delivered or finally failed."""
        return self._outcome is not None

    # -- waiting ---------------------------------------------------------------------

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """Wait for delivery; return where the record was written or raise its error.

        ``timeout`` is in seconds (None: wait until the record is delivered or
        fails). A wait that runs out raises :class:`~kafka_sink.WaitTimeoutError`
        (a :class:`TimeoutError`) and leaves the delivery going on; a record
        that was not acknowledged within ``delivery_timeout_ms`` raises
        :class:`~kafka_sink.DeliveryTimeoutError`, and any other failure its
        :class:`~kafka_sink.DeliveryError`.
        """
        outcome = self._outcome
        if outcome is None:
            outcome = self._wait(timeout)
        if outcome.error is not None:
            raise outcome.error
        return self._metadata()

    def exception(self, timeout: float | None = None) -> DeliveryError | None:
        """Wait for delivery; return its error, or None when it was delivered.

        A wait that runs out raises :class:`~kafka_sink.WaitTimeoutError`, as
        :meth:`result` does.
        """
        outcome = self._outcome
        if outcome is None:
            outcome = self._wait(timeout)
        return outcome.error

    def add_done_callback(self, fn: DoneCallback) -> None:
        """Call ``fn(future)`` once the record is delivered or has finally failed.

        It runs on the sender thread, after ``on_delivery``, in the order the
        callbacks were added; there an exception it raises is counted in the
        sink's ``metrics()["callback_errors"]`` and otherwise ignored. On a
        future already done, ``fn`` runs at once on the calling thread, and
        an exception it raises is logged to the ``concurrent.futures`` logger,
        as ``concurrent.futures.Future`` does.
        """
        if self._outcome is None:
            completion = self._completion()
            with completion:
                # Checked under the lock that resolve() takes: either it sees
                # this callback, or this sees its outcome.
                if self._outcome is None:
                    completion.callbacks.append(fn)
                    return
        try:
            fn(self)
        except Exception:
            LOGGER.exception("exception calling callback for %r", self)

    def _wait(self, timeout: float | None) -> BatchOutcome:
        completion = self._completion()
        with completion:
            # resolve() publishes the outcome before it looks for a
            # completion, and notifies under its lock: the predicate, checked
            # first under that lock, cannot miss the outcome.
            completion.wait_for(self.done, timeout)
        outcome = self._outcome
        if outcome is None:  # only a wait with a timeout ends before the outcome
            raise WaitTimeoutError(
                f"the record is still in flight after a wait of {timeout or 0:g} s",
                timeout=timeout,
            )
        return outcome

    def _completion(self) -> _Completion:
        completion = self._waiter
        if completion is None:
            with _making:
                completion = self._waiter
                if completion is None:
                    completion = self._waiter = _Completion()
        return completion

    # What concurrent.futures.wait() and as_completed() read and lock. They
    # are read-only: only the sink completes a delivery future.

    @property
    def _condition(self) -> threading.Condition:
        return self._completion()

    @_condition.setter
    def _condition(self, value: threading.Condition) -> None:
        raise AttributeError("a DeliveryFuture's _condition is read-only")

    @property
    def _waiters(self) -> list[_Waiter]:
        return self._completion().waiters

    @_waiters.setter
    def _waiters(self, value: list[_Waiter]) -> None:
        raise AttributeError("a DeliveryFuture's _waiters is read-only")

    @property
    def _state(self) -> str:
        return FINISHED if self._outcome is not None else RUNNING

    @_state.setter
    def _state(self, value: str) -> None:
        raise AttributeError("a DeliveryFuture's _state is read-only")

    # -- completion: the sink's side -----------------------------------------------

    def set_running_or_notify_cancel(self) -> bool:
        """Not for delivery futures: raises ``concurrent.futures.InvalidStateError``.

        This is an executor's method, and the sink alone completes its futures.
        """
        raise concurrent.futures.InvalidStateError("a delivery future is run by its sink")

    def set_result(self, result: RecordMetadata) -> None:
        """Not for delivery futures: raises ``concurrent.futures.InvalidStateError``."""
        raise concurrent.futures.InvalidStateError("a delivery future is completed by its sink")

    def set_exception(self, exception: BaseException | None) -> None:
        """Not for delivery futures: raises ``concurrent.futures.InvalidStateError``."""
        raise concurrent.futures.InvalidStateError("a delivery future is completed by its sink")

    def _metadata(self) -> RecordMetadata:
        outcome = self._outcome
        assert outcome is not None
        offset = outcome.base_offset + self._index if outcome.base_offset >= 0 else -1
        stamp = outcome.log_append_time if outcome.log_append_time >= 0 else self._timestamp
        return RecordMetadata(outcome.topic, outcome.partition, offset, stamp)

    def resolve(self, outcome: BatchOutcome) -> bool:
        """Complete the future (sender thread). Returns False if a callback raised."""
        # The outcome is published before the completion is read; waiters
        # publish the completion before they read the outcome (see _wait).
        self._outcome = outcome
        completion = self._waiter
        callbacks: list[DoneCallback] = []
        if completion is not None:
            with completion:
                failed = outcome.error is not None
                for waiter in completion.waiters:
                    if failed:
                        waiter.add_exception(self)
                    else:
                        waiter.add_result(self)
                completion.notify_all()
                callbacks, completion.callbacks = completion.callbacks, []
        ok = True
        callback = self._callback
        if callback is not None:
            self._callback = None
            try:
                if outcome.error is None:
                    callback(self._metadata(), None)
                else:
                    callback(None, outcome.error)
            except Exception:  # a user's callback must not break the sender
                ok = False
        for fn in callbacks:
            try:
                fn(self)
            except Exception:  # counted, never logged: the sender thread does not log
                ok = False
        return ok


def confluent_style(callback: ConfluentDeliveryCallback) -> DeliveryCallback:
    """Adapt a delivery callback written for confluent-kafka's ``(err, msg)`` order.

    kafka_sink calls ``on_delivery(metadata, error)``, the order of
    ``concurrent.futures`` and most Python APIs (the result first);
    confluent-kafka calls ``on_delivery(err, msg)``. Wrap a callback of the
    latter kind rather than reorder it by hand::

        def delivery_report(err, msg):
            if err is not None:
                print(f"delivery failed: {err}")
            else:
                print(f"delivered to {msg.topic} [{msg.partition}] at offset {msg.offset}")

        sink.produce("logs", b"hello", on_delivery=kafka_sink.confluent_style(delivery_report))

    ``msg`` is a :class:`RecordMetadata`, not confluent-kafka's ``Message``:
    ``topic``, ``partition``, ``offset`` and ``timestamp`` are attributes
    (no parentheses), it holds no key or value, and it is None when ``err``
    is set. ``err`` is a :class:`~kafka_sink.DeliveryError`.
    """
    if not callable(callback):
        raise InvalidArgumentError("callback", "must be callable")

    def on_delivery(metadata: RecordMetadata | None, error: DeliveryError | None) -> None:
        callback(error, metadata)

    return on_delivery


@dataclass(frozen=True, slots=True)
class UndeliveredRecord:
    """A record that :meth:`Sink.enqueue` accepted and that finally failed."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


@runtime_checkable
class DeliveryReport(Protocol):
    """Where :meth:`Sink.enqueue` reports outcomes: per batch, not per record.

    Both methods run on the sender thread; an exception they raise is counted
    in ``callback_errors`` and otherwise ignored. ``failed`` receives the
    records rebuilt from the batch (so nothing is kept per record while the
    batch is in flight) together with the error that ended them.

    A report that only counts sets ``needs_records = False``: its ``failed``
    then receives records without their key, value and headers (their topic
    and their number are right), and a record refused before it reached a
    batch (a full buffer) keeps nothing of its contents while the refusal
    waits to be reported.

    Example::

        class Counts:
            def __init__(self) -> None:
                self.ok = self.lost = 0
            def delivered(self, count: int) -> None:
                self.ok += count
            def failed(self, error: DeliveryError, records: Sequence[UndeliveredRecord]) -> None:
                self.lost += len(records)

        sink.enqueue("logs", b"hello", report=counts)
    """

    def delivered(self, count: int) -> None:
        """``count`` records were written."""

    def failed(self, error: DeliveryError, records: Sequence[UndeliveredRecord]) -> None:
        """These records will not be delivered, for this reason."""


class ReportedRecord(DeliveryFuture):
    """An enqueued record that left its batch's path (a full buffer, no metadata yet,
    a batch split): it reports to its :class:`DeliveryReport` alone.

    Only these rare paths make an object per record; records in a batch are
    reported by the batch. It is never handed to a caller, so nothing waits
    on it.
    """

    __slots__ = ("_record", "_report")

    def __init__(
        self,
        report: DeliveryReport,
        timestamp: int,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes | None]],
    ) -> None:
        # A callback, so that a batch resolves this future (batches skip the
        # futures that have neither a waiter nor a callback).
        super().__init__(timestamp, _reported)
        self._report = report
        self._record = (
            UndeliveredRecord(topic, key, value, tuple(headers))
            if needs_records(report)
            else UndeliveredRecord(topic, None, None, ())
        )

    def resolve(self, outcome: BatchOutcome) -> bool:
        self._outcome = outcome
        try:
            if outcome.error is None:
                self._report.delivered(1)
            else:
                self._report.failed(outcome.error, (self._record,))
        except Exception:  # a report must not break the sender
            return False
        return True


def needs_records(report: DeliveryReport) -> bool:
    """Whether ``report`` wants the contents of the records that failed."""
    return getattr(report, "needs_records", True) is not False


def _reported(metadata: RecordMetadata | None, error: DeliveryError | None) -> None:
    """The stand-in callback of a :class:`ReportedRecord` (never called)."""
