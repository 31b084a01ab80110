"""``python -m kafka_sink demo``: the README's first command, at a small size.

The demo's own checks make it exit 1 when what it read back differs from
what it logged; these tests parse its summary and check the arithmetic too.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kafka_sink.cli import main
from kafka_sink.testing import MockCluster

ROOT = Path(__file__).resolve().parents[2]
TOPICS = ("demo-logs", "demo-events", "demo-metrics")


def run_demo(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kafka_sink", "demo", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def counts(text: str) -> dict[str, int]:
    """``"INFO 93, WARNING 2"`` or ``"0: 23, 1: 40"`` as a dict."""
    pairs = (re.fullmatch(r"(\S+?):? (\d+)", part.strip()) for part in text.split(","))
    return {m[1]: int(m[2]) for m in pairs if m}


def topic_counts(output: str, topic: str) -> tuple[int, dict[str, int]]:
    """A topic's record count and its records per partition, from the summary."""
    match = re.search(rf"^  {topic} +(\d+) records  partitions (.+)$", output, re.M)
    assert match, output
    return int(match[1]), counts(match[2])


@pytest.mark.integration
@pytest.mark.mock
def test_the_demo_reads_back_exactly_what_it_logged() -> None:
    result = run_demo("--messages", "150", "--seconds", "1")
    output = result.stdout
    assert result.returncode == 0, output + result.stderr

    served = re.search(
        r"^served (\d+) requests in .*: (\d+) log records, (\d+) events, ", output, re.M
    )
    assert served, output
    assert int(served[1]) == int(served[2]) == 150
    events_logged = int(served[3])

    logs, log_partitions = topic_counts(output, "demo-logs")
    assert logs == sum(log_partitions.values()) == 150
    assert set(log_partitions) <= {"0", "1", "2"}
    levels = re.search(r"^ +levels +(.+) \(as logged\)$", output, re.M)
    assert levels, output
    by_level = counts(levels[1])
    assert set(by_level) <= {"INFO", "WARNING", "ERROR"}
    assert sum(by_level.values()) == 150

    events, event_partitions = topic_counts(output, "demo-events")
    assert events == sum(event_partitions.values()) == events_logged > 0
    names = re.search(r"^ +events +(.+) \(as logged\)$", output, re.M)
    assert names, output
    assert sum(counts(names[1]).values()) == events

    metrics = re.search(r"^  demo-metrics +(\d+) records  from (\d+) exports?$", output, re.M)
    assert metrics, output
    assert int(metrics[1]) > 0
    assert int(metrics[2]) >= 1
    requests = re.search(r"demo_requests_total +by status (.+) \(summed", output)
    assert requests, output
    assert sum(counts(requests[1]).values()) == 150
    assert re.search(r"demo_request_seconds +count 150, ", output), output

    # Three samples of the log topic (one per level present) and two events, with keys and headers.
    assert re.search(r"^  demo-logs partition \d offset \d+  key user-\d+$", output, re.M), output
    assert re.search(
        r"^    headers  level=\w+ logger=demo\.http host=\S+ request_id=req-", output, re.M
    )
    assert '"event": "order_placed"' in output

    sink = re.search(r"^  records  sent (\d+), failed (\d+), dropped (\d+)", output, re.M)
    assert sink, output
    assert int(sink[1]) == logs + events + int(metrics[1])
    assert (int(sink[2]), int(sink[3])) == (0, 0)
    assert re.search(r"^  latency  p50 [\d.]+ ms, p99 [\d.]+ ms", output, re.M), output
    assert "kafka_sink's own reader read the same" in output
    assert output.rstrip().endswith(
        "OK: every record logged arrived exactly once; none failed or was dropped"
    )

    # stderr is a pipe here: whole progress lines, no carriage returns.
    assert "\r" not in result.stderr
    assert " 150/150 requests " in result.stderr.splitlines()[-1]


@pytest.mark.integration
@pytest.mark.mock
def test_the_demo_counts_only_its_own_records_on_a_cluster_of_your_own(
    new_mock_cluster: Callable[..., MockCluster],
) -> None:
    cluster = new_mock_cluster(topics=dict.fromkeys(TOPICS, 3))
    for _ in range(2):  # the second run finds the first run's records in the topics
        result = run_demo("-b", cluster.bootstrap_servers, "--messages", "40", "--seconds", "0.5")
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"cluster      {cluster.bootstrap_servers}" in result.stdout
        assert topic_counts(result.stdout, "demo-logs")[0] == 40


@pytest.mark.parametrize("size", ["0", "-3", "1000001"])
def test_a_bad_number_of_messages_is_a_usage_error(
    size: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--messages", size]) == 2
    assert "--messages" in capsys.readouterr().err
