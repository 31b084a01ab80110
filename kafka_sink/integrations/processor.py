"""``KafkaProcessor``: a structlog processor that ships each event dict to Kafka.

structlog is an optional dependency (``pip install 'kafka-sink[structlog]'``):
this module imports without it, and the processor imports it only when it
needs it (to merge context variables, or to drop events).

The processor serialises the event dict on the calling thread, queues it in
a :class:`~kafka_sink.Sink` (no I/O, no waiting with the defaults), and
returns the dict unchanged, so that the processors after it still render it
(to the console, to the standard library...). With ``drop=True``, meant for
the last step of the chain, it drops the event instead once it is shipped.

The async methods of structlog's loggers (``await log.ainfo(...)``) run the
processor chain in a worker thread, with a copy of the caller's context
variables; the processor never waits there either, so the event loop is
never held up by Kafka.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any

from kafka_sink.errors import InvalidArgumentError
from kafka_sink.hooks.specs import DeadLetterFunction
from kafka_sink.integrations.shaping import (
    NO_OPTIONS,
    RecordShaper,
    ShapingConfig,
    parameter_names,
    sink_options_of,
)
from kafka_sink.producer.sink import Sink

__all__ = ["KafkaProcessor"]

EventDict = MutableMapping[str, Any]

# structlog's add_log_level names these methods' level so; the rest are levels.
_METHOD_LEVELS = {"warn": "warning", "exception": "error", "fatal": "critical"}


class KafkaProcessor:
    """A structlog processor that ships the event dict to a Kafka topic.

    Example::

        structlog.configure(processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            kafka_sink.KafkaProcessor("app-events", "kafka1:9092", key="user_id"),
            structlog.dev.ConsoleRenderer(),
        ])

    The arguments are those of :class:`~kafka_sink.KafkaHandler` (``topic``,
    ``bootstrap_servers`` or ``sink``, serializer, key, headers,
    partitioner, dead letters, plugins, Sink options from the arguments,
    ``sink_options`` and the ``KAFKA_SINK_*`` environment, ``topic_map``,
    ``topic_field``, ``sample`` and ``rate_limit``), read against an event
    dict: ``key``, ``header_fields`` and ``topic_field`` name items of the
    dict, and an event's logger and level are its ``"logger"`` and
    ``"level"`` items. Two more:

    ``contextvars``
        Ship the variables bound with :func:`structlog.contextvars.bind_contextvars`
        too, as :func:`~structlog.contextvars.merge_contextvars` would add
        them (default True; the dict's own items win). The event dict
        returned to the chain is not changed.
    ``drop``
        Drop the event (:class:`structlog.DropEvent`) after shipping it,
        for a processor that is the last step of the chain.

    An event without a ``level`` item is shipped with the level its method
    implies (``log.warning(...)``: ``"warning"``). The ``"json"`` serializer
    writes the dict as it is, ``exc_info`` as ``"exception"`` text, and adds
    an ISO ``"timestamp"`` if there is none. An event that cannot be shipped
    is counted, told to the dead-letter functions and reported on stderr
    (as :meth:`logging.Handler.handleError` does, when
    :data:`logging.raiseExceptions` is true); the chain goes on.
    """

    __slots__ = ("_drop_event", "_get_context", "_shaper")

    def __init__(
        self,
        topic: str,
        bootstrap_servers: str | Sequence[str] | None = None,
        *,
        sink: Sink | None = None,
        serializer: str = "json",
        serializer_options: Mapping[str, Any] = NO_OPTIONS,
        key: str | None = None,
        key_function: str | None = None,
        key_options: Mapping[str, Any] = NO_OPTIONS,
        header_fields: Iterable[str] = (),
        standard_headers: bool = True,
        partitioner: str | None = None,
        partitioner_options: Mapping[str, Any] = NO_OPTIONS,
        contextvars: bool = True,
        drop: bool = False,
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
        for name, flag in (("contextvars", contextvars), ("drop", drop)):
            if not isinstance(flag, bool):
                raise InvalidArgumentError(name, f"must be True or False, got {flag!r}")
        self._get_context: Callable[[], Mapping[str, Any]] | None = (
            _structlog("contextvars=True").contextvars.get_contextvars if contextvars else None
        )
        self._drop_event: type[BaseException] | None = (
            _structlog("drop=True").DropEvent if drop else None
        )
        config = ShapingConfig.from_arguments(locals())
        self._shaper = RecordShaper(
            "event",
            config,
            bootstrap_servers=bootstrap_servers,
            sink=sink,
            sink_options=sink_options_of(options, sink_options),
            clock=clock,
            owner=type(self).__name__,
            owner_options=parameter_names(KafkaProcessor.__init__),
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} topic={self._shaper.config.topic!r}>"

    def __call__(self, logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
        shipped: Mapping[str, Any] = event_dict
        if self._get_context is not None:
            context = self._get_context()
            if context:
                shipped = {**context, **event_dict}
        if "level" not in shipped:
            shipped = {**shipped, "level": _METHOD_LEVELS.get(method_name, method_name)}
        try:
            self._shaper.ship(shipped, None, threading.current_thread().name)
        except Exception:
            _report_error()
        if self._drop_event is not None:
            raise self._drop_event
        return event_dict

    @property
    def sink(self) -> Sink:
        """The :class:`~kafka_sink.Sink` the events go through."""
        return self._shaper.sink

    def flush(self, timeout: float | None = None) -> int:
        """Wait until the queued events are delivered, at most ``timeout`` seconds.

        ``None`` waits at most the sink's ``close_timeout_ms``. Returns how
        many records are still undelivered.
        """
        return self._shaper.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Stop shipping; close the sink if the processor built it (bounded, idempotent).

        Events processed afterwards are counted as failed ("closed") and
        still returned to the chain.
        """
        self._shaper.close(timeout)

    def metrics(self) -> dict[str, Any]:
        """This processor's counts and its sink's metrics (as :meth:`KafkaHandler.metrics`)."""
        return self._shaper.metrics()


def _structlog(what: str) -> Any:
    try:
        import structlog  # noqa: PLC0415 - optional: imported only when needed
        import structlog.contextvars  # noqa: PLC0415 - idem
    except ImportError as error:
        raise ImportError(
            f"KafkaProcessor needs structlog for {what}: pip install 'kafka-sink[structlog]'"
        ) from error
    return structlog


def _report_error() -> None:
    """Tell stderr that an event was not shipped, as logging's handleError does."""
    if not logging.raiseExceptions or sys.stderr is None:
        return
    try:
        sys.stderr.write("--- kafka_sink: an event could not be shipped ---\n")
        traceback.print_exc(file=sys.stderr)
    except OSError:  # stderr is gone (e.g. closed at exit): nothing more to do
        pass
