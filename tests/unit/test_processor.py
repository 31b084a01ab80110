"""KafkaProcessor in structlog chains (plain, stdlib, async), over the in-memory fake cluster."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import structlog
from structlog.contextvars import bind_contextvars, bound_contextvars, merge_contextvars

from kafka_sink import DeadLetter, InvalidArgumentError, KafkaProcessor, Sink, hookimpl
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
def _clean_contextvars() -> Iterator[None]:
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()


def _docs(cluster: FakeCluster, topic: str = "logs") -> list[dict[str, Any]]:
    return [json.loads((r.value or b"").decode("utf-8")) for r in stored(cluster, topic)]


def test_the_event_is_shipped_and_returned_unchanged(shared: tuple[Sink, FakeCluster]) -> None:
    sink, cluster = shared
    processor = KafkaProcessor("logs", sink=sink, key="user", entry_points=False)
    event = {"event": "login", "user": "u-1", "raw": b"\xff"}
    before = dict(event)
    bind_contextvars(request_id="r-1")
    returned = processor(None, "warning", event)
    assert returned is event
    assert event == before  # nothing added: neither the context nor the level
    assert processor.flush(10) == 0
    (got,) = stored(cluster)
    doc = json.loads(got.value or b"")
    assert doc["event"] == "login"
    assert doc["request_id"] == "r-1"  # from contextvars
    assert doc["level"] == "warning"  # from the method name
    assert doc["raw"] == "\\xff"
    assert got.key == b"u-1"
    assert got.headers["level"] == b"warning"
    assert processor.metrics()["records_delivered"] == 1


def test_the_events_own_items_win_and_context_can_be_left_out(
    shared: tuple[Sink, FakeCluster],
) -> None:
    sink, cluster = shared
    with_context = KafkaProcessor("logs", sink=sink, entry_points=False)
    without = KafkaProcessor("logs", sink=sink, contextvars=False, entry_points=False)
    with bound_contextvars(user="from-context", tenant="t-1"):
        with_context(None, "exception", {"event": "a", "user": "explicit"})
        without(None, "info", {"event": "b"})
    with_context.flush(10)
    docs = {doc["event"]: doc for doc in _docs(cluster)}
    assert docs["a"]["user"] == "explicit"
    assert docs["a"]["tenant"] == "t-1"
    assert docs["a"]["level"] == "error"  # as add_log_level names log.exception()
    assert "tenant" not in docs["b"]


def test_drop_ships_then_drops(shared: tuple[Sink, FakeCluster]) -> None:
    sink, cluster = shared
    rendered = io.StringIO()
    log = structlog.wrap_logger(
        structlog.PrintLogger(rendered),
        processors=[
            KafkaProcessor("logs", sink=sink, drop=True, entry_points=False),
            structlog.processors.JSONRenderer(),
        ],
    )
    log.info("shipped only", n=1)
    sink.flush(10)
    assert rendered.getvalue() == ""
    assert _docs(cluster)[0]["event"] == "shipped only"


def test_later_processors_still_render(shared: tuple[Sink, FakeCluster]) -> None:
    sink, cluster = shared
    rendered = io.StringIO()
    log = structlog.wrap_logger(
        structlog.PrintLogger(rendered),
        processors=[
            merge_contextvars,
            structlog.processors.add_log_level,
            KafkaProcessor("logs", sink=sink, entry_points=False),
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
    )
    bind_contextvars(request_id="r-9")
    log.warning("disk full", used=91)
    sink.flush(10)
    assert json.loads(rendered.getvalue()) == {
        "event": "disk full",
        "level": "warning",
        "request_id": "r-9",
        "used": 91,
    }
    (doc,) = _docs(cluster)
    assert {k: doc[k] for k in ("event", "level", "request_id", "used")} == {
        "event": "disk full",
        "level": "warning",
        "request_id": "r-9",
        "used": 91,
    }


def test_with_structlogs_stdlib_integration(shared: tuple[Sink, FakeCluster]) -> None:
    sink, cluster = shared
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.dev.ConsoleRenderer(colors=False)]
        )
    )
    target = logging.getLogger("test.processor.stdlib")
    target.addHandler(handler)
    target.setLevel(logging.DEBUG)
    target.propagate = False
    log = structlog.wrap_logger(
        target,
        wrapper_class=structlog.stdlib.BoundLogger,
        processors=[
            merge_contextvars,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            KafkaProcessor("logs", sink=sink, header_fields=["order"], entry_points=False),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
    )
    try:
        try:
            raise RuntimeError("card declined")
        except RuntimeError:
            log.exception("payment failed", order=12)
        sink.flush(10)
    finally:
        target.removeHandler(handler)
    (got,) = stored(cluster)
    doc = json.loads(got.value or b"")
    assert doc["event"] == "payment failed"
    assert doc["logger"] == "test.processor.stdlib"
    assert doc["level"] == "error"
    assert doc["exception"].splitlines()[-1] == "RuntimeError: card declined"
    assert got.headers["logger"] == b"test.processor.stdlib"
    assert got.headers["order"] == b"12"
    assert "payment failed" in stream.getvalue()  # the stdlib handler got it too
    assert "card declined" in stream.getvalue()


def test_async_methods_ship_from_a_worker_thread_with_the_tasks_context(
    shared: tuple[Sink, FakeCluster],
) -> None:
    sink, cluster = shared
    threads: list[str] = []

    def note_thread(logger: Any, method_name: str, event_dict: Any) -> Any:
        threads.append(threading.current_thread().name)
        return event_dict

    log = structlog.wrap_logger(
        structlog.ReturnLogger(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        processors=[note_thread, KafkaProcessor("logs", sink=sink, entry_points=False)],
    )

    async def handle(request: int) -> None:
        bind_contextvars(request=request)
        await log.ainfo("handled", n=request)

    async def main() -> str:
        await asyncio.gather(*(handle(i) for i in range(20)))
        return threading.current_thread().name

    loop_thread = asyncio.run(main())
    sink.flush(10)
    docs = _docs(cluster)
    assert sorted((d["request"], d["n"]) for d in docs) == [(i, i) for i in range(20)]
    assert loop_thread not in threads  # the chain ran in the executor, off the event loop


def test_an_event_that_cannot_be_shipped_is_reported_and_the_chain_goes_on(
    shared: tuple[Sink, FakeCluster], capsys: pytest.CaptureFixture[str]
) -> None:
    sink, cluster = shared
    letters: list[DeadLetter] = []

    class Exploding:
        @hookimpl
        def kafka_sink_event_serializer(self, name: str, options: Mapping[str, Any]) -> Any:
            def serialize(event: Mapping[str, Any]) -> bytes:
                if event.get("explode"):
                    raise ValueError("cannot serialise this")
                return b"ok"

            return serialize if name == "exploding" else None

    processor = KafkaProcessor(
        "logs",
        sink=sink,
        serializer="exploding",
        plugins=[Exploding()],
        dead_letter=letters.append,
        entry_points=False,
    )
    event = {"event": "bad", "explode": True}
    assert processor(None, "info", event) is event
    assert processor(None, "info", {"event": "good"}) == {"event": "good"}
    processor.flush(10)
    assert [r.value for r in stored(cluster)] == [b"ok"]
    assert "--- kafka_sink: an event could not be shipped ---" in capsys.readouterr().err
    (letter,) = letters
    assert letter.reason == "serialize"
    assert isinstance(letter.record, Mapping)
    assert letter.record["event"] == "bad"
    assert processor.metrics()["records_failed"] == {"serialize": 1}


def test_events_on_the_sender_thread_are_not_shipped(shared: tuple[Sink, FakeCluster]) -> None:
    sink, cluster = shared
    processor = KafkaProcessor("logs", sink=sink, entry_points=False)
    thread = threading.Thread(
        target=processor, args=(None, "info", {"event": "loop"}), name=SENDER_THREAD_NAME
    )
    thread.start()
    thread.join()
    processor(None, "info", {"event": "kept"})
    processor.flush(10)
    assert [d["event"] for d in _docs(cluster)] == ["kept"]
    assert processor.metrics()["records_ignored"] == {"sender_thread": 1}


def test_close_counts_later_events_and_closes_an_owned_sink(
    shared: tuple[Sink, FakeCluster],
) -> None:
    sink, _ = shared
    processor = KafkaProcessor("logs", sink=sink, entry_points=False)
    processor.close()
    assert processor(None, "info", {"event": "late"}) == {"event": "late"}
    assert processor.metrics()["records_failed"] == {"closed": 1}
    assert not sink.closed
    owner = KafkaProcessor("logs", "127.0.0.1:1", entry_points=False)
    assert owner.sink.config.on_buffer_full == "drop_oldest"
    owner.close()
    owner.close()
    assert owner.sink.closed
    assert repr(owner) == "<KafkaProcessor topic='logs'>"


@pytest.mark.parametrize(
    ("arguments", "argument"),
    [
        ({"drop": "yes"}, "drop"),
        ({"contextvars": 1}, "contextvars"),
        ({"serializer": "text"}, "serializer"),
        ({"lingerms": 5}, "lingerms"),
    ],
)
def test_arguments_are_checked(arguments: dict[str, Any], argument: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        KafkaProcessor("logs", "127.0.0.1:1", entry_points=False, **arguments)
    assert info.value.argument == argument


def test_imports_and_works_without_structlog() -> None:
    code = """
        import sys
        sys.modules["structlog"] = None  # as if it were not installed
        import kafka_sink
        from tests.unit.fake_sink import fake_sink, stored

        sink, cluster = fake_sink()
        plain = kafka_sink.KafkaProcessor("logs", sink=sink, contextvars=False, entry_points=False)
        event = {"event": "no structlog here"}
        assert plain(None, "info", event) is event
        sink.flush(10)
        assert [r.value for r in stored(cluster)][0].startswith(b'{"event":"no structlog here"')
        try:
            kafka_sink.KafkaProcessor("logs", sink=sink, entry_points=False)
        except ImportError as error:
            print(error)
        sink.close(1)
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert "pip install 'kafka-sink[structlog]'" in result.stdout
