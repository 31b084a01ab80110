"""Long runs of the structure-aware decoder fuzzers of :mod:`tests.fuzzing`.

Run from the repository root (pytest does not collect it)::

    python -m tests.bench.fuzz --cases 1000000                  # every family
    python -m tests.bench.fuzz --cases 20000 --family sasl --family records_zstd
    python -m tests.bench.fuzz --list

Each family's cases are valid encodings mutated where the decoder trusts the
bytes most (lengths, counts, CRC-fixed record batches, codecs, bombs); see
:mod:`tests.fuzzing`. A case passes when its decoder returns a value or raises
the library's ProtocolError (AuthenticationError too, for the SASL exchange).
Anything else is printed with the case's bytes, and so is a case slower than
the per-case guard (``--guard``, seconds): a Python-level loop is interrupted
there; a call into C that outlasts ``--abort-after`` seconds ends the run, after
printing the case.

One case in ``--sample`` is decoded under :mod:`tracemalloc`: the table shows
the largest peak allocation of those cases, absolute and relative to the
input (inputs under 1 KiB counted as 1 KiB, so that the fixed cost of an
exception or of a decoded object does not read as a ratio). Record batches
may legitimately decompress to far more than their size: their decompression
is bounded by 1 MiB here (the library's default is 64 MiB).

The report (Markdown) goes to stdout, progress to stderr. One process, one
thread: run it under ``nice`` next to other work.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from types import FrameType

from kafka_sink.errors import AuthenticationError, ProtocolError
from tests.fuzzing import FAMILIES, Case, Family

_RATIO_FLOOR = 1024


class CaseTimeout(BaseException):
    """Raised by the per-case alarm: a BaseException, so no decoder's ``except`` catches it."""


@dataclass
class Tally:
    family: str
    cases: int = 0
    values: int = 0
    protocol_errors: int = 0
    authentication_errors: int = 0
    others: int = 0
    slowest: float = 0.0
    slowest_label: str = ""
    sampled: int = 0
    peak_bytes: int = 0
    peak_ratio: float = 0.0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


# Whether a case is being decoded: the alarm only interrupts a decoder.
_decoding = [False]


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    if _decoding[0]:
        _decoding[0] = False
        raise CaseTimeout


