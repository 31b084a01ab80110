"""``KafkaLoggerFactory``: structlog's logger factory whose loggers write to Kafka.

structlog ends its processor chain with a renderer and hands what it made to
a logger: :class:`structlog.BytesLogger` writes it to a file,
:class:`structlog.PrintLogger` prints it. The loggers of
:class:`KafkaLoggerFactory` queue it in a :class:`~kafka_sink.Sink` instead,
one Kafka record per event, exactly as rendered: ``JSONRenderer()`` (text),
``JSONRenderer(serializer=orjson.dumps)`` (bytes, with nothing re-encoded),
``KeyValueRenderer``, ``LogfmtRenderer``, ``ConsoleRenderer(colors=False)``
or a renderer of your own::

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        logger_factory=kafka_sink.KafkaLoggerFactory("app-events", "kafka1:9092"),
        cache_logger_on_first_use=True,
    )

structlog itself is not imported here: the factory works with any code that
calls a logger's methods with bytes or text.

Unlike :class:`~kafka_sink.KafkaProcessor`, which serialises the event dict
itself and hands it on down the chain, the factory ships what your renderer
made and is the end of the chain. Records are queued with
:meth:`Sink.enqueue <kafka_sink.Sink.enqueue>`: no future per record; what
became of them is counted per batch, as the processor counts its events.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any, Final

from kafka_sink import lifecycle
from kafka_sink.config import check_topic, header_pairs
from kafka_sink.errors import InvalidArgumentError, SinkClosedError
from kafka_sink.hooks.builtin.records import text_bytes
from kafka_sink.hooks.specs import DeadLetterFunction
from kafka_sink.integrations.shaping import (
    LOGGING_SINK_DEFAULTS,
    SENDER_THREAD_NAME,
    DeliveryLedger,
    owned_or_shared_sink,
    parameter_names,
    sink_options_of,
)
from kafka_sink.producer.partitioner import (
    Murmur2Partitioner,
    Partitioner,
    RoundRobinPartitioner,
    StickyPartitioner,
)
from kafka_sink.producer.sink import Sink

__all__ = ["KafkaLogger", "KafkaLoggerFactory"]

Header = tuple[str, bytes | None]
HeadersArgument = Mapping[str, str | bytes | None] | Sequence[tuple[str, str | bytes | None]]


class _FactoryKey:
    """The default of a logger method's ``key``: the factory's ``key``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<the factory's key>"


_FACTORY_KEY: Final = _FactoryKey()

# The partitioners a factory's own sink can use, named as a handler's are.
_PARTITIONERS: Mapping[str, Callable[[], Partitioner]] = {
    "murmur2": Murmur2Partitioner,
    "sticky": StickyPartitioner,
    "round_robin": RoundRobinPartitioner,
}

# Loggers are cached by name: without cache_logger_on_first_use, structlog
# asks the factory for a logger at every call. Bounded, in case names are
# made up per request.
_CACHE_MAX = 1024


