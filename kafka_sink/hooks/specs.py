"""The hooks a plugin can implement: every one of them, in one module.

Theory of operation
-------------------
kafka_sink shapes records with pluggy plugins, but never calls pluggy per
record: a hook call costs about 20 times a plain function call. So nearly
every hook here is a *factory*. When a :class:`~kafka_sink.KafkaHandler`, a
:class:`~kafka_sink.KafkaProcessor` or a metrics exporter is built, it calls
each factory hook once, on the thread that builds it, and keeps the plain
callables the plugins return; the per-record path calls only those.

Factories receive keyword arguments, and an implementation may declare only
the ones it needs (pluggy passes the rest by name):

``kind``
    ``"log"`` when the records are :class:`logging.LogRecord` objects (the
    handler), ``"event"`` when they are structlog event dicts (the processor),
    ``"metrics"`` for the metrics exporter.
``name``
    The name the user chose for this role, e.g. ``serializer="json"``.
    A plugin returns ``None`` for names it does not provide.
``options``
    The options the user gave for this role (a read-only mapping, possibly
    empty), e.g. ``serializer_options={"fields": ["message", "level"]}``.

Plugins registered later are called first, so a third-party plugin found
through the ``kafka_sink`` entry-point group, or passed in ``plugins=``,
overrides a built-in one of the same name. Built-in plugins are ordinary
plugins registered by :func:`~kafka_sink.hooks.plugin_manager`, and can be
blocked by name.

The callables a factory returns run on the application's logging thread
(serializers, key, headers and topic functions: keep them fast, and do not
log from them), or on the sink's sender thread (partitioners that need the
partition count, dead-letter functions). They must not raise for ordinary
input; when one does, the record is reported as failed, never the
application.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pluggy

if TYPE_CHECKING:  # the metrics package imports this module: names only, no cycle
    from kafka_sink.metrics.samples import Sample, Snapshot
    from kafka_sink.producer.sink import Sink

__all__ = [
    "PROJECT_NAME",
    "DeadLetter",
    "DeadLetterFunction",
    "EventSerializer",
    "HeadersFunction",
    "KeyFunction",
    "Kind",
    "LogSerializer",
    "MetricsCollector",
    "MetricsEncoder",
    "Record",
    "RecordPartitioner",
    "Specs",
    "TopicFunction",
    "hookimpl",
    "hookspec",
]

#: The pluggy project name, which is also the entry-point group.
PROJECT_NAME = "kafka_sink"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a function or method as an implementation of one of the hooks below.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Kind = Literal["log", "event", "metrics"]

#: What a record is to the per-record functions: a log record for the
#: handler, a structlog event dict for the processor.
Record = logging.LogRecord | Mapping[str, Any]

#: Turns a log record into the bytes of a Kafka record's value.
LogSerializer = Callable[[logging.LogRecord], bytes]
#: Turns a structlog event dict into the bytes of a Kafka record's value.
EventSerializer = Callable[[Mapping[str, Any]], bytes]
#: The key of a record, or None for a keyless record.
KeyFunction = Callable[[Any], bytes | None]
#: Headers to add to a record, as (name, value) pairs.
HeadersFunction = Callable[[Any], Sequence[tuple[str, bytes | None]]]
#: The topic a record goes to, or None for the configured topic.
TopicFunction = Callable[[Any], str | None]
#: ``(topic, key, value, num_partitions) -> partition``, or None to defer to
#: the next partitioner (and in the end to murmur2 / sticky).
RecordPartitioner = Callable[[str, bytes | None, bytes | None, int], int | None]
#: Called once for each record that finally failed or was dropped.
DeadLetterFunction = Callable[["DeadLetter"], None]
#: Returns the current samples of some metrics
#: (:class:`~kafka_sink.metrics.Sample`, labels sorted by name).
MetricsCollector = Callable[[], Iterable["Sample"]]
#: Encodes a snapshot (one sample, or all of them) into the value of one
#: Kafka record; empty bytes when there is nothing to send.
MetricsEncoder = Callable[["Snapshot"], bytes]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that will never be delivered, and why.

    ``record`` is what the application logged (a :class:`logging.LogRecord`
    or a structlog event dict) when it is known: for records refused before
    they were queued (serialisation failed, or the sink was closed); queued
    records do not keep it, so that the buffer holds no application objects.
    ``value`` is its serialised form when serialisation got that far
    (``None`` when serialising it is what failed). ``reason`` is a short
    machine-friendly word and ``error`` the exception that says more:
    ``"serialize"``, ``"invalid"`` (a plugin gave a bad topic or header) or
    ``"closed"`` for records refused before they were queued, else the
    :attr:`~kafka_sink.DeliveryError.reason` of the delivery error
    (``"buffer_full"``, ``"too_large"``, ``"timeout"``, ``"closed"``, or
    ``"failed"`` when the broker refused the record).
    """

    topic: str | None
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]
    reason: str
    error: BaseException
    record: Record | None = None