class Watchdog:
    """Ends the process when a case outlasts ``limit`` seconds (a C call that never returns)."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.started = 0.0
        self.case: Case | None = None
        self.family = ""
        self._lock = threading.Lock()
        thread = threading.Thread(target=self._watch, daemon=True, name="fuzz-watchdog")
        thread.start()

    def begin(self, family: str, case: Case) -> None:
        with self._lock:
            self.family, self.case, self.started = family, case, time.monotonic()

    def end(self) -> None:
        with self._lock:
            self.case = None

    def _watch(self) -> None:
        while True:
            time.sleep(1.0)
            with self._lock:
                case, started = self.case, self.started
            if case is not None and time.monotonic() - started > self.limit:
                print(
                    f"\nABORT: a {self.family} case ({case.label}) has run for more than "
                    f"{self.limit:g} s (a call that does not return)\ninput: {case.data.hex()}",
                    file=sys.stderr,
                    flush=True,
                )
                os._exit(3)


def run_family(
    family: Family,
    cases: int,
    rng: random.Random,
    *,
    guard: float,
    sample: int,
    watchdog: Watchdog,
    progress: float = 30.0,
) -> Tally:
    tally = Tally(family.name)
    allowed = family.allowed
    clock = time.perf_counter
    started = clock()
    next_report = time.monotonic() + progress
    for index in range(cases):
        case = family.make(rng)
        traced = sample > 0 and index % sample == 0
        watchdog.begin(family.name, case)
        if traced:
            tracemalloc.start()
        outcome: str
        error: BaseException | None = None
        _decoding[0] = True
        signal.setitimer(signal.ITIMER_REAL, guard)
        began = clock()
        try:
            try:
                case.decode(case.data)
            finally:
                _decoding[0] = False  # whatever happened: no alarm past this point
            outcome = "value"
        except CaseTimeout:
            outcome = "timeout"
        except allowed as exc:
            outcome = "error"
            error = exc
        except Exception as exc:
            outcome = "other"
            error = exc
        elapsed = clock() - began
        signal.setitimer(signal.ITIMER_REAL, 0)
        watchdog.end()
        if traced:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            tally.sampled += 1
            tally.peak_bytes = max(tally.peak_bytes, peak)
            tally.peak_ratio = max(tally.peak_ratio, peak / max(len(case.data), _RATIO_FLOOR))
        tally.cases += 1
        if elapsed > tally.slowest:
            tally.slowest, tally.slowest_label = elapsed, case.label
        if outcome == "value":
            tally.values += 1
        elif outcome == "error":
            if isinstance(error, AuthenticationError):
                tally.authentication_errors += 1
            else:
                assert isinstance(error, ProtocolError)
                tally.protocol_errors += 1
        else:
            tally.others += 1
            what = (
                f"ran past the {guard:g} s guard"
                if error is None
                else f"{type(error).__name__}: {str(error)[:300]}"
            )
            if len(tally.failures) < 20:
                tally.failures.append(f"{case.label}: {what}\n  input: {case.data.hex()}")
            print(f"\n{family.name}: {case.label}: {what}", file=sys.stderr, flush=True)
        if time.monotonic() >= next_report:
            next_report = time.monotonic() + progress
            rate = tally.cases / (clock() - started)
            print(
                f"  {family.name}: {tally.cases:,}/{cases:,} cases ({rate:,.0f}/s), "
                f"{tally.others} other",
                file=sys.stderr,
                flush=True,
            )
    tally.seconds = clock() - started
    return tally


def report(tallies: list[Tally], command: str) -> str:
    lines = [
        f"`{command}`",
        "",
        "| family | cases | values | ProtocolError | AuthenticationError | other exceptions "
        "| slowest case | peak alloc (KiB) | peak alloc / input | time |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for t in tallies:
        lines.append(
            f"| {t.family} | {t.cases:,} | {t.values:,} | {t.protocol_errors:,} | "
            f"{t.authentication_errors:,} | {t.others:,} | {t.slowest * 1000:.1f} ms "
            f"({t.slowest_label}) | {t.peak_bytes / 1024:,.0f} | {t.peak_ratio:,.1f} | "
            f"{t.seconds:,.0f} s |"
        )
    sampled = sum(t.sampled for t in tallies)
    lines += [
        "",
        f"Allocation sampled on {sampled:,} cases in all (one in every --sample); the "
        f"ratio counts inputs under {_RATIO_FLOOR} bytes as {_RATIO_FLOOR} bytes.",
    ]
    failures = [f for t in tallies for f in t.failures]
    if failures:
        lines += ["", "Failures (first 20 per family):", "", *(f"- {f}" for f in failures)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="cases per family")
    parser.add_argument(
        "--family",
        action="append",
        choices=sorted(FAMILIES),
        help="a family to run (repeatable; default: all)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--guard", type=float, default=2.0, help="per-case time guard, seconds")
    parser.add_argument("--abort-after", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--sample", type=int, default=1000, help="trace allocation of 1 in N")
    parser.add_argument("--list", action="store_true", help="list the families and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name in FAMILIES:
            print(name)
        return 0
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    names = args.family or list(FAMILIES)
    signal.signal(signal.SIGALRM, _on_alarm)
    watchdog = Watchdog(args.abort_after)
    tallies = []
    print(f"seed {seed}; families: {', '.join(names)}", file=sys.stderr, flush=True)
    for offset, name in enumerate(names):
        rng = random.Random(seed + offset)
        tally = run_family(
            FAMILIES[name],
            args.cases,
            rng,
            guard=args.guard,
            sample=args.sample,
            watchdog=watchdog,
        )
        tallies.append(tally)
        print(
            f"{name}: {tally.cases:,} cases in {tally.seconds:,.0f} s, {tally.others} other",
            file=sys.stderr,
            flush=True,
        )
    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m tests.bench.fuzz", *given])
    print(report(tallies, command if args.seed is not None else f"{command} (seed {seed})"))
    return 1 if any(t.others for t in tallies) else 0


if __name__ == "__main__":
    sys.exit(main())
