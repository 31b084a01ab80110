"""Connection and framing behaviour against the in-memory cluster (no sockets, no sleeps)."""

from __future__ import annotations

import pickle
import struct

import pytest

from kafka_sink.errors import (
    BrokerResponseError,
    ConnectError,
    CorrelationIdMismatchError,
    InvalidArgumentError,
    ProtocolError,
    RequestTimeoutError,
)
from kafka_sink.net.cluster import Connection
from kafka_sink.protocol.client import ClientProtocol
from kafka_sink.protocol.init_producer_id import InitProducerIdRequest, InitProducerIdResponse
from kafka_sink.protocol.metadata import MetadataRequest
from tests.fakes import FakeCluster


def connect(cluster: FakeCluster, **options: object) -> Connection:
    brokers = [f"{b.host}:{b.port}" for b in cluster.brokers.values()]
    return Connection(
        broker_list=brokers,
        transport=cluster.transport(),
        clock=cluster.clock,
        sleep=cluster.clock.sleep,
        **options,  # type: ignore[arg-type]  # Connection checks each option
    )


def test_request_header_v1_bytes_are_pinned() -> None:
    proto = ClientProtocol("cid")
    correlation_id, frame = proto.send(InitProducerIdRequest(None, -1), 1)
    assert correlation_id == 0
    # size, api key 22, version 1, correlation 0, client id "cid", body
    assert frame.hex() == ("0000001300160001000000000003636964ffffffffffff")


def test_request_header_v2_has_tagged_fields_and_non_compact_client_id() -> None:
    proto = ClientProtocol("cid")
    _, frame = proto.send(InitProducerIdRequest(None, -1), 2)
    # header v2: client id stays int16-prefixed, then an empty tagged section;
    # body v2: compact null string (0), int32, empty tagged section.
    assert frame.hex() == ("00000014001600020000000000036369640000ffffffff00")


def test_response_for_unknown_correlation_id_is_rejected() -> None:
    proto = ClientProtocol("cid")
    proto.send(MetadataRequest.for_topics(["t"]), 1)
    proto.receive_data(struct.pack(">ii", 4, 99))
    with pytest.raises(CorrelationIdMismatchError) as info:
        proto.next_response()
    assert info.value.code == -1009
    assert "99" in info.value.message


def test_oversized_frame_is_rejected_before_buffering() -> None:
    proto = ClientProtocol("cid", max_response_size=1024)
    proto.send(MetadataRequest.for_topics(["t"]), 1)
    proto.receive_data(struct.pack(">i", 1 << 30))
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        proto.next_response()


def test_partial_frames_wait_for_more_bytes() -> None:
    proto = ClientProtocol("cid")
    proto.send(InitProducerIdRequest(None, -1), 0)
    body = struct.pack(">iihqh", 0, 0, 0, 42, 3)
    frame = struct.pack(">i", len(body)) + body
    for byte in frame[:-1]:
        proto.receive_data(bytes([byte]))
        assert proto.next_response() is None
    proto.receive_data(frame[-1:])
    response = proto.next_response()
    assert response is not None
    assert isinstance(response.body, InitProducerIdResponse)
    assert response.body.producer_id == 42
    assert response.body.producer_epoch == 3


def test_bootstrap_skips_dead_brokers_and_learns_the_cluster() -> None:
    cluster = FakeCluster(3)
    cluster.add_topic("logs", 3, leader=2)
    cluster.brokers[1].up = False
    conn = connect(cluster)
    assert conn.get_known_servers() == ["fake:9001", "fake:9002", "fake:9003"]
    assert conn.partitions("logs") == [0, 1, 2]
    assert conn.leader("logs", 1) == "fake:9002"
    assert any("fake:9001" in e.message for e in conn.nonfatal_errors())


def test_all_brokers_down_raises_connect_error_naming_them() -> None:
    cluster = FakeCluster(2)
    for broker in cluster.brokers.values():
        broker.up = False
    with pytest.raises(ConnectError) as info:
        connect(cluster, timeout=1.0)
    assert "fake:9001" in info.value.message
    assert "fake:9002" in info.value.message
    assert info.value.code == -1004


