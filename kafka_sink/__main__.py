"""``python -m kafka_sink``: the ``kafka-sink`` command line (see :mod:`kafka_sink.cli`)."""

from __future__ import annotations

import sys

from kafka_sink.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
