"""The asynchronous Sink end to end, read back by an independent consumer."""

from __future__ import annotations

import socket
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

import kafka_sink
from kafka_sink import BufferFullError, DeliveryFuture, Sink
from tests.child import run_python
from tests.oracle import consume, values_of

pytestmark = pytest.mark.integration


def _records(n: int, keys: int = 16) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    return [
        (
            f"key-{i % keys}".encode(),
            f'{{"n": {i}, "msg": "record number {i}"}}'.encode(),
            [("n", str(i).encode()), ("kind", b"test")],
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_records_arrive_identical_and_in_order(broker: Any, topic_name: str, acks: Any) -> None:
    broker.create_topic(topic_name, partitions=3)
    records = _records(600)
    with Sink(broker.bootstrap_servers, acks=acks, linger_ms=5, client_id="it") as sink:
        futures = [
            sink.produce(
                topic_name, value, key=key, headers=headers, timestamp=1_700_000_000_000 + i
            )
            for i, (key, value, headers) in enumerate(records)
        ]
        assert sink.flush(timeout=30) == 0
        metadata = [f.result(timeout=1) for f in futures]
        stats = sink.metrics()
    assert stats["records_sent"] == 600
    assert stats["records_failed_total"] == 0
    assert stats["records_dropped_total"] == 0
    got = consume(broker.bootstrap_servers, topic_name, expected=600)
    by_partition: dict[int, list[Any]] = defaultdict(list)
    for record in got:
        by_partition[record.partition].append(record)
    expected: dict[int, list[int]] = defaultdict(list)
    for i, md in enumerate(metadata):
        expected[md.partition].append(i)
    for partition, indexes in expected.items():
        rows = by_partition[partition]
        assert [(r.key, r.value, list(r.headers), r.timestamp_ms) for r in rows] == [
            (records[i][0], records[i][1], records[i][2], 1_700_000_000_000 + i) for i in indexes
        ]
        if acks != 0:
            assert [r.offset for r in rows] == [metadata[i].offset for i in indexes]
    # A key always lands on the same partition.
    partitions_of_key = defaultdict(set)
    for (key, _, _), md in zip(records, metadata, strict=True):
        partitions_of_key[key].add(md.partition)
    assert all(len(p) == 1 for p in partitions_of_key.values())


@pytest.mark.mock
@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_every_codec(mock_cluster: Any, topic_name: str, codec: str) -> None:
    mock_cluster.create_topic(topic_name, 2, 3)
    with Sink(mock_cluster.bootstrap_servers, compression_type=codec) as sink:
        for i in range(300):
            sink.produce(topic_name, f"value {i}".encode() * 5, key=str(i % 7).encode())
        assert sink.flush(timeout=30) == 0
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=300)
    assert sorted(values_of(got)) == sorted(f"value {i}".encode() * 5 for i in range(300))


@pytest.mark.mock
def test_unknown_topic_is_created_and_delivered(mock_cluster: Any, topic_name: str) -> None:
    sent: list[tuple[bytes | None, bytes, list[tuple[str, bytes | None]]]] = [
        (b"k-\x00\xff", b"first \x00\x01\xfe\xff", [("trace", b"\x00t-1"), ("empty", b"")]),
        (None, b"second", [("none", None), ("dup", b"1"), ("dup", b"2")]),
        (b"", b"", []),
    ]
    with Sink(mock_cluster.bootstrap_servers) as sink:
        futures = [
            sink.produce(
                topic_name,
                value,
                key=key,
                partition=0,
                headers=headers,
                timestamp=1_700_000_000_000 + i,
            )
            for i, (key, value, headers) in enumerate(sent)
        ]
        assert sink.flush(timeout=30) == 0
        metadata = [future.result(timeout=1) for future in futures]
    assert [(md.partition, md.offset) for md in metadata] == [(0, 0), (0, 1), (0, 2)]
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=len(sent))
    assert [(r.partition, r.offset) for r in got] == [(0, 0), (0, 1), (0, 2)]
    assert [(r.key, r.value, r.headers, r.timestamp_ms) for r in got] == [
        (key, value, headers, 1_700_000_000_000 + i) for i, (key, value, headers) in enumerate(sent)
    ]


