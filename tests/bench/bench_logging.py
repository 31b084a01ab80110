"""Logging like for like: kafka_sink's handler and processor against the same on confluent-kafka.

Run from the repository root (see ``tests/bench/README.md``)::

    python -m tests.bench.bench_logging                 # everything, 3 rounds (~3 min, 2 cores)
    python -m tests.bench.bench_logging --quick         # 1 round, 20,000 calls
    python -m tests.bench.bench_logging --scenarios text,structlog --rounds 5 --json raw.json

It starts librdkafka's mock cluster (3 brokers, a topic of 6 partitions,
partition leaders spread evenly) in its own process and runs each
contender in a fresh child (``python -m tests.bench.bench_logging --child
SPEC``), kafka_sink's once with ``KAFKA_SINK_PURE`` unset (the compiled
path, where there is one) and once with ``KAFKA_SINK_PURE=1`` (pure Python).
Every producer: lz4, acks=1, linger 5 ms, batch 128 KiB, a 32 MiB buffer
that waits for room rather than drops, no key.

Scenarios (``--scenarios``), each call ``log.info("GET /api/v2/items 200 in
%d ms", i)``, one ``%``-format:

``text``       ``KafkaHandler(serializer="text", standard_headers=False)``
               against a ``logging.Handler`` that produces to confluent-kafka
               (:mod:`tests.bench.confluent_logging`), both with the same
               ``logging.Formatter`` (kafka_sink's default text format).
``json``       the default ``KafkaHandler`` (JSON; its standard headers
               ``level``, ``logger``, ``host`` too, and a row without them)
               against the confluent-kafka handler with python-json-logger's
               ``JsonFormatter`` writing the same fields.
``structlog``  ``add_log_level``, ``TimeStamper(fmt="iso")``, then
               ``KafkaProcessor(standard_headers=False, drop=True)``, against
               the same two processors, ``JSONRenderer()`` and a logger that
               produces the rendered line to confluent-kafka.
``produce``    ``Sink.produce()`` against ``Producer.produce()`` + ``poll(0)``,
               130-byte JSON values and 64 keys (the caller's cost only).

Phases (``--phases``):

``throughput``  N calls (``--records``) on one thread as fast as they go;
                the clock runs from the first call until ``flush()`` returns
                with every record acknowledged, and the calls alone.
``cost``        each call's own time on the caller's thread, paced at a
                steady rate (``--cost-rate``, every millisecond) that every
                contender sustains, while the records are delivered in the
                background: p50, p99, p99.9, max (minus the clock's own cost).

Each round runs every contender of every scenario once per phase, in the same
order; the tables show the median of the rounds. Markdown goes to stdout,
progress to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench.confluent_logging import (
    ConfluentHandler,
    ConfluentLoggerFactory,
    produce_retrying,
)
from tests.bench.harness import (
    BROKERS,
    KAFKA_SINK_PATHS,
    PURE_ENV,
    Clock,
    child_main,
    command_line,
    confluent_config,
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
from tests.bench.worker import summarize_ns, timer_overhead_ns

MODULE = "tests.bench.bench_logging"
TOPIC = "bench-logging"
PARTITIONS = 6
LOGGER = "app.http"
MESSAGE = "GET /api/v2/items 200 in %d ms"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # kafka_sink's default
#: python-json-logger fields that make the same JSON object as kafka_sink's default.
JSON_FIELDS = (
    "%(levelname)s %(name)s %(message)s %(module)s %(funcName)s %(lineno)d "
    "%(threadName)s %(process)d"
)
JSON_RENAMES = {
    "levelname": "level",
    "name": "logger",
    "funcName": "function",
    "lineno": "line",
    "threadName": "thread_name",
}
SCENARIOS = ("text", "json", "structlog", "produce")
PHASES = ("throughput", "cost")
TITLES = {
    "text": '(a) Text: `KafkaHandler(serializer="text", standard_headers=False)` against a '
    "confluent-kafka handler, the same `logging.Formatter`",
    "json": "(b) JSON: the default `KafkaHandler` against a confluent-kafka handler with "
    "python-json-logger's `JsonFormatter`, the same fields",
    "structlog": "(c) structlog: `add_log_level`, ISO `TimeStamper`, then `KafkaProcessor` "
    "(event dropped) against `JSONRenderer` and a logger producing to confluent-kafka",
    "produce": "Sink.produce() against confluent-kafka's Producer.produce()",
}


@dataclass(frozen=True)
class Contender:
    name: str  # on the command line and in the raw results
    scenario: str
    label: str
    kafka_sink: bool
    options: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str | None] = field(default_factory=dict)
    peer: bool = False  # the row the others are compared with


def _contenders() -> dict[str, Contender]:
    found: list[Contender] = []

    def ours(scenario: str, name: str, label: str, **options: Any) -> None:
        for path, value in KAFKA_SINK_PATHS:
            suffix = "" if path == "compiled" else f"-{path}"
            found.append(
                Contender(
                    f"{name}{suffix}",
                    scenario,
                    f"{label} ({path})",
                    True,
                    options,
                    {PURE_ENV: value},
                )
            )

    ours("text", "KafkaHandler-text", "KafkaHandler text")
    found.append(
        Contender("confluent-text", "text", "confluent-kafka handler + Formatter", False, peer=True)
    )
    ours("json", "KafkaHandler-json", "KafkaHandler JSON, default")
    ours(
        "json",
        "KafkaHandler-json-noheaders",
        "KafkaHandler JSON, standard_headers=False",
        standard_headers=False,
    )
    found.append(
        Contender(
            "confluent-jsonlogger",
            "json",
            "confluent-kafka handler + JsonFormatter",
            False,
            peer=True,
        )
    )
    ours("structlog", "KafkaProcessor", "KafkaProcessor")
    found.append(
        Contender(
            "confluent-structlog",
            "structlog",
            "JSONRenderer + confluent-kafka logger",
            False,
            peer=True,
        )
    )
    ours("produce", "Sink.produce", "Sink.produce")
    found.append(
        Contender("confluent-produce", "produce", "Producer.produce + poll(0)", False, peer=True)
    )
    return {c.name: c for c in found}


CONTENDERS = _contenders()


# -- the child -------------------------------------------------------------------------


@dataclass
class Built:
    """A contender ready to measure: a full-speed loop, a timed loop, flush, counters."""

    run: Callable[[int], None]  # N calls as fast as they go
    timed: Callable[[int, int, Callable[[int], None]], None]  # calls i0..i1-1, each timed
    flush: Callable[[float], int]
    counters: Callable[[], dict[str, int]]
    warm_up: Callable[[], None]


def json_formatter() -> logging.Formatter:
    try:
        from pythonjsonlogger.json import JsonFormatter
    except ImportError:  # python-json-logger before 3.1
        from pythonjsonlogger.jsonlogger import (  # type: ignore[attr-defined, unused-ignore]  # private in 3.1+, unused when not installed
            JsonFormatter,
        )
    formatter: logging.Formatter = JsonFormatter(
        JSON_FIELDS, rename_fields=JSON_RENAMES, timestamp=True
    )
    return formatter


def _log_loops(info: Callable[..., Any]) -> tuple[Callable[[int], None], Any]:
    clock = time.perf_counter_ns

    def run(records: int) -> None:
        for i in range(records):
            info(MESSAGE, i)

    def timed(i0: int, i1: int, sample: Callable[[int], None]) -> None:
        for i in range(i0, i1):
            t0 = clock()
            info(MESSAGE, i)
            sample(clock() - t0)

    return run, timed


def _stdlib_logger(handler: logging.Handler) -> Callable[..., Any]:
    logger = logging.getLogger(LOGGER)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger.info


def _structlog_logger(processors: list[Any], factory: Any) -> Callable[..., Any]:
    import structlog

    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    info: Callable[..., Any] = structlog.get_logger(LOGGER).info
    return info


def build(contender: Contender, spec: dict[str, Any]) -> Built:
    if contender.kafka_sink:
        return _build_kafka_sink(contender, spec)
    return _build_confluent(contender, spec)


def _build_kafka_sink(contender: Contender, spec: dict[str, Any]) -> Built:
    import kafka_sink

    options = {**sink_options(spec), **contender.options}
    servers = spec["servers"]
    shipper: Any = None
    if contender.scenario == "text":
        shipper = kafka_sink.KafkaHandler(
            TOPIC, servers, serializer="text", standard_headers=False, **options
        )
        shipper.setFormatter(logging.Formatter(TEXT_FORMAT))
        info = _stdlib_logger(shipper)
    elif contender.scenario == "json":
        shipper = kafka_sink.KafkaHandler(TOPIC, servers, **options)
        info = _stdlib_logger(shipper)
    elif contender.scenario == "structlog":
        import structlog

        shipper = kafka_sink.KafkaProcessor(
            TOPIC, servers, standard_headers=False, drop=True, **options
        )
        processors = [
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            shipper,
        ]
        info = _structlog_logger(processors, structlog.ReturnLoggerFactory())
    else:
        sink = kafka_sink.Sink(servers, **options)
        run, timed = _produce_loops(sink.produce, None)
        return Built(run, timed, sink.flush, _sink_counters(sink, None), _warm_sink(sink, None))
    sink = shipper.sink
    run, timed = _log_loops(info)
    return Built(run, timed, sink.flush, _sink_counters(sink, shipper), _warm_sink(sink, info))


def _warm_sink(sink: Any, info: Callable[..., Any] | None) -> Callable[[], None]:
    def warm_up() -> None:
        for partition in range(PARTITIONS):
            sink.produce(TOPIC, b"warm-up", None, partition)
        if info is not None:
            info(MESSAGE, -1)
        if sink.flush(30.0):
            raise RuntimeError("kafka_sink could not deliver its warm-up records")

    return warm_up


def _sink_counters(sink: Any, shipper: Any) -> Callable[[], dict[str, int]]:
    def counters() -> dict[str, int]:
        metrics = sink.metrics()
        out = {
            "delivered": metrics.get("records_sent", 0),
            "failed": metrics.get("records_failed_total", 0)
            + metrics.get("records_dropped_total", 0),
            "bytes_uncompressed": metrics.get("bytes_uncompressed", 0),
            "requests": metrics.get("requests", 0),
        }
        if shipper is not None:
            out["failed"] += shipper.metrics().get("records_failed_total", 0)
        return out

    return counters


def _produce_loops(produce: Callable[..., Any], poll: Callable[[float], Any] | None) -> Any:
    values = [text.encode() for text in json_values(130)]
    keys = [key.encode() for key in host_keys(64)]
    mask = len(values) - 1
    clock = time.perf_counter_ns
    topic = TOPIC

    if poll is None:

        def run(records: int) -> None:
            for i in range(records):
                produce(topic, values[i & mask], keys[i & 63])

        def timed(i0: int, i1: int, sample: Callable[[int], None]) -> None:
            for i in range(i0, i1):
                value, key = values[i & mask], keys[i & 63]
                t0 = clock()
                produce(topic, value, key)
                sample(clock() - t0)

        return run, timed

    def run_polling(records: int) -> None:
        for i in range(records):
            produce(topic, values[i & mask], keys[i & 63])
            poll(0)

    def timed_polling(i0: int, i1: int, sample: Callable[[int], None]) -> None:
        for i in range(i0, i1):
            value, key = values[i & mask], keys[i & 63]
            t0 = clock()
            produce(topic, value, key)
            poll(0)
            sample(clock() - t0)

    return run_polling, timed_polling


def _build_confluent(contender: Contender, spec: dict[str, Any]) -> Built:
    from confluent_kafka import Producer

    failures = [0]

    def on_delivery(error: Any, _message: Any) -> None:
        if error is not None:
            failures[0] += 1

    producer = Producer(confluent_config(spec, on_delivery))
    info: Callable[..., Any] | None = None
    if contender.scenario in ("text", "json"):
        handler = ConfluentHandler(producer, TOPIC)
        handler.setFormatter(
            logging.Formatter(TEXT_FORMAT) if contender.scenario == "text" else json_formatter()
        )
        info = _stdlib_logger(handler)
        run, timed = _log_loops(info)
    elif contender.scenario == "structlog":
        import structlog

        processors = [
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ]
        info = _structlog_logger(processors, ConfluentLoggerFactory(producer, TOPIC))
        run, timed = _log_loops(info)
    else:
        produce = producer.produce

        def produce_or_wait(topic: str, value: bytes, key: bytes) -> None:
            try:
                produce(topic, value, key)
            except BufferError:
                produce_retrying(producer, topic, value, key)

        run, timed = _produce_loops(produce_or_wait, producer.poll)

    def warm_up() -> None:
        for partition in range(PARTITIONS):
            producer.produce(TOPIC, b"warm-up", None, partition)
        if info is not None:
            info(MESSAGE, -1)
        if producer.flush(30.0) or failures[0]:
            raise RuntimeError("confluent-kafka could not deliver its warm-up records")

    def flush(timeout: float) -> int:
        remaining: int = producer.flush(timeout)
        return remaining

    return Built(run, timed, flush, lambda: {"failed": failures[0]}, warm_up)


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    contender = CONTENDERS[spec["contender"]]
    built = build(contender, spec)
    built.warm_up()
    before = built.counters()
    phase = _throughput if spec["phase"] == "throughput" else _cost
    result = phase(built, spec)
    after = built.counters()
    result.update({key: after[key] - before.get(key, 0) for key in after})
    return result


def _throughput(built: Built, spec: dict[str, Any]) -> dict[str, Any]:
    records: int = spec["records"]
    clock = Clock()
    clock.start()
    thread0 = time.thread_time()
    start = time.perf_counter()
    built.run(records)
    called = time.perf_counter()
    thread_cpu = time.thread_time() - thread0
    remaining = built.flush(spec["flush_timeout"])
    end = time.perf_counter()
    timing = clock.stop()
    return {
        "records": records,
        "seconds": end - start,
        "call_seconds": called - start,
        "cpu_seconds": timing["cpu_seconds"],
        "caller_cpu_seconds": thread_cpu,
        "context_switches": timing["context_switches"],
        "unacknowledged": remaining,
    }


def _cost(built: Built, spec: dict[str, Any]) -> dict[str, Any]:
    records: int = spec["records"]
    per_tick = max(1, round(spec["rate"] / 1000))
    overhead = timer_overhead_ns()
    samples = array("q")
    sample = samples.append
    timed = built.timed
    i = 0
    start = time.perf_counter()
    next_tick = start
    while i < records:
        stop = min(records, i + per_tick)
        timed(i, stop, sample)
        i = stop
        next_tick += 0.001
        delay = next_tick - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.perf_counter() - start
    remaining = built.flush(spec["flush_timeout"])
    return {
        "records": records,
        **summarize_ns(samples, overhead),
        "timer_overhead_ns": overhead,
        "achieved_rate": records / elapsed,
        "unacknowledged": remaining,
    }


# -- the parent ------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )

    def names(allowed: Sequence[str]) -> Callable[[str], list[str]]:
        def parse(text: str) -> list[str]:
            chosen = [name.strip() for name in text.split(",") if name.strip()]
            unknown = [name for name in chosen if name not in allowed]
            if unknown:
                raise argparse.ArgumentTypeError(
                    f"unknown {', '.join(unknown)}; choose among {', '.join(allowed)}"
                )
            return chosen

        return parse

    parser.add_argument("--scenarios", type=names(SCENARIOS), default=",".join(SCENARIOS))
    parser.add_argument("--phases", type=names(PHASES), default=",".join(PHASES))
    parser.add_argument(
        "--contenders",
        type=names(list(CONTENDERS)),
        help="only these (default: every contender of the chosen scenarios)",
    )
    parser.add_argument("--records", type=int, help="throughput calls (default: 100,000)")
    parser.add_argument("--rounds", type=int, help="the tables show their median (default: 3)")
    parser.add_argument("--cost-records", type=int, help="paced calls (default: 20,000)")
    parser.add_argument("--cost-rate", type=int, default=10_000, help="paced calls per second")
    parser.add_argument("--codec", default="lz4")
    parser.add_argument("--acks", type=int, default=1)
    parser.add_argument("--linger-ms", type=float, default=5.0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 round, 20,000 calls, 5,000 paced calls (options given still count)",
    )
    parser.add_argument("--child-timeout", type=float, default=300.0, help="seconds")
    parser.add_argument("--json", type=Path, help="also write every raw result here")
    parser.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    defaults = {"rounds": 3, "records": 100_000, "cost_records": 20_000}
    if args.quick:
        defaults = {"rounds": 1, "records": 20_000, "cost_records": 5_000}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    return args


def chosen_contenders(args: argparse.Namespace) -> list[Contender]:
    return [
        c
        for c in CONTENDERS.values()
        if c.scenario in args.scenarios and (args.contenders is None or c.name in args.contenders)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        child_main(measure, args.child)
    from kafka_sink.testing import MockCluster

    contenders = chosen_contenders(args)
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    began = time.monotonic()
    with MockCluster(BROKERS, topics={TOPIC: PARTITIONS}) as cluster:
        for partition in range(PARTITIONS):
            cluster.set_partition_leader(TOPIC, partition, partition % BROKERS + 1)
        for number in range(1, args.rounds + 1):
            for phase in args.phases:
                for contender in contenders:
                    if phase == "throughput" and contender.scenario == "produce":
                        continue  # bench_threads and run.py measure the produce API's rate
                    spec = {
                        "contender": contender.name,
                        "phase": phase,
                        "servers": cluster.bootstrap_servers,
                        "records": args.records if phase == "throughput" else args.cost_records,
                        "rate": args.cost_rate,
                        "codec": args.codec,
                        "acks": args.acks,
                        "linger_ms": args.linger_ms,
                        "flush_timeout": 120.0,
                    }
                    started = time.monotonic()
                    result = run_child(MODULE, spec, contender.env, args.child_timeout)
                    result["round"] = number
                    results.setdefault((contender.name, phase), []).append(result)
                    print(
                        f"round {number} {phase} {contender.label}: {summary(result)} "
                        f"({time.monotonic() - started:.1f} s, "
                        f"{time.monotonic() - began:.0f} s in all)",
                        file=sys.stderr,
                    )
        librdkafka = cluster.librdkafka_version
    if args.json:
        raw = [
            {"contender": name, "phase": phase, **r}
            for (name, phase), rounds in results.items()
            for r in rounds
        ]
        args.json.write_text(json.dumps(raw, indent=1))
    sys.stdout.write(report(args, argv, contenders, results, librdkafka))
    return 0


def summary(result: dict[str, Any]) -> str:
    if result.get("status") != "ok":
        return error_summary(result)
    if "seconds" in result:
        n = result["records"]
        return (
            f"{n / result['seconds']:,.0f} calls/s end to end, "
            f"{n / result['call_seconds']:,.0f} calls alone, "
            f"{result['caller_cpu_seconds'] / n * 1e6:.2f} µs caller CPU/call"
        )
    return (
        f"p50 {result['p50_us']:.2f} µs, p99 {result['p99_us']:.2f} µs, "
        f"max {result['max_us']:.0f} µs at {result['achieved_rate']:,.0f}/s"
    )


# -- the report ------------------------------------------------------------------------


def samples() -> list[tuple[str, str]]:
    """One record as each contender writes it (made here, in the parent, the same way)."""
    out: list[tuple[str, str]] = []
    record = logging.LogRecord(LOGGER, logging.INFO, "/srv/app/http.py", 42, MESSAGE, (17,), None)
    record.funcName = "handle"
    record.created = 1_735_689_600.123456
    record.msecs = 123.0
    with contextlib.suppress(ImportError):
        from kafka_sink.hooks.builtin.serializers import JsonEventSerializer, JsonLogSerializer

        formatter = logging.Formatter(TEXT_FORMAT)
        out.append(("(a) both", formatter.format(record)))
        out.append(("(b) KafkaHandler", JsonLogSerializer()(record).decode()))
        with contextlib.suppress(ImportError):
            out.append(("(b) JsonFormatter", json_formatter().format(record)))
        event = {"event": MESSAGE % 17, "level": "info", "timestamp": "2025-01-01T00:00:00.123456Z"}
        out.append(("(c) KafkaProcessor", JsonEventSerializer()(event).decode()))
        out.append(("(c) JSONRenderer", json.dumps(event)))
    return out


def report(
    args: argparse.Namespace,
    argv: Sequence[str] | None,
    contenders: list[Contender],
    results: dict[tuple[str, str], list[dict[str, Any]]],
    librdkafka: str,
) -> str:
    def ok(name: str, phase: str) -> list[dict[str, Any]]:
        return [r for r in results.get((name, phase), []) if r.get("status") == "ok"]

    def mark(name: str, phase: str) -> str:
        """' *' when some rounds of this cell gave no figures."""
        return " *" if len(ok(name, phase)) < len(results.get((name, phase), [])) else ""

    def med(name: str, phase: str, key: str) -> float | None:
        return median([r.get(key) for r in ok(name, phase)])

    def per_call(name: str, key: str, scale: float = 1e6) -> float | None:
        value = med(name, "throughput", key)
        return None if value is None else value / args.records * scale

    def rate(name: str, key: str) -> float | None:
        seconds = med(name, "throughput", key)
        return args.records / seconds if seconds else None

    out = [
        f"## Logging like for like: {args.records:,} `log.info()` calls with one %-format",
        "",
        f"Command: `{command_line(MODULE, argv)}`",
        "",
        machine_line(librdkafka)
        + f" Topic of {PARTITIONS} partitions, no key; every producer {args.codec}, "
        f"acks={args.acks}, linger {args.linger_ms:g} ms, batch 128 KiB, a 32 MiB buffer. "
        f"Median of {args.rounds} round{'s' if args.rounds > 1 else ''}; each round runs "
        "every contender once per phase, each in a fresh process. The call: "
        f'`log.info("{MESSAGE}", i)` on one thread.',
        "",
    ]
    scenarios = [s for s in args.scenarios if any(c.scenario == s for c in contenders)]
    if "throughput" in args.phases:
        for scenario in scenarios:
            if scenario == "produce":
                continue
            rows = [c for c in contenders if c.scenario == scenario]
            peer = next((c for c in rows if c.peer), None)
            out += [
                f"### {TITLES[scenario]}",
                "",
                "| contender | calls/s end to end | vs peer | calls/s, calls alone | vs peer "
                "| CPU µs/call, process | CPU µs/call, caller's thread "
                "| context switches /1k calls |",
                "|---|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for c in rows:
                if not ok(c.name, "throughput"):
                    out.append(f"| {c.label} | failed | | | | | | |")
                    continue
                cells = []
                for key in ("seconds", "call_seconds"):
                    value = rate(c.name, key)
                    base = rate(peer.name, key) if peer is not None else None
                    cells += [
                        fmt(value) + mark(c.name, "throughput"),
                        f"{value / base:.2f}x" if value and base and c is not peer else "",
                    ]
                cells += [
                    fmt(per_call(c.name, "cpu_seconds"), 2),
                    fmt(per_call(c.name, "caller_cpu_seconds"), 2),
                    fmt(per_call(c.name, "context_switches", 1000), 1),
                ]
                out.append(f"| {c.label} | " + " | ".join(cells) + " |")
            out.append("")

    if "cost" in args.phases:
        out += [
            f"### (d) The caller's cost of one call, paced at {args.cost_rate:,} calls/s",
            "",
            f"{args.cost_records:,} calls, {args.cost_rate // 1000} every millisecond, each "
            "bracketed by two clock reads (their own cost subtracted), while the records are "
            "delivered in the background. The produce rows: 130-byte JSON values, 64 keys "
            "(`python -m tests.bench.run --scenarios produce-cost` has the same with the other "
            "peers).",
            "",
            "| scenario | contender | p50 µs | p99 µs | p99.9 µs | max µs | mean µs "
            "| calls/s reached |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for scenario in scenarios:
            for c in contenders:
                if c.scenario != scenario:
                    continue
                if not ok(c.name, "cost"):
                    out.append(f"| {scenario} | {c.label} | failed | | | | | |")
                    continue
                cells = [
                    fmt(med(c.name, "cost", key), 2)
                    for key in ("p50_us", "p99_us", "p999_us", "max_us", "mean_us")
                ]
                cells[0] += mark(c.name, "cost")
                cells.append(fmt(med(c.name, "cost", "achieved_rate")))
                out.append(f"| {scenario} | {c.label} | " + " | ".join(cells) + " |")
        out.append("")

    tags = {"text": "(a)", "json": "(b)", "structlog": "(c)"}
    wanted = tuple(tags[scenario] for scenario in scenarios if scenario in tags)
    shown = [(who, text) for who, text in samples() if who.startswith(wanted)]
    if shown:
        out += ["### One record as each writes it", "", "```"]
        out += [f"{who}: {text}" for who, text in shown]
        out += [
            "```",
            "",
            "The default `KafkaHandler` also writes the headers `level`, `logger` and `host`; "
            "the other kafka_sink rows and the peers write none. python-json-logger writes "
            "`timestamp` last and with `+00:00`, kafka_sink first and with `Z`. "
            "`KafkaProcessor` also merges structlog's context variables (none are bound here).",
            "",
        ]

    notes = path_notes(
        [
            (f"kafka_sink rows ({path_of(c.env)})", r)
            for c in contenders
            if c.kafka_sink
            for phase in PHASES
            for r in results.get((c.name, phase), [])
        ]
    )
    for c in contenders:
        for phase in PHASES:
            failures = [r for r in results.get((c.name, phase), []) if r.get("status") != "ok"]
            if failures:
                notes.append(
                    f"{c.label}, {phase}: {len(failures)} of "
                    f"{len(results.get((c.name, phase), []))} rounds gave no "
                    f"figures (first: {first_line(failures[0])}); a figure marked * is the "
                    "median of the others"
                )
            for r in ok(c.name, phase):
                n = r.get("records", 0)
                delivered = r.get("delivered")
                if (
                    r.get("failed")
                    or r.get("unacknowledged")
                    or (delivered is not None and delivered != n)
                ):
                    notes.append(
                        f"{c.label}, {phase}, round {r.get('round')}: {r.get('failed', 0)} "
                        f"failed, {r.get('unacknowledged', 0)} unacknowledged, "
                        f"{delivered} delivered of {n}"
                    )
    if notes:
        out += ["Notes:", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
