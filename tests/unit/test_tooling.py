"""The code base stays mypy-strict and ruff-clean: checked by the test run itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OTLP = "plugins/kafka-sink-otlp"


@pytest.mark.parametrize(
    "command",
    [
        # pyproject.toml's [tool.mypy] files: the library, the plugins, and their tests,
        [sys.executable, "-m", "mypy"],
        # but for the tests of one plugin: their conftest.py would be a second top-level
        # module "conftest" in the same run (each plugin's tests folder is no package).
        [sys.executable, "-m", "mypy", f"{OTLP}/src", f"{OTLP}/tests"],
        [sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."],
        [sys.executable, "-m", "ruff", "format", "--check", "."],
    ],
    ids=["mypy-strict", "mypy-strict-otlp-tests", "ruff-check", "ruff-format"],
)
def test_static_checks_pass(command: list[str]) -> None:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
