"""Last-resort cleanup of test brokers when the test process dies without tearing down.

Run as a script (``python reaper.py``) by :mod:`tests.brokers.common`, in its own
session so that a Ctrl-C in the terminal does not reach it. It reads commands
from stdin, one per line:

``pid N`` / ``unpid N``
    start / stop watching the process group N (brokers run as group leaders)
``dir PATH`` / ``undir PATH``
    start / stop watching a temporary directory

When stdin reaches end-of-file, which is what happens when the test process
exits for any reason (including SIGKILL), every process group still watched is
sent SIGTERM, then SIGKILL five seconds later, and every watched directory is
removed. A test run that tears down normally unregisters everything first, so
the reaper then has nothing to do.

Only the standard library is used: this file runs outside the test process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time

_GRACE_SECONDS = 5.0


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def main() -> int:
    pids: set[int] = set()
    dirs: set[str] = set()
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "pid":
            pids.add(int(argument))
        elif command == "unpid":
            pids.discard(int(argument))
        elif command == "dir":
            dirs.add(argument)
        elif command == "undir":
            dirs.discard(argument)
    for pgid in pids:
        _signal(pgid, signal.SIGTERM)
    deadline = time.monotonic() + _GRACE_SECONDS
    while time.monotonic() < deadline and any(_alive(pgid) for pgid in pids):
        time.sleep(0.1)
    for pgid in pids:
        _signal(pgid, signal.SIGKILL)
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
