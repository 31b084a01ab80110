"""Celery tasks whose logs, and Celery's record of each task's outcome, go to Kafka.

    python3 examples/recipes/celery_tasks.py    # needs celery

A Celery worker configures logging itself unless a receiver of the
``setup_logging`` signal does it: ``configure_logging`` below runs a
``dictConfig`` with a KafkaHandler for the tasks' logger (``shop.tasks``)
and for ``celery.app.trace``, where Celery logs each task's outcome (the
traceback of a task that raised included). A filter adds the running
task's id and name to every record, and the handler copies the id into a
header. With ``celery -A celery_tasks worker`` the same receiver runs in the
worker; with the prefork pool the pool's processes are forked after it,
and the handler's Sink is fork-safe.

Here the broker is Celery's in-memory transport (``memory://``), which
lives in one process, so the worker runs in a thread of this script
(``celery.contrib.testing.worker.start_worker``, the solo pool). The script
sends four tasks, one of which fails, waits for their results, and reads
the topic back.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from celery import Celery, current_task, signals
from celery.contrib.testing.worker import start_worker

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/_cluster.py

from _cluster import ENV_VAR, example_cluster  # noqa: E402 - found through the path set above

TOPIC = "task-logs"

app = Celery("shop", broker="memory://localhost/", backend="cache+memory://")
log = logging.getLogger("shop.tasks")


class TaskContext(logging.Filter):
    """Adds ``task_id`` and ``task_name`` to the records logged while a task runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = current_task
        if task is not None and task.request.id is not None:
            record.task_id = task.request.id
            record.task_name = task.name
        return True


LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"task": {"()": TaskContext}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        "kafka": {
            "class": "kafka_sink.KafkaHandler",
            "topic": TOPIC,
            # brokers from $KAFKA_SINK_BOOTSTRAP_SERVERS
            "key": "order_id",
            "header_fields": ["task_id"],
            "filters": ["task"],
            "close_timeout_ms": 5000,
        },
    },
    "root": {"level": "WARNING", "handlers": ["console"]},
    "loggers": {
        "shop": {"level": "INFO", "handlers": ["kafka"]},
        "celery.app.trace": {"level": "INFO", "handlers": ["kafka"]},
    },
}


@signals.setup_logging.connect
def configure_logging(**_: Any) -> None:
    # Connected: Celery leaves logging alone and calls this instead.
    logging.config.dictConfig(LOGGING)


@app.task(name="shop.charge")
def charge(order_id: str, cents: int) -> str:
    if cents <= 0:
        log.warning("refusing order %s: %d cents", order_id, cents, extra={"order_id": order_id})
        raise ValueError(f"amount must be positive, got {cents}")
    log.info("charged order %s: %d cents", order_id, cents, extra={"order_id": order_id})
    return f"receipt-{order_id}"


def main() -> int:
    with example_cluster(TOPIC) as cluster:
        os.environ[ENV_VAR] = cluster.bootstrap_servers
        orders = [("o-1", 1999), ("o-2", 500), ("o-3", -5), ("o-4", 120)]
        with start_worker(app, pool="solo", perform_ping_check=False):
            results = [charge.delay(order, cents) for order, cents in orders]
            outcomes = [result.get(timeout=30, propagate=False) for result in results]
            task_ids = [result.id for result in results]
        logging.shutdown()  # delivers what the handler holds (bounded)
        records = cluster.read(TOPIC)

    print(f"task results: {[str(outcome) for outcome in outcomes]}")
    docs = [json.loads(record.value or b"") for record in records]
    print(f"\nread back from {TOPIC}: {len(records)} records")
    for record, doc in zip(records, docs, strict=True):
        task_id = dict(record.headers).get("task_id")
        which = task_ids.index(task_id.decode()) + 1 if task_id else "-"
        print(f"  task {which} key {record.key!r}: {doc['level']} {doc['logger']}: ", end="")
        print(doc["message"].splitlines()[0])
    by_logger = Counter((doc["logger"], doc["level"]) for doc in docs)
    print(f"records per logger and level: {dict(sorted(by_logger.items()))}")
    failed = [doc for doc in docs if doc["level"] == "ERROR"]
    shipped = len(failed) == 1 and "ValueError: amount must be positive" in failed[0]["exception"]
    print(f"the failed task's traceback arrived: {shipped}")
    ok = (
        by_logger
        == {
            ("shop.tasks", "INFO"): 3,
            ("shop.tasks", "WARNING"): 1,
            ("celery.app.trace", "INFO"): 3,
            ("celery.app.trace", "ERROR"): 1,
        }
        and shipped
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