class KafkaLoggerFactory:
    """A structlog ``logger_factory`` whose loggers ship each rendered event to Kafka.

    Example::

        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(),
            ],
            logger_factory=kafka_sink.KafkaLoggerFactory("app-events", "kafka1:9092"),
        )
        structlog.get_logger("billing").info("invoice_sent", invoice=42)

    The last processor is the renderer: its bytes become the record's value
    as they are, its text is encoded as UTF-8. The record's timestamp is
    the time of the call.

    ``topic``
        Where every record goes.
    ``bootstrap_servers`` or ``sink``
        The brokers of a Sink built here (with the Sink options given as
        keyword arguments, in ``sink_options`` under the Java or librdkafka
        names, or in ``KAFKA_SINK_*`` variables; a full buffer drops the
        oldest records, as a logging handler's does), closed by
        :meth:`close` and at exit; or an existing :class:`~kafka_sink.Sink`,
        shared, which its owner configures and closes.
    ``key``
        The Kafka key of every record (bytes or text), or None (the
        default): keyless records fill one partition's batch at a time. To
        key each event by an item of its dict, wrap the renderer in
        :meth:`keyed`.
    ``headers``
        Headers added to every record (a mapping or ``(name, value)`` pairs).
    ``standard_headers``
        Add the ``level`` header (the method called: ``log.warning(...)``
        gives ``warning``; ``msg`` and ``log`` give none), ``logger`` (the
        name given to ``structlog.get_logger(name)``, when there is one) and
        ``host`` (default True), before ``headers``.
    ``partitioner``
        ``"murmur2"`` (the default: murmur2 of the key, as the Java client
        does), ``"sticky"`` or ``"round_robin"``, for a Sink built here.
    ``dead_letter``
        A function told of each record that could not be delivered, as a
        :class:`~kafka_sink.DeadLetter` whose ``value`` is the rendered event
        (its ``record`` is None: the event dict is gone once rendered); on
        the sink's sender thread, or on the logging thread for records
        refused before they were queued.

    Logging never raises and never waits on Kafka: a record that cannot be
    queued is counted in :meth:`metrics` (``"closed"`` once the factory is
    closed; ``"invalid"``, reported on stderr as
    :meth:`logging.Handler.handleError` does when
    :data:`logging.raiseExceptions` is true, for headers that are not
    ``(name, value)`` pairs). A message that is neither bytes nor text is
    shipped as its text, as :class:`structlog.PrintLogger` prints it. Records logged on the sink's
    own sender thread (a dead-letter function that logs, say) or while the
    same thread is already shipping one are not shipped, and counted in
    ``records_ignored``. After :func:`os.fork` the child ships its own
    records and counts afresh.
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_enqueue",
        "_guard",
        "_host",
        "_ignored",
        "_key",
        "_ledger",
        "_lock",
        "_loggers",
        "_stalled",
        "_standard_headers",
        "_static_headers",
        "owns_sink",
        "sink",
        "topic",
    )

    def __init__(
        self,
        topic: str,
        bootstrap_servers: str | Sequence[str] | None = None,
        *,
        sink: Sink | None = None,
        key: bytes | str | None = None,
        headers: HeadersArgument | None = None,
        standard_headers: bool = True,
        partitioner: str | None = None,
        dead_letter: DeadLetterFunction | None = None,
        sink_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        check_topic(topic)  # now, not at the first event: a mistyped topic fails at startup
        if key is not None and not isinstance(key, (bytes, str)):
            raise InvalidArgumentError("key", f"must be bytes, text or None, got {key!r}")
        if not isinstance(standard_headers, bool):
            raise InvalidArgumentError(
                "standard_headers", f"must be True or False, got {standard_headers!r}"
            )
        if dead_letter is not None and not callable(dead_letter):
            raise InvalidArgumentError("dead_letter", f"must be callable, got {dead_letter!r}")
        if partitioner is not None:
            if sink is not None:
                raise InvalidArgumentError(
                    "partitioner", "applies to a sink built here: with sink=, give it to that Sink"
                )
            if partitioner not in _PARTITIONERS:
                raise InvalidArgumentError(
                    "partitioner",
                    f"must be one of {', '.join(map(repr, _PARTITIONERS))}, got {partitioner!r}",
                )
        self.topic = topic
        self._key = text_bytes(key)
        self._static_headers = header_pairs(headers)
        self._standard_headers = standard_headers
        self._host = text_bytes(socket.gethostname()) if standard_headers else None
        self._ledger = DeliveryLedger(() if dead_letter is None else (dead_letter,))
        self.sink, self.owns_sink = owned_or_shared_sink(
            bootstrap_servers,
            sink,
            sink_options_of(options, sink_options),
            defaults=LOGGING_SINK_DEFAULTS,
            partitioner=_PARTITIONERS[partitioner or "murmur2"],
            owner=type(self).__name__,
            owner_options=parameter_names(KafkaLoggerFactory.__init__),
        )
        self._enqueue = self.sink.enqueue
        self._loggers: dict[object, KafkaLogger] = {}
        self._guard = _Guard()
        self._lock = threading.Lock()
        self._ignored: Counter[str] = Counter()
        self._closed = False
        self._stalled = False
        lifecycle.reset_in_child(self, lifecycle.Stage.LOGGERS)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} topic={self.topic!r}>"

    def __call__(self, *args: Any) -> KafkaLogger:
        """The logger for ``structlog.get_logger(*args)``: the first argument is its name."""
        name = args[0] if args else None
        try:
            logger = self._loggers.get(name)
        except TypeError:  # a name that cannot be a dict key: not cached
            return KafkaLogger(self, name)
        if logger is None:
            logger = KafkaLogger(self, name)
            if len(self._loggers) < _CACHE_MAX:
                self._loggers[name] = logger
        return logger

    @staticmethod
    def keyed(
        renderer: Callable[[Any, str, MutableMapping[str, Any]], Any],
        key: str | None = None,
        header_fields: Iterable[str] = (),
    ) -> Callable[[Any, str, MutableMapping[str, Any]], Any]:
        """Wrap the last processor, ``renderer``, to key each event by an item of its dict.

        Example::

            processors=[
                structlog.processors.add_log_level,
                kafka_sink.KafkaLoggerFactory.keyed(
                    structlog.processors.JSONRenderer(), key="user_id",
                    header_fields=["request_id"],
                ),
            ]

        The record's key is the event dict's ``key`` item (text as UTF-8,
        bytes as they are, anything else as its text); an event without it
        gets the factory's key. Each item named in ``header_fields`` that the
        event has becomes a header too. Both are read before ``renderer``
        runs (some renderers remove the items they print) and stay in the
        rendered event. Only the loggers of a :class:`KafkaLoggerFactory`
        take what the wrapper returns.
        """
        return _Keyed(renderer, key, header_fields)

    # -- the per-record path ----------------------------------------------------------

    def _ship(
        self,
        message: object,
        headers: tuple[Header, ...],
        key: object,
        more_headers: HeadersArgument | None,
    ) -> None:
        """Queue one rendered event; never raises, never waits beyond max_block_ms."""
        if threading.current_thread().name == SENDER_THREAD_NAME:
            self._ignore("sender_thread")
            return
        guard = self._guard
        if guard.busy:  # a partitioner or dead-letter function logged: do not loop
            self._ignore("reentrant")
            return
        guard.busy = True
        # A dead letter's record is what the application logged, a LogRecord or
        # an event dict: here only the rendered value is known, and it is the
        # letter's value.
        value = record_key = None
        try:
            value = message if type(message) is bytes else text_bytes(message)
            record_key = self._key if key is _FACTORY_KEY else text_bytes(key)
            if more_headers:
                headers = (*headers, *header_pairs(more_headers))
            if self._closed:
                closed = SinkClosedError("the logger factory is closed", topic=self.topic)
                self._ledger.fail("closed", closed, None, self.topic, record_key, value, headers)
                return
            # No future and no callback per record: the ledger is told per batch.
            self._enqueue(self.topic, value, record_key, None, None, headers, self._ledger)
        except SinkClosedError as error:  # a shared sink its owner closed
            self._ledger.fail("closed", error, None, self.topic, record_key, value, headers)
        except Exception as error:
            self._ledger.fail("invalid", error, None, self.topic, record_key, value, headers)
            _report_error()
        finally:
            guard.busy = False

    def _ignore(self, reason: str) -> None:
        with self._lock:
            self._ignored[reason] += 1

    def _headers_for(self, level: str | None, name: object) -> tuple[Header, ...]:
        """What a logger of ``name`` adds to each record of its ``level`` method."""
        headers: list[Header] = []
        if self._standard_headers:
            if level is not None:
                headers.append(("level", level.encode("ascii")))
            if name is not None:
                headers.append(("logger", text_bytes(name)))
            headers.append(("host", self._host))
        headers.extend(self._static_headers)
        return tuple(headers)

    # -- flush, close, metrics ----------------------------------------------------------

    def flush(self, timeout: float | None = None) -> int:
        """Wait until the queued records are delivered, at most ``timeout`` seconds.

        ``None`` waits at most the sink's ``close_timeout_ms``. Returns how
        many records are still undelivered.
        """
        sink = self.sink
        if sink.closed:
            return 0
        bound = sink.config.close_timeout_ms / 1000.0 if timeout is None else timeout
        left = sink.flush(bound)
        # A flush with the full bound that still left records means Kafka is
        # unreachable: close() then does not wait a second time.
        self._stalled = left > 0 and timeout is None
        return left

    def close(self, timeout: float | None = None) -> None:
        """Stop shipping; close the sink if the factory built it (bounded, idempotent).

        What is buffered is delivered first, within ``timeout`` seconds (None:
        the sink's ``close_timeout_ms``). Records logged afterwards are
        counted as failed (``"closed"``); a shared sink is left open.
        """
        if self._closed:
            return
        self._closed = True
        lifecycle.forget(self)
        if self.owns_sink:
            self.sink.close(0.0 if self._stalled and timeout is None else timeout)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def metrics(self) -> dict[str, Any]:
        """Counts of the records of this factory's loggers, and the sink's own metrics.

        ``records_delivered``; ``records_failed`` by reason (the sink's:
        ``buffer_full``, ``too_large``, ``timeout``, ``closed``...; and
        ``invalid``) and ``records_failed_total``; ``records_ignored`` by
        reason (``sender_thread``, ``reentrant``); ``dead_letter_errors``,
        the dead-letter calls that raised; ``sink``, :meth:`Sink.metrics
        <kafka_sink.Sink.metrics>`. Records neither delivered nor failed are
        still in the sink.
        """
        with self._lock:
            ignored = dict(self._ignored)
        return self._ledger.snapshot(self.sink, records_ignored=ignored)

    def _after_fork_in_child(self) -> None:
        # The lock may have been held by a thread that does not exist here; the
        # parent's pending records stay the parent's (the sink forgets them too).
        self._lock = threading.Lock()
        self._ledger = DeliveryLedger(self._ledger.dead_letters)
        self._ignored = Counter()
        self._stalled = False


class KafkaLogger:
    """A logger of a :class:`KafkaLoggerFactory`: each call ships one record.

    Its methods are those of :class:`structlog.BytesLogger`: ``msg``,
    ``log``, ``debug``, ``info``, ``warning`` (``warn``), ``error``
    (``err``, ``exception``, ``failure``) and ``critical`` (``fatal``), each
    taking what the renderer made (bytes, or text), and, as keywords, the
    record's ``key`` (the factory's by default) and more ``headers``. The
    method names the record's ``level`` header. ``name`` is the name it
    was created with (``structlog.stdlib.add_logger_name`` reads it).
    """

    __slots__ = ("_critical", "_debug", "_error", "_factory", "_info", "_plain", "_warning", "name")

    def __init__(self, factory: KafkaLoggerFactory, name: object = None) -> None:
        self._factory = factory
        self.name = name
        self._plain = factory._headers_for(None, name)
        self._debug = factory._headers_for("debug", name)
        self._info = factory._headers_for("info", name)
        self._warning = factory._headers_for("warning", name)
        self._error = factory._headers_for("error", name)
        self._critical = factory._headers_for("critical", name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} topic={self._factory.topic!r}>"

    def msg(
        self,
        message: bytes | str,
        *,
        key: bytes | str | _FactoryKey | None = _FACTORY_KEY,
        headers: HeadersArgument | None = None,
    ) -> None:
        """Ship ``message``, without a level header."""
        self._factory._ship(message, self._plain, key, headers)

    log = msg

    def debug(
        self,
        message: bytes | str,
        *,
        key: bytes | str | _FactoryKey | None = _FACTORY_KEY,
        headers: HeadersArgument | None = None,
    ) -> None:
        """Ship ``message`` with the level header ``debug``."""
        self._factory._ship(message, self._debug, key, headers)

    def info(
        self,
        message: bytes | str,
        *,
        key: bytes | str | _FactoryKey | None = _FACTORY_KEY,
        headers: HeadersArgument | None = None,
    ) -> None:
        """Ship ``message`` with the level header ``info``."""
        self._factory._ship(message, self._info, key, headers)

    def warning(
        self,
        message: bytes | str,
        *,
        key: bytes | str | _FactoryKey | None = _FACTORY_KEY,
        headers: HeadersArgument | None = None,
    ) -> None:
        """Ship ``message`` with the level header ``warning``."""
        self._factory._ship(message, self._warning, key, headers)

    warn = warning

    def error(
        self,
        message: bytes | str,
        *,
        key: bytes | str | _FactoryKey | None = _FACTORY_KEY,
        headers: HeadersArgument | None = None,
    ) -> None:
        """Ship ``message`` with the level header ``error``."""
        self._factory._ship(message, self._error, key, headers)

    err = exception = failure = error

    def critical(
        self,
        message: bytes | str,
        *,
        key: bytes | str | _FactoryKey | None = _FACTORY_KEY,
        headers: HeadersArgument | None = None,
    ) -> None:
        """Ship ``message`` with the level header ``critical``."""
        self._factory._ship(message, self._critical, key, headers)

    fatal = critical

    def flush(self, timeout: float | None = None) -> int:
        """Wait for the factory's records to be delivered (:meth:`KafkaLoggerFactory.flush`)."""
        return self._factory.flush(timeout)


