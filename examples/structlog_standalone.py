"""structlog on its own, with a KafkaProcessor in its chain.

    python3 examples/structlog_standalone.py

The processor ships each event dict (with the variables bound in
``structlog.contextvars``) to the ``app-events`` topic, keyed by
``user_id``, and returns it unchanged: the renderer after it still prints
the event on the console. The async method (``await log.ainfo(...)``) runs
the chain in a worker thread, so the event loop never waits for Kafka.
"""

from __future__ import annotations

import asyncio
import json
import sys

import structlog
from _cluster import example_cluster, headers

import kafka_sink

TOPIC = "app-events"


def main() -> int:
    with example_cluster(TOPIC) as cluster:
        kafka = kafka_sink.KafkaProcessor(
            TOPIC, cluster.bootstrap_servers, key="user_id", header_fields=["request_id"]
        )
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                kafka,  # ships the event dict, then hands it on
                structlog.dev.ConsoleRenderer(colors=False),
            ]
        )
        log = structlog.get_logger()

        structlog.contextvars.bind_contextvars(request_id="r-17")
        log.info("user_logged_in", user_id="u-42", method="password")
        log.warning("cart_abandoned", user_id="u-42", items=3)
        try:
            {}["SPRING10"]
        except KeyError:
            log.exception("coupon_lookup_failed", user_id="u-42")
        structlog.contextvars.clear_contextvars()
        asyncio.run(log.ainfo("report_ready", user_id="u-7", rows=1200))
        logged = ["user_logged_in", "cart_abandoned", "coupon_lookup_failed", "report_ready"]

        kafka.close()  # delivers what is buffered (bounded), then closes its sink
        records = cluster.read(TOPIC)

    print(f"\nread back from {TOPIC}:")
    events = []
    for record in records:
        value = json.loads(record.value or b"")
        events.append(value["event"])
        print(f"  key {record.key!r} headers {headers(record)}")
        if "exception" in value:  # a traceback: show its last line
            value["exception"] = value["exception"].splitlines()[-1]
        print(f"    {json.dumps(value)}")
    print(f"{len(records)} of {len(logged)} events read back")
    return 0 if sorted(events) == sorted(logged) else 1


if __name__ == "__main__":
    sys.exit(main())
