"""Producer threads: kafka_sink and confluent-kafka fed by 1 to 32 threads at once.

Run from the repository root (see ``tests/bench/README.md``)::

    python -m tests.bench.bench_threads                 # everything, 3 rounds (~5 min, 2 cores)
    python -m tests.bench.bench_threads --quick         # 1 round, 20,000 records, 1/4/32 threads
    python -m tests.bench.bench_threads --threads 1,8 --switch-interval 0.001 --json raw.json

It starts librdkafka's mock cluster (3 brokers; a topic of 6 partitions and
one of 600, partition leaders spread evenly) in its own process, then
measures each contender in a fresh child process
(``python -m tests.bench.bench_threads --child SPEC``):

* ``kafka_sink`` / ``kafka_sink-pure``: ``Sink.produce()`` from plain
  threads; ``KAFKA_SINK_PURE`` unset (the compiled path, where there is one)
  or ``KAFKA_SINK_PURE=1`` (the pure-Python path).
* ``confluent-kafka``: ``Producer.produce()`` then ``poll(0)`` for every
  record, ``flush()`` at the end, as its documentation shows.
* ``KafkaHandler`` / ``KafkaHandler-pure``: ``logger.info()`` from the
  workers of a ``ThreadPoolExecutor`` through ``kafka_sink.KafkaHandler``
  (``serializer="text"``, ``standard_headers=False``, the key taken from
  ``extra``), compiled and pure path.
* ``confluent-handler``: the same calls through a ``logging.Handler`` that
  produces to confluent-kafka (:mod:`tests.bench.confluent_logging`), with
  the same ``logging.Formatter("%(message)s")``.

The workload: N records (``--records``) of 130-byte JSON lines (1024
distinct ones), 64 keys, lz4, acks=1, linger 5 ms, batch 128 KiB, a 32 MiB
buffer that waits for room rather than drops. With k threads, thread j
produces records j, j+k, j+2k... All threads start together (a barrier);
the clock runs from the first ``produce()`` until ``flush()`` returns with
every record acknowledged, and the produce phase until the last thread
returned from its last call. One more row: 1 thread on the 600-partition
topic with 6,000 keys.

Each round runs every row and every contender once, in the same order; the
tables show the median of the rounds. After the rounds, a diagnostic run of
each kafka_sink row (``--diagnostic-rounds``) probes every
``threading.Lock`` the library creates (the time each acquire spent
waiting) and counts the sender's wake-up calls and loop turns; the probes
slow it down, so its figures are only for where the time goes.

Markdown goes to stdout, progress to stderr, every raw result to ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.bench.confluent_logging import ConfluentHandler, produce_retrying
from tests.bench.harness import (
    BROKERS,
    KAFKA_SINK_PATHS,
    PURE_ENV,
    Clock,
    LockProbe,
    child_main,
    command_line,
    confluent_config,
    count_wakeups,
    error_summary,
    first_line,
    fmt,
    host_keys,
    json_values,
    machine_line,
    median,
    path_notes,
    path_of,
    run_child,
    sink_options,
)

MODULE = "tests.bench.bench_threads"
NARROW_TOPIC = "bench-threads-6"
WIDE_TOPIC = "bench-threads-600"
VALUE_SIZE = 130
WARM_UP_RECORD = b"warm-up"


@dataclass(frozen=True)
class Contender:
    name: str  # on the command line
    label: str  # in the tables
    api: str  # "produce" or "logging"
    client: str  # "kafka_sink" or "confluent"
    env: dict[str, str | None] = field(default_factory=dict)


def _contenders() -> dict[str, Contender]:
    found: list[Contender] = []
    for path, value in KAFKA_SINK_PATHS:
        suffix = "" if path == "compiled" else f"-{path}"
        found.append(
            Contender(
                f"kafka_sink{suffix}",
                f"kafka_sink ({path})",
                "produce",
                "kafka_sink",
                {PURE_ENV: value},
            )
        )
    found.append(Contender("confluent-kafka", "confluent-kafka", "produce", "confluent"))
    for path, value in KAFKA_SINK_PATHS:
        suffix = "" if path == "compiled" else f"-{path}"
        found.append(
            Contender(
                f"KafkaHandler{suffix}",
                f"KafkaHandler ({path})",
                "logging",
                "kafka_sink",
                {PURE_ENV: value},
            )
        )
    found.append(
        Contender("confluent-handler", "logging.Handler on confluent-kafka", "logging", "confluent")
    )
    return {c.name: c for c in found}


CONTENDERS = _contenders()
BASELINES = {"produce": "confluent-kafka", "logging": "confluent-handler"}


@dataclass(frozen=True)
class Row:
    """One line of the tables: a thread count on one topic."""

    threads: int
    topic: str
    partitions: int
    keys: int

    @property
    def name(self) -> str:
        return f"{self.threads} thread{'s' if self.threads > 1 else ''}, {self.partitions} p"


# -- the child -------------------------------------------------------------------------


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    contender = CONTENDERS[spec["contender"]]
    threads: int = spec["threads"]
    records: int = spec["records"]
    keys = host_keys(spec["keys"])
    texts = json_values(VALUE_SIZE)
    mask = len(texts) - 1
    probe = LockProbe() if spec["diagnostic"] else None

    with probe.installed() if probe is not None else contextlib.nullcontext():
        built = build(contender, spec)
        built.warm_up(spec["partitions"])
    if probe is not None:
        probe.reset()
    wakeups = count_wakeups(built.sink) if probe is not None and built.sink is not None else None
    before = built.counters()

    if contender.api == "produce":
        values = [text.encode() for text in texts]
        shares: list[list[Any]] = [
            [(values[i & mask], keys[i % len(keys)].encode()) for i in range(j, records, threads)]
            for j in range(threads)
        ]
    else:
        extras = [{"host": key} for key in keys]
        shares = [
            [(texts[i & mask], extras[i % len(keys)]) for i in range(j, records, threads)]
            for j in range(threads)
        ]
    barrier = threading.Barrier(threads + 1)
    ends = [0.0] * threads
    thread_cpu = [0.0] * threads
    loop = built.loop

    def work(j: int) -> None:
        share = shares[j]
        barrier.wait()
        cpu0 = time.thread_time()
        loop(share)
        thread_cpu[j] = time.thread_time() - cpu0
        ends[j] = time.perf_counter()

    clock = Clock()
    if contender.api == "produce":
        workers = [
            threading.Thread(target=work, args=(j,), name=f"producer-{j}") for j in range(threads)
        ]
        for worker in workers:
            worker.start()
        clock.start()
        start = time.perf_counter()
        barrier.wait()
        for worker in workers:
            worker.join()
    else:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="app") as pool:
            futures = [pool.submit(work, j) for j in range(threads)]
            clock.start()
            start = time.perf_counter()
            barrier.wait()
            for future in futures:
                future.result()
    produced = max(ends)
    remaining = built.flush(spec["flush_timeout"])
    end = time.perf_counter()
    timing = clock.stop()
    after = built.counters()

    result: dict[str, Any] = {
        "seconds": end - start,
        "produce_seconds": produced - start,
        "cpu_seconds": timing["cpu_seconds"],
        "thread_cpu_seconds": sum(thread_cpu),
        "context_switches": timing["context_switches"],
        "unacknowledged": remaining,
        **{key: after[key] - before.get(key, 0) for key in after},
    }
    if probe is not None:
        sender = getattr(built.sink, "_thread", None)
        result["locks"] = probe.report(getattr(sender, "ident", None))
        if wakeups is not None:
            result["wakeups"] = wakeups()
    return result


@dataclass
class Built:
    """A producer ready to time: its loop over one thread's share, flush, counters."""

    loop: Callable[[list[Any]], None]
    flush: Callable[[float], int]
    counters: Callable[[], dict[str, int]]
    warm_up: Callable[[int], None]
    sink: Any = None


