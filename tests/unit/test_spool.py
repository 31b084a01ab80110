"""The spool's files, locks and bounds, with a Sink that reaches no broker.

Nothing here is delivered: with an unreachable bootstrap server every record
accepted stays in the spool, which is what these tests look at. Delivery,
replay and crashes are in ``tests/integration/test_spool.py``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kafka_sink
from kafka_sink import BufferFullError, InvalidArgumentError, SinkConfig, SpoolError
from kafka_sink.producer.spool import LOCK_FILE, Spool, analyze_log, inspect_spool
from kafka_sink.protocol.spool_format import (
    FORMAT_VERSION,
    HEADER_SIZE,
    KIND_JOURNAL,
    SegmentHeader,
)

NOWHERE = "127.0.0.1:1"  # nothing listens: records stay in the spool


def _sink(spool_dir: Path, **options: Any) -> kafka_sink.Sink:
    return kafka_sink.Sink(NOWHERE, spool_dir=str(spool_dir), **options)


def _logs(spool_dir: Path) -> list[Path]:
    return sorted(p for p in spool_dir.iterdir() if p.is_dir() and p.name != "dead-letter")


def _held(log: Path) -> bool:
    fd = os.open(log / LOCK_FILE, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _settle(sink: kafka_sink.Sink, futures: list[Any]) -> None:
    """Wait until the sender thread told every dropped record's future."""
    deadline = time.monotonic() + 5
    while sum(f.done() for f in futures) < sink.metrics()["records_dropped_total"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def _fill(sink: kafka_sink.Sink, count: int, topic: str = "logs") -> None:
    for n in range(count):
        sink.enqueue(topic, b"record %d" % n, key=b"k%d" % (n % 4))


@contextlib.contextmanager
def _mounted(path: Path, options: str) -> Iterator[Path]:
    """A small tmpfs at ``path`` (as root); skips the test where mounting is not allowed."""
    path.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


# -- options ------------------------------------------------------------------------------


def test_the_options_are_checked() -> None:
    with pytest.raises(InvalidArgumentError, match="spool_fsync"):
        SinkConfig.build(NOWHERE, spool_dir="/tmp/x", spool_fsync="sometimes")
    with pytest.raises(InvalidArgumentError, match="spool_max_bytes"):
        SinkConfig.build(NOWHERE, spool_segment_bytes=1 << 20, spool_max_bytes=1 << 20)
    with pytest.raises(InvalidArgumentError, match="spool_segment_bytes"):
        SinkConfig.build(NOWHERE, spool_segment_bytes=100)
    with pytest.raises(InvalidArgumentError, match="spool_dir"):
        SinkConfig.build(NOWHERE, spool_dir="")
    config = SinkConfig.from_mapping(
        {"bootstrap_servers": NOWHERE},
        environ={"KAFKA_SINK_SPOOL_DIR": "/var/spool/app", "KAFKA_SINK_SPOOL_FSYNC": "always"},
    )
    assert (config.spool_dir, config.spool_fsync) == ("/var/spool/app", "always")


def test_a_spooled_sink_takes_the_python_path(tmp_path: Path) -> None:
    with _sink(tmp_path) as sink:
        assert sink._core is None
        assert "produce" not in vars(sink)  # the method, not the compiled one
        assert sink._append == sink._accumulator._append_spooled


def test_the_integrations_pass_the_option_on(tmp_path: Path) -> None:
    handler = kafka_sink.KafkaHandler(
        "app-logs", bootstrap_servers=NOWHERE, sink_options={"spool_dir": str(tmp_path)}
    )
    try:
        handler.emit(logging.LogRecord("app", logging.INFO, __file__, 1, "on disk", None, None))
        assert handler.sink.config.spool_dir == str(tmp_path)
        assert handler.sink.metrics()["spool_records_unresolved"] == 1
    finally:
        handler.close()


# -- one log per process, locked ------------------------------------------------------------


def test_each_sink_writes_a_log_of_its_own_under_a_lock(tmp_path: Path) -> None:
    first, second = _sink(tmp_path), _sink(tmp_path)
    _fill(first, 10)
    _fill(second, 5)
    logs = _logs(tmp_path)
    assert len(logs) == 2
    assert all(_held(log) for log in logs)
    assert first.metrics()["spool_adopted_logs"] == 0  # a live log is never taken
    assert second.metrics()["spool_adopted_logs"] == 0
    first.close(0.1)
    second.close(0.1)
    # Undelivered: both logs stay, unlocked, for the next Sink.
    assert [_held(log) for log in _logs(tmp_path)] == [False, False]
    counts = sorted(analyze_log(log).plan.unresolved for log in _logs(tmp_path))
    assert counts == [5, 10]


def test_a_log_left_behind_is_adopted_and_the_emptied_one_deleted(tmp_path: Path) -> None:
    first = _sink(tmp_path)
    _fill(first, 20)
    first.close(0.1)
    (old,) = _logs(tmp_path)
    second = _sink(tmp_path)
    metrics = second.metrics()
    assert metrics["spool_adopted_logs"] == 1
    assert metrics["records_incomplete"] == 20
    assert _held(old)
    second.close(0.1)
    # The adopted log still holds its 20 records; the second Sink's own was empty.
    assert _logs(tmp_path) == [old]
    assert analyze_log(old).plan.unresolved == 20


def test_a_forked_child_never_writes_to_its_parents_log(tmp_path: Path) -> None:
    sink = _sink(tmp_path)
    _fill(sink, 10)
    (parent_log,) = _logs(tmp_path)
    before = {p.name: p.read_bytes() for p in parent_log.iterdir() if p.name != LOCK_FILE}
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        try:
            _fill(sink, 7)
            sink.close(0.1)
            os.write(write, b"ok")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 2) == b"ok"
    os.close(read)
    os.waitpid(pid, 0)
    logs = _logs(tmp_path)
    assert len(logs) == 2
    child_log = next(log for log in logs if log != parent_log)
    assert analyze_log(child_log).plan.unresolved == 7
    after = {p.name: p.read_bytes() for p in parent_log.iterdir() if p.name != LOCK_FILE}
    assert after == before
    assert _held(parent_log)  # the child let go of its copy, never of the parent's lock
    sink.close(0.1)
    assert not _held(parent_log)
    assert analyze_log(parent_log).plan.unresolved == 10