def _produce_through_faults(
    sink: Sink, topic: str, total: int, faults: dict[int, Callable[[], None]], hold: float = 3.0
) -> list[Any]:
    """Produce ``total`` keyed records; before each fault, let traffic run into
    the previous one for up to ``hold`` seconds (a flush, not a sleep)."""
    futures = []
    for i in range(total):
        fault = faults.get(i)
        if fault is not None:
            sink.flush(timeout=hold)
            fault()
        futures.append(sink.produce(topic, str(i).encode(), key=f"k{i % 64}".encode()))
    assert sink.flush(timeout=180) == 0
    return futures


def _cluster_and_sink(
    new_mock_cluster: Any, topic: str, *, request_timeout_ms: int
) -> tuple[Any, Sink]:
    """A 3-broker mock cluster with a 6-partition topic (RF 3), and an acks=all sink."""
    cluster = new_mock_cluster(3)
    cluster.create_topic(topic, 6, 3)
    # Leaders spread explicitly (partition p led by broker p % 3 + 1), so that a
    # fault on one broker always meets partitions it leads.
    for partition in range(6):
        cluster.set_partition_leader(topic, partition, partition % 3 + 1)
    sink = Sink(
        cluster.bootstrap_servers,
        acks="all",
        linger_ms=5,
        request_timeout_ms=request_timeout_ms,
        retry_backoff_ms=20,
        buffer_memory=256 * 1024 * 1024,
    )
    return cluster, sink


def _check_per_key_order(got: list[Any]) -> None:
    per_key: dict[bytes | None, list[int]] = defaultdict(list)
    for record in got:
        per_key[record.key].append(int(record.value))
    for series in per_key.values():
        first_seen = list(dict.fromkeys(series))
        assert first_seen == sorted(first_seen)  # order kept per key, so per partition


@pytest.mark.mock
def test_faults_lose_nothing_duplicate_nothing_keep_order(
    new_mock_cluster: Any, topic_name: str
) -> None:
    """100k keyed records, acks=all, while leaders move, a broker goes down and
    up, and the brokers answer with retriable errors."""
    cluster, sink = _cluster_and_sink(new_mock_cluster, topic_name, request_timeout_ms=1500)
    total = 100_000
    faults = {
        10_000: lambda: cluster.set_partition_leader(topic_name, 0, 2),
        20_000: lambda: cluster.push_request_errors(0, [6, 7, 13, 19, 6, 7, 19, 13]),
        30_000: lambda: cluster.set_partition_leader(topic_name, 3, 3),
        40_000: lambda: cluster.push_request_errors(0, [19] * 20),
        55_000: lambda: cluster.set_partition_leader(topic_name, 0, 1),
        70_000: lambda: cluster.push_request_errors(0, [6] * 10),
    }
    futures = _produce_through_faults(sink, topic_name, total, faults)
    stats = sink.metrics()
    sink.close(timeout=10)
    assert [f.exception() for f in futures if f.exception() is not None] == []
    assert stats["retries"] > 0
    assert {"NOT_LEADER_OR_FOLLOWER", "NOT_ENOUGH_REPLICAS"} <= set(stats["broker_errors"])
    got = consume(cluster.bootstrap_servers, topic_name, expected=total, timeout=120)
    values = [int(value) for value in values_of(got)]
    assert sorted(values) == list(range(total))  # nothing lost, nothing duplicated
    _check_per_key_order(got)


