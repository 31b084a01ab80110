"""The core recovers from leader changes and retriable errors, on real brokers."""

from __future__ import annotations

from typing import Any

import pytest

import kafka_sink
from kafka_sink import BLOCK_UNTIL_IS_COMMITTED, Connection, Producer
from tests.oracle import consume

pytestmark = pytest.mark.integration

NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7
NOT_ENOUGH_REPLICAS = 19
PRODUCE = 0


@pytest.mark.kafka23
def test_killing_the_leader_mid_series_is_survived(kafka23_cluster: Any, topic_name: str) -> None:
    kafka23_cluster.create_topic(topic_name, partitions=1, replication_factor=3)
    connection = Connection(
        broker_list=kafka23_cluster.bootstrap_servers,
        timeout=5,
        send_max_attempts=12,
        retry_backoff=250,
    )
    producer = Producer(connection, required_acks=BLOCK_UNTIL_IS_COMMITTED, timeout=5)
    sent = []
    try:
        for i in range(10):
            sent.append(f"before {i}")
            producer.send(topic_name, 0, sent[-1])
        leader = connection.metadata.topics[topic_name][0].leader_id
        kafka23_cluster.kill_broker(leader)
        for i in range(10):
            sent.append(f"after {i}")
            producer.send(topic_name, 0, sent[-1])
        new_leader = connection.metadata.topics[topic_name][0].leader_id
    finally:
        connection.close()
        kafka23_cluster.restart_broker(leader)
    assert new_leader != leader
    assert connection.nonfatal_errors()  # the failure was seen, and recovered from
    records = consume(kafka23_cluster.bootstrap_servers, topic_name, expected=20)
    assert [r.value.decode() for r in records if r.value] == sent


@pytest.mark.mock
def test_leader_move_is_followed(mock_cluster: Any, topic_name: str) -> None:
    mock_cluster.create_topic(topic_name, 1, 3)
    connection = Connection(broker_list=mock_cluster.bootstrap_servers, timeout=5)
    producer = Producer(connection, required_acks=BLOCK_UNTIL_IS_COMMITTED)
    producer.send(topic_name, 0, "first")
    old = connection.metadata.topics[topic_name][0].leader_id
    new = next(b for b in mock_cluster.broker_ids if b != old)
    mock_cluster.set_partition_leader(topic_name, 0, new)
    producer.send(topic_name, 0, "second")
    assert connection.metadata.topics[topic_name][0].leader_id == new
    assert any(
        isinstance(e, kafka_sink.BrokerResponseError) and e.code == NOT_LEADER_OR_FOLLOWER
        for e in connection.nonfatal_errors()
    )
    connection.close()
    records = consume(mock_cluster.bootstrap_servers, topic_name, expected=2)
    assert [r.value for r in records] == [b"first", b"second"]


@pytest.mark.mock
@pytest.mark.parametrize("error", [NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS])
def test_retriable_errors_are_retried(mock_cluster: Any, topic_name: str, error: int) -> None:
    mock_cluster.create_topic(topic_name, 1, 3)
    connection = Connection(broker_list=mock_cluster.bootstrap_servers, timeout=5, retry_backoff=10)
    producer = Producer(connection)
    mock_cluster.push_request_errors(PRODUCE, [error, error])
    result = producer.send(topic_name, 0, "eventually")
    codes = [getattr(e, "code", None) for e in connection.nonfatal_errors()]
    connection.close()
    assert codes.count(error) == 2
    assert result.base_offset >= 0
    records = consume(mock_cluster.bootstrap_servers, topic_name, expected=1)
    assert records[0].value == b"eventually"


def _produce_requests(cluster: Any) -> list[Any]:
    """The Produce requests the mock brokers received since tracking started."""
    return [r for r in cluster.requests() if r.api_key == PRODUCE]


@pytest.mark.mock
def test_non_retriable_error_is_raised_at_once(mock_cluster: Any, topic_name: str) -> None:
    mock_cluster.create_topic(topic_name, 1, 3)
    connection = Connection(
        broker_list=mock_cluster.bootstrap_servers, timeout=5, send_max_attempts=5
    )
    producer = Producer(connection)
    mock_cluster.push_request_errors(PRODUCE, [10, 10])  # MESSAGE_TOO_LARGE, twice
    mock_cluster.start_request_tracking()
    with pytest.raises(kafka_sink.BrokerResponseError) as info:
        producer.send(topic_name, 0, "rejected")
    rejected = _produce_requests(mock_cluster)
    # The second error is still there: the next send meets it, also in one attempt.
    with pytest.raises(kafka_sink.BrokerResponseError):
        producer.send(topic_name, 0, "rejected too")
    both = _produce_requests(mock_cluster)
    connection.close()
    assert info.value.name == "MESSAGE_TOO_LARGE"
    assert not info.value.retriable
    assert info.value.context["topic"] == topic_name
    assert len(rejected) == 1, rejected  # one attempt of the five allowed
    assert len(both) == 2, both
    assert connection.nonfatal_errors() == []  # nothing was retried
    assert consume(mock_cluster.bootstrap_servers, topic_name, expected=0) == []


@pytest.mark.mock
def test_exhausted_retries_raise_the_last_error(mock_cluster: Any, topic_name: str) -> None:
    mock_cluster.create_topic(topic_name, 1, 3)
    connection = Connection(
        broker_list=mock_cluster.bootstrap_servers,
        timeout=5,
        send_max_attempts=3,
        retry_backoff=1,
    )
    producer = Producer(connection)
    # One error more than the attempts: a fourth attempt would meet it too, and
    # the send after the exhausted one finds it first.
    mock_cluster.push_request_errors(PRODUCE, [NOT_ENOUGH_REPLICAS] * 4)
    mock_cluster.start_request_tracking()
    with pytest.raises(kafka_sink.BrokerResponseError) as info:
        producer.send(topic_name, 0, "never")
    attempts = _produce_requests(mock_cluster)
    noted = [getattr(e, "code", None) for e in connection.nonfatal_errors()]
    connection.clear_nonfatals()
    mock_cluster.clear_requests()
    result = producer.send(topic_name, 0, "after the errors")
    second = _produce_requests(mock_cluster)
    connection.close()
    assert info.value.code == NOT_ENOUGH_REPLICAS
    assert info.value.retriable
    assert len(attempts) == 3, attempts  # send_max_attempts, no more
    assert noted == [NOT_ENOUGH_REPLICAS] * 2  # the first two, retried; the third raised
    assert len(second) == 2, second  # the fourth error, then the write
    assert result.base_offset == 0
    records = consume(mock_cluster.bootstrap_servers, topic_name, expected=1)
    assert [r.value for r in records] == [b"after the errors"]
