"""Locating librdkafka: ``$KAFKA_SINK_LIBRDKAFKA``, the confluent-kafka wheel, the system.

The copy bundled in the ``confluent-kafka`` wheel is found without importing
confluent-kafka: the mock cluster needs only its C library.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
from pathlib import Path

from kafka_sink.testing.errors import MockClusterError

__all__ = ["LIBRARY_ENV_VAR", "find_librdkafka"]

#: Environment variable naming an explicit librdkafka shared library to load.
LIBRARY_ENV_VAR = "KAFKA_SINK_LIBRDKAFKA"

_LIBRARY_PATTERNS = ("librdkafka*.so*", "librdkafka*.dylib", "librdkafka*.dll", "rdkafka*.dll")


def find_librdkafka() -> Path:
    """Return the path of the librdkafka shared library to load.

    Looks, in order, at ``$KAFKA_SINK_LIBRDKAFKA``, at the copy bundled in the
    installed ``confluent-kafka`` wheel (``confluent_kafka.libs/`` on Linux,
    ``.dylibs/`` on macOS), then at a system-wide ``librdkafka``. The
    confluent-kafka package is located without being imported.

    Raises :class:`MockClusterError` naming every place it looked.

    Example::

        >>> find_librdkafka().name  # doctest: +SKIP
        'librdkafka-0cb94173.so.1'
    """
    override = os.environ.get(LIBRARY_ENV_VAR)
    if override:
        path = Path(override)
        if not path.is_file():
            raise MockClusterError(f"${LIBRARY_ENV_VAR}={override!r} is not a file")
        return path

    searched: list[str] = []
    spec = importlib.util.find_spec("confluent_kafka")
    if spec is not None and spec.submodule_search_locations:
        package_dir = Path(next(iter(spec.submodule_search_locations)))
        # auditwheel (Linux) and delvewheel (Windows) put vendored libraries
        # beside the package, delocate (macOS) puts them inside it.
        for folder in (
            package_dir.parent / "confluent_kafka.libs",
            package_dir / ".dylibs",
            package_dir,
        ):
            searched.append(str(folder))
            for pattern in _LIBRARY_PATTERNS:
                found = sorted(folder.glob(pattern))
                if found:
                    return found[0]
    else:
        searched.append("the confluent_kafka package (not installed)")

    system = ctypes.util.find_library("rdkafka")
    searched.append("the system library path")
    if system:
        return Path(system)
    raise MockClusterError(
        "librdkafka was not found; install the test dependency with "
        "`pip install confluent-kafka` or set "
        f"${LIBRARY_ENV_VAR} to a librdkafka shared library. Looked in: " + ", ".join(searched)
    )