def build(contender: Contender, spec: dict[str, Any]) -> Built:
    topic = spec["topic"]
    if contender.client == "kafka_sink":
        return _build_kafka_sink(contender, spec, topic)
    return _build_confluent(contender, spec, topic)


def _build_kafka_sink(contender: Contender, spec: dict[str, Any], topic: str) -> Built:
    import kafka_sink

    options = sink_options(spec)
    handler = None
    loop: Callable[[list[Any]], None]
    if contender.api == "produce":
        sink = kafka_sink.Sink(spec["servers"], **options)
        produce = sink.produce

        def loop(share: list[Any]) -> None:
            for value, key in share:
                produce(topic, value, key)

    else:
        handler = kafka_sink.KafkaHandler(
            topic,
            spec["servers"],
            serializer="text",
            standard_headers=False,
            key="host",
            **options,
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        sink = handler.sink
        loop = _logging_loop(handler)

    def warm_up(partitions: int) -> None:
        for partition in range(partitions):
            sink.produce(topic, WARM_UP_RECORD, WARM_UP_RECORD, partition)
        if sink.flush(30.0):
            raise RuntimeError("kafka_sink could not deliver its warm-up records")

    def counters() -> dict[str, int]:
        metrics = sink.metrics()
        out = {
            "delivered": metrics.get("records_sent", 0),
            "failed": metrics.get("records_failed_total", 0)
            + metrics.get("records_dropped_total", 0),
            "requests": metrics.get("requests", 0),
            "batches": metrics.get("batches_sent", 0),
        }
        # Sender wake-ups, should Sink.metrics() count them (it did not when this was written).
        for key, value in metrics.items():
            if "wake" in key and isinstance(value, int) and not isinstance(value, bool):
                out[f"metrics.{key}"] = value
        if handler is not None:
            shipped = handler.metrics()
            out["failed"] += shipped.get("records_failed_total", 0)
        return out

    return Built(loop, sink.flush, counters, warm_up, sink)


def _build_confluent(contender: Contender, spec: dict[str, Any], topic: str) -> Built:
    from confluent_kafka import Producer

    failures = [0]

    def on_delivery(error: Any, _message: Any) -> None:
        if error is not None:
            failures[0] += 1

    producer = Producer(confluent_config(spec, on_delivery))
    loop: Callable[[list[Any]], None]
    if contender.api == "produce":
        produce, poll = producer.produce, producer.poll

        def loop(share: list[Any]) -> None:
            for value, key in share:
                try:
                    produce(topic, value, key)
                except BufferError:
                    produce_retrying(producer, topic, value, key)
                poll(0)

    else:
        handler = ConfluentHandler(producer, topic, key="host")
        handler.setFormatter(logging.Formatter("%(message)s"))
        loop = _logging_loop(handler)

    def warm_up(partitions: int) -> None:
        for partition in range(partitions):
            producer.produce(topic, WARM_UP_RECORD, WARM_UP_RECORD, partition)
        if producer.flush(30.0) or failures[0]:
            raise RuntimeError("confluent-kafka could not deliver its warm-up records")

    def counters() -> dict[str, int]:
        return {"failed": failures[0]}

    def flush(timeout: float) -> int:
        remaining: int = producer.flush(timeout)
        return remaining

    return Built(loop, flush, counters, warm_up)


def _logging_loop(handler: logging.Handler) -> Callable[[list[Any]], None]:
    logger = logging.getLogger("bench.threads")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    info = logger.info

    def loop(share: list[Any]) -> None:
        for message, extra in share:
            info(message, extra=extra)

    return loop


# -- the parent ------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )

    def contender_names(text: str) -> list[str]:
        chosen = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in chosen if name not in CONTENDERS]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown)}; choose among {', '.join(CONTENDERS)}"
            )
        return chosen

    def counts(text: str) -> list[int]:
        try:
            values = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
        if not values or min(values) < 1:
            raise argparse.ArgumentTypeError("thread counts must be >= 1")
        return values

    parser.add_argument("--contenders", type=contender_names, default=",".join(CONTENDERS))
    parser.add_argument("--threads", type=counts, help="default: 1,2,4,8,32")
    parser.add_argument("--records", type=int, help="default: 100,000")
    parser.add_argument("--rounds", type=int, help="the tables show their median (default: 3)")
    parser.add_argument(
        "--diagnostic-rounds",
        type=int,
        default=1,
        help="probed runs of each kafka_sink row after the rounds (0: none)",
    )
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--keys", type=int, default=64)
    parser.add_argument("--wide-partitions", type=int, default=600, help="0: no such row")
    parser.add_argument("--wide-keys", type=int, default=6000)
    parser.add_argument("--codec", default="lz4")
    parser.add_argument("--acks", type=int, default=1)
    parser.add_argument("--linger-ms", type=float, default=5.0)
    parser.add_argument(
        "--switch-interval",
        type=float,
        help="sys.setswitchinterval() in each producing process, seconds (default: Python's)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 round of 20,000 records with 1, 4 and 32 threads (options given still count)",
    )
    parser.add_argument("--child-timeout", type=float, default=300.0, help="seconds")
    parser.add_argument("--json", type=Path, help="also write every raw result here")
    parser.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    defaults = {"rounds": 3, "records": 100_000, "threads": [1, 2, 4, 8, 32]}
    if args.quick:
        defaults = {"rounds": 1, "records": 20_000, "threads": [1, 4, 32]}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.rounds < 1 or args.diagnostic_rounds < 0:
        parser.error("--rounds must be >= 1 and --diagnostic-rounds >= 0")
    return args


