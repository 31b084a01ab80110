"""The error of the test helpers: the mock cluster could not start, or refused a command."""

from __future__ import annotations

from kafka_sink.errors import KafkaSinkError

__all__ = ["MockClusterError"]


class MockClusterError(KafkaSinkError):
    """The mock cluster could not be started, or refused or failed a command.

    ``code`` is librdkafka's error code when the C API returned one (for example
    -190, ``_UNKNOWN_BROKER``), else -1.
    """
