"""What every test broker needs: free loopback ports, processes, logs, patient waits.

Each broker process runs in its own session (so it is the leader of its own
process group and a Ctrl-C in the terminal reaches only pytest), writes its
stdout and stderr to a log file, and is stopped by pid with a bounded
SIGTERM -> SIGKILL sequence. Three nets catch processes a test run forgets:
the fixtures' finalizers, an ``atexit`` hook, and a reaper process that kills
what is left if the test process itself dies (see :mod:`tests.brokers.reaper`).

Startup failures raise :class:`BrokerStartError` with the end of the process's
log in the message, so that the reason shows in the test report.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TypeVar

__all__ = [
    "LOOPBACK",
    "BrokerError",
    "BrokerInstallError",
    "BrokerStartError",
    "ManagedProcess",
    "free_ports",
    "make_work_dir",
    "remove_work_dir",
    "retry_on_port_clash",
    "wait_for_port",
    "wait_until",
]

LOOPBACK = "127.0.0.1"

#: Keep broker work directories (data and logs) after a run, for debugging.
KEEP_ENV_VAR = "KAFKA_SINK_KEEP_BROKER_DIRS"

_T = TypeVar("_T")


class BrokerError(RuntimeError):
    """A test broker could not be installed, started or driven."""


class BrokerInstallError(BrokerError):
    """A test broker's software could not be downloaded, verified or unpacked."""


class BrokerStartError(BrokerError):
    """A test broker did not start, or did not become ready in time."""


# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago.

    All sockets stay bound until every port is chosen, so the ports differ from
    each other; another process can still take one before the broker binds it,
    which :func:`retry_on_port_clash` handles.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_accepts(port: int, host: str = LOOPBACK) -> bool:
    """Whether a TCP connection to ``host:port`` succeeds right now."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# How a failed bind reads in the logs of the JVM and of Rust programs.
_PORT_TAKEN = ("Address already in use", "Address in use", "AddrInUse")


def retry_on_port_clash(start: Callable[[], _T], *, attempts: int = 3) -> _T:
    """Call ``start`` again (with new ports) when it failed because a port was taken."""
    for attempt in range(1, attempts + 1):
        try:
            return start()
        except BrokerStartError as exc:
            if attempt == attempts or not any(text in str(exc) for text in _PORT_TAKEN):
                raise
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------
# Waiting
# ---------------------------------------------------------------------------


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    processes: Iterable[ManagedProcess] = (),
    interval: float = 0.1,
) -> None:
    """Poll ``condition`` until it returns true; raise :class:`BrokerStartError` on timeout.

    ``processes`` are checked at every round, so that a broker that died fails
    the wait at once, with its log, instead of at the timeout. An exception
    from ``condition`` counts as "not yet" and is reported if time runs out.
    """
    watched = list(processes)
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        for process in watched:
            process.check_running()
        try:
            if condition():
                return
        except Exception as exc:  # not ready yet; keep the reason for the report
            last_error = exc
        if time.monotonic() >= deadline:
            reason = f" (last error: {last_error!r})" if last_error else ""
            logs = "".join(f"\n\n{process.describe_log()}" for process in watched)
            raise BrokerStartError(
                f"timed out after {timeout:.0f} s waiting for {what}{reason}{logs}"
            )
        time.sleep(interval)


def wait_for_port(process: ManagedProcess, port: int, *, timeout: float) -> None:
    """Wait until ``process`` accepts connections on ``port`` (failing fast if it dies)."""
    wait_until(
        lambda: port_accepts(port),
        timeout=timeout,
        what=f"{process.name} to listen on {LOOPBACK}:{port}",
        processes=[process],
    )


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------


class _Reaper:
    """Client side of tests/brokers/reaper.py, started on first use, one per test process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._pid = 0

    def _send(self, line: str) -> None:
        with self._lock:
            if self._process is None or self._pid != os.getpid():
                # A forked child must not share its parent's reaper pipe.
                self._pid = os.getpid()
                self._process = subprocess.Popen(
                    [sys.executable, str(Path(__file__).with_name("reaper.py"))],
                    stdin=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
            stdin = self._process.stdin
            assert stdin is not None
            with contextlib.suppress(OSError, ValueError):
                stdin.write(line + "\n")
                stdin.flush()

    def watch_pid(self, pid: int) -> None:
        self._send(f"pid {pid}")

    def forget_pid(self, pid: int) -> None:
        self._send(f"unpid {pid}")

    def watch_dir(self, path: Path) -> None:
        self._send(f"dir {path}")

    def forget_dir(self, path: Path) -> None:
        self._send(f"undir {path}")

    def close(self) -> None:
        """At interpreter exit: end the reaper (it finds nothing left to do)."""
        with self._lock:
            process, self._process = self._process, None
        if process is None or self._pid != os.getpid():
            return
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_reaper = _Reaper()
_live: set[ManagedProcess] = set()
_live_lock = threading.Lock()


def _stop_all_at_exit() -> None:
    with _live_lock:
        leftovers = list(_live)
    for process in leftovers:
        process.stop(timeout=5)
    _reaper.close()


atexit.register(_stop_all_at_exit)


class ManagedProcess:
    """One broker (or ZooKeeper) process, started in its own session, logging to a file.

    >>> proc = ManagedProcess("tansu", ["tansu", "broker"], log_path=Path("/tmp/tansu.log"))
    >>> proc.start()  # doctest: +SKIP
    >>> proc.stop()  # doctest: +SKIP
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self._popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._popen is None else self._popen.pid

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        if self.running:
            raise BrokerError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Append: a restarted broker keeps the log of its earlier lives.
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap()
        self._log.write(f"\n===== starting {self.name}: {' '.join(self.argv)}\n".encode())
        self._log.flush()
        try:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
            )
        except OSError as exc:
            self._log.close()
            self._log = None
            raise BrokerStartError(f"cannot run {self.argv[0]} for {self.name}: {exc}") from exc
        with _live_lock:
            _live.add(self)
        _reaper.watch_pid(self._popen.pid)

    def check_running(self) -> None:
        """Raise :class:`BrokerStartError` with the log if the process has exited."""
        if self._popen is None:
            raise BrokerStartError(f"{self.name} was never started")
        status = self._popen.poll()
        if status is not None:
            how = f"signal {-status}" if status < 0 else f"status {status}"
            raise BrokerStartError(f"{self.name} exited with {how}\n\n{self.describe_log()}")

    def terminate(self) -> None:
        """Send SIGTERM without waiting (to stop several processes in parallel)."""
        if self.running:
            self._signal(signal.SIGTERM)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``timeout`` s; idempotent."""
        if self._popen is None:
            return
        if self._popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self._popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
        self._reap()

    def kill(self) -> None:
        """SIGKILL the process group at once (a crash, from the cluster's point of view)."""
        if self._popen is None:
            return
        if self._popen.poll() is None:
            self._signal(signal.SIGKILL)
        self._reap()

    def _signal(self, signum: int) -> None:
        assert self._popen is not None
        # The process leads its own group (start_new_session); signalling the
        # group also reaches anything it spawned.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._popen.pid, signum)

    def _reap(self) -> None:
        assert self._popen is not None
        self._popen.wait()
        _reaper.forget_pid(self._popen.pid)
        with _live_lock:
            _live.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def describe_log(self, lines: int = 60) -> str:
        return (
            f"--- last lines of {self.log_path} (${KEEP_ENV_VAR}=1 keeps it) ---\n"
            f"{self.log_tail(lines)}"
        )


# ---------------------------------------------------------------------------
# Work directories
# ---------------------------------------------------------------------------


def make_work_dir(kind: str) -> Path:
    """A fresh temporary directory for one cluster's data and logs."""
    path = Path(tempfile.mkdtemp(prefix=f"kafka-sink-{kind}-"))
    if not os.environ.get(KEEP_ENV_VAR):
        _reaper.watch_dir(path)
    return path


def remove_work_dir(path: Path) -> None:
    """Remove a work directory, unless $KAFKA_SINK_KEEP_BROKER_DIRS is set."""
    _reaper.forget_dir(path)
    if os.environ.get(KEEP_ENV_VAR):
        return
    shutil.rmtree(path, ignore_errors=True)
