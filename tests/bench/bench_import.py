"""What ``import kafka_sink`` costs, in fresh interpreters.

Run it directly (pytest does not collect it)::

    python3 tests/bench/bench_import.py [--runs N] [--profile]

Each run starts a new interpreter (``python3 -X importtime``) for each
scenario, the scenarios interleaved run by run so that a busy machine
slows them alike:

* ``import kafka_sink``: the package alone;
* ``kafka_sink.KafkaHandler``: what a process that logs to Kafka loads;
* ``kafka_sink.MetricsExporter`` and ``kafka_sink.Connection`` (the
  synchronous producer, with the admin API), for comparison.

For each it prints the median (and the fastest and slowest) of the
``-X importtime`` totals of the imports the scenario triggers (the
interpreter's own start-up excluded), the median wall time of the whole
child process, less that of ``python3 -c pass``, and which of the modules a
handler does not need (the command line, the reader, the admin API, the
metrics exporter) were loaded. ``--profile`` adds the modules with the
largest own import time, from the median run of each scenario.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

TARGET_MS = 50.0

SCENARIOS = {
    "import kafka_sink": "import kafka_sink",
    "kafka_sink.KafkaHandler": "import kafka_sink; kafka_sink.KafkaHandler",
    "kafka_sink.MetricsExporter": "import kafka_sink; kafka_sink.MetricsExporter",
    "kafka_sink.Connection": "import kafka_sink; kafka_sink.Connection",
}

# What a process that only logs should never load.
NOT_FOR_A_HANDLER = (
    "kafka_sink.cli",
    "kafka_sink.demo",
    "kafka_sink.testing",
    "kafka_sink.net.fetcher",
    "kafka_sink.net.cluster",
    "kafka_sink.protocol.fetch",
    "kafka_sink.protocol.list_offsets",
    "kafka_sink.protocol.create_topics",
    "kafka_sink.integrations.metrics_exporter",
)

_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)$")
_LOADED = "import sys; print('\\n'.join(m for m in sys.modules if m.startswith('kafka_sink')))"


@dataclass(frozen=True)
class Run:
    """One child interpreter's import times (microseconds) and wall time (seconds)."""

    total_us: int
    wall_s: float
    own_us: dict[str, int]


def run_once(code: str) -> Run:
    """Run ``code`` with ``-X importtime`` and add up what its imports took."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - start
    total = 0
    own: dict[str, int] = {}
    seen_site = False
    for line in done.stderr.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        self_us, cumulative_us, indent, module = match.groups()
        # A line is written when its import ends: the interpreter's start-up
        # ends with site's, and every line after it is the code's.
        if not seen_site:
            seen_site = module == "site" and not indent
            continue
        own[module] = int(self_us)
        if not indent:  # a top-level import: its cumulative time holds its children's
            total += int(cumulative_us)
    return Run(total, wall, own)


def bare_startup() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def loaded_modules(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}; {_LOADED}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="interpreters per scenario (21)")
    parser.add_argument("--profile", action="store_true", help="list the costliest modules")
    args = parser.parse_args(argv)
    runs: dict[str, list[Run]] = {name: [] for name in SCENARIOS}
    bare: list[float] = []
    for _ in range(args.runs):
        bare.append(bare_startup())
        for name, code in SCENARIOS.items():
            runs[name].append(run_once(code))
    startup = statistics.median(bare)
    print(f"Python {sys.version.split()[0]}, {args.runs} fresh interpreters per scenario")
    print(f"(`python3 -c pass` takes {startup * 1000:.1f} ms here, subtracted from wall times)\n")
    print(
        "| scenario | imports, median ms | fastest | slowest | wall ms | handler-unneeded loaded |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for name, code in SCENARIOS.items():
        totals = sorted(r.total_us / 1000 for r in runs[name])
        wall = statistics.median(r.wall_s for r in runs[name]) - startup
        unneeded = sorted(m for m in loaded_modules(code) if m in NOT_FOR_A_HANDLER)
        print(
            f"| `{name}` | {statistics.median(totals):.1f} | {totals[0]:.1f} | {totals[-1]:.1f} "
            f"| {wall * 1000:.1f} | {', '.join(unneeded) or 'none'} |"
        )
    median_package = statistics.median(r.total_us / 1000 for r in runs["import kafka_sink"])
    verdict = "under" if median_package < TARGET_MS else "OVER"
    print(
        f"\n`import kafka_sink`: {median_package:.1f} ms, {verdict} the {TARGET_MS:.0f} ms target"
    )
    if args.profile:
        for name in SCENARIOS:
            ordered = sorted(runs[name], key=lambda r: r.total_us)
            middle = ordered[len(ordered) // 2]
            print(f"\n{name}: largest own import times (ms) of the median run")
            for module, us in sorted(middle.own_us.items(), key=lambda kv: -kv[1])[:12]:
                print(f"  {us / 1000:6.1f}  {module}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
