"""The synchronous core against real brokers, read back by an independent consumer.

Every codec x acks combination sends messages with keys, timestamps and
headers through :class:`kafka_sink.Producer`; librdkafka (confluent-kafka)
reads them back and must see identical values, keys, timestamps, headers,
partition and order.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

import kafka_sink
from kafka_sink import (
    BLOCK_UNTIL_IS_COMMITTED,
    COMPRESSION_GZIP,
    COMPRESSION_LZ4,
    COMPRESSION_NONE,
    COMPRESSION_SNAPPY,
    COMPRESSION_ZSTD,
    NOT_SEND_ANY_RESPONSE,
    WAIT_WRITTEN_TO_LOCAL_LOG,
    Connection,
    Producer,
)
from tests.oracle import consume

pytestmark = pytest.mark.integration

CODECS = {
    "none": COMPRESSION_NONE,
    "gzip": COMPRESSION_GZIP,
    "snappy": COMPRESSION_SNAPPY,
    "lz4": COMPRESSION_LZ4,
    "zstd": COMPRESSION_ZSTD,
}
ACKS = {
    "acks0": NOT_SEND_ANY_RESPONSE,
    "acks1": WAIT_WRITTEN_TO_LOCAL_LOG,
    "acksall": BLOCK_UNTIL_IS_COMMITTED,
}


def connect(broker: Any, **options: Any) -> Connection:
    return Connection(broker_list=broker.bootstrap_servers, timeout=10, **options)


@pytest.mark.parametrize("codec", list(CODECS), ids=list(CODECS))
@pytest.mark.parametrize("acks", list(ACKS), ids=list(ACKS))
def test_every_codec_and_acks_reads_back_identically(
    broker: Any, topic_name: str, codec: str, acks: str
) -> None:
    broker.create_topic(topic_name, partitions=2)
    now = int(time.time() * 1000)
    values = [f"message {i} ".encode() + bytes(range(256)) * (i % 3) for i in range(20)]
    keys = [None if i % 5 == 0 else f"key-{i}".encode() for i in range(20)]
    stamps = [now - 1000 * (20 - i) + (7 if i % 2 else -3) for i in range(20)]
    headers = [
        [("seq", str(i).encode()), ("empty", b""), ("none", None), ("utf8", "é✓".encode())]
        if i % 4
        else []
        for i in range(20)
    ]
    with connect(broker) as connection:
        producer = Producer(connection, required_acks=ACKS[acks], timeout=10)
        result = producer.send(
            topic_name,
            1,
            values,
            keys=keys,
            compression_codec=CODECS[codec],
            timestamps=stamps,
            headers=headers,
        )
        assert result.topic == topic_name
        assert result.partition == 1
        if ACKS[acks] == NOT_SEND_ANY_RESPONSE:
            assert not result.acknowledged
            assert result.base_offset == -1
        else:
            assert result.acknowledged
            assert result.base_offset == 0
            assert result.error_code == 0

    records = consume(broker.bootstrap_servers, topic_name, expected=20)
    assert [r.partition for r in records] == [1] * 20
    assert [r.offset for r in records] == list(range(20))
    assert [r.value for r in records] == values
    assert [r.key for r in records] == keys
    assert [r.timestamp_ms for r in records] == stamps
    assert [list(r.headers) for r in records] == [list(h) for h in headers]


def test_seed_synopsis(broker: Any, topic_name: str) -> None:
    broker.create_topic(topic_name, partitions=1)
    host, _, port = broker.bootstrap_servers.split(",")[0].rpartition(":")
    connection = Connection(host=host, port=int(port), timeout=10)
    producer = Producer(connection)
    first = producer.send(topic_name, 0, "Single message")
    second = producer.send(
        topic_name, 0, ["The first message", "The second message", "The third message"]
    )
    connection.close()
    assert (first.base_offset, second.base_offset) == (0, 1)
    records = consume(broker.bootstrap_servers, topic_name, expected=4)
    assert [r.value for r in records] == [
        b"Single message",
        b"The first message",
        b"The second message",
        b"The third message",
    ]


def test_connection_answers_about_the_cluster(broker: Any, topic_name: str) -> None:
    broker.create_topic(topic_name, partitions=3)
    with connect(broker) as connection:
        assert connection.partitions(topic_name) == [0, 1, 2]
        servers = connection.get_known_servers()
        for address in broker.bootstrap_servers.split(","):
            assert connection.is_server_known(address)
        assert connection.leader(topic_name, 2) in servers
        versions = connection.api_versions()
        assert versions[0][1] >= 3  # Produce v3+ (RecordBatch v2)


def test_unknown_topic_without_auto_create_fails_with_broker_error(
    broker: Any, topic_name: str
) -> None:
    with connect(broker, send_max_attempts=2, retry_backoff=10) as connection:
        producer = Producer(connection)
        with pytest.raises(kafka_sink.BrokerResponseError) as info:
            producer.send(topic_name, 0, "lost")
    assert info.value.name == "UNKNOWN_TOPIC_OR_PARTITION"
    assert info.value.code == 3


def test_unknown_topic_with_auto_create_is_created_and_written(
    broker: Any, topic_name: str
) -> None:
    with connect(broker, auto_create_topics_enable=True) as connection:
        result = Producer(connection).send(topic_name, 0, "created on first use")
    assert result.base_offset == 0
    records = consume(broker.bootstrap_servers, topic_name, expected=1)
    assert records[0].value == b"created on first use"


def test_unreachable_brokers_raise_connect_error() -> None:
    # Two loopback ports that nothing listens on (bound, never listening).
    # That the wait is bounded by ``timeout`` is shown with a fake clock in
    # tests/unit/test_connection.py, without timing a real test.
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        addresses = [f"127.0.0.1:{s.getsockname()[1]}" for s in (a, b)]
        with pytest.raises(kafka_sink.ConnectError) as info:
            Connection(broker_list=addresses, timeout=2)
    for address in addresses:
        assert address in info.value.message
    assert info.value.code == kafka_sink.ErrorCode.CANNOT_CONNECT


def test_acks_zero_then_acks_one_on_one_connection(broker: Any, topic_name: str) -> None:
    # Some brokers answer acks=0 produces anyway; the connection must stay usable.
    broker.create_topic(topic_name, partitions=1)
    with connect(broker) as connection:
        silent = Producer(connection, required_acks=NOT_SEND_ANY_RESPONSE)
        acked = Producer(connection, required_acks=WAIT_WRITTEN_TO_LOCAL_LOG)
        for i in range(3):
            silent.send(topic_name, 0, f"silent {i}")
            result = acked.send(topic_name, 0, f"acked {i}")
            assert result.base_offset == 2 * i + 1
    records = consume(broker.bootstrap_servers, topic_name, expected=6)
    assert [r.value for r in records] == [
        v.encode() for i in range(3) for v in (f"silent {i}", f"acked {i}")
    ]
