"""structlog over the standard library: one KafkaHandler for both.

    python3 examples/structlog_stdlib.py

structlog hands its events to :mod:`logging` (``render_to_log_kwargs``: the
event becomes the message and the other items ``extra`` attributes), so a
single :class:`kafka_sink.KafkaHandler` ships the application's structlog
events and the plain log records of the libraries it uses, to one topic in
one JSON shape. Event items must not be named like a ``LogRecord``
attribute (``name``, ``message``, ``module``...): logging refuses those.
"""

from __future__ import annotations

import json
import logging
import sys

import structlog
from _cluster import example_cluster, headers

import kafka_sink

TOPIC = "app-logs"


def main() -> int:
    with example_cluster(TOPIC) as cluster:
        kafka = kafka_sink.KafkaHandler(
            TOPIC, cluster.bootstrap_servers, key="user_id", header_fields=["request_id"]
        )
        logging.basicConfig(
            level=logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
            handlers=[logging.StreamHandler(), kafka],
        )
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.filter_by_level,
                structlog.stdlib.PositionalArgumentsFormatter(),
                structlog.stdlib.render_to_log_kwargs,
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )

        log = structlog.get_logger("shop.checkout")
        structlog.contextvars.bind_contextvars(request_id="r-7")
        log.info("order placed", user_id="u-1", order_id="o-9", amount=42.5)
        log.warning("payment retried", user_id="u-1", attempt=2)
        structlog.contextvars.clear_contextvars()
        # A library that logs with the standard module: same handler, same topic.
        logging.getLogger("payments.client").error("gateway answered %d", 503)
        logged = {
            "order placed": "shop.checkout",
            "payment retried": "shop.checkout",
            "gateway answered 503": "payments.client",
        }

        logging.shutdown()
        records = cluster.read(TOPIC)

    print(f"\nread back from {TOPIC}:")
    arrived = {}
    for record in records:
        value = json.loads(record.value or b"")
        arrived[value["message"]] = value["logger"]
        extra = {k: v for k, v in value.items() if k in ("order_id", "amount", "attempt")}
        print(f"  key {record.key!r} headers {headers(record)}")
        print(f"    {value['level']} {value['logger']}: {value['message']} {extra}")
    print(f"{len(records)} of {len(logged)} records read back")
    return 0 if len(records) == len(logged) and arrived == logged else 1


if __name__ == "__main__":
    sys.exit(main())
