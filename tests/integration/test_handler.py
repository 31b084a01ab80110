"""KafkaHandler end to end on the test brokers, read back by the oracle consumer."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from kafka_sink import DeadLetter, KafkaHandler, hookimpl
from tests.child import run_python
from tests.oracle import ConsumedRecord, consume

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    """A fresh logger at DEBUG that does not propagate; its handlers are closed after.

    It stays out of the logging manager's registry, so that it has exactly the
    handlers a test gives it: pytest (9.2 on) attaches its capture handler to
    every registered non-propagating logger, and that handler re-raises the
    logging errors some tests commit on purpose.
    """
    logger = logging.Logger(f"it.app.{uuid.uuid4().hex[:8]}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def _docs(records: list[ConsumedRecord]) -> list[dict[str, Any]]:
    return [json.loads((r.value or b"").decode("utf-8")) for r in records]


def _clip(value: object, limit: int = 200) -> object:
    """``value``, or for a long text its start and length: short enough for a failure report."""
    if isinstance(value, str | bytes) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} in all)"
    return value


def test_records_arrive_with_key_headers_and_timestamp(
    broker: Any, topic_name: str, app_logger: logging.Logger
) -> None:
    broker.create_topic(topic_name, partitions=3)
    handler = KafkaHandler(
        topic_name,
        broker.bootstrap_servers,
        key="user",
        header_fields=["request"],
        linger_ms=5,
        entry_points=False,
    )
    app_logger.addHandler(handler)
    created: dict[str, int] = {}

    class Stamps(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            created[record.getMessage()] = int(record.created * 1000)
            return True

    handler.addFilter(Stamps())
    for i in range(300):
        app_logger.info("event %d", i, extra={"user": f"u{i % 7}", "request": f"r{i}"})
    handler.flush(30)
    assert handler.metrics()["records_delivered"] == 300
    got = consume(broker.bootstrap_servers, topic_name, expected=300)
    partitions_of_key: dict[bytes | None, set[int]] = defaultdict(set)
    for record, doc in zip(got, _docs(got), strict=True):
        i = int(doc["message"].split()[1])
        assert doc["logger"] == app_logger.name
        assert record.key == f"u{i % 7}".encode()
        assert dict(record.headers)["request"] == f"r{i}".encode()
        assert dict(record.headers)["level"] == b"INFO"
        assert record.timestamp_ms == created[doc["message"]]
        partitions_of_key[record.key].add(record.partition)
    assert sorted(int(d["message"].split()[1]) for d in _docs(got)) == list(range(300))
    assert all(len(p) == 1 for p in partitions_of_key.values())


@pytest.mark.mock
def test_eight_threads_at_once_every_record_once(
    mock_cluster: Any, topic_name: str, app_logger: logging.Logger
) -> None:
    mock_cluster.create_topic(topic_name, 3, 3)
    handler = KafkaHandler(topic_name, mock_cluster.bootstrap_servers, entry_points=False)
    app_logger.addHandler(handler)
    start = threading.Barrier(8)

    def work(thread: int) -> None:
        start.wait()
        for i in range(1250):
            app_logger.info("t%d-%d", thread, i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handler.flush(60)
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=10_000, timeout=60)
    messages = sorted(d["message"] for d in _docs(got))
    assert messages == sorted(f"t{t}-{i}" for t in range(8) for i in range(1250))
    assert handler.metrics()["records_delivered"] == 10_000


@pytest.mark.mock
def test_root_at_debug_with_the_librarys_loggers_at_debug(
    mock_cluster: Any, topic_name: str
) -> None:
    mock_cluster.create_topic(topic_name, 2, 3)
    root = logging.getLogger()
    library = logging.getLogger("kafka_sink")
    saved = (root.level, library.level)
    handler = KafkaHandler(topic_name, mock_cluster.bootstrap_servers, entry_points=False)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    library.setLevel(logging.DEBUG)
    app = logging.getLogger("it.recursion.app")
    try:
        for i in range(500):
            app.debug("application record %d", i)
        assert handler.sink.flush(30) == 0
        handler.flush(30)
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        library.setLevel(saved[1])
        handler.close()
    # exact: not one record of the library's own came back through the handler
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=500)
    assert sorted(d["message"] for d in _docs(got)) == sorted(
        f"application record {i}" for i in range(500)
    )
    metrics = handler.metrics()
    assert metrics["records_ignored"].get("library", 0) > 0  # the sender did log, at DEBUG
    assert metrics["records_delivered"] == 500


@pytest.mark.mock
def test_bad_input_is_reported_and_good_records_around_it_arrive(
    mock_cluster: Any,
    topic_name: str,
    app_logger: logging.Logger,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mock_cluster.create_topic(topic_name, 1, 3)
    letters: list[DeadLetter] = []
    told = threading.Event()

    def dead_letter(letter: DeadLetter) -> None:
        letters.append(letter)
        if len(letters) == 2:
            told.set()

    handler = KafkaHandler(
        topic_name, mock_cluster.bootstrap_servers, dead_letter=dead_letter, entry_points=False
    )
    app_logger.addHandler(handler)

    class NoRepr:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    app_logger.info("good 0")
    app_logger.info("unserialisable", extra={"obj": NoRepr(), "lock": threading.Lock()})
    app_logger.info("good 1")
    app_logger.info(b"non-utf8 \xff\xfe")
    app_logger.info("lone surrogate \udcff")
    app_logger.info("good 2")
    app_logger.info("five megabytes %s", "m" * (5 * 1024 * 1024))
    app_logger.info("good 3")
    app_logger.info("mismatch %s %s", "one")  # noqa: PLE1206 - the mistake under test
    app_logger.info("good 4")
    try:
        raise ConnectionResetError("peer went away")
    except ConnectionResetError:
        app_logger.exception("with a traceback")
    app_logger.info("good 5")
    handler.flush(30)
    assert told.wait(30)
    # A 5 MB record is logged: every value compared below is clipped first, so
    # that a failure reports a few lines, never megabytes.
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=10)
    assert max(len(r.value or b"") for r in got) < 64 * 1024  # the 5 MB record is not there
    docs = _docs(got)  # every value decodes as strict UTF-8 JSON
    assert [_clip(d.get("message")) for d in docs] == [
        "good 0",
        "unserialisable",
        "good 1",
        "b'non-utf8 \\xff\\xfe'",
        "lone surrogate \\xff",  # the escaped byte, as text: no surrogate reaches a reader
        "good 2",
        "good 3",
        "good 4",
        "with a traceback",
        "good 5",
    ]
    assert _clip(docs[1].get("obj")) == "<unrepresentable NoRepr object>"
    last_line = str(docs[8].get("exception")).splitlines()[-1:]
    assert [_clip(line) for line in last_line] == ["ConnectionResetError: peer went away"]
    assert sorted(letter.reason for letter in letters) == ["serialize", "too_large"]
    err = capsys.readouterr().err
    reported = "--- Logging error ---" in err
    assert reported, f"no logging error on stderr ({len(err)} chars): {_clip(err, 2000)}"
    metrics = handler.metrics()
    assert metrics["records_delivered"] == 10
    assert metrics["records_failed"] == {"serialize": 1, "too_large": 1}


class _Tenants:
    """Records of the internal tenant to partition 0; the others are left to the next one."""

    @hookimpl
    def kafka_sink_partitioner(self, kind: str, name: str, options: Mapping[str, Any]) -> Any:
        return lambda topic, key, value, n: 0 if value and b'"tenant":"internal"' in value else None


@pytest.mark.mock
def test_a_partitioner_plugin_before_a_built_in_one(
    mock_cluster: Any, topic_name: str, app_logger: logging.Logger
) -> None:
    mock_cluster.create_topic(topic_name, 3, 3)
    handler = KafkaHandler(
        topic_name,
        mock_cluster.bootstrap_servers,
        partitioner="round_robin",
        plugins=[_Tenants()],
        entry_points=False,
    )
    app_logger.addHandler(handler)
    for i in range(90):
        tenant = "internal" if i % 3 == 0 else f"customer-{i}"
        app_logger.info("request %d", i, extra={"tenant": tenant})
    handler.flush(30)
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=90)
    by_partition: dict[int, list[str]] = defaultdict(list)
    for record, doc in zip(got, _docs(got), strict=True):
        by_partition[record.partition].append(doc["tenant"])
    internal = [p for p, ts in by_partition.items() for t in ts if t == "internal"]
    assert set(internal) == {0}
    customers = {p: sum(t != "internal" for t in ts) for p, ts in by_partition.items()}
    assert all(customers.get(p, 0) > 0 for p in range(3))  # round robin over all three


@pytest.mark.mock
def test_kafka_down_emit_bounded_drops_counted_then_recovers(
    new_mock_cluster: Any, topic_name: str, app_logger: logging.Logger
) -> None:
    cluster = new_mock_cluster(1)
    cluster.create_topic(topic_name, 1, 1)
    limit = 100_000
    handler = KafkaHandler(
        topic_name,
        cluster.bootstrap_servers,
        buffer_memory=limit,
        delivery_timeout_ms=600_000,
        entry_points=False,
    )
    app_logger.addHandler(handler)
    app_logger.info("warm-up")
    handler.flush(30)
    cluster.broker_down(1)
    total = 5000
    for i in range(total):
        app_logger.info("while down %d %s", i, "y" * 200)
        if i % 500 == 0:
            assert handler.sink.metrics()["buffer_bytes_used"] <= limit
    cluster.broker_up(1)
    handler.flush(60)
    metrics = handler.metrics()
    delivered = metrics["records_delivered"]
    assert metrics["records_failed"]["buffer_full"] > 0
    assert set(metrics["records_failed"]) == {"buffer_full"}
    assert delivered + metrics["records_failed"]["buffer_full"] == total + 1
    got = consume(cluster.bootstrap_servers, topic_name, expected=delivered, timeout=60)
    messages = [d["message"] for d in _docs(got)]
    assert messages[0] == "warm-up"
    numbers = [int(m.split()[2]) for m in messages[1:]]
    assert numbers == sorted(numbers)  # in order, each once
    assert numbers[-1] == total - 1  # drop_oldest kept the newest


# -- processes: dictConfig, exit, fork ---------------------------------------------------


def _readme_example(language: str) -> dict[str, Any]:
    """The README's dictConfig example in ``language`` (yaml or json), as a dict."""
    blocks = re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)
    (block,) = [b for b in blocks if "kafka_sink.KafkaHandler" in b]
    if language == "yaml":
        import yaml

        loaded: dict[str, Any] = yaml.safe_load(block)
        return loaded
    return dict(json.loads(block))


