"""What the three exporters share: their Sink, one export from start to finish, and the counts.

An export runs on the SDK's thread (the batch processor's worker, the
metric reader's timer, or whoever calls ``force_flush``):

1. the SDK's OTLP encoder turns the batch into one request;
2. :func:`~kafka_sink_otel.messages.plan` splits it into messages (topic,
   key, size) and encodes each one;
3. each message goes to :meth:`kafka_sink.Sink.produce`, which queues it
   without network I/O;
4. the export waits for the brokers' acknowledgements, until its deadline:
   the exporter's ``timeout``, or the SDK's when that is shorter.

SUCCESS means every message was acknowledged in time. Anything else, a
message the sink refused or failed, a deadline that passed first, an
exporter shut down meanwhile or a batch that could not be encoded, is
FAILURE, counted by cause. Nothing raises into the SDK.

Delivery outcomes arrive on the sink's sender thread, through each
record's ``on_delivery`` callback, and are counted under one condition
variable that the waiting export, ``force_flush`` and ``shutdown`` wait on.
The lock is never held while calling into the sink, so a sink that blocks
(``on_buffer_full="block"``) cannot deadlock with its own callbacks.

A message still unacknowledged when its export gave up stays in the sink,
which delivers it or fails it within its ``delivery_timeout_ms``; the counts
(``records_delivered``, ``records_failed``) follow it there. The Sink an
exporter builds for itself has ``delivery_timeout_ms`` equal to the export
timeout, so FAILURE means what it means for the OTLP exporters: the batch
is dropped.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from google.protobuf.message import Message
from kafka_sink import RecordMetadata, Sink, SinkConfig, lifecycle
from kafka_sink.errors import DeliveryError, InvalidArgumentError, SinkClosedError

from kafka_sink_otel.messages import SHAPES, KafkaMessage, plan
from kafka_sink_otel.options import ExporterOptions

__all__ = ["OWNED_SINK_DEFAULTS", "ExportCore", "ExporterStats"]

#: Options of the Sink an exporter builds (``sink_options`` override them).
#: ``delivery_timeout_ms`` and ``request_timeout_ms`` follow the exporter's
#: ``timeout`` (they are set from it): a message the export has given up on
#: is not retried behind the SDK's back for minutes.
OWNED_SINK_DEFAULTS: Mapping[str, Any] = MappingProxyType({"client_id": "kafka-sink-otel"})

_SINK_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {f.name: f.default for f in fields(SinkConfig)}
)

# Bytes a message needs besides its value, its key and its headers: the
# record batch header (61) and the record's own fields, with room to spare.
_RECORD_OVERHEAD = 512


@dataclass(frozen=True, slots=True)
class ExporterStats:
    """What an exporter did so far (see ``stats()`` of each exporter)."""

    #: Calls of ``export()``.
    exports: int
    #: Exports that returned FAILURE, by cause: ``"timeout"`` (not every
    #: message was acknowledged in time), ``"shutdown"``, ``"encode"``, or the
    #: reason of the first message that failed (``"buffer_full"``,
    #: ``"too_large"``, ``"closed"``, ``"invalid"`` for a topic the sink
    #: refused, a broker's reason...).
    exports_failed: Mapping[str, int]
    #: Spans, log records or metric data points in exports that succeeded.
    items_exported: int
    #: Spans, log records or metric data points in exports that failed.
    items_failed: int
    #: Messages handed to the sink.
    records_produced: int
    #: Messages the brokers acknowledged (also after their export gave up).
    records_delivered: int
    #: Messages that will not be delivered, by reason: those the sink failed
    #: (its ``DeliveryError.reason``), those it refused outright
    #: (``"invalid"``, ``"closed"``), and those an export could not hand it
    #: before its deadline (``"timeout"``).
    records_failed: Mapping[str, int]
    #: Messages handed to the sink whose outcome is not known yet.
    records_pending: int

    @property
    def exports_failed_total(self) -> int:
        """The sum of :attr:`exports_failed`."""
        return sum(self.exports_failed.values())

    @property
    def records_failed_total(self) -> int:
        """The sum of :attr:`records_failed`."""
        return sum(self.records_failed.values())


class _Wait:
    """One export's messages: how many are unsettled, and the first failure."""

    __slots__ = ("left", "reason", "released")

    def __init__(self, left: int) -> None:
        self.left = left
        self.reason: str | None = None
        self.released = False

    def settled(self) -> bool:
        return self.left <= 0 or self.released


