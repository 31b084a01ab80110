"""Delivery futures as Python expects them: concurrent.futures and asyncio interop.

A DeliveryFuture is a ``concurrent.futures.Future`` that makes no lock until
something waits on it: these tests wait on futures in every way the standard
library offers (``result``, ``wait``, ``as_completed``, ``add_done_callback``,
``asyncio.wrap_future``), with the outcome arriving before and after the wait
begins, and through the same path a batch resolves its futures.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import kafka_sink
from kafka_sink.errors import (
    DeliveryError,
    DeliveryTimeoutError,
    InvalidArgumentError,
    KafkaSinkError,
    SinkClosedError,
    WaitTimeoutError,
)
from kafka_sink.producer.accumulator import ProducerBatch
from kafka_sink.producer.futures import (
    BatchOutcome,
    DeliveryFuture,
    DoneCallback,
    RecordMetadata,
    confluent_style,
)
from kafka_sink.protocol.codecs import Compression
from tests.unit.fake_sink import fake_sink

STAMP = 1_700_000_000_000


def delivered(base_offset: int = 100, partition: int = 0) -> BatchOutcome:
    return BatchOutcome("logs", partition, base_offset)


def failed(error: DeliveryError | None = None) -> BatchOutcome:
    return BatchOutcome("logs", 0, -1, error=error or DeliveryError("refused", topic="logs"))


def later(delay: float, action: Callable[[], object]) -> threading.Thread:
    """Run ``action`` on another thread (as the sender would) after ``delay`` seconds."""

    def run() -> None:
        time.sleep(delay)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def batch_of(futures: list[DeliveryFuture]) -> ProducerBatch:
    """A batch holding ``futures``, as the accumulator builds it."""
    batch = ProducerBatch("logs", 0, Compression.NONE, 1 << 20, 0.0)
    for future in futures:
        batch.builder.append(STAMP, None, b"v", ())
        batch.add(future, None)
    return batch


# -- the state -------------------------------------------------------------------------


def test_a_delivery_future_is_a_concurrent_future_that_makes_no_lock_until_waited_on() -> None:
    future = DeliveryFuture(STAMP)
    assert isinstance(future, concurrent.futures.Future)
    assert (future.running(), future.done(), future.cancelled()) == (True, False, False)
    assert future._waiter is None  # no Condition per record
    assert future.cancel() is False  # handed to the sink: it cannot be recalled
    assert future.running()
    future.resolve(delivered())
    assert (future.running(), future.done(), future.cancelled()) == (False, True, False)
    assert future.cancel() is False
    assert future._waiter is None  # nothing waited: still no lock
    assert future.result() == RecordMetadata("logs", 0, 100, STAMP)


def test_only_the_sink_completes_a_delivery_future() -> None:
    future = DeliveryFuture(STAMP)
    with pytest.raises(concurrent.futures.InvalidStateError):
        future.set_result(RecordMetadata("logs", 0, 1, STAMP))
    with pytest.raises(concurrent.futures.InvalidStateError):
        future.set_exception(DeliveryError("no"))
    with pytest.raises(concurrent.futures.InvalidStateError):
        future.set_running_or_notify_cancel()
    with pytest.raises(AttributeError):
        future._state = "FINISHED"
    assert future.running()


# -- result(timeout): a wait that runs out, and a record that expired ------------------


def test_a_wait_that_runs_out_raises_timeout_error_and_the_delivery_goes_on() -> None:
    future = DeliveryFuture(STAMP)
    start = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        future.result(timeout=0.05)
    assert time.monotonic() - start >= 0.04
    error = info.value
    assert isinstance(error, WaitTimeoutError)
    assert isinstance(error, concurrent.futures.TimeoutError)  # the same class from 3.11
    assert isinstance(error, KafkaSinkError)
    assert not isinstance(error, DeliveryError)  # the record has not failed
    assert error.code == kafka_sink.ErrorCode.WAIT_TIMEOUT
    assert error.timeout == 0.05
    with pytest.raises(WaitTimeoutError):
        future.exception(timeout=0)
    assert future.running()
    later(0.02, lambda: future.resolve(delivered(7)))
    assert future.result(timeout=5).offset == 7


def test_a_record_that_expired_raises_delivery_timeout_error() -> None:
    future = DeliveryFuture(STAMP)
    expired = DeliveryTimeoutError("not delivered within delivery_timeout_ms", topic="logs")
    later(0.02, lambda: future.resolve(failed(expired)))
    with pytest.raises(DeliveryTimeoutError) as info:
        future.result(timeout=5)
    assert info.value is expired
    assert not isinstance(info.value, TimeoutError)
    assert future.exception(timeout=0) is expired


def test_a_failure_is_the_futures_exception() -> None:
    future = DeliveryFuture(STAMP)
    error = SinkClosedError("closed")
    future.resolve(failed(error))
    assert future.exception() is error
    with pytest.raises(SinkClosedError):
        future.result()


# -- add_done_callback -----------------------------------------------------------------


def test_done_callbacks_added_before_completion_run_on_the_resolving_thread_in_order() -> None:
    calls: list[tuple[str, Any, str]] = []
    future = DeliveryFuture(
        STAMP, lambda m, e: calls.append(("on_delivery", m, threading.current_thread().name))
    )

    def note(name: str) -> DoneCallback:
        return lambda f: calls.append((name, f, threading.current_thread().name))

    for name in ("first", "second"):
        future.add_done_callback(note(name))
    assert calls == []
    resolver = later(0, lambda: future.resolve(delivered()))
    resolver.join(5)
    assert [call[0] for call in calls] == ["on_delivery", "first", "second"]
    assert calls[1][1] is future
    assert calls[2][1] is future
    assert {call[2] for call in calls} == {resolver.name}


def test_a_done_callback_added_after_completion_runs_at_once_on_the_caller() -> None:
    future = DeliveryFuture(STAMP)
    future.resolve(delivered())
    seen: list[tuple[concurrent.futures.Future[RecordMetadata], str]] = []
    future.add_done_callback(lambda f: seen.append((f, threading.current_thread().name)))
    assert seen == [(future, threading.current_thread().name)]


def test_a_done_callback_that_raises_is_counted_and_the_others_still_run() -> None:
    future = DeliveryFuture(STAMP)
    ran: list[str] = []

    def broken(f: object) -> None:
        raise RuntimeError("bug in a callback")

    future.add_done_callback(broken)
    future.add_done_callback(lambda f: ran.append("after"))
    assert future.resolve(delivered()) is False  # the sender counts a callback error
    assert ran == ["after"]
    assert future.result().offset == 100


def test_a_done_callback_that_raises_after_completion_is_logged_as_concurrent_futures_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    future = DeliveryFuture(STAMP)
    future.resolve(delivered())

    def broken(f: object) -> None:
        raise RuntimeError("bug in a callback")

    with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
        future.add_done_callback(broken)  # does not raise
    (record,) = [r for r in caplog.records if r.name == "concurrent.futures"]
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError


def test_a_batch_resolves_a_future_that_only_has_a_done_callback() -> None:
    futures = [DeliveryFuture(STAMP) for _ in range(3)]
    seen: list[int] = []
    futures[1].add_done_callback(lambda f: seen.append(f.result().offset))
    assert batch_of(futures).resolve(delivered(40)) == 0
    assert seen == [41]
    assert [f.result().offset for f in futures] == [40, 41, 42]


# -- concurrent.futures.wait and as_completed ------------------------------------------


def test_wait_all_completed_sees_futures_resolved_on_another_thread() -> None:
    futures = [DeliveryFuture(STAMP) for _ in range(4)]
    futures[0].resolve(delivered())  # done before the wait begins
    later(0.02, lambda: batch_of(futures[1:]).resolve(delivered(10)))
    done, not_done = concurrent.futures.wait(futures, timeout=5)
    assert done == set(futures)
    assert not not_done
    assert all(not f._waiters for f in futures)  # the waiter was taken off again


def test_wait_first_completed_and_first_exception() -> None:
    futures = [DeliveryFuture(STAMP) for _ in range(3)]
    later(0.02, lambda: futures[2].resolve(failed()))
    done, not_done = concurrent.futures.wait(
        futures, timeout=5, return_when=concurrent.futures.FIRST_COMPLETED
    )
    assert done == {futures[2]}
    assert not_done == set(futures[:2])
    done, _ = concurrent.futures.wait(
        futures, timeout=5, return_when=concurrent.futures.FIRST_EXCEPTION
    )
    assert futures[2] in done  # already failed: returns at once
    later(0.02, lambda: futures[0].resolve(failed()))
    done, not_done = concurrent.futures.wait(
        futures[:2], timeout=5, return_when=concurrent.futures.FIRST_EXCEPTION
    )
    assert done == {futures[0]}
    assert not_done == {futures[1]}


def test_wait_with_a_timeout_returns_what_is_not_done() -> None:
    futures = [DeliveryFuture(STAMP) for _ in range(2)]
    futures[0].resolve(delivered())
    done, not_done = concurrent.futures.wait(futures, timeout=0.05)
    assert (done, not_done) == ({futures[0]}, {futures[1]})
    assert not futures[1]._waiters


def test_as_completed_yields_futures_in_the_order_they_complete() -> None:
    futures = [DeliveryFuture(STAMP, index=i) for i in range(4)]
    futures[3].resolve(delivered(0))

    def resolve_in_turn() -> None:
        for future in (futures[1], futures[0], futures[2]):
            future.resolve(delivered(0))
            time.sleep(0.01)

    later(0.02, resolve_in_turn)
    order = [f.result().offset for f in concurrent.futures.as_completed(futures, timeout=5)]
    assert order == [3, 1, 0, 2]


def test_as_completed_runs_out_with_timeout_error() -> None:
    futures = [DeliveryFuture(STAMP) for _ in range(2)]
    futures[0].resolve(delivered())
    completed = concurrent.futures.as_completed(futures, timeout=0.05)
    assert next(completed) is futures[0]
    with pytest.raises(concurrent.futures.TimeoutError):
        next(completed)
    assert not futures[1]._waiters


def test_waits_and_callbacks_racing_the_batch_never_miss_the_outcome() -> None:
    # The outcome is published without a lock; every way of waiting begins
    # while batches resolve on another thread, and each must see its outcome.
    rounds = 300
    batches = [[DeliveryFuture(STAMP) for _ in range(4)] for _ in range(rounds)]
    called = [0] * rounds

    def resolve_all() -> None:
        for futures in batches:
            batch_of(futures).resolve(delivered())

    resolver = later(0, resolve_all)
    for n, futures in enumerate(batches):

        def count(f: object, n: int = n) -> None:
            called[n] += 1

        futures[0].add_done_callback(count)
        assert futures[1].result(timeout=5).offset == 101
        assert not concurrent.futures.wait(futures[2:3], timeout=5).not_done
        assert next(iter(concurrent.futures.as_completed(futures[3:], timeout=5))) is futures[3]
    resolver.join(5)
    assert called == [1] * rounds


# -- asyncio ---------------------------------------------------------------------------


def test_wrap_future_awaits_a_delivery_on_a_real_loop() -> None:
    async def main() -> tuple[RecordMetadata, DeliveryError, int]:
        ok, bad = DeliveryFuture(STAMP), DeliveryFuture(STAMP)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        ticker = asyncio.ensure_future(tick())
        later(0.05, lambda: ok.resolve(delivered(5)))
        later(0.06, lambda: bad.resolve(failed()))
        metadata = await asyncio.wrap_future(ok)
        with pytest.raises(DeliveryError) as info:
            await asyncio.wrap_future(bad)
        ticker.cancel()
        return metadata, info.value, ticks

    metadata, error, ticks = asyncio.run(main())
    assert metadata == RecordMetadata("logs", 0, 5, STAMP)
    assert error.message == "refused"
    assert ticks >= 3  # the loop ran while the deliveries were pending


def test_cancelling_the_asyncio_wrapper_does_not_recall_the_record() -> None:
    future = DeliveryFuture(STAMP)

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.wrap_future(future), 0.02)

    asyncio.run(main())
    assert future.running()
    assert not future.cancelled()
    assert future.resolve(delivered()) is True  # the loop is closed: nothing to tell it
    assert future.result().offset == 100


# -- a Sink: produce, flush_async, aclose ----------------------------------------------


def test_a_sinks_futures_work_with_wait_and_asyncio() -> None:
    sink, _ = fake_sink()
    with sink:
        futures = [sink.produce("logs", f"r{i}".encode(), key=b"k") for i in range(5)]
        done, not_done = concurrent.futures.wait(futures, timeout=10)
        assert (len(done), not_done) == (5, set())
        assert [f.result().offset for f in futures] == list(range(5))

        async def main() -> RecordMetadata:
            return await asyncio.wrap_future(sink.produce("logs", b"async", key=b"k"))

        assert asyncio.run(main()).offset == 5


def test_flush_async_and_aclose_do_not_block_the_loop() -> None:
    sink, _ = fake_sink(linger_ms=60_000)

    async def main() -> tuple[int, int, list[str]]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        ticker = asyncio.ensure_future(tick())
        async with sink:
            futures = [sink.produce("logs", b"v") for _ in range(20)]
            left = await sink.flush_async(timeout=10)
            await asyncio.sleep(0.01)
        ticker.cancel()
        assert sink.closed
        return left, ticks, [f"{f.result().partition}" for f in futures]

    left, ticks, partitions = asyncio.run(main())
    assert left == 0
    assert len(partitions) == 20
    assert ticks >= 5


def test_aclose_is_bounded_by_its_timeout_and_fails_what_is_left() -> None:
    # Nothing answers on this address: the records can only fail at close.
    sink = kafka_sink.Sink("127.0.0.1:1", linger_ms=0)
    future = sink.produce("logs", b"never delivered")

    async def main() -> float:
        start = time.monotonic()
        assert await sink.flush_async(timeout=0.1) == 1
        await sink.aclose(timeout=0.2)
        return time.monotonic() - start

    elapsed = asyncio.run(main())
    assert elapsed < 2.0
    assert isinstance(future.exception(timeout=5), SinkClosedError)


# -- on_delivery in confluent-kafka's order --------------------------------------------


def test_confluent_style_passes_the_error_first() -> None:
    calls: list[tuple[object, object]] = []
    callback = confluent_style(lambda err, msg: calls.append((err, msg)))
    DeliveryFuture(STAMP, callback).resolve(delivered(3))
    error = DeliveryError("refused")
    DeliveryFuture(STAMP, callback).resolve(failed(error))
    assert calls == [(None, RecordMetadata("logs", 0, 3, STAMP)), (error, None)]
    assert kafka_sink.confluent_style is confluent_style
    with pytest.raises(InvalidArgumentError):
        confluent_style("not callable")  # type: ignore[arg-type]  # not a callable on purpose


def test_confluent_style_through_a_sink() -> None:
    sink, _ = fake_sink()
    calls: list[tuple[object, object]] = []
    with sink:
        sink.produce(
            "logs", b"v", key=b"k", on_delivery=confluent_style(lambda e, m: calls.append((e, m)))
        )
        assert sink.flush(10) == 0
    ((err, msg),) = calls
    assert err is None
    assert isinstance(msg, RecordMetadata)
    assert msg.topic == "logs"
