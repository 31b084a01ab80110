"""What the logging handler and the structlog processor share: records into Kafka records.

Theory of operation
-------------------
A :class:`RecordShaper` is built once per handler or processor. It builds a
plugin manager (:func:`~kafka_sink.hooks.plugin_manager`), calls each factory
hook of :mod:`kafka_sink.hooks.specs` once, and keeps the plain callables the
plugins return: serializer, key, headers, topic router, dead-letter
functions and, for a sink it builds itself, the partitioners. The per-record
path (:meth:`RecordShaper.ship`) calls only those, then
:meth:`kafka_sink.Sink.produce`, which never does I/O and never waits beyond
``max_block_ms``.

Routing and volume (``topic_map``, ``sample``, ``rate_limit``) are resolved
once too, into a :class:`~kafka_sink.integrations.routing.RecordRouter`
whose per-record answer is a cached dict lookup.

Accounting: every record handed to :meth:`~RecordShaper.ship` ends up in
exactly one of ``records_delivered``, ``records_failed`` (by reason: the
``reason`` of the :class:`~kafka_sink.DeliveryError`, or ``"serialize"``,
``"invalid"``, ``"closed"`` for records refused before they were queued),
``records_ignored`` (records that must not be shipped: from the library's
own loggers, from the sink's sender thread, or logged while this thread was
already shipping a record), ``records_sampled_out`` or
``records_rate_limited`` (left out on purpose, by the entry of ``sample`` or
``rate_limit`` that applied); or it is still pending in the sink.
Dead-letter functions are told of each failed record, with its reason.

Threads: :meth:`~RecordShaper.ship` runs on the application's threads, many
at once, and takes no lock on its way to the sink. Delivery outcomes arrive
on the sink's sender thread, one at a time. Failure counters are changed
under a lock (failures are rare); the delivered counter only by the sender
thread.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from kafka_sink import lifecycle
from kafka_sink.config import SinkConfig, check_topic
from kafka_sink.errors import ConfigError, DeliveryError, InvalidArgumentError, SinkClosedError
from kafka_sink.hooks import plugin_manager
from kafka_sink.hooks.specs import (
    DeadLetter,
    DeadLetterFunction,
    HeadersFunction,
    KeyFunction,
    Kind,
    RecordPartitioner,
    TopicFunction,
)
from kafka_sink.integrations.routing import RecordRouter
from kafka_sink.options import environment_variable
from kafka_sink.producer.futures import UndeliveredRecord
from kafka_sink.producer.partitioner import (
    DefaultPartitioner,
    Murmur2Partitioner,
    Partitioner,
    RoundRobinPartitioner,
    StickyPartitioner,
)

# Nothing logged on a sink's sender thread is shipped: a delivery callback
# that logs would otherwise feed itself.
from kafka_sink.producer.sink import SENDER_THREAD_NAME, Sink

__all__ = [
    "LOGGING_SINK_DEFAULTS",
    "NO_OPTIONS",
    "SENDER_THREAD_NAME",
    "ChainPartitioner",
    "DeliveryLedger",
    "RecordShaper",
    "ShapingConfig",
    "frozen_options",
    "owned_or_shared_sink",
    "parameter_names",
    "sink_options_of",
]

#: Sink options a handler or processor uses unless told otherwise. Logging
#: must never hold the application up: with ``"drop_oldest"`` a full buffer
#: (Kafka unreachable for long) makes room by dropping the oldest unsent
#: records, so ``produce()`` never waits and the newest records, the ones
#: that describe the present, are kept. Each dropped record is counted and
#: reported. ``max_block_ms`` bounds the wait of a caller who chooses
#: ``on_buffer_full="block"``: 100 ms, not the Sink's 1 s, because every
#: logging call of every thread may wait that long while the buffer is full.
LOGGING_SINK_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {"on_buffer_full": "drop_oldest", "max_block_ms": 100.0}
)

#: The default of every ``*_options`` argument: no options.
NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})
_DEFAULT_PARTITIONER = "murmur2"
# The built-in partitioners always return a partition: one of them first in
# the chain makes the rest unreachable, and the sink can call it directly.
_ALWAYS_CHOOSE = (Murmur2Partitioner, StickyPartitioner, RoundRobinPartitioner)


@dataclass(frozen=True, slots=True)
class ShapingConfig:
    """How a handler or processor turns records into Kafka records (validated).

    The arguments are those of :class:`~kafka_sink.KafkaHandler` and
    :class:`~kafka_sink.KafkaProcessor` of the same names. Mappings are
    frozen (None counts as empty) and lists become tuples; the entries of
    ``topic_map``, ``sample`` and ``rate_limit`` are checked by
    :class:`~kafka_sink.integrations.routing.RecordRouter`.
    """

    topic: str
    serializer: str = "json"
    serializer_options: Mapping[str, Any] = field(default_factory=lambda: NO_OPTIONS)
    key: str | None = None
    key_function: str | None = None
    key_options: Mapping[str, Any] = field(default_factory=lambda: NO_OPTIONS)
    header_fields: Iterable[str] = ()
    standard_headers: bool = True
    partitioner: str | None = None
    partitioner_options: Mapping[str, Any] = field(default_factory=lambda: NO_OPTIONS)
    dead_letter: DeadLetterFunction | None = None
    plugins: Iterable[object] = ()
    block_plugins: Iterable[str] = ()
    entry_points: bool = True
    topic_map: Mapping[Any, str] = field(default_factory=lambda: NO_OPTIONS)
    topic_field: str | None = None
    sample: Mapping[Any, float] = field(default_factory=lambda: NO_OPTIONS)
    rate_limit: Mapping[Any, float] = field(default_factory=lambda: NO_OPTIONS)

    def __post_init__(self) -> None:
        check_topic(self.topic)
        for name in ("serializer", "key", "key_function", "partitioner", "topic_field"):
            value = getattr(self, name)
            if (value is not None or name == "serializer") and (
                not isinstance(value, str) or not value
            ):
                raise InvalidArgumentError(name, f"must be a non-empty name, got {value!r}")
        if self.key is not None and self.key_function is not None:
            raise InvalidArgumentError("key", "give either key (an attribute) or key_function")
        for name in ("serializer_options", "key_options", "partitioner_options"):
            object.__setattr__(self, name, frozen_options(getattr(self, name), name))
        for name in ("topic_map", "sample", "rate_limit"):
            object.__setattr__(self, name, _frozen_entries(getattr(self, name), name))
        object.__setattr__(self, "header_fields", _names(self.header_fields, "header_fields"))
        object.__setattr__(self, "block_plugins", _names(self.block_plugins, "block_plugins"))
        if isinstance(self.plugins, (str, bytes)) or not isinstance(self.plugins, Iterable):
            raise InvalidArgumentError(
                "plugins", f"must be a list of plugins, got {self.plugins!r}"
            )
        object.__setattr__(self, "plugins", tuple(self.plugins))
        for name in ("standard_headers", "entry_points"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidArgumentError(
                    name, f"must be True or False, got {getattr(self, name)!r}"
                )
        if self.dead_letter is not None and not callable(self.dead_letter):
            raise InvalidArgumentError("dead_letter", f"must be callable, got {self.dead_letter!r}")

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> ShapingConfig:
        """Build from a handler's or processor's arguments, which use the same names.

        ``arguments`` is their ``locals()``: the fields are picked by name, so
        each integration states its parameters once, in its signature.
        """
        return cls(**{f.name: arguments[f.name] for f in fields(cls)})


def frozen_options(value: object, argument: str) -> Mapping[str, Any]:
    """A read-only copy of an ``*_options`` mapping (None: :data:`NO_OPTIONS`); names as keys.

    Anything else raises :class:`~kafka_sink.InvalidArgumentError` naming ``argument``.
    """
    if value is None:
        return NO_OPTIONS
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(argument, f"must be a mapping, got {value!r}")
    for key in value:
        if not isinstance(key, str):
            raise InvalidArgumentError(argument, f"must have names as keys, got {key!r}")
    # Item by item, not dict(value): dictConfig's ConvertingDict resolves
    # "ext://" and "cfg://" values only when they are looked up.
    return MappingProxyType({key: value[key] for key in value})


def _frozen_entries(value: object, argument: str) -> Mapping[Any, Any]:
    # Keys may be level numbers as well as names: checked by RecordRouter.
    if value is None:
        return NO_OPTIONS
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(argument, f"must be a mapping, got {value!r}")
    return MappingProxyType({key: value[key] for key in value})


def sink_options_of(keywords: Mapping[str, Any], mapping: object) -> dict[str, Any]:
    """The Sink options of an integration: its extra keywords and its ``sink_options`` mapping.

    The mapping is where names that are not Python identifiers go (a
    dictConfig entry cannot have a ``linger.ms`` key); a name in both is an
    error.
    """
    options = dict(keywords)
    if mapping is None:
        return options
    if not isinstance(mapping, Mapping):
        raise InvalidArgumentError("sink_options", f"must be a mapping, got {mapping!r}")
    for name in mapping:
        if name in options:
            raise InvalidArgumentError(
                name, "is given both as a keyword argument and in sink_options"
            )
        options[name] = mapping[name]
    return options


def parameter_names(function: Callable[..., Any]) -> tuple[str, ...]:
    """The names of a function's parameters after ``self`` (offered as suggestions)."""
    code = function.__code__
    return code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount]


