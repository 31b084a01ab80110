"""Pieces shared by ``bench_threads`` and ``bench_logging``.

Parent side: kafka_sink's two paths as environments for the children
(:data:`KAFKA_SINK_PATHS`), one child run (:func:`run_child`), the exact
command line and the machine for the report, medians and number formats.

Child side: the 130-byte JSON values, the keys, the contenders' shared
producer settings, what the child reports about kafka_sink's path
(:func:`path_report`), and the diagnostic probes: :class:`LockProbe` (time
spent waiting for the ``threading.Lock`` objects the library creates) and
:func:`count_wakeups` (sender wake-up calls and sender loop turns).

A child is started as ``python -m <module> --child '<json spec>'``, prints
one ``BENCH-RESULT {json}`` line and exits without tearing its producer down.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from tests.bench.worker import RESULT_PREFIX, context_switches

ROOT = Path(__file__).resolve().parents[2]

#: The environment variable that makes kafka_sink take its pure-Python path.
PURE_ENV = "KAFKA_SINK_PURE"

#: kafka_sink's two paths: a label and the value of KAFKA_SINK_PURE (None: unset).
KAFKA_SINK_PATHS: tuple[tuple[str, str | None], ...] = (("compiled", None), ("pure", "1"))

BROKERS = 3
CLIENT_ID = "kafka-sink-bench"
BATCH_SIZE = 131_072
BUFFER_MEMORY = 32 * 1024 * 1024
MAX_BLOCK_MS = 60_000
NUM_VALUES = 1024  # a power of two: loops index with i & (NUM_VALUES - 1)

_LEVELS = ("DEBUG", "INFO", "INFO", "INFO", "WARNING", "ERROR")
_SERVICES = ("checkout", "search", "auth", "billing", "catalog", "gateway")
_ROUTES = ("/api/v2/cart", "/api/v2/items", "/login", "/health", "/api/v2/pay")


# -- the workload ----------------------------------------------------------------------


def json_values(size: int = 130, count: int = NUM_VALUES, seed: int = 2025) -> list[str]:
    """``count`` distinct JSON log lines of exactly ``size`` bytes, each valid JSON.

    The ``msg`` item is cut or padded to make the length; the other items
    (a timestamp, a level, a service, a trace id, a sequence number) vary.
    """
    rng = random.Random(seed)
    values = []
    for i in range(count):
        fields: dict[str, Any] = {
            "t": f"2025-03-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
            f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z",
            "lvl": rng.choice(_LEVELS),
            "svc": rng.choice(_SERVICES),
            "msg": "",
            "trace": f"{rng.getrandbits(64):016x}",
            "n": i,
        }
        room = size - len(json.dumps(fields, separators=(",", ":")))
        if room < 0:
            raise ValueError(f"a JSON line needs more than {size} bytes")
        message = (
            f"{rng.choice(('GET', 'POST'))} {rng.choice(_ROUTES)} "
            f"{rng.choice((200, 200, 200, 201, 404, 503))} in {rng.randint(1, 2000)} ms"
        )
        fields["msg"] = message[:room].ljust(room)
        line = json.dumps(fields, separators=(",", ":"))
        assert len(line.encode()) == size, line
        values.append(line)
    return values


def host_keys(count: int) -> list[str]:
    """``count`` distinct keys, as a fleet's host/service pairs write them."""
    width = max(2, len(str(count - 1)))
    return [f"{_SERVICES[i % 6]}-{i:0{width}d}.prod.internal" for i in range(count)]


def sink_options(spec: Mapping[str, Any]) -> dict[str, Any]:
    """kafka_sink options every kafka_sink contender gets (Sink or handler)."""
    return {
        "client_id": CLIENT_ID,
        "acks": spec["acks"],
        "compression_type": spec["codec"],
        "linger_ms": spec["linger_ms"],
        "batch_size": BATCH_SIZE,
        "buffer_memory": BUFFER_MEMORY,
        # Every record is to be delivered: wait for room rather than drop.
        "on_buffer_full": "block",
        "max_block_ms": MAX_BLOCK_MS,
    }


def confluent_config(spec: Mapping[str, Any], on_delivery: Callable[..., None]) -> dict[str, Any]:
    """The same settings for confluent-kafka's ``Producer``."""
    return {
        "bootstrap.servers": spec["servers"],
        "client.id": CLIENT_ID,
        "acks": spec["acks"],
        "compression.type": spec["codec"],
        "linger.ms": spec["linger_ms"],
        "batch.size": BATCH_SIZE,
        "queue.buffering.max.kbytes": BUFFER_MEMORY // 1024,
        "queue.buffering.max.messages": 2_147_483_647,
        # Java-compatible key hashing, as kafka_sink's default partitioner.
        "partitioner": "murmur2_random",
        "delivery.report.only.error": True,
        "on_delivery": on_delivery,
    }


# -- the child -------------------------------------------------------------------------