def rows_of(args: argparse.Namespace) -> list[Row]:
    rows = [Row(t, NARROW_TOPIC, args.partitions, args.keys) for t in args.threads]
    if args.wide_partitions:
        rows.append(Row(1, WIDE_TOPIC, args.wide_partitions, args.wide_keys))
    return rows


@dataclass
class Outcome:
    row: Row
    contender: str
    round: int
    diagnostic: bool
    result: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.result.get("status") == "ok"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        child_main(measure, args.child)
    from kafka_sink.testing import MockCluster

    rows = rows_of(args)
    topics = {row.topic: row.partitions for row in rows}
    outcomes: list[Outcome] = []
    began = time.monotonic()
    with MockCluster(BROKERS, topics=topics) as cluster:
        for topic, partitions in topics.items():
            for partition in range(partitions):
                cluster.set_partition_leader(topic, partition, partition % BROKERS + 1)
        servers = cluster.bootstrap_servers
        passes = [(n, False) for n in range(1, args.rounds + 1)]
        passes += [(n, True) for n in range(1, args.diagnostic_rounds + 1)]
        for number, diagnostic in passes:
            for row in rows:
                for name in args.contenders:
                    contender = CONTENDERS[name]
                    if diagnostic and contender.client != "kafka_sink":
                        continue
                    spec = {
                        "contender": name,
                        "servers": servers,
                        "topic": row.topic,
                        "partitions": row.partitions,
                        "keys": row.keys,
                        "threads": row.threads,
                        "records": args.records,
                        "codec": args.codec,
                        "acks": args.acks,
                        "linger_ms": args.linger_ms,
                        "switch_interval": args.switch_interval,
                        "diagnostic": diagnostic,
                        "flush_timeout": 120.0,
                    }
                    started = time.monotonic()
                    result = run_child(MODULE, spec, contender.env, args.child_timeout)
                    outcomes.append(Outcome(row, name, number, diagnostic, result))
                    kind = "diagnostic" if diagnostic else "round"
                    print(
                        f"{kind} {number} {row.name} {contender.label}: "
                        f"{summary(result, args.records)} ({time.monotonic() - started:.1f} s, "
                        f"{time.monotonic() - began:.0f} s in all)",
                        file=sys.stderr,
                    )
        librdkafka = cluster.librdkafka_version
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        **asdict(o.row),
                        "contender": o.contender,
                        "round": o.round,
                        "diagnostic": o.diagnostic,
                        **o.result,
                    }
                    for o in outcomes
                ],
                indent=1,
            )
        )
    sys.stdout.write(report(args, argv, rows, outcomes, librdkafka))
    return 0