@pytest.mark.mock
@pytest.mark.parametrize("language", ["yaml", "json"])
def test_the_readmes_dict_config_examples(
    mock_cluster: Any, topic_name: str, language: str
) -> None:
    mock_cluster.create_topic(topic_name, 2, 3)
    config = _readme_example(language)
    entry = config["handlers"]["kafka"]
    assert entry["class"] == "kafka_sink.KafkaHandler"
    entry.update(topic=topic_name, bootstrap_servers=mock_cluster.bootstrap_servers)
    result = run_python(
        """
        import json, logging, logging.config, os
        logging.config.dictConfig(json.loads(os.environ["CONFIG"]))
        log = logging.getLogger("app.billing")
        log.debug("below INFO: not shipped")
        log.warning("card declined", extra={"user_id": 42, "request_id": "r-17"})
        (handler,) = logging.getLogger().handlers
        print(type(handler).__name__, float(handler.sink.config.close_timeout_ms))
        # no flush, no close: logging.shutdown() at exit delivers
        """,
        {"CONFIG": json.dumps(config)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["KafkaHandler", "3000.0"]
    (record,) = consume(mock_cluster.bootstrap_servers, topic_name, expected=1)
    assert record.key == b"42"
    headers = dict(record.headers)
    assert headers["logger"] == b"app.billing"
    if language == "yaml":
        doc = json.loads(record.value or b"")
        assert (doc["message"], doc["service"], doc["user_id"]) == ("card declined", "billing", 42)
        assert headers["request_id"] == b"r-17"
    else:
        assert record.value == b"WARNING app.billing: card declined"


@pytest.mark.mock
def test_exit_without_close_delivers_every_record(mock_cluster: Any, topic_name: str) -> None:
    mock_cluster.create_topic(topic_name, 2, 3)
    result = run_python(
        """
        import logging, os, kafka_sink
        handler = kafka_sink.KafkaHandler(os.environ["TOPIC"], os.environ["SERVERS"], linger_ms=50)
        log = logging.getLogger("exit")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        for i in range(10_000):
            log.info("%d", i)
        # no flush, no close
        """,
        {"SERVERS": mock_cluster.bootstrap_servers, "TOPIC": topic_name},
    )
    assert result.returncode == 0, result.stderr
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=10_000, timeout=60)
    assert sorted(int(d["message"]) for d in _docs(got)) == list(range(10_000))


def test_exit_with_every_broker_dead_is_bounded_by_the_close_timeout() -> None:
    close_timeout = 2.0
    with socket.socket() as dead:  # bound, never listening: every connection is refused
        dead.bind(("127.0.0.1", 0))
        code = """
            import atexit, sys
            # Registered first, so it runs last: after the sink and logging shut down.
            atexit.register(lambda: print("report", handler.metrics()["records_failed"]))
            import logging, os, kafka_sink
            handler = kafka_sink.KafkaHandler(
                "logs",
                os.environ["SERVERS"],
                close_timeout_ms=float(os.environ["CLOSE_MS"]),
                delivery_timeout_ms=600_000,  # only close() can end the wait
            )
            log = logging.getLogger("exit")
            log.addHandler(handler)
            log.setLevel(logging.INFO)
            for i in range(10_000):
                log.info("%d", i)
            print("logged", flush=True)
        """
        env = {
            **os.environ,
            "SERVERS": f"127.0.0.1:{dead.getsockname()[1]}",
            "CLOSE_MS": str(close_timeout * 1000),
        }
        with (
            tempfile.TemporaryFile("w+") as errors,
            subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(code)],
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                env=env,
            ) as child,
        ):
            assert child.stdout is not None
            try:
                assert child.stdout.readline().strip() == "logged"
                exiting = time.monotonic()
                try:
                    child.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    pytest.fail("the interpreter did not exit within 120 s of the last record")
                elapsed = time.monotonic() - exiting
                report = child.stdout.read()
            finally:
                if child.poll() is None:
                    child.kill()
            errors.seek(0)
            stderr = errors.read()
    assert child.returncode == 0, stderr
    # Every record was failed by the close at exit (none delivered, none expired:
    # the delivery timeout is 10 minutes), so the exit waited for close_timeout_ms
    # only. Its duration is checked loosely, well below that delivery timeout, so
    # that a slow machine does not fail it.
    assert report.strip() == "report {'closed': 10000}"  # every record accounted for
    assert elapsed < close_timeout + 60.0, f"exit took {elapsed:.2f} s"


