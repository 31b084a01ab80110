"""``logging.config.dictConfig`` from a JSON file (``logging.json``, next to this script).

    python3 examples/dict_config_json.py

This configuration ships plain text: ``serializer: text`` writes what the
handler's formatter (``line``) makes of each record, so the topic holds the
same lines a log file would. The script points ``bootstrap_servers`` at its
own cluster before it configures logging.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from pathlib import Path

from _cluster import example_cluster

CONFIG = Path(__file__).with_name("logging.json")


def main() -> int:
    config = json.loads(CONFIG.read_text(encoding="utf-8"))
    topic = config["handlers"]["kafka"]["topic"]
    with example_cluster(topic) as cluster:
        config["handlers"]["kafka"]["bootstrap_servers"] = cluster.bootstrap_servers
        logging.config.dictConfig(config)

        log = logging.getLogger("search.api")
        log.info("query %r took %d ms", "red shoes", 42, extra={"user_id": "u-7"})
        log.error("index %s unavailable", "products-v2", extra={"user_id": "u-8"})
        log.debug("below INFO: not shipped")
        logged = [
            "INFO search.api: query 'red shoes' took 42 ms",
            "ERROR search.api: index products-v2 unavailable",
        ]

        logging.shutdown()
        records = cluster.read(topic)

    print(f"read back from {topic}:")
    lines = []
    for record in records:
        lines.append((record.value or b"").decode())
        print(f"  key {record.key!r}: {lines[-1]}")
    print(f"{len(records)} of {len(logged)} lines read back")
    return 0 if sorted(lines) == sorted(logged) else 1


if __name__ == "__main__":
    sys.exit(main())
