"""One measurement in a child process: one contender, one scenario, one round.

:mod:`tests.bench.run` starts ``python -m tests.bench.worker '<json spec>'``
once per contender and round, so that no client shares a process (its RSS, its
CPU time, its GIL) with another. The child prints one line
``BENCH-RESULT {json}`` on stdout and exits without tearing its producer down
(teardown is not measured, and with every broker down it could take long).

The RSS scenario pauses once its producer is connected: the child prints
``BENCH-READY`` and waits for a line on stdin, which the parent sends after
setting every broker of the cluster down.

The loops for synchronous and asynchronous clients are written side by side
and must stay identical but for ``await``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.bench.peers import CONTENDERS, AsyncContender, Settings, SyncContender

RESULT_PREFIX = "BENCH-RESULT "
READY_LINE = "BENCH-READY"

NUM_KEYS = 64
NUM_VALUES = 1024  # a power of two: the loops index with i & (NUM_VALUES - 1)
VALUE_SIZE = 150

_LEVELS = ("DEBUG", "INFO", "INFO", "INFO", "WARNING", "ERROR")
_SERVICES = ("checkout", "search", "auth", "billing", "catalog", "gateway")
_ROUTES = ("/api/v2/cart", "/api/v2/items", "/login", "/health", "/api/v2/pay")


def make_keys() -> list[bytes]:
    """64 distinct keys, as a host/service pair of a fleet writes them."""
    return [f"{_SERVICES[i % 6]}-{i:02d}.prod.internal".encode() for i in range(NUM_KEYS)]


def make_values(seed: int = 2024) -> list[bytes]:
    """1024 distinct JSON log lines of exactly 150 bytes, to be cycled through."""
    rng = random.Random(seed)
    values = []
    for i in range(NUM_VALUES):
        line = json.dumps(
            {
                "t": f"2025-03-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
                f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z",
                "lvl": rng.choice(_LEVELS),
                "svc": rng.choice(_SERVICES),
                "msg": f"{rng.choice(('GET', 'POST'))} {rng.choice(_ROUTES)} "
                f"{rng.choice((200, 200, 200, 201, 404, 503))} in {rng.randint(1, 2000)} ms",
                "trace": f"{rng.getrandbits(64):016x}",
                "n": i,
            },
            separators=(",", ":"),
        ).encode()
        values.append(line[:VALUE_SIZE].ljust(VALUE_SIZE, b" "))
    return values


# -- process measurements -------------------------------------------------------------


def proc_status_kib(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM), or None without /proc."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def peak_rss_kib() -> int:
    value = proc_status_kib("VmHWM")
    if value is not None:
        return value
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # kB on Linux


def context_switches() -> int | None:
    """Context switches of every thread of this process so far (Linux), else None."""
    total = 0
    try:
        tasks = list(Path("/proc/self/task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            text = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        for line in text.splitlines():
            if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                total += int(line.split()[1])
    return total


def timer_overhead_ns() -> float:
    """The median cost of the two perf_counter_ns() calls that bracket a call."""
    clock = time.perf_counter_ns
    samples = []
    for _ in range(20_000):
        start = clock()
        samples.append(clock() - start)
    return statistics.median(samples)


def summarize_ns(samples: array[int], overhead: float) -> dict[str, float]:
    ordered = sorted(samples)
    count = len(ordered)

    def at(q: float) -> float:
        return max(0.0, ordered[min(count - 1, int(q * count))] - overhead) / 1000.0

    return {
        "mean_us": max(0.0, sum(ordered) / count - overhead) / 1000.0,
        "p50_us": at(0.50),
        "p99_us": at(0.99),
        "p999_us": at(0.999),
        "max_us": at(1.0),
    }


# -- scenarios: synchronous clients ---------------------------------------------------


def throughput_sync(contender: SyncContender, spec: dict[str, Any]) -> dict[str, Any]:
    records: int = spec["records"]
    keys, values = make_keys(), make_values()
    produce = contender.produce
    mask = NUM_VALUES - 1
    cpu0 = time.process_time()
    start = time.perf_counter()
    for i in range(records):
        produce(values[i & mask], keys[i & 63])
    produced = time.perf_counter()
    remaining = contender.flush(spec["flush_timeout"])
    end = time.perf_counter()
    cpu = time.process_time() - cpu0
    return {
        "seconds": end - start,
        "produce_seconds": produced - start,
        "cpu_seconds": cpu,
        "unacknowledged": remaining,
        "failed": contender.failed(),
    }


def produce_cost_sync(contender: SyncContender, spec: dict[str, Any]) -> dict[str, Any]:
    records: int = spec["records"]
    per_tick = max(1, round(spec["rate"] / 1000))
    keys, values = make_keys(), make_values()
    overhead = timer_overhead_ns()
    produce = contender.produce
    clock = time.perf_counter_ns
    mask = NUM_VALUES - 1
    samples = array("q")
    sample = samples.append
    i = 0
    start = time.perf_counter()
    next_tick = start
    while i < records:
        for _ in range(min(per_tick, records - i)):
            t0 = clock()
            produce(values[i & mask], keys[i & 63])
            sample(clock() - t0)
            i += 1
        next_tick += 0.001
        delay = next_tick - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.perf_counter() - start
    remaining = contender.flush(spec["flush_timeout"])
    return {
        **summarize_ns(samples, overhead),
        "timer_overhead_ns": overhead,
        "achieved_rate": records / elapsed,
        "unacknowledged": remaining,
        "failed": contender.failed(),
    }


def rss_offline_sync(contender: SyncContender, spec: dict[str, Any]) -> dict[str, Any]:
    records: int = spec["records"]
    keys, values = make_keys(), make_values()
    before = wait_for_go()
    produce = contender.produce
    mask = NUM_VALUES - 1
    cpu0 = time.process_time()
    start = time.perf_counter()
    for i in range(records):
        produce(values[i & mask], keys[i & 63])
    elapsed = time.perf_counter() - start
    return rss_result(contender, before, records, elapsed, time.process_time() - cpu0)


def idle_cpu_sync(contender: SyncContender, spec: dict[str, Any]) -> dict[str, Any]:
    cpu0, switches0, wall0 = time.process_time(), context_switches(), time.perf_counter()
    time.sleep(spec["seconds"])
    return idle_result(cpu0, switches0, wall0)


# -- scenarios: asyncio clients (the same loops, with await) --------------------------


async def throughput_async(contender: AsyncContender, spec: dict[str, Any]) -> dict[str, Any]:
    records: int = spec["records"]
    keys, values = make_keys(), make_values()
    produce = contender.produce
    mask = NUM_VALUES - 1
    cpu0 = time.process_time()
    start = time.perf_counter()
    for i in range(records):
        await produce(values[i & mask], keys[i & 63])
    produced = time.perf_counter()
    remaining = await contender.flush(spec["flush_timeout"])
    end = time.perf_counter()
    cpu = time.process_time() - cpu0
    return {
        "seconds": end - start,
        "produce_seconds": produced - start,
        "cpu_seconds": cpu,
        "unacknowledged": remaining,
        "failed": contender.failed(),
    }


async def produce_cost_async(contender: AsyncContender, spec: dict[str, Any]) -> dict[str, Any]:
    records: int = spec["records"]
    per_tick = max(1, round(spec["rate"] / 1000))
    keys, values = make_keys(), make_values()
    overhead = timer_overhead_ns()
    produce = contender.produce
    clock = time.perf_counter_ns
    mask = NUM_VALUES - 1
    samples = array("q")
    sample = samples.append
    i = 0
    start = time.perf_counter()
    next_tick = start
    while i < records:
        for _ in range(min(per_tick, records - i)):
            t0 = clock()
            await produce(values[i & mask], keys[i & 63])
            sample(clock() - t0)
            i += 1
        next_tick += 0.001
        delay = next_tick - time.perf_counter()
        # Sleep even when late: the event loop must get its turn to deliver.
        await asyncio.sleep(max(0.0, delay))
    elapsed = time.perf_counter() - start
    remaining = await contender.flush(spec["flush_timeout"])
    return {
        **summarize_ns(samples, overhead),
        "timer_overhead_ns": overhead,
        "achieved_rate": records / elapsed,
        "unacknowledged": remaining,
        "failed": contender.failed(),
    }


async def idle_cpu_async(contender: AsyncContender, spec: dict[str, Any]) -> dict[str, Any]:
    cpu0, switches0, wall0 = time.process_time(), context_switches(), time.perf_counter()
    await asyncio.sleep(spec["seconds"])
    return idle_result(cpu0, switches0, wall0)


# -- shared pieces --------------------------------------------------------------------


def wait_for_go() -> int:
    """Tell the parent the producer is connected; wait until every broker is down."""
    rss = proc_status_kib("VmRSS") or 0
    print(READY_LINE, flush=True)
    if not sys.stdin.readline():
        raise RuntimeError("the parent closed stdin before the brokers went down")
    return rss


def rss_result(
    contender: SyncContender, before_kib: int, records: int, elapsed: float, cpu: float
) -> dict[str, Any]:
    after = proc_status_kib("VmRSS") or 0
    return {
        "rss_before_mib": before_kib / 1024,
        "rss_growth_mib": (after - before_kib) / 1024,
        "peak_growth_mib": (peak_rss_kib() - before_kib) / 1024,
        "accepted": records - contender.rejected,
        "rejected": contender.rejected,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "client": contender.stats(),
    }


def idle_result(cpu0: float, switches0: int | None, wall0: float) -> dict[str, Any]:
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    switches = context_switches()
    result: dict[str, Any] = {"seconds": wall, "cpu_percent": 100.0 * cpu / wall}
    if switches0 is not None and switches is not None:
        result["switches_per_second"] = (switches - switches0) / wall
    return result


SYNC_SCENARIOS: dict[str, Callable[[SyncContender, dict[str, Any]], dict[str, Any]]] = {
    "throughput": throughput_sync,
    "produce-cost": produce_cost_sync,
    "rss-offline": rss_offline_sync,
    "idle-cpu": idle_cpu_sync,
}
ASYNC_SCENARIOS = {
    "throughput": throughput_async,
    "produce-cost": produce_cost_async,
    "idle-cpu": idle_cpu_async,
}


def settings_of(spec: dict[str, Any]) -> Settings:
    names = set(Settings.__dataclass_fields__)
    return Settings(**{key: value for key, value in spec["settings"].items() if key in names})


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    contender_type = CONTENDERS[spec["contender"]]
    reason = contender_type.unavailable()
    if reason is not None:
        return {"status": "skipped", "reason": reason}
    base = {"status": "ok", "version": contender_type.version()}
    scenario = spec["scenario"]
    settings = settings_of(spec)
    if issubclass(contender_type, AsyncContender):
        if scenario not in ASYNC_SCENARIOS:
            return {"status": "skipped", "reason": contender_type.offline_limitation or "n/a"}

        async def run_async() -> dict[str, Any]:
            contender = contender_type(settings)
            await contender.start()
            return await ASYNC_SCENARIOS[scenario](contender, spec)

        return {**base, **asyncio.run(run_async())}
    contender = contender_type(settings)
    contender.start()
    result = {**base, **SYNC_SCENARIOS[scenario](contender, spec)}
    if "KAFKA_SINK_PURE" in contender_type.env:
        from tests.bench.harness import path_report

        result["path"] = path_report()  # what this child ran: compiled or pure
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(args[0])
    try:
        result = measure(spec)
    except Exception as exc:
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    sys.stderr.flush()
    # Skip teardown: closing a producer whose brokers are down can take long,
    # and nothing after the measurement matters.
    os._exit(0)


if __name__ == "__main__":
    main()
