"""The Sink's defaults, measured: one option varied at a time from the defaults.

Run from the repository root (see ``tests/bench/README.md``)::

    python -m tests.bench.bench_defaults                  # every option, 3 rounds (~5 min, 2 cores)
    python -m tests.bench.bench_defaults --quick          # 1 round, smaller workloads (~1 min)
    python -m tests.bench.bench_defaults --options linger_ms,acks --rounds 5 --json raw.json

It starts librdkafka's mock cluster (:class:`kafka_sink.testing.MockCluster`,
3 brokers, a topic of 6 partitions with 3 replicas, two partition leaders per
broker) and measures kafka_sink's ``Sink`` alone, with every option at its
default (:class:`kafka_sink.SinkConfig`) but one:

* ``linger_ms`` 0, 1, 5, 10, 50
* ``batch_size`` 16 KiB, 64 KiB, 128 KiB, 1 MiB
* ``compression_type`` none, lz4, zstd, gzip, snappy
* ``acks`` 0, 1, all (with idempotence, as ``enable_idempotence`` follows acks)

The workload is shaped like logs: 150-byte JSON lines made as the peer
benchmark makes them (:mod:`tests.bench.worker`), but 32,768 distinct ones
rather than 1,024 so that no batch holds the same line twice (see
:func:`log_lines`), and 64 host-name keys. Each setting is measured
twice, each time in a fresh child process that first connects to every
broker (one record to each partition):

``full speed``  N records (``--records``) as fast as ``produce()`` takes
                them, until ``flush()`` returns: msgs/s and CPU time of the
                whole process per record, records per batch and bytes per
                record. Run ``--passes`` times in the child, which reports
                the median pass: on a 2-core machine one pass may be a
                third faster or slower than the next.
``steady``      a busy service's rate (``--rate`` records/s for
                ``--seconds``), ``produce()`` paced every millisecond:
                produce-to-delivery latency (each record's ``on_delivery``
                callback time minus the time just before its ``produce()``),
                Produce requests per second, records per request and per
                batch, record batch bytes per record (after compression,
                batch headers included), CPU per record on the caller's
                thread and in the whole process. The pacing loop's own CPU is
                measured in the same child with a no-op ``produce`` and
                subtracted.

The settings run round by round (every setting once per round, in the same
order); the tables show the median of the rounds. The default configuration
is shared by the four tables and measured once per round. A Markdown report
goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tests.bench.run import ROOT, fmt
from tests.bench.worker import NUM_VALUES, RESULT_PREFIX, VALUE_SIZE, make_keys, make_values

TOPIC = "bench-defaults"
BROKERS = 3
PARTITIONS = 6
CLIENT_ID = "kafka-sink-bench-defaults"
KIB = 1024

#: Each option and the values it takes, in the order of its table.
OPTIONS: dict[str, tuple[Any, ...]] = {
    "linger_ms": (0, 1, 5, 10, 50),
    "batch_size": (16 * KIB, 64 * KIB, 128 * KIB, 1024 * KIB),
    "compression_type": ("none", "lz4", "zstd", "gzip", "snappy"),
    "acks": (0, 1, -1),
}
PHASES = ("throughput", "steady")
#: Distinct log lines cycled through: a power of two, for indexing with a mask.
NUM_LINES = 32 * NUM_VALUES

# The counters of Sink.metrics() whose growth a phase reports.
_COUNTERS = (
    "records_sent",
    "requests",
    "batches_sent",
    "bytes_compressed",
    "bytes_uncompressed",
    "records_failed_total",
    "records_dropped_total",
    "retries",
)


def defaults() -> dict[str, Any]:
    """The defaults of the varied options, read from SinkConfig itself."""
    from kafka_sink.config import SinkConfig

    fields = SinkConfig.__dataclass_fields__
    return {name: fields[name].default for name in OPTIONS}


def label(option: str, value: Any) -> str:
    if option == "linger_ms":
        return f"{value:g} ms"
    if option == "batch_size":
        return f"{value // KIB} KiB" if value < 1024 * KIB else f"{value // (1024 * KIB)} MiB"
    if option == "acks":
        return {0: "0", 1: "1", -1: "all (idempotent)"}[value]
    return str(value)


# -- the child: one phase of one setting ----------------------------------------------


def log_lines() -> list[bytes]:
    """32,768 distinct 150-byte JSON log lines: the peer benchmark's, under 32 seeds.

    Real log lines are never repeated whole (timestamps and trace ids differ).
    The peer benchmark's 1,024 lines, cycled with 64 keys, put each line about
    four times in a 128 KiB batch, where every codec finds the repeats and
    shrinks the batch several times more than it would shrink real logs. With
    32,768 lines no batch up to 1 MiB holds the same line twice.
    """
    return [line for seed in range(32) for line in make_values(2024 + seed)]


def open_sink(spec: dict[str, Any]) -> Any:
    """A Sink with the defaults but the spec's overrides, connected to every broker."""
    import kafka_sink

    sink = kafka_sink.Sink(spec["servers"], client_id=CLIENT_ID, **spec["overrides"])
    futures = [
        sink.produce(TOPIC, b"warm-up", key=b"warm-up", partition=p) for p in range(PARTITIONS)
    ]
    remaining = sink.flush(30.0)
    errors = [f.exception(0) for f in futures if f.done() and f.exception(0) is not None]
    if remaining or errors:
        raise RuntimeError(f"warm-up failed: {remaining} undelivered, errors {errors[:1]}")
    return sink


