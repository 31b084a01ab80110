"""The synchronous Producer against the in-memory cluster (no sockets, no sleeps)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import kafka_sink
from kafka_sink import Connection, InvalidArgumentError, Producer
from kafka_sink.protocol.records import decode_batches
from tests.fakes import FakeCluster


def setup(partitions: int = 2, **options: object) -> tuple[FakeCluster, Connection, Producer]:
    cluster = FakeCluster(3)
    cluster.add_topic("logs", partitions, leader=2)
    connection = Connection(
        broker_list=["fake:9001"],
        transport=cluster.transport(),
        clock=cluster.clock,
        sleep=cluster.clock.sleep,
        **options,  # type: ignore[arg-type]  # Connection checks each option
    )
    return cluster, connection, Producer(connection, client_id="prod-1")


def test_send_goes_to_the_leader_and_returns_the_answer() -> None:
    cluster, _, producer = setup()
    result = producer.send("logs", 1, ["a", b"b"], keys="k", timestamps=[5, 6])
    assert (result.topic, result.partition, result.base_offset) == ("logs", 1, 0)
    assert result.message_count == 2
    produce = [r for r in cluster.brokers[2].received if r.api_key == 0]
    assert len(produce) == 1
    assert produce[0].client_id == "prod-1"
    assert produce[0].request.acks == 1
    (batch,) = decode_batches(cluster.logs[("logs", 1)][0])
    assert [(r.key, r.value, r.timestamp) for r in batch.records] == [
        (b"k", b"a", 5),
        (b"k", b"b", 6),
    ]


def test_leader_move_refreshes_metadata_and_retries() -> None:
    cluster, connection, producer = setup()
    producer.send("logs", 0, "one")
    cluster.topics["logs"][0] = 3  # the leader moves; the client's metadata is stale
    result = producer.send("logs", 0, "two")
    assert result.base_offset == 1  # the second record of the partition
    assert [e.code for e in connection.nonfatal_errors()] == [6]
    assert connection.leader("logs", 0) == "fake:9003"
    assert cluster.clock.sleeps  # backed off before retrying


def test_retries_back_off_exponentially_and_give_up() -> None:
    cluster, _, producer = setup(send_max_attempts=4, retry_backoff=100)
    cluster.produce_errors = [19, 19, 19, 19]  # NOT_ENOUGH_REPLICAS, retriable
    with pytest.raises(kafka_sink.BrokerResponseError) as info:
        producer.send("logs", 0, "x")
    assert info.value.code == 19
    assert len(cluster.clock.sleeps) == 3
    for attempt, slept in enumerate(cluster.clock.sleeps):
        assert 0.1 * 2**attempt * 0.8 <= slept <= 0.1 * 2**attempt * 1.2


def test_non_retriable_error_is_not_retried() -> None:
    cluster, _, producer = setup()
    cluster.produce_errors = [10]  # MESSAGE_TOO_LARGE
    with pytest.raises(kafka_sink.BrokerResponseError) as info:
        producer.send("logs", 0, "x")
    assert info.value.name == "MESSAGE_TOO_LARGE"
    assert cluster.clock.sleeps == []


def test_acks_zero_does_not_wait_for_an_answer() -> None:
    cluster, connection, _ = setup()
    producer = Producer(connection, required_acks=kafka_sink.NOT_SEND_ANY_RESPONSE)
    result = producer.send("logs", 0, "fire and forget")
    assert not result.acknowledged
    assert result.base_offset == -1
    assert len(cluster.logs[("logs", 0)]) == 1  # written, though never answered
    assert [r.request.acks for r in cluster.brokers[2].received if r.api_key == 0] == [0]


def test_headers_for_all_or_per_message() -> None:
    cluster, _, producer = setup()
    producer.send("logs", 0, ["a", "b"], headers={"h": "v"})
    producer.send("logs", 1, ["a", "b"], headers=[[("x", b"1")], None])
    (common,) = decode_batches(cluster.logs[("logs", 0)][0])
    assert [r.headers for r in common.records] == [(("h", b"v"),), (("h", b"v"),)]
    (each,) = decode_batches(cluster.logs[("logs", 1)][0])
    assert [r.headers for r in each.records] == [(("x", b"1"),), ()]


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda p: p.send("", 0, "m"), "topic"),
        (lambda p: p.send("bad topic!", 0, "m"), "topic"),
        (lambda p: p.send("logs", -1, "m"), "partition"),
        (lambda p: p.send("logs", "0", "m"), "partition"),
        (lambda p: p.send("logs", 7, "m"), "partition"),
        (lambda p: p.send("logs", 0, []), "messages"),
        (lambda p: p.send("logs", 0, 42), "messages"),
        (lambda p: p.send("logs", 0, ["a", 1]), "messages"),
        (lambda p: p.send("logs", 0, ["a", "b"], keys=["k"]), "keys"),
        (lambda p: p.send("logs", 0, "a", keys=3), "keys"),
        (lambda p: p.send("logs", 0, "a", compression_codec=9), "compression_codec"),
        (lambda p: p.send("logs", 0, "a", compression_codec="gzip"), "compression_codec"),
        (lambda p: p.send("logs", 0, "a", timestamps=-5), "timestamps"),
        (lambda p: p.send("logs", 0, ["a", "b"], timestamps=[1]), "timestamps"),
        (lambda p: p.send("logs", 0, "a", headers=[("k", 1)]), "headers"),
        (lambda p: p.send("logs", 0, "a", headers="x"), "headers"),
        (lambda p: p.send("logs", 0, ["a", "b"], headers=[[("k", b"")]]), "headers"),
    ],
)
def test_invalid_send_arguments_name_the_argument(
    call: Callable[[Producer], object], argument: str
) -> None:
    _, _, producer = setup()
    with pytest.raises(InvalidArgumentError) as info:
        call(producer)
    assert info.value.argument == argument, info.value.message


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"required_acks": 2}, "required_acks"),
        ({"required_acks": True}, "required_acks"),
        ({"timeout": -1}, "timeout"),
        ({"client_id": ""}, "client_id"),
    ],
)
def test_invalid_producer_arguments(kwargs: dict[str, object], argument: str) -> None:
    _, connection, _ = setup()
    with pytest.raises(InvalidArgumentError) as info:
        Producer(connection, **kwargs)  # type: ignore[arg-type]  # bad values on purpose
    assert info.value.argument == argument


def test_producer_needs_a_connection() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Producer("localhost:9092")  # type: ignore[arg-type]  # not a Connection on purpose
    assert info.value.argument == "connection"
