"""Tests of kafka_sink.producer.partitioner: murmur2 and the partitioners.

The murmur2 vectors are the ones Kafka's own suite pins for the Java client's
``Utils.murmur2`` (``UtilsTest.testMurmur2``). Property tests compare the
optimised hash with a deliberately plain reference written here, byte by byte,
with Java's signed 32-bit arithmetic emulated step by step.
"""

from __future__ import annotations

import doctest
import random
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kafka_sink.errors import InvalidArgumentError
from kafka_sink.producer import partitioner as partitioner_module
from kafka_sink.producer.partitioner import (
    CACHED_KEY_MAX_BYTES,
    HASH_CACHE_SIZE,
    DefaultPartitioner,
    Murmur2Partitioner,
    Partitioner,
    RoundRobinPartitioner,
    StickyPartitioner,
    murmur2,
    partition_for_key,
)

# UtilsTest.testMurmur2 of Apache Kafka's clients module.
KAFKA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


def java_int(value: int) -> int:
    """``value`` wrapped to a Java int (signed 32-bit two's complement)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def unsigned_shift_right(value: int, bits: int) -> int:
    """Java's ``>>>`` on an int."""
    return (value & 0xFFFFFFFF) >> bits


def reference_murmur2(data: bytes) -> int:
    """murmur2 as Kafka's Java client computes it, one operation at a time."""
    seed = java_int(0x9747B28C)
    m = 0x5BD1E995
    length = len(data)
    h = java_int(seed ^ length)
    for i in range(length // 4):
        k = data[4 * i] + (data[4 * i + 1] << 8) + (data[4 * i + 2] << 16) + (data[4 * i + 3] << 24)
        k = java_int(k)
        k = java_int(k * m)
        k = java_int(k ^ unsigned_shift_right(k, 24))
        k = java_int(k * m)
        h = java_int(h * m)
        h = java_int(h ^ k)
    base = length & ~3
    remainder = length % 4
    if remainder == 3:
        h = java_int(h ^ (data[base + 2] << 16))
    if remainder >= 2:
        h = java_int(h ^ (data[base + 1] << 8))
    if remainder >= 1:
        h = java_int(h ^ data[base])
        h = java_int(h * m)
    h = java_int(h ^ unsigned_shift_right(h, 13))
    h = java_int(h * m)
    return java_int(h ^ unsigned_shift_right(h, 15))


def clear_hash_cache() -> None:
    partitioner_module._young.clear()
    partitioner_module._old.clear()


def cached() -> dict[bytes, int]:
    """Every key the hash cache holds, with its value."""
    return {**partitioner_module._old, **partitioner_module._young}


@pytest.fixture(autouse=True)
def _empty_hash_cache() -> Iterator[None]:
    clear_hash_cache()
    yield
    clear_hash_cache()


# -- murmur2 -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"), KAFKA_VECTORS, ids=[v[0][:12].decode() for v in KAFKA_VECTORS]
)
def test_murmur2_matches_kafka_vectors(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected
    assert reference_murmur2(data) == expected


def test_murmur2_of_empty_input() -> None:
    assert murmur2(b"") == reference_murmur2(b"")


# Up to 300 bytes: past the 64 precompiled word unpackers (256 bytes).
@given(st.binary(max_size=300))
def test_murmur2_matches_reference(data: bytes) -> None:
    assert murmur2(data) == reference_murmur2(data)


@given(st.binary(max_size=64))
def test_murmur2_is_a_deterministic_signed_int32(data: bytes) -> None:
    h = murmur2(data)
    assert -(2**31) <= h < 2**31
    assert murmur2(bytes(data)) == h


def test_murmur2_accepts_other_buffers() -> None:
    for data, expected in KAFKA_VECTORS:
        assert murmur2(bytearray(data)) == expected  # type: ignore[arg-type]  # any buffer works
        assert murmur2(memoryview(data)) == expected  # type: ignore[arg-type]  # any buffer works


def test_docstring_examples() -> None:
    result = doctest.testmod(partitioner_module)
    assert result.failed == 0
    assert result.attempted >= 3


# -- partition_for_key ---------------------------------------------------------


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=100_000))
def test_partition_for_key_is_javas_to_positive_modulo(key: bytes, num_partitions: int) -> None:
    partition = partition_for_key(key, num_partitions)
    assert partition == (reference_murmur2(key) & 0x7FFFFFFF) % num_partitions
    assert 0 <= partition < num_partitions
    assert partition_for_key(key, num_partitions) == partition  # now from the cache


