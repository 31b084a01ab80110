"""Per-partition batches between the callers' threads and the sender thread.

Theory of operation. ``append`` (any thread) encodes a record straight into
the open batch of its partition, under one lock; nothing is encoded again at
send time. A batch is *ready* when it is full, when it has lingered
``linger_ms``, or while a flush or close is in progress. The sender thread
*drains* ready batches of partitions whose leader can take a request, at most
one batch per partition in flight: that keeps records in order across retries
without relying on the broker, and lets an idempotent producer assign each
partition's sequence numbers in plain order.

Memory is bounded by ``buffer_memory``: every record reserves an estimate of
what it costs in this process (payload plus a fixed per-record overhead) until
its batch is finished. When the buffer is full the ``on_buffer_full`` policy
decides: wait for space up to ``max_block_ms``, refuse the new record, or
evict the oldest batches that were never sent. A refused or evicted record is
counted and its future fails with :class:`~kafka_sink.BufferFullError`;
futures failed here are resolved by the sender thread, so delivery callbacks
always run there.

Records for a topic whose partition count is not known yet (no metadata, and
no partition given) wait unencoded in a per-topic queue until the sender has
the metadata and assigns them a partition.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kafka_sink._accel import speedups as _speedups
from kafka_sink.config import SinkConfig
from kafka_sink.errors import BufferFullError, DeliveryError, RecordTooLargeError, SinkClosedError
from kafka_sink.net.metadata import TopicPartition
from kafka_sink.net.transport import Clock
from kafka_sink.producer.futures import (
    BatchOutcome,
    DeliveryFuture,
    DeliveryReport,
    ReportedRecord,
    UndeliveredRecord,
    needs_records,
)
from kafka_sink.producer.metrics import SinkMetrics
from kafka_sink.protocol.codecs import Compression
from kafka_sink.protocol.records import BATCH_HEADER_SIZE, BatchBuilder, Header, decode_batches

__all__ = ["PendingRecord", "ProducerBatch", "RecordAccumulator", "SpoolFull"]


if TYPE_CHECKING:
    from kafka_sink.producer.spool import LoadedRecord, Spool

# The compiled fields of the accumulator, or none (the pure path).
# (mypy checks the pure shape; the C fields have the same names and types.)
if TYPE_CHECKING or _speedups is None:  # noqa: SIM108 - a conditional base class
    _AccumulatorBase = object
else:
    _AccumulatorBase = _speedups.AccumulatorCore

#: Bytes a buffered record costs beyond its key, value and headers: its future,
#: its encoded bytes object and list slots. Counting it keeps the process's
#: real memory near ``buffer_memory`` even for small records.
RECORD_OVERHEAD = 128
#: Bytes a record adds to a request beyond its key, value and headers (varints,
#: attributes): used to reject a record that cannot fit any request.
_RECORD_WIRE_OVERHEAD = 32


class SpoolFull(Exception):
    """A spool cannot take a record (``reason``: ``spool_full``, ``spool_disk_full``,
    ``spool_io_error``); raised by the spool's writer, handled by the accumulator."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def record_size(key: bytes | None, value: bytes | None, headers: Sequence[Header]) -> int:
    """Payload bytes of a record (key, value, header names and values)."""
    size = (len(key) if key is not None else 0) + (len(value) if value is not None else 0)
    for name, data in headers:
        size += len(name) + (len(data) if data is not None else 0)
    return size


