"""The example runs as documented, against its own embedded cluster, and finds the request whole."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[1]
REPOSITORY = PLUGIN.parents[1]


@pytest.mark.integration
@pytest.mark.mock
def test_correlated_request() -> None:
    result = subprocess.run(
        [sys.executable, str(PLUGIN / "examples" / "correlated_request.py")],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(r"trace [0-9a-f]{32}: 3 spans in otlp_spans partitions \[\d\]", output), output
    assert "4 log records in otlp_logs" in output
    assert "correlated: 4 of 4 log records under their spans; spans and logs share" in output
    # Each log record printed under the span it was written in.
    lines = output.splitlines()
    charge = next(i for i, line in enumerate(lines) if "payment.charge" in line)
    assert "card needs 3-D Secure" in lines[charge + 1]
    assert "charged 59.90 EUR" in lines[charge + 2]