class Specs:
    """The hook specifications (see the module docstring for the calling rules)."""

    @hookspec(firstresult=True)
    def kafka_sink_log_serializer(
        self, name: str, options: Mapping[str, Any]
    ) -> LogSerializer | None:
        """Return the serializer called ``name`` for log records, or None.

        Called once per :class:`~kafka_sink.KafkaHandler`, when it is built.
        The returned callable runs on the thread that logs, once per record,
        and returns the record's value as bytes. ``name`` and ``options``
        are the handler's ``serializer`` and ``serializer_options``, plus
        ``options["formatter"]`` once the handler has a formatter
        (``setFormatter``, dictConfig's ``formatter``; the hook is then
        called again). Built in: ``"json"`` and ``"text"`` (a
        :class:`logging.Formatter`), see
        :mod:`kafka_sink.hooks.builtin.serializers`; the helpers they are
        made of, for a serializer that must never raise, are in
        :mod:`kafka_sink.serialization`.
        """

    @hookspec(firstresult=True)
    def kafka_sink_event_serializer(
        self, name: str, options: Mapping[str, Any]
    ) -> EventSerializer | None:
        """Return the serializer called ``name`` for structlog event dicts, or None.

        Called once per :class:`~kafka_sink.KafkaProcessor`, when it is built.
        The returned callable runs on the thread that logs, once per event.
        Built in: ``"json"``.
        """

    @hookspec
    def kafka_sink_partitioner(
        self, kind: Kind, name: str, options: Mapping[str, Any]
    ) -> RecordPartitioner | None:
        """Return a partitioner for records, or None.

        Called once per handler, processor or exporter that builds its own
        sink. Every non-None result is kept, in hook call order (the most
        recently registered plugin first): for each record whose partition
        was not given, the first partitioner that returns a partition wins,
        and a partitioner that returns None defers to the next one. After the
        last, keyed records go to murmur2(key) and keyless ones to the sticky
        partitioner. The partitioners run on the sink's sender thread or on
        the logging thread, whichever first knows the topic's partition
        count. ``name`` and ``options`` are the ``partitioner`` (default
        ``"murmur2"``) and ``partitioner_options`` of the handler or
        processor. A partition out of range counts as None, and one that
        raises defers too. Built in: ``"murmur2"``, ``"sticky"``,
        ``"round_robin"``, which always choose (so they end the chain).
        """

    @hookspec(firstresult=True)
    def kafka_sink_record_key(
        self, kind: Kind, name: str, options: Mapping[str, Any]
    ) -> KeyFunction | None:
        """Return the function that gives each record its key, or None.

        Called once per handler or processor that was asked for a key. The
        function runs on the logging thread, once per record. A handler or
        processor given ``key="user_id"`` asks for ``"attribute"`` with
        ``{"attribute": "user_id"}``; one given ``key_function`` asks for that
        name with its ``key_options``. Built in: ``"attribute"``
        (``options["attribute"]`` of a log record, or that item of an event
        dict, encoded as UTF-8).
        """

    @hookspec
    def kafka_sink_record_headers(
        self, kind: Kind, options: Mapping[str, Any]
    ) -> HeadersFunction | None:
        """Return a function that gives each record headers to add, or None.

        Called once per handler or processor. Every non-None result is kept
        and the headers of all of them are added, in hook call order. The
        functions run on the logging thread, once per record.
        ``options["fields"]`` holds the ``header_fields`` of the handler or
        processor and ``options["standard"]`` is False when it was given
        ``standard_headers=False``. Built in: the level, the logger, the
        host, chosen ``extra`` fields and trace and span ids when present.
        """

    @hookspec(firstresult=True)
    def kafka_sink_record_topic(
        self, kind: Kind, options: Mapping[str, Any]
    ) -> TopicFunction | None:
        """Return a function that routes each record to a topic, or None.

        Called once per handler or processor. The function runs on the
        logging thread, once per record, and returns a topic name, or None
        for the handler's or processor's own ``topic`` (``options["topic"]``).
        No built-in implementation.
        """

    @hookspec
    def kafka_sink_dead_letter(
        self, kind: Kind, options: Mapping[str, Any]
    ) -> DeadLetterFunction | None:
        """Return a function to be told of every record that will not be delivered.

        Called once per handler, processor or exporter. Every non-None result
        is called for each record that could not be serialised, was dropped
        (full buffer, too large) or finally failed (timeout, broker error,
        closed), with a :class:`DeadLetter`. It runs on the logging thread
        for records refused before they were queued, and on the sink's sender
        thread for the others: it must not block. What it logs on the sender
        thread is never shipped by a :class:`~kafka_sink.KafkaHandler` or
        :class:`~kafka_sink.KafkaProcessor` (it is counted as ignored).
        Records of the handler and processor carry ``options["topic"]``,
        their configured topic.
        """

    @hookspec
    def kafka_sink_metrics_collector(
        self, sink: Sink, options: Mapping[str, Any]
    ) -> MetricsCollector | None:
        """Return a function that collects metric samples, or None.

        Called once per :class:`~kafka_sink.MetricsExporter`, when it is
        built, with the sink it produces through. Every non-None result is
        called at each export, on the exporter's timer thread (or on the
        thread that calls ``export()`` or ``close()``), and the samples of all
        of them are exported together, after the registry's. A collector that
        raises costs only its own samples of that export (counted in the
        exporter's ``stats().collect_errors``). Built in: the sink's own
        metrics (``options["sink_metrics"]``, default true) and a
        ``prometheus_client`` registry (``options["prometheus_registry"]``:
        ``True`` for the default one, or a registry).
        """

    @hookspec(firstresult=True)
    def kafka_sink_metrics_encoder(
        self, name: str, options: Mapping[str, Any]
    ) -> MetricsEncoder | None:
        """Return the metrics encoding called ``name``, or None.

        Called once per :class:`~kafka_sink.MetricsExporter`. The encoder runs
        where the collectors run and turns a :class:`~kafka_sink.metrics.Snapshot`
        into the value of one record: the exporter calls it once per series
        (``per="series"``, a snapshot of one sample) or once per export
        (``per="snapshot"``). Built in: ``"json"`` (JSON lines) and
        ``"influx"`` (Influx line protocol), see :mod:`kafka_sink.metrics.encodings`.
        """