def counters(metrics: dict[str, Any]) -> dict[str, float]:
    return {name: metrics[name] for name in _COUNTERS}


def growth(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in _COUNTERS}


def full_speed(sink: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """``passes`` runs of ``records`` records, each until flush() returns; their medians."""
    records: int = spec["records"]
    keys, values = make_keys(), log_lines()
    produce = sink.produce
    mask = NUM_LINES - 1
    before = counters(sink.metrics())
    seconds, cpu, remaining = [], [], 0
    for _ in range(spec["passes"]):
        cpu0 = time.process_time()
        start = time.perf_counter()
        for i in range(records):
            produce(TOPIC, values[i & mask], keys[i & 63])
        remaining += sink.flush(spec["flush_timeout"])
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu0)
    grown = growth(before, counters(sink.metrics()))
    return {
        "records": records,
        "seconds": statistics.median(seconds),
        "cpu_seconds": statistics.median(cpu),
        "every_pass_msgs_per_second": [round(records / s) for s in seconds],
        "unacknowledged": remaining,
        **per_record(grown),
        **grown,
    }


def per_record(grown: dict[str, float]) -> dict[str, float]:
    """Batch fill and bytes per record, from the growth of the counters."""
    sent = grown["records_sent"] or 1
    return {
        "records_per_batch": grown["records_sent"] / (grown["batches_sent"] or 1),
        "wire_bytes_per_record": grown["bytes_compressed"] / sent,
        "raw_bytes_per_record": grown["bytes_uncompressed"] / sent,
    }


def paced(
    produce: Callable[..., Any],
    records: int,
    rate: float,
    sent: array[float],
    on_done: Callable[..., None],
    lines: tuple[list[bytes], list[bytes]],
) -> tuple[float, float]:
    """Produce ``records`` at ``rate`` per second, a few every millisecond.

    ``lines`` are the keys and the values. Stores each record's produce
    time in ``sent``; returns the CPU time of this thread and the elapsed time.
    """
    per_tick = max(1, round(rate / 1000))
    keys, values = lines
    mask = NUM_LINES - 1
    clock = time.perf_counter
    i = 0
    cpu0 = time.thread_time()
    start = clock()
    next_tick = start
    while i < records:
        for _ in range(min(per_tick, records - i)):
            sent[i] = clock()
            produce(TOPIC, values[i & mask], keys[i & 63], on_delivery=partial(on_done, i))
            i += 1
        next_tick += per_tick / rate
        delay = next_tick - clock()
        if delay > 0:
            time.sleep(delay)
    return time.thread_time() - cpu0, clock() - start


