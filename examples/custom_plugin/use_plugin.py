"""Use a plugin package: a serializer that masks secrets, and a router for audit records.

    python3 examples/custom_plugin/use_plugin.py

The plugin is in ``src/kafka_sink_redact/plugin.py``. Here it is passed by
module name in ``plugins=``, from its source folder; installed (``pip
install ./examples/custom_plugin``), its ``kafka_sink`` entry point registers
it in every handler, and ``serializer="redacted-json"`` is all it takes.
``entry_points=False`` keeps other installed plugins out of this example.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import kafka_sink

HERE = Path(__file__).resolve().parent
# The plugin's sources and examples/_cluster.py, without installing anything.
sys.path[:0] = [str(HERE / "src"), str(HERE.parent)]

from _cluster import example_cluster  # noqa: E402 - found through the path set above

TOPIC = "app-logs"


def main() -> int:
    with example_cluster(TOPIC, "audit-logs") as cluster:
        handler = kafka_sink.KafkaHandler(
            TOPIC,
            cluster.bootstrap_servers,
            serializer="redacted-json",
            serializer_options={"fields": ["password", "card_number"]},
            plugins=["kafka_sink_redact.plugin"],
            entry_points=False,
        )
        log = logging.getLogger("accounts")
        log.addHandler(handler)
        log.setLevel(logging.INFO)

        log.info("signup", extra={"user": "ada", "password": "hunter2"})
        log.info("payment", extra={"user": "ada", "card_number": "4111111111111111"})
        log.warning("role changed", extra={"user": "ada", "role": "admin", "audit": True})

        handler.close()
        records = {topic: cluster.read(topic) for topic in (TOPIC, "audit-logs")}

    leaked = 0
    for topic, found in records.items():
        print(f"\nread back from {topic}:")
        for record in found:
            text = (record.value or b"").decode()
            leaked += "hunter2" in text or "4111111111111111" in text
            print(f"  {text}")
    counts = {topic: len(found) for topic, found in records.items()}
    print(f"\nrecords per topic: {counts}; secrets leaked: {leaked}")
    return 0 if counts == {TOPIC: 2, "audit-logs": 1} and leaked == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