def test_the_lock_dies_with_the_process(tmp_path: Path) -> None:
    code = f"""
import os, kafka_sink
sink = kafka_sink.Sink({NOWHERE!r}, spool_dir={str(tmp_path)!r})
for n in range(30):
    sink.enqueue("logs", b"%d" % n)
os.kill(os.getpid(), 9)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert result.returncode == -9, result.stderr
    (log,) = _logs(tmp_path)
    assert not _held(log)
    assert analyze_log(log).plan.unresolved == 30
    report = inspect_spool(tmp_path)
    assert [(entry["state"], entry["unresolved"]) for entry in report["logs"]] == [("orphaned", 30)]


# -- bad input -------------------------------------------------------------------------------


def test_a_read_only_directory_is_a_clear_error(tmp_path: Path) -> None:
    with _mounted(tmp_path / "ro", "ro,size=1m") as root:
        with pytest.raises(SpoolError, match="Read-only file system") as raised:
            _sink(root / "spool")
        assert str(root / "spool") in raised.value.message
        with pytest.raises(SpoolError, match="Read-only file system"):
            _sink(root)


def test_a_spool_dir_that_cannot_be_written_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_mkdir = os.mkdir

    def refuse(path: Any, *args: Any, **kwargs: Any) -> None:
        if str(path).startswith(str(tmp_path)):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", refuse)
    with pytest.raises(SpoolError, match="Permission denied"):
        _sink(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_no_room_for_a_first_segment_is_a_clear_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: Spool, fd: int, size: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Spool, "allocate", full)
    with pytest.raises(SpoolError, match="No space left on device"):
        _sink(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_refuses_new_records_and_keeps_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = [0]
    real = Spool.allocate

    def fill_up(self: Spool, fd: int, size: int) -> None:
        calls[0] += 1
        if calls[0] > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, fd, size)

    monkeypatch.setattr(Spool, "allocate", fill_up)
    sink = _sink(tmp_path, spool_segment_bytes=4096)
    futures = [sink.produce("logs", b"x" * 100) for _ in range(200)]
    futures[-1].exception(5)  # refusals are told on the sender thread, in order
    metrics = sink.metrics()
    refused = [f for f in futures if f.done()]
    assert refused, "some records must have been refused"
    for future in refused:
        error = future.exception(5)
        assert isinstance(error, BufferFullError)
        assert "No space left on device" in error.message
    accepted = len(futures) - len(refused)
    assert metrics["records_dropped"] == {"spool_disk_full_drop_oldest": len(refused)}
    sink.close(0.1)
    (log,) = _logs(tmp_path)
    assert analyze_log(log).plan.unresolved == accepted


def test_a_real_full_disk(tmp_path: Path) -> None:
    with _mounted(tmp_path / "small", "size=256k") as root:
        sink = _sink(root, spool_segment_bytes=32 * 1024)
        futures = [sink.produce("logs", b"y" * 500) for _ in range(1000)]
        futures[-1].exception(5)  # refusals are told on the sender thread, in order
        refused = sum(1 for f in futures if f.done())
        assert 0 < refused < 1000
        assert sink.metrics()["records_dropped"].get("spool_disk_full_drop_oldest") == refused
        sink.close(0.1)
        (log,) = _logs(root)
        assert analyze_log(log).plan.unresolved == 1000 - refused


def test_a_segment_of_a_newer_format_is_refused_and_left_alone(tmp_path: Path) -> None:
    first = _sink(tmp_path)
    _fill(first, 5)
    first.close(0.1)
    (log,) = _logs(tmp_path)
    segment = next(log.glob("*.seg"))
    data = bytearray(segment.read_bytes())
    data[8] = FORMAT_VERSION + 1
    segment.write_bytes(bytes(data))
    before = {p: p.read_bytes() for p in log.iterdir()}
    with pytest.raises(SpoolError, match=f"format version {FORMAT_VERSION + 1}") as raised:
        _sink(tmp_path)
    assert "newer kafka_sink" in raised.value.message
    assert {p: p.read_bytes() for p in log.iterdir()} == before
    assert _logs(tmp_path) == [log]  # no log of its own left behind either
    assert not _held(log)


def test_garbage_in_the_directory_is_left_alone(tmp_path: Path) -> None:
    first = _sink(tmp_path)
    _fill(first, 5)
    first.close(0.1)
    (log,) = _logs(tmp_path)
    (tmp_path / "README.txt").write_text("not ours")
    (tmp_path / "some-dir").mkdir()
    (log / "notes.txt").write_text("not ours either")
    (log / "0000000000000099.seg").write_bytes(b"garbage" * 20)
    second = _sink(tmp_path)
    metrics = second.metrics()
    assert metrics["spool_adopted_logs"] == 1
    assert metrics["records_incomplete"] == 5
    assert metrics["spool_foreign_files"] == 4
    second.close(0.1)
    assert (tmp_path / "README.txt").read_text() == "not ours"
    assert (tmp_path / "some-dir").is_dir()
    assert (log / "notes.txt").exists()
    assert (log / "0000000000000099.seg").read_bytes() == b"garbage" * 20


def test_what_a_crash_left_half_made_is_cleaned_up(tmp_path: Path) -> None:
    first = _sink(tmp_path)
    _fill(first, 5)
    first.close(0.1)
    (log,) = _logs(tmp_path)
    log_id = SegmentHeader.decode(next(log.glob("*.seg")).read_bytes()).log_id
    unstarted = log / "0000000000000042.seg"  # allocated, its header never written
    unstarted.write_bytes(b"\x00" * 8192)
    orphan = log / "0000000000000041.jrn"  # its segment was deleted first
    orphan.write_bytes(SegmentHeader(KIND_JOURNAL, log_id, 41, 0, 0).encode())
    second = _sink(tmp_path)
    assert second.metrics()["records_incomplete"] == 5
    assert second.metrics()["spool_foreign_files"] == 0
    assert not unstarted.exists()
    assert not orphan.exists()
    second.close(0.1)


@pytest.mark.parametrize("tear", ["half a frame", "garbage", "flipped byte"])
def test_a_torn_tail_is_cut_off_and_counted(tmp_path: Path, tear: str) -> None:
    first = _sink(tmp_path)
    _fill(first, 50)
    first.close(0.1)
    (log,) = _logs(tmp_path)
    segment = next(log.glob("*.seg"))
    data = bytearray(segment.read_bytes())
    whole = 50
    if tear == "half a frame":
        data += b"\x30\x00\x00\x00\x01\x02\x03\x04" + b"\x01" * 10
    elif tear == "garbage":
        data += os.urandom(300)
    else:
        data[-3] ^= 0xFF  # inside the last record
        whole = 49
    segment.write_bytes(bytes(data))
    second = _sink(tmp_path)
    metrics = second.metrics()
    assert metrics["spool_truncated_entries"] == 1
    assert metrics["spool_truncated_bytes"] > 0
    assert metrics["records_incomplete"] == whole
    second.close(0.1)


# -- spool_max_bytes and on_buffer_full -----------------------------------------------------


def _small(tmp_path: Path, policy: str, **options: Any) -> kafka_sink.Sink:
    return _sink(
        tmp_path,
        spool_segment_bytes=4096,
        spool_max_bytes=8192,
        on_buffer_full=policy,
        **options,
    )


def test_drop_newest_refuses_records_once_the_spool_is_full(tmp_path: Path) -> None:
    sink = _small(tmp_path, "drop_newest")
    futures = [sink.produce("logs", b"%05d" % n + b"." * 100) for n in range(200)]
    futures[-1].exception(5)  # refusals are told on the sender thread, in order
    accepted = [f for f in futures if not f.done()]
    assert 20 < len(accepted) < 100
    assert futures[: len(accepted)] == accepted  # the first ones were kept
    error = futures[-1].exception(5)
    assert isinstance(error, BufferFullError)
    assert "the spool is full (spool_max_bytes=8192 bytes)" in error.message
    metrics = sink.metrics()
    assert metrics["records_dropped"] == {"spool_full_drop_newest": 200 - len(accepted)}
    assert metrics["spool_bytes"] <= 8192
    sink.close(0.1)


def test_block_waits_for_room_then_refuses(tmp_path: Path) -> None:
    sink = _small(tmp_path, "block", max_block_ms=50)
    for _ in range(60):  # about two segments' worth
        sink.produce("logs", b"." * 100)
    started = time.monotonic()
    while sink.metrics()["records_dropped_total"] == 0:
        sink.produce("logs", b"." * 100)
        assert time.monotonic() - started < 5
    assert time.monotonic() - started >= 0.045
    last = sink.produce("logs", b"." * 100)
    failure = last.exception(5)
    assert isinstance(failure, BufferFullError)
    assert "the spool is full" in failure.message
    assert sink.metrics()["records_dropped"]["spool_full_block"] == 2
    sink.close(0.1)


def test_drop_oldest_evicts_unsent_records_to_free_whole_segments(tmp_path: Path) -> None:
    sink = _small(tmp_path, "drop_oldest")
    futures = [sink.produce("logs", b"%05d" % n + b"." * 100) for n in range(300)]
    _settle(sink, futures)
    assert not futures[-1].done()  # the newest are kept
    evicted = [f for f in futures if f.done()]
    assert futures[0] in evicted
    error = evicted[0].exception(5)
    assert isinstance(error, BufferFullError)
    assert "evicted by a newer record: the spool was full" in error.message
    metrics = sink.metrics()
    assert metrics["records_dropped"] == {"buffer_full_drop_oldest": len(evicted)}
    assert metrics["spool_bytes"] <= 8192
    assert metrics["records_incomplete"] == 300 - len(evicted)
    sink.close(0.1)
    (log,) = _logs(tmp_path)
    assert analyze_log(log).plan.unresolved == 300 - len(evicted)


def test_records_beyond_the_buffer_wait_on_disk(tmp_path: Path) -> None:
    sink = _sink(tmp_path, buffer_memory=4096)
    _fill(sink, 500)
    metrics = sink.metrics()
    assert metrics["records_dropped_total"] == 0
    assert metrics["records_incomplete"] == 500
    assert metrics["spool_records_on_disk_only"] > 450
    assert metrics["buffer_bytes_used"] <= 4096
    sink.close(0.1)


# -- fsync and metrics ----------------------------------------------------------------------


def test_interval_fsync_runs_in_the_background(tmp_path: Path) -> None:
    sink = _sink(tmp_path, spool_fsync="interval", spool_fsync_interval_ms=20)
    _fill(sink, 10)
    deadline = time.monotonic() + 5
    while sink.metrics()["spool_fsyncs"] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sink.metrics()["spool_fsyncs"] >= 2
    sink.close(0.1)


def test_always_fsync_writes_through(tmp_path: Path) -> None:
    sink = _sink(tmp_path, spool_fsync="always")
    _fill(sink, 10)
    (log,) = _logs(tmp_path)
    assert analyze_log(log).plan.unresolved == 10
    sink.close(0.1)


def test_metrics_describe_the_spool(tmp_path: Path) -> None:
    sink = _sink(tmp_path, spool_segment_bytes=4096)
    sink.enqueue("logs", b"first", timestamp=int(time.time() * 1000) - 60_000)
    for _ in range(100):
        sink.enqueue("logs", b"." * 100)
    metrics = sink.metrics()
    assert metrics["spool_segments"] >= 3
    assert metrics["spool_bytes"] >= HEADER_SIZE * 3
    assert metrics["spool_records_unresolved"] == 101
    assert 59 <= metrics["spool_oldest_record_age_s"] < 120
    for name in (
        "spool_replayed_records",
        "spool_truncated_entries",
        "spool_duplicate_risk_records",
        "spool_dead_letter_records",
    ):
        assert metrics[name] == 0
    assert metrics["spool_dir"].startswith(str(tmp_path))
    sink.close(0.1)


def test_inspect_describes_without_changing_anything(tmp_path: Path) -> None:
    sink = _sink(tmp_path)
    _fill(sink, 12, topic="events")
    report = inspect_spool(tmp_path)
    (entry,) = report["logs"]
    assert entry["state"] == "live"
    assert entry["unresolved"] == 12
    assert entry["topics"]["events"]["unresolved"] == 12
    assert entry["owner"]["pid"] == os.getpid()
    sink.close(0.1)
    (log,) = _logs(tmp_path)
    assert inspect_spool(log)["logs"][0]["state"] == "orphaned"
    before = sorted((p.name, p.stat().st_size) for p in log.iterdir())
    result = subprocess.run(
        [sys.executable, "-m", "kafka_sink", "spool", "inspect", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "orphaned" in result.stdout
    assert "topic events: 12 undelivered" in result.stdout
    assert sorted((p.name, p.stat().st_size) for p in log.iterdir()) == before


def test_the_cli_refuses_a_missing_directory() -> None:
    missing = f"/nonexistent-{uuid.uuid4().hex}"
    result = subprocess.run(
        [sys.executable, "-m", "kafka_sink", "spool", "inspect", missing],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "is not a directory" in result.stderr