def steady(sink: Any, spec: dict[str, Any]) -> dict[str, Any]:
    rate: float = spec["rate"]
    records = max(1, round(rate * spec["seconds"]))
    sent = array("d", bytes(8 * records))
    done = array("d", bytes(8 * records))
    failures = [0]
    clock = time.perf_counter

    def delivered(i: int, _metadata: Any, error: Any) -> None:
        done[i] = clock()
        if error is not None:
            failures[0] += 1

    def no_op(*_args: Any, **_kwargs: Any) -> None:
        return None

    # The harness alone (clock reads, the callback's partial, the pacing
    # sleeps), with the same loop and a produce() that does nothing.
    lines = make_keys(), log_lines()
    calibration = max(1, round(rate * spec["calibration_seconds"]))
    harness_cpu, _ = paced(
        no_op, calibration, rate, array("d", bytes(8 * calibration)), no_op, lines
    )
    harness = harness_cpu / calibration

    before = counters(sink.metrics())
    process0 = time.process_time()
    caller_cpu, elapsed = paced(sink.produce, records, rate, sent, delivered, lines)
    remaining = sink.flush(spec["flush_timeout"])
    process_cpu = time.process_time() - process0
    after = sink.metrics()
    latencies = sorted(done[i] - sent[i] for i in range(records) if done[i])

    def at(q: float) -> float | None:
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000.0

    grown = growth(before, counters(after))
    return {
        "records": records,
        "achieved_rate": records / elapsed,
        "p50_ms": at(0.50),
        "p99_ms": at(0.99),
        "max_ms": at(1.0),
        "requests_per_second": grown["requests"] / elapsed,
        "records_per_request": grown["records_sent"] / (grown["requests"] or 1),
        **per_record(grown),
        "harness_us": harness * 1e6,
        "caller_us": (caller_cpu / records - harness) * 1e6,
        "process_us": (process_cpu / records - harness) * 1e6,
        "unacknowledged": remaining,
        "undelivered_callbacks": records - len(latencies),
        "failed_callbacks": failures[0],
        "idempotence": after["idempotence"],
        **grown,
    }


def child(spec: dict[str, Any]) -> dict[str, Any]:
    sink = open_sink(spec)
    measure = full_speed if spec["phase"] == "throughput" else steady
    return {"status": "ok", **measure(sink, spec)}


def child_main(text: str) -> None:
    try:
        result = child(json.loads(text))
    except Exception as exc:
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    sys.stderr.flush()
    os._exit(0)  # teardown is not measured


# -- the parent ------------------------------------------------------------------------


@dataclass
class Setting:
    """One configuration: the defaults with at most one option changed."""

    overrides: dict[str, Any]
    results: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {phase: [] for phase in PHASES}
    )

    @property
    def name(self) -> str:
        if not self.overrides:
            return "defaults"
        (option, value), *_ = self.overrides.items()
        return f"{option}={label(option, value)}"

    def median(self, phase: str, key: str) -> float | None:
        values = [
            r[key]
            for r in self.results[phase]
            if r.get("status") == "ok" and r.get(key) is not None
        ]
        return statistics.median(values) if values else None


def run_child(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One phase of one setting in a fresh interpreter; its result line, or why not."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "tests.bench.bench_defaults", "--child", json.dumps(spec)]
    try:
        done = subprocess.run(
            command, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"status": "error", "error": f"no result within {timeout:.0f} s"}
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    tail = "\n".join(done.stderr.strip().splitlines()[-15:])
    return {"status": "error", "error": "the child exited without a result", "stderr": tail}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_defaults",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )

    def option_names(text: str) -> list[str]:
        chosen = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in chosen if name not in OPTIONS]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown)}; choose among {', '.join(OPTIONS)}"
            )
        return chosen

    parser.add_argument(
        "--options", type=option_names, default=",".join(OPTIONS), help="the options to vary"
    )
    parser.add_argument("--rounds", type=int, default=3, help="the tables show their median")
    parser.add_argument("--records", type=int, default=100_000, help="full-speed records")
    parser.add_argument(
        "--passes",
        type=int,
        default=3,
        help="full-speed runs in each child (their median counts as the round's figure)",
    )
    parser.add_argument("--rate", type=float, default=5000.0, help="steady records per second")
    parser.add_argument("--seconds", type=float, default=3.0, help="steady duration")
    parser.add_argument(
        "--calibration-seconds",
        type=float,
        default=0.5,
        help="steady: how long the pacing loop runs alone to measure its own CPU",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 round, 1 pass of 20,000 full-speed records, 1 s steady (overrides those options)",
    )
    parser.add_argument("--child-timeout", type=float, default=300.0, help="seconds")
    parser.add_argument("--json", type=Path, help="also write every round's raw result here")
    parser.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.passes, args.records = 1, 1, 20_000
        args.seconds, args.calibration_seconds = 1.0, 0.25
    if args.rounds < 1 or args.passes < 1:
        parser.error("--rounds and --passes must be >= 1")
    return args


