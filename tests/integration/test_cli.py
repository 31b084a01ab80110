"""``kafka-sink send`` and ``kafka-sink tail`` against the three test brokers.

Most tests run the command line in-process (``kafka_sink.cli.main``) for
speed; the follow test and the bad-address test run it as a child process,
``python -m kafka_sink``, the way a user does. What ``tail`` prints is
compared exactly (``--format json``) with what was sent, for every codec,
and with what an independent producer (librdkafka, through confluent-kafka)
wrote.
"""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kafka_sink.cli import EXIT_KAFKA_ERROR, EXIT_OK, main
from kafka_sink.net.cluster import Connection
from kafka_sink.protocol.codecs import Compression
from kafka_sink.protocol.fetch import FetchRequest, FetchResponse
from tests.brokers import BrokerUnderTest
from tests.brokers.admin import librdkafka_logger

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


class Cli:
    """Runs ``kafka-sink`` in-process with the given standard input; returns (code, out, err)."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.capsys = capsys
        self.monkeypatch = monkeypatch

    def __call__(self, *argv: str, stdin: bytes = b"") -> tuple[int, str, str]:
        self.monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        self.capsys.readouterr()
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(capsys, monkeypatch)


def shown(data: bytes | None) -> Any:
    """How ``tail --format json`` shows a key or value: text, base64 or null."""
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def stored_codecs(bootstrap_servers: str, topic: str, partition: int) -> set[Compression]:
    """The codecs of the batches stored in a partition, read with a raw Fetch."""
    with Connection(broker_list=bootstrap_servers, timeout=10) as connection:
        leader = connection.leader_address(topic, partition)
        # Not max_wait_ms=0: Tansu 0.6 answers such a fetch with no data at all.
        request = FetchRequest.for_partitions(topic, {partition: 0}, max_wait_ms=100)
        response: FetchResponse = connection.broker(leader).request(request, 10)
    [part] = response.responses[0].partitions
    assert part.error_code == 0
    return {batch.compression for batch in part.batches()}


# -- send, then tail ------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_send_then_tail_reads_back_exactly(
    broker: BrokerUnderTest, topic_name: str, codec: str, cli: Cli
) -> None:
    broker.create_topic(topic_name, partitions=2)
    lines = [f"key-{i}\tline {i} caf\u00e9 \u2713 {codec} " + "x" * (i * 7) for i in range(20)]
    lines[5] = "no separator on this line"
    lines[6] = "\tempty key"
    stdin = "\n".join(lines).encode() + b"\n\n"  # a final empty line is skipped
    servers = broker.bootstrap_servers
    code, out, err = cli(
        "send", "-b", servers, "-t", topic_name, "-p", "1", "-K", "\\t", "-z", codec,
        "-H", "source=cli", "-H", "empty=", stdin=stdin,
    )  # fmt: skip
    assert (code, err) == (EXIT_OK, "")
    assert out.startswith(f"delivered 20 of 20 records to {topic_name} in ")
    assert out.rstrip().endswith("partition 1: 20 (offsets 0-19)")

    code, out, err = cli(
        "tail", "-b", servers, "-t", topic_name, "--from-beginning", "--format", "json"
    )
    assert (code, err) == (EXIT_OK, "")
    printed = json_lines(out)
    expected = []
    for offset, line in enumerate(lines):
        key, sep, value = line.partition("\t")
        expected.append(
            {
                "partition": 1,
                "offset": offset,
                "key": key if sep else None,
                "headers": [["source", "cli"], ["empty", ""]],
                "value": value if sep else line,
            }
        )
    assert [{k: r[k] for k in expected[0]} for r in printed] == expected
    assert {r["topic"] for r in printed} == {topic_name}
    assert {r["timestamp_type"] for r in printed} == {"CreateTime"}
    # The records were stored compressed, and tail decompressed them.
    assert stored_codecs(servers, topic_name, 1) == {Compression.from_name(codec)}

    code, out, err = cli("tail", "-b", servers, "-t", topic_name, "-n", "2")
    assert (code, err) == (EXIT_OK, "")
    rows = [line.split("\t") for line in out.splitlines()]
    assert [row[:2] for row in rows] == [["1", "18"], ["1", "19"]]
    assert [row[3:] for row in rows] == [
        ["key-18", "source=cli,empty=", lines[18].partition("\t")[2]],
        ["key-19", "source=cli,empty=", lines[19].partition("\t")[2]],
    ]
    assert all(row[2].endswith("Z") and len(row[2]) == 24 for row in rows)


def test_send_spreads_keyed_records_and_tail_selects_the_newest(
    broker: BrokerUnderTest, topic_name: str, cli: Cli
) -> None:
    broker.create_topic(topic_name, partitions=3)
    servers = broker.bootstrap_servers
    first = "".join(f"user-{i % 6},first {i}\n" for i in range(30)).encode()
    code, out, _ = cli("send", "-b", servers, "-t", topic_name, "-K", ",", stdin=first)
    assert code == EXIT_OK, out
    # A later send: its records have later timestamps than every first one.
    code, out, _ = cli(
        "send", "-b", servers, "-t", topic_name, "-k", "late", "-z", "gzip", "-a", "1",
        stdin=b"late 1\nlate 2\n",
    )  # fmt: skip
    assert code == EXIT_OK, out

    code, out, err = cli(
        "tail", "-b", servers, "-t", topic_name, "--from-beginning", "--format", "json"
    )
    everything = json_lines(out)
    assert len(everything) == 32
    by_key: dict[str, set[int]] = {}
    for r in everything:
        by_key.setdefault(r["key"], set()).add(r["partition"])
    assert all(len(partitions) == 1 for partitions in by_key.values())  # one partition per key
    assert sorted(r["value"] for r in everything) == sorted(
        [f"first {i}" for i in range(30)] + ["late 1", "late 2"]
    )

    code, out, err = cli("tail", "-b", servers, "-t", topic_name, "-n", "2", "--format", "json")
    assert (code, err) == (EXIT_OK, "")
    assert [r["value"] for r in json_lines(out)] == ["late 1", "late 2"]
    code, out, _ = cli(
        "tail", "-b", servers, "-t", topic_name, "-n", "1", "--per-partition", "--format", "json"
    )
    latest: dict[int, dict[str, Any]] = {}
    for r in everything:
        current = latest.get(r["partition"])
        if current is None or (r["timestamp_ms"], r["offset"]) > (
            current["timestamp_ms"],
            current["offset"],
        ):
            latest[r["partition"]] = r
    expected = sorted(latest.values(), key=lambda r: (r["timestamp_ms"], r["partition"]))
    assert json_lines(out) == expected
    assert expected[-1]["value"] == "late 2"


# -- records written by librdkafka ---------------------------------------------------------


def produce_with_confluent(
    servers: str, topic: str, codec: str, messages: list[dict[str, Any]]
) -> list[tuple[int, int]]:
    """Produce with librdkafka; return (partition, offset) of each message, in order."""
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": servers, "compression.codec": codec, "linger.ms": 20},
        logger=librdkafka_logger(),
    )
    placed: dict[int, tuple[int, int]] = {}
    errors: list[str] = []

    def report(index: int) -> Any:
        def on_delivery(error: Any, message: Any) -> None:
            if error is not None:
                errors.append(str(error))
            else:
                placed[index] = (message.partition(), message.offset())

        return on_delivery

    for index, message in enumerate(messages):
        producer.produce(topic, on_delivery=report(index), **message)
    assert producer.flush(30) == 0
    assert errors == []
    return [placed[i] for i in range(len(messages))]


@pytest.mark.parametrize("codec", CODECS)
def test_tail_reads_what_confluent_kafka_wrote(
    broker: BrokerUnderTest, topic_name: str, codec: str, cli: Cli
) -> None:
    broker.create_topic(topic_name, partitions=3)
    base = int(time.time() * 1000) - 60_000
    messages: list[dict[str, Any]] = [
        {
            "key": None if i % 4 == 0 else f"key-{i}".encode(),
            # Compressible, or librdkafka would store the batch uncompressed.
            "value": None
            if i % 7 == 3
            else f"value {i} {'-' * 60}".encode() + bytes([i, 0xFF]) * (i % 3),
            "partition": i % 3,
            "timestamp": base + i * 37,
            "headers": [("seq", str(i).encode()), ("none", None), ("bin", b"\x00\xfe")]
            if i % 5
            else [],
        }
        for i in range(24)
    ]
    placed = produce_with_confluent(broker.bootstrap_servers, topic_name, codec, messages)

    servers = broker.bootstrap_servers
    code, out, err = cli(
        "tail", "-b", servers, "-t", topic_name, "--from-beginning", "--format", "json"
    )
    assert (code, err) == (EXIT_OK, "")
    printed = sorted(json_lines(out), key=lambda r: (r["partition"], r["offset"]))
    expected = sorted(
        (
            {
                "partition": partition,
                "offset": offset,
                "timestamp_ms": m["timestamp"],
                "key": shown(m["key"]),
                "value": shown(m["value"]),
                "headers": [[name, shown(value)] for name, value in m["headers"]],
            }
            for m, (partition, offset) in zip(messages, placed, strict=True)
        ),
        key=lambda r: (r["partition"], r["offset"]),
    )
    assert [{k: r[k] for k in expected[0]} for r in printed] == expected
    if codec != "none":
        assert stored_codecs(servers, topic_name, 0) == {Compression.from_name(codec)}

    # The 4 newest records of the topic, by timestamp, oldest first.
    code, out, err = cli("tail", "-b", servers, "-t", topic_name, "-n", "4", "--format", "json")
    assert (code, err) == (EXIT_OK, "")
    assert [r["timestamp_ms"] for r in json_lines(out)] == [base + i * 37 for i in range(20, 24)]


def test_tail_of_an_unknown_topic_is_one_clear_error(mock_cluster: Any, cli: Cli) -> None:
    code, out, err = cli("tail", "-b", mock_cluster.bootstrap_servers, "-t", "no-such-topic")
    assert code == EXIT_KAFKA_ERROR
    assert out == ""
    assert err.splitlines() == [
        "kafka-sink tail: error: topic 'no-such-topic': UNKNOWN_TOPIC_OR_PARTITION (3): "
        "This server does not host this topic-partition."
    ]


# -- as a child process -------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # The child must import this checkout of kafka_sink, wherever it is installed from.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("KAFKA_SINK_BOOTSTRAP_SERVERS", None)
    return env


def run_cli(
    *argv: str, stdin: bytes = b"", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kafka_sink", *argv],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=_env(),
        check=False,
    )


@contextlib.contextmanager
def running_cli(*argv: str) -> Iterator[queue.Queue[str]]:
    """Start ``kafka-sink`` in the background; yield a queue of its output lines."""
    process = subprocess.Popen(
        [sys.executable, "-m", "kafka_sink", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=_env(),
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        yield lines
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        reader.join(10)
        assert process.stderr is not None
        err = process.stderr.read()
        assert process.stdout is not None
        process.stdout.close()
        process.stderr.close()
    # It ran until terminated: no error of its own before that.
    assert err == ""


def next_line(lines: queue.Queue[str], timeout: float = 30) -> str:
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no output line within {timeout} s") from None


def test_follow_prints_records_written_after_it_started(
    broker: BrokerUnderTest, topic_name: str
) -> None:
    broker.create_topic(topic_name, partitions=2)
    servers = broker.bootstrap_servers
    done = run_cli("send", "-b", servers, "-t", topic_name, "-p", "0", stdin=b"before\n")
    assert done.returncode == EXIT_OK, done.stderr

    argv = ("tail", "-b", servers, "-t", topic_name, "-n", "1", "-f", "--format", "json")
    with running_cli(*argv) as lines:
        # The newest record comes first: from then on the command is following.
        assert json.loads(next_line(lines))["value"] == "before"
        for partition, codec in (("1", "zstd"), ("0", "snappy")):
            done = run_cli(
                "send", "-b", servers, "-t", topic_name, "-p", partition, "-z", codec,
                stdin=f"after {partition} a\nafter {partition} b\n".encode(),
            )  # fmt: skip
            assert done.returncode == EXIT_OK, done.stderr
            got = [json.loads(next_line(lines)) for _ in range(2)]
            assert [(r["partition"], r["value"]) for r in got] == [
                (int(partition), f"after {partition} a"),
                (int(partition), f"after {partition} b"),
            ]
        assert lines.empty()


def _refused_address() -> str:
    with socket.socket() as sock:  # a port nothing listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


@pytest.mark.parametrize("command", ["send", "tail"])
def test_a_bad_broker_address_is_one_clear_error(command: str) -> None:
    address = _refused_address()
    done = run_cli(command, "-b", address, "-t", "logs", "--timeout", "2", stdin=b"x\n")
    assert done.returncode == EXIT_KAFKA_ERROR
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"kafka-sink {command}: error: cannot connect to any broker: "
        f"cannot connect to {address}: Connection refused"
    ]


# -- the reader underneath --------------------------------------------------------------------

# Fetch and ListOffsets versions each test broker ends up speaking with kafka_sink.
NEGOTIATED = {"mock": (12, 7), "kafka23": (11, 5), "tansu": (12, 7)}


def test_the_highest_common_versions_are_used(broker: BrokerUnderTest, topic_name: str) -> None:
    from kafka_sink.protocol.apis import ApiKey

    broker.create_topic(topic_name, partitions=1)
    with Connection(broker_list=broker.bootstrap_servers, timeout=10) as connection:
        leader = connection.broker(connection.leader_address(topic_name, 0))
        versions = (leader.version_for(ApiKey.FETCH), leader.version_for(ApiKey.LIST_OFFSETS))
    assert versions == NEGOTIATED[broker.kind]


def test_the_reader_rides_out_moved_leaders_and_fetch_errors(
    new_mock_cluster: Any, topic_name: str
) -> None:
    from kafka_sink import Producer
    from kafka_sink.net.fetcher import Fetcher

    cluster = new_mock_cluster(3)
    cluster.create_topic(topic_name, 2)
    cluster.set_partition_leader(topic_name, 0, 1)
    cluster.set_partition_leader(topic_name, 1, 2)
    with Connection(broker_list=cluster.bootstrap_servers, timeout=10) as connection:
        producer = Producer(connection)
        producer.send(topic_name, 0, ["a", "b"])
        producer.send(topic_name, 1, ["c"])
        fetcher = Fetcher(connection, max_wait_ms=100)
        # NOT_LEADER_OR_FOLLOWER twice on ListOffsets, then on Fetch: retried.
        cluster.push_request_errors(2, [6, 6])
        ranges = fetcher.offsets(topic_name)
        assert {p: (r.earliest, r.latest) for p, r in ranges.items()} == {0: (0, 2), 1: (0, 1)}
        cluster.push_request_errors(1, [6, 6])
        stream = fetcher.read(topic_name, {0: 0, 1: 0})
        first = sorted((r.partition, r.offset, r.value) for r in itertools.islice(stream, 3))
        assert first == [(0, 0, b"a"), (0, 1, b"b"), (1, 0, b"c")]
        assert [e.code for e in connection.nonfatal_errors()] == [6, 6]
        assert [e.code for e in fetcher.nonfatal_errors()] == [6, 6]
        # Both leaders move while the reader follows the partitions.
        cluster.set_partition_leader(topic_name, 0, 3)
        cluster.set_partition_leader(topic_name, 1, 3)
        producer.send(topic_name, 0, ["d"])
        producer.send(topic_name, 1, ["e"])
        later = sorted((r.partition, r.offset, r.value) for r in itertools.islice(stream, 2))
        assert later == [(0, 2, b"d"), (1, 1, b"e")]
        stream.close()
