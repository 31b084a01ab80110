"""Delivery futures: what :meth:`Sink.produce` returns for each record.

A future is resolved once, on the sender thread, when the record's batch is
acknowledged or finally fails. It is cheap on the hot path: no lock and no
event are created per record; a waiter is only made when a caller actually
blocks in :meth:`DeliveryFuture.result`, and every record of a batch shares
one outcome object.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from kafka_sink.errors import DeliveryError, DeliveryTimeoutError

__all__ = [
    "BatchOutcome",
    "DeliveryCallback",
    "DeliveryFuture",
    "DeliveryReport",
    "RecordMetadata",
    "ReportedRecord",
    "UndeliveredRecord",
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


class DeliveryFuture:
    """The pending delivery of one record.

    Example::

        future = sink.produce("logs", b"hello")
        metadata = future.result(timeout=5)   # raises DeliveryError on failure
        print(metadata.partition, metadata.offset)
    """

    __slots__ = ("_callback", "_index", "_outcome", "_timestamp", "_waiter")

    def __init__(
        self, timestamp: int, callback: DeliveryCallback | None = None, index: int = 0
    ) -> None:
        self._timestamp = timestamp
        self._callback = callback
        self._index = index
        self._outcome: BatchOutcome | None = None
        self._waiter: threading.Event | None = None

    def __repr__(self) -> str:
        if self._outcome is None:
            return "<DeliveryFuture pending>"
        if self._outcome.error is not None:
            return f"<DeliveryFuture failed: {self._outcome.error.message}>"
        return f"<DeliveryFuture done: {self._metadata()}>"

    def done(self) -> bool:
        """Whether the record was delivered or finally failed."""
        return self._outcome is not None

    def _wait(self, timeout: float | None) -> BatchOutcome:
        outcome = self._outcome
        if outcome is not None:
            return outcome
        waiter = self._waiter
        if waiter is None:
            waiter = threading.Event()
            self._waiter = waiter
        # Re-check after publishing the waiter: resolve() sets the outcome
        # before it reads the waiter, so one of the two sides sees the other.
        if self._outcome is None:
            waiter.wait(timeout)
        outcome = self._outcome
        if outcome is None:
            raise DeliveryTimeoutError("the record was not delivered within the wait")
        return outcome

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """Wait for delivery; return where the record was written or raise its error.

        A wait that runs out raises :class:`~kafka_sink.DeliveryTimeoutError`
        without affecting the delivery itself.
        """
        outcome = self._wait(timeout)
        if outcome.error is not None:
            raise outcome.error
        return self._metadata()

    def exception(self, timeout: float | None = None) -> DeliveryError | None:
        """Wait for delivery; return its error, or None when it was delivered."""
        return self._wait(timeout).error

    def _metadata(self) -> RecordMetadata:
        outcome = self._outcome
        assert outcome is not None
        offset = outcome.base_offset + self._index if outcome.base_offset >= 0 else -1
        stamp = outcome.log_append_time if outcome.log_append_time >= 0 else self._timestamp
        return RecordMetadata(outcome.topic, outcome.partition, offset, stamp)

    def resolve(self, outcome: BatchOutcome) -> bool:
        """Complete the future (sender thread). Returns False if the callback raised."""
        self._outcome = outcome
        waiter = self._waiter
        if waiter is not None:
            waiter.set()
        callback = self._callback
        if callback is None:
            return True
        self._callback = None
        try:
            if outcome.error is None:
                callback(self._metadata(), None)
            else:
                callback(None, outcome.error)
        except Exception:  # a user's callback must not break the sender
            return False
        return True


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
    reported by the batch.
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
        self._record = UndeliveredRecord(topic, key, value, tuple(headers))

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


def _reported(metadata: RecordMetadata | None, error: DeliveryError | None) -> None:
    """The stand-in callback of a :class:`ReportedRecord` (never called)."""
