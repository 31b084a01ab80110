"""examples/metrics_exporter.py runs as documented and reads back the exact values.

Run against a cluster of the test's own, the topic is read again by the
oracle (tests/oracle.py): it holds exactly the records the example reports
as delivered, and the last export in it carries the values the example printed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kafka_sink.testing import MockCluster
from tests.oracle import ConsumedRecord, consume

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


def _series(name: str, labels: dict[str, str]) -> str:
    """A series as the example prints it: name{label="value",...}, labels sorted."""
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _last_export_json(records: list[ConsumedRecord]) -> tuple[int, dict[str, float]]:
    """How many exports, and per series the value of the last one (counters, gauges;
    a histogram's count)."""
    samples = [json.loads(line) for r in records for line in (r.value or b"").splitlines()]
    for record in records:
        doc = json.loads(record.value or b"")
        assert (record.key or b"").decode() == _series(doc["name"], doc["labels"]), record
    last = max(sample["ts"] for sample in samples)
    values = {
        _series(s["name"], s["labels"]): float(s["value"] if "value" in s else s["count"])
        for s in samples
        if s["ts"] == last
    }
    return len({sample["ts"] for sample in samples}), values


def _last_export_influx(records: list[ConsumedRecord]) -> tuple[int, dict[str, float]]:
    """The same from influx line protocol records, one snapshot each."""
    snapshots: dict[int, dict[str, float]] = {}
    for record in records:
        for line in (record.value or b"").decode().splitlines():
            series, fields, stamp = line.split(" ")
            name, *tags = series.split(",")
            labels = dict(tag.split("=", 1) for tag in tags)
            values = dict(field.split("=", 1) for field in fields.split(","))
            value = next(values[k] for k in ("counter", "gauge", "count") if k in values)
            snapshots.setdefault(int(stamp), {})[_series(name, labels)] = float(value)
    assert len(snapshots) == len(records)  # one record per snapshot
    return len(snapshots), snapshots[max(snapshots)]


@pytest.mark.parametrize(
    ("arguments", "encoding"),
    [([], "json"), (["--encoding", "influx", "--per", "snapshot"], "influx")],
    ids=["json-per-series", "influx-per-snapshot"],
)
def test_the_topic_holds_what_the_example_reports(
    new_mock_cluster: Callable[..., MockCluster], arguments: list[str], encoding: str
) -> None:
    cluster = new_mock_cluster(topics={"app-metrics": 3})
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--bootstrap-servers",
            cluster.bootstrap_servers,
            *arguments,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    counts = re.search(
        r"(\d+) exports, (\d+) records produced, (\d+) delivered, (\d+) dropped", output
    )
    assert counts is not None, output
    exports, produced, delivered, dropped = map(int, counts.groups())
    assert (produced, dropped) == (delivered, 0), output
    got = consume(cluster.bootstrap_servers, "app-metrics", expected=delivered)
    assert {tuple(r.headers) for r in got} == {(("metrics-encoding", encoding.encode()),)}
    read = _last_export_json(got) if encoding == "json" else _last_export_influx(got)
    # What the example printed of the last export: counters and gauges, histogram counts.
    printed = {
        series: float(value)
        for series, value in re.findall(
            r"^    (\S+) (?:counter |gauge |histogram count=)([0-9.e+-]+)", result.stdout, re.M
        )
    }
    assert len(printed) >= 3, output
    assert read == (exports, printed)
