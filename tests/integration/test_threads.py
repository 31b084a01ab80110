"""Many producer threads at once, while the cluster changes under them.

32 threads produce keyed, numbered records (each thread owns its keys, so
each key's order is the thread's order) with the GIL switching as often as
CPython allows, while partition leaders move and a broker goes down and comes
back. Then the sink closes. The oracle consumer must find every record exactly
once, in order per key, and nothing may deadlock.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from kafka_sink import DeliveryError, Sink, UndeliveredRecord
from kafka_sink.testing import MockCluster
from tests.oracle import consume

THREADS = 32
KEYS_PER_THREAD = 2
RECORDS_PER_THREAD = 400
PARTITIONS = 6


class Progress:
    """A DeliveryReport that lets the test wait for a number of deliveries."""

    def __init__(self) -> None:
        self.count = 0
        self.failures: list[tuple[str, int]] = []
        self._changed = threading.Condition()

    def delivered(self, count: int) -> None:
        with self._changed:
            self.count += count
            self._changed.notify_all()

    def failed(self, error: DeliveryError, records: Sequence[UndeliveredRecord]) -> None:
        with self._changed:
            self.failures.append((error.message, len(records)))
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 120.0) -> None:
        with self._changed:
            reached = self._changed.wait_for(lambda: self.count >= count, timeout)
        assert reached, f"only {self.count} of {count} records delivered; failures {self.failures}"


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads as often as CPython allows: races show up sooner."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_32_threads_deliver_every_record_once_in_key_order_while_the_cluster_moves(
    new_mock_cluster: Callable[..., MockCluster], topic_name: str, fast_switching: None
) -> None:
    cluster = new_mock_cluster(3)
    cluster.create_topic(topic_name, PARTITIONS, 3)
    for partition in range(PARTITIONS):
        cluster.set_partition_leader(topic_name, partition, 1 + partition % 3)
    progress = Progress()
    sink = Sink(
        cluster.bootstrap_servers,
        acks=-1,
        linger_ms=2,
        retry_backoff_ms=20,
        retry_backoff_max_ms=200,
        delivery_timeout_ms=120_000,
        request_timeout_ms=5_000,
    )
    start = threading.Barrier(THREADS + 1)
    problems: list[BaseException] = []

    def produce(me: int) -> None:
        start.wait()
        try:
            for seq in range(RECORDS_PER_THREAD):
                key = b"t%d-k%d" % (me, seq % KEYS_PER_THREAD)
                value = b"%d:%d" % (me, seq)
                if seq % 2:
                    sink.enqueue(topic_name, value, key=key, report=progress)
                else:
                    sink.produce(topic_name, value, key=key, on_delivery=_count(progress))
        except BaseException as error:
            problems.append(error)

    threads = [threading.Thread(target=produce, args=(me,)) for me in range(THREADS)]
    for thread in threads:
        thread.start()
    start.wait()
    total = THREADS * RECORDS_PER_THREAD
    progress.wait_for(total // 5)
    for partition in range(PARTITIONS):  # every leader moves
        cluster.set_partition_leader(topic_name, partition, 1 + (partition + 1) % 3)
    progress.wait_for(total // 3)
    cluster.broker_down(2)
    progress.wait_for(total // 2)
    cluster.broker_up(2)
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive(), "a producer thread is stuck"
    assert not problems
    assert sink.flush(120) == 0
    sink.close(30)
    assert progress.failures == []
    assert progress.count == total

    records = consume(cluster.bootstrap_servers, topic_name, expected=total, timeout=120)
    by_key: dict[bytes, list[int]] = {}
    for record in records:  # sorted by (partition, offset): each key lives in one partition
        assert record.key is not None
        assert record.value is not None
        me, seq = (int(part) for part in record.value.split(b":"))
        assert record.key == b"t%d-k%d" % (me, seq % KEYS_PER_THREAD)
        by_key.setdefault(record.key, []).append(seq)
    assert len(by_key) == THREADS * KEYS_PER_THREAD
    for key, seqs in by_key.items():
        owned = int(key.split(b"-k")[1])
        assert seqs == list(range(owned, RECORDS_PER_THREAD, KEYS_PER_THREAD)), key


def _count(progress: Progress) -> Callable[[Any, DeliveryError | None], None]:
    def on_delivery(metadata: Any, error: DeliveryError | None) -> None:
        if error is None:
            progress.delivered(1)
        else:
            progress.failed(error, ())

    return on_delivery


class _WrappedLock:
    """A lock as a profiler or a debugging tool wraps one: acquire is Python code."""

    def __init__(self) -> None:
        self._lock = _real_lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = self._lock.acquire(False)
        if got or not blocking:
            return got
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    __enter__ = acquire

    def __exit__(self, *exc_info: object) -> None:
        self.release()


_real_lock = threading.Lock


def test_a_sink_built_while_threading_lock_is_wrapped_delivers_everything(
    new_mock_cluster: Callable[..., MockCluster],
    topic_name: str,
    fast_switching: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The compiled fast path appends only under a lock of threading's own type
    # (its non-blocking acquire runs no Python code); any other lock sends every
    # record down the Python path, while the sender drains batches at once.
    cluster = new_mock_cluster(1)
    cluster.create_topic(topic_name, 3, 1)
    monkeypatch.setattr(threading, "Lock", _WrappedLock)
    sink = Sink(cluster.bootstrap_servers, linger_ms=0, acks=1)
    monkeypatch.setattr(threading, "Lock", _real_lock)
    assert isinstance(sink._accumulator._lock, _WrappedLock)
    progress = Progress()
    total = 4 * 20000

    def produce(me: int) -> None:
        for seq in range(20000):
            sink.enqueue(topic_name, b"%d:%d" % (me, seq), key=b"t%d" % me, report=progress)

    threads = [threading.Thread(target=produce, args=(me,)) for me in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sink.flush(120) == 0
    sink.close(30)
    assert progress.count == total
    records = consume(cluster.bootstrap_servers, topic_name, expected=total, timeout=120)
    assert sorted(r.value for r in records if r.value) == sorted(
        b"%d:%d" % (me, seq) for me in range(4) for seq in range(20000)
    )