def _reason_of(error: BaseException) -> str:
    if isinstance(error, SinkClosedError):
        return "closed"
    if isinstance(error, InvalidArgumentError):
        return "invalid"
    reason = getattr(error, "reason", None)
    return reason if isinstance(reason, str) and reason else "failed"


def _sink_for(
    options: ExporterOptions,
    bootstrap_servers: str | Sequence[str] | None,
    sink: Sink | None,
    sink_options: Mapping[str, Any],
) -> tuple[Sink, bool]:
    """The exporter's sink, and whether the exporter owns (and so closes) it."""
    if sink is not None:
        if not isinstance(sink, Sink):
            raise InvalidArgumentError("sink", f"must be a kafka_sink.Sink, got {sink!r}")
        if bootstrap_servers is not None:
            raise InvalidArgumentError(
                "bootstrap_servers", "give either bootstrap_servers or sink, not both"
            )
        for name in sink_options:
            raise InvalidArgumentError(
                name, "is an option of the Sink: with sink=, configure that Sink instead"
            )
        return sink, False
    if bootstrap_servers is None:
        raise InvalidArgumentError("bootstrap_servers", "is required unless sink= is given")
    timeout_ms = options.timeout * 1000.0
    defaults = {
        **OWNED_SINK_DEFAULTS,
        "delivery_timeout_ms": timeout_ms,
        "request_timeout_ms": min(_SINK_DEFAULTS["request_timeout_ms"], timeout_ms),
    }
    config = SinkConfig.build(bootstrap_servers, **{**defaults, **sink_options})
    return Sink(config=config), True


