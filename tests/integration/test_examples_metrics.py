"""examples/metrics_exporter.py runs as documented and reads back the exact values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "metrics_exporter.py"

pytestmark = [pytest.mark.integration, pytest.mark.mock]  # it starts its own mock cluster


@pytest.mark.parametrize(
    "arguments",
    [[], ["--encoding", "influx", "--per", "snapshot"]],
    ids=["json-per-series", "influx-per-snapshot"],
)
def test_the_example_reads_back_exact_values(arguments: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "series read back with the application's exact values" in result.stdout
    assert 'http_requests_total{code="200",route="/",service="example-shop"} counter' in (
        result.stdout
    )
    assert 'http_request_seconds{service="example-shop"} histogram count=' in result.stdout