class ProducerBatch:
    """A batch of one partition, with the futures and reports of its records.

    A record produced with a future has its future in ``futures`` (its
    ``_index`` is its place in the batch); records enqueued without one are
    counted in ``reports``, as runs ``[report, first index, count]`` of
    consecutive records with the same :class:`DeliveryReport`: a batch of a
    thousand log records from one handler holds one run, not a thousand
    objects.
    """

    __slots__ = (
        "attempts",
        "builder",
        "created",
        "futures",
        "partition",
        "pinned",
        "producer_epoch",
        "producer_id",
        "reports",
        "reserved",
        "retry_at",
        "sealed",
        "sequence",
        "spool_ids",
        "spool_log",
        "spool_serial",
        "topic",
        "wire",
    )

    def __init__(
        self,
        topic: str,
        partition: int,
        compression: Compression,
        max_bytes: int,
        now: float,
        compression_level: int | None = None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.builder = BatchBuilder(compression, max_bytes, compression_level)
        self.futures: list[DeliveryFuture] = []
        self.reports: list[list[Any]] = []
        self.created = now
        self.attempts = 0
        self.reserved = 0
        self.retry_at = 0.0
        self.sealed = False
        self.sequence: int | None = None
        self.producer_id = -1
        self.producer_epoch = -1
        self.wire: bytes | None = None
        # With a spool: the log the records are in, their ids there, the
        # batch's number in that log's journal, and whether its producer
        # fields come from a replayed journal (sent again exactly as they were).
        self.spool_log: Any = None
        self.spool_ids: array[int] | None = None
        self.spool_serial = -1
        self.pinned = False

    def __repr__(self) -> str:
        return (
            f"<ProducerBatch {self.topic}-{self.partition} records={len(self.futures)} "
            f"attempts={self.attempts} sequence={self.sequence}>"
        )

    @property
    def record_count(self) -> int:
        return self.builder.record_count

    def add(self, future: DeliveryFuture | None, report: DeliveryReport | None) -> None:
        """Attach the record just appended to the builder to its future or report."""
        index = self.builder.record_count - 1
        if future is not None:
            future._index = index
            self.futures.append(future)
            return
        reports = self.reports
        if reports and reports[-1][0] is report:
            reports[-1][2] += 1
        else:
            reports.append([report, index, 1])

    def undelivered(self) -> list[UndeliveredRecord]:
        """The batch's records, rebuilt from its bytes (for reports of a failure)."""
        return [
            UndeliveredRecord(self.topic, record.key, record.value, record.headers)
            for batch in decode_batches(self.builder.build(), verify_crc=False)
            for record in batch.records
        ]

    def encoded(self, producer_id: int, producer_epoch: int, sequence: int) -> bytes:
        """The batch's bytes for these producer fields (compressed once, then reused)."""
        wire = self.wire
        if (
            wire is None
            or self.producer_id != producer_id
            or self.producer_epoch != producer_epoch
            or self.sequence != sequence
        ):
            wire = self.builder.build(producer_id, producer_epoch, sequence)
            self.wire = wire
            self.producer_id, self.producer_epoch, self.sequence = (
                producer_id,
                producer_epoch,
                sequence,
            )
        return wire

    def resolve(self, outcome: BatchOutcome) -> int:
        """Resolve every future; return how many callbacks raised."""
        errors = 0
        for future in self.futures:
            # Publish the outcome first, then look for a waiter or a callback:
            # the same order as DeliveryFuture.resolve, so a waiter that appears
            # meanwhile sees the outcome when it re-checks.
            future._outcome = outcome
            if (future._waiter is not None or future._callback is not None) and not (
                future.resolve(outcome)
            ):
                errors += 1
        if self.reports:
            errors += self._resolve_reports(outcome)
        return errors

    def _resolve_reports(self, outcome: BatchOutcome) -> int:
        errors = 0
        records: list[UndeliveredRecord] | None = None
        for report, first, count in self.reports:
            try:
                if outcome.error is None:
                    report.delivered(count)
                elif not needs_records(report):
                    report.failed(
                        outcome.error, [UndeliveredRecord(self.topic, None, None, ())] * count
                    )
                else:
                    if records is None:
                        records = self.undelivered()
                    report.failed(outcome.error, records[first : first + count])
            except Exception:  # a report must not break the sender
                errors += 1
        return errors


@dataclass(slots=True)
class PendingRecord:
    """A record waiting for its topic's metadata before it gets a partition."""

    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[Header]
    future: DeliveryFuture
    reserved: int
    created: float
    partition: int | None = None
    spool_id: int = -1
    spool_log: Any = None


class RecordAccumulator(_AccumulatorBase):
    """Batches by partition, bounded memory, readiness and draining.

    With the compiled extension, the fields that the fast path shares
    (``_used``, ``_buffer_limit``, ``_incomplete``, ``_queued``,
    ``_max_record``, ``_batch_size``, ``_closing``, ``_batches``,
    ``_pending``, ``_lock``) are C fields of the base class, read and written
    here as ordinary attributes; ``kafka_sink._speedups.SinkCore`` appends
    through them without running any Python code (see its theory of
    operation).
    """

    def __init__(
        self,
        config: SinkConfig,
        *,
        clock: Clock,
        wakeup: Callable[[], None],
        metrics: SinkMetrics,
    ) -> None:
        self._config = config
        self._clock = clock
        self._wakeup = wakeup
        self._metrics = metrics
        self._compression = Compression.from_name(config.compression_type)
        self._linger = config.linger_ms / 1000.0
        self._delivery_timeout = config.delivery_timeout_ms / 1000.0
        self._max_record = config.max_request_size - BATCH_HEADER_SIZE - _RECORD_WIRE_OVERHEAD
        self._buffer_limit = config.buffer_memory
        self._batch_size = config.batch_size
        self._lock = threading.Lock()
        self._acquire = self._lock.acquire
        self._release = self._lock.release
        self._queued = 0
        self._space = threading.Condition(self._lock)
        self._blocked = 0  # callers waiting in _space for buffer room
        self._idle = threading.Condition(self._lock)
        self._batches: dict[TopicPartition, deque[ProducerBatch]] = {}
        self._pending: dict[str, deque[PendingRecord]] = {}
        self._muted: set[TopicPartition] = set()
        self._doomed: list[tuple[DeliveryFuture, DeliveryError]] = []
        self._used = 0
        self._incomplete = 0
        self._flushing = 0
        self._closing = False
        self._stopped = False  # see stop_sending()
        self._drain_start = 0
        self._spool: Spool | None = None

    # -- callers' threads ---------------------------------------------------------

    def append(
        self,
        topic: str,
        partition: int | None,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header],
        future: DeliveryFuture | None,
        explicit: bool = False,
        report: DeliveryReport | None = None,
    ) -> None:
        """Buffer one record (``partition`` None: assigned once metadata is known).

        ``explicit`` says the caller chose the partition (it is kept even if
        the record has to wait behind records still waiting for metadata).
        The outcome goes to ``future``, or when it is None to ``report``, per
        batch. Never raises for a full buffer or an oversized record: the
        future (or the report) is told of the failure.
        """
        if headers:
            payload = record_size(key, value, headers)
        else:
            payload = (0 if key is None else len(key)) + (0 if value is None else len(value))
        if payload > self._max_record:
            if future is None:
                future = _reported(report, timestamp, topic, key, value, headers)
            self._refuse_too_large(topic, payload, future)
            return
        size = payload + RECORD_OVERHEAD
        # The fast path, taken by nearly every record: room in the buffer, a
        # known partition, nobody waiting for metadata ahead of it, and an open
        # batch with room; a closing accumulator takes the slow path. The lock is
        # taken through pre-bound methods: ``with lock`` looks up two special
        # methods on every use.
        self._acquire()
        try:
            used = self._used + size
            if (
                used <= self._buffer_limit
                and not self._closing
                and partition is not None
                and topic not in self._pending
            ):
                queue = self._batches.get((topic, partition))
                if queue:
                    batch = queue[-1]
                    if not batch.sealed and batch.builder.append(timestamp, key, value, headers):
                        self._used = used
                        self._incomplete += 1
                        self._queued += 1
                        if future is not None:
                            futures = batch.futures
                            future._index = (
                                batch.builder.record_count - 1 if batch.reports else len(futures)
                            )
                            futures.append(future)
                        else:
                            batch.add(None, report)
                        batch.reserved += size
                        return
            wake = self._append_slow(
                topic, partition, timestamp, key, value, headers, future, size, explicit, report
            )
            late = self._stopped
        finally:
            self._release()
        if late:
            self.resolve_doomed()
        elif wake:
            self._wakeup()

    def _refuse_too_large(self, topic: str, payload: int, future: DeliveryFuture) -> None:
        error = RecordTooLargeError(
            f"the record's {payload} bytes exceed max_request_size "
            f"({self._config.max_request_size} bytes)",
            topic=topic,
            size=payload,
        )
        with self._lock:
            self._metrics.dropped["too_large"] += 1
            self._doomed.append((future, error))
            late = self._stopped
        if late:
            self.resolve_doomed()
        else:
            self._wakeup()

    def _append_slow(
        self,
        topic: str,
        partition: int | None,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header],
        future: DeliveryFuture | None,
        size: int,
        explicit: bool,
        report: DeliveryReport | None,
    ) -> bool:
        """``append`` under the lock, when the fast path does not apply; True: wake the sender."""
        # drop_oldest may evict records: their futures fail on the sender
        # thread, which must then be woken rather than wait for its next turn.
        evicted = False
        if self._closing:
            admitted = False
        elif self._used + size <= self._buffer_limit:
            self._used += size
            admitted = True
        else:
            doomed = len(self._doomed)
            admitted = self._reserve(size, topic)
            evicted = len(self._doomed) > doomed
        pending = self._pending.get(topic)
        if future is None and (not admitted or partition is None or pending):
            # Leaving the batch's path: this record reports on its own.
            future = _reported(report, timestamp, topic, key, value, headers)
        if not admitted:
            assert future is not None
            if self._closing:
                self._metrics.dropped["closed"] += 1
                self._doomed.append((future, _closed_error(topic)))
            else:
                self._metrics.dropped[f"buffer_full_{self._config.on_buffer_full}"] += 1
                self._doomed.append((future, _buffer_full_error(topic, self._config)))
            return True
        self._incomplete += 1
        self._queued += 1
        if partition is None or pending:
            # Records wait in produce order: while earlier records of the topic
            # wait for metadata, later ones queue behind them.
            if pending is None:
                pending = self._pending[topic] = deque()
            wake = evicted or not pending
            assert future is not None
            pending.append(
                PendingRecord(
                    timestamp,
                    key,
                    value,
                    headers,
                    future,
                    size,
                    self._clock(),
                    partition if explicit else None,
                )
            )
            return wake
        return (
            self._place(topic, partition, timestamp, key, value, headers, future, size, report)
            or evicted
        )

    def _reserve(self, size: int, topic: str) -> bool:
        """Reserve ``size`` bytes under the lock, applying the buffer-full policy."""
        limit = self._config.buffer_memory
        if self._used + size <= limit:
            self._used += size
            return True
        policy = self._config.on_buffer_full
        if policy == "drop_oldest":
            self._evict_oldest(self._used + size - limit)
        elif policy == "block":
            deadline = self._clock() + self._config.max_block_ms / 1000.0
            while self._used + size > limit and not self._closing:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                self._blocked += 1
                try:
                    self._space.wait(remaining)
                finally:
                    self._blocked -= 1
        if self._used + size <= limit:
            self._used += size
            return True
        return False

    def _evict_oldest(self, needed: int) -> None:
        """Evict never-sent batches and pending records, oldest first, to free ``needed``."""
        candidates: list[tuple[float, TopicPartition | str]] = []
        for tp, queue in self._batches.items():
            for batch in queue:
                if batch.sequence is None and not batch.sealed:
                    candidates.append((batch.created, tp))
                    break
        for topic, pending in self._pending.items():
            if pending:
                candidates.append((pending[0].created, topic))
        candidates.sort(key=lambda item: item[0])
        freed = 0
        error = BufferFullError(
            "evicted by a newer record: the buffer was full (on_buffer_full='drop_oldest')"
        )
        for _, where in candidates:
            if freed >= needed:
                break
            if isinstance(where, str):
                queue_p = self._pending[where]
                while queue_p and freed < needed:
                    record = queue_p.popleft()
                    freed += record.reserved
                    self._doom(record.future, error)
                continue
            queue_b = self._batches[where]
            for batch in list(queue_b):
                if batch.sequence is not None or batch.sealed:
                    continue
                queue_b.remove(batch)
                freed += batch.reserved
                for future in batch.futures:
                    self._doom(future, error)
                wanted = any(needs_records(report) for report, _, _ in batch.reports)
                records = batch.undelivered() if wanted else []
                for report, first, count in batch.reports:
                    if not needs_records(report):
                        for _ in range(count):
                            self._doom(_reported(report, 0, batch.topic, None, None, ()), error)
                        continue
                    for lost in records[first : first + count]:
                        self._doom(_reported(report, 0, *_fields(lost)), error)
                break
        self._used -= freed

    def _doom(self, future: DeliveryFuture, error: DeliveryError) -> None:
        self._doomed.append((future, error))
        self._incomplete -= 1
        self._metrics.dropped["buffer_full_drop_oldest"] += 1

    def _place(
        self,
        topic: str,
        partition: int,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header],
        future: DeliveryFuture | None,
        size: int,
        report: DeliveryReport | None = None,
        spool_id: int = -1,
        spool_log: Any = None,
    ) -> bool:
        """Encode into the partition's open batch; True when the sender should look.

        A spooled record (``spool_log`` set) joins only a batch of records of
        the same log: a batch's journal entries live in one log.
        """
        tp = (topic, partition)
        queue = self._batches.get(tp)
        if queue is None:
            queue = self._batches[tp] = deque()
        batch = queue[-1] if queue else None
        fresh = False
        if (
            batch is None
            or batch.sealed
            or batch.spool_log is not spool_log
            or not batch.builder.append(timestamp, key, value, headers)
        ):
            batch = ProducerBatch(
                topic,
                partition,
                self._compression,
                self._config.batch_size,
                self._clock(),
                self._config.compression_level,
            )
            batch.builder.append(timestamp, key, value, headers)
            queue.append(batch)
            fresh = True
            if spool_log is not None:
                batch.spool_log = spool_log
                batch.spool_ids = array("q")
        batch.add(future, report)
        batch.reserved += size
        if spool_log is not None:
            ids = batch.spool_ids
            assert ids is not None
            ids.append(spool_id)
        # Wake the sender for a new batch (a new linger deadline) or a full one.
        return fresh

    def has_room(self, topic: str, partition: int) -> bool:
        """Whether the partition has an open batch with room (read without the lock:
        a stale answer only moves a keyless record to another partition early)."""
        queue = self._batches.get((topic, partition))
        if not queue:
            return False
        batch = queue[-1]
        return not batch.sealed and batch.builder.size_in_bytes < self._config.batch_size

    # -- sender thread --------------------------------------------------------------

    def resolve_doomed(self) -> None:
        """Tell the futures failed on the callers' threads (buffer full, too large,
        closing) of their failure: on the sender thread, or once it has finished
        (see :meth:`stop_sending`) on the caller's."""
        with self._lock:
            doomed, self._doomed = self._doomed, []
        for future, error in doomed:
            outcome = BatchOutcome(str(error.context.get("topic", "")), -1, -1, error=error)
            if not future.resolve(outcome):
                self._metrics.callback_errors += 1

    def stop_sending(self) -> None:
        """The sender thread's last act: nobody resolves doomed futures after it.

        A caller that passed the sink's closed check just before the close can
        still reach :meth:`append` after the sender thread took its last look;
        from now on such a record's future is failed on the caller's thread
        instead of waiting in ``_doomed`` for a sender that is gone.
        """
        with self._lock:
            self._stopped = True
        self.resolve_doomed()

    def pending_topics(self) -> list[str]:
        """Topics with records waiting for metadata."""
        with self._lock:
            # Drop emptied queues (expired or evicted records): a topic present
            # here sends every new record of it down append's slow path.
            for topic in [topic for topic, queue in self._pending.items() if not queue]:
                del self._pending[topic]
            return list(self._pending)

    def assign_pending(
        self,
        topic: str,
        choose: Callable[[str, bytes | None, bytes | None, int], int],
        num_partitions: int,
    ) -> None:
        """Give the waiting records of ``topic`` a partition (metadata is now known)."""
        with self._lock:
            queue = self._pending.pop(topic, None)
            if not queue:
                return
            for record in queue:
                partition = (
                    record.partition
                    if record.partition is not None
                    else choose(topic, record.key, record.value, num_partitions)
                )
                self._place(
                    topic,
                    partition,
                    record.timestamp,
                    record.key,
                    record.value,
                    record.headers,
                    record.future,
                    record.reserved,
                    None,
                    record.spool_id,
                    record.spool_log,
                )

    def fail_pending(self, topic: str, error: DeliveryError) -> list[DeliveryFuture]:
        """Fail the waiting records of a topic that cannot be produced to."""
        with self._lock:
            queue = self._pending.pop(topic, None) or deque()
            for record in queue:
                self._used -= record.reserved
                self._incomplete -= 1
            self._space.notify_all()
            self._notify_idle()
        return [record.future for record in queue]

    def oldest_pending(self, topic: str) -> float | None:
        with self._lock:
            queue = self._pending.get(topic)
            return queue[0].created if queue else None

    def ready(
        self, leader_of: Callable[[str, int], int | None], now: float
    ) -> tuple[set[int], float, set[str]]:
        """Nodes with a sendable batch, seconds until the next batch may become
        sendable, and topics whose leaders are unknown."""
        ready_nodes: set[int] = set()
        unknown: set[str] = set()
        next_check = 3600.0
        with self._lock:
            hurry = self._flushing > 0 or self._closing
            for tp, queue in self._batches.items():
                if not queue or tp in self._muted:
                    continue
                batch = queue[0]
                if batch.retry_at > now:
                    next_check = min(next_check, batch.retry_at - now)
                    continue
                leader = leader_of(*tp)
                if leader is None:
                    unknown.add(tp[0])
                    continue
                waited = now - batch.created
                if (
                    hurry
                    or batch.attempts
                    or len(queue) > 1
                    or waited >= self._linger
                    or (batch.builder.size_in_bytes >= self._config.batch_size)
                ):
                    ready_nodes.add(leader)
                else:
                    next_check = min(next_check, self._linger - waited)
            if any(self._pending.values()):
                unknown.update(t for t, q in self._pending.items() if q)
        return ready_nodes, max(0.0, next_check), unknown

    def drain(
        self,
        leader_of: Callable[[str, int], int | None],
        nodes: set[int],
        max_request_size: int,
        now: float,
    ) -> dict[int, list[ProducerBatch]]:
        """Take at most one ready batch per partition for each node, within the request size."""
        drained: dict[int, list[ProducerBatch]] = {}
        sizes: dict[int, int] = {}
        with self._lock:
            items = list(self._batches.items())
            if not items:
                return drained
            start = self._drain_start % len(items)
            self._drain_start += 1
            for tp, queue in items[start:] + items[:start]:
                if not queue or tp in self._muted:
                    continue
                batch = queue[0]
                if batch.retry_at > now:
                    continue
                leader = leader_of(*tp)
                if leader is None or leader not in nodes:
                    continue
                size = batch.builder.size_in_bytes
                used = sizes.get(leader, 0)
                if used and used + size > max_request_size:
                    continue
                queue.popleft()
                if not queue:
                    del self._batches[tp]
                batch.sealed = True
                self._muted.add(tp)
                sizes[leader] = used + size
                drained.setdefault(leader, []).append(batch)
        return drained

    def requeue(self, batch: ProducerBatch, retry_at: float) -> None:
        """Put a batch back at the front of its partition for another attempt."""
        tp = (batch.topic, batch.partition)
        with self._lock:
            batch.retry_at = retry_at
            queue = self._batches.get(tp)
            if queue is None:
                queue = self._batches[tp] = deque()
            queue.appendleft(batch)
            self._muted.discard(tp)

    def finish(self, batch: ProducerBatch) -> None:
        """A batch left the pipeline (delivered or failed): free its memory."""
        with self._lock:
            self._muted.discard((batch.topic, batch.partition))
            self._used -= batch.reserved
            self._incomplete -= batch.record_count
            if self._blocked:  # once per batch: skip the Condition when nobody waits
                self._space.notify_all()
            self._notify_idle()

    def _notify_idle(self) -> None:
        if self._incomplete <= 0 or self._flushing:
            self._idle.notify_all()

    def expire(self, now: float) -> list[ProducerBatch]:
        """Remove batches (not in flight) older than ``delivery_timeout_ms``."""
        expired: list[ProducerBatch] = []
        limit = now - self._delivery_timeout
        with self._lock:
            for tp, queue in list(self._batches.items()):
                while queue and queue[0].created <= limit and tp not in self._muted:
                    expired.append(queue.popleft())
                if not queue:
                    del self._batches[tp]
        return expired

    def expire_pending(self, now: float) -> list[tuple[str, list[DeliveryFuture]]]:
        """Pending records whose topic never got metadata within the delivery timeout."""
        limit = now - self._delivery_timeout
        out: list[tuple[str, list[DeliveryFuture]]] = []
        with self._lock:
            for topic, queue in self._pending.items():
                futures = []
                while queue and queue[0].created <= limit:
                    record = queue.popleft()
                    self._used -= record.reserved
                    self._incomplete -= 1
                    futures.append(record.future)
                if futures:
                    out.append((topic, futures))
            if out:
                self._space.notify_all()
                self._notify_idle()
        return out

    def abort_all(self) -> list[ProducerBatch | PendingRecord]:
        """Take every buffered batch and pending record (close ran out of time)."""
        with self._lock:
            taken: list[ProducerBatch | PendingRecord] = []
            for queue in self._batches.values():
                taken.extend(queue)
            for pending in self._pending.values():
                taken.extend(pending)
            self._batches.clear()
            self._pending.clear()
            for item in taken:
                self._used -= item.reserved
                self._incomplete -= item.record_count if isinstance(item, ProducerBatch) else 1
            self._space.notify_all()
            self._notify_idle()
        return taken

    # -- with a spool (kafka_sink/producer/spool.py) --------------------------------

    def attach_spool(self, spool: Spool) -> None:
        """Write every record to ``spool`` before it is buffered, and replay what it holds.

        The sealed batches of adopted logs go first in their partitions; the
        rest of those logs is read back by :meth:`load_spooled`.
        """
        with self._lock:
            self._spool = spool
            # An instance attribute shadows the method: callers bound to
            # ``accumulator.append`` after this take the spooled path.
            self.append = self._append_spooled  # type: ignore[method-assign]  # shadowed on purpose
            for batch in spool.pinned:
                queue = self._batches.setdefault((batch.topic, batch.partition), deque())
                queue.append(batch)
                self._used += batch.reserved
                self._incomplete += batch.record_count
            spool.pinned = []
            self._incomplete += spool.backlog

    def _append_spooled(
        self,
        topic: str,
        partition: int | None,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header],
        future: DeliveryFuture | None,
        explicit: bool = False,
        report: DeliveryReport | None = None,
    ) -> None:
        """:meth:`append` with a spool: the record is in the spool when this returns.

        While the buffer has room and nothing older waits on disk, the record
        also goes to its batch; otherwise it stays on disk only until
        :meth:`load_spooled` reads it back. The ``on_buffer_full`` policy
        applies to the spool's own bound, ``spool_max_bytes``.
        """
        if headers:
            payload = record_size(key, value, headers)
        else:
            payload = (0 if key is None else len(key)) + (0 if value is None else len(value))
        if payload > self._max_record:
            if future is None:
                future = _reported(report, timestamp, topic, key, value, headers)
            self._refuse_too_large(topic, payload, future)
            return
        size = payload + RECORD_OVERHEAD
        spool = self._spool
        assert spool is not None
        log = spool.primary
        assert log is not None
        chosen = partition if explicit else None
        self._acquire()
        try:
            record_id = -1
            if (
                spool.direct
                and self._used + size <= self._buffer_limit
                and partition is not None
                and not self._closing
                and topic not in self._pending
            ):
                # The common case, as in append(): room in memory, nothing older
                # on disk only, a known partition. The record is written to
                # the spool first, then to its batch.
                try:
                    record_id = log.write_record(topic, chosen, timestamp, key, value, headers)
                except SpoolFull:
                    record_id = -1  # the slow path applies on_buffer_full
                if record_id >= 0:
                    self._used += size
                    self._incomplete += 1
                    self._queued += 1
                    queue = self._batches.get((topic, partition))
                    batch = queue[-1] if queue else None
                    if (
                        batch is not None
                        and not batch.sealed
                        and batch.spool_log is log
                        and batch.builder.append(timestamp, key, value, headers)
                    ):
                        batch.add(future, report)
                        batch.reserved += size
                        ids = batch.spool_ids
                        assert ids is not None
                        ids.append(record_id)
                        return
                    wake = self._place(
                        topic,
                        partition,
                        timestamp,
                        key,
                        value,
                        headers,
                        future,
                        size,
                        report,
                        record_id,
                        log,
                    )
            if record_id < 0:
                wake = self._append_spooled_slow(
                    spool,
                    log,
                    topic,
                    partition,
                    chosen,
                    timestamp,
                    key,
                    value,
                    headers,
                    future,
                    report,
                    size,
                )
            late = self._stopped
        finally:
            self._release()
        if late:
            self.resolve_doomed()
        elif wake:
            self._wakeup()

    def _append_spooled_slow(
        self,
        spool: Spool,
        log: Any,
        topic: str,
        partition: int | None,
        chosen: int | None,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header],
        future: DeliveryFuture | None,
        report: DeliveryReport | None,
        size: int,
    ) -> bool:
        """:meth:`_append_spooled` under the lock, off the common case; True: wake the sender."""
        if self._closing:
            if future is None:
                future = _reported(report, timestamp, topic, key, value, headers)
            self._metrics.dropped["closed"] += 1
            self._doomed.append((future, _closed_error(topic)))
            return True
        wake = False
        direct = spool.direct and self._used + size <= self._buffer_limit
        if spool.direct and not direct:
            # From this record on, records wait on disk until memory frees.
            spool.direct = False
            log.start_backlog()
            wake = True
        try:
            record_id = log.write_record(topic, chosen, timestamp, key, value, headers)
        except SpoolFull as full:
            record_id = self._spool_full(full, log, topic, chosen, timestamp, key, value, headers)
            if record_id < 0:
                if future is None:
                    future = _reported(report, timestamp, topic, key, value, headers)
                self._metrics.dropped[f"{full.reason}_{self._config.on_buffer_full}"] += 1
                error = BufferFullError(
                    f"record dropped: {full.message} "
                    f"(on_buffer_full={self._config.on_buffer_full!r})",
                    topic=topic,
                )
                self._doomed.append((future, error))
                return True
            direct = spool.direct and self._used + size <= self._buffer_limit
        self._queued += 1
        self._incomplete += 1
        if not direct:
            spool.spill(record_id, future, report)
            return wake
        self._used += size
        pending = self._pending.get(topic)
        if partition is None or pending:
            if pending is None:
                pending = self._pending[topic] = deque()
                wake = True
            if future is None:
                future = _reported(report, timestamp, topic, key, value, headers)
            pending.append(
                PendingRecord(
                    timestamp,
                    key,
                    value,
                    headers,
                    future,
                    size,
                    self._clock(),
                    chosen,
                    record_id,
                    log,
                )
            )
            return wake
        return (
            self._place(
                topic,
                partition,
                timestamp,
                key,
                value,
                headers,
                future,
                size,
                report,
                record_id,
                log,
            )
            or wake
        )

    def _spool_full(
        self,
        full: SpoolFull,
        log: Any,
        topic: str,
        partition: int | None,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header],
    ) -> int:
        """Apply ``on_buffer_full`` to a full spool (under the lock); the record's id or -1."""
        policy = self._config.on_buffer_full
        if full.reason == "spool_full" and policy == "block":
            deadline = self._clock() + self._config.max_block_ms / 1000.0
            while not self._closing:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                self._blocked += 1
                try:
                    self._space.wait(remaining)
                finally:
                    self._blocked -= 1
                try:
                    return int(log.write_record(topic, partition, timestamp, key, value, headers))
                except SpoolFull as again:
                    full.reason, full.message = again.reason, again.message
        elif full.reason == "spool_full" and policy == "drop_oldest" and self._evict_for_spool():
            try:
                return int(log.write_record(topic, partition, timestamp, key, value, headers))
            except SpoolFull as again:
                full.reason, full.message = again.reason, again.message
        return -1

    def _evict_for_spool(self) -> bool:
        """drop_oldest with a full spool: evict never-sent records that free whole segments.

        A segment is deleted once all its records are resolved, so only a
        segment whose every unresolved record sits in an unsent batch or in a
        pending queue can be freed; one that holds a record on disk only, or
        in a batch that may have been sent, is left. Returns whether any
        record was evicted.
        """
        spool = self._spool
        assert spool is not None
        error = BufferFullError(
            "evicted by a newer record: the spool was full (on_buffer_full='drop_oldest')"
        )
        evicted = False
        for log in spool.logs():
            cursor = log.cursor
            for segment in list(log.segments):
                if not segment.closed or segment.resolved >= segment.count:
                    continue
                low, high = segment.base, segment.base + segment.count
                if cursor is not None and cursor.next_id < high:
                    break  # from here on, records are on disk only
                batches: list[tuple[TopicPartition, ProducerBatch]] = []
                waiting: list[tuple[str, PendingRecord]] = []
                found = 0
                for tp, queue in self._batches.items():
                    for batch in queue:
                        ids = batch.spool_ids
                        if batch.spool_log is not log or ids is None or batch.sealed:
                            continue
                        if batch.sequence is not None or ids[0] >= high or ids[-1] < low:
                            continue
                        batches.append((tp, batch))
                        found += bisect.bisect_left(ids, high) - bisect.bisect_left(ids, low)
                for topic, queue_p in self._pending.items():
                    for record in queue_p:
                        if record.spool_log is log and low <= record.spool_id < high:
                            waiting.append((topic, record))
                            found += 1
                if found != segment.count - segment.resolved:
                    continue
                for tp, batch in batches:
                    self._batches[tp].remove(batch)
                    self._used -= batch.reserved
                    for future in batch.futures:
                        self._doom(future, error)
                    records = batch.undelivered() if batch.reports else []
                    for report, first, count in batch.reports:
                        for lost in records[first : first + count]:
                            self._doom(_reported(report, 0, *_fields(lost)), error)
                    assert batch.spool_ids is not None
                    spool.dropped(log, batch.spool_ids)
                for topic, record in waiting:
                    self._pending[topic].remove(record)
                    self._used -= record.reserved
                    self._doom(record.future, error)
                    spool.dropped(log, array("q", [record.spool_id]))
                evicted = True
                if spool.has_room():
                    return True
        return evicted

    def load_spooled(
        self,
        partition_counts: dict[str, int],
        choose: Callable[[str, bytes | None, bytes | None, int], int],
    ) -> bool:
        """Read records that are on disk only back into batches (sender thread).

        As many as the buffer has room for, oldest first: adopted logs, then
        this Sink's own records that were written while the buffer was full.
        Returns True when it placed any.
        """
        spool = self._spool
        if spool is None or spool.direct:
            return False
        used = self._used
        room = self._buffer_limit - used
        # A record larger than the whole buffer is still taken, alone.
        records: list[LoadedRecord] = (
            spool.read_backlog(room, 4096, RECORD_OVERHEAD, used == 0)
            if room > 0 or used == 0
            else []
        )
        self._acquire()
        try:
            for record in records:
                self._place_loaded(spool, record, partition_counts, choose)
            if spool.backlog_done():
                spool.stop_backlog()
        finally:
            self._release()
        return bool(records)

    def _place_loaded(
        self,
        spool: Spool,
        record: LoadedRecord,
        partition_counts: dict[str, int],
        choose: Callable[[str, bytes | None, bytes | None, int], int],
    ) -> None:
        if record.log.primary:
            future, report = spool.take_owner(record.record_id)
        else:
            future, report = None, spool.replay_report
            spool.replayed_records += 1
        spool.backlog -= 1
        size = record.size + RECORD_OVERHEAD
        self._used += size
        topic = record.topic
        partition = record.partition
        pending = self._pending.get(topic)
        if partition is None and not pending:
            count = partition_counts.get(topic)
            if count:
                partition = choose(topic, record.key, record.value, count)
        if partition is None or pending:
            if pending is None:
                pending = self._pending[topic] = deque()
            if future is None:
                future = _reported(
                    report, record.timestamp, topic, record.key, record.value, record.headers
                )
            pending.append(
                PendingRecord(
                    record.timestamp,
                    record.key,
                    record.value,
                    record.headers,
                    future,
                    size,
                    self._clock(),
                    record.partition,
                    record.record_id,
                    record.log,
                )
            )
            return
        self._place(
            topic,
            partition,
            record.timestamp,
            record.key,
            record.value,
            record.headers,
            future,
            size,
            report,
            record.record_id,
            record.log,
        )

    def take_pending(self, topic: str) -> list[PendingRecord]:
        """Remove the waiting records of a topic that cannot be produced to (spool)."""
        with self._lock:
            queue = self._pending.pop(topic, None) or deque()
            for record in queue:
                self._used -= record.reserved
                self._incomplete -= 1
            self._space.notify_all()
            self._notify_idle()
        return list(queue)

    def take_expired_pending(
        self, now: float, topics: Sequence[str]
    ) -> list[tuple[str, list[PendingRecord]]]:
        """Records of these topics (the broker says they do not exist) waiting too long."""
        limit = now - self._delivery_timeout
        out: list[tuple[str, list[PendingRecord]]] = []
        with self._lock:
            for topic in topics:
                queue = self._pending.get(topic)
                taken: list[PendingRecord] = []
                while queue and queue[0].created <= limit:
                    record = queue.popleft()
                    self._used -= record.reserved
                    self._incomplete -= 1
                    taken.append(record)
                if taken:
                    out.append((topic, taken))
            if out:
                self._space.notify_all()
                self._notify_idle()
        return out

    def take_backlog_futures(self) -> list[DeliveryFuture]:
        """Stop waiting for records on disk only (close ran out of time): they stay
        in the spool for the next Sink on it. Returns their futures, to fail."""
        spool = self._spool
        if spool is None:
            return []
        with self._lock:
            futures = [owner[2] for owner in spool.owners if owner[2] is not None]
            spool.owners.clear()
            self._incomplete -= spool.backlog
            spool.backlog = 0
            self._notify_idle()
        return futures

    # -- flush and close ------------------------------------------------------------

    def wait_idle(self, timeout: float | None) -> int:
        """Flush: make every batch ready and wait until nothing is incomplete.

        Returns how many records are still undelivered when the wait ends.
        """
        with self._lock:
            self._flushing += 1
        self._wakeup()
        try:
            with self._lock:
                self._idle.wait_for(lambda: self._incomplete <= 0, timeout)
                return max(0, self._incomplete)
        finally:
            with self._lock:
                self._flushing -= 1

    def begin_close(self) -> None:
        """Refuse new records and make every batch ready."""
        with self._lock:
            self._closing = True
            self._space.notify_all()
        self._wakeup()

    @property
    def queued(self) -> int:
        """Records accepted by :meth:`append` so far."""
        return self._queued

    @property
    def incomplete(self) -> int:
        return self._incomplete

    @property
    def buffer_used(self) -> int:
        return self._used

    def has_work(self) -> bool:
        with self._lock:
            return bool(self._doomed) or any(self._batches.values()) or any(self._pending.values())

    def reset(self) -> None:
        """Forget everything (in a forked child: the parent delivers its own records)."""
        self._lock = threading.Lock()
        self._acquire = self._lock.acquire
        self._release = self._lock.release
        self._queued = 0
        self._space = threading.Condition(self._lock)
        self._blocked = 0  # callers waiting in _space for buffer room
        self._idle = threading.Condition(self._lock)
        self._batches = {}
        self._pending = {}
        self._muted = set()
        self._doomed = []
        self._used = 0
        self._incomplete = 0
        self._flushing = 0
        self._closing = False
        self._stopped = False  # see stop_sending()


def _reported(
    report: DeliveryReport | None,
    timestamp: int,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[Header],
) -> ReportedRecord:
    assert report is not None, "a record has a future or a report"
    return ReportedRecord(report, timestamp, topic, key, value, headers)


def _fields(
    record: UndeliveredRecord,
) -> tuple[str, bytes | None, bytes | None, Sequence[Header]]:
    return record.topic, record.key, record.value, record.headers


def _buffer_full_error(topic: str, config: SinkConfig) -> BufferFullError:
    if config.on_buffer_full == "block":
        text = f"no buffer space within max_block_ms ({config.max_block_ms:g} ms)"
    else:
        text = f"the buffer ({config.buffer_memory} bytes) was full (on_buffer_full='drop_newest')"
    return BufferFullError(f"record dropped: {text}", topic=topic)


def _closed_error(topic: str) -> DeliveryError:
    return SinkClosedError("the sink is closed", topic=topic)


if _speedups is not None:
    # The compiled fast path reads these classes' slots at their offsets.
    _speedups.bind_slots(ProducerBatch, DeliveryFuture)