def summary(result: dict[str, Any], records: int) -> str:
    if result.get("status") != "ok":
        return error_summary(result)
    text = (
        f"{records / result['seconds']:,.0f} records/s end to end, "
        f"{records / result['produce_seconds']:,.0f} produce phase, "
        f"{result['cpu_seconds'] / records * 1e6:.2f} µs CPU/record"
    )
    locks = result.get("locks")
    if locks:
        text += f", lock wait {locks['wait_ns'] / records / 1000:.3f} µs/record"
    return text


# -- the report ------------------------------------------------------------------------


class Table:
    """The outcomes of the timed rounds, by row and contender."""

    def __init__(self, outcomes: list[Outcome], records: int) -> None:
        self.records = records
        self.timed: dict[tuple[Row, str], list[dict[str, Any]]] = {}
        self.probed: dict[tuple[Row, str], list[dict[str, Any]]] = {}
        #: Runs that gave no figures, by (row, contender, diagnostic).
        self.failed: dict[tuple[Row, str, bool], list[dict[str, Any]]] = {}
        for o in outcomes:
            target = self.probed if o.diagnostic else self.timed
            if o.ok:
                target.setdefault((o.row, o.contender), []).append(o.result)
            else:
                self.failed.setdefault((o.row, o.contender, o.diagnostic), []).append(o.result)

    def value(self, row: Row, name: str, key: str, probed: bool = False) -> float | None:
        results = (self.probed if probed else self.timed).get((row, name), [])
        return median([r.get(key) for r in results])

    def rate(self, row: Row, name: str, key: str = "seconds") -> float | None:
        seconds = self.value(row, name, key)
        return self.records / seconds if seconds else None

    def per_record(self, row: Row, name: str, key: str, scale: float = 1.0) -> float | None:
        value = self.value(row, name, key)
        return None if value is None else value / self.records * scale

    def probe(self, row: Row, name: str, path: Sequence[str]) -> float | None:
        values = []
        for result in self.probed.get((row, name), []):
            value: Any = result
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            values.append(value if isinstance(value, int | float) else None)
        return median(values)


