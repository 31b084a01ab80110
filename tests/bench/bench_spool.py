"""The durable spool's cost: a Sink with ``spool_fsync="interval"`` against one without.

Run from the repository root (see ``tests/bench/README.md``)::

    python -m tests.bench.bench_spool                 # 3 rounds of 200,000 records (~2 min)
    python -m tests.bench.bench_spool --quick         # 1 round, 50,000 records
    python -m tests.bench.bench_spool --records 500000 --rounds 5 --dir /var/tmp

It starts librdkafka's mock cluster (3 brokers, a topic of 6 partitions) in
its own process, then measures each contender in a fresh child process
(``python -m tests.bench.bench_spool --child SPEC``), alternating them in
every round:

* ``no spool``: the Sink as an application gets it by default, on its
  compiled path where the extension is built;
* ``no spool, Python path``: the same Sink with its compiled path off, which
  is the path every record of a spooled Sink takes (for reference);
* ``spool, interval``: the same Sink with ``spool_dir`` on ``--dir`` and
  ``spool_fsync="interval"`` (every second, the default).

Each child produces ``--records`` records of 150-byte JSON lines (1024
distinct ones) with 64 keys through ``Sink.enqueue()`` and then through
``Sink.produce()`` (a future per record), lz4, acks=all (idempotent), linger
10 ms, 32 MiB buffer, every other option at its default. The clock runs from
the first call until ``flush()`` returns with every record acknowledged; CPU
is the whole process's. The table shows the median of the rounds and each
contender's rate relative to ``no spool``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

RESULT = "BENCH-RESULT "
CONTENDERS = ("no spool", "no spool, Python path", "spool, interval")
CALLS = ("enqueue", "produce")


def _values() -> list[bytes]:
    return [
        json.dumps(
            {
                "level": "info",
                "msg": "request served",
                "user": i,
                "path": "/api/items",
                "ms": i % 97,
            }
        )
        .encode()
        .ljust(150, b" ")
        for i in range(1024)
    ]


def child(spec: dict[str, Any]) -> dict[str, Any]:
    import kafka_sink
    from kafka_sink.producer import sink as sink_module

    if spec["contender"] == "no spool, Python path":
        sink_class = sink_module.Sink
        sink_class._compiled_core = lambda self: None  # type: ignore[method-assign]  # no C core
    options: dict[str, Any] = {}
    spool_dir = None
    if spec["contender"].startswith("spool"):
        spool_dir = tempfile.mkdtemp(prefix="bench-spool-", dir=spec["dir"])
        options = {"spool_dir": spool_dir, "spool_fsync": "interval"}
    values = _values()
    keys = [b"user-%02d" % (i % 64) for i in range(1024)]
    out: dict[str, Any] = {"implementation": None}
    try:
        for call in CALLS:
            sink = kafka_sink.Sink(spec["servers"], client_id="bench-spool", **options)
            sink.produce(spec["topic"], b"warm-up").result(30)
            send = sink.enqueue if call == "enqueue" else sink.produce
            topic, n = spec["topic"], spec["records"]
            cpu, wall = time.process_time(), time.perf_counter()
            for i in range(n):
                send(topic, values[i & 1023], keys[i & 1023])
            left = sink.flush(120)
            wall = time.perf_counter() - wall
            cpu = time.process_time() - cpu
            metrics = sink.metrics()
            sink.close(10)
            if left or metrics["records_failed_total"]:
                raise RuntimeError(
                    f"{spec['contender']}: not every record was delivered: {metrics}"
                )
            out[call] = {"rate": n / wall, "cpu_us": cpu / n * 1e6, "seconds": wall}
            out["implementation"] = metrics.get("implementation")
            out["spool"] = {k: v for k, v in metrics.items() if k.startswith("spool_fsyncs")}
    finally:
        if spool_dir is not None:
            shutil.rmtree(spool_dir, ignore_errors=True)
    return out


def _run_child(spec: dict[str, Any]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_spool", "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in result.stdout.splitlines():
        if line.startswith(RESULT):
            parsed: dict[str, Any] = json.loads(line[len(RESULT) :])
            return parsed
    raise RuntimeError(f"{spec['contender']} failed:\n{result.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 round of 50,000 records")
    parser.add_argument(
        "--dir", default=tempfile.gettempdir(), help="where the spool is written (its disk counts)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(RESULT + json.dumps(child(json.loads(args.child))), flush=True)
        return 0
    if args.quick:
        args.records, args.rounds = 50_000, 1
    from kafka_sink.testing import MockCluster

    results: dict[str, dict[str, list[dict[str, float]]]] = {
        c: {call: [] for call in CALLS} for c in CONTENDERS
    }
    with MockCluster(3) as cluster:
        cluster.create_topic("bench-spool", 6, 3)
        for round_number in range(args.rounds):
            for contender in CONTENDERS:
                spec = {
                    "contender": contender,
                    "servers": cluster.bootstrap_servers,
                    "topic": "bench-spool",
                    "records": args.records,
                    "dir": args.dir,
                }
                got = _run_child(spec)
                for call in CALLS:
                    results[contender][call].append(got[call])
                print(
                    f"round {round_number + 1}: {contender}: "
                    + ", ".join(f"{c} {got[c]['rate']:,.0f}/s" for c in CALLS),
                    file=sys.stderr,
                )
    command = " ".join(["python", "-m", "tests.bench.bench_spool", *(argv or sys.argv[1:])])
    print(f"`{command}`: {args.records:,} records per run, median of {args.rounds} round(s), ")
    print(
        f"spool on {args.dir}; CPython {platform.python_version()} on {platform.system()} "
        f"with {os.cpu_count()} CPUs; librdkafka's mock cluster (3 brokers, 6 partitions).\n"
    )
    print("| contender | call | records/s | CPU µs/record | vs no spool |")
    print("|---|---|---:|---:|---:|")
    for call in CALLS:
        base = statistics.median(r["rate"] for r in results["no spool"][call])
        for contender in CONTENDERS:
            rows = results[contender][call]
            rate = statistics.median(r["rate"] for r in rows)
            cpu = statistics.median(r["cpu_us"] for r in rows)
            print(f"| {contender} | {call}() | {rate:,.0f} | {cpu:.2f} | {rate / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