def settings_for(options: Sequence[str]) -> tuple[dict[str, list[Setting]], list[Setting]]:
    """Each option's rows, and every distinct setting once, in the order they run."""
    base = defaults()
    distinct: dict[str, Setting] = {}
    rows: dict[str, list[Setting]] = {}
    for option in options:
        rows[option] = []
        for value in OPTIONS[option]:
            overrides = {} if value == base[option] else {option: value}
            key = json.dumps(overrides, sort_keys=True)
            rows[option].append(distinct.setdefault(key, Setting(overrides)))
    return rows, list(distinct.values())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        child_main(args.child)
    from kafka_sink.testing import MockCluster

    rows, order = settings_for(args.options)
    began = time.monotonic()
    with MockCluster(BROKERS, topics={TOPIC: PARTITIONS}) as cluster:
        # The mock picks leaders at random: place two on each broker, every run alike.
        for partition in range(PARTITIONS):
            cluster.set_partition_leader(TOPIC, partition, partition % BROKERS + 1)
        base_spec = {
            "servers": cluster.bootstrap_servers,
            "records": args.records,
            "passes": args.passes,
            "rate": args.rate,
            "seconds": args.seconds,
            "calibration_seconds": args.calibration_seconds,
            "flush_timeout": 120.0,
        }
        for round_number in range(1, args.rounds + 1):
            for setting in order:
                for phase in PHASES:
                    spec = {**base_spec, "phase": phase, "overrides": setting.overrides}
                    started = time.monotonic()
                    result = run_child(spec, args.child_timeout)
                    setting.results[phase].append(result)
                    print(
                        f"round {round_number} {setting.name} {phase}: {summary(result)} "
                        f"({time.monotonic() - started:.1f} s, "
                        f"{time.monotonic() - began:.0f} s in all)",
                        file=sys.stderr,
                    )
        librdkafka = cluster.librdkafka_version

    if args.json:
        raw = [
            {"overrides": s.overrides, "phase": phase, "round": n + 1, **result}
            for s in order
            for phase in PHASES
            for n, result in enumerate(s.results[phase])
        ]
        args.json.write_text(json.dumps(raw, indent=1))
    sys.stdout.write(report(args, rows, order, librdkafka))
    return 0


def summary(result: dict[str, Any]) -> str:
    if result.get("status") != "ok":
        return f"error: {result.get('error')}" + (
            f"\n{result['stderr']}" if result.get("stderr") else ""
        )
    if "seconds" in result:
        return (
            f"{result['records'] / result['seconds']:,.0f} msgs/s, "
            f"{result['cpu_seconds'] / result['records'] * 1e6:.2f} µs CPU/record "
            f"(passes: {', '.join(f'{r:,}' for r in result['every_pass_msgs_per_second'])})"
        )
    return (
        f"p50 {fmt(result['p50_ms'], 2)} ms, p99 {fmt(result['p99_ms'], 2)} ms, "
        f"{result['requests_per_second']:,.0f} req/s, {result['records_per_request']:.1f} rec/req, "
        f"caller {result['caller_us']:.2f} µs, process {result['process_us']:.2f} µs, "
        f"harness {result['harness_us']:.2f} µs"
    )


# -- the report --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """The medians of one setting, as one table row needs them."""

    rate: float | None
    cpu_us: float | None
    fast_per_batch: float | None
    fast_wire: float | None
    fast_raw: float | None
    p50: float | None
    p99: float | None
    requests_per_second: float | None
    per_request: float | None
    per_batch: float | None
    wire: float | None
    caller_us: float | None
    process_us: float | None

    @classmethod
    def of(cls, setting: Setting, records: int) -> Row:
        seconds = setting.median("throughput", "seconds")
        cpu = setting.median("throughput", "cpu_seconds")
        fast = partial(setting.median, "throughput")
        steady = partial(setting.median, "steady")
        return cls(
            rate=records / seconds if seconds else None,
            cpu_us=cpu / records * 1e6 if cpu is not None else None,
            fast_per_batch=fast("records_per_batch"),
            fast_wire=fast("wire_bytes_per_record"),
            fast_raw=fast("raw_bytes_per_record"),
            p50=steady("p50_ms"),
            p99=steady("p99_ms"),
            requests_per_second=steady("requests_per_second"),
            per_request=steady("records_per_request"),
            per_batch=steady("records_per_batch"),
            wire=steady("wire_bytes_per_record"),
            caller_us=steady("caller_us"),
            process_us=steady("process_us"),
        )

    def cells(self) -> list[str]:
        return [
            fmt(self.rate),
            fmt(self.cpu_us, 2),
            fmt(self.fast_per_batch),
            fmt(self.fast_wire, 1),
            fmt(self.p50, 2),
            fmt(self.p99, 2),
            fmt(self.requests_per_second),
            fmt(self.per_request, 1),
            fmt(self.per_batch, 1),
            fmt(self.wire, 1),
            fmt(self.caller_us, 2),
            fmt(self.process_us, 2),
        ]


