"""Micro-benchmark of the record batch encoder and the codecs.

Run it directly (pytest does not collect it)::

    python tests/bench/bench_encoder.py [--rounds N]

It prints, as the median of several rounds:

* ns per record of ``BatchBuilder.append`` for a 150-byte JSON value with no
  key, with an 8-byte key, and with a key and two headers; the time includes
  the caller's loop and call overhead, which is printed too;
* ns per record of ``BatchBuilder.build()`` for a 100-record batch per codec,
  the first call (which compresses) and a second call (a retry that reuses the
  compressed records);
* compress and decompress speed of each codec on a 16 KiB batch of JSON log
  lines, and the compressed size.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable

from kafka_sink.protocol import codecs
from kafka_sink.protocol.codecs import Compression
from kafka_sink.protocol.records import BatchBuilder

RECORDS_PER_BATCH = 100
VALUE_SIZE = 150
LEVELS = ("DEBUG", "INFO", "INFO", "INFO", "WARNING", "ERROR")
LOGGERS = ("app.http", "app.db", "app.worker", "app.auth", "app.cache")
PATHS = ("/api/v1/items", "/api/v1/users", "/health", "/api/v1/orders", "/login")


def log_line(rng: random.Random, size: int | None = VALUE_SIZE) -> bytes:
    """A JSON log line like a web service writes, padded or cut to ``size`` bytes."""
    line = json.dumps(
        {
            "ts": f"2024-05-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
            f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z",
            "level": rng.choice(LEVELS),
            "logger": rng.choice(LOGGERS),
            "msg": f"GET {rng.choice(PATHS)} {rng.choice((200, 200, 201, 404, 500))} "
            f"{rng.randint(1, 900)}ms",
            "req": f"{rng.getrandbits(64):016x}",
            "host": f"web-{rng.randint(1, 12):02d}",
        },
        separators=(",", ":"),
    ).encode()
    if size is None:
        return line
    return line[:size].ljust(size, b" ")


def median_ns(run: Callable[[], int], rounds: int) -> float:
    """Median over ``rounds`` calls of ``run``, which returns ns per item."""
    return statistics.median(run() for _ in range(rounds))


def bench_append(rounds: int, batches: int) -> None:
    rng = random.Random(1)
    values = [log_line(rng) for _ in range(RECORDS_PER_BATCH)]
    key = b"user-042"
    headers: list[tuple[str, bytes | None]] = [
        ("trace-id", b"4bf92f3577b34da6"),
        ("service", b"checkout"),
    ]
    base = 1_700_000_000_000
    timestamps = [base + i // 8 for i in range(RECORDS_PER_BATCH)]
    rows = list(zip(timestamps, values, strict=True))

    def timed(make_key: bytes | None, hdrs: list[tuple[str, bytes | None]]) -> Callable[[], int]:
        def run() -> int:
            total = 0
            for _ in range(batches):
                builder = BatchBuilder(max_bytes=1 << 24)
                append = builder.append
                start = time.perf_counter_ns()
                for timestamp, value in rows:
                    append(timestamp, make_key, value, hdrs)
                total += time.perf_counter_ns() - start
            return total // (batches * RECORDS_PER_BATCH)

        return run

    def loop_only() -> int:
        def append(
            timestamp: int, key: bytes | None, value: bytes, hdrs: list[tuple[str, bytes | None]]
        ) -> bool:
            return True

        total = 0
        for _ in range(batches):
            start = time.perf_counter_ns()
            for timestamp, value in rows:
                append(timestamp, None, value, [])
            total += time.perf_counter_ns() - start
        return total // (batches * RECORDS_PER_BATCH)

    print(f"append, {VALUE_SIZE}-byte value, ns/record (median of {rounds} rounds)")
    print(f"  loop + call overhead alone    {median_ns(loop_only, rounds):8.0f}")
    print(f"  no key, no headers            {median_ns(timed(None, []), rounds):8.0f}")
    print(f"  8-byte key, no headers        {median_ns(timed(key, []), rounds):8.0f}")
    print(f"  8-byte key, 2 headers         {median_ns(timed(key, headers), rounds):8.0f}")


def bench_build(rounds: int, batches: int) -> None:
    rng = random.Random(2)
    values = [log_line(rng) for _ in range(RECORDS_PER_BATCH)]
    base = 1_700_000_000_000
    print(f"\nbuild() of a {RECORDS_PER_BATCH}-record batch, ns/record (median of {rounds} rounds)")
    print("  codec     first build   rebuild (new epoch)   batch bytes")
    for codec in Compression:
        try:
            codecs.ensure_available(codec)
        except Exception as exc:
            print(f"  {codec.name.lower():8s}  skipped: {exc}")
            continue
        size = 0

        def run_first(codec: Compression = codec) -> int:
            nonlocal size
            total = 0
            for _ in range(batches):
                builder = BatchBuilder(codec)
                for i, value in enumerate(values):
                    builder.append(base + i, b"user-042", value)
                start = time.perf_counter_ns()
                wire = builder.build(1000, 0, 0)
                total += time.perf_counter_ns() - start
                size = len(wire)
            return total // (batches * RECORDS_PER_BATCH)

        builder = BatchBuilder(codec)
        for i, value in enumerate(values):
            builder.append(base + i, b"user-042", value)
        builder.build(1000, 0, 0)

        def run_again(builder: BatchBuilder = builder) -> int:
            start = time.perf_counter_ns()
            for epoch in range(batches):
                builder.build(1000, epoch % 32000, 0)
            return (time.perf_counter_ns() - start) // (batches * RECORDS_PER_BATCH)

        first = median_ns(run_first, rounds)
        again = median_ns(run_again, rounds)
        print(f"  {codec.name.lower():8s}  {first:11.0f}   {again:19.0f}   {size:11d}")


def bench_codecs(rounds: int) -> None:
    rng = random.Random(3)
    lines = []
    size = 0
    while size < 16 * 1024:
        line = log_line(rng, None) + b"\n"
        lines.append(line)
        size += len(line)
    data = b"".join(lines)[: 16 * 1024]
    print(f"\ncodecs on {len(data)} bytes of JSON log lines (median of {rounds} rounds)")
    print("  codec     compress MB/s   us/batch   decompress MB/s   ratio")
    for codec in Compression:
        if codec == Compression.NONE:
            continue
        try:
            codecs.ensure_available(codec)
        except Exception as exc:
            print(f"  {codec.name.lower():8s}  skipped: {exc}")
            continue
        blob = codecs.compress(codec, data)
        repeat = 200

        def run_c(codec: Compression = codec, repeat: int = repeat) -> int:
            start = time.perf_counter_ns()
            for _ in range(repeat):
                codecs.compress(codec, data)
            return (time.perf_counter_ns() - start) // repeat

        def run_d(codec: Compression = codec, blob: bytes = blob, repeat: int = repeat) -> int:
            start = time.perf_counter_ns()
            for _ in range(repeat):
                codecs.decompress(codec, blob, 1 << 20)
            return (time.perf_counter_ns() - start) // repeat

        c_ns = median_ns(run_c, rounds)
        d_ns = median_ns(run_d, rounds)
        print(
            f"  {codec.name.lower():8s}  {len(data) / c_ns * 1e3:13.0f}   {c_ns / 1e3:8.1f}"
            f"   {len(data) / d_ns * 1e3:15.0f}   {len(data) / len(blob):5.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=9, help="rounds per measurement")
    parser.add_argument("--batches", type=int, default=300, help="batches per round")
    args = parser.parse_args(argv)
    print(f"Python {sys.version.split()[0]}")
    bench_append(args.rounds, args.batches)
    bench_build(args.rounds, args.batches)
    bench_codecs(args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
