"""End to end: KafkaHandler and KafkaProcessor with serializer="ecs", read back from a broker.

The broker is librdkafka's mock cluster (kafka_sink.testing.MockCluster) and
the reader confluent-kafka's consumer, independent of kafka_sink's code.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from confluent_kafka import Consumer, TopicPartition
from kafka_sink import KafkaHandler, KafkaProcessor
from kafka_sink.testing import MockCluster

# These start librdkafka's mock cluster (a broker on loopback).
pytestmark = [pytest.mark.integration, pytest.mark.mock]


@pytest.fixture(scope="module")
def cluster() -> Iterator[MockCluster]:
    with MockCluster(1) as started:
        yield started


@pytest.fixture
def topic(cluster: MockCluster) -> str:
    name = f"ecs-{uuid.uuid4().hex[:12]}"
    cluster.create_topic(name, 1)
    return name


def consume(cluster: MockCluster, topic: str, expected: int) -> list[dict[str, Any]]:
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "group.id": "ecs-tests",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        documents: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while len(documents) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            value = message.value()
            assert value is not None
            documents.append(json.loads(value.decode("utf-8")))
        return documents
    finally:
        consumer.close()


def test_log_records_through_kafka_handler(cluster: MockCluster, topic: str) -> None:
    handler = KafkaHandler(
        topic,
        cluster.bootstrap_servers,
        serializer="ecs",
        serializer_options={"service_name": "shop", "hostname": "web-1"},
    )
    logger = logging.getLogger(f"shop.{topic}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        logger.info("paid %s", "#17", extra={"order_id": 17, "http.request.method": "POST"})
        try:
            raise ValueError("card declined")
        except ValueError:
            logger.exception("payment failed")
        handler.flush(30)
    finally:
        logger.removeHandler(handler)
        handler.close()

    paid, failed = consume(cluster, topic, expected=2)

    assert list(paid)[:4] == ["@timestamp", "log.level", "message", "ecs.version"]
    assert paid["message"] == "paid #17"
    assert paid["log.level"] == "info"
    assert paid["log"]["logger"] == f"shop.{topic}"
    assert paid["log"]["origin"]["file"]["name"] == "test_ecs_handler.py"
    assert paid["service"] == {"name": "shop"}
    assert paid["host"] == {"hostname": "web-1"}
    assert paid["order_id"] == 17
    assert paid["http"] == {"request": {"method": "POST"}}
    assert failed["log.level"] == "error"
    assert failed["error"]["type"] == "ValueError"
    assert failed["error"]["message"] == "card declined"
    assert failed["error"]["stack_trace"].endswith("ValueError: card declined")


def test_events_through_kafka_processor(cluster: MockCluster, topic: str) -> None:
    processor = KafkaProcessor(
        topic,
        cluster.bootstrap_servers,
        serializer="ecs",
        serializer_options={"service_name": "shop"},
    )
    log = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[structlog.processors.TimeStamper(fmt="iso", utc=True), processor],
    )
    try:
        log.warning("low stock", sku="A-1", left=2)
        processor.flush(30)
    finally:
        processor.close()

    (event,) = consume(cluster, topic, expected=1)

    assert event["message"] == "low stock"
    assert event["log.level"] == "warning"
    assert event["sku"] == "A-1"
    assert event["left"] == 2
    assert event["service"] == {"name": "shop"}
