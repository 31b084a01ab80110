"""Python code run in a fresh interpreter, for what a test cannot do in its own process.

Interpreter exit (``atexit`` hooks, :func:`logging.shutdown`), ``os.fork()``,
or an import that must fail need a process of their own.

Example::

    result = run_python('''
        import os, kafka_sink
        sink = kafka_sink.Sink(os.environ["SERVERS"])
        ''', {"SERVERS": cluster.bootstrap_servers})
    assert result.returncode == 0, result.stderr
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping

__all__ = ["run_python"]


def run_python(
    code: str, env: Mapping[str, str] | None = None, *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (dedented) with ``python -c``, ``env`` added to this process's environment.

    Returns the finished process with its output as text; the exit status is
    for the test to check. ``timeout`` only bounds a child that hangs.
    """
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
