"""KafkaLoggerFactory with structlog's own renderers, read back byte for byte by the oracle."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog

from kafka_sink import KafkaLoggerFactory, KafkaProcessor, Sink
from kafka_sink.testing import MockCluster
from tests.child import run_python
from tests.oracle import consume

pytestmark = [pytest.mark.integration, pytest.mark.mock]

Renderer = Callable[[Any, str, Any], Any]


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def _orjson() -> Renderer:
    import orjson  # the test extra's: the renderer that makes bytes

    return structlog.processors.JSONRenderer(serializer=orjson.dumps)


RENDERERS: dict[str, Callable[[], Renderer]] = {
    "json": structlog.processors.JSONRenderer,
    "json-utf8": lambda: structlog.processors.JSONRenderer(ensure_ascii=False),
    "orjson": _orjson,
    "key-value": lambda: structlog.processors.KeyValueRenderer(key_order=["event", "level"]),
    "logfmt": structlog.processors.LogfmtRenderer,
    "console": lambda: structlog.dev.ConsoleRenderer(colors=False),
}


class Recording:
    """A renderer that keeps what the renderer it wraps made, as the bytes Kafka should hold."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self.rendered: list[bytes] = []
        self.made_bytes = False

    def __call__(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        out = self.renderer(logger, method_name, event_dict)
        self.made_bytes = isinstance(out, bytes)
        self.rendered.append(out if isinstance(out, bytes) else out.encode("utf-8"))
        return out


@pytest.mark.parametrize("name", list(RENDERERS))
def test_what_the_renderer_made_arrives_byte_for_byte(
    mock_cluster: MockCluster, topic_name: str, name: str
) -> None:
    mock_cluster.create_topic(topic_name, 3, 3)
    recording = Recording(RENDERERS[name]())
    # One key for every record: one partition, so the order is the order logged.
    factory = KafkaLoggerFactory(topic_name, mock_cluster.bootstrap_servers, key="svc-1")
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if name != "console":  # the console renderer formats tracebacks itself
        processors.append(structlog.processors.format_exc_info)
    structlog.configure(
        processors=[*processors, recording],
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    log = structlog.get_logger("shop")
    levels = []
    try:
        structlog.contextvars.bind_contextvars(request_id="r-1")
        for i in range(20):
            log.info("checkout", n=i, amount=i * 1.5, note="caf\u00e9 \u2713 \u00fcber")
            levels.append(b"info")
        log.warning("stock low", sku="sku-42", left=3)
        levels.append(b"warning")
        try:
            raise KeyError("SPRING10")
        except KeyError:
            log.exception("coupon lookup failed", code="SPRING10")
        levels.append(b"error")
        assert factory.flush(30) == 0
    finally:
        factory.close()
    if name == "orjson":
        assert recording.made_bytes
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=len(recording.rendered))
    assert [r.value for r in got] == recording.rendered
    assert [dict(r.headers)["level"] for r in got] == levels
    assert {r.key for r in got} == {b"svc-1"}
    assert {dict(r.headers)["logger"] for r in got} == {b"shop"}
    assert b"KeyError" in recording.rendered[-1]
    metrics = factory.metrics()
    assert metrics["records_delivered"] == len(levels)
    assert metrics["records_failed_total"] == 0


def test_keyed_events_spread_over_partitions_in_order_per_key(
    mock_cluster: MockCluster, topic_name: str
) -> None:
    mock_cluster.create_topic(topic_name, 3, 3)
    factory = KafkaLoggerFactory(topic_name, mock_cluster.bootstrap_servers, linger_ms=5)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            KafkaLoggerFactory.keyed(
                structlog.processors.JSONRenderer(sort_keys=True),
                key="user",
                header_fields=["request"],
            ),
        ],
        logger_factory=factory,
    )
    log = structlog.get_logger()
    users = [f"u-{n}" for n in range(8)]
    try:
        for i in range(400):
            log.info("page_view", user=users[i % 8], request=f"r-{i}", n=i)
        assert factory.flush(30) == 0
    finally:
        factory.close()
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=400)
    assert len({r.partition for r in got}) > 1
    docs = [json.loads(r.value or b"") for r in got]
    for record, doc in zip(got, docs, strict=True):
        assert record.key == doc["user"].encode()
        assert dict(record.headers)["request"] == doc["request"].encode()
    for user in users:
        numbers = [d["n"] for d in docs if d["user"] == user]
        assert numbers == sorted(numbers)
        assert len(numbers) == 50


def test_a_shared_sink_carries_the_factory_and_a_processor(
    mock_cluster: MockCluster, topic_name: str
) -> None:
    mock_cluster.create_topic(topic_name, 3, 3)
    with Sink(mock_cluster.bootstrap_servers, linger_ms=5) as sink:
        factory = KafkaLoggerFactory(topic_name, sink=sink)
        audit = KafkaProcessor(topic_name, sink=sink, entry_points=False)
        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                audit,  # the event dict as the processor's JSON...
                structlog.processors.KeyValueRenderer(key_order=["event"]),  # ...and as text
            ],
            logger_factory=factory,
        )
        structlog.get_logger().info("login", user="ada")
        factory.close()
        audit.close()
        assert not sink.closed  # shared: its owner closes it
        assert sink.flush(30) == 0
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=2)
    values = sorted(r.value or b"" for r in got)
    assert values[0] == b"event='login' user='ada' level='info'"
    assert json.loads(values[1])["user"] == "ada"


def test_exit_without_close_delivers_the_records(
    mock_cluster: MockCluster, topic_name: str
) -> None:
    mock_cluster.create_topic(topic_name, 2, 3)
    code = """
        import os, structlog, kafka_sink
        structlog.configure(
            processors=[structlog.processors.JSONRenderer()],
            logger_factory=kafka_sink.KafkaLoggerFactory(os.environ["TOPIC"]),
        )
        log = structlog.get_logger()
        for i in range(50):
            log.info("before exit", n=i)
        # no flush, no close: the sink delivers at exit (bounded by close_timeout_ms)
    """
    result = run_python(
        code, {"TOPIC": topic_name, "KAFKA_SINK_BOOTSTRAP_SERVERS": mock_cluster.bootstrap_servers}
    )
    assert result.returncode == 0, result.stderr
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=50)
    assert sorted(json.loads(r.value or b"")["n"] for r in got) == list(range(50))
