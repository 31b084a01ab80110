"""The accumulator and sender, driven turn by turn on a fake clock and network."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from kafka_sink.config import SinkConfig
from kafka_sink.errors import (
    BufferFullError,
    DeliveryError,
    DeliveryTimeoutError,
    RecordTooLargeError,
    SinkClosedError,
)
from kafka_sink.producer.accumulator import RecordAccumulator
from kafka_sink.producer.futures import DeliveryFuture
from kafka_sink.producer.metrics import SinkMetrics
from kafka_sink.producer.sender import Sender
from kafka_sink.protocol.records import decode_batches
from tests.fakes import FakeCluster, FakeNetwork


@dataclass
class Harness:
    cluster: FakeCluster
    config: SinkConfig
    net: FakeNetwork
    acc: RecordAccumulator
    sender: Sender
    metrics: SinkMetrics

    def produce(
        self,
        value: bytes,
        *,
        key: bytes | None = None,
        partition: int | None = 0,
        topic: str = "logs",
        callback: Any = None,
    ) -> DeliveryFuture:
        future = DeliveryFuture(1_700_000_000_000, callback)
        self.acc.append(topic, partition, 1_700_000_000_000, key, value, (), future, True)
        return future

    def run_until(self, done: Callable[[], bool], turns: int = 500) -> None:
        for _ in range(turns):
            if done():
                return
            self.sender.run_once()
        raise AssertionError("condition not reached")

    def produce_requests(self) -> list[Any]:
        return [r for _, r, _ in self.net.sent if r.API_KEY == 0]

    def log(self, partition: int = 0, topic: str = "logs") -> list[tuple[int, bytes | None]]:
        out: list[tuple[int, bytes | None]] = []
        for wire in self.cluster.logs.get((topic, partition), []):
            for batch in decode_batches(wire):
                out.extend((batch.base_sequence + i, r.value) for i, r in enumerate(batch.records))
        return out


def harness(partitions: int = 2, **options: Any) -> Harness:
    cluster = FakeCluster(3)
    cluster.add_topic("logs", partitions, leader=2)
    options.setdefault("linger_ms", 5)
    config = SinkConfig.build(["fake:9001"], **options)
    metrics = SinkMetrics()
    net = FakeNetwork(cluster, request_timeout=config.request_timeout_ms / 1000)
    acc = RecordAccumulator(config, clock=cluster.clock, wakeup=net.wakeup, metrics=metrics)
    sender = Sender(config, acc, net, lambda t, k, v, n: 0, metrics, cluster.clock)
    return Harness(cluster, config, net, acc, sender, metrics)


def test_records_wait_for_linger_then_go_in_one_batch() -> None:
    h = harness(linger_ms=50)
    futures = [h.produce(f"r{i}".encode()) for i in range(10)]
    h.run_until(lambda: h.metrics.idempotence == "enabled")
    start = h.cluster.clock.now
    h.run_until(lambda: all(f.done() for f in futures))
    assert h.cluster.clock.now - start >= 0.045  # it lingered (fake time)
    (request,) = h.produce_requests()
    (batch,) = decode_batches(request.topic_data[0].partition_data[0].records)
    assert [r.value for r in batch.records] == [f"r{i}".encode() for i in range(10)]
    assert [f.result().offset for f in futures] == list(range(10))
    assert h.metrics.records_sent == 10
    assert h.metrics.batches_sent == 1


def test_idle_sender_does_not_spin() -> None:
    h = harness()
    h.run_until(lambda: h.metrics.idempotence == "enabled")
    polls = len(h.net.polls)
    for _ in range(5):
        h.sender.run_once()
    assert len(h.net.polls) == polls + 5
    assert all(t > 1.0 for t in h.net.polls[-5:])  # long waits: nothing to do


def test_idempotent_sequences_increase_per_partition() -> None:
    h = harness(linger_ms=0)
    first = [h.produce(b"a"), h.produce(b"b")]
    h.run_until(lambda: all(f.done() for f in first))
    second = [h.produce(b"c")]
    h.run_until(lambda: all(f.done() for f in second))
    assert h.log() == [(0, b"a"), (1, b"b"), (2, b"c")]
    batches = [
        decode_batches(r.topic_data[0].partition_data[0].records)[0] for r in h.produce_requests()
    ]
    assert {b.producer_id for b in batches} == {1001}
    assert [b.base_sequence for b in batches] == [0, 2]


def test_retry_after_a_lost_answer_does_not_duplicate() -> None:
    h = harness(linger_ms=0, request_timeout_ms=1000)
    h.run_until(lambda: h.metrics.idempotence == "enabled")
    h.cluster.brokers[2].silent = True  # appends, but the answer never comes
    future = h.produce(b"once")
    h.run_until(lambda: len(h.cluster.logs.get(("logs", 0), [])) == 1)
    h.cluster.brokers[2].silent = False
    h.run_until(future.done)
    assert future.exception() is None
    assert h.log() == [(0, b"once")]  # the retry was recognised as a duplicate
    assert h.metrics.retries >= 1
    assert len(h.produce_requests()) >= 2


@pytest.mark.parametrize(
    "code", [6, 7, 13, 19]
)  # NOT_LEADER, TIMED_OUT, NETWORK, NOT_ENOUGH_REPLICAS
def test_retriable_errors_are_retried_not_failed(code: int) -> None:
    h = harness(linger_ms=0)
    h.run_until(lambda: h.metrics.idempotence == "enabled")
    h.cluster.produce_errors = [code, code]
    futures = [h.produce(b"x"), h.produce(b"y")]
    h.run_until(lambda: all(f.done() for f in futures))
    assert [f.exception() for f in futures] == [None, None]
    assert h.log() == [(0, b"x"), (1, b"y")]
    assert h.metrics.retries == 2


def test_leader_move_refreshes_metadata() -> None:
    h = harness(linger_ms=0)
    h.run_until(lambda: h.metrics.idempotence == "enabled")
    h.cluster.topics["logs"][0] = 3
    future = h.produce(b"moved")
    h.run_until(future.done)
    assert future.exception() is None
    assert h.metrics.metadata_refreshes >= 2
    assert [n for n, r, _ in h.net.sent if r.API_KEY == 0][-1] == 3


def test_unknown_producer_id_takes_a_new_id_and_restarts_sequences() -> None:
    h = harness(linger_ms=0)
    first = h.produce(b"a")
    h.run_until(first.done)
    h.cluster.sequences.clear()  # the broker lost the producer's state
    h.cluster.produce_errors = [59]
    second = h.produce(b"b")
    h.run_until(second.done)
    assert second.exception() is None
    batches = [
        decode_batches(r.topic_data[0].partition_data[0].records)[0] for r in h.produce_requests()
    ]
    assert (batches[-1].producer_id, batches[-1].base_sequence) == (1002, 0)


def test_non_retriable_error_fails_the_batch_and_gives_back_its_sequence() -> None:
    h = harness(linger_ms=0)
    h.run_until(lambda: h.metrics.idempotence == "enabled")
    h.cluster.produce_errors = [87]  # INVALID_RECORD
    bad = h.produce(b"bad")
    h.run_until(bad.done)
    error = bad.exception()
    assert isinstance(error, DeliveryError)
    assert "INVALID_RECORD" in error.message
    assert error.context["cause"].code == 87
    good = h.produce(b"good")
    h.run_until(good.done)
    assert good.exception() is None
    assert h.log() == [(0, b"good")]  # sequence 0 was given back and reused
    assert h.metrics.failed["invalid_record"] == 1


def test_message_too_large_splits_the_batch_and_fails_only_the_big_record() -> None:
    h = harness(linger_ms=60000)
    h.run_until(lambda: h.metrics.idempotence == "enabled")
    h.cluster.produce_errors = [10, 0, 10, 0]  # batch refused; then records one by one
    futures = [h.produce(b"small-1"), h.produce(b"huge"), h.produce(b"small-2")]
    h.acc.begin_close()  # hurry: no linger
    h.run_until(lambda: all(f.done() for f in futures))
    outcomes = [f.exception() for f in futures]
    assert outcomes[0] is None
    assert isinstance(outcomes[1], RecordTooLargeError)
    assert outcomes[2] is None
    assert [v for _, v in h.log()] == [b"small-1", b"small-2"]


def test_a_record_that_arrives_after_the_sender_finished_is_failed_at_once() -> None:
    # A producing thread can pass the sink's closed check just before close()
    # and reach the accumulator after the sender thread took its last look: its
    # record must still be told its fate, not wait for a sender that is gone.
    h = harness(linger_ms=60000, max_request_size=2048)
    before = h.produce(b"buffered")
    h.acc.begin_close()
    h.sender.abort(SinkClosedError("closed"))
    h.acc.stop_sending()
    assert isinstance(before.exception(0), SinkClosedError)
    called: list[Any] = []
    late = h.produce(b"late", callback=lambda metadata, error: called.append(error))
    big = h.produce(b"x" * 4096)

    class Report:
        needs_records = True

        def __init__(self) -> None:
            self.failed_records: list[Any] = []

        def delivered(self, count: int) -> None:
            raise AssertionError("nothing is delivered after the close")

        def failed(self, error: DeliveryError, records: Any) -> None:
            self.failed_records.extend((type(error), r.value) for r in records)

    report = Report()
    h.acc.append("logs", 0, 1_700_000_000_000, None, b"queued", (), None, True, report)
    assert isinstance(late.exception(0), SinkClosedError)
    assert len(called) == 1
    assert isinstance(called[0], SinkClosedError)
    assert isinstance(big.exception(0), RecordTooLargeError)
    assert report.failed_records == [(SinkClosedError, b"queued")]
    assert h.metrics.dropped["closed"] == 2


def test_record_over_max_request_size_is_rejected_alone() -> None:
    h = harness(linger_ms=0, max_request_size=2048)
    ok1, big, ok2 = h.produce(b"a"), h.produce(b"x" * 4096), h.produce(b"b")
    h.run_until(lambda: ok1.done() and big.done() and ok2.done())
    error = big.exception()
    assert isinstance(error, RecordTooLargeError)
    assert "max_request_size" in error.message
    assert ok1.exception() is None
    assert ok2.exception() is None
    assert h.metrics.dropped["too_large"] == 1


def test_delivery_timeout_fails_records_when_brokers_are_down() -> None:
    h = harness(linger_ms=0, delivery_timeout_ms=2000, request_timeout_ms=500)
    h.run_until(lambda: h.metrics.idempotence == "enabled")
    for broker in h.cluster.brokers.values():
        broker.up = False
    future = h.produce(b"lost")
    h.run_until(future.done, turns=5000)
    assert isinstance(future.exception(), DeliveryTimeoutError)
    assert h.metrics.failed["timeout"] == 1
    assert h.acc.buffer_used == 0


def test_unknown_topic_waits_for_metadata_then_is_delivered() -> None:
    h = harness(linger_ms=0)
    h.cluster.auto_create = True
    future = h.produce(b"new", topic="fresh", partition=None)
    h.run_until(future.done)
    assert future.exception() is None
    assert future.result().topic == "fresh"
    assert h.log(topic="fresh") == [(0, b"new")]


def test_drop_newest_when_the_buffer_is_full() -> None:
    h = harness(linger_ms=60000, buffer_memory=1000, on_buffer_full="drop_newest")
    kept = [h.produce(b"x" * 100) for _ in range(4)]
    dropped = h.produce(b"y" * 100)
    h.sender.run_once()
    error = dropped.exception(0)
    assert isinstance(error, BufferFullError)
    assert "drop_newest" in error.message
    assert not any(f.done() for f in kept)
    assert h.metrics.dropped["buffer_full_drop_newest"] == 1
    assert h.acc.buffer_used <= 1000


def test_drop_oldest_evicts_unsent_batches() -> None:
    h = harness(linger_ms=60000, buffer_memory=1000, on_buffer_full="drop_oldest")
    old = [h.produce(b"o" * 100, partition=0) for _ in range(4)]
    new = h.produce(b"n" * 100, partition=1)
    h.sender.run_once()
    assert all(isinstance(f.exception(0), BufferFullError) for f in old)
    assert not new.done()
    assert h.metrics.dropped["buffer_full_drop_oldest"] == 4
    assert h.acc.buffer_used <= 1000


def test_block_policy_gives_up_after_max_block_ms() -> None:
    h = harness(linger_ms=60000, buffer_memory=1000, on_buffer_full="block", max_block_ms=20)
    for _ in range(4):
        h.produce(b"x" * 100)
    # The fake clock does not move by itself: give the wait a real deadline.
    h.acc._clock = __import__("time").monotonic
    refused = h.produce(b"y" * 100)
    h.sender.run_once()
    error = refused.exception(0)
    assert isinstance(error, BufferFullError)
    assert "max_block_ms" in error.message


def test_callback_errors_are_contained_and_counted() -> None:
    h = harness(linger_ms=0)
    seen: list[Any] = []

    def bad(metadata: Any, error: Any) -> None:
        seen.append((metadata, error))
        raise RuntimeError("user bug")

    futures = [h.produce(b"a", callback=bad), h.produce(b"b", callback=bad)]
    h.run_until(lambda: all(f.done() for f in futures))
    assert len(seen) == 2
    assert h.metrics.callback_errors == 2
    assert h.metrics.records_sent == 2


def test_acks_zero_completes_without_answers() -> None:
    h = harness(linger_ms=0, acks=0)
    assert h.metrics.idempotence == "disabled by configuration"
    futures = [h.produce(b"a"), h.produce(b"b")]
    h.run_until(lambda: all(f.done() for f in futures))
    assert [f.result().offset for f in futures] == [-1, -1]
    assert [r.acks for r in h.produce_requests()] == [0]


def test_idempotence_falls_back_when_the_broker_cannot() -> None:
    h = harness(linger_ms=0)
    for broker in h.cluster.brokers.values():
        broker.max_versions[22] = -1  # no InitProducerId
    future = h.produce(b"plain")
    h.run_until(future.done)
    assert future.exception() is None
    assert h.metrics.idempotence.startswith("disabled")
    (batch,) = decode_batches(h.produce_requests()[0].topic_data[0].partition_data[0].records)
    assert batch.producer_id == -1


def test_one_batch_per_partition_in_flight_keeps_order_across_retries() -> None:
    h = harness(linger_ms=0, batch_size=64)
    h.run_until(lambda: h.metrics.idempotence == "enabled")
    h.cluster.produce_errors = [6, 0, 6]
    futures = [h.produce(f"{i:03}".encode() * 20) for i in range(6)]
    h.run_until(lambda: all(f.done() for f in futures))
    assert [v for _, v in h.log()] == [f"{i:03}".encode() * 20 for i in range(6)]


def test_metadata_refreshes_keep_asking_for_known_topics() -> None:
    h = harness(linger_ms=0)
    first = h.produce(b"a", partition=None)
    h.run_until(first.done)
    h.cluster.topics["logs"][0] = 3  # the leader moves after the topic became known
    second = h.produce(b"b")
    h.run_until(second.done)
    assert second.exception() is None
    refreshes = [r for _, r, _ in h.net.sent if r.API_KEY == 3]
    assert [t.name for t in refreshes[-1].topics] == ["logs"]


def test_unreachable_leader_makes_the_sender_ask_for_new_metadata() -> None:
    h = harness(linger_ms=0)
    first = h.produce(b"a")
    h.run_until(first.done)
    refreshes = h.metrics.metadata_refreshes
    # The leader dies before anything is sent to it: no request can fail.
    h.cluster.brokers[2].up = False
    h.cluster.topics["logs"][0] = 3
    states = {2: "backoff"}

    def connection_states() -> dict[int, str]:
        return {n: states.get(n, "ready") for n in h.net.nodes}

    h.net.connection_states = connection_states  # type: ignore[method-assign]  # node 2 backs off
    second = h.produce(b"b")
    h.run_until(second.done)
    assert second.exception() is None
    assert h.metrics.metadata_refreshes > refreshes
    assert [n for n, r, _ in h.net.sent if r.API_KEY == 0][-1] == 3


def test_a_leader_missing_from_the_broker_list_is_waited_out() -> None:
    h = harness(linger_ms=0, retry_backoff_ms=10)
    first = h.produce(b"a")
    h.run_until(first.done)
    # Broker 2 leaves the metadata's broker list but is still named leader.
    gone = h.cluster.brokers.pop(2)
    gone.up = False
    h.sender._metadata_due = 0.0  # a routine refresh happens now
    h.sender.run_once()
    assert h.sender._metadata.leader("logs", 0) is None
    h.cluster.brokers[2] = gone  # back, still the leader
    gone.up = True
    second = h.produce(b"b")
    h.run_until(second.done)
    assert second.exception() is None
    assert h.log() == [(0, b"a"), (1, b"b")]


def test_records_placed_after_metadata_queue_behind_records_waiting_for_it() -> None:
    h = harness(linger_ms=0)
    early = h.produce(b"early", partition=None)  # no metadata yet: waits for it
    # The producing thread now knows the partition count and picks partition 0
    # itself, before the sender has placed the waiting record.
    late = DeliveryFuture(1_700_000_000_000)
    h.acc.append("logs", 0, 1_700_000_000_000, None, b"late", (), late, False)
    h.run_until(lambda: early.done() and late.done())
    assert [v for _, v in h.log()] == [b"early", b"late"]
