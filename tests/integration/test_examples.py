"""Every example runs as documented, against its own embedded cluster, and reads back what it sent.

Each script exits with 0 only when what it read back is exactly what it
sent (it reads with librdkafka, see examples/_cluster.py); the assertions
below check the summary lines it prints too. Run against a cluster of the
test's own, what each example left in its topics is read again by the
oracle (tests/oracle.py) and compared with what the example sends.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from kafka_sink.testing import MockCluster
from tests.oracle import ConsumedRecord, consume

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ENV_VAR = "KAFKA_SINK_BOOTSTRAP_SERVERS"


def run_example(script: str, bootstrap_servers: str | None = None) -> str:
    """Run ``examples/<script>`` from the repository root; its stdout and stderr."""
    env = {name: value for name, value in os.environ.items() if name != ENV_VAR}
    if bootstrap_servers is not None:
        env[ENV_VAR] = bootstrap_servers
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


@pytest.mark.integration
@pytest.mark.mock
@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param(
            "basic_config.py",
            [
                "3 of 3 records read back",
                '"message":"order o-1001 placed"',
                '"amount":19.99,"user_id":"u-1"',
                "ZeroDivisionError: division by zero",
                "INFO shop.orders: order o-1001 placed",  # the console handler
            ],
            id="basic_config",
        ),
        pytest.param(
            "dict_config_yaml.py",
            [
                "4 of 4 records read back, each with the service field: True",
                "'request_id': 'r-4'",
                "service=billing WARNING card expires soon",
            ],
            id="dict_config_yaml",
        ),
        pytest.param(
            "dict_config_json.py",
            [
                "2 of 2 lines read back",
                "key b'u-7': INFO search.api: query 'red shoes' took 42 ms",
                "key b'u-8': ERROR search.api: index products-v2 unavailable",
            ],
            id="dict_config_json",
        ),
        pytest.param(
            "structlog_standalone.py",
            [
                "4 of 4 events read back",
                "[warning  ] cart_abandoned",  # the console renderer after the processor
                "key b'u-42' headers {'level': 'error', 'host'",
                '"exception": "KeyError: \'SPRING10\'"',
                '"event": "report_ready"',
            ],
            id="structlog_standalone",
        ),
        pytest.param(
            "structlog_stdlib.py",
            [
                "3 of 3 records read back",
                "INFO shop.checkout: order placed {'amount': 42.5, 'order_id': 'o-9'}",
                "'request_id': 'r-7'",
                "ERROR payments.client: gateway answered 503",
            ],
            id="structlog_stdlib",
        ),
        pytest.param(
            "structlog_logger_factory.py",
            [
                "renderer: JSONRenderer(serializer=orjson.dumps) (bytes)",  # in the test extra
                "delivered: 4",
                "4 of 4 events read back",
                "key b'u-42' headers {'level': 'warning', 'logger': 'shop', 'host'",
                '"exception": "KeyError: \'SPRING10\'"',
            ],
            id="structlog_logger_factory",
        ),
        pytest.param(
            "custom_plugin/use_plugin.py",
            [
                "records per topic: {'app-logs': 2, 'audit-logs': 1}; secrets leaked: 0",
                '"password": "***"',
                '"card_number": "***"',
                '"role": "admin", "audit": true',
            ],
            id="custom_plugin",
        ),
        pytest.param(
            "app_events.py",
            [
                "refused before it was sent: amount_cents must be positive, got -5",
                "5 of 5 events read back and validated;",
                "each order's events in the order sent: True",
                "'event-type': 'order.shipped', 'schema-version': '1'",
            ],
            id="app_events",
        ),
        pytest.param(
            "asyncio_app.py",
            [
                "undelivered after flush_async: 0",
                "served 12 requests: 9 x 200, 3 x 404",
                "12 of 12 log records read back from web-logs",
                "key b'r-1': GET /products 200",
                "12 of 12 page views read back from page-views, each where its response said: True",
            ],
            id="asyncio_app",
        ),
    ],
)
def test_example(script: str, expected: list[str]) -> None:
    output = run_example(script)
    for text in expected:
        assert text in output, output


@pytest.mark.integration
@pytest.mark.mock
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_prefork_workers_records_arrive_exactly_once(
    new_mock_cluster: Callable[..., MockCluster],
) -> None:
    cluster = new_mock_cluster(topics={"web-logs": 3})
    output = run_example("prefork_web_app.py", cluster.bootstrap_servers)
    assert "read back from web-logs: 121 records" in output, output
    assert "  master: 1 record\n" in output, output
    workers = dict(re.findall(r"worker (\d) \(pid (\d+)\): 40 records\n", output))
    assert sorted(workers) == ["1", "2", "3"], output
    assert "duplicated records: 0; workers that failed: 0" in output, output
    # What the topic holds, read by the oracle: each worker's 40 requests once,
    # keyed by request id and marked with the worker's pid, and the master's record.
    got = consume(cluster.bootstrap_servers, "web-logs", expected=121)
    by_process = Counter(dict(r.headers).get("worker") for r in got)
    assert by_process == {b"master": 1, **{pid.encode(): 40 for pid in workers.values()}}
    keys = Counter(r.key for r in got)
    expected_keys = [None] + [f"w{n}-{i}".encode() for n in (1, 2, 3) for i in range(40)]
    assert keys == Counter(expected_keys)
    paths = ("/", "/products", "/cart", "/missing")
    for record in got:
        if record.key is not None:
            number = int(record.key.decode().split("-")[1])
            path = paths[number % len(paths)]
            status = "404" if path == "/missing" else "200"
            assert _json(record)["message"] == f"GET {path} {status}", record


@pytest.mark.integration
@pytest.mark.mock
def test_an_example_against_a_cluster_of_your_own(
    new_mock_cluster: Callable[..., MockCluster],
) -> None:
    cluster = new_mock_cluster(topics={"app-logs": 3})
    first = run_example("basic_config.py", cluster.bootstrap_servers)
    # Run again: the records of the first run are in the topic, and left out.
    second = run_example("basic_config.py", cluster.bootstrap_servers)
    for output in (first, second):
        assert f"cluster: {cluster.bootstrap_servers} (${ENV_VAR})" in output
        assert "3 of 3 records read back" in output
    got = consume(cluster.bootstrap_servers, "app-logs", expected=6)
    assert Counter((r.key, _json(r)["message"]) for r in got) == {
        (b"u-1", "order o-1001 placed"): 2,
        (b"u-2", "stock low for sku-42"): 2,
        (b"u-1", "discount failed for o-1001"): 2,
    }


def _json(record: ConsumedRecord) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((record.value or b"").decode("utf-8"))
    return doc


def _parts(record: ConsumedRecord, fields: Sequence[str]) -> tuple[Any, ...]:
    """The key and the chosen parts of ``record``, each named in ``fields``.

    ``value`` is the whole value as text, ``headers`` every header as text,
    ``header:NAME`` one header's value (None when absent); any other name is a
    field of the value as JSON (None when absent).
    """
    parts: list[Any] = [record.key]
    for field in fields:
        if field == "value":
            parts.append((record.value or b"").decode("utf-8"))
        elif field == "headers":
            parts.append([(n, None if v is None else v.decode()) for n, v in record.headers])
        elif field.startswith("header:"):
            value = dict(record.headers).get(field.removeprefix("header:"))
            parts.append(None if value is None else value.decode())
        else:
            parts.append(_json(record).get(field))
    return tuple(parts)


def _asyncio_app_request(number: int) -> tuple[bytes, str, str, int]:
    """The key, request id, path and status of request ``number`` of asyncio_app.py."""
    path = ("/", "/products", "/cart", "/missing")[number % 4]
    return f"r-{number}".encode(), f"r-{number}", path, 404 if path == "/missing" else 200


def _placed(order: str, user: str, cents: int, currency: str, items: list[str]) -> str:
    return json.dumps(
        {
            "order_id": order,
            "user_id": user,
            "amount_cents": cents,
            "currency": currency,
            "items": items,
        },
        separators=(",", ":"),
    )


def _shipped(order: str, carrier: str, tracking: str) -> str:
    return json.dumps(
        {"order_id": order, "carrier": carrier, "tracking": tracking}, separators=(",", ":")
    )


_PLACED_HEADERS = [
    ("event-type", "order.placed"),
    ("schema-version", "2"),
    ("content-type", "application/json"),
]
_SHIPPED_HEADERS = [
    ("event-type", "order.shipped"),
    ("schema-version", "1"),
    ("content-type", "application/json"),
]

# What each example sends, topic by topic, in the order it sends it: per
# record, the key and then the parts named by the fields (see _parts).
SENT: list[Any] = [
    pytest.param(
        "basic_config.py",
        ("message", "level", "user_id", "header:level"),
        {
            "app-logs": [
                (b"u-1", "order o-1001 placed", "INFO", "u-1", "INFO"),
                (b"u-2", "stock low for sku-42", "WARNING", "u-2", "WARNING"),
                (b"u-1", "discount failed for o-1001", "ERROR", "u-1", "ERROR"),
            ]
        },
        id="basic_config",
    ),
    pytest.param(
        "dict_config_yaml.py",
        ("message", "level", "service", "header:request_id"),
        {
            "app-logs": [
                (b"u-1", "invoice 1 sent", "INFO", "billing", "r-1"),
                (b"u-2", "invoice 2 sent", "INFO", "billing", "r-2"),
                (b"u-1", "invoice 3 sent", "INFO", "billing", "r-3"),
                (b"u-2", "card expires soon", "WARNING", "billing", "r-4"),
            ]
        },
        id="dict_config_yaml",
    ),
    pytest.param(
        "dict_config_json.py",
        ("value",),
        {
            "app-logs": [
                (b"u-7", "INFO search.api: query 'red shoes' took 42 ms"),
                (b"u-8", "ERROR search.api: index products-v2 unavailable"),
            ]
        },
        id="dict_config_json",
    ),
    pytest.param(
        "structlog_standalone.py",
        ("event", "level", "header:request_id"),
        {
            "app-events": [
                (b"u-42", "user_logged_in", "info", "r-17"),
                (b"u-42", "cart_abandoned", "warning", "r-17"),
                (b"u-42", "coupon_lookup_failed", "error", "r-17"),
                (b"u-7", "report_ready", "info", None),
            ]
        },
        id="structlog_standalone",
    ),
    pytest.param(
        "structlog_stdlib.py",
        ("message", "logger", "level", "order_id", "header:request_id"),
        {
            "app-logs": [
                (b"u-1", "order placed", "shop.checkout", "INFO", "o-9", "r-7"),
                (b"u-1", "payment retried", "shop.checkout", "WARNING", None, "r-7"),
                (None, "gateway answered 503", "payments.client", "ERROR", None, None),
            ]
        },
        id="structlog_stdlib",
    ),
    pytest.param(
        "structlog_logger_factory.py",
        ("event", "level", "header:level", "header:logger", "header:request_id"),
        {
            "app-events": [
                (b"u-42", "user_logged_in", "info", "info", "shop", "r-17"),
                (b"u-42", "cart_abandoned", "warning", "warning", "shop", "r-17"),
                (b"u-42", "coupon_lookup_failed", "error", "error", "shop", "r-17"),
                (b"u-7", "report_ready", "info", "info", "shop", None),
            ]
        },
        id="structlog_logger_factory",
    ),
    pytest.param(
        "custom_plugin/use_plugin.py",
        ("value",),
        {
            "app-logs": [
                (
                    None,
                    '{"level": "INFO", "logger": "accounts", "message": "signup", '
                    '"user": "ada", "password": "***"}',
                ),
                (
                    None,
                    '{"level": "INFO", "logger": "accounts", "message": "payment", '
                    '"user": "ada", "card_number": "***"}',
                ),
            ],
            "audit-logs": [
                (
                    None,
                    '{"level": "WARNING", "logger": "accounts", "message": "role changed", '
                    '"user": "ada", "role": "admin", "audit": true}',
                ),
            ],
        },
        id="custom_plugin",
    ),
    pytest.param(
        "app_events.py",
        ("value", "headers"),
        {
            "shop-events": [
                (
                    b"order-1",
                    _placed("order-1", "user-7", 4999, "EUR", ["sku-1", "sku-2"]),
                    _PLACED_HEADERS,
                ),
                (b"order-2", _placed("order-2", "user-8", 1250, "USD", ["sku-3"]), _PLACED_HEADERS),
                (b"order-1", _shipped("order-1", "dhl", "JD0001"), _SHIPPED_HEADERS),
                (b"order-3", _placed("order-3", "user-7", 800, "EUR", ["sku-4"]), _PLACED_HEADERS),
                (b"order-2", _shipped("order-2", "ups", "1Z999"), _SHIPPED_HEADERS),
            ]
        },
        id="app_events",
    ),
    pytest.param(
        "asyncio_app.py",
        ("message", "level", "request_id", "path", "status"),
        {
            # The log record of each request, and its page view (no message, no level).
            "web-logs": [
                (key, f"GET {path} {status}", "INFO", request_id, None, None)
                for key, request_id, path, status in map(_asyncio_app_request, range(12))
            ],
            "page-views": [
                (key, None, None, request_id, path, status)
                for key, request_id, path, status in map(_asyncio_app_request, range(12))
            ],
        },
        id="asyncio_app",
    ),
]


@pytest.mark.integration
@pytest.mark.mock
@pytest.mark.parametrize(("script", "fields", "sent"), SENT)
def test_the_topics_hold_what_the_example_sent(
    new_mock_cluster: Callable[..., MockCluster],
    script: str,
    fields: tuple[str, ...],
    sent: Mapping[str, list[tuple[Any, ...]]],
) -> None:
    cluster = new_mock_cluster(topics=dict.fromkeys(sent, 3))
    output = run_example(script, cluster.bootstrap_servers)
    for topic, rows in sent.items():
        got = consume(cluster.bootstrap_servers, topic, expected=len(rows))
        arrived = [_parts(record, fields) for record in got]
        assert sorted(arrived, key=repr) == sorted(rows, key=repr), output
        # Records of one key share a partition, so they arrive in the order sent.
        for key in {row[0] for row in rows if row[0] is not None}:
            assert [a for a in arrived if a[0] == key] == [r for r in rows if r[0] == key]


def test_the_readme_lists_every_example() -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    scripts = [
        path.relative_to(EXAMPLES).as_posix()
        for path in sorted(EXAMPLES.rglob("*.py"))
        if not path.name.startswith("_") and "src" not in path.parts
    ]
    assert len(scripts) >= 9
    for script in scripts:
        assert f"]({script})" in readme, script
