"""Which implementation runs the per-record hot path: compiled or pure Python.

kafka_sink ships a small C extension, ``kafka_sink._speedups``, built at
install time wherever a C compiler and the Python headers are available. The
pure-Python modules remain the readable reference and the fallback: the
extension mirrors them byte for byte, and the test suite runs against both.

Set ``KAFKA_SINK_PURE=1`` in the environment (before ``kafka_sink`` is
imported) to run the pure-Python path even where the extension is built.
:data:`IMPLEMENTATION` says which one runs; ``Sink.metrics()`` reports it too.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["IMPLEMENTATION", "PURE_ENV", "speedups"]

#: The environment variable that forces the pure-Python path.
PURE_ENV = "KAFKA_SINK_PURE"


def _load() -> ModuleType | None:
    if os.environ.get(PURE_ENV, "").strip().lower() not in ("", "0", "false", "no"):
        return None
    try:
        from kafka_sink import _speedups  # noqa: PLC0415 - the environment decides first
    except ImportError:  # not built here (no compiler at install time): the pure path runs
        return None
    return _speedups


#: The compiled module, or None when the pure-Python path runs.
speedups = _load()

#: ``"compiled"`` or ``"pure"``.
IMPLEMENTATION = "compiled" if speedups is not None else "pure"
