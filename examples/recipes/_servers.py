"""What the web-server recipes share: a loopback port, a server process, and requests to it.

The recipes run their server (uvicorn, gunicorn) as you would, in a process
of its own started with ``python -m``, and find Kafka the way a deployment
does: through ``$KAFKA_SINK_BOOTSTRAP_SERVERS`` in the server's environment.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

ENV_VAR = "KAFKA_SINK_BOOTSTRAP_SERVERS"
START_TIMEOUT = 30.0  # seconds for a server to start its workers
STOP_TIMEOUT = 30.0  # seconds for a server to stop once told to


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """A server started as ``python -m ARGS...``; its console output is collected line by line."""

    def __init__(self, args: Sequence[str], *, cwd: Path, bootstrap_servers: str) -> None:
        env = {**os.environ, ENV_VAR: bootstrap_servers, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = START_TIMEOUT) -> list[str]:
        """Wait until ``count`` lines of the server's output match ``pattern``; those lines."""
        expression = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines if expression.search(line)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    raise RuntimeError(
                        f"the server did not print {count} line(s) matching {pattern!r}:\n"
                        + self.output()
                    )
                self._changed.wait(min(left, 0.5))

    def stop(self) -> int:
        """Stop the server as a process manager does (SIGTERM), and wait; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait()
        self._reader.join(STOP_TIMEOUT)
        return status

    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)


def get(port: int, path: str, headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    """``GET http://127.0.0.1:PORT/PATH``: the status and the body (error statuses too)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()
