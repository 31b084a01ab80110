"""The durable spool end to end: crashes, restarts and outages lose and duplicate nothing.

The crash test runs an application process (:mod:`tests.spool_app`) that
produces keyed, numbered records and reports each number once ``produce()``
returned; it is killed with SIGKILL at a random moment (by the test, at a
time drawn from a seeded RNG) or at a chosen one (by itself: right after a
Produce request was written, when a Produce response arrived before it was
processed, in the middle of a spool write). The next process on the same
``spool_dir`` carries on, and the last one finishes the stream. The oracle
consumer (librdkafka) then checks the topic: every reported number exactly
once, no number twice, and each key's numbers in order.

``SPOOL_CRASH_SEED`` replays a run; the seed in use is printed.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

import kafka_sink
from kafka_sink.producer.spool import inspect_spool
from tests.brokers.kafka23 import Kafka23Cluster
from tests.oracle import ConsumedRecord, consume

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KILLS = 20


def _create_topic(cluster: Kafka23Cluster, name: str, partitions: int = 3) -> None:
    """A topic with 3 replicas and min.insync.replicas=2, like a production one."""
    cluster.create_topic(name, partitions, 3, config={"min.insync.replicas": "2"})


def _start_app(spec: dict[str, Any]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.spool_app", json.dumps(spec)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _accepted(output: bytes) -> tuple[list[int], dict[str, Any] | None]:
    """The numbers whose produce() returned, and the final report if it finished."""
    numbers: list[int] = []
    done = None
    for line in output.split(b"\n"):
        if line.startswith(b"DONE "):
            done = json.loads(line[5:])
        elif line.isdigit():
            numbers.append(int(line))
    return numbers, done


def _check_stream(
    records: list[ConsumedRecord],
    accepted: set[int],
    maybe: set[int],
    keys: int = 8,
    replay: str = "",
) -> None:
    """Every accepted number once, none twice, each key's in order.

    ``replay`` goes into every failure message: how to run the same test again.
    """
    where = f" ({replay})" if replay else ""
    numbers = [int(r.value.split(b":")[0]) for r in records if r.value]
    counts: dict[int, int] = defaultdict(int)
    for n in numbers:
        counts[n] += 1
    duplicated = sorted(n for n, c in counts.items() if c > 1)
    lost = sorted(accepted - set(counts))
    unexpected = sorted(set(counts) - accepted - maybe)
    assert not duplicated, f"{len(duplicated)} records written twice: {duplicated[:20]}{where}"
    assert not lost, f"{len(lost)} accepted records missing: {lost[:20]}{where}"
    assert not unexpected, f"records never produced: {unexpected[:20]}{where}"
    # Sorted by (partition, offset), and each key is in one partition; numbers
    # from a million on come from another process (order is per producer).
    by_key: dict[tuple[bytes, int], list[tuple[int, ConsumedRecord]]] = defaultdict(list)
    for record in records:
        assert record.key is not None
        assert record.value is not None
        number = int(record.value.split(b":")[0])
        by_key[(record.key, number // 1_000_000)].append((number, record))
    for (key, _), placed in by_key.items():
        sequence = [n for n, _ in placed]
        if sequence != sorted(sequence):
            first = next(i for i in range(1, len(sequence)) if sequence[i] < sequence[i - 1])
            around = [
                f"{n}@{r.partition}:{r.offset}" for n, r in placed[max(0, first - 4) : first + 4]
            ]
            raise AssertionError(
                f"key {key!r} out of order at {first}: {around} (number@partition:offset){where}"
            )
        assert int(key[1:]) < keys
        assert all(n % keys == int(key[1:]) for n in sequence)


@pytest.mark.kafka23
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    kafka23_cluster: Kafka23Cluster, topic_name: str, tmp_path: Path
) -> None:
    _create_topic(kafka23_cluster, topic_name)
    seed = int(os.environ.get("SPOOL_CRASH_SEED") or random.randrange(2**32))
    print(f"SPOOL_CRASH_SEED={seed}")
    rng = random.Random(seed)
    kills: list[dict[str, Any]] = (
        [{"random": rng.uniform(0.2, 2.5)} for _ in range(KILLS - 8)]
        + [{"after_request": rng.randint(1, 40)} for _ in range(3)]
        + [{"on_response": rng.randint(1, 40)} for _ in range(3)]
        + [{"mid_write": rng.randint(20, 3000)} for _ in range(2)]
    )
    rng.shuffle(kills)
    spool_dir = tmp_path / "spool"
    base = {
        "servers": kafka23_cluster.bootstrap_servers,
        "spool_dir": str(spool_dir),
        "topic": topic_name,
        "rate": 3000,
    }
    accepted: set[int] = set()
    maybe: set[int] = set()  # produce() may have returned without the number being reported
    start = 0
    moments: list[str] = []
    for kill in kills:
        timed = kill.pop("random", None)
        fsync = rng.choice(["never", "interval"])
        app = _start_app({**base, "start": start, "count": 10**6, "kill": kill, "fsync": fsync})
        try:
            app.wait(timeout=timed if timed is not None else 12)
        except subprocess.TimeoutExpired:
            app.kill()
        out, err = app.communicate(timeout=30)
        assert app.returncode == -9, err.decode(errors="replace")[-3000:]
        numbers, _ = _accepted(out)
        assert numbers == list(range(start, start + len(numbers)))
        accepted.update(numbers)
        maybe.add(start + len(numbers))
        moments.append(f"{kill or f'random {timed:.2f}s'}: {len(numbers)} accepted")
        start += len(numbers) + 1
    app = _start_app({**base, "start": start, "count": 600, "kill": {}})
    out, err = app.communicate(timeout=120)
    assert app.returncode == 0, err.decode(errors="replace")[-3000:]
    numbers, done = _accepted(out)
    assert done is not None
    assert done["left"] == 0, done
    accepted.update(numbers)
    print("\n".join(moments))
    print({k: v for k, v in done["metrics"].items() if k.startswith("spool_")})
    records = consume(
        kafka23_cluster.bootstrap_servers,
        topic_name,
        expected=len(accepted),
        exact=False,
        timeout=60,
    )
    _check_stream(
        records, accepted, maybe, replay=f"SPOOL_CRASH_SEED={seed}; runs: {'; '.join(moments)}"
    )
    # Drained: no log is left but the last process's, which closed empty.
    assert [p.name for p in spool_dir.iterdir()] == []


@pytest.mark.kafka23
def test_two_processes_on_one_directory_write_side_by_side(
    kafka23_cluster: Kafka23Cluster, topic_name: str, tmp_path: Path
) -> None:
    _create_topic(kafka23_cluster, topic_name)
    spool_dir = tmp_path / "spool"
    base = {
        "servers": kafka23_cluster.bootstrap_servers,
        "spool_dir": str(spool_dir),
        "topic": topic_name,
        "rate": 1000,
        "count": 1500,
    }
    first = _start_app({**base, "start": 0, "client_id": "first"})
    second = _start_app({**base, "start": 1_000_000, "client_id": "second"})
    deadline = time.monotonic() + 30
    logs: set[str] = set()
    while time.monotonic() < deadline and len(logs) < 2:
        logs = {p.name for p in spool_dir.iterdir()} if spool_dir.exists() else set()
        time.sleep(0.05)
    assert len(logs) == 2  # one log per live process: neither takes the other's
    outputs = [app.communicate(timeout=120) for app in (first, second)]
    accepted: set[int] = set()
    for app, (out, err) in zip((first, second), outputs, strict=True):
        assert app.returncode == 0, err.decode(errors="replace")[-3000:]
        numbers, done = _accepted(out)
        assert done is not None
        assert done["left"] == 0
        assert done["metrics"]["spool_adopted_logs"] == 0
        accepted.update(numbers)
    assert len(accepted) == 3000
    records = consume(kafka23_cluster.bootstrap_servers, topic_name, expected=3000, timeout=60)
    _check_stream(records, accepted, set())
    assert list(spool_dir.iterdir()) == []


@pytest.mark.kafka23
def test_a_dead_process_spool_is_adopted_and_drained(
    kafka23_cluster: Kafka23Cluster, topic_name: str, tmp_path: Path
) -> None:
    _create_topic(kafka23_cluster, topic_name)
    spool_dir = tmp_path / "spool"
    # The process cannot reach any broker; everything it accepts is on disk when it dies.
    app = _start_app(
        {
            "servers": "127.0.0.1:1",
            "spool_dir": str(spool_dir),
            "topic": topic_name,
            "start": 0,
            "count": 3000,
            "rate": 50_000,
            "buffer_memory": 64 * 1024,
            "flush_timeout": 60,
        }
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if app.poll() is not None:
            break
        logs = list(spool_dir.iterdir()) if spool_dir.exists() else []
        if logs and sum(f.stat().st_size for f in logs[0].iterdir()) > 3000 * 40:
            break
    time.sleep(0.5)  # it is in flush() by now: every produce() has returned
    app.kill()
    out, _ = app.communicate(timeout=30)
    numbers, _ = _accepted(out)
    assert len(numbers) == 3000
    with kafka_sink.Sink(kafka23_cluster.bootstrap_servers, spool_dir=str(spool_dir)) as sink:
        assert sink.flush(60) == 0
        metrics = sink.metrics()
    assert metrics["spool_adopted_logs"] == 1
    assert metrics["spool_replayed_records"] == 3000
    assert metrics["spool_duplicate_risk_records"] == 0
    records = consume(kafka23_cluster.bootstrap_servers, topic_name, expected=3000, timeout=60)
    _check_stream(records, set(numbers), set())
    assert list(spool_dir.iterdir()) == []


# -- on librdkafka's mock cluster (instant outages) ----------------------------------------


@pytest.mark.mock
def test_an_outage_longer_than_the_buffer_loses_nothing(
    new_mock_cluster: Any, topic_name: str, tmp_path: Path
) -> None:
    cluster = new_mock_cluster(3)
    cluster.create_topic(topic_name, 3, 3)
    options: dict[str, Any] = {
        "spool_dir": str(tmp_path / "spool"),
        "buffer_memory": 64 * 1024,
        "spool_segment_bytes": 128 * 1024,
        "linger_ms": 5,
        "retry_backoff_max_ms": 200,
    }
    with kafka_sink.Sink(cluster.bootstrap_servers, **options) as sink:
        sink.produce(topic_name, b"warm-up", key=b"k0").result(10)
        for broker in cluster.broker_ids:
            cluster.broker_down(broker)
        futures = [
            sink.produce(topic_name, b"%d:" % n + b"x" * 200, key=b"k%d" % (n % 8))
            for n in range(4000)
        ]
        during = sink.metrics()
        for broker in cluster.broker_ids:
            cluster.broker_up(broker)
        assert sink.flush(60) == 0
        after = sink.metrics()
    # About 900 KiB of records against a 64 KiB buffer: most waited on disk only.
    assert during["spool_records_on_disk_only"] > 3000
    assert during["records_dropped_total"] == 0
    assert after["records_failed_total"] == 0
    assert all(f.result(5).offset >= 0 for f in futures)
    records = consume(cluster.bootstrap_servers, topic_name, expected=4001)
    _check_stream([r for r in records if r.value != b"warm-up"], set(range(4000)), set())


@pytest.mark.mock
def test_records_left_by_a_closed_sink_go_first_after_a_restart(
    new_mock_cluster: Any, topic_name: str, tmp_path: Path
) -> None:
    cluster = new_mock_cluster(3)
    cluster.create_topic(topic_name, 3, 3)
    spool_dir = str(tmp_path / "spool")
    for broker in cluster.broker_ids:
        cluster.broker_down(broker)
    sink = kafka_sink.Sink(cluster.bootstrap_servers, spool_dir=spool_dir, linger_ms=1)
    for n in range(500):
        sink.enqueue(topic_name, b"%d:" % n, key=b"k%d" % (n % 8))
    sink.close(0.5)  # undelivered: kept on disk
    for broker in cluster.broker_ids:
        cluster.broker_up(broker)
    with kafka_sink.Sink(cluster.bootstrap_servers, spool_dir=spool_dir, linger_ms=1) as sink:
        for n in range(500, 1000):
            sink.enqueue(topic_name, b"%d:" % n, key=b"k%d" % (n % 8))
        assert sink.flush(30) == 0
        metrics = sink.metrics()
    assert metrics["spool_replayed_records"] == 500
    records = consume(cluster.bootstrap_servers, topic_name, expected=1000)
    _check_stream(records, set(range(1000)), set())  # the old ones first, per key


@pytest.mark.mock
def test_a_topic_that_no_longer_exists_goes_to_the_dead_letter_file(
    new_mock_cluster: Any, topic_name: str, tmp_path: Path
) -> None:
    cluster = new_mock_cluster(3)
    cluster.create_topic(topic_name, 1, 3)
    gone = f"{topic_name}-gone"
    cluster.topic_set_error(gone, 3)  # UNKNOWN_TOPIC_OR_PARTITION, every time
    spool_dir = tmp_path / "spool"
    options: dict[str, Any] = {
        "spool_dir": str(spool_dir),
        "delivery_timeout_ms": 1500,
        "linger_ms": 1,
    }
    with kafka_sink.Sink(cluster.bootstrap_servers, **options) as sink:
        lost = [sink.produce(gone, b"%d" % n) for n in range(20)]
        kept = [sink.produce(topic_name, b"%d" % n) for n in range(20)]
        assert sink.flush(30) == 0
        errors = [f.exception(5) for f in lost]
        metrics = sink.metrics()
    assert all(f.result(5).offset >= 0 for f in kept)
    assert all(e is not None and "dead-letter" in e.message for e in errors)
    assert metrics["spool_dead_letter_records"] == 20
    report = inspect_spool(spool_dir)
    assert report["logs"] == []
    assert [(d["records"], d["topics"]) for d in report["dead_letter"]] == [(20, {gone: 20})]
    assert "UNKNOWN_TOPIC_OR_PARTITION" in report["dead_letter"][0]["reasons"][0]


@pytest.mark.mock
def test_the_cli_drains_an_orphaned_spool(
    new_mock_cluster: Any, topic_name: str, tmp_path: Path
) -> None:
    cluster = new_mock_cluster(3)
    cluster.create_topic(topic_name, 3, 3)
    spool_dir = tmp_path / "spool"
    code = f"""
