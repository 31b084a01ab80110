"""KafkaHandler over a real Sink and sender thread, on the in-memory fake cluster."""

from __future__ import annotations

import json
import logging
import socket
import threading
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pluggy
import pytest

from kafka_sink import DeadLetter, InvalidArgumentError, KafkaHandler, Sink, hookimpl
from kafka_sink.integrations.shaping import SENDER_THREAD_NAME
from kafka_sink.producer.partitioner import partition_for_key
from tests.child import run_python
from tests.unit.fake_sink import fake_sink, stored

MakeLogger = Callable[[logging.Handler], logging.Logger]


@pytest.fixture
def make_logger() -> Iterator[MakeLogger]:
    """A fresh logger (DEBUG, not propagating) with the handler; both cleaned up after."""
    made: list[tuple[logging.Logger, logging.Handler]] = []

    def make(handler: logging.Handler) -> logging.Logger:
        logger = logging.getLogger(f"test.handler.{uuid.uuid4().hex[:8]}")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        made.append((logger, handler))
        return logger

    yield make
    for logger, handler in made:
        logger.removeHandler(handler)
        handler.close()


@pytest.fixture
def shared() -> Iterator[tuple[Sink, Any]]:
    sink, cluster = fake_sink()
    yield sink, cluster
    sink.close(1.0)