@pytest.mark.mock
def test_lost_responses_and_dead_brokers_lose_nothing(
    new_mock_cluster: Any, topic_name: str
) -> None:
    """Round trips longer than request_timeout_ms and a broker down then up.

    The broker may have appended a batch whose answer never came; the retry
    carries the same producer id and sequence. librdkafka's mock cluster does
    not check sequences, so a retry, or a stale request it processes late, can
    be written again anywhere later in the log: on this broker only "nothing
    is lost" can hold. Exactly-once and order with lost answers are shown on
    Kafka 2.3, which checks sequences (test_retries_after_lost_answers_...).
    """
    cluster, sink = _cluster_and_sink(new_mock_cluster, topic_name, request_timeout_ms=1000)
    total = 100_000
    faults = {
        20_000: lambda: cluster.set_broker_rtt(2, 2500),
        40_000: lambda: cluster.set_broker_rtt(2, 0),
        60_000: lambda: cluster.broker_down(1),
        80_000: lambda: cluster.broker_up(1),
    }
    futures = _produce_through_faults(sink, topic_name, total, faults)
    stats = sink.metrics()
    sink.close(timeout=10)
    assert [f.exception() for f in futures if f.exception() is not None] == []
    assert stats["broker_errors"].get("RequestTimeoutError", 0) > 0
    got = consume(cluster.bootstrap_servers, topic_name, expected=total, timeout=120, exact=False)
    assert {int(value) for value in values_of(got)} == set(range(total))  # nothing lost


class _LosingNetwork:
    """A real NetworkClient whose chosen Produce answers are lost on the way back.

    The broker appends the batch; the client sees a request timeout instead
    of the answer, exactly as when a response is lost, and must retry.
    """

    def __init__(self, inner: Any, lose: Callable[[], bool]) -> None:
        self._inner = inner
        self._lose = lose
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def send(self, node_id: int, request: Any, callback: Any, *, version: Any = None) -> None:
        if request.API_KEY == 0 and self._lose():
            from kafka_sink.errors import RequestTimeoutError
            from kafka_sink.net.client import ClientResponse

            def lost(response: Any) -> None:
                self.lost += 1
                callback(
                    ClientResponse(
                        response.node_id,
                        response.request,
                        response.version,
                        None,
                        RequestTimeoutError("the answer was lost"),
                        response.latency,
                    )
                )

            self._inner.send(node_id, request, lost, version=version)
            return
        self._inner.send(node_id, request, callback, version=version)


@pytest.mark.kafka23
def test_retries_after_lost_answers_are_not_duplicated(kafka23: Any, topic_name: str) -> None:
    from kafka_sink.net.client import NetworkClient

    kafka23.create_topic(topic_name, 3, 1)
    counter = iter(range(10**9))
    networks: list[_LosingNetwork] = []

    def factory(config: Any) -> Any:
        inner = NetworkClient(client_id=config.client_id, request_timeout=10.0)
        network = _LosingNetwork(inner, lambda: next(counter) % 2 == 0)  # every other is lost
        networks.append(network)
        return network

    sink = Sink(
        kafka23.bootstrap_servers,
        acks="all",
        linger_ms=5,
        batch_size=4096,
        network_factory=factory,
    )
    total = 20_000
    futures = [
        sink.produce(topic_name, str(i).encode(), key=f"k{i % 64}".encode()) for i in range(total)
    ]
    assert sink.flush(timeout=120) == 0
    stats = sink.metrics()
    sink.close(timeout=10)
    assert [f.exception() for f in futures if f.exception() is not None] == []
    assert networks[0].lost > 10
    assert stats["retries"] >= networks[0].lost
    assert stats["idempotence"] == "enabled"
    got = consume(kafka23.bootstrap_servers, topic_name, expected=total, timeout=120)
    assert sorted(int(value) for value in values_of(got)) == list(range(total))  # exactly once each
    _check_per_key_order(got)