def header(rate: float) -> tuple[str, ...]:
    steady = f"@{rate / 1000:g}k/s"
    return (
        "msgs/s",
        "CPU µs/rec",
        "rec/batch",
        "B/rec",
        "p50 ms",
        "p99 ms",
        "req/s",
        "rec/req",
        f"rec/batch {steady}",
        f"B/rec {steady}",
        "caller µs/rec",
        "process µs/rec",
    )


def report(
    args: argparse.Namespace,
    rows: dict[str, list[Setting]],
    order: list[Setting],
    librdkafka: str,
) -> str:
    base = defaults()
    key_bytes = statistics.mean(len(key) for key in make_keys())
    shown = ", ".join(f"{o}={label(o, base[o])}" for o in OPTIONS)
    out = [
        "## Defaults, measured",
        "",
        f"kafka_sink's `Sink` alone against librdkafka {librdkafka}'s mock cluster: "
        f"{BROKERS} brokers, a topic of {PARTITIONS} partitions (3 replicas, two leaders "
        f"per broker). {platform.python_implementation()} {platform.python_version()} on "
        f"{platform.system()} with {os.cpu_count()} CPUs. Every option at its default "
        f"({shown}) but the one in the first column. Records: {NUM_LINES:,} distinct "
        f"{VALUE_SIZE} B JSON log lines, 64 keys ({key_bytes:.0f} B). Median of "
        f"{args.rounds} round(s), each measurement in a fresh process.",
        "",
        f"The first four columns are at full speed: {args.records:,} records as fast as "
        "`produce()` takes them, until `flush()` returns (the median of "
        f"{args.passes} pass(es) in each process); CPU of the whole process, records per "
        "batch, record batch bytes per record (compressed, batch headers included). The "
        f"others at a steady {args.rate:,.0f} records/s for {args.seconds:g} s, paced every "
        "millisecond: latency from just before `produce()` to the record's `on_delivery` "
        "callback; Produce requests per second, records per request and per batch, bytes per "
        "record, all from `Sink.metrics()`; CPU per record on the caller's thread and in the "
        "whole process, less the pacing loop's own.",
    ]
    readings = []
    for option, settings in rows.items():
        out += [
            "",
            f"### {option}",
            "",
            f"| {option} | " + " | ".join(header(args.rate)) + " |",
            "|---" + "|---:" * len(header(args.rate)) + "|",
        ]
        table = []
        for value, setting in zip(OPTIONS[option], settings, strict=True):
            row = Row.of(setting, args.records)
            table.append((value, row))
            name = label(option, value) + (" (default)" if value == base[option] else "")
            out.append(f"| {name} | " + " | ".join(row.cells()) + " |")
        readings.append(reading(option, base[option], table, args.rate))
    out += ["", "### Reading", ""]
    for paragraph in readings:
        out += [paragraph, ""]
    notes = problems(order, args.rate)
    default_setting = next((s for s in order if not s.overrides), None)
    if default_setting is not None:
        passes = [
            rate
            for r in default_setting.results["throughput"]
            for rate in r.get("every_pass_msgs_per_second", ())
        ]
        if passes:
            notes.append(
                f"Full speed is noisy on this machine: the defaults' {len(passes)} passes "
                f"ranged from {min(passes):,} to {max(passes):,} msgs/s. A difference "
                "smaller than that is not a difference."
            )
    harness = [r["harness_us"] for s in order for r in s.results["steady"] if "harness_us" in r]
    if harness:
        notes.append(
            f"The pacing loop alone cost {statistics.median(harness):.2f} µs of CPU per record "
            "(median of every steady run); it is subtracted from the caller and process figures."
        )
    out += ["Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(out) + "\n"


def reading(option: str, default: Any, table: list[tuple[Any, Row]], rate: float) -> str:
    """What the numbers say about one default, in one paragraph."""
    name = label(option, default)
    rows = {
        label(option, value) + (" (default)" if value == default else ""): row
        for value, row in table
    }
    speed = f"{rate:,.0f} records/s"
    if option == "linger_ms":
        each = "; ".join(
            f"{key}: {fmt(row.per_request, 1)} records per request, p50/p99 "
            f"{fmt(row.p50, 1)}/{fmt(row.p99, 1)} ms, {fmt(row.process_us, 1)} µs"
            for key, row in rows.items()
        )
        text = (
            f"At {speed} linger sets how many records share a request, and with it the "
            f"CPU the whole process spends per record and the latency ({each}). At full "
            f"speed batches fill before the linger ends ({_spread(rows, 'fast_per_batch')} "
            "records per batch for every value), so the rate differs by no more than "
            f"the noise ({_spread(rows, 'rate')} msgs/s)."
        )
    elif option == "batch_size":
        each = "; ".join(
            f"{key}: {fmt(row.rate)} msgs/s, {fmt(row.cpu_us, 2)} µs, "
            f"{fmt(row.fast_per_batch)} records per batch"
            for key, row in rows.items()
        )
        text = (
            f"batch_size bounds a batch only when records come faster than the linger "
            f"ends: at full speed ({each}). At {speed} batches hold "
            f"{_spread(rows, 'per_batch', 1)} records whatever the bound, so latency "
            f"({_spread(rows, 'p99', 1)} ms p99), requests ({_spread(rows, 'requests_per_second')}"
            "/s) and bytes do not move."
        )
    elif option == "compression_type":
        none = rows.get("none")
        each = "; ".join(
            f"{key}: {fmt(row.fast_wire)} B a record at full speed"
            f"{_times_smaller(none, row, 'fast')}, {fmt(row.wire)} B at {speed}"
            f"{_times_smaller(none, row, 'steady')}, {fmt(row.rate)} msgs/s, "
            f"{fmt(row.cpu_us, 2)} µs a record"
            for key, row in rows.items()
        )
        text = (
            "The codec decides the bytes on the wire, and how much it saves depends on "
            f"how full the batches are ({each}). Latency at {speed} is the same for "
            f"every codec ({_spread(rows, 'p99', 1)} ms p99)."
        )
    else:
        each = "; ".join(
            f"{key}: {fmt(row.rate)} msgs/s, {fmt(row.cpu_us, 2)} µs a record at full "
            f"speed, p50/p99 {fmt(row.p50, 1)}/{fmt(row.p99, 1)} ms at {speed}"
            for key, row in rows.items()
        )
        text = (
            "The mock cluster ignores acks (it answers every Produce request at once, "
            "even with acks=0, and keeps no real replicas), so this shows the client's own "
            f"cost of each setting, idempotence included ({each}); on a real cluster "
            '"all" also waits for the in-sync replicas.'
        )
    return f"**{option} = {name}.** {text}"


def _spread(rows: dict[str, Row], attribute: str, digits: int = 0) -> str:
    values = [v for v in (getattr(row, attribute) for row in rows.values()) if v is not None]
    if not values:
        return "-"
    low, high = min(values), max(values)
    return (
        fmt(low, digits)
        if fmt(low, digits) == fmt(high, digits)
        else (f"{fmt(low, digits)} to {fmt(high, digits)}")
    )


def _times_smaller(none: Row | None, row: Row, phase: str) -> str:
    if none is None or none is row:
        return ""
    base, this = (none.fast_wire, row.fast_wire) if phase == "fast" else (none.wire, row.wire)
    return f" ({base / this:.1f}x smaller)" if base and this else ""


def problems(order: list[Setting], rate: float) -> list[str]:
    """Rounds that failed or lost records, and the idempotence state of each setting."""
    notes = []
    for setting in order:
        for phase in PHASES:
            for n, result in enumerate(setting.results[phase], 1):
                where = f"{setting.name}, {phase}, round {n}"
                if result.get("status") != "ok":
                    notes.append(f"{where}: {result.get('error')}")
                    continue
                lost = {
                    key: result.get(key)
                    for key in (
                        "unacknowledged",
                        "records_failed_total",
                        "records_dropped_total",
                        "undelivered_callbacks",
                        "failed_callbacks",
                        "retries",
                    )
                    if result.get(key)
                }
                if lost:
                    notes.append(f"{where}: {json.dumps(lost)}")
                if phase == "steady" and result["achieved_rate"] < 0.98 * rate:
                    notes.append(f"{where}: paced at {result['achieved_rate']:,.0f} records/s")
        states = {r.get("idempotence") for r in setting.results["steady"] if "idempotence" in r}
        if states and setting.overrides.get("acks", -1) == -1 and states != {"enabled"}:
            notes.append(f"{setting.name}: idempotence {', '.join(sorted(map(str, states)))}")
    return notes


if __name__ == "__main__":
    raise SystemExit(main())