import os, kafka_sink
sink = kafka_sink.Sink("127.0.0.1:1", spool_dir={str(spool_dir)!r})
for n in range(300):
    sink.enqueue({topic_name!r}, b"%d:" % n, key=b"k%d" % (n % 8))
os.kill(os.getpid(), 9)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert result.returncode == -9
    inspect = subprocess.run(
        [
            sys.executable,
            "-m",
            "kafka_sink",
            "spool",
            "inspect",
            str(spool_dir),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert inspect.returncode == 0, inspect.stderr
    described = json.loads(inspect.stdout)
    assert [(log["state"], log["unresolved"]) for log in described["logs"]] == [("orphaned", 300)]
    assert described["logs"][0]["topics"][topic_name]["unresolved"] == 300
    drain = subprocess.run(
        [
            sys.executable,
            "-m",
            "kafka_sink",
            "spool",
            "drain",
            str(spool_dir),
            "-b",
            cluster.bootstrap_servers,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert drain.returncode == 0, drain.stdout + drain.stderr
    assert "300 records" in drain.stdout
    records = consume(cluster.bootstrap_servers, topic_name, expected=300)
    _check_stream(records, set(range(300)), set())
    assert list(spool_dir.iterdir()) == []


@pytest.mark.mock
def test_a_batch_whose_journal_entry_cannot_be_written_waits_unsent(
    new_mock_cluster: Any, topic_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kafka_sink.producer.spool import SpoolLog

    cluster = new_mock_cluster(3)
    cluster.create_topic(topic_name, 3, 3)
    failures = [5]
    real = SpoolLog._journal

    def journal(self: SpoolLog, segment: Any, body: bytes) -> None:
        if failures[0] > 0:
            failures[0] -= 1
            raise OSError(28, "No space left on device")
        real(self, segment, body)

    monkeypatch.setattr(SpoolLog, "_journal", journal)
    options: dict[str, Any] = {
        "spool_dir": str(tmp_path / "spool"),
        "linger_ms": 1,
        "retry_backoff_ms": 10,
    }
    with kafka_sink.Sink(cluster.bootstrap_servers, **options) as sink:
        futures = [sink.produce(topic_name, b"%d:" % n, key=b"k%d" % (n % 8)) for n in range(200)]
        assert sink.flush(30) == 0
        metrics = sink.metrics()
    assert failures == [0]
    assert metrics["broker_errors"].get("spool_journal_error", 0) >= 1
    assert all(f.result(5).offset >= 0 for f in futures)
    records = consume(cluster.bootstrap_servers, topic_name, expected=200)
    _check_stream(records, set(range(200)), set())


@pytest.mark.mock
def test_a_replayed_batch_whose_producer_the_broker_forgot_is_counted(
    new_mock_cluster: Any, topic_name: str, tmp_path: Path
) -> None:
    cluster = new_mock_cluster(3)
    cluster.create_topic(topic_name, 1, 3)
    spool_dir = tmp_path / "spool"
    # The acknowledgement of the second request is lost: its batch is sealed,
    # maybe written, and the journal says so.
    app = _start_app(
        {
            "servers": cluster.bootstrap_servers,
            "spool_dir": str(spool_dir),
            "topic": topic_name,
            "start": 0,
            "count": 10**6,
            "rate": 2000,
            "kill": {"on_response": 2},
        }
    )
    out, err = app.communicate(timeout=60)
    assert app.returncode == -9, err.decode(errors="replace")[-3000:]
    accepted, _ = _accepted(out)
    (log,) = inspect_spool(spool_dir)["logs"]
    (sealed,) = log["sealed_unacknowledged"]
    cluster.push_request_errors(0, [59])  # UNKNOWN_PRODUCER_ID for the next Produce
    with kafka_sink.Sink(cluster.bootstrap_servers, spool_dir=str(spool_dir)) as sink:
        assert sink.flush(30) == 0
        metrics = sink.metrics()
    assert metrics["spool_replayed_batches"] == 1
    assert metrics["broker_errors"].get("UNKNOWN_PRODUCER_ID") == 1
    assert metrics["spool_duplicate_risk_records"] == sealed["records"]
    records = consume(cluster.bootstrap_servers, topic_name, expected=len(accepted), exact=False)
    assert set(accepted) <= {int(r.value.split(b":")[0]) for r in records if r.value}


@pytest.mark.mock
def test_a_record_larger_than_the_buffer_is_still_delivered(
    new_mock_cluster: Any, topic_name: str, tmp_path: Path
) -> None:
    cluster = new_mock_cluster(3)
    cluster.create_topic(topic_name, 1, 3)
    options: dict[str, Any] = {"spool_dir": str(tmp_path / "spool"), "buffer_memory": 16 * 1024}
    with kafka_sink.Sink(cluster.bootstrap_servers, **options) as sink:
        futures = [sink.produce(topic_name, b"%d:" % n + b"z" * 60_000) for n in range(3)]
        assert sink.flush(30) == 0
    assert all(f.result(5).offset >= 0 for f in futures)
    records = consume(cluster.bootstrap_servers, topic_name, expected=3)
    assert [r.value[:2] for r in records if r.value] == [b"0:", b"1:", b"2:"]
