"""End to end: KafkaHandler and KafkaProcessor with serializer="otlp", read back from a broker.

The broker is librdkafka's mock cluster (kafka_sink.testing.MockCluster),
the reader confluent-kafka's consumer, and every value read back goes
through the protobuf oracle (conftest.py).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import structlog
from confluent_kafka import Consumer, TopicPartition
from kafka_sink import KafkaHandler, KafkaProcessor
from kafka_sink.testing import MockCluster
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData

# These start librdkafka's mock cluster (a broker on loopback).
pytestmark = [pytest.mark.integration, pytest.mark.mock]

# The "oracle" fixture (conftest.py): parses with protobuf, fails unless OTLP/JSON.
Oracle = Callable[[bytes], LogsData]


@pytest.fixture(scope="module")
def cluster() -> Iterator[MockCluster]:
    with MockCluster(1) as started:
        yield started


@pytest.fixture
def topic(cluster: MockCluster) -> str:
    name = f"otlp-{uuid.uuid4().hex[:12]}"
    cluster.create_topic(name, 1)
    return name


def consume(cluster: MockCluster, topic: str, expected: int) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "group.id": "otlp-tests",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(values) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            value = message.value()
            assert value is not None
            values.append(value)
        return values
    finally:
        consumer.close()


def only_record(data: LogsData) -> LogRecord:
    (resource_logs,) = data.resource_logs
    (scope_logs,) = resource_logs.scope_logs
    records: list[LogRecord] = list(scope_logs.log_records)
    assert len(records) == 1
    return records[0]


def test_log_records_through_kafka_handler(
    cluster: MockCluster, topic: str, oracle: Oracle
) -> None:
    handler = KafkaHandler(
        topic,
        cluster.bootstrap_servers,
        serializer="otlp",
        serializer_options={"service_name": "shop", "hostname": "web-1"},
    )
    logger = logging.getLogger(f"shop.{topic}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        logger.info("paid %s", "#17", extra={"order_id": 17})
        try:
            raise ValueError("card declined")
        except ValueError:
            logger.exception("payment failed")
        handler.flush(30)
    finally:
        logger.removeHandler(handler)
        handler.close()

    paid_data, failed_data = (oracle(value) for value in consume(cluster, topic, expected=2))

    resource = {kv.key: kv.value for kv in paid_data.resource_logs[0].resource.attributes}
    assert resource["service.name"].string_value == "shop"
    assert resource["host.name"].string_value == "web-1"
    assert paid_data.resource_logs[0].scope_logs[0].scope.name == f"shop.{topic}"
    paid = only_record(paid_data)
    assert paid.body.string_value == "paid #17"
    assert paid.severity_number == 9
    assert paid.severity_text == "INFO"
    paid_attributes = {kv.key: kv.value for kv in paid.attributes}
    assert paid_attributes["order_id"].int_value == 17
    assert paid_attributes["code.filepath"].string_value == __file__
    failed = only_record(failed_data)
    assert failed.severity_number == 17
    failed_attributes = {kv.key: kv.value for kv in failed.attributes}
    assert failed_attributes["exception.type"].string_value == "ValueError"
    assert failed_attributes["exception.message"].string_value == "card declined"
    assert failed_attributes["exception.stacktrace"].string_value.endswith(
        "ValueError: card declined"
    )


def test_events_through_kafka_processor(cluster: MockCluster, topic: str, oracle: Oracle) -> None:
    processor = KafkaProcessor(
        topic,
        cluster.bootstrap_servers,
        serializer="otlp",
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

    (value,) = consume(cluster, topic, expected=1)
    event = only_record(oracle(value))

    assert event.body.string_value == "low stock"
    assert event.severity_number == 13
    assert {kv.key: kv.value for kv in event.attributes}["sku"].string_value == "A-1"