class ExportCore:
    """The sink, the export, ``force_flush``, ``shutdown`` and the counts of one exporter."""

    def __init__(
        self,
        options: ExporterOptions,
        bootstrap_servers: str | Sequence[str] | None,
        sink: Sink | None,
        sink_options: Mapping[str, Any],
    ) -> None:
        self.options = options
        self.shape = SHAPES[options.signal]
        self.sink, self.owns_sink = _sink_for(options, bootstrap_servers, sink, sink_options)
        headers = options.headers
        self._headers = headers or None
        header_bytes = sum(len(name.encode()) + len(value or b"") for name, value in headers)
        # Keys are at most 32 bytes (a hex trace id) or 16 (a resource hash).
        room = self.sink.config.max_request_size - _RECORD_OVERHEAD - 32 - header_bytes
        self.limit = max(1, min(options.max_message_bytes, room))
        self._cond = threading.Condition()
        self._closed = False
        self._waits: set[_Wait] = set()
        self._outstanding = 0
        self._exports = 0
        self._exports_failed: Counter[str] = Counter()
        self._items_exported = 0
        self._items_failed = 0
        self._produced = 0
        self._delivered = 0
        self._failed: Counter[str] = Counter()
        # Shut down by the OpenTelemetry SDK at exit; only a forked child is ours.
        lifecycle.reset_in_child(self, lifecycle.Stage.EXPORTERS)

    @property
    def closed(self) -> bool:
        return self._closed

    def export(
        self, encode: Callable[[], Message], items: Callable[[], int], timeout: float | None = None
    ) -> bool:
        """Encode, produce and wait; True when every message was acknowledged in time.

        ``encode()`` makes the request, ``items()`` counts what a batch that
        cannot be encoded held; ``timeout`` is the SDK's own bound in seconds,
        if it gives one (the shorter of it and the exporter's applies).
        """
        budget = self.options.timeout if timeout is None else min(self.options.timeout, timeout)
        deadline = time.monotonic() + max(0.0, budget)
        with self._cond:
            self._exports += 1
            if self._closed:
                return self._finish("shutdown", items())
        try:
            messages = plan(self.shape, encode(), self.options, self.limit)
        except Exception:  # an item the encoder cannot write: the batch is lost, never raised
            return self._finish("encode", items())
        wait = _Wait(len(messages))
        with self._cond:
            self._waits.add(wait)
        try:
            for index, message in enumerate(messages):
                if time.monotonic() >= deadline:
                    self._unsent(wait, len(messages) - index)
                    break
                self._produce(wait, message)
            with self._cond:
                self._cond.wait_for(wait.settled, max(0.0, deadline - time.monotonic()))
                cause = wait.reason
                if cause is None and wait.left > 0:
                    cause = "shutdown" if wait.released else "timeout"
        finally:
            with self._cond:
                self._waits.discard(wait)
        return self._finish(cause, sum(message.items for message in messages))

    def _finish(self, cause: str | None, items: int) -> bool:
        with self._cond:
            if cause is None:
                self._items_exported += items
                return True
            self._exports_failed[cause] += 1
            self._items_failed += items
            return False

    def _produce(self, wait: _Wait, message: KafkaMessage) -> None:
        with self._cond:
            self._outstanding += 1
        try:
            self.sink.produce(
                message.topic,
                message.value,
                key=message.key,
                headers=self._headers,
                on_delivery=functools.partial(self._settled, wait),
            )
        except Exception as error:  # refused before it was queued (bad topic, closed sink)
            with self._cond:
                self._outstanding -= 1
                self._fail(wait, _reason_of(error), 1)
            return
        with self._cond:
            self._produced += 1

    def _unsent(self, wait: _Wait, count: int) -> None:
        with self._cond:
            self._fail(wait, "timeout", count)

    def _fail(self, wait: _Wait, reason: str, count: int) -> None:
        # Called with the lock held.
        self._failed[reason] += count
        wait.left -= count
        if wait.reason is None:
            wait.reason = reason
        self._cond.notify_all()

    def _settled(
        self, wait: _Wait, metadata: RecordMetadata | None, error: DeliveryError | None
    ) -> None:
        # On the sink's sender thread: count and wake the waiters, nothing else.
        with self._cond:
            self._outstanding -= 1
            if error is None:
                self._delivered += 1
                wait.left -= 1
                self._cond.notify_all()
            else:
                self._fail(wait, _reason_of(error), 1)

    def force_flush(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds (None: the exporter's) for every message to settle."""
        budget = self.options.timeout if timeout is None else max(0.0, timeout)
        with self._cond:
            return self._cond.wait_for(lambda: self._outstanding <= 0, budget)

    def shutdown(self, timeout: float | None) -> None:
        """Refuse new exports; deliver what is pending within ``timeout`` seconds; close the sink.

        None means the exporter's ``timeout``. Only a sink the exporter built
        is closed; a shared one is left to its owner. Exports still waiting at
        the end return FAILURE (``"shutdown"``). Idempotent.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
        budget = self.options.timeout if timeout is None else max(0.0, timeout)
        if self.owns_sink:
            # Delivers what it can within the budget and fails the rest ("closed").
            self.sink.close(budget)
        else:
            with self._cond:
                self._cond.wait_for(lambda: self._outstanding <= 0, budget)
        with self._cond:
            for wait in self._waits:
                wait.released = True
            self._cond.notify_all()

    def stats(self) -> ExporterStats:
        with self._cond:
            return ExporterStats(
                exports=self._exports,
                exports_failed=MappingProxyType(dict(self._exports_failed)),
                items_exported=self._items_exported,
                items_failed=self._items_failed,
                records_produced=self._produced,
                records_delivered=self._delivered,
                records_failed=MappingProxyType(dict(self._failed)),
                records_pending=self._outstanding,
            )

    def _after_fork_in_child(self) -> None:
        # The parent's pending messages stay the parent's (so does its sink's
        # buffer); a lock held by another thread at the fork would never be released.
        self._cond = threading.Condition()
        self._waits = set()
        self._outstanding = 0
