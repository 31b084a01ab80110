"""Routing and volume: which topic a record goes to, and whether it is shipped at all.

The ``topic_map``, ``topic_field``, ``sample`` and ``rate_limit`` options of
:class:`~kafka_sink.KafkaHandler` and :class:`~kafka_sink.KafkaProcessor`::

    KafkaHandler(
        "app-logs", "kafka1:9092",
        topic_map={"ERROR": "app-errors", "myapp.audit": "audit"},
        topic_field="kafka_topic",
        sample={"DEBUG": 0.1},
        rate_limit={"INFO": 1000, "myapp.chatty": 50},
    )

Matching
--------
A key of ``topic_map``, ``sample`` or ``rate_limit`` is one of:

- a level: a level name in any case (``"ERROR"``, ``"warning"``, a level
  registered with :func:`logging.addLevelName` before the handler is built)
  or a level number;
- ``"*"``: every record;
- anything else: a logger name, matching that logger and its descendants
  (``"myapp.audit"`` matches ``myapp.audit`` and ``myapp.audit.login``, not
  ``myapp.auditor``).

For each record, the entry that applies is the first that matches of: the
longest logger name, then the level, then ``"*"``. A level of ``topic_map``
is a threshold, as a handler's level is: with ``{"WARNING": "logs-warn",
"ERROR": "logs-errors"}``, WARNING records go to ``logs-warn`` and ERROR and
CRITICAL ones to ``logs-errors``. A level of ``sample`` or ``rate_limit``
applies to that level alone, so that ``{"DEBUG": 0.1}`` thins out DEBUG
records and nothing else.

A log record's logger is ``record.name`` and its level ``record.levelno``;
an event dict's are its ``"logger"`` item (structlog's ``add_logger_name``)
and its ``"level"`` item.

Topics
------
The topic is the first of: the ``topic_field`` attribute of the record (an
``extra`` field; for events, that item of the dict) when it is a non-empty
string; a plugin's topic router (``kafka_sink_record_topic``); the
``topic_map`` entry; the handler's ``topic``.

Volume
------
``sample[key] = p`` ships each matching record with probability ``p`` (0
ships none, 1 all: a logger's ``1.0`` exempts it from its level's entry).
``rate_limit[key] = n`` ships at most ``n`` records per second for that
entry, shared by every logger it matches: a token bucket that holds one
second's worth (at least one record) and refills continuously. Sampling
comes first; the rate limit counts what sampling kept. A record left out is
neither serialised nor queued: it is counted, by entry, in ``metrics()``
under ``records_sampled_out`` and ``records_rate_limited``.

Cost
----
Everything is resolved when the handler is built. What a (logger, level)
pair gets (its topic, its sampling, its bucket) is worked out the first
time the pair is seen and cached (a bounded cache), so a record costs one
dict lookup, plus a random draw or a token-bucket step when an entry
applies; no plugin is called per record.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from kafka_sink.config import check_topic
from kafka_sink.errors import InvalidArgumentError
from kafka_sink.hooks.specs import Kind

__all__ = ["Decision", "RecordRouter", "TokenBucket", "level_number"]

_ANY = "*"
# (logger, level) pairs are few in practice; the bound only guards against
# logger names made up per request.
_CACHE_MAX = 4096

V = TypeVar("V")


def level_number(name: object) -> int | None:
    """The number of a level name known to :mod:`logging` (any case), or None."""
    if not isinstance(name, str) or not name:
        return None
    number = logging.getLevelName(name.upper())
    return number if isinstance(number, int) else None


class TokenBucket:
    """At most ``rate`` takes per second, in bursts of up to ``capacity`` (thread-safe).

    The bucket starts full and refills continuously from ``clock`` (seconds,
    monotonic). Example::

        bucket = TokenBucket(1000.0, time.monotonic)
        if bucket.take():
            ship(record)
    """

    __slots__ = ("_capacity", "_clock", "_last", "_lock", "_rate", "_tokens")

    def __init__(
        self, rate: float, clock: Callable[[], float], capacity: float | None = None
    ) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate) if capacity is None else capacity
        self._clock = clock
        self._tokens = self._capacity
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take one token if there is one: True when the caller may go ahead."""
        with self._lock:
            now = self._clock()
            elapsed = now - self._last
            self._last = now
            if elapsed > 0:
                self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens to the records of one (logger, level) pair.

    ``topic`` is the ``topic_map`` topic (None: no entry applies);
    ``keep`` the probability that sampling keeps a record (1.0: no
    sampling), under the entry ``sample_rule``; ``bucket`` the rate limit of
    the entry ``limit_rule`` (None: no limit).
    """

    topic: str | None = None
    keep: float = 1.0
    sample_rule: str = ""
    bucket: TokenBucket | None = None
    limit_rule: str = ""


_NOTHING = Decision()


class _Entries(Generic[V]):
    """One of ``topic_map``, ``sample`` or ``rate_limit``, with its keys sorted by kind."""

    __slots__ = ("any", "levels", "loggers", "thresholds")

    def __init__(self, argument: str, value: object, check: Callable[[str, object], V]) -> None:
        self.loggers: dict[str, tuple[str, V]] = {}
        self.levels: dict[int, tuple[str, V]] = {}
        self.any: tuple[str, V] | None = None
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise InvalidArgumentError(argument, f"must be a mapping, got {value!r}")
        seen: dict[object, object] = {}
        for key in value:
            if isinstance(key, bool) or not isinstance(key, (str, int)) or key == "":
                raise InvalidArgumentError(
                    argument, f"keys must be level names, logger names or '*', got {key!r}"
                )
            # Item by item: dictConfig's ConvertingDict resolves values when looked up.
            entry = check(f"{argument}[{key!r}]", value[key])
            number = key if isinstance(key, int) else level_number(key)
            kind_key: object
            if number is not None:
                kind_key = label = logging.getLevelName(number)
                self.levels[number] = (label, entry)
            elif key == _ANY:
                kind_key = label = _ANY
                self.any = (label, entry)
            else:
                kind_key = label = str(key)
                self.loggers[label] = (label, entry)
            if kind_key in seen:
                raise InvalidArgumentError(
                    argument, f"{key!r} and {seen[kind_key]!r} name the same level"
                )
            seen[kind_key] = key
        # Highest first: the first threshold at or below a record's level wins.
        self.thresholds = sorted(self.levels.items(), reverse=True)

    def __bool__(self) -> bool:
        return bool(self.loggers or self.levels or self.any)

    def match(self, logger: str, level: int | None, *, threshold: bool) -> tuple[str, V] | None:
        """The entry for a record of ``logger`` at ``level``: logger, then level, then ``*``."""
        loggers = self.loggers
        if loggers and logger:
            name = logger
            while True:
                found = loggers.get(name)
                if found is not None:
                    return found
                dot = name.rfind(".")
                if dot < 0:
                    break
                name = name[:dot]
        if level is not None:
            if threshold:
                for number, found in self.thresholds:
                    if number <= level:
                        return found
            else:
                exact = self.levels.get(level)
                if exact is not None:
                    return exact
        return self.any


def _topic(argument: str, value: object) -> str:
    try:
        return check_topic(value)
    except InvalidArgumentError as error:
        raise InvalidArgumentError(argument, error.message.partition(": ")[2]) from None


def _probability(argument: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise InvalidArgumentError(argument, f"must be a number from 0 to 1, got {value!r}")
    return float(value)


def _rate(argument: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidArgumentError(
            argument, f"must be a number of records per second > 0, got {value!r}"
        )
    return float(value)


class RecordRouter:
    """``topic_map``, ``sample`` and ``rate_limit`` of one handler or processor, resolved.

    ``decide(record)`` returns the :class:`Decision` of the record's
    (logger, level) pair, from a cache. ``kind`` is ``"log"`` (records are
    :class:`logging.LogRecord`) or ``"event"`` (structlog event dicts);
    ``clock`` drives the rate limits' buckets.
    """

    __slots__ = ("_cache", "_limits", "_samples", "_topics", "decide")

    def __init__(
        self,
        kind: Kind,
        *,
        topic_map: object = None,
        sample: object = None,
        rate_limit: object = None,
        clock: Callable[[], float],
    ) -> None:
        self._topics = _Entries("topic_map", topic_map, _topic)
        self._samples = _Entries("sample", sample, _probability)
        # One bucket per entry, shared by every logger and level it matches.
        self._limits = _Entries(
            "rate_limit",
            rate_limit,
            lambda argument, value: TokenBucket(_rate(argument, value), clock),
        )
        self._cache: dict[tuple[object, object], Decision] = {}
        self.decide: Callable[[Any], Decision] = (
            self._decide_log if kind == "log" else self._decide_event
        )

    @classmethod
    def build(
        cls,
        kind: Kind,
        *,
        topic_map: object,
        sample: object,
        rate_limit: object,
        clock: Callable[[], float],
    ) -> RecordRouter | None:
        """A router, or None when none of the three options has an entry."""
        router = cls(kind, topic_map=topic_map, sample=sample, rate_limit=rate_limit, clock=clock)
        return router if router.active else None

    @property
    def active(self) -> bool:
        return bool(self._topics or self._samples or self._limits)

    def _decide_log(self, record: logging.LogRecord) -> Decision:
        key = (record.name, record.levelno)
        decision = self._cache.get(key)
        if decision is None:
            decision = self._remember(key, record.name, record.levelno)
        return decision

    def _decide_event(self, event: Mapping[str, Any]) -> Decision:
        logger = event.get("logger")
        level = event.get("level")
        # Only text is worth caching (and surely hashable); anything else matches
        # as if absent.
        key = (
            logger if isinstance(logger, str) else "",
            level.lower() if isinstance(level, str) else "",
        )
        decision = self._cache.get(key)
        if decision is None:
            decision = self._remember(key, key[0], level_number(key[1]))
        return decision

    def _remember(self, key: tuple[object, object], logger: str, level: int | None) -> Decision:
        decision = self._work_out(logger, level)
        cache = self._cache
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[key] = decision
        return decision

    def _work_out(self, logger: str, level: int | None) -> Decision:
        topic = self._topics.match(logger, level, threshold=True)
        sample = self._samples.match(logger, level, threshold=False)
        limit = self._limits.match(logger, level, threshold=False)
        if topic is None and sample is None and limit is None:
            return _NOTHING
        keep, sample_rule = (1.0, "") if sample is None else (sample[1], sample[0])
        bucket, limit_rule = (None, "") if limit is None else (limit[1], limit[0])
        return Decision(
            topic=None if topic is None else topic[1],
            keep=keep,
            sample_rule=sample_rule,
            bucket=bucket,
            limit_rule=limit_rule,
        )