def test_partition_for_key_of_the_kafka_vectors() -> None:
    # toPositive() clears the sign bit; it does not negate.
    assert partition_for_key(b"21", 2**31 - 1) == -973932308 & 0x7FFFFFFF
    assert partition_for_key(b"abc", 1000) == 479470107 % 1000


@pytest.mark.parametrize("num_partitions", [0, -1])
def test_partition_for_key_rejects_no_partitions(num_partitions: int) -> None:
    with pytest.raises(InvalidArgumentError, match="num_partitions"):
        partition_for_key(b"key", num_partitions)


def test_short_keys_are_cached_and_long_keys_are_not() -> None:
    short = b"k" * CACHED_KEY_MAX_BYTES
    long = b"k" * (CACHED_KEY_MAX_BYTES + 1)
    partition_for_key(short, 6)
    partition_for_key(long, 6)
    assert cached() == {short: reference_murmur2(short) & 0x7FFFFFFF}


def test_the_cache_stays_bounded_and_keeps_recent_keys() -> None:
    keys = [i.to_bytes(4, "big") for i in range(3 * HASH_CACHE_SIZE + 10)]
    for key in keys:
        assert partition_for_key(key, 7) == (reference_murmur2(key) & 0x7FFFFFFF) % 7
        assert len(cached()) <= HASH_CACHE_SIZE
    assert set(keys[-HASH_CACHE_SIZE // 2 :]) <= set(cached())
    assert keys[0] not in cached()


def test_a_key_in_use_survives_the_turnover_of_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hashed: Counter[bytes] = Counter()
    real_hash = partitioner_module._murmur2_unsigned

    def counting_hash(data: bytes) -> int:
        hashed[data] += 1
        return real_hash(data)

    monkeypatch.setattr(partitioner_module, "_murmur2_unsigned", counting_hash)
    hot = b"service-a"
    for i in range(5 * HASH_CACHE_SIZE):
        partition_for_key(i.to_bytes(4, "big"), 7)
        if i % (HASH_CACHE_SIZE // 4) == 0:
            assert partition_for_key(hot, 7) == (reference_murmur2(hot) & 0x7FFFFFFF) % 7
    assert hashed[hot] == 1  # many turnovers, one hash
    assert hashed[(0).to_bytes(4, "big")] == 1


def test_buffers_hash_like_bytes_and_are_not_cached() -> None:
    key = b"user-42"
    expected = partition_for_key(key, 6)
    clear_hash_cache()
    assert partition_for_key(bytearray(key), 6) == expected  # type: ignore[arg-type]  # any buffer
    assert cached() == {}
    assert partition_for_key(memoryview(key), 6) == expected  # type: ignore[arg-type]  # any buffer
    assert cached() == {}  # a view would keep its buffer alive
    murmur = Murmur2Partitioner()
    assert murmur("t", bytearray(key), None, 6) == expected  # type: ignore[arg-type]  # any buffer
    partition_for_key(key, 6)
    assert partition_for_key(memoryview(key), 6) == expected  # type: ignore[arg-type]  # any buffer


def test_a_cached_hash_is_not_confused_by_the_partition_count() -> None:
    key = b"host-17"
    positive = reference_murmur2(key) & 0x7FFFFFFF
    for num_partitions in (1, 2, 3, 50, 1, 7):
        assert partition_for_key(key, num_partitions) == positive % num_partitions


# -- the protocol --------------------------------------------------------------


@pytest.mark.parametrize(
    "partitioner",
    [StickyPartitioner(), RoundRobinPartitioner(), Murmur2Partitioner(), DefaultPartitioner()],
    ids=lambda p: type(p).__name__,
)
def test_every_partitioner_follows_the_protocol(partitioner: Partitioner) -> None:
    assert isinstance(partitioner, Partitioner)
    for num_partitions in (1, 2, 6):
        for key in (None, b"", b"k"):
            partition = partitioner("topic", key, None, num_partitions)
            assert 0 <= partition < num_partitions
            partitioner.on_new_batch("topic", partition, num_partitions)


# -- sticky --------------------------------------------------------------------


def test_sticky_stays_until_a_new_batch_then_moves_elsewhere() -> None:
    sticky = StickyPartitioner(random.Random(1))
    visited = []
    for _ in range(200):
        partition = sticky("logs", None, None, 6)
        assert {sticky("logs", None, None, 6) for _ in range(50)} == {partition}
        sticky.on_new_batch("logs", partition, 6)
        assert sticky("logs", None, None, 6) != partition
        visited.append(partition)
    # Moving on draws uniformly among the other partitions: all get used.
    assert set(visited) == set(range(6))
    assert min(Counter(visited).values()) > 15


def test_sticky_ignores_keys() -> None:
    sticky = StickyPartitioner(random.Random(2))
    partition = sticky("logs", None, None, 6)
    assert {sticky("logs", f"k{i}".encode(), None, 6) for i in range(20)} == {partition}


def test_sticky_with_one_partition_stays_on_zero() -> None:
    sticky = StickyPartitioner(random.Random(3))
    for _ in range(10):
        assert sticky("logs", None, None, 1) == 0
        sticky.on_new_batch("logs", 0, 1)
    assert sticky("logs", None, None, 1) == 0


def test_sticky_with_two_partitions_alternates() -> None:
    sticky = StickyPartitioner(random.Random(4))
    first = sticky("logs", None, None, 2)
    seen = []
    for _ in range(6):
        partition = sticky("logs", None, None, 2)
        seen.append(partition)
        sticky.on_new_batch("logs", partition, 2)
    assert seen == [first, 1 - first] * 3


def test_sticky_does_not_move_for_a_batch_on_another_partition() -> None:
    sticky = StickyPartitioner(random.Random(5))
    partition = sticky("logs", None, None, 6)
    sticky.on_new_batch("logs", (partition + 1) % 6, 6)
    assert sticky("logs", None, None, 6) == partition


def test_sticky_moves_once_when_two_threads_report_the_same_batch() -> None:
    sticky = StickyPartitioner(random.Random(6))
    partition = sticky("logs", None, None, 6)
    sticky.on_new_batch("logs", partition, 6)
    moved_to = sticky("logs", None, None, 6)
    sticky.on_new_batch("logs", partition, 6)  # the second report of the same batch
    assert sticky("logs", None, None, 6) == moved_to


def test_sticky_keeps_one_partition_per_topic() -> None:
    sticky = StickyPartitioner(random.Random(7))
    before = {topic: sticky(topic, None, None, 50) for topic in ("a", "b", "c")}
    sticky.on_new_batch("a", before["a"], 50)
    assert sticky("a", None, None, 50) != before["a"]
    assert sticky("b", None, None, 50) == before["b"]
    assert sticky("c", None, None, 50) == before["c"]


def test_sticky_picks_again_when_the_partition_count_shrinks() -> None:
    sticky = StickyPartitioner(random.Random(8))
    while sticky("logs", None, None, 50) < 10:
        sticky.on_new_batch("logs", sticky("logs", None, None, 50), 50)
    assert 0 <= sticky("logs", None, None, 10) < 10
    assert sticky("logs", None, None, 10) == sticky("logs", None, None, 50)


@pytest.mark.parametrize("num_partitions", [0, -3])
def test_sticky_rejects_no_partitions(num_partitions: int) -> None:
    with pytest.raises(InvalidArgumentError, match="num_partitions"):
        StickyPartitioner()("logs", None, None, num_partitions)


@given(
    st.lists(
        st.tuples(st.sampled_from(["call", "new_batch"]), st.integers(1, 8), st.integers(0, 9)),
        max_size=60,
    )
)
def test_sticky_always_answers_in_range(operations: list[tuple[str, int, int]]) -> None:
    sticky = StickyPartitioner(random.Random(0))
    for operation, num_partitions, previous in operations:
        if operation == "call":
            assert 0 <= sticky("t", None, None, num_partitions) < num_partitions
        else:
            sticky.on_new_batch("t", previous, num_partitions)


def test_sticky_from_many_threads_stays_in_range_and_moves_on() -> None:
    sticky = StickyPartitioner()
    errors: list[str] = []
    moves = Counter[int]()
    lock = threading.Lock()

    def work() -> None:
        for i in range(5_000):
            partition = sticky("logs", None, None, 6)
            if not 0 <= partition < 6:
                errors.append(f"out of range: {partition}")
            if i % 50 == 0:
                sticky.on_new_batch("logs", partition, 6)
                with lock:
                    moves[partition] += 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(moves) > 1


# -- round robin ---------------------------------------------------------------


def test_round_robin_cycles_per_topic_whatever_the_key() -> None:
    robin = RoundRobinPartitioner()
    assert [robin("a", None, None, 3) for _ in range(4)] == [0, 1, 2, 0]
    assert [robin("b", b"same", None, 3) for _ in range(4)] == [0, 1, 2, 0]
    robin.on_new_batch("a", 0, 3)
    assert robin("a", b"x", None, 3) == 1


def test_round_robin_follows_a_growing_partition_count() -> None:
    robin = RoundRobinPartitioner()
    assert [robin("a", None, None, 2) for _ in range(2)] == [0, 1]
    assert [robin("a", None, None, 4) for _ in range(4)] == [2, 3, 0, 1]


def test_round_robin_from_many_threads_spreads_exactly_evenly() -> None:
    robin = RoundRobinPartitioner()
    counts: list[Counter[int]] = []

    def work() -> None:
        counts.append(Counter(robin("logs", None, None, 6) for _ in range(6_000)))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts, Counter()) == dict.fromkeys(range(6), 8_000)


@pytest.mark.parametrize("num_partitions", [0, -3])
def test_round_robin_rejects_no_partitions(num_partitions: int) -> None:
    robin = RoundRobinPartitioner()
    with pytest.raises(InvalidArgumentError, match="num_partitions"):
        robin("logs", None, None, num_partitions)
    robin("logs", None, None, 3)
    with pytest.raises(InvalidArgumentError, match="num_partitions"):
        robin("logs", None, None, num_partitions)


# -- murmur2 and default ----------------------------------------------------------


class RecordingPartitioner:
    """A keyless partitioner that answers 0 and remembers every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes | None, int]] = []
        self.new_batches: list[tuple[str, int, int]] = []

    def __call__(
        self, topic: str, key: bytes | None, value: bytes | None, num_partitions: int
    ) -> int:
        self.calls.append((topic, key, num_partitions))
        return 0

    def on_new_batch(self, topic: str, previous_partition: int, num_partitions: int) -> None:
        self.new_batches.append((topic, previous_partition, num_partitions))


def test_murmur2_partitioner_hashes_keys_and_delegates_the_rest() -> None:
    keyless = RecordingPartitioner()
    partitioner = Murmur2Partitioner(keyless=keyless)
    for i in range(100):
        key = f"key-{i}".encode()
        assert partitioner("logs", key, None, 13) == partition_for_key(key, 13)
    assert keyless.calls == []
    assert partitioner("logs", None, None, 13) == 0
    partitioner.on_new_batch("logs", 4, 13)
    assert keyless.calls == [("logs", None, 13)]
    assert keyless.new_batches == [("logs", 4, 13)]
    assert partitioner.keyless is keyless


def test_murmur2_partitioner_hashes_the_empty_key() -> None:
    # An empty key is a key (Java and librdkafka hash it); only None is keyless.
    partitioner = Murmur2Partitioner(keyless=RecordingPartitioner())
    assert partitioner("logs", b"", None, 1000) == (reference_murmur2(b"") & 0x7FFFFFFF) % 1000


@pytest.mark.parametrize("num_partitions", [0, -3])
def test_murmur2_partitioner_rejects_no_partitions(num_partitions: int) -> None:
    with pytest.raises(InvalidArgumentError, match="num_partitions"):
        Murmur2Partitioner()("logs", b"k", None, num_partitions)


def test_default_partitioner_is_murmur2_with_sticky_keyless_records() -> None:
    partitioner = DefaultPartitioner(random.Random(9))
    assert isinstance(partitioner.keyless, StickyPartitioner)
    assert partitioner("logs", b"user-42", None, 6) == partition_for_key(b"user-42", 6)
    sticky = partitioner("logs", None, None, 6)
    assert {partitioner("logs", None, None, 6) for _ in range(10)} == {sticky}
    partitioner.on_new_batch("logs", (sticky + 1) % 6, 6)  # a keyed record's batch
    assert partitioner("logs", None, None, 6) == sticky
    partitioner.on_new_batch("logs", sticky, 6)
    assert partitioner("logs", None, None, 6) != sticky


def test_default_partitioners_are_independent() -> None:
    first = DefaultPartitioner(random.Random(10))
    second = DefaultPartitioner(random.Random(10))
    partition = first("logs", None, None, 6)
    assert second("logs", None, None, 6) == partition
    first.on_new_batch("logs", partition, 6)
    assert second("logs", None, None, 6) == partition
