"""Partitioners: which partition of a topic a record goes to.

Theory of operation
-------------------
The producer asks its partitioner for a partition once per record whose
partition the caller did not name (an explicit ``partition=`` never reaches
this module). A partitioner is a small callable object::

    partition = partitioner(topic, key, value, num_partitions)

and the producer tells it when a record had to open a new batch, which is the
moment a sticky partitioner moves on::

    partitioner.on_new_batch(topic, previous_partition, num_partitions)

Keyed records follow the Java client's ``Utils.murmur2`` and
``Utils.toPositive``, which librdkafka calls ``murmur2_random``: the same key
lands on the same partition whichever of these clients wrote it, as long as the
partition count does not change. Keyless records stick to one partition until
the producer starts a new batch, then move to another partition chosen at
random (KIP-480): a few large batches cost the brokers much less than many
small ones.

Threads
-------
``__call__`` runs on the producer's caller threads, many at once, and is the
hot path: it takes no lock. Its shared state is a dict read with one
``dict.get`` (atomic under the GIL, because the keys are ``str`` and ``bytes``
whose hashing and comparison run no Python code, and internally locked on
free-threaded builds), so a reader always sees some partition that a writer
stored in full. Writes (choosing a new sticky partition) take a lock, so that a
compare-and-set by two threads at once moves the partition once, not twice.
See each class for what a race can and cannot do.

Speed
-----
Pure Python murmur2 costs about 0.25 us per 4-byte word on a 2-core test
machine (about 1 us for an 8-byte key), while log keys (a host, a service, a
user id) repeat. So :func:`partition_for_key` and the partitioners cache the
hash of keys up to :data:`CACHED_KEY_MAX_BYTES` bytes, at most
:data:`HASH_CACHE_SIZE` of them (about 1 MiB in the worst case), and a
repeated key costs one dict lookup. The cache keeps two generations of plain
dicts rather than an LRU: on 64 repeating keys a call costs about 0.08 us
against 0.14 us through :func:`functools.lru_cache`, and on a Zipf-like stream
of 20,000 user ids (more than the cache holds) it hits 73% of the time against
78% for the LRU, within about 10% of its cost per call.
``tests/bench/bench_partitioner.py`` measures all of this.
"""

from __future__ import annotations

import itertools
import random
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

from kafka_sink.errors import InvalidArgumentError

__all__ = [
    "CACHED_KEY_MAX_BYTES",
    "HASH_CACHE_SIZE",
    "DefaultPartitioner",
    "Murmur2Partitioner",
    "PartitionFunction",
    "Partitioner",
    "RoundRobinPartitioner",
    "StickyPartitioner",
    "murmur2",
    "partition_for_key",
]

#: How many keys' hashes :func:`partition_for_key` keeps.
HASH_CACHE_SIZE = 4096
#: Keys longer than this are hashed every time, so the cache stays small.
CACHED_KEY_MAX_BYTES = 128


#: Any callable that chooses a partition: what the producer calls per record.
#: A :class:`Partitioner` is one; so is a plain function.
PartitionFunction = Callable[[str, bytes | None, bytes | None, int], int]


@runtime_checkable
class Partitioner(Protocol):
    """What the producer needs of a partitioner.

    ``__call__`` returns a partition in ``range(num_partitions)`` for a record
    of ``topic`` with ``key`` (``None`` for a keyless record) and ``value``
    (the encoded value, or ``None``; the built-in partitioners ignore it); the producer
    guarantees ``num_partitions >= 1``. ``on_new_batch`` is called after a
    record chosen by this partitioner opened a new batch on
    ``previous_partition``; partitioners without batch-dependent state ignore
    it. Both may be called from several threads at once.
    """

    def __call__(
        self, topic: str, key: bytes | None, value: bytes | None, num_partitions: int
    ) -> int: ...

    def on_new_batch(self, topic: str, previous_partition: int, num_partitions: int) -> None: ...


# ---------------------------------------------------------------------------
# murmur2, as Kafka's Java client computes it
# ---------------------------------------------------------------------------

# MurmurHash2 (Austin Appleby), 32-bit, with the seed Kafka uses. Java computes
# in signed 32-bit ints; Python ints do not overflow, so every product is masked
# to 32 bits and the sign is applied at the end. Java reads each 4-byte word
# little-endian, which is what "<I" unpacks whatever this machine's byte order.
_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK32 = 0xFFFFFFFF
_POSITIVE = 0x7FFFFFFF
_SIGN = 0x80000000

# One compiled unpacker per word count for keys up to 256 bytes: building the
# format string and looking it up in struct's own cache costs more than hashing
# a short key.
_UNPACK_WORDS = tuple(struct.Struct(f"<{words}I").unpack_from for words in range(65))


