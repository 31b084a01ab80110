"""The compiled hot path (kafka_sink._speedups) against its pure-Python reference.

The whole suite runs once on each path (CI sets KAFKA_SINK_PURE=1 for the
second run); the tests here compare the two directly, in the same process,
whichever path the rest of the suite is on.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kafka_sink
from kafka_sink import _speedups
from kafka_sink.errors import InvalidArgumentError, SinkClosedError
from kafka_sink.producer import partitioner as pure_partitioner
from kafka_sink.producer.futures import DeliveryFuture
from kafka_sink.protocol import records as records_module
from kafka_sink.protocol.codecs import Compression
from kafka_sink.protocol.records import PureBatchBuilder, decode_batches

# The compiled builder calls the pure module's helpers; on the pure run of the
# suite nothing configured it yet.
_speedups.configure(records=records_module, invalid_argument=InvalidArgumentError)

CODECS = list(Compression)
blobs = st.one_of(
    st.none(),
    st.just(b""),
    st.binary(max_size=64),
    st.binary(min_size=8000, max_size=20000),  # lengths past the pure encoder's varint table
)
headers = st.lists(
    st.tuples(st.text(max_size=20), st.one_of(st.none(), st.binary(max_size=40))), max_size=4
)
records = st.lists(
    st.tuples(
        st.integers(min_value=-(10**9), max_value=10**10),  # deltas either side of the first
        blobs,
        blobs,
        headers,
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(
    codec=st.sampled_from(CODECS),
    base=st.integers(min_value=0, max_value=2**41),
    batch=records,
    max_bytes=st.sampled_from([100, 4096, 1 << 20]),
    producer=st.tuples(
        st.integers(min_value=-1, max_value=2**62),
        st.integers(min_value=-1, max_value=32767),
        st.integers(min_value=-1, max_value=2**31 - 1),
    ),
)
def test_both_builders_write_the_same_bytes(
    codec: Compression,
    base: int,
    batch: list[tuple[int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]],
    max_bytes: int,
    producer: tuple[int, int, int],
) -> None:
    compiled = _speedups.BatchBuilder(codec, max_bytes)
    pure = PureBatchBuilder(codec, max_bytes)
    for delta, key, value, pairs in batch:
        taken = compiled.append(base + delta, key, value, pairs)
        assert taken == pure.append(base + delta, key, value, pairs)
    assert (
        compiled.record_count,
        compiled.size_in_bytes,
        compiled.first_timestamp,
        compiled.max_timestamp,
        len(compiled),
    ) == (
        pure.record_count,
        pure.size_in_bytes,
        pure.first_timestamp,
        pure.max_timestamp,
        len(pure),
    )
    wire = compiled.build(*producer)
    assert wire == pure.build(*producer)
    assert compiled.build(*producer) == wire  # built twice: compressed once, same bytes
    [decoded] = decode_batches(wire)  # and a valid batch (the CRC is checked)
    assert decoded.records[0].timestamp == base + batch[0][0]


BAD_APPENDS: list[tuple[Any, Any, Any, Any]] = [
    (True, b"k", b"v", ()),
    ("1", None, None, ()),
    (1.5, None, None, ()),
    (2**64, None, None, ()),
    (1, 5, None, ()),
    (1, None, "text", ()),
    (1, None, None, [("a", "text")]),
    (1, None, None, [("\udcff", b"")]),
    (1, None, None, "abc"),
    (1, None, None, [(1, b"")]),
    (1, None, None, [("a", b"1", b"2")]),
    (1, None, None, 42),
]


@pytest.mark.parametrize("args", BAD_APPENDS, ids=repr)
def test_bad_input_raises_the_same_typed_error_on_both_paths(
    args: tuple[Any, Any, Any, Any],
) -> None:
    errors = []
    for builder in (_speedups.BatchBuilder(), PureBatchBuilder()):
        with pytest.raises(InvalidArgumentError) as caught:
            builder.append(*args)
        errors.append(str(caught.value))
        assert builder.record_count == 0
    assert errors[0] == errors[1]


@pytest.mark.parametrize(
    "kwargs",
    [{"compression": 99}, {"compression": "nope"}, {"max_bytes": 0}, {"max_bytes": True}],
    ids=repr,
)
def test_bad_builder_arguments_raise_the_same_error(kwargs: dict[str, Any]) -> None:
    messages = []
    for cls in (_speedups.BatchBuilder, PureBatchBuilder):
        with pytest.raises(InvalidArgumentError) as caught:
            cls(**kwargs)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize(
    "fields",
    [(2**63, -1, -1), (-1, 40000, -1), (-1, -1, "x"), (True, -1, -1)],
    ids=repr,
)
def test_bad_producer_fields_raise_the_same_error(fields: tuple[Any, Any, Any]) -> None:
    messages = []
    for cls in (_speedups.BatchBuilder, PureBatchBuilder):
        builder = cls()
        with pytest.raises(InvalidArgumentError) as empty:
            builder.build()
        assert "at least one record" in str(empty.value)
        builder.append(1, None, None)
        with pytest.raises(InvalidArgumentError) as caught:
            builder.build(*fields)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


@settings(max_examples=300, deadline=None)
@given(key=st.binary(max_size=300), partitions=st.integers(min_value=1, max_value=10_000))
def test_murmur2_and_partition_for_key_match_the_reference(key: bytes, partitions: int) -> None:
    assert _speedups.murmur2(key) == pure_partitioner.murmur2(key)
    assert _speedups.partition_for_key(key, partitions) == pure_partitioner.partition_for_key(
        key, partitions
    )


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=5000), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_crc32c_matches_the_crc32c_package(data: bytes, seed: int) -> None:
    from crc32c import crc32c

    assert _speedups.crc32c(data, seed) == crc32c(data, seed)


def test_the_package_says_which_path_runs() -> None:
    expected = "pure" if os.environ.get("KAFKA_SINK_PURE", "") not in ("", "0") else "compiled"
    assert expected == kafka_sink.IMPLEMENTATION
    sink = kafka_sink.Sink("127.0.0.1:1")
    try:
        assert sink.metrics()["implementation"] == expected
    finally:
        sink.close(0)


@pytest.mark.parametrize(
    ("value", "expected"), [("1", "pure"), ("", "compiled"), ("0", "compiled")]
)
def test_the_environment_forces_the_pure_path(value: str, expected: str) -> None:
    env = {**os.environ, "KAFKA_SINK_PURE": value}
    code = (
        "import kafka_sink, kafka_sink.protocol.records as r;"
        "print(kafka_sink.IMPLEMENTATION, r.BatchBuilder.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == expected
    assert out[1] == ("kafka_sink._speedups" if expected == "compiled" else records_module.__name__)


def _sink(**options: Any) -> kafka_sink.Sink:
    """A sink whose sender runs but never reaches a broker (nothing listens there)."""
    options.setdefault("delivery_timeout_ms", 60_000)
    return kafka_sink.Sink("127.0.0.1:1", **options)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        ({"value": 5}, "value"),
        ({"value": b"v", "key": 3.0}, "key"),
        ({"value": b"v", "timestamp": -1}, "timestamp"),
        ({"value": b"v", "timestamp": True}, "timestamp"),
        ({"value": b"v", "partition": -2}, "partition"),
        ({"value": b"v", "partition": "0"}, "partition"),
        ({"value": b"v", "headers": [("a", 1)]}, "headers"),
        ({"value": b"v", "headers": "ab"}, "headers"),
        ({"value": b"v", "on_delivery": 7}, "on_delivery"),
        ({"topic": "", "value": b"v"}, "topic"),
        ({"topic": "a b", "value": b"v"}, "topic"),
    ],
    ids=repr,
)
def test_produce_rejects_bad_arguments_with_the_argument_named(
    call: dict[str, Any], argument: str
) -> None:
    sink = _sink()
    try:
        sink.produce("warm", b"start the sender")  # the compiled path needs a running sender
        call = {"topic": "logs", **call}
        with pytest.raises(InvalidArgumentError) as caught:
            sink.produce(**call)
        assert caught.value.context["argument"] == argument
        if "on_delivery" not in call:
            with pytest.raises(InvalidArgumentError) as again:
                sink.enqueue(**call)
            assert again.value.context["argument"] == argument
    finally:
        sink.close(0)


def test_records_of_the_fast_path_fail_with_their_contents_when_the_sink_closes() -> None:
    failed: list[tuple[str, list[Any]]] = []

    class Report:
        delivered_total = 0

        def delivered(self, count: int) -> None:
            self.delivered_total += count

        def failed(self, error: Any, records: Sequence[Any]) -> None:
            failed.append((type(error).__name__, list(records)))

    report = Report()
    sink = _sink(linger_ms=60_000)
    sink.produce("logs", b"start the sender")
    for i in range(50):
        sink.enqueue(
            "logs", b"v%d" % i, key=b"k%d" % (i % 3), headers=[("n", b"%d" % i)], report=report
        )
    futures = [sink.produce("logs", b"f%d" % i, partition=0) for i in range(5)]
    sink.close(0)
    assert report.delivered_total == 0
    got = sorted((r.value, r.key, r.headers) for _, batch in failed for r in batch)
    assert got == sorted((b"v%d" % i, b"k%d" % (i % 3), (("n", b"%d" % i),)) for i in range(50))
    assert {name for name, _ in failed} == {"SinkClosedError"}
    assert all(isinstance(f.exception(5), SinkClosedError) for f in futures)
    assert sink.metrics()["records_failed_total"] == 56


def test_closing_while_threads_produce_loses_no_record_and_raises_only_sink_closed() -> None:
    sink = _sink(linger_ms=1)
    sink.produce("logs", b"start the sender")
    accepted: list[DeliveryFuture] = []
    problems: list[BaseException] = []
    busy = [threading.Event() for _ in range(4)]

    def produce(me: int) -> None:
        mine: list[DeliveryFuture] = []
        try:
            for i in range(1_000_000):
                mine.append(sink.produce("logs", b"x" * (i % 300), key=b"%d" % (i % 7)))
                if i % 3 == 0:
                    sink.enqueue("logs", b"y", key=None)
                if i == 1000:
                    busy[me].set()
        except SinkClosedError:
            pass
        except BaseException as error:  # anything else is a bug
            problems.append(error)
        accepted.extend(mine)

    threads = [threading.Thread(target=produce, args=(me,)) for me in range(4)]
    for thread in threads:
        thread.start()
    for event in busy:  # every thread is producing when the close begins
        assert event.wait(60)
    sink.close(0.2)
    for thread in threads:
        thread.join(60)
    assert not problems
    assert accepted  # the threads did produce before the close
    # Every accepted record is told its fate: nothing hangs in a future. close()
    # keeps to its timeout, so the sender thread may still be failing the last
    # of tens of thousands of futures as it returns; the fates follow at once.
    _, hanging = concurrent.futures.wait(accepted, timeout=60)
    assert not hanging, f"{len(hanging)} of {len(accepted)} futures never resolved"
    assert all(isinstance(future.exception(0), SinkClosedError) for future in accepted)


def test_a_subclass_keeps_its_own_produce() -> None:
    seen: list[bytes] = []

    class Recording(kafka_sink.Sink):
        def produce(self, topic: str, value: Any, *args: Any, **kwargs: Any) -> DeliveryFuture:
            seen.append(value)
            return super().produce(topic, value, *args, **kwargs)

    sink = Recording("127.0.0.1:1")
    try:
        sink.produce("logs", b"mine")
        sink.produce("logs", b"again")
    finally:
        sink.close(0)
    assert seen == [b"mine", b"again"]


def test_a_counting_report_gets_the_number_of_failed_records_without_their_contents() -> None:
    seen: list[tuple[str, int, set[Any]]] = []

    class Counting:
        needs_records = False

        def delivered(self, count: int) -> None:
            raise AssertionError("nothing can be delivered here")

        def failed(self, error: Any, records: Sequence[Any]) -> None:
            seen.append(
                (type(error).__name__, len(records), {(r.key, r.value, r.headers) for r in records})
            )

    sink = _sink(linger_ms=60_000, buffer_memory=4096, on_buffer_full="drop_oldest")
    sink.produce("logs", b"start the sender", partition=0)
    for i in range(200):  # far more than the buffer: the oldest are evicted
        sink.enqueue("logs", b"v" * 100, key=b"k%d" % i, partition=i % 2, report=Counting())
    sink.close(0)
    assert sum(count for _, count, _ in seen) == 200
    assert {name for name, _, _ in seen} <= {"BufferFullError", "SinkClosedError"}
    assert set().union(*(contents for _, _, contents in seen)) == {(None, None, ())}
