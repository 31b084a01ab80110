"""Machine instructions per record of ``Sink.produce()`` and of its parts, with callgrind.

Run it directly (pytest does not collect it); it needs valgrind::

    python3 -m tests.bench.bench_instructions [--records 20000] [--parts produce,encode,...]

Timings on a shared 2-core machine move by tens of percent from one run to the
next; instruction counts move by less than 1%, so they show what a change to
the hot path is worth. Each part runs in its own process under
``valgrind --tool=callgrind``, with counting switched on (``callgrind_control
-i on``) only around the loop, after a sink has connected to librdkafka's mock
cluster and its sender thread has been stopped: what is counted is the
caller's thread alone. The ``loop`` part (the same loop with no call) is
subtracted from the others.

Parts:

* ``produce``: ``sink.produce(topic, value, key=key)``, the whole call;
* ``enqueue``: ``sink.enqueue(topic, value, key=key)``, the same without a future;
* ``append``: the accumulator's ``append`` (with the encoding below);
* ``encode``: ``BatchBuilder.append`` alone, 700 records a batch as at 128 KiB;
* ``future``, ``partitioner``, ``clock``: the other pieces of ``produce()``;
* ``one-function``: an experiment, not library code: what ``produce()`` does
  for a keyed record (clock, murmur2 from the hash cache, future, buffer
  accounting under the lock, encoding into the open batch) written as a
  single function without argument checks, to show how much any restructuring
  of the Python code could gain.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

PARTS = (
    "loop",
    "produce",
    "enqueue",
    "append",
    "encode",
    "future",
    "partitioner",
    "clock",
    "one-function",
)
TOPIC = "bench"
BATCH_RECORDS = 700  # about 128 KiB of 150-byte records


def _counting(state: str) -> None:
    if os.environ.get("KAFKA_SINK_CALLGRIND"):
        subprocess.run(
            ["callgrind_control", "-i", state, str(os.getpid())], check=False, capture_output=True
        )


def _child(part: str, records: int) -> None:
    from kafka_sink import Sink
    from kafka_sink.producer.futures import DeliveryFuture
    from kafka_sink.protocol.codecs import Compression
    from kafka_sink.protocol.records import BatchBuilder
    from kafka_sink.testing import MockCluster
    from tests.bench.worker import make_keys, make_values

    values = make_values()
    keys = make_keys()
    nv, nk = len(values), len(keys)
    with MockCluster(num_brokers=1) as cluster:
        cluster.create_topic(TOPIC, 6, 1)
        sink = Sink(cluster.bootstrap_servers, acks=1, linger_ms=5, buffer_memory=1 << 30)
        sink.produce(TOPIC, b"warm-up", key=b"warm-up")
        sink.flush(30)
        # Stop the sender thread: only the caller's work is counted.
        sink._stop = True
        sink._wakeup()
        assert sink._thread is not None
        sink._thread.join()
        produce = sink.produce
        enqueue = sink.enqueue
        append = sink._accumulator.append
        partition = sink._partition
        future = DeliveryFuture(0)
        clock = time.time
        # Every part runs the same loop around one statement; "loop" has none.
        statements = {
            "loop": "pass",
            "produce": "produce(TOPIC, value, key=key)",
            "enqueue": "enqueue(TOPIC, value, key=key)",
            "append": "append(TOPIC, i % 6, 1_700_000_000_000, key, value, (), future)",
            "future": "DeliveryFuture(1_700_000_000_000, None)",
            "partitioner": "partition(TOPIC, key, None, 6)",
            "clock": "int(clock() * 1000)",
            "one-function": "fused(TOPIC, value, key)",
        }
        scope: dict[str, Any] = {
            "TOPIC": TOPIC,
            "produce": produce,
            "enqueue": enqueue,
            "append": append,
            "partition": partition,
            "future": future,
            "clock": clock,
            "DeliveryFuture": DeliveryFuture,
            "values": values,
            "keys": keys,
            "nv": nv,
            "nk": nk,
            "records": records,
            "fused": _OneFunction().produce,
        }
        loops: dict[str, Callable[[], None]] = {}
        for name, statement in statements.items():
            source = (
                "def run():\n"
                "    for i in range(records):\n"
                "        value = values[i % nv]\n"
                "        key = keys[i % nk]\n"
                f"        {statement}\n"
            )
            exec(source, scope)  # a fixed template: one identical loop per part
            loops[name] = scope.pop("run")

        def encode() -> None:
            builder = BatchBuilder(Compression.NONE, 1 << 40)
            for i in range(records):
                value = values[i % nv]
                key = keys[i % nk]
                if i % BATCH_RECORDS == 0:
                    builder = BatchBuilder(Compression.NONE, 1 << 40)
                builder.append(1_700_000_000_000, key, value, ())

        loops["encode"] = encode
        run = loops[part]
        _counting("on")
        run()
        _counting("off")


class _OneFunction:
    """The ``one-function`` part: produce() with everything inlined (see the module doc)."""

    def __init__(self) -> None:
        import threading

        from kafka_sink.producer import partitioner
        from kafka_sink.producer.futures import DeliveryFuture
        from kafka_sink.protocol import records

        self._future = DeliveryFuture
        self._cache = partitioner._young
        self._hash = partitioner._positive_hash_slow
        self._varint = records._VARINT
        self._lock = threading.Lock()
        self._acquire, self._release = self._lock.acquire, self._lock.release
        self._open: dict[tuple[str, int], list[object]] = {}
        self._used = 0
        self._incomplete = 0

    def produce(self, topic: str, value: bytes, key: bytes) -> object:
        timestamp = time.time_ns() // 1_000_000
        h = self._cache.get(key)
        if h is None:
            h = self._hash(key)
        partition = h % 6
        future = self._future(timestamp, None)
        varint = self._varint
        self._acquire()
        try:
            self._used += len(key) + len(value) + 128
            self._incomplete += 1
            batch = self._open.get((topic, partition))
            if batch is None or len(batch) > BATCH_RECORDS:
                batch = self._open[(topic, partition)] = [timestamp]
            count = len(batch) - 1
            delta = timestamp - batch[0]  # type: ignore[operator]  # item 0 is the int timestamp
            body = b"".join(
                (
                    b"\x00",
                    varint[delta],
                    varint[count],
                    varint[len(key)],
                    key,
                    varint[len(value)],
                    value,
                    b"\x00",
                )
            )
            batch.append((varint[len(body)] + body, future))
        finally:
            self._release()
        return future


def _measure(part: str, records: int) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "callgrind.out")
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}",
                # Not resolved: a virtual environment's python is a link, and
                # only through the link does the child find the environment.
                sys.executable,
                "-m",
                "tests.bench.bench_instructions",
                "--child",
                part,
                "--records",
                str(records),
            ],
            env={**os.environ, "KAFKA_SINK_CALLGRIND": "1"},
            capture_output=True,
            text=True,
            check=False,
        )
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"{part}: valgrind failed:\n{done.stderr[-2000:]}")
        return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.records)
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (apt install valgrind)")
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown parts: {', '.join(sorted(unknown))} (known: {', '.join(PARTS)})")
    loop = _measure("loop", args.records) / args.records
    print(f"| part | instructions per record (net of the loop, {loop:,.0f}) |")
    print("|---|---:|")
    for part in parts:
        if part == "loop":
            continue
        per_record = _measure(part, args.records) / args.records - loop
        print(f"| {part} | {per_record:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
