"""topic_map, topic_field, sample and rate_limit on KafkaHandler and KafkaProcessor."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pluggy
import pytest

from kafka_sink import InvalidArgumentError, KafkaHandler, KafkaProcessor, Sink, hookimpl
from kafka_sink.integrations import routing
from kafka_sink.integrations.routing import RecordRouter, TokenBucket
from tests.fakes import FakeCluster
from tests.unit.fake_sink import fake_sink, stored

TOPICS = ("logs", "errors", "warnings", "audit", "audit-login", "chosen", "plugin")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cluster_sink() -> Iterator[tuple[Sink, FakeCluster]]:
    sink, cluster = fake_sink(partitions=1, topics=TOPICS)
    yield sink, cluster
    sink.close(1.0)


@pytest.fixture
def loggers() -> Iterator[Callable[[logging.Handler, str], logging.Logger]]:
    made: list[tuple[logging.Logger, logging.Handler]] = []
    prefix = f"t{uuid.uuid4().hex[:6]}"

    def make(handler: logging.Handler, name: str) -> logging.Logger:
        logger = logging.getLogger(f"{prefix}.{name}" if name else prefix)
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        if handler not in logger.handlers:
            logger.addHandler(handler)
        made.append((logger, handler))
        return logger

    make.prefix = prefix  # type: ignore[attr-defined]  # read back by the tests
    yield make
    for logger, handler in made:
        logger.removeHandler(handler)
        handler.close()


def messages(cluster: FakeCluster, topic: str) -> list[str]:
    return [json.loads(r.value or b"")["message"] for r in stored(cluster, topic)]


# -- topic_map ----------------------------------------------------------------------------


def test_levels_are_thresholds_and_loggers_cover_their_descendants(
    cluster_sink: tuple[Sink, FakeCluster], loggers: Any
) -> None:
    sink, cluster = cluster_sink
    prefix = loggers.prefix
    handler = KafkaHandler(
        "logs",
        sink=sink,
        entry_points=False,
        topic_map={
            "WARNING": "warnings",
            "error": "errors",  # any case
            f"{prefix}.audit": "audit",
            f"{prefix}.audit.login": "audit-login",
        },
    )
    app = loggers(handler, "app")
    audit = loggers(handler, "audit")
    login = loggers(handler, "audit.login.sso")
    auditor = loggers(handler, "auditor")
    app.info("info")
    app.warning("warning")
    app.error("error")
    app.critical("critical")
    audit.debug("audit debug")
    audit.error("audit error")  # the logger wins over the level
    login.info("login")  # the longest logger name wins
    auditor.info("auditor")  # a prefix counts only at a dot
    handler.flush(10)
    assert messages(cluster, "logs") == ["info", "auditor"]
    assert messages(cluster, "warnings") == ["warning"]
    assert messages(cluster, "errors") == ["error", "critical"]
    assert messages(cluster, "audit") == ["audit debug", "audit error"]
    assert messages(cluster, "audit-login") == ["login"]


def test_level_numbers_and_the_star(cluster_sink: tuple[Sink, FakeCluster], loggers: Any) -> None:
    sink, cluster = cluster_sink
    handler = KafkaHandler(
        "logs", sink=sink, entry_points=False, topic_map={logging.ERROR: "errors", "*": "chosen"}
    )
    log = loggers(handler, "x")
    log.info("anything")
    log.error("bad")
    handler.flush(10)
    assert messages(cluster, "chosen") == ["anything"]
    assert messages(cluster, "errors") == ["bad"]
    assert messages(cluster, "logs") == []


class _PluginRouter:
    @hookimpl
    def kafka_sink_record_topic(self, kind: str, options: Mapping[str, Any]) -> Any:
        return lambda record: "plugin" if getattr(record, "by_plugin", False) else None


def test_topic_field_wins_then_the_plugin_then_the_map(
    cluster_sink: tuple[Sink, FakeCluster], loggers: Any
) -> None:
    sink, cluster = cluster_sink
    handler = KafkaHandler(
        "logs",
        sink=sink,
        entry_points=False,
        plugins=[_PluginRouter()],
        topic_map={"ERROR": "errors"},
        topic_field="kafka_topic",
    )
    log = loggers(handler, "x")
    log.error("field", extra={"kafka_topic": "chosen", "by_plugin": True})
    log.error("plugin", extra={"by_plugin": True})
    log.error("map")
    log.error("not text", extra={"kafka_topic": 42})
    log.info("empty", extra={"kafka_topic": ""})
    handler.flush(10)
    assert messages(cluster, "chosen") == ["field"]
    assert messages(cluster, "plugin") == ["plugin"]
    assert messages(cluster, "errors") == ["map", "not text"]
    assert messages(cluster, "logs") == ["empty"]


@pytest.mark.parametrize(
    ("options", "argument", "problem"),
    [
        ({"topic_map": ["ERROR"]}, "topic_map", "must be a mapping"),
        ({"topic_map": {"ERROR": "no spaces"}}, "topic_map['ERROR']", "may contain only"),
        ({"topic_map": {"WARN": "a", "WARNING": "b"}}, "topic_map", "name the same level"),
        ({"topic_map": {"": "a"}}, "topic_map", "keys must be level names"),
        ({"topic_map": {True: "a"}}, "topic_map", "keys must be level names"),
        ({"sample": {"DEBUG": 1.5}}, "sample['DEBUG']", "from 0 to 1"),
        ({"sample": {"DEBUG": "half"}}, "sample['DEBUG']", "from 0 to 1"),
        ({"rate_limit": {"INFO": 0}}, "rate_limit['INFO']", "per second > 0"),
        ({"rate_limit": {"INFO": float("inf")}}, "rate_limit['INFO']", "per second > 0"),
        ({"topic_field": ""}, "topic_field", "must be a non-empty name"),
    ],
)
def test_bad_entries_are_named(options: dict[str, Any], argument: str, problem: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        KafkaHandler("logs", "kafka1:9092", **options)
    assert caught.value.argument == argument
    assert problem in str(caught.value)


# -- sampling and rate limits ---------------------------------------------------------------


def test_sampling_per_level_with_a_logger_exempt(
    cluster_sink: tuple[Sink, FakeCluster], loggers: Any
) -> None:
    sink, cluster = cluster_sink
    prefix = loggers.prefix
    handler = KafkaHandler(
        "logs",
        sink=sink,
        entry_points=False,
        sample={"DEBUG": 0.0, "INFO": 0.5, f"{prefix}.keep": 1.0},
    )
    noisy = loggers(handler, "noisy")
    kept = loggers(handler, "keep.child")
    for i in range(2000):
        noisy.info("info %d", i)
    for i in range(10):
        noisy.debug("debug %d", i)
        kept.debug("kept %d", i)
        noisy.warning("warning %d", i)  # no entry for WARNING: all shipped
    handler.flush(10)
    metrics = handler.metrics()
    info_out = metrics["records_sampled_out"]["INFO"]
    assert metrics["records_sampled_out"]["DEBUG"] == 10
    assert 800 < info_out < 1200  # binomial(2000, 0.5): 22 standard deviations wide
    shipped = messages(cluster, "logs")
    assert len(shipped) == 2000 - info_out + 10 + 10
    assert sum(m.startswith("kept") for m in shipped) == 10
    assert not any(m.startswith("debug") for m in shipped)
    assert metrics["records_delivered"] == len(shipped)


def test_a_record_left_out_is_never_serialised(
    cluster_sink: tuple[Sink, FakeCluster], loggers: Any
) -> None:
    sink, _ = cluster_sink
    handler = KafkaHandler("logs", sink=sink, entry_points=False, sample={"DEBUG": 0})
    log = loggers(handler, "x")
    log.debug("%d", "not a number")  # getMessage() would raise if it were serialised
    handler.flush(10)
    metrics = handler.metrics()
    assert metrics["records_failed"] == {}
    assert metrics["records_sampled_out"] == {"DEBUG": 1}


def test_rate_limit_is_a_token_bucket_per_entry(
    cluster_sink: tuple[Sink, FakeCluster], loggers: Any
) -> None:
    sink, cluster = cluster_sink
    clock = FakeClock()
    prefix = loggers.prefix
    handler = KafkaHandler(
        "logs",
        sink=sink,
        entry_points=False,
        rate_limit={"INFO": 3, f"{prefix}.chatty": 1},
        clock=clock,
    )
    a = loggers(handler, "a")
    b = loggers(handler, "b")
    chatty = loggers(handler, "chatty")
    for i in range(3):
        a.info("a %d", i)
    b.info("b limited")  # the INFO bucket is shared by every logger
    chatty.info("chatty 0")
    chatty.error("chatty limited")  # a logger's entry covers every level
    a.error("error")  # no entry: not limited
    clock.now += 0.5  # half a second: 1.5 INFO tokens, 0.5 chatty token
    a.info("a 3")
    b.info("b limited too")
    chatty.info("chatty limited too")
    clock.now += 10  # the buckets hold one second's worth at most
    for i in range(5):
        b.info("b %d", i)
    handler.flush(10)
    shipped = messages(cluster, "logs")
    assert shipped == ["a 0", "a 1", "a 2", "chatty 0", "error", "a 3", "b 0", "b 1", "b 2"]
    assert handler.metrics()["records_rate_limited"] == {
        "INFO": 1 + 1 + 2,
        f"{prefix}.chatty": 2,
    }


def test_sampling_comes_before_the_rate_limit(
    cluster_sink: tuple[Sink, FakeCluster], loggers: Any
) -> None:
    sink, _ = cluster_sink
    handler = KafkaHandler(
        "logs",
        sink=sink,
        entry_points=False,
        sample={"INFO": 0.0},
        rate_limit={"INFO": 1},
        clock=FakeClock(),
    )
    log = loggers(handler, "x")
    for _ in range(5):
        log.info("x")
    metrics = handler.metrics()
    assert metrics["records_sampled_out"] == {"INFO": 5}
    assert metrics["records_rate_limited"] == {}


def test_routing_makes_no_pluggy_call_and_works_out_each_pair_once(
    cluster_sink: tuple[Sink, FakeCluster], loggers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink, cluster = cluster_sink
    handler = KafkaHandler(
        "logs",
        sink=sink,
        entry_points=False,
        topic_map={"ERROR": "errors"},
        sample={"DEBUG": 0.5},
        rate_limit={"INFO": 10_000},
    )
    log = loggers(handler, "x")
    hook_calls: list[str] = []
    original = pluggy.HookCaller.__call__

    def counting(self: pluggy.HookCaller, *args: Any, **kwargs: Any) -> Any:
        hook_calls.append(self.name)
        return original(self, *args, **kwargs)

    worked_out: list[tuple[str, int | None]] = []
    work_out = RecordRouter._work_out

    def spy(self: RecordRouter, logger: str, level: int | None) -> routing.Decision:
        worked_out.append((logger, level))
        return work_out(self, logger, level)

    monkeypatch.setattr(pluggy.HookCaller, "__call__", counting)
    monkeypatch.setattr(RecordRouter, "_work_out", spy)
    for i in range(100):
        log.info("i %d", i)
        log.error("e %d", i)
    handler.flush(10)
    assert hook_calls == []
    assert worked_out == [(log.name, logging.INFO), (log.name, logging.ERROR)]
    assert len(messages(cluster, "errors")) == 100


def test_the_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routing, "_CACHE_MAX", 16)
    router = RecordRouter("log", topic_map={"ERROR": "errors"}, clock=FakeClock())
    for i in range(100):
        record = logging.LogRecord(f"made.up.{i}", logging.ERROR, __file__, 1, "m", None, None)
        assert router.decide(record).topic == "errors"
        assert len(router._cache) <= 16


def test_no_entries_means_no_router() -> None:
    assert (
        RecordRouter.build("log", topic_map={}, sample=None, rate_limit={}, clock=FakeClock())
        is None
    )


def test_token_bucket() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, clock)
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now += 0.25
    assert not bucket.take()
    clock.now += 0.25
    assert bucket.take()
    slow = TokenBucket(0.5, clock)  # holds one token, refills one per two seconds
    assert [slow.take(), slow.take()] == [True, False]
    clock.now += 1.9
    assert not slow.take()
    clock.now += 0.1
    assert slow.take()
    clock.now -= 5  # a clock that steps back adds nothing
    assert not slow.take()


# -- the structlog processor --------------------------------------------------------------


def test_the_processor_routes_and_samples_events(cluster_sink: tuple[Sink, FakeCluster]) -> None:
    sink, cluster = cluster_sink
    clock = FakeClock()
    processor = KafkaProcessor(
        "logs",
        sink=sink,
        entry_points=False,
        contextvars=False,
        topic_map={"error": "errors", "app.audit": "audit"},
        topic_field="topic",
        sample={"debug": 0},
        rate_limit={"app.chatty": 1},
        clock=clock,
    )
    processor(None, "info", {"event": "plain"})
    processor(None, "error", {"event": "failed"})  # the level its method implies
    processor(None, "info", {"event": "who", "logger": "app.audit.login"})
    processor(None, "info", {"event": "mine", "topic": "chosen"})
    processor(None, "debug", {"event": "dropped"})
    processor(None, "info", {"event": "chatty", "logger": "app.chatty"})
    processor(None, "info", {"event": "chatty again", "logger": "app.chatty"})
    processor(None, "info", {"event": "odd", "logger": ["not", "text"], "level": 5})
    processor.flush(10)

    def events(topic: str) -> list[str]:
        return [json.loads(r.value or b"")["event"] for r in stored(cluster, topic)]

    assert events("logs") == ["plain", "chatty", "odd"]
    assert events("errors") == ["failed"]
    assert events("audit") == ["who"]
    assert events("chosen") == ["mine"]
    metrics = processor.metrics()
    assert metrics["records_sampled_out"] == {"DEBUG": 1}
    assert metrics["records_rate_limited"] == {"app.chatty": 1}
    processor.close(0.0)
