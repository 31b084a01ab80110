"""The test brokers themselves: each works end to end, and the quirks the suite relies on hold.

A peer producer (confluent-kafka) writes, the oracle reads back. The expected
API versions and quirks are the ones measured for the pinned broker builds; a
failure here after an upgrade means the notes in tests/brokers/ need updating.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kafka_sink import InvalidArgumentError
from kafka_sink.testing import MockCluster, MockClusterError, MockRequest, find_librdkafka
from tests.brokers import BrokerUnderTest, wire
from tests.brokers.admin import librdkafka_logger
from tests.brokers.common import BrokerStartError, ManagedProcess, free_ports, wait_until
from tests.brokers.kafka23 import Kafka23Cluster
from tests.oracle import ConsumedRecord, OracleError, TimestampType, consume

pytestmark = pytest.mark.integration

PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
SASL_HANDSHAKE, API_VERSIONS, CREATE_TOPICS, INIT_PRODUCER_ID, SASL_AUTHENTICATE = (
    17,
    18,
    19,
    22,
    36,
)
NOT_ENOUGH_REPLICAS, MESSAGE_TOO_LARGE, TOPIC_AUTHORIZATION_FAILED = 19, 10, 29

# What each broker advertises in ApiVersions, measured with the pinned builds
# (the mock's table is librdkafka 2.16's). Absent keys are not advertised.
ADVERTISED: dict[str, dict[int, tuple[int, int] | None]] = {
    "kafka23": {
        API_VERSIONS: (0, 2),
        METADATA: (0, 8),
        PRODUCE: (0, 7),
        INIT_PRODUCER_ID: (0, 1),
        CREATE_TOPICS: (0, 3),
        FETCH: (0, 11),
        LIST_OFFSETS: (0, 5),
        SASL_HANDSHAKE: (0, 1),
        SASL_AUTHENTICATE: (0, 1),
    },
    "tansu": {
        API_VERSIONS: (0, 4),
        METADATA: (0, 12),
        PRODUCE: (0, 11),
        INIT_PRODUCER_ID: (0, 5),
        CREATE_TOPICS: (0, 7),
        FETCH: (0, 17),
        LIST_OFFSETS: (0, 9),
        SASL_HANDSHAKE: (0, 1),
        SASL_AUTHENTICATE: (0, 2),
    },
    "mock": {
        API_VERSIONS: (0, 2),
        METADATA: (0, 13),
        PRODUCE: (0, 10),
        INIT_PRODUCER_ID: (0, 4),
        CREATE_TOPICS: None,
        FETCH: (0, 16),
        LIST_OFFSETS: (0, 7),
        SASL_HANDSHAKE: None,
        SASL_AUTHENTICATE: None,
    },
}
# Partitions of a topic created by a Metadata request (Kafka 2.3: num.partitions).
AUTO_CREATED_PARTITIONS = {"mock": 4, "tansu": 4, "kafka23": 1}
# The error for a Produce to an unknown topic or partition. Tansu answers
# success, assigns offsets and keeps nothing a consumer can read.
PRODUCE_TO_UNKNOWN_ERROR = {"mock": 3, "kafka23": 3, "tansu": 0}
# Whether a Produce request with acks=0 still gets an answer.
ANSWERS_ACKS_0 = {"mock": True, "tansu": True, "kafka23": False}
# Whether a record batch with a wrong CRC is refused (CORRUPT_MESSAGE, 2).
CHECKS_CRC = {"mock": False, "tansu": False, "kafka23": True}


# ---------------------------------------------------------------------------
# A peer producer
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    key: bytes | None
    value: bytes | None
    partition: int
    timestamp_ms: int
    headers: list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class Delivery:
    error: Any
    partition: int
    offset: int


def produce_with_confluent(
    bootstrap_servers: str,
    topic: str,
    messages: Sequence[Outgoing],
    *,
    flush_timeout: float = 30.0,
    config: Mapping[str, Any] | None = None,
) -> list[Delivery]:
    """Produce with confluent-kafka; return the delivery reports in message order."""
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap_servers, **(config or {})}, logger=librdkafka_logger()
    )
    reports: dict[int, Delivery] = {}

    def reporter(index: int) -> Callable[[Any, Any], None]:
        def report(error: Any, message: Any) -> None:
            reports[index] = Delivery(error, message.partition(), message.offset())

        return report

    for index, message in enumerate(messages):
        headers: list[tuple[str, str | bytes | None]] = list(message.headers)
        producer.produce(
            topic,
            key=message.key,
            value=message.value,
            partition=message.partition,
            timestamp=message.timestamp_ms,
            headers=headers,
            on_delivery=reporter(index),
        )
    left = producer.flush(flush_timeout)
    assert left == 0, f"{left} message(s) still undelivered after {flush_timeout} s"
    return [reports[i] for i in range(len(messages))]


def sample_messages(count: int, partitions: int) -> list[Outgoing]:
    base = int(time.time() * 1000) - 60_000
    return [
        Outgoing(
            key=None if i % 4 == 0 else f"key-{i}".encode(),
            value=None if i % 7 == 3 else (f"value {i} ".encode() + b"abc" * (i * 11)),
            partition=i % partitions,
            timestamp_ms=base + i * 37,
            headers=(
                []
                if i % 5 == 0
                else [("trace", f"{i}".encode()), ("trace", b""), ("absent", None), ("é", b"\xff")]
            ),
        )
        for i in range(count)
    ]


def first_address(broker: BrokerUnderTest) -> str:
    return broker.bootstrap_servers.split(",")[0]


def leader_address(bootstrap_servers: str, topic: str, partition: int) -> str:
    cluster = wire.metadata(bootstrap_servers.split(",", maxsplit=1)[0], [topic])
    info = cluster.topic(topic)
    assert info is not None
    leader = info.partitions[partition].leader
    broker = next(b for b in cluster.brokers if b.node_id == leader)
    return f"{broker.host}:{broker.port}"


# ---------------------------------------------------------------------------
# Every broker kind
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_peer_producer_round_trip(broker: BrokerUnderTest, topic_name: str, codec: str) -> None:
    broker.create_topic(topic_name, partitions=3)
    messages = sample_messages(30, partitions=3)

    deliveries = produce_with_confluent(
        broker.bootstrap_servers, topic_name, messages, config={"compression.type": codec}
    )

    assert [d.error for d in deliveries] == [None] * len(messages)
    records = consume(broker.bootstrap_servers, topic_name, expected=len(messages))
    by_position = {(r.partition, r.offset): r for r in records}
    for message, delivery in zip(messages, deliveries, strict=True):
        record = by_position[(delivery.partition, delivery.offset)]
        assert record == ConsumedRecord(
            topic=topic_name,
            partition=message.partition,
            offset=delivery.offset,
            key=message.key,
            value=message.value,
            timestamp_type=TimestampType.CREATE_TIME,
            timestamp_ms=message.timestamp_ms,
            headers=message.headers,
        )


def test_advertised_api_versions(broker: BrokerUnderTest) -> None:
    table = wire.api_versions(first_address(broker))
    if broker.kind == "mock":
        assert isinstance(broker.backend, MockCluster)
        if not broker.backend.librdkafka_version.startswith("2.16."):
            pytest.xfail("the mock's API table is pinned for librdkafka 2.16")
    advertised = {key: table.get(key) for key in ADVERTISED[broker.kind]}
    assert advertised == ADVERTISED[broker.kind]


def test_metadata_auto_creates_unknown_topics(broker: BrokerUnderTest, topic_name: str) -> None:
    address = first_address(broker)
    refused = wire.metadata(address, [topic_name], allow_auto_create=False).topic(topic_name)
    assert refused is not None
    assert refused.error_code == 3  # UNKNOWN_TOPIC_OR_PARTITION

    def created() -> bool:
        # Kafka answers LEADER_NOT_AVAILABLE while it creates the topic.
        info = wire.metadata(address, [topic_name], allow_auto_create=True).topic(topic_name)
        return info is not None and info.error_code == 0 and bool(info.partitions)

    wait_until(created, timeout=30, what=f"auto-creation of {topic_name}")
    info = wire.metadata(address, [topic_name]).topic(topic_name)
    assert info is not None
    assert len(info.partitions) == AUTO_CREATED_PARTITIONS[broker.kind]


def test_produce_to_an_unknown_topic_or_partition(broker: BrokerUnderTest, topic_name: str) -> None:
    address = first_address(broker)
    batch = wire.record_batch([(None, b"x")])
    broker.create_topic(f"{topic_name}-known", partitions=1)

    unknown_topic = wire.produce(address, topic_name, 0, batch, acks=1)
    unknown_partition = wire.produce(address, f"{topic_name}-known", 5, batch, acks=1)

    assert unknown_topic is not None
    assert unknown_partition is not None
    expected = PRODUCE_TO_UNKNOWN_ERROR[broker.kind]
    assert (unknown_topic.error_code, unknown_partition.error_code) == (expected, expected)
    info = wire.metadata(address, [topic_name]).topic(topic_name)
    assert info is not None
    assert info.error_code == 3  # still unknown: Produce never creates a topic


def test_acks_0_answer(broker: BrokerUnderTest, topic_name: str) -> None:
    broker.create_topic(topic_name, partitions=1)
    leader = leader_address(broker.bootstrap_servers, topic_name, 0)
    batch = wire.record_batch([(b"k", b"v")])

    answer = wire.produce(leader, topic_name, 0, batch, acks=0, timeout=1.0)

    assert (answer is not None) == ANSWERS_ACKS_0[broker.kind]
    records = consume(broker.bootstrap_servers, topic_name, expected=1)
    assert [(r.key, r.value) for r in records] == [(b"k", b"v")]


@pytest.mark.parametrize("acks", [1, -1])
def test_acks_1_and_all_are_answered_with_the_offset(
    broker: BrokerUnderTest, topic_name: str, acks: int
) -> None:
    broker.create_topic(topic_name, partitions=1)
    leader = leader_address(broker.bootstrap_servers, topic_name, 0)
    batch = wire.record_batch([(None, b"a"), (None, b"b")])
    first = wire.produce(leader, topic_name, 0, batch, acks=acks)
    second = wire.produce(leader, topic_name, 0, batch, acks=acks)
    assert first is not None
    assert second is not None
    assert (first.error_code, first.base_offset) == (0, 0)
    assert (second.error_code, second.base_offset) == (0, 2)


def test_batch_crc(broker: BrokerUnderTest, topic_name: str) -> None:
    broker.create_topic(topic_name, partitions=1)
    leader = leader_address(broker.bootstrap_servers, topic_name, 0)
    spoiled = wire.record_batch([(None, b"x")], spoil_crc=True)

    answer = wire.produce(leader, topic_name, 0, spoiled, acks=1)

    assert answer is not None
    assert answer.error_code == (2 if CHECKS_CRC[broker.kind] else 0)  # CORRUPT_MESSAGE


def test_oracle_rejects_extra_records(broker: BrokerUnderTest, topic_name: str) -> None:
    broker.create_topic(topic_name, partitions=2)
    produce_with_confluent(broker.bootstrap_servers, topic_name, sample_messages(3, 2))
    with pytest.raises(OracleError, match="expected 2 records, found more") as caught:
        consume(broker.bootstrap_servers, topic_name, expected=2)
    assert len(caught.value.records) == 3


def test_oracle_times_out_with_what_it_read(broker: BrokerUnderTest, topic_name: str) -> None:
    broker.create_topic(topic_name, partitions=2)
    produce_with_confluent(broker.bootstrap_servers, topic_name, sample_messages(3, 2))
    started = time.monotonic()
    with pytest.raises(OracleError, match=r"expected 4 records within 1\.5 s, got 3") as caught:
        consume(broker.bootstrap_servers, topic_name, expected=4, timeout=1.5)
    # Loose on purpose: an oracle that ignored its timeout would wait for the
    # fourth record until the test's own timeout (300 s).
    elapsed = time.monotonic() - started
    assert elapsed < 120, f"the oracle gave up only after {elapsed:.1f} s"
    assert [r.partition for r in caught.value.records] == [0, 0, 1]


def test_oracle_reads_empty_topics(broker: BrokerUnderTest, topic_name: str) -> None:
    broker.create_topic(topic_name, partitions=3)
    assert consume(broker.bootstrap_servers, topic_name, expected=0) == []


# ---------------------------------------------------------------------------
# The mock cluster's fault injection
# ---------------------------------------------------------------------------


def one_message(partition: int = 0) -> list[Outgoing]:
    return [Outgoing(b"k", b"v", partition, int(time.time() * 1000), [])]


def produce_requests(cluster: MockCluster) -> list[MockRequest]:
    return [r for r in cluster.requests() if r.api_key == PRODUCE]


def test_mock_broker_down_holds_messages_until_it_is_up(
    new_mock_cluster: Callable[..., MockCluster], topic_name: str
) -> None:
    from confluent_kafka import Producer

    cluster = new_mock_cluster(3, topics={topic_name: 1})
    cluster.set_partition_leader(topic_name, 0, 1)
    producer = Producer(
        {"bootstrap.servers": cluster.bootstrap_servers, "reconnect.backoff.max.ms": 200},
        logger=librdkafka_logger(),
    )
    delivered: list[Any] = []
    cluster.broker_down(1)

    producer.produce(topic_name, b"held", partition=0, on_delivery=lambda e, m: delivered.append(e))
    assert producer.flush(1.5) == 1  # the leader is down: nothing can be delivered
    cluster.broker_up(1)
    assert producer.flush(15) == 0

    assert delivered == [None]
    assert [r.value for r in consume(cluster.bootstrap_servers, topic_name, expected=1)] == [
        b"held"
    ]


def test_mock_leader_move_is_followed_by_the_producer(
    new_mock_cluster: Callable[..., MockCluster], topic_name: str
) -> None:
    cluster = new_mock_cluster(3, topics={topic_name: 1})
    cluster.set_partition_leader(topic_name, 0, 1)
    cluster.start_request_tracking()
    produce_with_confluent(cluster.bootstrap_servers, topic_name, one_message())

    cluster.set_partition_leader(topic_name, 0, 2)
    deliveries = produce_with_confluent(cluster.bootstrap_servers, topic_name, one_message())

    assert deliveries[0].error is None
    brokers = [r.broker_id for r in produce_requests(cluster)]
    assert brokers[0] == 1
    assert brokers[-1] == 2
    assert len(consume(cluster.bootstrap_servers, topic_name, expected=2)) == 2


def test_mock_pushed_retriable_errors_are_retried(
    new_mock_cluster: Callable[..., MockCluster], topic_name: str
) -> None:
    cluster = new_mock_cluster(3, topics={topic_name: 1})
    cluster.push_request_errors(PRODUCE, [NOT_ENOUGH_REPLICAS, NOT_ENOUGH_REPLICAS])
    cluster.start_request_tracking()

    deliveries = produce_with_confluent(
        cluster.bootstrap_servers, topic_name, one_message(), config={"retry.backoff.ms": 10}
    )

    assert deliveries[0].error is None
    assert len(produce_requests(cluster)) == 3
    assert len(consume(cluster.bootstrap_servers, topic_name, expected=1)) == 1


def test_mock_pushed_permanent_error_fails_the_delivery(
    new_mock_cluster: Callable[..., MockCluster], topic_name: str
) -> None:
    cluster = new_mock_cluster(3, topics={topic_name: 1})
    cluster.push_request_errors(PRODUCE, [MESSAGE_TOO_LARGE])

    deliveries = produce_with_confluent(cluster.bootstrap_servers, topic_name, one_message())

    assert deliveries[0].error is not None
    assert deliveries[0].error.code() == MESSAGE_TOO_LARGE
    assert consume(cluster.bootstrap_servers, topic_name, expected=0) == []


def test_mock_broker_error_rtts_and_rtt_delay_answers(
    new_mock_cluster: Callable[..., MockCluster], topic_name: str
) -> None:
    cluster = new_mock_cluster(3, topics={topic_name: 1})
    cluster.set_partition_leader(topic_name, 0, 2)
    produce_with_confluent(cluster.bootstrap_servers, topic_name, one_message())  # warm up

    cluster.broker_push_request_error_rtts(2, PRODUCE, [(0, 700)])
    assert cluster.broker_error_stack_count(2, PRODUCE) == 1
    started = time.monotonic()
    produce_with_confluent(cluster.bootstrap_servers, topic_name, one_message())
    assert time.monotonic() - started >= 0.65
    assert cluster.broker_error_stack_count(2, PRODUCE) == 0

    cluster.set_broker_rtt(2, 500)
    started = time.monotonic()
    produce_with_confluent(cluster.bootstrap_servers, topic_name, one_message())
    assert time.monotonic() - started >= 0.45
    cluster.set_broker_rtt(2, 0)


def test_mock_topic_error_shows_in_metadata(mock_cluster: MockCluster, topic_name: str) -> None:
    mock_cluster.create_topic(topic_name, 2, 3)
    address = mock_cluster.bootstrap_servers.split(",")[0]

    mock_cluster.topic_set_error(topic_name, TOPIC_AUTHORIZATION_FAILED)
    info = wire.metadata(address, [topic_name]).topic(topic_name)
    assert info is not None
    assert info.error_code == TOPIC_AUTHORIZATION_FAILED

    mock_cluster.topic_set_error(topic_name, 0)
    info = wire.metadata(address, [topic_name]).topic(topic_name)
    assert info is not None
    assert info.error_code == 0


def test_mock_api_versions_can_be_narrowed_and_removed(
    new_mock_cluster: Callable[..., MockCluster],
) -> None:
    cluster = new_mock_cluster(1)
    address = cluster.bootstrap_servers
    cluster.set_api_version(PRODUCE, 3, 5)
    cluster.set_api_version(INIT_PRODUCER_ID, -1, -1)

    table = wire.api_versions(address)

    assert table[PRODUCE] == (3, 5)
    assert INIT_PRODUCER_ID not in table


def test_mock_request_tracking_records_broker_key_and_time(
    new_mock_cluster: Callable[..., MockCluster],
) -> None:
    cluster = new_mock_cluster(2)
    cluster.start_request_tracking()
    wire.api_versions(cluster.bootstrap_servers.split(",")[1])
    wire.metadata(cluster.bootstrap_servers.split(",")[0])
    cluster.stop_request_tracking()
    wire.metadata(cluster.bootstrap_servers.split(",")[0])

    requests = cluster.requests()

    assert [(broker_id, api_key) for broker_id, api_key, _ in requests] == [
        (2, API_VERSIONS),
        (1, METADATA),
    ]
    assert requests[0].timestamp_us <= requests[1].timestamp_us
    cluster.clear_requests()
    assert cluster.requests() == []


def test_shared_mock_cluster_is_reset_between_tests(mock_cluster: MockCluster) -> None:
    mock_cluster.broker_down(2)
    mock_cluster.push_request_errors(PRODUCE, [NOT_ENOUGH_REPLICAS] * 5)
    mock_cluster.start_request_tracking()
    mock_cluster.reset()
    assert mock_cluster.requests() == []
    wire.metadata(mock_cluster.bootstrap_servers.split(",")[1])  # broker 2 answers again


# ---------------------------------------------------------------------------
# The MockCluster class itself
# ---------------------------------------------------------------------------


def _process_gone(pid: int) -> bool:
    """True if ``pid`` no longer runs (a zombie waiting to be reaped counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def test_mock_cluster_lifecycle(new_mock_cluster: Callable[..., MockCluster]) -> None:
    cluster = new_mock_cluster(2, topics={"a": 3, "b": 1}, replication_factor=2)
    assert cluster.broker_ids == (1, 2)
    assert len(cluster.bootstrap_servers.split(",")) == 2
    assert all(a.startswith("127.0.0.1:") for a in cluster.bootstrap_servers.split(","))
    info = wire.metadata(cluster.bootstrap_servers.split(",")[0], ["a"]).topic("a")
    assert info is not None
    assert [len(p.replicas) for p in info.partitions] == [2, 2, 2]
    pid = cluster.pid

    cluster.close()
    cluster.close()

    assert cluster.closed
    assert _process_gone(pid)
    with pytest.raises(MockClusterError, match="closed"):
        cluster.broker_down(1)


def test_mock_cluster_as_context_manager() -> None:
    with MockCluster(1) as cluster:
        pid = cluster.pid
        assert wire.api_versions(cluster.bootstrap_servers)[PRODUCE][1] >= 3
    assert _process_gone(pid)
    assert not cluster.log_path.exists()


def test_mock_cluster_refuses_bad_arguments(mock_cluster: MockCluster, topic_name: str) -> None:
    with pytest.raises(InvalidArgumentError, match="broker_id"):
        mock_cluster.broker_down(4)
    with pytest.raises(InvalidArgumentError, match="replication_factor"):
        mock_cluster.create_topic("too-many-replicas", 1, 4)
    with pytest.raises(InvalidArgumentError, match="num_brokers"):
        MockCluster(0)
    mock_cluster.create_topic(topic_name, 1, 1)
    with pytest.raises(MockClusterError, match="already exists") as caught:
        mock_cluster.create_topic(topic_name, 1, 1)
    assert caught.value.code == 36


def test_mock_cluster_reports_a_crashed_process(
    new_mock_cluster: Callable[..., MockCluster],
) -> None:
    cluster = new_mock_cluster(1)
    os.kill(cluster.pid, signal.SIGKILL)
    with pytest.raises(MockClusterError, match="killed by signal 9"):
        cluster.broker_down(1)
    cluster.close()


def test_mock_cluster_process_ends_with_its_parent(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os
        from kafka_sink.testing import MockCluster
        cluster = MockCluster(1)
        print(cluster.pid, cluster.log_path, flush=True)
        os._exit(0)  # die without closing anything
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    pid, log_path = done.stdout.split()
    wait_until(lambda: _process_gone(int(pid)), timeout=10, what=f"mock cluster {pid} to exit")
    wait_until(lambda: not Path(log_path).exists(), timeout=10, what=f"{log_path} to go")


def test_missing_librdkafka_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SINK_LIBRDKAFKA", "/nonexistent/librdkafka.so.1")
    with pytest.raises(MockClusterError, match="KAFKA_SINK_LIBRDKAFKA"):
        MockCluster(1)
    monkeypatch.delenv("KAFKA_SINK_LIBRDKAFKA")
    assert find_librdkafka().name.startswith("librdkafka")


def test_testing_module_does_not_import_confluent_kafka() -> None:
    script = textwrap.dedent(
        """
        import sys
        from kafka_sink.testing import MockCluster
        with MockCluster(1) as cluster:
            pass
        assert "confluent_kafka" not in sys.modules, sorted(sys.modules)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


def test_standalone_mock_cluster_command() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "kafka_sink.testing", "--brokers", "2", "--topic", "logs:3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("bootstrap.servers=127.0.0.1:")
        bootstrap = line.strip().partition("=")[2]
        info = wire.metadata(bootstrap.split(",")[0], ["logs"]).topic("logs")
        assert info is not None
        assert len(info.partitions) == 3
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


# ---------------------------------------------------------------------------
# Kafka 2.3 faults, and the process machinery under every broker
# ---------------------------------------------------------------------------


def test_kafka23_cluster_survives_a_killed_leader(
    kafka23_cluster: Kafka23Cluster, topic_name: str
) -> None:
    kafka23_cluster.create_topic(topic_name, partitions=1, replication_factor=3)
    info = wire.metadata(kafka23_cluster.bootstrap_servers.split(",")[0], [topic_name])
    topic = info.topic(topic_name)
    assert topic is not None
    leader = topic.partitions[0].leader
    config = {"acks": "all", "message.timeout.ms": 60000}
    produce_with_confluent(
        kafka23_cluster.bootstrap_servers, topic_name, one_message() * 5, config=config
    )

    kafka23_cluster.kill_broker(leader)
    try:
        assert leader not in kafka23_cluster.alive_broker_ids
        deliveries = produce_with_confluent(
            kafka23_cluster.bootstrap_servers,
            topic_name,
            one_message() * 5,
            flush_timeout=60,
            config=config,
        )
        assert [d.error for d in deliveries] == [None] * 5
    finally:
        kafka23_cluster.restart_broker(leader)

    assert set(kafka23_cluster.alive_broker_ids) == {1, 2, 3}
    assert len(consume(kafka23_cluster.bootstrap_servers, topic_name, expected=10)) == 10


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(20)
    assert len(set(ports)) == 20


def test_managed_process_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    # Deaf to SIGTERM and asleep for an hour: only SIGKILL ends it within the test.
    stubborn = ManagedProcess(
        "stubborn",
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('up', flush=True); time.sleep(3600)",
        ],
        log_path=tmp_path / "stubborn.log",
    )
    stubborn.start()
    try:
        wait_until(lambda: "up" in stubborn.log_tail(), timeout=30, what="the process to start")
        stopper = threading.Thread(target=stubborn.stop, kwargs={"timeout": 0.5})
        stopper.start()
        # Event-based: stop() returns once the process is gone. The bound only
        # turns a stop() that never escalates into a clear failure.
        stopper.join(timeout=120)
        assert not stopper.is_alive(), "stop() did not end a process deaf to SIGTERM in 120 s"
        assert not stubborn.running
    finally:
        stubborn.kill()


def test_a_dying_process_fails_the_wait_with_its_log(tmp_path: Path) -> None:
    doomed = ManagedProcess(
        "doomed",
        [sys.executable, "-c", "print('cannot bind: Address already in use'); raise SystemExit(3)"],
        log_path=tmp_path / "doomed.log",
    )
    doomed.start()
    with pytest.raises(BrokerStartError, match=r"(?s)exited with status 3.*Address already in use"):
        wait_until(lambda: False, timeout=30, what="never", processes=[doomed])
    doomed.stop()
