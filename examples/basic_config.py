"""``logging.basicConfig`` with a KafkaHandler: the shortest way to ship an application's logs.

    python3 examples/basic_config.py

The root logger gets two handlers: the console, and Kafka. Each record
becomes one JSON object in the ``app-logs`` topic, keyed by the ``user_id``
given in ``extra``. The script then reads the topic back and prints what
arrived; the exit status is 0 when it is exactly what was logged.
"""

from __future__ import annotations

import json
import logging
import sys

from _cluster import example_cluster, headers

import kafka_sink

TOPIC = "app-logs"


def main() -> int:
    with example_cluster(TOPIC) as cluster:
        kafka = kafka_sink.KafkaHandler(TOPIC, cluster.bootstrap_servers, key="user_id")
        # basicConfig gives its formatter to both handlers; the Kafka handler's
        # JSON uses it only to render tracebacks.
        logging.basicConfig(
            level=logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
            handlers=[logging.StreamHandler(), kafka],
        )

        log = logging.getLogger("shop.orders")
        log.info("order %s placed", "o-1001", extra={"user_id": "u-1", "amount": 19.99})
        log.warning("stock low for %s", "sku-42", extra={"user_id": "u-2", "left": 3})
        try:
            _ = 100 / 0
        except ZeroDivisionError:
            log.exception("discount failed for %s", "o-1001", extra={"user_id": "u-1"})
        log.debug("below the root logger's level: never shipped")
        logged = ["order o-1001 placed", "stock low for sku-42", "discount failed for o-1001"]

        logging.shutdown()  # flushes and closes every handler, as the interpreter does at exit
        records = cluster.read(TOPIC)

    print(f"\nread back from {TOPIC}:")
    for record in records:
        print(f"  partition {record.partition} offset {record.offset} key {record.key!r}")
        print(f"    headers {headers(record)}")
        print(f"    value   {(record.value or b'').decode()}")
    arrived = sorted(json.loads(record.value or b"")["message"] for record in records)
    print(f"{len(records)} of {len(logged)} records read back")
    return 0 if arrived == sorted(logged) else 1


if __name__ == "__main__":
    sys.exit(main())
