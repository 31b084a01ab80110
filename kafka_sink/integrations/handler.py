"""``KafkaHandler``: a :mod:`logging` handler that ships records to Kafka.

Shaped like :class:`logging.handlers.QueueHandler`: :meth:`KafkaHandler.emit`
prepares the record on the caller's thread (serialiser, key, headers, topic:
the callables the plugins returned when the handler was built) and queues it
in a :class:`~kafka_sink.Sink`, which never does I/O on the caller's thread
and, with the handler's defaults, never waits. A daemon thread delivers.

What never happens: ``emit()`` raising into the application (errors go to
:meth:`logging.Handler.handleError`, as with every standard handler);
``emit()`` waiting on Kafka (a full buffer drops the oldest unsent records
and counts them); recursion (records of the library's own ``kafka_sink.*``
loggers, records logged on the sink's sender thread and records logged
while this thread is already inside ``emit()`` are counted as ignored, never
shipped); a deadlock with logging's locks (``emit()`` takes no handler lock,
and the sender thread never waits for the logging threads).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from kafka_sink.hooks.specs import DeadLetterFunction
from kafka_sink.integrations.shaping import (
    NO_OPTIONS,
    RecordShaper,
    ShapingConfig,
    parameter_names,
    sink_options_of,
)
from kafka_sink.producer.sink import Sink

__all__ = ["KafkaHandler"]

_LIBRARY = "kafka_sink"
_LIBRARY_PREFIX = "kafka_sink."


class KafkaHandler(logging.Handler):
    """Ships log records to a Kafka topic.

    In code::

        handler = kafka_sink.KafkaHandler("app-logs", "kafka1:9092,kafka2:9092",
                                          key="user_id", header_fields=["request_id"])
        logging.getLogger().addHandler(handler)
        logging.getLogger("app").warning("slow query", extra={"user_id": 7, "request_id": "r1"})

    With :func:`logging.config.dictConfig`, every argument is a key of the
    handler's entry (see the README's "Logging" section)::

        "kafka": {"class": "kafka_sink.KafkaHandler", "topic": "app-logs",
                  "bootstrap_servers": "kafka1:9092", "level": "INFO", "linger_ms": 50}

    Arguments:

    ``topic``
        Where records go unless ``topic_map``, ``topic_field`` or a
        topic-router plugin sends them elsewhere.
    ``bootstrap_servers`` / ``sink``
        Either the brokers of a :class:`~kafka_sink.Sink` the handler builds,
        owns and closes, or a shared ``sink`` that its owner configures and
        closes. A Sink built here takes its options (any option of
        :class:`~kafka_sink.SinkConfig`: ``acks``, ``linger_ms``,
        ``compression_type``, ``buffer_memory``, ``on_buffer_full``,
        ``close_timeout_ms``, security options...) from the keyword
        arguments and the ``sink_options`` mapping, under our names or the
        Java client's and librdkafka's (``"linger.ms"``, which dictConfig
        accepts only inside ``sink_options``); then from the ``KAFKA_SINK_*``
        environment variables (``KAFKA_SINK_BOOTSTRAP_SERVERS`` too); then
        from the defaults. A value may be ``{"env": "NAME"}``, read from
        that variable. See :mod:`kafka_sink.options`; an unknown option
        raises :class:`~kafka_sink.InvalidArgumentError` naming it and the
        nearest known name.
    ``topic_map``, ``topic_field``
        Topic by level or logger name, ``{"ERROR": "app-errors",
        "myapp.audit": "audit"}`` (a level is a threshold; a logger name
        covers its descendants; the longest logger name wins over a level),
        and the ``extra`` attribute that names a record's topic, which wins
        over everything else. See :mod:`kafka_sink.integrations.routing`.
    ``sample``, ``rate_limit``
        Per level (that level only) or logger name: the fraction of records
        shipped, ``{"DEBUG": 0.1}``, and the most records shipped per second,
        ``{"INFO": 1000}``. The records left out are counted in
        :meth:`metrics`, never serialised. ``clock`` (for tests) is the
        monotonic clock of the rate limits.
    ``serializer``, ``serializer_options``
        ``"json"`` (default) or ``"text"``, or a plugin's serializer; see
        :mod:`kafka_sink.hooks.builtin.serializers` for the options. A
        formatter given to :meth:`setFormatter` (or by dictConfig) is passed
        as the ``formatter`` option.
    ``key``
        The record attribute (from ``extra=``) whose value is the Kafka key;
        no key by default, so records spread over partitions in batches.
        ``key_function`` and ``key_options`` ask a plugin for the key instead.
    ``header_fields``, ``standard_headers``
        ``extra`` attributes copied into headers, after the standard ones
        (``level``, ``logger``, ``host``, ``trace_id`` and ``span_id`` when
        present); ``standard_headers=False`` leaves the standard ones out.
    ``partitioner``, ``partitioner_options``
        ``"murmur2"`` (default: by key, sticky without one), ``"sticky"``,
        ``"round_robin"`` or a plugin's; only for a sink the handler builds.
    ``dead_letter``
        A function called with a :class:`~kafka_sink.DeadLetter` for each
        record that will not be delivered, in addition to plugins'.
    ``plugins``, ``block_plugins``, ``entry_points``
        Plugins (objects or dotted module names) to add, plugin names to
        block, and whether to load the ``kafka_sink`` entry points.

    Records: the value is the serialised record, the timestamp
    ``record.created``. Sink defaults differ from a bare Sink's in one
    place: ``max_block_ms`` is 100 ms, the longest a logging call may wait
    if ``on_buffer_full="block"`` is chosen (the default, ``"drop_oldest"``,
    never waits). :meth:`flush` and :meth:`close` are bounded by the sink's
    ``close_timeout_ms``; :func:`logging.shutdown` (run at exit) calls both.
    """

    def __init__(
        self,
        topic: str,
        bootstrap_servers: str | Sequence[str] | None = None,
        *,
        sink: Sink | None = None,
        level: int | str = logging.NOTSET,
        serializer: str = "json",
        serializer_options: Mapping[str, Any] = NO_OPTIONS,
        key: str | None = None,
        key_function: str | None = None,
        key_options: Mapping[str, Any] = NO_OPTIONS,
        header_fields: Iterable[str] = (),
        standard_headers: bool = True,
        partitioner: str | None = None,
        partitioner_options: Mapping[str, Any] = NO_OPTIONS,
        dead_letter: DeadLetterFunction | None = None,
        plugins: Iterable[object] = (),
        block_plugins: Iterable[str] = (),
        entry_points: bool = True,
        topic_map: Mapping[str | int, str] | None = None,
        topic_field: str | None = None,
        sample: Mapping[str | int, float] | None = None,
        rate_limit: Mapping[str | int, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sink_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        config = ShapingConfig.from_arguments(locals())
        # Built before logging knows of the handler: one that fails here is
        # never flushed or closed by logging.shutdown().
        self._shaper = RecordShaper(
            "log",
            config,
            bootstrap_servers=bootstrap_servers,
            sink=sink,
            sink_options=sink_options_of(options, sink_options),
            clock=clock,
            owner=type(self).__name__,
            owner_options=parameter_names(KafkaHandler.__init__),
        )
        try:
            super().__init__(level)
        except BaseException:  # e.g. an unknown level name
            self._shaper.close(0.0)
            raise

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"<{type(self).__name__} topic={self._shaper.config.topic!r} ({level})>"

    @property
    def sink(self) -> Sink:
        """The :class:`~kafka_sink.Sink` the records go through."""
        return self._shaper.sink

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        """Set the formatter, and give it to the serializer as its ``formatter`` option."""
        super().setFormatter(fmt)
        self._shaper.set_serializer_options(
            MappingProxyType({"formatter": fmt}) if fmt is not None else MappingProxyType({})
        )

    def handle(  # type: ignore[override]  # returns the filter's record, as 3.12's does
        self, record: logging.LogRecord
    ) -> logging.LogRecord | bool:
        """Filter, then emit without taking the handler's lock.

        The sink is thread-safe, so threads that log at once do not queue
        behind one another, and nothing here can wait on a lock that a
        thread stuck elsewhere holds.
        """
        name = record.name
        if name == _LIBRARY or name.startswith(_LIBRARY_PREFIX):
            self._shaper.ignore("library")
            return False
        rv = self.filter(record)
        if isinstance(rv, logging.LogRecord):  # Python 3.12: a filter may replace the record
            record = rv
        if rv:
            self.emit(record)
        return rv

    def emit(self, record: logging.LogRecord) -> None:
        """Serialise the record on this thread and queue it; never blocks, never raises."""
        try:
            self._shaper.ship(
                record,
                int(record.created * 1000),
                record.threadName or threading.current_thread().name,
            )
        except Exception:
            self.handleError(record)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until the buffered records are delivered, at most ``timeout`` seconds.

        ``None`` waits at most the sink's ``close_timeout_ms``. Returns early
        once everything is delivered or has finally failed.
        """
        self._shaper.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Stop shipping; close the sink if the handler built it (bounded, idempotent).

        Records still undelivered after ``timeout`` seconds (None: the
        sink's ``close_timeout_ms``; no second wait after a :meth:`flush`
        that found Kafka unreachable) are counted as failed ("closed").
        """
        try:
            self._shaper.close(timeout)
        finally:
            super().close()

    def metrics(self) -> dict[str, Any]:
        """This handler's counts and its sink's metrics::

        {"records_delivered": 9998, "records_failed": {"serialize": 1, "too_large": 1},
         "records_failed_total": 2, "records_ignored": {"library": 12},
         "records_sampled_out": {"DEBUG": 901}, "records_rate_limited": {"INFO": 40},
         "dead_letter_errors": 0, "sink": {...}}
        """
        return self._shaper.metrics()