def test_silent_broker_times_out_within_the_timeout() -> None:
    cluster = FakeCluster(1)
    cluster.brokers[1].silent = True
    start = cluster.clock.now
    with pytest.raises(ConnectError) as info:
        connect(cluster, timeout=2.0)
    assert "no response" in info.value.message
    assert cluster.clock.now - start <= 2.0 + 1e-9


def test_api_versions_falls_back_to_the_brokers_version() -> None:
    cluster = FakeCluster(1)
    cluster.brokers[1].max_versions[18] = 2
    conn = connect(cluster)
    sent = [r for r in cluster.brokers[1].received if r.api_key == 18]
    assert [r.version for r in sent] == [3, 2]
    assert conn.api_versions()[18] == (0, 2)


def test_versions_are_the_highest_both_sides_speak() -> None:
    cluster = FakeCluster(1)
    cluster.brokers[1].max_versions[3] = 8
    connect(cluster)
    metadata = [r for r in cluster.brokers[1].received if r.api_key == 3]
    assert {r.version for r in metadata} == {8}


def test_unknown_topic_without_auto_create_raises_broker_error() -> None:
    cluster = FakeCluster(1)
    conn = connect(cluster)
    with pytest.raises(BrokerResponseError) as info:
        conn.partitions("missing")
    assert info.value.code == 3
    assert info.value.name == "UNKNOWN_TOPIC_OR_PARTITION"
    assert info.value.retriable
    assert info.value.context["topic"] == "missing"


def test_unknown_topic_with_auto_create_waits_for_it() -> None:
    cluster = FakeCluster(1)
    cluster.auto_create = True
    conn = connect(cluster, auto_create_topics_enable=True)
    assert conn.partitions("fresh") == [0]


def test_client_id_goes_into_every_request_header() -> None:
    cluster = FakeCluster(1)
    connect(cluster, client_id="my-app")
    assert {r.client_id for r in cluster.brokers[1].received} == {"my-app"}


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": "1"}, "timeout"),
        ({"send_max_attempts": 0}, "send_max_attempts"),
        ({"retry_backoff": -1}, "retry_backoff"),
        ({"ip_version": 5}, "ip_version"),
        ({"auto_create_topics_enable": 1}, "auto_create_topics_enable"),
        ({"client_id": ""}, "client_id"),
        ({"broker_list": []}, "broker_list"),
        ({"broker_list": ["h:notaport"]}, "broker_list"),
        ({"broker_list": ["::1:9092"]}, "broker_list"),
        ({"broker_list": ["h:70000"]}, "broker_list"),
        ({"host": ""}, "host"),
        ({"port": 0}, "port"),
    ],
)
def test_invalid_arguments_name_the_argument(options: dict[str, object], argument: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Connection(**options)  # type: ignore[arg-type]  # bad values on purpose
    assert info.value.argument == argument
    assert repr(argument) in info.value.message
    assert info.value.code == -1000
    assert isinstance(info.value, ValueError)


def test_errors_pickle_with_their_context() -> None:
    exc = BrokerResponseError(6, topic="t", partition=2)
    clone = pickle.loads(pickle.dumps(exc))
    assert type(clone) is BrokerResponseError
    # The context comes back as attributes too (read by name: mypy knows of no "topic").
    names = ("code", "name", "retriable", "topic", "partition")
    assert tuple(getattr(clone, name) for name in names) == (
        6,
        "NOT_LEADER_OR_FOLLOWER",
        True,
        "t",
        2,
    )
    timeout = pickle.loads(pickle.dumps(RequestTimeoutError("slow", broker="h:1")))
    assert timeout.broker == "h:1"
    assert timeout.message == "slow"


def test_answers_to_requests_that_expected_none_are_dropped() -> None:
    from kafka_sink.protocol.produce import ProduceRequest

    proto = ClientProtocol("cid")
    silent, _ = proto.send(ProduceRequest(acks=0), 3)
    answered, _ = proto.send(InitProducerIdRequest(None, -1), 0)
    # Some brokers answer acks=0 produces anyway: that answer comes first.
    proto.receive_data(struct.pack(">ii", 4, silent))
    body = struct.pack(">iihqh", answered, 0, 0, 7, 0)
    proto.receive_data(struct.pack(">i", len(body)) + body)
    response = proto.next_response()
    assert response is not None
    assert response.correlation_id == answered
    assert proto.in_flight == 0