@pytest.mark.mock
def test_all_brokers_down_stays_bounded_and_counts_drops(
    new_mock_cluster: Any, topic_name: str
) -> None:
    cluster = new_mock_cluster(1)
    cluster.create_topic(topic_name, 1, 1)
    sink = Sink(
        cluster.bootstrap_servers,
        buffer_memory=200_000,
        on_buffer_full="drop_newest",
        delivery_timeout_ms=600_000,
    )
    first = sink.produce(topic_name, b"warm-up")
    assert sink.flush(timeout=30) == 0
    assert first.result().offset == 0
    cluster.broker_down(1)
    futures = [sink.produce(topic_name, b"x" * 100, partition=0) for _ in range(5000)]
    stats = sink.metrics()
    assert stats["buffer_bytes_used"] <= 200_000
    dropped = stats["records_dropped"].get("buffer_full_drop_newest", 0)
    assert dropped > 0
    sink.close(timeout=1.0)
    outcomes = [f.exception(timeout=5) for f in futures]
    assert sum(isinstance(e, BufferFullError) for e in outcomes) == dropped
    assert all(e is not None for e in outcomes)  # nothing was delivered, nothing left pending
    assert all(isinstance(e, kafka_sink.DeliveryError) for e in outcomes)


def test_close_is_bounded_and_idempotent_with_every_broker_dead() -> None:
    with socket.socket() as closed_port:  # bound, never listening: connections are refused
        closed_port.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{closed_port.getsockname()[1]}"
        sink = Sink(address, delivery_timeout_ms=600_000)
        future = sink.produce("nowhere", b"never delivered")
        sink.close(timeout=0.5)
        sink.close(timeout=0.5)
    assert isinstance(future.exception(timeout=5), kafka_sink.SinkClosedError)
    with pytest.raises(kafka_sink.SinkClosedError):
        sink.produce("nowhere", b"after close")


@pytest.mark.mock
def test_interpreter_exit_flushes_without_close(mock_cluster: Any, topic_name: str) -> None:
    mock_cluster.create_topic(topic_name, 2, 3)
    result = run_python(
        """
        import os, kafka_sink
        sink = kafka_sink.Sink(os.environ["SERVERS"], linger_ms=50)
        for i in range(10_000):
            sink.produce(os.environ["TOPIC"], str(i).encode())
        # no flush, no close: the exit must deliver
        """,
        {"SERVERS": mock_cluster.bootstrap_servers, "TOPIC": topic_name},
    )
    assert result.returncode == 0, result.stderr
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=10_000, timeout=60)
    assert sorted(int(value) for value in values_of(got)) == list(range(10_000))


@pytest.mark.mock
def test_fork_child_and_parent_each_deliver_their_own_once(
    mock_cluster: Any, topic_name: str
) -> None:
    mock_cluster.create_topic(topic_name, 2, 3)
    result = run_python(
        """
        import os, kafka_sink
        sink = kafka_sink.Sink(os.environ["SERVERS"], linger_ms=200)
        topic = os.environ["TOPIC"]
        for i in range(100):
            sink.produce(topic, f"parent-before-{i}".encode())   # still buffered at fork
        pid = os.fork()
        who = "child" if pid == 0 else "parent"
        for i in range(100):
            sink.produce(topic, f"{who}-after-{i}".encode())
        left = sink.flush(30)
        stats = sink.metrics()
        sink.close(10)
        print(who, "left", left, stats["records_failed"], stats["records_dropped"],
              stats["broker_errors"], stats["idempotence"], stats["connections"], flush=True)
        if pid == 0:
            os._exit(0 if left == 0 else 3)
        _, status = os.waitpid(pid, 0)
        raise SystemExit(0 if left == 0 and os.waitstatus_to_exitcode(status) == 0 else 4)
        """,
        {"SERVERS": mock_cluster.bootstrap_servers, "TOPIC": topic_name},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=300, timeout=60)
    values = sorted(value.decode() for value in values_of(got))
    expected = sorted(
        [f"parent-before-{i}" for i in range(100)]
        + [f"parent-after-{i}" for i in range(100)]
        + [f"child-after-{i}" for i in range(100)]
    )
    assert values == expected  # each exactly once: the child did not resend the parent's