def _murmur2_unsigned(data: bytes) -> int:
    """murmur2 of ``data`` as an unsigned 32-bit int (Java's result mod 2**32)."""
    length = len(data)
    h = _SEED ^ length
    words = length >> 2
    if words:
        unpack = (
            _UNPACK_WORDS[words]
            if words < len(_UNPACK_WORDS)
            else struct.Struct(f"<{words}I").unpack_from
        )
        m = _M
        mask = _MASK32
        for word in unpack(data):
            k = (word * m) & mask
            # h = h*m ^ (k ^ k>>24)*m, masked once: masking commutes with xor.
            h = ((h * m) ^ ((k ^ (k >> 24)) * m)) & mask
    tail = length & 3
    if tail:
        # The last 1-3 bytes are xored in shifted by 0, 8 and 16 bits: that is
        # their little-endian value.
        h = ((h ^ int.from_bytes(data[length - tail :], "little")) * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    return h ^ (h >> 15)


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of ``data``: a signed 32-bit int, as Java returns it.

    Example::

        >>> murmur2(b"21")
        -973932308
        >>> murmur2(b"foobar")
        -790332482
    """
    h = _murmur2_unsigned(data)
    return h - 0x1_0000_0000 if h & _SIGN else h


# key -> murmur2(key) & 0x7fffffff, shared by every partitioner (the value is
# a pure function of the key), in two generations of at most half the cache
# size each. Lookups try the young generation first, then the old one, and a
# key found in the old one moves to the young one. When the young generation
# is full it becomes the old one (the previous old one is dropped) and a new
# young one starts: keys in use survive the turnover, keys unused for a whole
# generation go. A hit costs one dict lookup, as with a plain dict, yet hot
# keys are kept almost as well as by an LRU (see the module's notes).
#
# Threads: two misses at once may both turn the generations over, and one of
# the new young dicts (with one entry) is then lost; every stored value is
# right whatever the interleaving, which is all a cache needs.
_GENERATION_SIZE = HASH_CACHE_SIZE // 2
_young: dict[bytes, int] = {}
_old: dict[bytes, int] = {}


def _positive_hash_slow(key: bytes) -> int:
    """``murmur2(key) & 0x7fffffff`` (Java's ``toPositive``) after a young-generation miss."""
    global _old, _young  # noqa: PLW0603 - the generations turn over by rebinding
    if type(key) is not bytes or len(key) > CACHED_KEY_MAX_BYTES:
        # Not kept: a long key would bloat the cache, and a view or a
        # bytearray would keep its buffer alive (or cannot be hashed at all).
        return _murmur2_unsigned(key) & _POSITIVE
    positive = _old.get(key)
    if positive is None:
        positive = _murmur2_unsigned(key) & _POSITIVE
    young = _young
    if len(young) >= _GENERATION_SIZE:
        _old = young
        _young = young = {}
    young[key] = positive
    return positive


def _check_num_partitions(num_partitions: int) -> None:
    if num_partitions < 1:
        raise InvalidArgumentError("num_partitions", f"must be an int >= 1, got {num_partitions!r}")


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """The partition Kafka's Java client and librdkafka's ``murmur2_random`` pick for ``key``.

    That is ``(murmur2(key) & 0x7fffffff) % num_partitions``.

    Example::

        >>> partition_for_key(b"user-42", 6)
        4
    """
    if num_partitions < 1:
        _check_num_partitions(num_partitions)
    # The cache lookup is inlined: a Python call would cost as much as the lookup.
    try:
        positive = _young.get(key)
    except TypeError:  # an unhashable buffer, such as a bytearray
        positive = None
    if positive is None:
        positive = _positive_hash_slow(key)
    return positive % num_partitions


# ---------------------------------------------------------------------------
# Partitioners
# ---------------------------------------------------------------------------


class StickyPartitioner:
    """Keyless records stick to one partition per topic until a new batch starts (KIP-480).

    The first record of a topic picks a partition at random. When
    :meth:`on_new_batch` reports that the sticky partition opened a new batch,
    the next records go to another partition, chosen at random among the
    others (a topic with one partition stays on 0). Keys are ignored: use it
    alone to spread keyed records by batch, not by key.

    ``rng`` may be a seeded :class:`random.Random` for repeatable tests.

    Threads: ``__call__`` reads the topic's partition without a lock (see the
    module's notes); a thread that read it just before another one moved on
    appends to the batch that was just opened, which is what the batch is for.
    Moving on is a compare-and-set under a lock: of two threads that both saw
    the batch on partition 3 fill up, only the first moves the topic on.

    Example::

        sticky = StickyPartitioner()
        p = sticky("logs", None, 6)  # the same p until...
        sticky.on_new_batch("logs", p, 6)  # ...then another partition
    """

    __slots__ = ("_current", "_lock", "_rng")

    def __init__(self, rng: random.Random | None = None) -> None:
        self._current: dict[str, int] = {}
        self._lock = threading.Lock()
        self._rng = random.Random() if rng is None else rng

    def __call__(
        self, topic: str, key: bytes | None, value: bytes | None, num_partitions: int
    ) -> int:
        partition = self._current.get(topic)
        if partition is not None and partition < num_partitions:
            return partition
        return self._move_on(topic, partition, num_partitions)

    def on_new_batch(self, topic: str, previous_partition: int, num_partitions: int) -> None:
        # A batch opened on another partition (by a keyed record, or one the
        # caller named) is no reason to move: the sticky partition is not full.
        if self._current.get(topic) == previous_partition:
            self._move_on(topic, previous_partition, num_partitions)

    def _move_on(self, topic: str, expected: int | None, num_partitions: int) -> int:
        """Replace the topic's partition if it is still ``expected`` (or out of range)."""
        _check_num_partitions(num_partitions)
        with self._lock:
            current = self._current.get(topic)
            if current is not None and current != expected and current < num_partitions:
                return current  # another thread moved on first
            partition = self._pick(current, num_partitions)
            self._current[topic] = partition
            return partition

    def _pick(self, previous: int | None, num_partitions: int) -> int:
        if num_partitions == 1:
            return 0
        if previous is None or not 0 <= previous < num_partitions:
            return self._rng.randrange(num_partitions)
        # Uniform over the other partitions: draw among n - 1, skip the previous.
        partition = self._rng.randrange(num_partitions - 1)
        return partition + 1 if partition >= previous else partition


class RoundRobinPartitioner:
    """Every record goes to the next partition of its topic in turn, key or no key.

    Like the Java client's ``RoundRobinPartitioner``: an even spread of records
    (not of bytes) over all partitions, at the price of one small batch per
    partition. Each topic counts from 0. :meth:`on_new_batch` does nothing.

    Threads: the per-topic counter is an :func:`itertools.count`, whose step is
    one C call that the GIL does not interrupt, so concurrent callers get
    distinct numbers without a lock. Without a GIL, two callers could draw the
    same number: the spread would be less even, never out of range.

    Example::

        rr = RoundRobinPartitioner()
        [rr("logs", None, 3) for _ in range(4)]  # [0, 1, 2, 0]
    """

    __slots__ = ("_counters",)

    def __init__(self) -> None:
        self._counters: dict[str, Iterator[int]] = {}

    def __call__(
        self, topic: str, key: bytes | None, value: bytes | None, num_partitions: int
    ) -> int:
        if num_partitions < 1:
            _check_num_partitions(num_partitions)
        counter = self._counters.get(topic)
        if counter is None:
            # setdefault: of two first callers, both use the counter stored first.
            counter = self._counters.setdefault(topic, itertools.count())
        return next(counter) % num_partitions

    def on_new_batch(self, topic: str, previous_partition: int, num_partitions: int) -> None:
        return None


class Murmur2Partitioner:
    """Keyed records by murmur2 of the key, as the Java client and librdkafka do.

    A record with a key goes to :func:`partition_for_key` ``(key,
    num_partitions)``, so records with the same key keep their order in one
    partition. A keyless record is handed to ``keyless`` (by default a
    :class:`StickyPartitioner`), and so is :meth:`on_new_batch`.

    Example::

        partitioner = Murmur2Partitioner(keyless=RoundRobinPartitioner())
        partitioner("logs", b"user-42", None, 6)  # 4, whatever the keyless choice
    """

    __slots__ = ("_keyless_call", "_keyless_new_batch", "keyless")

    def __init__(self, keyless: Partitioner | None = None) -> None:
        self.keyless: Partitioner = StickyPartitioner() if keyless is None else keyless
        # Bound once: calling a stored bound method skips the __call__ lookup.
        self._keyless_call: Callable[[str, bytes | None, bytes | None, int], int] = (
            self.keyless.__call__
        )
        self._keyless_new_batch: Callable[[str, int, int], None] = self.keyless.on_new_batch

    def __call__(
        self, topic: str, key: bytes | None, value: bytes | None, num_partitions: int
    ) -> int:
        if key is None:
            return self._keyless_call(topic, None, value, num_partitions)
        if num_partitions < 1:
            _check_num_partitions(num_partitions)
        # The cache lookup of partition_for_key(), inlined: the hot path of keyed records.
        try:
            positive = _young.get(key)
        except TypeError:  # an unhashable buffer, such as a bytearray
            positive = None
        if positive is None:
            positive = _positive_hash_slow(key)
        return positive % num_partitions

    def on_new_batch(self, topic: str, previous_partition: int, num_partitions: int) -> None:
        self._keyless_new_batch(topic, previous_partition, num_partitions)


class DefaultPartitioner(Murmur2Partitioner):
    """What the producer uses unless told otherwise: murmur2 for keys, sticky without.

    Keyed records land where the Java client and librdkafka's
    ``murmur2_random`` put them. Keyless records stick to a partition until it
    opens a new batch, as in the Java client from Kafka 2.4 (KIP-480); the
    Java client from 3.3 (KIP-794) moves on after ``batch.size`` bytes instead,
    and librdkafka after ``sticky.partitioning.linger.ms``. ``rng`` seeds the
    sticky choice, for repeatable tests.

    Example::

        partitioner = DefaultPartitioner()
        partitioner("logs", b"user-42", None, 6)  # always 4
        partitioner("logs", None, None, 6)  # one partition until the next batch
    """

    __slots__ = ()

    def __init__(self, rng: random.Random | None = None) -> None:
        super().__init__(keyless=StickyPartitioner(rng))
