"""structlog's own way: a renderer ends the chain, and a KafkaLoggerFactory makes the loggers.

    python3 examples/structlog_logger_factory.py

Where ``structlog.BytesLoggerFactory`` writes what the renderer made to a
file, ``kafka_sink.KafkaLoggerFactory`` queues it in a Sink: one Kafka
record per event, the renderer's bytes as they are (orjson's, here, when
it is installed; ``JSONRenderer()``'s text otherwise), no future per record.
``KafkaLoggerFactory.keyed`` wraps the renderer to key each event by its
``user_id`` and copy ``request_id`` into a header; the logger adds the
``level`` (from the method called), ``logger`` and ``host`` headers.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

import structlog
from _cluster import example_cluster, headers

import kafka_sink

TOPIC = "app-events"


def renderer() -> tuple[str, Callable[..., Any]]:
    try:
        import orjson  # noqa: PLC0415 - optional: the example works without it
    except ImportError:
        return "JSONRenderer() (text)", structlog.processors.JSONRenderer()
    return "JSONRenderer(serializer=orjson.dumps) (bytes)", structlog.processors.JSONRenderer(
        serializer=orjson.dumps
    )


def main() -> int:
    with example_cluster(TOPIC) as cluster:
        factory = kafka_sink.KafkaLoggerFactory(TOPIC, cluster.bootstrap_servers)
        name, render = renderer()
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.format_exc_info,
                kafka_sink.KafkaLoggerFactory.keyed(
                    render, key="user_id", header_fields=["request_id"]
                ),
            ],
            logger_factory=factory,
            cache_logger_on_first_use=True,
        )
        print(f"renderer: {name}")
        log = structlog.get_logger("shop")

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

        factory.close()  # delivers what is buffered (bounded), then closes its sink
        print(f"delivered: {factory.metrics()['records_delivered']}")
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