@pytest.mark.kafka23
def test_killing_the_leader_under_load(kafka23_cluster: Any, topic_name: str) -> None:
    kafka23_cluster.create_topic(topic_name, partitions=1, replication_factor=3)
    sink = Sink(kafka23_cluster.bootstrap_servers, acks="all", linger_ms=5, retry_backoff_ms=100)
    futures: list[DeliveryFuture] = []
    killed = None
    try:
        for i in range(20_000):
            if i == 5_000:
                sink.flush(timeout=30)
                first = futures[0].result()
                leader = _leader_of(kafka23_cluster, topic_name)
                killed = leader
                kafka23_cluster.kill_broker(leader)
                assert first.offset == 0
            futures.append(sink.produce(topic_name, str(i).encode()))
        assert sink.flush(timeout=120) == 0
    finally:
        sink.close(timeout=10)
        if killed is not None:
            kafka23_cluster.restart_broker(killed)
    assert [f.exception() for f in futures if f.exception()] == []
    got = consume(kafka23_cluster.bootstrap_servers, topic_name, expected=20_000, timeout=120)
    assert [int(value) for value in values_of(got)] == list(range(20_000))


def _leader_of(cluster: Any, topic: str) -> int:
    with kafka_sink.Connection(broker_list=cluster.bootstrap_servers, timeout=10) as connection:
        return connection.refresh_metadata([topic]).topics[topic][0].leader_id


def test_no_log_record_from_the_sender_once_closing_began() -> None:
    import logging
    import threading

    from kafka_sink.config import SinkConfig
    from kafka_sink.net.client import NetworkClient
    from kafka_sink.producer.sink import SENDER_THREAD_NAME

    # Per record: was the sink closed when it was emitted, and by which thread.
    records: list[tuple[bool, int | None, str]] = []
    sender_is_logging = threading.Event()
    sinks: list[Sink] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            closed = sinks[0].closed if sinks else False
            records.append((closed, record.thread, record.threadName or ""))
            if sum(name == SENDER_THREAD_NAME for _, _, name in records) >= 4:
                sender_is_logging.set()

    def network(config: SinkConfig) -> NetworkClient:
        # Reconnecting every 20 ms at most: while close() waits for the record,
        # the sender tries again (and would log each try) dozens of times.
        return NetworkClient(
            client_id=config.client_id, reconnect_backoff=0.01, reconnect_backoff_max=0.02
        )

    logger = logging.getLogger("kafka_sink")
    handler = Capture(logging.DEBUG)
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with socket.socket() as dead:  # every broker dead: connections keep failing
            dead.bind(("127.0.0.1", 0))
            sink = Sink(
                f"127.0.0.1:{dead.getsockname()[1]}",
                delivery_timeout_ms=600_000,
                network_factory=network,
            )
            sinks.append(sink)
            future = sink.produce("logs", b"never delivered")
            if not sender_is_logging.wait(timeout=60):
                pytest.fail(
                    "the sender logged fewer than 4 connection attempts within 60 s: "
                    f"{records}; nothing to silence"
                )
            sink.close(timeout=1.0)  # closing begins here: sink.closed turns true
            assert isinstance(future.exception(timeout=30), kafka_sink.SinkClosedError)
            # Whatever the sender thread still does after close() returned counts too:
            # wait for it to end before looking.
            sender_ids = {ident for _, ident, name in records if name == SENDER_THREAD_NAME}
            for thread in threading.enumerate():
                if thread.name == SENDER_THREAD_NAME and thread.ident in sender_ids:
                    thread.join(timeout=30)
                    assert not thread.is_alive(), "the sender thread outlived close() by 30 s"
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    from_sender = [closed for closed, _, name in records if name == SENDER_THREAD_NAME]
    assert from_sender.count(False) >= 4  # it did log before closing
    assert from_sender.count(True) == 0, f"{from_sender.count(True)} records once closing began"