def child_main(measure: Callable[[dict[str, Any]], dict[str, Any]], text: str) -> None:
    """Run ``measure(spec)``, print its result line and exit at once (no teardown)."""
    try:
        spec = json.loads(text)
        interval = spec.get("switch_interval")
        if interval:
            sys.setswitchinterval(interval)
        result = {"status": "ok", **measure(spec)}
        result["switch_interval"] = sys.getswitchinterval()
        result["path"] = path_report()
    except Exception as exc:
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    sys.stderr.flush()
    os._exit(0)


def path_report() -> dict[str, Any]:
    """What this child ran of kafka_sink: KAFKA_SINK_PURE and its compiled modules loaded."""
    native = sorted(
        name
        for name, module in list(sys.modules.items())
        if name.split(".")[0] == "kafka_sink"
        and str(getattr(module, "__file__", "") or "").endswith((".so", ".pyd"))
    )
    accel = sys.modules.get("kafka_sink._accel")
    implementation = getattr(accel, "IMPLEMENTATION", None)
    return {
        "pure_env": os.environ.get(PURE_ENV),
        "native_modules": native,
        "implementation": implementation if isinstance(implementation, str) else None,
    }


class Clock:
    """Process CPU, context switches and wall time between ``start()`` and ``stop()``."""

    def start(self) -> None:
        self.switches0 = context_switches()
        self.cpu0 = time.process_time()
        self.wall0 = time.perf_counter()

    def stop(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.wall0
        cpu = time.process_time() - self.cpu0
        switches = context_switches()
        moved = None if switches is None or self.switches0 is None else switches - self.switches0
        return {"seconds": wall, "cpu_seconds": cpu, "context_switches": moved}


@dataclass
class _LockStats:
    site: str
    fast: int = 0
    #: (ns, thread ident) of each acquire that had to wait.
    waits: list[tuple[int, int]] = field(default_factory=list)


class _ProbedLock:
    """A ``threading.Lock`` that times every acquire that has to wait.

    An acquire first tries without blocking (counted, not timed); only when
    that fails is the blocking acquire bracketed by two clock reads. Release
    is the real lock's own method.
    """

    def __init__(self, stats: _LockStats) -> None:
        lock = _real_lock()
        self._lock = lock
        self._try = lock.acquire
        self._stats = stats
        self.release = lock.release
        self.locked = lock.locked
        self._waits = stats.waits

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._try(False):
            self._stats.fast += 1
            return True
        if not blocking:
            return False
        start = time.perf_counter_ns()
        got: bool = self._try(True, timeout)
        self._waits.append((time.perf_counter_ns() - start, threading.get_ident()))
        return got

    __enter__ = acquire

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()

    def _is_owned(self) -> bool:  # for threading.Condition, without counting
        if self._lock.acquire(False):
            self._lock.release()
            return False
        return True

    def _at_fork_reinit(self) -> None:
        self._lock = _real_lock()
        self._try = self._lock.acquire
        self.release = self._lock.release
        self.locked = self._lock.locked


_real_lock = threading.Lock


class LockProbe:
    """Instrument every ``threading.Lock()`` created inside :meth:`installed`.

    Each lock is named by where it was created (module and function of the
    first frame outside :mod:`threading`). The wrapper costs a Python call
    per acquire, so a probed run is slower: it is for diagnosis only.
    """

    def __init__(self) -> None:
        self.locks: list[_LockStats] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        def factory() -> Any:
            frame: FrameType | None = sys._getframe(1)
            while frame is not None and frame.f_globals.get("__name__") == "threading":
                frame = frame.f_back
            where = "?"
            if frame is not None:
                code = frame.f_code
                name = getattr(code, "co_qualname", code.co_name)
                where = f"{frame.f_globals.get('__name__', '?')}:{name}"
            stats = _LockStats(where)
            self.locks.append(stats)
            return _ProbedLock(stats)

        threading.Lock = factory  # type: ignore[assignment]  # probe each lock made from now on
        try:
            yield
        finally:
            threading.Lock = _real_lock

    def reset(self) -> None:
        """Forget what was counted so far (the warm-up)."""
        for stats in self.locks:
            stats.fast = 0
            stats.waits.clear()

    def report(self, sender_ident: int | None, prefix: str = "kafka_sink") -> dict[str, Any]:
        """Acquires and waits of the probed locks created by ``prefix`` modules."""
        sites: dict[str, dict[str, float]] = {}
        for stats in self.locks:
            if not stats.site.startswith(prefix):
                continue
            row = sites.setdefault(
                stats.site,
                {"locks": 0, "acquires": 0, "contended": 0, "wait_ns": 0, "sender_wait_ns": 0},
            )
            row["locks"] += 1
            row["acquires"] += stats.fast + len(stats.waits)
            row["contended"] += len(stats.waits)
            for ns, ident in stats.waits:
                row["wait_ns"] += ns
                if ident == sender_ident:
                    row["sender_wait_ns"] += ns
        totals = {
            key: sum(row[key] for row in sites.values())
            for key in ("locks", "acquires", "contended", "wait_ns", "sender_wait_ns")
        }
        return {"sites": sites, **totals}


def count_wakeups(sink: Any) -> Callable[[], dict[str, int]] | None:
    """Count the sink's wake-up calls and its sender's loop turns from now on.

    Wraps, on the instances, the network client's ``wakeup`` (called by
    producing threads when the sender should look again: a batch became
    ready, a new partition queue...) and the sender's ``run_once`` (one turn
    of the sender loop). Returns a function that reads the counts, or None if
    this Sink is not built that way.
    """
    network = getattr(sink, "_network", None)
    sender = getattr(sink, "_sender", None)
    if network is None or sender is None:
        return None
    wakeup = getattr(network, "wakeup", None)
    run_once = getattr(sender, "run_once", None)
    if wakeup is None or run_once is None:
        return None
    counts = {"wakeup_calls": 0, "wakeup_signals": 0, "sender_loops": 0}

    def counting_wakeup() -> None:
        counts["wakeup_calls"] += 1
        if not getattr(network, "_wakeup_pending", False):
            counts["wakeup_signals"] += 1
        wakeup()

    def counting_run_once() -> None:
        counts["sender_loops"] += 1
        run_once()

    try:
        network.wakeup = counting_wakeup
        sender.run_once = counting_run_once
    except (AttributeError, TypeError):
        return None
    return lambda: dict(counts)


# -- the parent ------------------------------------------------------------------------


def child_env(overrides: Mapping[str, str | None]) -> dict[str, str]:
    """This process's environment with the repository on PYTHONPATH and ``overrides``.

    An override of None removes the variable.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_child(
    module: str, spec: Mapping[str, Any], env: Mapping[str, str | None], timeout: float
) -> dict[str, Any]:
    """``python -m module --child SPEC`` in a fresh interpreter: its result, or why not."""
    command = [sys.executable, "-m", module, "--child", json.dumps(spec)]
    try:
        done = subprocess.run(
            command,
            check=False,
            cwd=ROOT,
            env=child_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"status": "error", "error": f"no result within {timeout:.0f} s"}
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            if result.get("status") == "error":
                result["stderr"] = "\n".join(done.stderr.strip().splitlines()[-15:])
            return result
    tail = "\n".join(done.stderr.strip().splitlines()[-15:])
    return {
        "status": "error",
        "error": f"the child exited without a result (exit status {done.returncode})",
        "stderr": tail,
    }


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command that produced this report, as typed from the repository root."""
    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", "-m", module, *args])


def machine_line(librdkafka: str) -> str:
    load = ""
    with contextlib.suppress(OSError):
        load = f" Load average at the end: {os.getloadavg()[0]:.2f}."
    return (
        f"{platform.python_implementation()} {platform.python_version()} on "
        f"{platform.system()} with {os.cpu_count()} CPUs; librdkafka {librdkafka} mock "
        f"cluster of {BROKERS} brokers (partition leaders spread evenly), in its own "
        f"process.{load}"
    )


def path_notes(results: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """One line per kafka_sink contender: what its children actually ran.

    ``results`` are (label, result) pairs of kafka_sink contenders.
    """
    seen: dict[str, dict[str, int]] = {}
    for label, result in results:
        path = result.get("path")
        if result.get("status") != "ok" or not path:
            continue
        env = path.get("pure_env")
        modules = ", ".join(f"`{m}`" for m in path.get("native_modules") or []) or "none"
        implementation = path.get("implementation") or "not reported"
        line = (
            f"{PURE_ENV + ' unset' if env is None else PURE_ENV + '=' + env}, "
            "compiled modules loaded: "
            f"{modules}, implementation reported: {implementation}"
        )
        counts = seen.setdefault(label, {})
        counts[line] = counts.get(line, 0) + 1
    notes = []
    for label, counts in seen.items():
        runs = sum(counts.values())
        parts = [
            line if len(counts) == 1 else f"{line} ({n} of {runs} runs)"
            for line, n in counts.items()
        ]
        notes.append(f"{label}: " + "; ".join(parts))
    return notes


def path_of(env: Mapping[str, str | None]) -> str:
    """The name of the kafka_sink path a contender's environment selects."""
    value = env.get(PURE_ENV)
    return next((name for name, v in KAFKA_SINK_PATHS if v == value), "compiled")


def median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def first_line(result: Mapping[str, Any]) -> str:
    """Why a run gave no figures, in one line (for a table cell or a note)."""
    detail = str(result.get("reason") or result.get("error") or "no result")
    return f"{result.get('status', 'error')}: {detail.splitlines()[0] if detail else ''}"


def error_summary(result: Mapping[str, Any]) -> str:
    detail = result.get("reason") or result.get("error")
    stderr = result.get("stderr")
    return f"{result.get('status')}: {detail}" + (f"\n{stderr}" if stderr else "")
