"""Peer benchmark: kafka_sink's ``Sink`` against confluent-kafka, aiokafka and kafka-python.

Run from the repository root (see ``tests/bench/README.md``)::

    python -m tests.bench.run                       # everything, 3 rounds
    python -m tests.bench.run --scenarios throughput --codecs lz4,none --records 100000
    python -m tests.bench.run --contenders confluent-kafka,aiokafka --rounds 5 --json out.json

It starts one local broker (librdkafka's mock cluster, 1 broker, a topic of 6
partitions), then runs every scenario round by round: in each round every
contender runs once, in a fresh child process (:mod:`tests.bench.worker`), in
the same order. Progress goes to stderr; a Markdown report goes to stdout.

Scenarios
---------
``throughput``    N records (150-byte JSON values, 64 keys) as fast as the
                  client takes them, per codec; the clock stops when every
                  record is acknowledged (flush returned). msgs/s and MB/s
                  (values plus keys), CPU time of the whole process per record.
``produce-cost``  the time spent inside each ``produce()`` call on the
                  caller's thread while the client delivers in the background,
                  at a steady rate every client sustains.
``rss-offline``   1M records with every broker down and a 32 MiB buffer: how
                  much the process grows (VmRSS), how many records the client
                  refused. The child connects first, then the parent sets the
                  brokers down.
``idle-cpu``      CPU used by a connected producer with nothing to send.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tests.bench.harness import child_env, command_line, path_notes
from tests.bench.peers import CONTENDERS, Settings
from tests.bench.worker import READY_LINE, RESULT_PREFIX, VALUE_SIZE, make_keys

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("throughput", "produce-cost", "rss-offline", "idle-cpu")
CODECS = ("none", "lz4", "zstd", "gzip")
TOPIC = "bench"
PARTITIONS = 6
BASELINE = "confluent-kafka"


@dataclass
class Outcome:
    """What one child reported (or why it did not)."""

    scenario: str
    codec: str
    contender: str
    round: int
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return str(self.result.get("status", "error"))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.run",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )

    def names(allowed: Sequence[str]) -> Any:
        def parse(text: str) -> list[str]:
            chosen = [name.strip() for name in text.split(",") if name.strip()]
            unknown = [name for name in chosen if name not in allowed]
            if unknown:
                raise argparse.ArgumentTypeError(
                    f"unknown {', '.join(unknown)}; choose among {', '.join(allowed)}"
                )
            return chosen

        return parse

    every = ",".join
    parser.add_argument("--scenarios", type=names(SCENARIOS), default=every(SCENARIOS))
    parser.add_argument("--contenders", type=names(list(CONTENDERS)), default=every(CONTENDERS))
    parser.add_argument("--codecs", type=names(CODECS), default=every(CODECS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--records", type=int, default=200_000, help="throughput records")
    parser.add_argument("--batch-size", type=int, default=131_072, help="bytes, every client")
    parser.add_argument("--linger-ms", type=int, default=5)
    parser.add_argument("--cost-records", type=int, default=30_000)
    parser.add_argument("--cost-rate", type=int, default=10_000, help="records per second")
    parser.add_argument("--cost-codec", choices=CODECS, default="lz4")
    parser.add_argument("--rss-records", type=int, default=1_000_000)
    parser.add_argument(
        "--rss-contenders",
        type=names(list(CONTENDERS)),
        default="kafka_sink,kafka_sink-pure,confluent-kafka",
        help="kafka-python may be added (no buffer bound: it grows with every record)",
    )
    parser.add_argument("--rss-buffer-mib", type=int, default=32)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--child-timeout", type=float, default=900.0, help="seconds")
    parser.add_argument("--json", type=Path, help="also write every round's raw result here")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    return args


# -- children ------------------------------------------------------------------------


def run_child(spec: dict[str, Any], timeout: float, cluster: Any) -> dict[str, Any]:
    """Run one worker; answer its BENCH-READY by setting every broker down.

    The child's environment is this one with the contender's own variables
    (``KAFKA_SINK_PURE`` for kafka_sink's two paths).
    """
    env = child_env(CONTENDERS[spec["contender"]].env)
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.worker", json.dumps(spec)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            encoding="utf-8",
        )
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True)
        reader.start()
        brokers_down = False
        result: dict[str, Any] | None = None
        deadline = time.monotonic() + timeout
        try:
            while result is None:
                try:
                    line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    result = {"status": "error", "error": f"no result within {timeout:.0f} s"}
                    break
                if line is None:
                    result = {"status": "error", "error": "the worker exited without a result"}
                elif line.strip() == READY_LINE:
                    cluster.broker_down(-1)
                    brokers_down = True
                    assert process.stdin is not None
                    process.stdin.write("go\n")
                    process.stdin.flush()
                elif line.startswith(RESULT_PREFIX):
                    result = json.loads(line[len(RESULT_PREFIX) :])
        finally:
            with contextlib.suppress(OSError):
                if process.stdin is not None:
                    process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if brokers_down:
                cluster.broker_up(-1)
        if result.get("status") == "error":
            stderr.seek(0)
            tail = stderr.read().strip().splitlines()[-15:]
            if tail:
                result["stderr"] = "\n".join(tail)
        return result


def _pump(stream: TextIO | None, lines: queue.Queue[str | None]) -> None:
    assert stream is not None
    for line in stream:
        lines.put(line)
    lines.put(None)


def spec_for(
    args: argparse.Namespace, scenario: str, codec: str, contender: str, servers: str
) -> dict[str, Any]:
    settings = Settings(
        bootstrap_servers=servers,
        topic=TOPIC,
        codec=codec,
        linger_ms=args.linger_ms,
        batch_size=args.batch_size,
        buffer_memory=args.rss_buffer_mib * 1024 * 1024,
    )
    spec: dict[str, Any] = {"scenario": scenario, "contender": contender, "flush_timeout": 300.0}
    if scenario == "throughput":
        spec["records"] = args.records
    elif scenario == "produce-cost":
        spec.update(records=args.cost_records, rate=args.cost_rate)
    elif scenario == "rss-offline":
        spec["records"] = args.rss_records
        # The buffer is meant to overflow: refuse (or drop), never block.
        settings = Settings(**{**asdict(settings), "block_when_full": False, "keep_handles": False})
    else:
        spec["seconds"] = args.idle_seconds
    spec["settings"] = asdict(settings)
    return spec


def plan(args: argparse.Namespace) -> list[tuple[str, str, list[str]]]:
    """(scenario, codec, contenders) in the order they run."""
    steps = []
    for scenario in args.scenarios:
        if scenario == "throughput":
            steps += [(scenario, codec, list(args.contenders)) for codec in args.codecs]
        elif scenario == "produce-cost":
            steps.append((scenario, args.cost_codec, list(args.contenders)))
        elif scenario == "rss-offline":
            chosen = [c for c in args.contenders if c in args.rss_contenders]
            steps.append((scenario, args.cost_codec, chosen))
        else:
            steps.append((scenario, args.cost_codec, list(args.contenders)))
    return steps


# -- the report ----------------------------------------------------------------------


def median_of(outcomes: list[Outcome], key: str) -> float | None:
    values = [o.result[key] for o in outcomes if o.status == "ok" and key in o.result]
    return statistics.median(values) if values else None


def not_ok(outcomes: list[Outcome]) -> str | None:
    """The reason to print instead of numbers, when no round succeeded."""
    if any(o.status == "ok" for o in outcomes):
        return None
    first = outcomes[0].result if outcomes else {}
    if first.get("status") == "skipped":
        return f"skipped: {first.get('reason')}"
    return f"error: {first.get('error', 'no result')}"


def label(name: str) -> str:
    """A contender's name in the tables."""
    return CONTENDERS[name].label or name


def delivery_notes(outcomes: list[Outcome]) -> list[str]:
    notes = []
    for o in outcomes:
        failed = o.result.get("failed", 0)
        pending = o.result.get("unacknowledged", 0)
        if o.status == "ok" and (failed or pending):
            notes.append(
                f"{label(o.contender)}, {o.scenario} {o.codec}, round {o.round}: "
                f"{failed} records failed, {pending} unacknowledged"
            )
    return notes


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def report(
    args: argparse.Namespace,
    outcomes: list[Outcome],
    versions: dict[str, str],
    librdkafka: str,
    argv: Sequence[str] | None = None,
) -> str:
    def rounds_of(scenario: str, codec: str, contender: str) -> list[Outcome]:
        return [
            o
            for o in outcomes
            if (o.scenario, o.codec, o.contender) == (scenario, codec, contender)
        ]

    key_bytes = statistics.mean(len(key) for key in make_keys())
    record_bytes = VALUE_SIZE + key_bytes
    out = [
        "## Peer benchmark",
        "",
        f"Command: `{command_line('tests.bench.run', argv)}`",
        "",
        f"One local broker: librdkafka {librdkafka} mock cluster, 1 broker, topic of "
        f"{PARTITIONS} partitions. {platform.python_implementation()} "
        f"{platform.python_version()} on {platform.system()} with {os.cpu_count()} CPUs. "
        f"Median of {args.rounds} rounds; in each round every client runs once, in its "
        f"own process, in this order: {', '.join(label(n) for n in args.contenders)}.",
        "",
        "| client | version |",
        "|---|---|",
    ]
    out += [f"| {label(name)} | {versions.get(name, '-')} |" for name in args.contenders]
    notes: list[str] = []

    if "throughput" in args.scenarios:
        out += [
            "",
            f"### Throughput: {args.records:,} records of {VALUE_SIZE} B JSON, 64 keys, "
            f"acks=1, linger {args.linger_ms} ms, batch {args.batch_size // 1024} KiB",
            "",
            "Until every record is acknowledged. MB/s counts values and keys "
            f"({record_bytes:.0f} B a record); CPU is the whole process (every thread).",
            "",
            f"| codec | client | msgs/s | MB/s | vs {BASELINE} | CPU µs/record | msgs/s, "
            "every round |",
            "|---|---|---:|---:|---:|---:|---|",
        ]
        for codec in args.codecs:
            base = rounds_of("throughput", codec, BASELINE)
            base_rate = _rate(base, args.records)
            for contender in args.contenders:
                rounds = rounds_of("throughput", codec, contender)
                notes += delivery_notes(rounds)
                reason = not_ok(rounds)
                if reason:
                    out.append(f"| {codec} | {label(contender)} | {reason} | | | | |")
                    continue
                rate = _rate(rounds, args.records)
                assert rate is not None
                cpu = median_of(rounds, "cpu_seconds")
                ratio = f"{rate / base_rate:.2f}x" if base_rate else "-"
                each = ", ".join(
                    f"{args.records / o.result['seconds']:,.0f}" for o in rounds if o.status == "ok"
                )
                out.append(
                    f"| {codec} | {label(contender)} | {fmt(rate)} "
                    f"| {fmt(rate * record_bytes / 1e6, 1)} "
                    f"| {ratio} | {fmt(None if cpu is None else cpu / args.records * 1e6, 2)} "
                    f"| {each} |"
                )

    if "produce-cost" in args.scenarios:
        codec = args.cost_codec
        out += [
            "",
            f"### Cost of produce() on the caller's thread: {args.cost_records:,} records "
            f"at {args.cost_rate:,}/s, {codec}",
            "",
            "Time inside each call while the client delivers in the background, "
            "minus the cost of reading the clock.",
            "",
            "| client | mean µs | p50 µs | p99 µs | p99.9 µs | max µs | records/s reached |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for contender in args.contenders:
            rounds = rounds_of("produce-cost", codec, contender)
            notes += delivery_notes(rounds)
            reason = not_ok(rounds)
            if reason:
                out.append(f"| {label(contender)} | {reason} | | | | | |")
                continue
            cells = [
                fmt(median_of(rounds, key), 2) for key in ("mean_us", "p50_us", "p99_us", "p999_us")
            ]
            cells.append(fmt(median_of(rounds, "max_us"), 0))
            cells.append(fmt(median_of(rounds, "achieved_rate")))
            out.append(f"| {label(contender)} | " + " | ".join(cells) + " |")

    if "rss-offline" in args.scenarios:
        codec = args.cost_codec
        out += [
            "",
            f"### Memory with every broker down: {args.rss_records:,} records, "
            f"{args.rss_buffer_mib} MiB buffer, {codec}",
            "",
            "The producer connects, the broker goes down, then every record is produced. "
            "Growth of VmRSS from just before the first record.",
            "",
            "| client | RSS growth MiB | peak growth MiB | refused by produce() "
            "| dropped from the buffer | seconds |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for contender in args.contenders:
            if contender not in args.rss_contenders:
                continue
            rounds = rounds_of("rss-offline", codec, contender)
            reason = not_ok(rounds)
            if reason:
                out.append(f"| {label(contender)} | {reason} | | | | |")
                continue
            drops = [_dropped(o.result.get("client") or {}) for o in rounds if o.status == "ok"]
            known = [d for d in drops if d is not None]
            out.append(
                f"| {label(contender)} | {fmt(median_of(rounds, 'rss_growth_mib'), 1)} "
                f"| {fmt(median_of(rounds, 'peak_growth_mib'), 1)} "
                f"| {fmt(median_of(rounds, 'rejected'))} "
                f"| {fmt(statistics.median(known) if known else None)} "
                f"| {fmt(median_of(rounds, 'seconds'), 1)} |"
            )
            client = next((o.result.get("client") for o in rounds if o.status == "ok"), None)
            if client:
                notes.append(f"{label(contender)} after the RSS run: {json.dumps(client)}")

    if "idle-cpu" in args.scenarios:
        codec = args.cost_codec
        out += [
            "",
            f"### Idle producer: {args.idle_seconds:g} s connected with nothing to send",
            "",
            "| client | CPU % of one core | context switches/s |",
            "|---|---:|---:|",
        ]
        for contender in args.contenders:
            rounds = rounds_of("idle-cpu", codec, contender)
            reason = not_ok(rounds)
            if reason:
                out.append(f"| {label(contender)} | {reason} | |")
                continue
            out.append(
                f"| {label(contender)} | {fmt(median_of(rounds, 'cpu_percent'), 2)} "
                f"| {fmt(median_of(rounds, 'switches_per_second'), 0)} |"
            )

    notes += path_notes(
        [
            (label(o.contender), o.result)
            for o in outcomes
            if "KAFKA_SINK_PURE" in CONTENDERS[o.contender].env
        ]
    )
    if notes:
        out += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(out) + "\n"


def _dropped(client: dict[str, Any]) -> float | None:
    """Records the client reports it dropped from its own buffer, if it reports any."""
    counts = [v for k, v in client.items() if "dropped" in k and isinstance(v, int | float)]
    return sum(counts) if counts else None


def _rate(rounds: list[Outcome], records: int) -> float | None:
    seconds = median_of(rounds, "seconds")
    return records / seconds if seconds else None


# -- main ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from kafka_sink.testing import MockCluster

    versions: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    for name in args.contenders:
        contender = CONTENDERS[name]
        reason = contender.unavailable()
        if reason is None:
            versions[name] = contender.version()
        else:
            unavailable[name] = reason
            versions[name] = "-"
            print(f"skipping {name}: {reason}", file=sys.stderr)

    outcomes: list[Outcome] = []
    with MockCluster(1, topics={TOPIC: PARTITIONS}) as cluster:
        servers = cluster.bootstrap_servers
        for scenario, codec, contenders in plan(args):
            for round_number in range(1, args.rounds + 1):
                for name in contenders:
                    outcome = Outcome(scenario, codec, name, round_number)
                    if name in unavailable:
                        outcome.result = {"status": "skipped", "reason": unavailable[name]}
                    elif scenario == "rss-offline" and CONTENDERS[name].offline_limitation:
                        limitation = CONTENDERS[name].offline_limitation
                        outcome.result = {"status": "skipped", "reason": limitation}
                    else:
                        started = time.monotonic()
                        spec = spec_for(args, scenario, codec, name, servers)
                        outcome.result = run_child(spec, args.child_timeout, cluster)
                        print(
                            f"{scenario} {codec} round {round_number} {name}: "
                            f"{_summary(outcome)} ({time.monotonic() - started:.1f} s)",
                            file=sys.stderr,
                        )
                    outcomes.append(outcome)
        librdkafka = cluster.librdkafka_version

    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
    sys.stdout.write(report(args, outcomes, versions, librdkafka, argv))
    return 0


def _summary(outcome: Outcome) -> str:
    result = outcome.result
    if outcome.status != "ok":
        detail = result.get("reason") or result.get("error")
        stderr = result.get("stderr")
        return f"{outcome.status}: {detail}" + (f"\n{stderr}" if stderr else "")
    shown = {
        key: round(value, 3) if isinstance(value, float) else value
        for key, value in result.items()
        if key not in ("status", "version", "client", "path")
    }
    return json.dumps(shown)


if __name__ == "__main__":
    raise SystemExit(main())
