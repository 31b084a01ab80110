"""Every example runs as documented, against its own embedded cluster, and reads back what it sent.

Each script exits with 0 only when what it read back is exactly what it
sent; the assertions below check the summary lines it prints too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kafka_sink.testing import MockCluster

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
    ],
)
def test_example(script: str, expected: list[str]) -> None:
    output = run_example(script)
    for text in expected:
        assert text in output, output


@pytest.mark.integration
@pytest.mark.mock
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_prefork_workers_records_arrive_exactly_once() -> None:
    output = run_example("prefork_web_app.py")
    assert "read back from web-logs: 121 records" in output, output
    assert "  master: 1 record\n" in output, output
    per_worker = re.findall(r"worker (\d) \(pid \d+\): 40 records\n", output)
    assert sorted(per_worker) == ["1", "2", "3"], output
    assert "duplicated records: 0; workers that failed: 0" in output, output


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