class _Captured(logging.Handler):
    """Keeps the records it sees (to compare with what reached Kafka)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_record_arrives_with_value_key_headers_and_timestamp(
    shared: tuple[Sink, Any], make_logger: MakeLogger
) -> None:
    sink, cluster = shared
    handler = KafkaHandler(
        "logs", sink=sink, key="user", header_fields=["request"], entry_points=False
    )
    log = make_logger(handler)
    captured = _Captured()
    log.addHandler(captured)
    log.warning("slow %s", "query", extra={"user": "u-1", "request": "r-9", "rows": 3})
    handler.flush(10)
    (record,) = captured.records
    (got,) = stored(cluster)
    doc = json.loads(got.value or b"")
    assert doc["message"] == "slow query"
    assert doc["level"] == "WARNING"
    assert doc["logger"] == log.name
    assert doc["rows"] == 3
    assert got.key == b"u-1"
    assert got.partition == partition_for_key(b"u-1", 3)
    assert got.timestamp == int(record.created * 1000)
    assert got.headers == {
        "level": b"WARNING",
        "logger": log.name.encode(),
        "host": socket.gethostname().encode(),
        "request": b"r-9",
    }
    metrics = handler.metrics()
    assert metrics["records_delivered"] == 1
    assert metrics["records_failed_total"] == 0
    assert metrics["sink"]["records_sent"] == 1


def test_exceptions_and_stack_info_are_serialised(
    shared: tuple[Sink, Any], make_logger: MakeLogger
) -> None:
    sink, cluster = shared
    handler = KafkaHandler("logs", sink=sink, entry_points=False)
    log = make_logger(handler)
    empty: dict[str, object] = {}
    try:
        empty["missing"]
    except KeyError:
        log.exception("lookup failed", stack_info=True)
    handler.flush(10)
    (got,) = stored(cluster)
    doc = json.loads(got.value or b"")
    assert doc["level"] == "ERROR"
    assert doc["exception"].splitlines()[-1] == "KeyError: 'missing'"
    assert doc["stack"].startswith("Stack (most recent call last):")


def test_without_a_key_there_is_none(shared: tuple[Sink, Any], make_logger: MakeLogger) -> None:
    sink, cluster = shared
    handler = KafkaHandler("logs", sink=sink, entry_points=False, standard_headers=False)
    log = make_logger(handler)
    log.info("one", extra={"user": "u-1"})
    handler.flush(10)
    (got,) = stored(cluster)
    assert got.key is None
    assert got.headers == {}


class _AuditRouter:
    @hookimpl
    def kafka_sink_record_topic(self, kind: str, options: Mapping[str, Any]) -> Any:
        assert options["topic"] == "logs"
        return lambda record: "audit" if getattr(record, "audit", False) else None


def test_a_topic_router_plugin(make_logger: MakeLogger) -> None:
    sink, cluster = fake_sink(topics=("logs", "audit"))
    try:
        handler = KafkaHandler("logs", sink=sink, plugins=[_AuditRouter()], entry_points=False)
        log = make_logger(handler)
        log.info("ordinary")
        log.info("who did what", extra={"audit": True})
        handler.flush(10)
        assert [json.loads(r.value or b"")["message"] for r in stored(cluster, "audit")] == [
            "who did what"
        ]
        assert [json.loads(r.value or b"")["message"] for r in stored(cluster, "logs")] == [
            "ordinary"
        ]
    finally:
        sink.close(1.0)


def test_text_serializer_uses_the_handlers_formatter(
    shared: tuple[Sink, Any], make_logger: MakeLogger
) -> None:
    sink, cluster = shared
    handler = KafkaHandler("logs", sink=sink, serializer="text", entry_points=False)
    handler.setFormatter(logging.Formatter("%(levelname)s:%(message)s"))
    log = make_logger(handler)
    log.error("disk %d%% full", 91)
    handler.setFormatter(None)  # back to the serializer's own default format
    log.error("second")
    handler.flush(10)
    first, second = sorted((r.value or b"" for r in stored(cluster)), key=lambda v: b"second" in v)
    assert first == b"ERROR:disk 91% full"
    assert second.endswith(f" ERROR {log.name}: second".encode())


def test_levels_and_filters_work_as_for_any_handler(
    shared: tuple[Sink, Any], make_logger: MakeLogger
) -> None:
    sink, cluster = shared
    handler = KafkaHandler("logs", sink=sink, level="WARNING", entry_points=False)
    handler.addFilter(lambda record: "secret" not in record.getMessage())
    log = make_logger(handler)
    log.info("too low")
    log.warning("the secret is 42")
    log.warning("kept")
    handler.flush(10)
    assert [json.loads(r.value or b"")["message"] for r in stored(cluster)] == ["kept"]


def test_many_threads_each_record_once(shared: tuple[Sink, Any], make_logger: MakeLogger) -> None:
    sink, cluster = shared
    handler = KafkaHandler("logs", sink=sink, entry_points=False)
    log = make_logger(handler)
    start = threading.Barrier(8)

    def work(thread: int) -> None:
        start.wait()
        for i in range(300):
            log.info("t%d-%d", thread, i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handler.flush(30)
    messages = sorted(json.loads(r.value or b"")["message"] for r in stored(cluster))
    assert messages == sorted(f"t{t}-{i}" for t in range(8) for i in range(300))
    assert handler.metrics()["records_delivered"] == 2400


# -- recursion ------------------------------------------------------------------------


def test_the_librarys_own_loggers_never_reach_kafka(shared: tuple[Sink, Any]) -> None:
    sink, cluster = shared
    handler = KafkaHandler("logs", sink=sink, entry_points=False)
    loggers = [logging.getLogger(name) for name in ("kafka_sink", "kafka_sink.net", "kafka_sinks")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.addHandler(handler)
            logger.setLevel(logging.DEBUG)
            logger.debug("from %s", logger.name)
        handler.flush(10)
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
        handler.close()
    # "kafka_sinks" is somebody else's logger.
    assert [json.loads(r.value or b"")["message"] for r in stored(cluster)] == ["from kafka_sinks"]
    # Three: the record of kafka_sink.net also propagates to the handler on kafka_sink.
    assert handler.metrics()["records_ignored"] == {"library": 3}


def test_records_logged_on_the_sender_thread_are_not_shipped(
    shared: tuple[Sink, Any], make_logger: MakeLogger
) -> None:
    sink, cluster = shared
    told = threading.Event()
    threads: list[str] = []

    def dead_letter(letter: DeadLetter) -> None:
        # Runs on the sender thread: what it logs must not come back.
        threads.append(threading.current_thread().name)
        log.error("could not deliver: %s", letter.reason)
        told.set()

    handler = KafkaHandler("logs", sink=sink, dead_letter=dead_letter, entry_points=False)
    log = make_logger(handler)
    log.info("x" * 2_000_000)  # larger than max_request_size: fails on the sender thread
    assert told.wait(10)
    log.info("after")
    handler.flush(10)
    assert threads == [SENDER_THREAD_NAME]  # the name the handler checks is the real one
    assert [json.loads(r.value or b"")["message"] for r in stored(cluster)] == ["after"]
    metrics = handler.metrics()
    assert metrics["records_ignored"] == {"sender_thread": 1}
    assert metrics["records_failed"] == {"too_large": 1}


_CHATTY_LOGGER = "test.handler.chatty"


class _ChattySerializer:
    """A serializer that logs while it works: that record must not loop back."""

    @hookimpl
    def kafka_sink_log_serializer(self, name: str, options: Mapping[str, Any]) -> Any:
        if name != "chatty":
            return None

        def serialize(record: logging.LogRecord) -> bytes:
            logging.getLogger(_CHATTY_LOGGER).warning("serializing %s", record.getMessage())
            return record.getMessage().encode()

        return serialize


def test_a_record_logged_while_shipping_is_not_shipped(shared: tuple[Sink, Any]) -> None:
    sink, cluster = shared
    handler = KafkaHandler(
        "logs", sink=sink, serializer="chatty", plugins=[_ChattySerializer()], entry_points=False
    )
    log = logging.getLogger(_CHATTY_LOGGER)
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("outer")
        handler.flush(10)
    finally:
        log.removeHandler(handler)
        handler.close()
    assert [r.value for r in stored(cluster)] == [b"outer"]
    assert handler.metrics()["records_ignored"] == {"reentrant": 1}


def test_the_hot_path_makes_no_pluggy_call(
    shared: tuple[Sink, Any], make_logger: MakeLogger, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink, cluster = shared
    handler = KafkaHandler("logs", sink=sink, key="user", header_fields=["r"], entry_points=False)
    log = make_logger(handler)
    calls: list[str] = []
    original = pluggy.HookCaller.__call__

    def counting(self: pluggy.HookCaller, *args: Any, **kwargs: Any) -> Any:
        calls.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pluggy.HookCaller, "__call__", counting)
    for i in range(50):
        log.info("record %d", i, extra={"user": "u", "r": i})
    handler.flush(10)
    assert calls == []
    assert len(stored(cluster)) == 50


# -- failures -------------------------------------------------------------------------


def test_bad_input_is_reported_per_record_and_good_records_get_through(
    shared: tuple[Sink, Any], make_logger: MakeLogger, capsys: pytest.CaptureFixture[str]
) -> None:
    sink, cluster = shared
    letters: list[DeadLetter] = []
    handler = KafkaHandler("logs", sink=sink, dead_letter=letters.append, entry_points=False)
    log = make_logger(handler)

    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    log.info("good 1")
    log.info("format mismatch %d %d", 1)  # noqa: PLE1206 - the mistake under test
    log.info("good 2", extra={"thing": Unprintable(), "raw": b"\xff\xfe", "s": {1}})
    log.info(b"bytes \xff message")
    log.info("surrogate caf\udce9")
    log.info("too large %s", "x" * 5 * 1024 * 1024)
    log.info("good 3")
    handler.flush(10)
    values = [r.value or b"" for r in stored(cluster)]
    messages = [json.loads(v.decode("utf-8"))["message"] for v in values]  # all valid UTF-8
    assert sorted(messages) == sorted(
        ["good 1", "good 2", "b'bytes \\xff message'", "surrogate caf\\xe9", "good 3"]
    )
    good_2 = json.loads(next(v for v in values if b'"good 2"' in v))
    assert good_2["thing"] == "<unrepresentable Unprintable object>"
    assert good_2["raw"] == "\\xff\\xfe"
    err = capsys.readouterr().err
    assert err.count("--- Logging error ---") == 1
    assert "not enough arguments for format string" in err
    metrics = handler.metrics()
    assert metrics["records_failed"] == {"serialize": 1, "too_large": 1}
    assert metrics["records_delivered"] == 5
    by_reason = {letter.reason: letter for letter in letters}
    assert set(by_reason) == {"serialize", "too_large"}
    assert isinstance(by_reason["serialize"].error, TypeError)
    assert isinstance(by_reason["serialize"].record, logging.LogRecord)
    assert by_reason["serialize"].record.msg == "format mismatch %d %d"
    assert by_reason["serialize"].value is None
    too_large = by_reason["too_large"]
    assert too_large.topic == "logs"
    assert too_large.value is not None
    assert len(too_large.value) > 5 * 1024 * 1024


def test_handle_error_stays_quiet_without_raise_exceptions(
    shared: tuple[Sink, Any],
    make_logger: MakeLogger,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink, _ = shared
    monkeypatch.setattr(logging, "raiseExceptions", False)
    handler = KafkaHandler("logs", sink=sink, entry_points=False)
    log = make_logger(handler)
    log.info("%s %s", "only one")  # noqa: PLE1206 - the mistake under test
    assert capsys.readouterr().err == ""
    assert handler.metrics()["records_failed"] == {"serialize": 1}


def test_a_dead_letter_function_that_raises_is_counted(
    shared: tuple[Sink, Any], make_logger: MakeLogger
) -> None:
    sink, _ = shared

    def broken(letter: DeadLetter) -> None:
        raise RuntimeError("dead letter bug")

    handler = KafkaHandler("logs", sink=sink, dead_letter=broken, entry_points=False)
    log = make_logger(handler)
    logging.raiseExceptions, saved = False, logging.raiseExceptions
    try:
        log.info("%d", "not a number")
    finally:
        logging.raiseExceptions = saved
    assert handler.metrics()["dead_letter_errors"] == 1


def test_after_close_records_are_counted_not_raised(
    shared: tuple[Sink, Any], make_logger: MakeLogger, capsys: pytest.CaptureFixture[str]
) -> None:
    sink, cluster = shared
    handler = KafkaHandler("logs", sink=sink, entry_points=False)
    log = make_logger(handler)
    handler.close()
    handler.close()  # idempotent
    log.info("too late")
    assert not sink.closed  # shared: its owner closes it
    assert handler.metrics()["records_failed"] == {"closed": 1}
    assert capsys.readouterr().err == ""
    assert stored(cluster) == []


def test_an_owned_sink_is_closed_with_the_handler() -> None:
    handler = KafkaHandler("logs", "127.0.0.1:1", linger_ms=50, entry_points=False)
    assert handler.sink.config.on_buffer_full == "drop_oldest"
    assert handler.sink.config.max_block_ms == 100.0
    assert handler.sink.config.linger_ms == 50.0
    handler.close()
    assert handler.sink.closed


def test_brokers_down_emit_stays_bounded_and_drops_are_counted(make_logger: MakeLogger) -> None:
    limit = 1_000_000
    with socket.socket() as dead:  # bound, never listening: every connection is refused
        dead.bind(("127.0.0.1", 0))
        handler = KafkaHandler(
            "logs",
            f"127.0.0.1:{dead.getsockname()[1]}",
            buffer_memory=limit,
            delivery_timeout_ms=600_000,
            entry_points=False,
        )
        log = make_logger(handler)
        payload = "x" * 1000
        total = 20_000  # about 20 times the buffer
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            for i in range(total):
                log.info("%d %s", i, payload)
                if i % 1000 == 0:
                    assert handler.sink.metrics()["buffer_bytes_used"] <= limit
            growth = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert growth < 8 * limit  # bounded by the buffer, not by the 20 MB logged
        handler.close(timeout=0.5)
        sender = handler.sink._thread  # white-box: once it ended, every outcome is in
        assert sender is not None
        sender.join(10)
    metrics = handler.metrics()
    failed = metrics["records_failed"]
    assert metrics["records_delivered"] == 0
    assert failed["buffer_full"] > total // 2
    assert sum(failed.values()) == total  # every record accounted for, with its reason
    assert set(failed) <= {"buffer_full", "closed"}


def test_shutdown_waits_once_when_kafka_is_unreachable(
    make_logger: MakeLogger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # logging.shutdown() calls flush() and then close(): when the flush used
    # its whole bound and records are still there, close() does not wait again.
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        servers = f"127.0.0.1:{dead.getsockname()[1]}"
        stalled = KafkaHandler("logs", servers, close_timeout_ms=200, entry_points=False)
        short = KafkaHandler("logs", servers, close_timeout_ms=200, entry_points=False)
        closes: list[tuple[str, float | None]] = []
        for name, handler in (("stalled", stalled), ("short", short)):
            sink_close = handler.sink.close

            def spy(
                timeout: float | None = None, name: str = name, close: Any = sink_close
            ) -> None:
                closes.append((name, timeout))
                close(timeout)

            monkeypatch.setattr(handler.sink, "close", spy)
            make_logger(handler).info("never delivered")
        stalled.flush()  # the default bound: close_timeout_ms
        short.flush(0.01)  # a short wait of the caller's choosing says nothing
        stalled.close()
        short.close()
    assert closes == [("stalled", 0.0), ("short", None)]
    sender = stalled.sink._thread  # white-box: once it ended, every outcome is in
    assert sender is not None
    sender.join(10)
    assert stalled.metrics()["records_failed"] == {"closed": 1}


# -- arguments ------------------------------------------------------------------------


@pytest.fixture
def idle_sink() -> Iterator[Sink]:
    sink = Sink("127.0.0.1:1")
    yield sink
    sink.close(0)


@pytest.mark.parametrize(
    ("arguments", "argument"),
    [
        ({}, "bootstrap_servers"),
        ({"bootstrap_servers": "h:1", "lingerms": 5}, "lingerms"),
        ({"bootstrap_servers": "h:1", "acks": 7}, "acks"),
        ({"sink": "SINK", "linger_ms": 5}, "linger_ms"),
        ({"sink": "SINK", "bootstrap_servers": "h:1"}, "bootstrap_servers"),
        ({"sink": "SINK", "partitioner": "sticky"}, "partitioner"),
        ({"sink": "h:1"}, "sink"),
        ({"sink": "SINK", "topic": "bad topic"}, "topic"),
        ({"sink": "SINK", "serializer": "avro"}, "serializer"),
        ({"sink": "SINK", "serializer": ""}, "serializer"),
        ({"sink": "SINK", "serializer_options": {"indent": 2}}, "serializer_options.indent"),
        ({"sink": "SINK", "serializer_options": ["fields"]}, "serializer_options"),
        ({"sink": "SINK", "key": "user", "key_function": "attribute"}, "key"),
        ({"sink": "SINK", "key_function": "tenant"}, "key_function"),
        ({"sink": "SINK", "key_options": {"attribute": "a"}}, "key_options"),
        ({"sink": "SINK", "header_fields": "request"}, "header_fields"),
        ({"sink": "SINK", "standard_headers": "no"}, "standard_headers"),
        ({"sink": "SINK", "plugins": "my.plugin"}, "plugins"),
        ({"sink": "SINK", "block_plugins": "x"}, "block_plugins"),
        ({"sink": "SINK", "dead_letter": 3}, "dead_letter"),
        ({"bootstrap_servers": "h:1", "partitioner": "by_tenant"}, "partitioner"),
        (
            {"bootstrap_servers": "h:1", "partitioner_options": {"seed": 1}},
            "partitioner_options.seed",
        ),
    ],
)
def test_arguments_are_checked_and_named(
    idle_sink: Sink, arguments: dict[str, Any], argument: str
) -> None:
    arguments = {"topic": "logs", "entry_points": False, **arguments}
    if arguments.get("sink") == "SINK":
        arguments["sink"] = idle_sink
    with pytest.raises(InvalidArgumentError) as info:
        KafkaHandler(**arguments)
    assert info.value.argument == argument


@hookimpl
def kafka_sink_record_headers(kind: str, options: Mapping[str, Any]) -> Any:
    """This module is a plugin too (for the test below): one more header."""
    return lambda record: [("origin", b"test")]


def test_plugins_by_dotted_name_and_repr(shared: tuple[Sink, Any], make_logger: MakeLogger) -> None:
    sink, cluster = shared
    handler = KafkaHandler("logs", sink=sink, plugins=[__name__], entry_points=False)
    assert repr(handler) == "<KafkaHandler topic='logs' (NOTSET)>"
    make_logger(handler).info("hello")
    handler.flush(10)
    (got,) = stored(cluster)
    assert got.headers["origin"] == b"test"
    assert got.headers["level"] == b"INFO"  # the built-in headers as well


def test_a_bad_level_leaves_nothing_behind() -> None:
    handlers = logging._handlerList  # type: ignore[attr-defined]  # private, not in the stubs
    handler_count = len(handlers)
    with pytest.raises(ValueError, match="Unknown level"):
        KafkaHandler("logs", "127.0.0.1:1", level="LOUD", entry_points=False)
    assert len(handlers) == handler_count


# -- dictConfig -----------------------------------------------------------------------


def test_dict_config_builds_the_handler() -> None:
    # In a child process: dictConfig closes every handler the process has.
    code = """
        import json, logging, logging.config
        import tests.unit.fake_sink as fakes

        fakes.SHARED, cluster = fakes.fake_sink()
        logging.config.dictConfig({
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
            "handlers": {
                "kafka": {
                    "class": "kafka_sink.KafkaHandler",
                    "topic": "logs",
                    "sink": "ext://tests.unit.fake_sink.SHARED",
                    "level": "INFO",
                    "formatter": "plain",
                    "serializer": "text",
                    "key": "user",
                    "header_fields": ["request"],
                    "standard_headers": False,
                    "entry_points": False,
                },
            },
            "loggers": {"app": {"handlers": ["kafka"], "level": "DEBUG", "propagate": False}},
        })
        log = logging.getLogger("app")
        log.debug("below the handler's level")
        log.info("paid", extra={"user": "u-7", "request": "r-1"})
        handler = log.handlers[0]
        handler.flush(10)
        logging.shutdown()
        rows = [[r.key.decode(), r.value.decode(), {k: v.decode() for k, v in r.headers.items()}]
                for r in fakes.stored(cluster)]
        print(json.dumps(rows))
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [["u-7", "INFO app paid", {"request": "r-1"}]]