def report(
    args: argparse.Namespace,
    argv: Sequence[str] | None,
    rows: list[Row],
    outcomes: list[Outcome],
    librdkafka: str,
) -> str:
    table = Table(outcomes, args.records)
    chosen = [CONTENDERS[name] for name in args.contenders]
    labels = [c.label for c in chosen]
    intervals = {o.result.get("switch_interval") for o in outcomes if o.ok}
    interval = ", ".join(f"{i * 1000:g} ms" for i in sorted(x for x in intervals if x))
    set_by = "set by --switch-interval" if args.switch_interval else "Python's default"
    out = [
        f"## Producer threads: {args.records:,} records of {VALUE_SIZE} B JSON, {args.codec}, "
        f"acks={args.acks}, linger {args.linger_ms:g} ms",
        "",
        f"Command: `{command_line(MODULE, argv)}`",
        "",
        machine_line(librdkafka)
        + f" GIL switch interval in every producing process: {interval or '-'} ({set_by}). "
        f"Median of {args.rounds} round{'s' if args.rounds > 1 else ''}; each round runs every "
        "row and every contender once, each in a fresh process. Topic of "
        f"{args.partitions} partitions with {args.keys} keys"
        + (
            f"; the last row: {args.wide_partitions} partitions with {args.wide_keys:,} keys"
            if args.wide_partitions
            else ""
        )
        + ". Thread j of k produces records j, j+k, j+2k...; the produce API through "
        "plain threads, logging through a ThreadPoolExecutor's workers.",
        "",
    ]

    def rate_table(title: str, key: str, explain: str) -> None:
        out.extend([f"### {title}", "", explain, ""])
        out.append("| producer threads | partitions / keys | " + " | ".join(labels) + " |")
        out.append("|---:|---|" + "---:|" * len(labels))
        for row in rows:
            cells = []
            for contender in chosen:
                failed = table.failed.get((row, contender.name, False))
                rate = table.rate(row, contender.name, key)
                if rate is None:
                    cells.append("failed" if failed else "-")
                    continue
                base = table.rate(row, BASELINES[contender.api], key)
                ratio = (
                    f" ({rate / base:.2f}x)"
                    if base and contender.name != BASELINES[contender.api]
                    else ""
                )
                cells.append(f"{fmt(rate)}{ratio}{' *' if failed else ''}")
            out.append(
                f"| {row.threads} | {row.partitions} / {row.keys:,} | " + " | ".join(cells) + " |"
            )
        out.append("")

    baselines = " and ".join(
        f"{CONTENDERS[b].label}" for b in BASELINES.values() if b in args.contenders
    )
    rate_table(
        "Records/s end to end",
        "seconds",
        "From the first produce() (or logging call) to flush() returning with every record "
        f"acknowledged. In parentheses: the ratio to {baselines or 'the peer'} of the same API.",
    )
    rate_table(
        "Records/s of the produce phase",
        "produce_seconds",
        "From the first call until the last producing thread returned from its last call "
        "(records still buffered are not waited for).",
    )

    wake_keys = sorted(
        {key for results in table.timed.values() for r in results for key in r if "wake" in key}
    )
    out.extend(
        [
            "### Where the time goes",
            "",
            "Per record, median of the rounds. CPU: the whole process (every thread), and the "
            "producing threads alone. Context switches: every thread of the process "
            "(voluntary and involuntary), the trace of threads handing the GIL (or a lock) "
            "to one another. Requests and batches: from kafka_sink's `Sink.metrics()` "
            "(confluent-kafka does not count them without its statistics).",
            "",
            "| threads | partitions | contender | CPU µs/record | producing threads' CPU "
            "µs/record | context switches /1k records | records/request | records/batch |"
            + (" wake-ups /1k records, from metrics() |" if wake_keys else ""),
            "|---:|---:|---|---:|---:|---:|---:|---:|" + ("---:|" if wake_keys else ""),
        ]
    )
    for row in rows:
        for contender in chosen:
            name = contender.name
            if (row, name) not in table.timed:
                continue
            requests = table.value(row, name, "requests")
            batches = table.value(row, name, "batches")
            out.append(
                f"| {row.threads} | {row.partitions} | {contender.label} "
                f"| {fmt(table.per_record(row, name, 'cpu_seconds', 1e6), 2)} "
                f"| {fmt(table.per_record(row, name, 'thread_cpu_seconds', 1e6), 2)} "
                f"| {fmt(table.per_record(row, name, 'context_switches', 1000), 1)} "
                f"| {fmt(args.records / requests if requests else None, 0)} "
                f"| {fmt(args.records / batches if batches else None, 0)} |"
                + (
                    f" {fmt(_div(table.value(row, name, wake_keys[0]), args.records, 1000), 1)} |"
                    if wake_keys
                    else ""
                )
            )
    out.append("")

    probed = [c for c in chosen if c.client == "kafka_sink"]
    if args.diagnostic_rounds and probed and table.probed:
        out.extend(
            [
                "### Lock waits and sender wake-ups (diagnostic run)",
                "",
                "Every `threading.Lock` kafka_sink creates is wrapped: an acquire first tries "
                "without blocking, and one that must wait is timed. Lock wait: the time the "
                "producing threads spent in such waits (it includes getting the GIL back "
                "after the lock is released), per record and as a share of the producing "
                "threads' time in the produce phase; the sender thread's own waits apart. "
                "Wake-ups: calls of the network client's `wakeup()` (those that wrote to its "
                "pipe) and turns of the sender loop. The wrappers slow the run: its rate is "
                f"shown for that reason only. Median of {args.diagnostic_rounds} probed "
                f"run{'s' if args.diagnostic_rounds > 1 else ''}.",
                "",
                "| threads | partitions | contender | records/s (probed) | lock acquires "
                "/record | contended % | lock wait µs/record | share of produce phase "
                "| sender's wait µs/record | wake-up calls (signals) /1k records "
                "| sender loops /1k records |",
                "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
        )
        for row in rows:
            for contender in probed:
                name = contender.name
                results = table.probed.get((row, name))
                if not results:
                    continue
                seconds = median([r.get("seconds") for r in results])
                phase = median([r.get("produce_seconds") for r in results])
                acquires = table.probe(row, name, ("locks", "acquires"))
                contended = table.probe(row, name, ("locks", "contended"))
                wait = table.probe(row, name, ("locks", "wait_ns"))
                sender = table.probe(row, name, ("locks", "sender_wait_ns"))
                producer_wait = None if wait is None or sender is None else wait - sender
                share = (
                    producer_wait / 1e9 / (phase * row.threads) * 100
                    if producer_wait is not None and phase
                    else None
                )
                calls = table.probe(row, name, ("wakeups", "wakeup_calls"))
                signals = table.probe(row, name, ("wakeups", "wakeup_signals"))
                loops = table.probe(row, name, ("wakeups", "sender_loops"))
                n = args.records
                locks_seen = table.probe(row, name, ("locks", "locks"))
                no_locks = not locks_seen
                out.append(
                    f"| {row.threads} | {row.partitions} | {contender.label} "
                    f"| {fmt(n / seconds if seconds else None)} "
                    f"| {'no Lock probed' if no_locks else fmt(_div(acquires, n), 2)} "
                    f"| {fmt(_div(contended, acquires, 100), 2)} "
                    f"| {fmt(_div(producer_wait, n * 1000), 3)} "
                    f"| {fmt(share, 1)}{'%' if share is not None else ''} "
                    f"| {fmt(_div(sender, n * 1000), 3)} "
                    f"| {fmt(_div(calls, n, 1000), 1)} ({fmt(_div(signals, n, 1000), 1)}) "
                    f"| {fmt(_div(loops, n, 1000), 1)} |"
                )
        out.append("")

    if args.wide_partitions:
        narrow = next((r for r in rows if r.threads == 1 and r.topic == NARROW_TOPIC), None)
        wide = rows[-1]
        if narrow is not None:
            out.extend(
                [
                    f"### {wide.partitions} partitions and {wide.keys:,} keys against "
                    f"{narrow.partitions} and {narrow.keys} (1 thread)",
                    "",
                    "| contender | end to end records/s, "
                    f"{narrow.partitions} p | {wide.partitions} p | ratio | produce phase "
                    f"records/s, {narrow.partitions} p | {wide.partitions} p | ratio "
                    f"| records/request, {narrow.partitions} p | {wide.partitions} p |",
                    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
                ]
            )
            for contender in chosen:
                name = contender.name
                cells = []
                for key in ("seconds", "produce_seconds"):
                    a, b = table.rate(narrow, name, key), table.rate(wide, name, key)
                    cells += [fmt(a), fmt(b), f"{b / a:.2f}x" if a and b else "-"]
                for row in (narrow, wide):
                    requests = table.value(row, name, "requests")
                    cells.append(fmt(args.records / requests if requests else None))
                out.append(f"| {contender.label} | " + " | ".join(cells) + " |")
            out.append("")

    notes = path_notes(
        [
            (f"kafka_sink rows ({path_of(CONTENDERS[o.contender].env)})", o.result)
            for o in outcomes
            if o.ok and CONTENDERS[o.contender].client == "kafka_sink"
        ]
    )
    for (row, name, diagnostic), failures in table.failed.items():
        runs = len(failures) + len(
            (table.probed if diagnostic else table.timed).get((row, name), [])
        )
        notes.append(
            f"{CONTENDERS[name].label}, {row.name}{', diagnostic' if diagnostic else ''}: "
            f"{len(failures)} of {runs} runs gave no figures (first: "
            f"{first_line(failures[0])}); a figure marked * is the median of the others"
        )
    for (row, name), results in table.timed.items():
        for r in results:
            lost = r.get("failed", 0) or r.get("unacknowledged", 0)
            delivered = r.get("delivered")
            if lost or (delivered is not None and delivered != args.records):
                notes.append(
                    f"{CONTENDERS[name].label}, {row.name}: {r.get('failed', 0)} failed, "
                    f"{r.get('unacknowledged', 0)} unacknowledged, {delivered} delivered"
                )
    sites: dict[str, float] = {}
    for results in table.probed.values():
        for r in results:
            for site, counts in (r.get("locks") or {}).get("sites", {}).items():
                sites[site] = sites.get(site, 0.0) + counts.get("wait_ns", 0)
    if sites:
        total = sum(sites.values()) or 1.0
        ranked = sorted(sites.items(), key=lambda item: -item[1])[:3]
        notes.append(
            "Probed locks by where they were created, share of all lock wait: "
            + ", ".join(f"`{site}` {wait / total * 100:.0f}%" for site, wait in ranked)
        )
    if notes:
        out += ["Notes:", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(out)


def _div(a: float | None, b: float | None, scale: float = 1.0) -> float | None:
    if a is None or not b:
        return None
    return a / b * scale


if __name__ == "__main__":
    raise SystemExit(main())
