"""The recipes of examples/recipes run with the real frameworks and servers; the oracle reads back.

Each recipe runs against a cluster of the test's own (through
``$KAFKA_SINK_BOOTSTRAP_SERVERS``, as a deployment would point it at one),
checks what it read back itself (its exit status), and then the oracle
(tests/oracle.py) reads the topic again: every record the recipe's
application, framework or server logged is there exactly once.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from kafka_sink.testing import MockCluster
from tests.integration.test_examples import run_example
from tests.oracle import ConsumedRecord, consume

pytestmark = [pytest.mark.integration, pytest.mark.mock, pytest.mark.timeout(120)]


def _doc(record: ConsumedRecord) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((record.value or b"").decode("utf-8"))
    return doc


def _header(record: ConsumedRecord, name: str) -> str | None:
    value = dict(record.headers).get(name)
    return None if value is None else value.decode()


def _read_back_count(output: str, topic: str) -> int:
    """How many records the recipe read back (some of a server's last lines may be missing)."""
    match = re.search(rf"read back from {topic}: (\d+) records", output)
    assert match is not None, output
    return int(match[1])


def test_django_logging(new_mock_cluster: Callable[..., MockCluster]) -> None:
    cluster = new_mock_cluster(topics={"django-logs": 3})
    output = run_example("recipes/django_logging.py", cluster.bootstrap_servers)
    assert "statuses: [200, 200, 404, 500]" in output, output
    assert "4 of 4 records read back" in output, output
    got = consume(cluster.bootstrap_servers, "django-logs", expected=4)
    arrived = sorted(
        (
            (
                r.key,
                _doc(r)["logger"],
                _doc(r)["level"],
                _doc(r)["message"],
                _header(r, "request_id"),
            )
            for r in got
        ),
        key=repr,
    )
    assert arrived == sorted(
        [
            (b"u-1", "shop.orders", "INFO", "order o-1 shown", "r-1"),
            (b"u-2", "shop.orders", "INFO", "order o-2 shown", "r-2"),
            (None, "django.request", "WARNING", "Not Found: /orders/o-404", None),
            (None, "django.request", "ERROR", "Internal Server Error: /orders/broken", None),
        ],
        key=repr,
    )
    docs = {_doc(r)["message"]: _doc(r) for r in got}
    assert {d["service"] for d in docs.values()} == {"shop"}  # the static field
    failed = docs["Internal Server Error: /orders/broken"]
    assert failed["status_code"] == 500
    assert failed["exception"].endswith("LookupError: order broken is missing from the ledger")
    assert docs["Not Found: /orders/o-404"]["status_code"] == 404


def test_fastapi_under_uvicorn(new_mock_cluster: Callable[..., MockCluster]) -> None:
    cluster = new_mock_cluster(topics={"web-logs": 3})
    output = run_example("recipes/fastapi_uvicorn.py", cluster.bootstrap_servers)
    assert "statuses: [200, 200, 200, 200, 200, 500]" in output, output
    assert "the unhandled exception's traceback arrived: True" in output, output
    got = consume(
        cluster.bootstrap_servers, "web-logs", expected=_read_back_count(output, "web-logs")
    )
    by_logger: dict[str, list[ConsumedRecord]] = {}
    for record in got:
        by_logger.setdefault(_doc(record)["logger"], []).append(record)
    # The application's records: one per request, keyed and headed by its request id.
    app = sorted(
        (r.key, _doc(r)["message"], _header(r, "request_id")) for r in by_logger["shop.api"]
    )
    assert app == [(f"r-{i}".encode(), f"item {i} read", f"r-{i}") for i in range(5)]
    assert {_doc(r)["service"] for r in got} == {"shop-api"}
    # uvicorn's access log: one per request, the failed one too.
    requests = Counter(
        re.sub(r"^\S+ - ", "", _doc(r)["message"]) for r in by_logger["uvicorn.access"]
    )
    expected = {f'"GET /items/{i} HTTP/1.1" 200': 1 for i in range(5)}
    assert requests == {**expected, '"GET /boom HTTP/1.1" 500': 1}
    # uvicorn's own: the traceback once, and what it logged before the lifespan ended.
    errors = [_doc(r) for r in by_logger["uvicorn.error"] if _doc(r)["level"] == "ERROR"]
    assert len(errors) == 1, errors
    assert errors[0]["exception"].endswith("RuntimeError: the inventory service is down")
    messages = Counter(_doc(r)["message"] for r in by_logger["uvicorn.error"])
    for line in ("Application startup complete.", "Shutting down"):
        assert messages[line] == 1, messages


def test_gunicorn_gthread_workers(new_mock_cluster: Callable[..., MockCluster]) -> None:
    cluster = new_mock_cluster(topics={"web-logs": 3})
    output = run_example("recipes/gunicorn_gthread.py", cluster.bootstrap_servers)
    assert "requests answered: 30 of 30; server exit status: 0" in output, output
    assert "duplicated records: 0" in output, output
    got = consume(
        cluster.bootstrap_servers, "web-logs", expected=_read_back_count(output, "web-logs")
    )
    docs = [(r, _doc(r)) for r in got]
    booted = {
        int(m[1]): doc["process"]
        for _, doc in docs
        if (m := re.fullmatch(r"Booting worker with pid: (\d+)", doc["message"]))
    }
    workers = set(booted)
    assert len(workers) == 3, output
    assert all(pid == process for pid, process in booted.items())  # logged by the worker itself
    master = {doc["process"] for _, doc in docs if doc["message"].startswith("Starting gunicorn")}
    assert len(master) == 1
    assert not master & workers
    # Every worker's own records, once each: its readiness and its exit.
    ready = Counter(doc["process"] for _, doc in docs if doc["logger"] == "shop.worker")
    assert ready == dict.fromkeys(workers, 1)
    exiting = Counter(
        (int(m[1]), doc["process"])
        for _, doc in docs
        if (m := re.fullmatch(r"Worker exiting \(pid: (\d+)\)", doc["message"]))
    )
    assert exiting == {(pid, pid): 1 for pid in workers}
    # Every request's record once, from one of the workers, and its access line once.
    served = Counter(
        (r.key, doc["message"], _header(r, "request_id"))
        for r, doc in docs
        if doc["logger"] == "shop.web"
    )
    assert served == {(f"r-{i}".encode(), f"served /orders/{i}", f"r-{i}"): 1 for i in range(30)}
    assert {doc["process"] for _, doc in docs if doc["logger"] == "shop.web"} <= workers
    access = Counter(
        m[1]
        for _, doc in docs
        if doc["logger"] == "gunicorn.access"
        and (m := re.search(r'"GET (\S+) HTTP', doc["message"]))
    )
    assert access == {f"/orders/{i}": 1 for i in range(30)}


def test_celery_tasks(new_mock_cluster: Callable[..., MockCluster]) -> None:
    cluster = new_mock_cluster(topics={"task-logs": 3})
    output = run_example("recipes/celery_tasks.py", cluster.bootstrap_servers)
    assert "read back from task-logs: 8 records" in output, output
    assert "the failed task's traceback arrived: True" in output, output
    got = consume(cluster.bootstrap_servers, "task-logs", expected=8)
    task_ids = {_header(r, "task_id") for r in got}
    assert len(task_ids) == 4
    assert None not in task_ids
    by_task: dict[str | None, list[tuple[bytes | None, str, str]]] = {}
    for record in got:
        doc = _doc(record)
        by_task.setdefault(_header(record, "task_id"), []).append(
            (record.key, doc["logger"], doc["level"])
        )
    outcomes = sorted(sorted(records, key=repr) for records in by_task.values())
    succeeded = [(None, "celery.app.trace", "INFO")]
    assert outcomes == sorted(
        [
            sorted([(b"o-1", "shop.tasks", "INFO"), *succeeded], key=repr),
            sorted([(b"o-2", "shop.tasks", "INFO"), *succeeded], key=repr),
            sorted(
                [(b"o-3", "shop.tasks", "WARNING"), (None, "celery.app.trace", "ERROR")], key=repr
            ),
            sorted([(b"o-4", "shop.tasks", "INFO"), *succeeded], key=repr),
        ]
    )
    for record in got:
        doc = _doc(record)
        task_id = _header(record, "task_id")
        assert doc["task_id"] == task_id
        assert doc["task_name"] == "shop.charge"
        if doc["logger"] == "celery.app.trace":  # Celery names the task and its id
            assert f"shop.charge[{task_id}]" in doc["message"]
        if doc["level"] == "ERROR":
            assert doc["exception"].endswith("ValueError: amount must be positive, got -5")
