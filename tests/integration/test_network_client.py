"""NetworkClient on real brokers: negotiation, pipelined Produce, failures injected in the mock.

Waits are bounded by a deadline and end as soon as their condition holds; the
client's poll() returns on I/O, so nothing here sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kafka_sink.config import BrokerAddress, parse_broker_list
from kafka_sink.errors import NetworkError, RequestTimeoutError
from kafka_sink.net.client import ClientResponse, NetworkClient
from kafka_sink.protocol.apis import ApiKey
from kafka_sink.protocol.metadata import MetadataRequest, MetadataResponse
from kafka_sink.protocol.produce import (
    PartitionProduceData,
    ProduceRequest,
    ProduceResponse,
    TopicProduceData,
)
from kafka_sink.protocol.records import encode_batch
from kafka_sink.testing import MockCluster
from tests.brokers import BrokerUnderTest

pytestmark = pytest.mark.integration

WAIT = 30.0  # the longest any condition may take before the test fails


def wait_for(client: NetworkClient, condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        client.poll(0.2)


def wait_ready(client: NetworkClient, node_id: int) -> None:
    wait_for(
        client,
        lambda: client.ready(node_id),
        f"node {node_id} to be ready (last error: {client.connection_error(node_id)})",
    )


def request(client: NetworkClient, node_id: int, message: Any) -> ClientResponse[Any]:
    outcomes: list[ClientResponse[Any]] = []
    client.send(node_id, message, outcomes.append)
    wait_for(client, lambda: bool(outcomes), f"the answer to {type(message).__name__}")
    return outcomes[0]


def produce_request(topic: str, first: int, count: int = 3) -> ProduceRequest:
    batch = encode_batch(
        [(1_700_000_000_000 + i, None, f"record {first + i}".encode(), ()) for i in range(count)]
    )
    return ProduceRequest(
        acks=-1,
        timeout_ms=10_000,
        topic_data=[TopicProduceData(topic, [PartitionProduceData(0, batch)])],
    )


def base_offset(response: ClientResponse[ProduceResponse]) -> int:
    assert response.error is None, response.error
    assert response.body is not None
    [topic] = response.body.responses
    [partition] = topic.partition_responses
    assert partition.error_code == 0, partition
    offset: int = partition.base_offset
    return offset


@pytest.fixture
def client() -> Iterator[NetworkClient]:
    network = NetworkClient(client_id="network-client-test", request_timeout=15.0)
    yield network
    network.close()


def find_leader(client: NetworkClient, bootstrap_servers: str, topic: str) -> int:
    """Bootstrap, read the topic's metadata, switch to the cluster's node ids; the leader."""
    client.set_nodes({-(i + 1): a for i, a in enumerate(parse_broker_list(bootstrap_servers))})
    node = client.least_loaded_node()
    assert node is not None
    wait_ready(client, node)
    versions = client.api_versions(node)
    assert ApiKey.PRODUCE in versions
    assert ApiKey.METADATA in versions
    response = request(client, node, MetadataRequest.for_topics([topic]))
    assert response.error is None, response.error
    body = response.body
    assert isinstance(body, MetadataResponse)
    [metadata] = body.topics
    assert metadata.error_code == 0
    client.set_nodes({b.node_id: BrokerAddress(b.host, b.port) for b in body.brokers})
    leader: int = metadata.partitions[0].leader_id
    return leader


def test_pipelined_produce_on_one_connection(
    broker: BrokerUnderTest, topic_name: str, client: NetworkClient
) -> None:
    broker.create_topic(topic_name, 1)
    leader = find_leader(client, broker.bootstrap_servers, topic_name)
    wait_ready(client, leader)
    outcomes: list[ClientResponse[Any]] = []
    for i in range(5):
        client.send(leader, produce_request(topic_name, 3 * i), outcomes.append)
    assert client.in_flight(leader) == 5
    assert not client.ready(leader)  # max_in_flight=5, all on one connection
    wait_for(client, lambda: len(outcomes) == 5, "five Produce answers")
    offsets = [base_offset(o) for o in outcomes]
    assert offsets == sorted(offsets)
    assert offsets == [offsets[0] + 3 * i for i in range(5)]
    assert all(o.version == client.version_for(leader, ApiKey.PRODUCE) for o in outcomes)
    assert client.in_flight() == 0
    assert client.callback_errors == 0


@pytest.mark.mock
def test_broker_down_fails_requests_in_flight_then_reconnects(
    mock_cluster: MockCluster, topic_name: str, client: NetworkClient
) -> None:
    mock_cluster.create_topic(topic_name, 1, 1)
    leader = find_leader(client, mock_cluster.bootstrap_servers, topic_name)
    wait_ready(client, leader)
    mock_cluster.set_broker_rtt(leader, 10_000)  # keep the answers away
    outcomes: list[ClientResponse[Any]] = []
    for i in range(3):
        client.send(leader, produce_request(topic_name, i, 1), outcomes.append)
    client.poll(0.0)  # written
    mock_cluster.broker_down(leader)
    wait_for(client, lambda: len(outcomes) == 3, "the requests in flight to fail")
    assert all(isinstance(o.error, NetworkError) for o in outcomes), outcomes
    assert client.connection_states()[leader] in ("backoff", "disconnected", "connecting")

    mock_cluster.set_broker_rtt(leader, 0)
    mock_cluster.broker_up(leader)
    wait_ready(client, leader)
    assert base_offset(request(client, leader, produce_request(topic_name, 10))) >= 0


@pytest.mark.mock
def test_slow_broker_times_requests_out(mock_cluster: MockCluster, topic_name: str) -> None:
    mock_cluster.create_topic(topic_name, 1, 1)
    client = NetworkClient(client_id="network-client-test", request_timeout=0.5)
    try:
        leader = find_leader(client, mock_cluster.bootstrap_servers, topic_name)
        wait_ready(client, leader)
        mock_cluster.set_broker_rtt(leader, 5_000)
        outcomes: list[ClientResponse[Any]] = []
        client.send(leader, produce_request(topic_name, 0), outcomes.append)
        client.send(leader, produce_request(topic_name, 3), outcomes.append)
        wait_for(client, lambda: len(outcomes) == 2, "the requests to time out")
        assert isinstance(outcomes[0].error, RequestTimeoutError)
        assert isinstance(outcomes[1].error, NetworkError)
        assert outcomes[0].latency >= 0.5
        assert not client.can_send_more(leader)  # the connection was closed
    finally:
        client.close()
