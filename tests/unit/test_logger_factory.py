"""KafkaLoggerFactory at the end of structlog chains, over the in-memory fake cluster."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from kafka_sink import DeadLetter, InvalidArgumentError, KafkaLoggerFactory, Sink
from kafka_sink.integrations.logger_factory import KafkaLogger
from kafka_sink.integrations.shaping import SENDER_THREAD_NAME
from tests.child import run_python
from tests.fakes import FakeCluster
from tests.unit.fake_sink import fake_sink, stored


@pytest.fixture
def shared() -> Iterator[tuple[Sink, FakeCluster]]:
    sink, cluster = fake_sink()
    yield sink, cluster
    sink.close(1.0)


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


LEVELS = [
    ("msg", None),
    ("log", None),
    ("debug", b"debug"),
    ("info", b"info"),
    ("warning", b"warning"),
    ("warn", b"warning"),
    ("error", b"error"),
    ("err", b"error"),
    ("exception", b"error"),
    ("failure", b"error"),
    ("critical", b"critical"),
    ("fatal", b"critical"),
]


def test_every_method_ships_the_message_as_it_is_with_its_level(
    shared: tuple[Sink, FakeCluster],
) -> None:
    sink, cluster = shared
    factory = KafkaLoggerFactory("logs", sink=sink, key="one-partition")
    logger = factory("billing")
    sent = []
    for number, (method, _) in enumerate(LEVELS):
        # Bytes go as they are (not even valid UTF-8 is required); text as UTF-8.
        message: bytes | str = (
            f"caf\u00e9 \u2713 {number}" if number % 2 else b"\xff\x00%d" % number
        )
        getattr(logger, method)(message)
        sent.append(message if isinstance(message, bytes) else message.encode("utf-8"))
    assert factory.flush(10) == 0
    got = stored(cluster)
    assert [r.value for r in got] == sent
    for record, (method, level) in zip(got, LEVELS, strict=True):
        assert record.headers.get("level") == level, method
        assert record.headers["logger"] == b"billing"
        assert "host" in record.headers
        assert record.key == b"one-partition"
    assert factory.metrics()["records_delivered"] == len(LEVELS)


def test_headers_static_per_call_and_without_the_standard_ones(
    shared: tuple[Sink, FakeCluster],
) -> None:
    sink, cluster = shared
    factory = KafkaLoggerFactory("logs", sink=sink, headers={"service": "billing"})
    factory().info(b"a", headers=[("request_id", "r-1")])
    bare = KafkaLoggerFactory(
        "logs", sink=sink, headers=[("service", b"billing")], standard_headers=False
    )
    bare("named").warning(b"b")
    sink.flush(10)
    first, second = sorted(stored(cluster), key=lambda r: r.value or b"")
    # No name was given: no logger header.
    assert list(first.headers) == ["level", "host", "service", "request_id"]
    assert first.headers["service"] == b"billing"
    assert first.headers["request_id"] == b"r-1"
    assert second.headers == {"service": b"billing"}


def test_keys_from_the_factory_from_the_call_or_none(shared: tuple[Sink, FakeCluster]) -> None:
    sink, cluster = shared
    logger = KafkaLoggerFactory("logs", sink=sink, key="svc")("x")
    logger.info(b"1")
    logger.info(b"2", key="u-2")
    logger.info(b"3", key=b"u-3")
    logger.info(b"4", key=None)
    keyless = KafkaLoggerFactory("logs", sink=sink)("x")
    keyless.info(b"5")
    sink.flush(10)
    keys = {r.value: r.key for r in stored(cluster)}
    assert keys == {b"1": b"svc", b"2": b"u-2", b"3": b"u-3", b"4": None, b"5": None}


def test_keyed_reads_the_key_and_headers_before_the_renderer_runs(
    shared: tuple[Sink, FakeCluster],
) -> None:
    sink, cluster = shared
    factory = KafkaLoggerFactory("logs", sink=sink, key="default")
    # ConsoleRenderer removes "event" (and the level) from the dict as it renders them.
    renderer = structlog.dev.ConsoleRenderer(colors=False)
    keyed = KafkaLoggerFactory.keyed(renderer, key="event", header_fields=["request_id", "n"])
    structlog.configure(
        processors=[structlog.processors.add_log_level, keyed],
        logger_factory=factory,
    )
    log = structlog.get_logger("app")
    log.info("login", request_id="r-1", n=7)
    log.info("", user="nobody")  # an empty event is still a key
    structlog.configure(processors=[keyed])
    structlog.get_logger().info(None)  # no event: the factory's key
    sink.flush(10)
    got = {r.key: r for r in stored(cluster)}
    assert set(got) == {b"login", b"", b"default"}
    assert got[b"login"].headers["request_id"] == b"r-1"
    assert got[b"login"].headers["n"] == b"7"
    assert b"login" in (got[b"login"].value or b"")
    assert "request_id" not in got[b""].headers
    assert repr(keyed).startswith("KafkaLoggerFactory.keyed(")


def test_with_structlog_configure_names_and_async_methods(
    shared: tuple[Sink, FakeCluster],
) -> None:
    sink, cluster = shared
    factory = KafkaLoggerFactory("logs", sink=sink)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,  # reads the logger's name
            structlog.processors.add_log_level,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(20),  # INFO and above
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    log = structlog.get_logger("billing")
    structlog.contextvars.bind_contextvars(request_id="r-9")
    log.debug("filtered out by structlog before any work")
    log.info("invoice_sent", invoice=42)

    async def main() -> None:
        await asyncio.gather(*(log.awarning("async", n=n) for n in range(5)))

    asyncio.run(main())
    sink.flush(10)
    docs = [json.loads(r.value or b"") for r in stored(cluster)]
    assert sorted(d["event"] for d in docs) == ["async"] * 5 + ["invoice_sent"]
    assert {d["logger"] for d in docs} == {"billing"}
    assert {d["request_id"] for d in docs} == {"r-9"}
    assert sorted(d["n"] for d in docs if d["event"] == "async") == list(range(5))
    assert {r.headers["level"] for r in stored(cluster)} == {b"info", b"warning"}


def test_loggers_are_cached_by_name(shared: tuple[Sink, FakeCluster]) -> None:
    sink, _ = shared
    factory = KafkaLoggerFactory("logs", sink=sink)
    assert factory("a") is factory("a")
    assert factory() is factory()
    assert factory("a") is not factory("b")
    unhashable = factory(["a"])  # structlog passes get_logger's arguments through
    assert isinstance(unhashable, KafkaLogger)
    assert unhashable.name == ["a"]
    assert repr(factory("a")) == "<KafkaLogger name='a' topic='logs'>"


def test_records_on_the_sender_thread_and_reentrant_ones_are_not_shipped(
    shared: tuple[Sink, FakeCluster],
) -> None:
    sink, cluster = shared
    letters: list[DeadLetter] = []
    factory = KafkaLoggerFactory("logs", sink=sink)
    logger = factory("loop")

    def dead_letter(letter: DeadLetter) -> None:
        letters.append(letter)
        logger.error(b"a record failed")  # would feed itself

    factory_with_letters = KafkaLoggerFactory("logs", sink=sink, dead_letter=dead_letter)
    thread = threading.Thread(target=logger.info, args=(b"loop",), name=SENDER_THREAD_NAME)
    thread.start()
    thread.join()
    logger.info(b"kept")
    factory_with_letters.close()
    factory_with_letters("x").info(b"late")  # fails as closed: the dead letter logs...
    factory.flush(10)
    # ...through another factory's logger, which ships it.
    assert sorted(r.value or b"" for r in stored(cluster)) == [b"a record failed", b"kept"]
    assert factory.metrics()["records_ignored"] == {"sender_thread": 1}
    (letter,) = letters
    assert (letter.reason, letter.value, letter.record) == ("closed", b"late", None)

    # The same factory's logger logging from its own dead-letter function: not again.
    reentrant: list[KafkaLogger] = []
    looping = KafkaLoggerFactory(
        "logs", sink=sink, dead_letter=lambda letter: reentrant[0].error(b"again")
    )
    reentrant.append(looping("x"))
    looping.close()
    looping("x").info(b"late")
    metrics = looping.metrics()
    assert metrics["records_failed"] == {"closed": 1}
    assert metrics["records_ignored"] == {"reentrant": 1}


def test_close_counts_later_records_and_closes_only_an_owned_sink(
    shared: tuple[Sink, FakeCluster],
) -> None:
    sink, _ = shared
    factory = KafkaLoggerFactory("logs", sink=sink)
    factory.close()
    factory.close()
    assert factory.closed
    factory("x").info(b"late")
    assert factory.metrics()["records_failed"] == {"closed": 1}
    assert not sink.closed
    owner = KafkaLoggerFactory("logs", "127.0.0.1:1")
    assert owner.owns_sink
    assert owner.sink.config.on_buffer_full == "drop_oldest"  # a logging sink's default
    owner.close(0)
    assert owner.sink.closed
    assert repr(owner) == "<KafkaLoggerFactory topic='logs'>"
    metrics = owner.metrics()
    assert set(metrics) == {
        "records_delivered",
        "records_failed",
        "records_failed_total",
        "records_ignored",
        "dead_letter_errors",
        "sink",
    }


def test_a_shared_sink_closed_by_its_owner_counts_records_as_closed(
    shared: tuple[Sink, FakeCluster],
) -> None:
    sink, _ = shared
    factory = KafkaLoggerFactory("logs", sink=sink)
    sink.close(1.0)
    factory("x").info(b"after the sink closed")
    assert factory.metrics()["records_failed"] == {"closed": 1}
    assert factory.flush(1) == 0


def test_bad_headers_are_reported_and_counted_not_raised(
    shared: tuple[Sink, FakeCluster], capsys: pytest.CaptureFixture[str]
) -> None:
    sink, cluster = shared
    factory = KafkaLoggerFactory("logs", sink=sink)
    factory().info(b"bad", headers=[("name", 42)])  # type: ignore[list-item]  # an int on purpose
    factory().info(b"good")
    sink.flush(10)
    assert [r.value for r in stored(cluster)] == [b"good"]
    assert factory.metrics()["records_failed"] == {"invalid": 1}
    assert "--- kafka_sink: a structlog event could not be shipped ---" in capsys.readouterr().err


def test_a_message_that_is_not_bytes_or_text_is_shipped_as_its_text(
    shared: tuple[Sink, FakeCluster],
) -> None:
    sink, cluster = shared
    logger = KafkaLoggerFactory("logs", sink=sink)()
    logger.info({"event": "unrendered"})  # type: ignore[arg-type]  # not bytes or str on purpose
    logger.info(bytearray(b"array"))  # type: ignore[arg-type]  # not bytes or str on purpose
    sink.flush(10)
    assert sorted(r.value or b"" for r in stored(cluster)) == [b"array", b"{'event': 'unrendered'}"]


@pytest.mark.parametrize(
    ("arguments", "argument"),
    [
        ({"topic": ""}, "topic"),
        ({"topic": "no spaces"}, "topic"),
        ({"key": 42}, "key"),
        ({"standard_headers": "yes"}, "standard_headers"),
        ({"dead_letter": "print"}, "dead_letter"),
        ({"partitioner": "random"}, "partitioner"),
        ({"headers": "level=info"}, "headers"),
        ({"lingerms": 5}, "lingerms"),
    ],
)
def test_arguments_are_checked(arguments: dict[str, Any], argument: str) -> None:
    options: dict[str, Any] = {"topic": "logs", "bootstrap_servers": "127.0.0.1:1", **arguments}
    with pytest.raises(InvalidArgumentError) as info:
        KafkaLoggerFactory(**options)
    assert info.value.argument == argument


def test_a_sink_and_brokers_or_a_partitioner_do_not_go_together(
    shared: tuple[Sink, FakeCluster],
) -> None:
    sink, _ = shared
    with pytest.raises(InvalidArgumentError, match="either bootstrap_servers or sink"):
        KafkaLoggerFactory("logs", "127.0.0.1:1", sink=sink)
    with pytest.raises(InvalidArgumentError, match="with sink=, give it to that Sink"):
        KafkaLoggerFactory("logs", sink=sink, partitioner="sticky")
    with pytest.raises(InvalidArgumentError, match="with sink=, configure that Sink"):
        KafkaLoggerFactory("logs", sink=sink, linger_ms=5)
    with pytest.raises(InvalidArgumentError, match="did you mean 'linger_ms'"):
        KafkaLoggerFactory("logs", "127.0.0.1:1", lingerms=5)
    sticky = KafkaLoggerFactory("logs", "127.0.0.1:1", partitioner="round_robin")
    sticky.close(0)
    with pytest.raises(InvalidArgumentError, match="renderer"):
        KafkaLoggerFactory.keyed("JSONRenderer")  # type: ignore[arg-type]  # a name, not a renderer
    with pytest.raises(InvalidArgumentError, match="header_fields"):
        KafkaLoggerFactory.keyed(structlog.processors.JSONRenderer(), header_fields="id")


def test_sink_options_come_from_arguments_mappings_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_SINK_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("KAFKA_SINK_LINGER_MS", "25")
    factory = KafkaLoggerFactory("logs", sink_options={"batch.size": 4096}, acks=1)
    try:
        config = factory.sink.config
        assert (config.linger_ms, config.batch_size, config.acks) == (25, 4096, 1)
    finally:
        factory.close(0)


def test_a_forked_child_ships_its_own_records_and_counts_afresh() -> None:
    code = """
        import os
        import kafka_sink
        from tests.unit.fake_sink import fake_sink, stored

        sink, cluster = fake_sink()
        factory = kafka_sink.KafkaLoggerFactory("logs", sink=sink)
        logger = factory("parent")
        logger.info(b"before the fork")
        assert factory.flush(10) == 0
        pid = os.fork()
        if pid == 0:
            ok = factory.metrics()["records_delivered"] == 0
            logger.info(b"from the child")
            ok = ok and factory.flush(10) == 0
            ok = ok and factory.metrics()["records_delivered"] == 1
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), factory.metrics()["records_delivered"])
        sink.close(1)
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1"]


def test_imports_and_works_without_structlog() -> None:
    code = """
        import sys
        sys.modules["structlog"] = None  # as if it were not installed
        import kafka_sink
        from tests.unit.fake_sink import fake_sink, stored

        sink, cluster = fake_sink()
        factory = kafka_sink.KafkaLoggerFactory("logs", sink=sink)
        factory("plain").warning('{"event": "no structlog here"}')
        factory.flush(10)
        print([r.value for r in stored(cluster)])
        sink.close(1)
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == """[b'{"event": "no structlog here"}']"""