def _names(value: object, argument: str) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidArgumentError(argument, f"must be a list of names, got {value!r}")
    names = tuple(value)
    for name in names:
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(argument, f"must hold names, got {name!r}")
    return names


class _Guard(threading.local):
    """Per thread: is this thread inside :meth:`RecordShaper.ship` already?"""

    busy = False


class RecordShaper:
    """The resolved plugin callables, the sink and the delivery accounting.

    ``kind`` is ``"log"`` (records are :class:`logging.LogRecord`) or
    ``"event"`` (structlog event dicts). Either ``sink`` (shared: never closed
    here, and ``sink_options`` must be empty) or ``bootstrap_servers`` (a sink
    built from ``sink_options``, the ``KAFKA_SINK_*`` environment and
    :data:`LOGGING_SINK_DEFAULTS`, owned and closed here). ``clock`` drives
    the rate limits; ``owner`` and ``owner_options`` word the error for an
    unknown option.
    """

    def __init__(
        self,
        kind: Kind,
        config: ShapingConfig,
        *,
        bootstrap_servers: str | Sequence[str] | None = None,
        sink: Sink | None = None,
        sink_options: Mapping[str, Any] = NO_OPTIONS,
        clock: Callable[[], float] = time.monotonic,
        owner: str = "KafkaHandler",
        owner_options: Iterable[str] = (),
    ) -> None:
        self.kind = kind
        self.config = config
        self._router = RecordRouter.build(
            kind,
            topic_map=config.topic_map,
            sample=config.sample,
            rate_limit=config.rate_limit,
            clock=clock,
        )
        self._topic_field = config.topic_field
        self._manager = manager = plugin_manager(
            config.plugins, block=config.block_plugins, entry_points=config.entry_points
        )
        self._serializer_extra: Mapping[str, Any] = NO_OPTIONS
        self._serialize = self._resolve_serializer()
        self._key = self._resolve_key()
        self._headers = self._resolve_headers()
        self._route: TopicFunction | None = manager.hook.kafka_sink_record_topic(
            kind=kind, options=MappingProxyType({"topic": config.topic})
        )
        dead_letters = manager.hook.kafka_sink_dead_letter(
            kind=kind, options=MappingProxyType({"topic": config.topic})
        )
        if config.dead_letter is not None:
            dead_letters.append(config.dead_letter)
        self._ledger = DeliveryLedger(dead_letters)
        self.sink, self.owns_sink = self._resolve_sink(
            bootstrap_servers, sink, sink_options, owner, owner_options
        )
        self._enqueue = self.sink.enqueue
        self._topic = config.topic
        self._guard = _Guard()
        self._lock = threading.Lock()
        self._ignored: Counter[str] = Counter()
        self._sampled_out: Counter[str] = Counter()
        self._rate_limited: Counter[str] = Counter()
        self._closed = False
        self._stalled = False
        lifecycle.reset_in_child(self, lifecycle.Stage.LOGGERS)

    # -- resolving hooks (once) ------------------------------------------------------

    def _resolve_serializer(self) -> Callable[[Any], bytes]:
        config = self.config
        options = MappingProxyType({**config.serializer_options, **self._serializer_extra})
        hook = self._manager.hook
        caller = (
            hook.kafka_sink_log_serializer
            if self.kind == "log"
            else hook.kafka_sink_event_serializer
        )
        serializer: Callable[[Any], bytes] | None = caller(name=config.serializer, options=options)
        if serializer is None:
            what = "log records" if self.kind == "log" else "event dicts"
            raise InvalidArgumentError(
                "serializer", f"no plugin provides a serializer {config.serializer!r} for {what}"
            )
        return serializer

    def set_serializer_options(self, extra: Mapping[str, Any]) -> None:
        """Resolve the serializer again with ``extra`` options (e.g. a new formatter)."""
        self._serializer_extra = MappingProxyType(dict(extra))
        self._serialize = self._resolve_serializer()

    def _resolve_key(self) -> KeyFunction | None:
        config = self.config
        options: Mapping[str, Any]
        if config.key is not None:
            name, options = "attribute", MappingProxyType({"attribute": config.key})
        elif config.key_function is not None:
            name, options = config.key_function, config.key_options
        else:
            if config.key_options:
                raise InvalidArgumentError("key_options", "given without key_function")
            return None
        function: KeyFunction | None = self._manager.hook.kafka_sink_record_key(
            kind=self.kind, name=name, options=options
        )
        if function is None:
            raise InvalidArgumentError("key_function", f"no plugin provides a key {name!r}")
        return function

    def _resolve_headers(self) -> HeadersFunction | None:
        options = MappingProxyType(
            {"fields": self.config.header_fields, "standard": self.config.standard_headers}
        )
        functions: list[HeadersFunction] = self._manager.hook.kafka_sink_record_headers(
            kind=self.kind, options=options
        )
        if not functions:
            return None
        if len(functions) == 1:
            return functions[0]
        chain = tuple(functions)

        def all_headers(record: Any) -> list[tuple[str, bytes | None]]:
            headers: list[tuple[str, bytes | None]] = []
            for function in chain:
                headers.extend(function(record))
            return headers

        return all_headers

    def _resolve_partitioner(self) -> Partitioner:
        config = self.config
        partitioners: list[RecordPartitioner] = self._manager.hook.kafka_sink_partitioner(
            kind=self.kind,
            name=config.partitioner or _DEFAULT_PARTITIONER,
            options=config.partitioner_options,
        )
        if not partitioners:
            raise InvalidArgumentError(
                "partitioner", f"no plugin provides a partitioner {config.partitioner!r}"
            )
        first = partitioners[0]
        if isinstance(first, _ALWAYS_CHOOSE):
            return first
        return ChainPartitioner(partitioners)

    def _resolve_sink(
        self,
        bootstrap_servers: str | Sequence[str] | None,
        sink: Sink | None,
        sink_options: Mapping[str, Any],
        owner: str,
        owner_options: Iterable[str],
    ) -> tuple[Sink, bool]:
        if sink is not None and (
            self.config.partitioner is not None or self.config.partitioner_options
        ):
            raise InvalidArgumentError(
                "partitioner", "applies to a sink built here: with sink=, give it to that Sink"
            )
        return owned_or_shared_sink(
            bootstrap_servers,
            sink,
            sink_options,
            defaults=LOGGING_SINK_DEFAULTS,
            partitioner=self._resolve_partitioner,
            owner=owner,
            owner_options=owner_options,
        )

    # -- the per-record path ---------------------------------------------------------

    def ship(self, record: Any, timestamp: int | None, thread_name: str | None) -> None:
        """Serialise ``record`` on this thread and queue it; never waits beyond max_block_ms.

        Raises what the caller should report (a serializer or plugin error,
        after it was counted and told to the dead-letter functions); a closed
        sink is counted, not raised.
        """
        if thread_name == SENDER_THREAD_NAME:
            self.ignore("sender_thread")
            return
        guard = self._guard
        if guard.busy:  # a plugin, or something it called, logged: do not loop
            self.ignore("reentrant")
            return
        guard.busy = True
        try:
            self._ship(record, timestamp)
        finally:
            guard.busy = False

    def _ship(self, record: Any, timestamp: int | None) -> None:
        topic = self._topic
        router = self._router
        if router is not None:
            decision = router.decide(record)
            if decision.keep < 1.0 and random.random() >= decision.keep:
                with self._lock:
                    self._sampled_out[decision.sample_rule] += 1
                return
            bucket = decision.bucket
            if bucket is not None and not bucket.take():
                with self._lock:
                    self._rate_limited[decision.limit_rule] += 1
                return
            if decision.topic is not None:
                topic = decision.topic
        key = value = None
        headers: Sequence[tuple[str, bytes | None]] = ()
        try:
            value = self._serialize(record)
            if self._key is not None:
                key = self._key(record)
            if self._headers is not None:
                headers = self._headers(record)
            if self._route is not None:
                topic = self._route(record) or topic
            if self._topic_field is not None:
                chosen = (
                    getattr(record, self._topic_field, None)
                    if self.kind == "log"
                    else record.get(self._topic_field)
                )
                if isinstance(chosen, str) and chosen:
                    topic = chosen
        except Exception as error:
            self._ledger.fail("serialize", error, record, topic, key, value, headers)
            raise
        if self._closed:
            closed = SinkClosedError("the handler or processor is closed", topic=topic)
            self._ledger.fail("closed", closed, record, topic, key, value, headers)
            return
        try:
            # No future and no callback per record: the ledger is told per batch.
            self._enqueue(topic, value, key, None, timestamp, headers, self._ledger)
        except SinkClosedError as error:
            self._ledger.fail("closed", error, record, topic, key, value, headers)
        except Exception as error:  # e.g. a topic router that returned a bad name
            self._ledger.fail("invalid", error, record, topic, key, value, headers)
            raise

    def ignore(self, reason: str) -> None:
        """Count a record that was deliberately not shipped."""
        with self._lock:
            self._ignored[reason] += 1

    # -- flush, close, metrics ----------------------------------------------------------

    def flush(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` s (None: ``close_timeout_ms``) for the sink to deliver.

        Returns how many records are still undelivered.
        """
        sink = self.sink
        if sink.closed:
            return 0
        bound = sink.config.close_timeout_ms / 1000.0 if timeout is None else timeout
        left = sink.flush(bound)
        # A flush with the full bound that still left records means Kafka is
        # unreachable: close() then does not wait a second time (logging's
        # shutdown calls flush() and then close()).
        self._stalled = left > 0 and timeout is None
        return left

    def close(self, timeout: float | None = None) -> None:
        """Refuse new records; close the sink if it is owned (bounded, idempotent)."""
        if self._closed:
            return
        self._closed = True
        lifecycle.forget(self)
        if self.owns_sink:
            self.sink.close(0.0 if self._stalled and timeout is None else timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    def metrics(self) -> dict[str, Any]:
        """Counts of this handler's or processor's records, and the sink's own metrics."""
        with self._lock:
            ignored = dict(self._ignored)
            sampled_out = dict(self._sampled_out)
            rate_limited = dict(self._rate_limited)
        return self._ledger.snapshot(
            self.sink,
            records_ignored=ignored,
            records_sampled_out=sampled_out,
            records_rate_limited=rate_limited,
        )

    def _after_fork_in_child(self) -> None:
        # The lock may have been held by a thread that does not exist here; the
        # parent's pending records stay the parent's (the sink forgets them too).
        self._lock = threading.Lock()
        self._ledger = DeliveryLedger(self._ledger.dead_letters)
        self._ignored = Counter()
        self._sampled_out = Counter()
        self._rate_limited = Counter()
        self._stalled = False


def owned_or_shared_sink(
    bootstrap_servers: str | Sequence[str] | None,
    sink: Sink | None,
    sink_options: Mapping[str, Any],
    *,
    defaults: Mapping[str, Any],
    partitioner: Callable[[], Partitioner],
    owner: str = "KafkaHandler",
    owner_options: Iterable[str] = (),
) -> tuple[Sink, bool]:
    """The sink of a handler, processor or exporter, and whether it owns it.

    Either ``sink`` (shared: returned as is; then ``bootstrap_servers`` and
    ``sink_options`` must be absent, and the environment is not read) or a
    new Sink for ``bootstrap_servers``, each option taken from
    ``sink_options``, else its ``KAFKA_SINK_*`` environment variable, else
    ``defaults`` (:meth:`~kafka_sink.SinkConfig.from_mapping`), with the
    partitioner ``partitioner()`` returns (called only then). Mistakes raise
    :class:`~kafka_sink.InvalidArgumentError` naming the argument as it was
    given (:class:`~kafka_sink.ConfigError` for an environment variable);
    an unknown one is an unknown option of ``owner``, whose ``owner_options``
    are suggested too.
    """
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
    try:
        config = SinkConfig.from_mapping(
            sink_options,
            bootstrap_servers=bootstrap_servers,
            defaults=defaults,
            owner=owner,
            owner_options=owner_options,
        )
    except InvalidArgumentError as error:
        if isinstance(error, ConfigError) or error.context.get("argument") != "bootstrap_servers":
            raise
        if "is required" not in error.message:
            raise
        variable = environment_variable("bootstrap_servers")
        raise InvalidArgumentError(
            "bootstrap_servers", f"is required unless sink= is given (or ${variable} is set)"
        ) from None
    return Sink(config=config, partitioner=partitioner()), True


class DeliveryLedger:
    """What became of the records handed to a sink; failures go to dead-letter functions.

    Shared by the handler, the processor and the metrics exporter. Counts the
    records delivered (written by the sink's sender thread only, so without
    a lock), those that failed, by reason, and the dead-letter functions that
    raised (under a lock: failures are rare and come from any thread). Each
    failed record is told to every dead-letter function, as a
    :class:`~kafka_sink.DeadLetter`.
    """

    __slots__ = ("_failures", "_lock", "dead_letter_errors", "dead_letters", "delivered_count")

    def __init__(self, dead_letters: Iterable[DeadLetterFunction] = ()) -> None:
        self.dead_letters: tuple[DeadLetterFunction, ...] = tuple(dead_letters)
        self._lock = threading.Lock()
        self.delivered_count = 0
        self._failures: Counter[str] = Counter()
        self.dead_letter_errors = 0

    # The ledger is the DeliveryReport of every record its owner enqueues:
    # told per batch, so that nothing is kept per record while it is in flight.

    @property
    def needs_records(self) -> bool:
        """Only dead-letter functions want the contents of failed records."""
        return bool(self.dead_letters)

    def delivered(self, count: int) -> None:
        """``count`` records were written (sender thread)."""
        self.delivered_count += count

    def failed(self, error: DeliveryError, records: Sequence[UndeliveredRecord]) -> None:
        """These records will not be delivered (sender thread)."""
        for record in records:
            self.fail(
                error.reason, error, None, record.topic, record.key, record.value, record.headers
            )

    def fail(
        self,
        reason: str,
        error: BaseException,
        record: Any = None,
        topic: str | None = None,
        key: bytes | None = None,
        value: bytes | None = None,
        headers: Sequence[tuple[str, bytes | None]] = (),
    ) -> None:
        """Count a record that will not be delivered, and tell the dead-letter functions."""
        with self._lock:
            self._failures[reason] += 1
        if not self.dead_letters:
            return
        letter = DeadLetter(topic, key, value, tuple(headers), reason, error, record)
        for function in self.dead_letters:
            try:
                function(letter)
            except Exception:  # a dead-letter function must break neither logging nor the sender
                with self._lock:
                    self.dead_letter_errors += 1

    def counts(self) -> tuple[int, dict[str, int], int]:
        """``(delivered, failed by reason, dead-letter errors)``."""
        with self._lock:
            return self.delivered_count, dict(self._failures), self.dead_letter_errors

    def snapshot(self, sink: Sink, **counters: dict[str, int]) -> dict[str, Any]:
        """An owner's ``metrics()``: these counts, its own ``counters``, the sink's metrics."""
        delivered, failed, dead_letter_errors = self.counts()
        return {
            "records_delivered": delivered,
            "records_failed": failed,
            "records_failed_total": sum(failed.values()),
            **counters,
            "dead_letter_errors": dead_letter_errors,
            "sink": sink.metrics(),
        }


class ChainPartitioner:
    """The partitioners of the plugins as one :class:`~kafka_sink.Sink` partitioner.

    For each record, the first partitioner that returns a partition in
    ``range(num_partitions)`` wins; one that returns None (or a partition
    out of range, or raises) defers to the next. After the last, keyed
    records go to murmur2(key) and keyless ones to the sticky partitioner
    (:class:`~kafka_sink.producer.partitioner.DefaultPartitioner`).
    ``on_new_batch`` is passed on to every partitioner that has one.

    Example::

        def by_tenant(topic, key, value, num_partitions):
            return 0 if value and b'"tenant":"internal"' in value else None

        sink = Sink("localhost:9092", partitioner=ChainPartitioner([by_tenant]))
    """

    __slots__ = ("_chain", "_fallback", "_new_batch", "errors")

    def __init__(
        self, chain: Sequence[RecordPartitioner], fallback: Partitioner | None = None
    ) -> None:
        self._chain = tuple(chain)
        self._fallback: Partitioner = DefaultPartitioner() if fallback is None else fallback
        hooks = (getattr(p, "on_new_batch", None) for p in (*self._chain, self._fallback))
        self._new_batch = tuple(hook for hook in hooks if callable(hook))
        #: How many times a partitioner raised (the record then went to the
        #: next one). Not locked: a count of plugin bugs may miss a few.
        self.errors = 0

    def __call__(
        self, topic: str, key: bytes | None, value: bytes | None, num_partitions: int
    ) -> int:
        for partitioner in self._chain:
            try:
                partition = partitioner(topic, key, value, num_partitions)
            except Exception:  # runs on the sender thread too: never let it break the loop
                self.errors += 1
                continue
            if type(partition) is int and 0 <= partition < num_partitions:
                return partition
        return self._fallback(topic, key, value, num_partitions)

    def on_new_batch(self, topic: str, previous_partition: int, num_partitions: int) -> None:
        for on_new_batch in self._new_batch:
            on_new_batch(topic, previous_partition, num_partitions)