class _Keyed:
    """What :meth:`KafkaLoggerFactory.keyed` returns: a renderer that also passes a key."""

    __slots__ = ("_fields", "_key", "_renderer")

    def __init__(
        self,
        renderer: Callable[[Any, str, MutableMapping[str, Any]], Any],
        key: str | None,
        header_fields: Iterable[str],
    ) -> None:
        if not callable(renderer):
            raise InvalidArgumentError("renderer", f"must be callable, got {renderer!r}")
        if key is not None and (not isinstance(key, str) or not key):
            raise InvalidArgumentError("key", f"must be a non-empty name, got {key!r}")
        if isinstance(header_fields, (str, bytes)) or not isinstance(header_fields, Iterable):
            raise InvalidArgumentError(
                "header_fields", f"must be a list of names, got {header_fields!r}"
            )
        fields = tuple(header_fields)
        for name in fields:
            if not isinstance(name, str) or not name:
                raise InvalidArgumentError("header_fields", f"must hold names, got {name!r}")
        self._renderer = renderer
        self._key = key
        self._fields = fields

    def __repr__(self) -> str:
        return f"KafkaLoggerFactory.keyed({self._renderer!r}, key={self._key!r})"

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> tuple[tuple[Any], dict[str, Any]]:
        keywords: dict[str, Any] = {}
        if self._key is not None:
            key = event_dict.get(self._key)
            if key is not None:
                keywords["key"] = text_bytes(key)
        if self._fields:
            headers = [
                (name, text_bytes(event_dict[name])) for name in self._fields if name in event_dict
            ]
            if headers:
                keywords["headers"] = headers
        return (self._renderer(logger, method_name, event_dict),), keywords


class _Guard(threading.local):
    """Per thread: is this thread inside :meth:`KafkaLoggerFactory._ship` already?"""

    busy = False


def _report_error() -> None:
    """Tell stderr that a record was not shipped, as logging's handleError does."""
    if not logging.raiseExceptions or sys.stderr is None:
        return
    try:
        sys.stderr.write("--- kafka_sink: a structlog event could not be shipped ---\n")
        traceback.print_exc(file=sys.stderr)
    except OSError:  # stderr is gone (e.g. closed at exit): nothing more to do
        pass
