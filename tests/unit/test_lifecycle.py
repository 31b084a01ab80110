"""kafka_sink.lifecycle: one exit hook and one fork hook, in the order of its tables.

The orders are observed through the interpreter's real exit and a real
``os.fork()``, in a fresh interpreter, so no other test's objects take part.
"""

from __future__ import annotations

import ast
from pathlib import Path

from kafka_sink import lifecycle
from tests.child import run_python

ROOT = Path(__file__).resolve().parents[2]

RECORDER = """
    import os, sys
    from kafka_sink import lifecycle

    class Thing:
        def __init__(self, name, out):
            self.name, self.out = name, out
        def close(self):
            os.write(self.out, f"close {self.name}\\n".encode())
        def _after_fork_in_child(self):
            os.write(self.out, f"reset {self.name}\\n".encode())

    out = sys.stdout.fileno()
    # Tracked in the opposite order of the tables, so that the order seen is theirs.
    things = [
        Thing("exporter", out), Thing("logger", out), Thing("sink", out), Thing("closed sink", out)
    ]
    lifecycle.track(things[0], lifecycle.Stage.EXPORTERS)
    lifecycle.reset_in_child(things[1], lifecycle.Stage.LOGGERS)
    lifecycle.track(things[3], lifecycle.Stage.SINKS)
    lifecycle.track(things[2], lifecycle.Stage.SINKS)
    lifecycle.forget(things[3])
    lifecycle.on_fork_in_child(lambda: os.write(out, b"reset module state\\n"))
"""


def test_exit_closes_the_exporters_before_the_sinks_and_not_the_loggers() -> None:
    child = run_python(RECORDER)
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == ["close exporter", "close sink"]


def test_a_forked_child_resets_module_state_then_sinks_loggers_exporters() -> None:
    child = run_python(
        RECORDER
        + """
    pid = os.fork()
    if pid == 0:
        os._exit(0)  # no exit hooks in the child: only its fork resets are printed
    os.waitpid(pid, 0)
    os.write(out, b"parent\\n")
    """
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == [
        "reset module state",
        "reset sink",
        "reset logger",
        "reset exporter",
        "parent",
        "close exporter",
        "close sink",
    ]


def test_a_failing_close_at_exit_does_not_stop_the_next() -> None:
    child = run_python(
        """
        import os, sys
        from kafka_sink import lifecycle

        class Broken:
            def close(self):
                raise RuntimeError("broken")
            def _after_fork_in_child(self):
                pass

        class Fine(Broken):
            def close(self):
                os.write(sys.stdout.fileno(), b"closed\\n")

        broken, fine = Broken(), Fine()
        lifecycle.track(broken, lifecycle.Stage.EXPORTERS)
        lifecycle.track(fine, lifecycle.Stage.SINKS)
        """
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout == "closed\n"


def test_the_tables_name_every_stage() -> None:
    assert set(lifecycle.FORK_ORDER) == set(lifecycle.Stage)
    assert lifecycle.EXIT_ORDER == (lifecycle.Stage.EXPORTERS, lifecycle.Stage.SINKS)


def test_nothing_else_registers_an_exit_or_fork_hook() -> None:
    sources = [
        *sorted((ROOT / "kafka_sink").rglob("*.py")),
        *sorted((ROOT / "plugins").glob("*/src/**/*.py")),
    ]
    registering = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in {
                "atexit.register",
                "os.register_at_fork",
                "register_at_fork",
            }:
                registering.append(str(path.relative_to(ROOT)))
    assert registering == ["kafka_sink/lifecycle.py", "kafka_sink/lifecycle.py"]