@pytest.mark.mock
def test_fork_parent_and_child_each_deliver_their_own_once(
    mock_cluster: Any, topic_name: str
) -> None:
    mock_cluster.create_topic(topic_name, 2, 3)
    result = run_python(
        """
        import logging, os, kafka_sink
        handler = kafka_sink.KafkaHandler(os.environ["TOPIC"], os.environ["SERVERS"], linger_ms=200)
        log = logging.getLogger("fork")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        for i in range(100):
            log.info("parent-before-%d", i)  # still buffered at the fork
        pid = os.fork()
        who = "child" if pid == 0 else "parent"
        for i in range(100):
            log.info("%s-after-%d", who, i)
        handler.flush(30)
        metrics = handler.metrics()
        print(who, metrics["records_delivered"], metrics["records_failed"], flush=True)
        ok = metrics["records_delivered"] == (100 if pid == 0 else 200)
        if pid == 0:
            handler.close()
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        raise SystemExit(0 if ok and os.waitstatus_to_exitcode(status) == 0 else 4)
        """,
        {"SERVERS": mock_cluster.bootstrap_servers, "TOPIC": topic_name},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=300, timeout=60)
    assert sorted(d["message"] for d in _docs(got)) == sorted(
        [f"parent-before-{i}" for i in range(100)]
        + [f"parent-after-{i}" for i in range(100)]
        + [f"child-after-{i}" for i in range(100)]
    )
