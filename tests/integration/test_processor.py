"""KafkaProcessor end to end on the test brokers, read back by the oracle consumer."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.contextvars import bind_contextvars, bound_contextvars, merge_contextvars

from kafka_sink import KafkaProcessor
from tests.child import run_python
from tests.oracle import ConsumedRecord, consume

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _clean_contextvars() -> Iterator[None]:
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()


def _docs(records: list[ConsumedRecord]) -> list[dict[str, Any]]:
    return [json.loads((r.value or b"").decode("utf-8")) for r in records]


def test_events_with_their_context_arrive(broker: Any, topic_name: str) -> None:
    broker.create_topic(topic_name, partitions=3)
    processor = KafkaProcessor(
        topic_name, broker.bootstrap_servers, key="user", linger_ms=5, entry_points=False
    )
    log = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[
            merge_contextvars,
            structlog.processors.add_log_level,
            processor,
            structlog.processors.JSONRenderer(),
        ],
    )
    try:
        with bound_contextvars(deployment="blue"):
            for i in range(200):
                bind_contextvars(request=f"r-{i}")
                rendered = log.info("checkout", user=f"u-{i % 5}", n=i)
                assert json.loads(rendered)["n"] == i  # the chain went on to the renderer
        assert processor.flush(30) == 0
    finally:
        processor.close()
    got = consume(broker.bootstrap_servers, topic_name, expected=200)
    for record, doc in zip(got, _docs(got), strict=True):
        assert doc["event"] == "checkout"
        assert doc["level"] == "info"
        assert doc["deployment"] == "blue"
        assert doc["request"] == f"r-{doc['n']}"
        assert record.key == f"u-{doc['n'] % 5}".encode()
        assert dict(record.headers)["level"] == b"info"
    assert sorted(d["n"] for d in _docs(got)) == list(range(200))
    assert processor.metrics()["records_delivered"] == 200


@pytest.mark.mock
def test_stdlib_integration_and_async_methods(mock_cluster: Any, topic_name: str) -> None:
    mock_cluster.create_topic(topic_name, 2, 3)
    processor = KafkaProcessor(topic_name, mock_cluster.bootstrap_servers, entry_points=False)
    seen: list[str] = []

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    target = logging.getLogger("it.processor.stdlib")
    target.setLevel(logging.INFO)
    target.propagate = False
    handler = Seen()
    target.addHandler(handler)
    log = structlog.wrap_logger(
        target,
        wrapper_class=structlog.stdlib.BoundLogger,
        processors=[
            merge_contextvars,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            processor,
            structlog.processors.KeyValueRenderer(key_order=["event"]),
        ],
    )

    async def request(i: int) -> None:
        bind_contextvars(task=i)
        await log.ainfo("async event", i=i)

    async def main() -> None:
        await asyncio.gather(*(request(i) for i in range(50)))

    try:
        asyncio.run(main())
        log.warning("sync event")
        assert processor.flush(30) == 0
    finally:
        target.removeHandler(handler)
        processor.close()
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=51)
    docs = _docs(got)
    assert sorted(d["task"] for d in docs if d["event"] == "async event") == list(range(50))
    assert all(d["task"] == d["i"] for d in docs if d["event"] == "async event")
    assert [d["level"] for d in docs if d["event"] == "sync event"] == ["warning"]
    assert {d["logger"] for d in docs} == {"it.processor.stdlib"}
    assert len(seen) == 51  # the standard library's handler rendered every one as well


@pytest.mark.mock
def test_exit_without_close_delivers_the_events(mock_cluster: Any, topic_name: str) -> None:
    mock_cluster.create_topic(topic_name, 2, 3)
    code = """
        import os, structlog, kafka_sink
        log = structlog.wrap_logger(
            structlog.ReturnLogger(),
            processors=[kafka_sink.KafkaProcessor(os.environ["TOPIC"], os.environ["SERVERS"],
                                                  drop=True)],
        )
        for i in range(5000):
            log.info("event", n=i)
        # no flush, no close
    """
    result = run_python(code, {"SERVERS": mock_cluster.bootstrap_servers, "TOPIC": topic_name})
    assert result.returncode == 0, result.stderr
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=5000, timeout=60)
    assert sorted(d["n"] for d in _docs(got)) == list(range(5000))
