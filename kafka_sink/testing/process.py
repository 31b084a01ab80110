"""The parent's side of a MockCluster's child process: starting it, talking to it, ending it.

:class:`ClusterProcess` starts ``python -m kafka_sink.testing --serve``, sends
it one JSON command per line on its stdin and reads one JSON answer per line
from its stdout, on a thread of its own. The child's stderr, librdkafka's log
included, goes to a log file, quoted when the child dies. A finalizer ends a
child that was never closed when the interpreter exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from kafka_sink.testing.errors import MockClusterError

__all__ = ["ClusterProcess"]


def _stop_child(process: subprocess.Popen[str], log_path: Path, owns_log: bool) -> None:
    """Finalizer for a MockCluster that was never closed: end the child, quickly."""
    with contextlib.suppress(OSError):
        if process.stdin is not None:
            process.stdin.close()
    try:
        process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()
    if owns_log:
        with contextlib.suppress(OSError):
            log_path.unlink()


class ClusterProcess:
    """One child process running a mock cluster, and the command protocol to it.

    Thread-safe: one command at a time is sent and its answer awaited.
    """

    def __init__(
        self,
        library: Path,
        num_brokers: int,
        *,
        debug: str,
        log_path: str | os.PathLike[str] | None,
        command_timeout: float,
    ) -> None:
        self._command_timeout = command_timeout
        self._lock = threading.Lock()
        self._next_id = 0
        self._closed = False
        self._answers: queue.Queue[str | None] = queue.Queue()

        self._owns_log = log_path is None
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="kafka-sink-mock-", suffix=".log")
            os.close(fd)
            log_path = name
        self._log_path = Path(log_path)
        argv = [
            sys.executable,
            "-m",
            "kafka_sink.testing",
            "--serve",
            "--library",
            str(library),
            "--brokers",
            str(num_brokers),
        ]
        if debug:
            argv += ["--debug", debug]
        if self._owns_log:
            argv += ["--owned-log", str(self._log_path)]
        # The child must import this very kafka_sink, even when the parent
        # found it through a sys.path entry the child would not have (the
        # directory above the package: this file is kafka_sink/testing/process.py).
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        # O_APPEND: the child writes at the end whatever the parent reads.
        with open(self._log_path, "ab") as log:
            self._process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                encoding="utf-8",
                bufsize=1,
            )
        self._finalizer = weakref.finalize(
            self, _stop_child, self._process, self._log_path, self._owns_log
        )
        self._reader = threading.Thread(
            target=self._read_answers, name=f"mock-cluster-{self._process.pid}", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._process.pid

    @property
    def log_path(self) -> Path:
        """Where the child's stderr (librdkafka's log) goes."""
        return self._log_path

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        """The child's first message, once it has started the cluster (or could not)."""
        try:
            line = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise MockClusterError(
                f"the mock cluster did not start within {timeout} s"
                + (f"; its log ends with:\n{self._log_tail()}" if self._log_tail() else "")
            ) from None
        if line is None:
            raise self._died("starting")
        message: dict[str, Any] = json.loads(line)
        if message.get("event") != "ready":
            raise MockClusterError(f"the mock cluster could not start: {message.get('error')}")
        return message

    def call(self, op: str, **args: Any) -> Any:
        """Run one command in the child and return its result, or raise its error."""
        with self._lock:
            if self._closed:
                raise MockClusterError(f"{op}: the mock cluster is closed")
            self._next_id += 1
            request_id = self._next_id
            stdin = self._process.stdin
            assert stdin is not None
            try:
                stdin.write(json.dumps({"id": request_id, "op": op, "args": args}) + "\n")
                stdin.flush()
            except (BrokenPipeError, ValueError):
                raise self._died(f"sending {op}") from None
            deadline = time.monotonic() + self._command_timeout
            while True:
                remaining = deadline - time.monotonic()
                try:
                    line = self._answers.get(timeout=max(remaining, 0.0))
                except queue.Empty:
                    raise MockClusterError(
                        f"{op}: no answer from the mock cluster within {self._command_timeout} s"
                    ) from None
                if line is None:
                    # Leave the end marker for whoever asks next.
                    self._answers.put(None)
                    raise self._died(f"running {op}")
                answer: dict[str, Any] = json.loads(line)
                if answer.get("id") != request_id:
                    continue  # the late answer of a command that timed out
                if answer["ok"]:
                    return answer.get("result")
                raise MockClusterError(answer["error"], code=answer.get("code"))

    def close(self, timeout: float = 10.0) -> None:
        """End the process (which destroys the cluster); safe to call more than once.

        The child is asked to exit by closing its stdin; it is killed if it has
        not exited after ``timeout`` seconds.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._finalizer.detach()
        with contextlib.suppress(OSError):
            if self._process.stdin is not None:
                self._process.stdin.close()
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(timeout=timeout)
        if self._process.stdout is not None:
            self._process.stdout.close()
        if self._owns_log:
            with contextlib.suppress(OSError):
                self._log_path.unlink()

    def _read_answers(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        with contextlib.suppress(ValueError, OSError):  # closed under us by close()
            for line in stdout:
                self._answers.put(line)
        self._answers.put(None)

    def _log_tail(self, lines: int = 40) -> str:
        try:
            text = self._log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _died(self, doing: str) -> MockClusterError:
        try:
            status = self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            status = None
        if status is None:
            how = "stopped answering"
        elif status < 0:
            how = f"was killed by signal {-status}"
        else:
            how = f"exited with status {status}"
        tail = self._log_tail()
        return MockClusterError(
            f"the mock cluster process (pid {self._process.pid}) {how} while {doing}"
            + (f"; its log ends with:\n{tail}" if tail else "")
        )
