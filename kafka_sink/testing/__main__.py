"""``python -m kafka_sink.testing``: a standalone mock cluster, and each MockCluster's child."""

from __future__ import annotations

import sys

from kafka_sink.testing import main

if __name__ == "__main__":
    sys.exit(main())
