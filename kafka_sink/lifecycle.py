"""What happens to open sinks, loggers and exporters at interpreter exit and after ``os.fork()``.

Theory of operation
-------------------
A process can hold many objects that ship records through a :class:`~kafka_sink.Sink`:
metrics exporters, logging handlers, structlog processors and logger
factories, and the sinks themselves, some shared between several of them.
Two moments concern them all, and each needs one order:

*Interpreter exit.* An exporter's last export goes through a sink, so every
exporter is closed before any sink is; a sink is closed last, flushing what
its users handed it, within its own bounded timeout. Loggers are not closed
here: each record is handed to the sink at the call that logs it, so nothing
waits in a logger, and :func:`logging.shutdown` closes the handlers.

*A forked child.* The child has the parent's objects but none of its
threads, and a lock the parent's sender held at the fork stays held for
ever. Module state (such locks) is reset first, then the sinks (which drop
the parent's connections and buffered records without sending them: the
parent sends them), then the loggers and the exporters that use the sinks.

Both orders are the two tables below; the module registers one exit hook and
one fork hook, when it is first imported, and nothing else in the package
calls :func:`atexit.register` or :func:`os.register_at_fork`. Objects are
tracked in weak sets, so tracking keeps nothing alive, and an object that is
closed is forgotten. A failing close at exit is ignored: the next object is
still closed, and the interpreter still exits.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import os
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = [
    "EXIT_ORDER",
    "FORK_ORDER",
    "Stage",
    "forget",
    "on_fork_in_child",
    "reset_in_child",
    "track",
]


class Stage(enum.Enum):
    """Which kind of object a tracked object is, for the order of the tables below."""

    #: :class:`~kafka_sink.Sink`: the bottom, shared by the others.
    SINKS = "sinks"
    #: Logging handlers, structlog processors and logger factories.
    LOGGERS = "loggers"
    #: Metrics and OpenTelemetry exporters: they export once more at exit.
    EXPORTERS = "exporters"


#: The stages closed at interpreter exit, in this order.
EXIT_ORDER: tuple[Stage, ...] = (Stage.EXPORTERS, Stage.SINKS)
#: The stages reset in a forked child, in this order (after module state).
FORK_ORDER: tuple[Stage, ...] = (Stage.SINKS, Stage.LOGGERS, Stage.EXPORTERS)


class Resettable(Protocol):
    """What a forked child resets: the parent's threads, locks and connections are dropped."""

    def _after_fork_in_child(self) -> None: ...


class Tracked(Resettable, Protocol):
    """What exit closes, too: within the object's own bounded timeout."""

    def close(self) -> object: ...


_at_exit: dict[Stage, weakref.WeakSet[Tracked]] = {stage: weakref.WeakSet() for stage in Stage}
_in_child: dict[Stage, weakref.WeakSet[Resettable]] = {stage: weakref.WeakSet() for stage in Stage}
_module_resets: list[Callable[[], None]] = []


def track(obj: Tracked, stage: Stage) -> None:
    """Close ``obj`` at exit, if its stage is in :data:`EXIT_ORDER`, and reset it in a child.

    ``stage`` places it in :data:`EXIT_ORDER` and :data:`FORK_ORDER`.
    """
    _at_exit[stage].add(obj)
    _in_child[stage].add(obj)


def reset_in_child(obj: Resettable, stage: Stage) -> None:
    """Reset ``obj`` in a forked child, in the place of ``stage`` in :data:`FORK_ORDER`.

    For objects with nothing to close at exit: a logger hands each record to
    its sink at once; an OpenTelemetry exporter is shut down by its SDK.
    """
    _in_child[stage].add(obj)


def forget(obj: Resettable) -> None:
    """Stop tracking ``obj`` (it has been closed)."""
    for stage in Stage:
        _at_exit[stage].discard(obj)  # type: ignore[arg-type]  # absent: discard does nothing
        _in_child[stage].discard(obj)


def on_fork_in_child(reset: Callable[[], None]) -> None:
    """Run ``reset`` in every forked child, before any tracked object is reset.

    For module state, such as a lock that a parent's thread may hold at the
    fork. Resets run in the order they were registered.
    """
    _module_resets.append(reset)


def _close_all_at_exit() -> None:
    for stage in EXIT_ORDER:
        for obj in list(_at_exit[stage]):
            with contextlib.suppress(Exception):
                obj.close()


def _reset_all_in_child() -> None:
    for reset in _module_resets:
        reset()
    for stage in FORK_ORDER:
        for obj in list(_in_child[stage]):
            obj._after_fork_in_child()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all_in_child)
