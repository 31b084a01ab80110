"""Micro-benchmark of murmur2 and the partitioners.

Run it directly (pytest does not collect it)::

    python -m tests.bench.bench_partitioner [--rounds N] [--calls N]

It prints, as the median of several rounds, ns per call of:

* ``murmur2`` for keys of 0, 2, 8, 36 and 100 bytes (no cache: the raw hash);
* ``partition_for_key`` over 64 repeating keys (the cache hits), over keys
  that never repeat (every call misses and inserts), and over a Zipf-like
  stream of 20,000 user ids, more than the cache holds; the repeating keys
  and the Zipf stream also through :func:`functools.lru_cache`, the
  alternative to the built-in cache (both hit rates on the Zipf stream are
  printed to stderr);
* each partitioner called on the instance, keyed and keyless, the default
  one also through a ``__call__`` bound once, and ``on_new_batch``;
* the empty loop, whose cost is included in every figure above.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable

from kafka_sink.producer import partitioner as part

KEYS_64 = [f"user-{i:03d}".encode() for i in range(64)]


def per_call_ns(run: Callable[[int], None], calls: int, rounds: int) -> float:
    """Median over ``rounds`` of the ns per call of ``run(calls)``."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        run(calls)
        samples.append((time.perf_counter_ns() - start) / calls)
    return statistics.median(samples)


def loop_of(call: Callable[[], object]) -> Callable[[int], None]:
    def run(calls: int) -> None:
        for _ in itertools.repeat(None, calls):
            call()

    return run


def cycling(call: Callable[[bytes], object], keys: list[bytes]) -> Callable[[int], None]:
    def run(calls: int) -> None:
        for key in itertools.islice(itertools.cycle(keys), calls):
            call(key)

    return run


def clear_cache() -> None:
    part._young.clear()
    part._old.clear()


def zipf_stream(length: int, distinct: int = 20_000) -> list[bytes]:
    """Keys drawn with probability 1/rank: a few hot users, a long tail."""
    rng = random.Random(1)
    keys = [f"user-{i:06d}".encode() for i in range(distinct)]
    return rng.choices(keys, [1 / rank for rank in range(1, distinct + 1)], k=length)


def streaming(call: Callable[[bytes, int], int], keys: list[bytes]) -> Callable[[int], None]:
    """Each round starts from an empty cache and runs through the same stream."""

    def run(calls: int) -> None:
        clear_cache()
        for key in keys[:calls]:
            call(key, 6)

    return run


def cache_hit_rate(keys: list[bytes]) -> float:
    clear_cache()
    hits = 0
    for key in keys:
        hits += key in part._young or key in part._old
        part.partition_for_key(key, 6)
    return hits / len(keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args(argv)
    rounds: int = args.rounds
    calls: int = args.calls

    rows: list[tuple[str, float]] = []

    def measure(label: str, run: Callable[[int], None]) -> None:
        rows.append((label, per_call_ns(run, calls, rounds)))
        print(f"{label:<58} {rows[-1][1]:8.0f} ns", file=sys.stderr)

    measure("empty loop", loop_of(lambda: None))
    measure("empty loop, cycling 64 keys", cycling(lambda key: None, KEYS_64))
    for size in (0, 2, 8, 36, 100):
        measure(f"murmur2, {size}-byte key", loop_of(functools.partial(part.murmur2, bytes(size))))

    measure(
        "partition_for_key, 64 repeating keys (cache hits)",
        cycling(lambda key: part.partition_for_key(key, 6), KEYS_64),
    )
    fresh = [uuid.uuid4().bytes for _ in range(calls)]

    def misses(calls: int) -> None:
        clear_cache()
        for key in fresh[:calls]:
            part.partition_for_key(key, 6)

    measure("partition_for_key, keys never repeat (16 bytes, misses)", misses)
    zipf = zipf_stream(calls)
    measure("partition_for_key, Zipf over 20,000 keys", streaming(part.partition_for_key, zipf))

    lru = functools.lru_cache(maxsize=part.HASH_CACHE_SIZE)(part._murmur2_unsigned)

    def lru_partition(key: bytes, num_partitions: int) -> int:
        return (lru(key) & 0x7FFFFFFF) % num_partitions

    measure(
        "lru_cache alternative, 64 repeating keys", cycling(lambda k: lru_partition(k, 6), KEYS_64)
    )
    measure("lru_cache alternative, Zipf over 20,000 keys", streaming(lru_partition, zipf))
    lru.cache_clear()
    for key in zipf:
        lru_partition(key, 6)
    info = lru.cache_info()
    print(
        f"Zipf hit rates: built-in cache {cache_hit_rate(zipf):.1%}, "
        f"lru_cache {info.hits / (info.hits + info.misses):.1%}",
        file=sys.stderr,
    )

    default = part.DefaultPartitioner()
    measure(
        "DefaultPartitioner, keyed (cache hits)",
        cycling(lambda k: default("t", k, None, 6), KEYS_64),
    )
    measure("DefaultPartitioner, keyless (sticky)", loop_of(lambda: default("t", None, None, 6)))
    # Calling an instance looks __call__ up on every call; a caller that binds
    # it once calls a plain method instead.
    bound = default.__call__
    measure(
        "DefaultPartitioner.__call__ bound once, keyed",
        cycling(lambda k: bound("t", k, None, 6), KEYS_64),
    )
    measure(
        "DefaultPartitioner.__call__ bound once, keyless",
        loop_of(lambda: bound("t", None, None, 6)),
    )
    sticky = part.StickyPartitioner()
    measure("StickyPartitioner", loop_of(lambda: sticky("t", None, None, 6)))
    robin = part.RoundRobinPartitioner()
    measure("RoundRobinPartitioner", loop_of(lambda: robin("t", None, None, 6)))

    def new_batches(calls: int) -> None:
        for _ in itertools.repeat(None, calls):
            sticky.on_new_batch("t", sticky("t", None, None, 6), 6)

    measure("StickyPartitioner, call + on_new_batch that moves on", new_batches)

    print(f"\n{sys.implementation.name} {sys.version.split()[0]}, median of {rounds} rounds")
    print("\n| call | ns per call |\n|---|---:|")
    for label, ns in rows:
        print(f"| {label} | {ns:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
