"""The ``kafka-sink`` command line without a broker: parsing, formatting, send's logic."""

from __future__ import annotations

import argparse
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kafka_sink import cli
from kafka_sink.cli import (
    EXIT_DELIVERY_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Decoded,
    RecordFormatter,
    build_parser,
    format_timestamp,
    main,
    newest,
    register_value_format,
    render_text,
)
from kafka_sink.cli import formats as cli_formats
from kafka_sink.cli import send as cli_send
from kafka_sink.config import BrokerAddress
from kafka_sink.errors import DeliveryTimeoutError, InvalidArgumentError
from kafka_sink.net.fetcher import FetchedRecord
from kafka_sink.producer.futures import RecordMetadata
from kafka_sink.protocol.records import TimestampType

NOW = 1_700_000_000_123


def record(
    value: bytes | None = b"v",
    *,
    partition: int = 0,
    offset: int = 0,
    timestamp: int = NOW,
    key: bytes | None = None,
    headers: tuple[tuple[str, bytes | None], ...] = (),
) -> FetchedRecord:
    return FetchedRecord(
        "logs", partition, offset, timestamp, TimestampType.CREATE_TIME, key, value, headers
    )


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(argv)


# -- parsing ------------------------------------------------------------------------------


def test_console_script_and_module_run_the_same_main() -> None:
    from kafka_sink import __main__

    assert __main__.main is main


def test_help_lists_the_commands_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for word in ("send", "tail", "demo", "exit codes:", "130"):
        assert word in text


@pytest.mark.parametrize("command", ["send", "tail", "demo"])
def test_each_command_has_help_with_examples(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "exit codes:" in text
    if command != "demo":
        assert f"kafka-sink {command} " in text  # the examples
        assert "--bootstrap-servers" in text


def test_bootstrap_servers_default_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cli.BOOTSTRAP_ENV_VAR, raising=False)
    assert parse("tail", "-t", "logs").bootstrap_servers == (BrokerAddress("localhost", 9092),)
    monkeypatch.setenv(cli.BOOTSTRAP_ENV_VAR, "k1:9093,[::1]:9094")
    assert parse("tail", "-t", "logs").bootstrap_servers == (
        BrokerAddress("k1", 9093),
        BrokerAddress("::1", 9094),
    )
    assert parse("send", "-t", "logs", "-b", "x:1").bootstrap_servers == (BrokerAddress("x", 1),)


def test_send_options() -> None:
    args = parse(
        "send", "-t", "logs", "a.log", "-", "-K", "\\t", "-p", "2", "-H", "a=1", "-H", "b=",
        "-H", "a=x=y", "-z", "zstd", "-a", "1", "--linger-ms", "0", "--timeout", "2.5",
    )  # fmt: skip
    assert args.files == ["a.log", "-"]
    assert args.key_separator == b"\t"
    assert args.partition == 2
    assert args.header == [("a", b"1"), ("b", b""), ("a", b"x=y")]
    assert (args.compression, args.acks, args.linger_ms, args.timeout) == ("zstd", "1", 0.0, 2.5)
    defaults = parse("send", "-t", "logs")
    assert (defaults.files, defaults.key, defaults.key_separator, defaults.header) == (
        [],
        None,
        None,
        [],
    )
    assert (defaults.compression, defaults.acks, defaults.timeout) == ("lz4", "all", 10.0)


def test_tail_options() -> None:
    args = parse("tail", "-t", "logs", "-n", "3", "-f", "-p", "1", "-p", "4", "--format", "json")
    assert (args.last, args.follow, args.partition, args.format) == (3, True, [1, 4], "json")
    defaults = parse("tail", "-t", "logs")
    assert (defaults.last, defaults.follow, defaults.from_beginning) == (10, False, False)
    assert (defaults.partition, defaults.format, defaults.value_format) == (None, "text", "auto")


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["send", "-t", "logs", "-H", "novalue"], "expected NAME=VALUE"),
        (["send", "-t", "logs", "-H", "=v"], "expected NAME=VALUE"),
        (["send", "-t", "logs", "-k", "a", "-K", ","], "not allowed with"),
        (["send", "-t", "logs", "-K", ""], "cannot be empty"),
        (["send", "-t", "logs", "-p", "-1"], "0 or more"),
        (["send", "-t", "logs", "-z", "brotli"], "invalid choice"),
        (["send", "-t", "logs", "--timeout", "0"], "more than 0"),
        (["send", "-t", "logs", "--linger-ms", "nan"], "0 or more"),
        (["send", "-t", "bad topic!"], "may contain only"),
        (["send"], "required: -t/--topic"),
        (["tail", "-t", "logs", "-n", "2", "--from-beginning"], "not allowed with"),
        (["tail", "-t", "logs", "-b", "h:port"], "non-numeric port"),
        (["tail", "-t", "logs", "-b", "::1"], "brackets"),
        (["tail", "-t", "logs", "--value-format", "nope"], "invalid choice"),
        ([], "required: COMMAND"),
    ],
)
def test_bad_arguments_exit_2_with_one_message(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert complaint in err
    assert "Traceback" not in err


def test_an_unreadable_input_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.log"
    code = main(["send", "-t", "logs", "-b", "127.0.0.1:1", str(missing)])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"kafka-sink send: error: cannot read {missing}: No such file or directory"]


# -- rendering ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (None, ""),
        (b"", ""),
        (b"plain text", "plain text"),
        ("caf\u00e9 \u2713".encode(), "caf\u00e9 \u2713"),
        (b'{"a": "b\\n"}', '{"a": "b\\n"}'),  # backslashes are shown as they are
        (b"tab\there\nnew\rline", "tab\\there\\nnew\\rline"),
        (b"\x00\x1b[31m\x7f", "\\x00\\x1b[31m\\x7f"),
        (b"\xff\xfebin", "\\xff\\xfebin"),
        ("name\t", "name\\t"),
    ],
)
def test_render_text(data: bytes | str | None, text: str) -> None:
    assert render_text(data) == text


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (NOW, "2023-11-14T22:13:20.123Z"),
        (-1, ""),
        (2**62, str(2**62)),
    ],
)
def test_format_timestamp(ms: int, text: str) -> None:
    assert format_timestamp(ms) == text


def test_text_lines_have_six_tab_separated_columns() -> None:
    line = RecordFormatter()(
        record(
            b"hello\tworld",
            partition=2,
            offset=41,
            key=b"user-1",
            headers=(("trace", b"42"), ("flag", None), ("bin", b"\xff")),
        )
    )
    assert line.split("\t") == [
        "2",
        "41",
        "2023-11-14T22:13:20.123Z",
        "user-1",
        "trace=42,flag,bin=\\xff",
        "hello\\tworld",
    ]
    assert RecordFormatter("text", "raw")(record(None)).split("\t") == [
        "0",
        "0",
        "2023-11-14T22:13:20.123Z",
        "",
        "",
        "",
    ]


def test_json_lines_are_exact() -> None:
    value = bytes(range(256))
    line = RecordFormatter("json")(
        record(
            value,
            partition=1,
            offset=7,
            key="clé".encode(),
            headers=(("a", b"1"), ("a", None), ("b", b"\x80")),
        )
    )
    assert "\n" not in line
    assert json.loads(line) == {
        "topic": "logs",
        "partition": 1,
        "offset": 7,
        "timestamp": "2023-11-14T22:13:20.123Z",
        "timestamp_ms": NOW,
        "timestamp_type": "CreateTime",
        "key": "clé",
        "headers": [["a", "1"], ["a", None], ["b", {"base64": "gA=="}]],
        "value": {"base64": base64.b64encode(value).decode("ascii")},
    }
    assert json.loads(RecordFormatter("json")(record(None, timestamp=-1)))["timestamp"] is None


def test_json_lines_round_trip_any_value() -> None:
    for value in (b"", b"text", "\u2713\n\t".encode(), b"\xc3", bytes(range(256)), None):
        shown = json.loads(RecordFormatter("json", "raw")(record(value)))["value"]
        if isinstance(shown, dict):
            assert base64.b64decode(shown["base64"]) == value
        else:
            assert (None if shown is None else shown.encode()) == value


def test_the_json_value_format_embeds_json_values() -> None:
    doc = b'{"level": "info", "n": [1, 2.5]}'
    as_json = json.loads(RecordFormatter("json", "json")(record(doc)))
    assert as_json["value"] == {"level": "info", "n": [1, 2.5]}
    text = RecordFormatter("text", "json")(record(doc)).split("\t")[-1]
    assert text == '{"level": "info", "n": [1, 2.5]}'
    # Not JSON (or not JSON that round-trips): shown raw.
    for raw in (b"not json", b"NaN", b"\xff", b"[" * 100000):
        shown = json.loads(RecordFormatter("json", "json")(record(raw)))["value"]
        assert not isinstance(shown, (list, float))


def test_registered_value_formats_are_offered_and_auto_tries_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The registry is the formats module's, where register_value_format and tail read it.
    monkeypatch.setattr(cli_formats, "_VALUE_FORMATS", dict(cli_formats._VALUE_FORMATS))
    monkeypatch.setattr(cli_formats, "_AUTO_DECODERS", [])

    def gauge(r: FetchedRecord) -> Decoded | None:
        if dict(r.headers).get("type") != b"gauge" or r.value is None:
            return None
        return Decoded({"gauge": int(r.value)})

    register_value_format("gauge", gauge, auto=True)
    assert parse("tail", "-t", "logs", "--value-format", "gauge").value_format == "gauge"
    tagged = record(b"42", headers=(("type", b"gauge"),))
    assert json.loads(RecordFormatter("json")(tagged))["value"] == {"gauge": 42}
    assert RecordFormatter("text")(tagged).endswith('\t{"gauge": 42}')
    assert json.loads(RecordFormatter("json", "raw")(tagged))["value"] == "42"
    assert json.loads(RecordFormatter("json")(record(b"42")))["value"] == "42"

    def broken(r: FetchedRecord) -> Decoded | None:
        raise ValueError("cannot decode")

    register_value_format("broken", broken)
    assert json.loads(RecordFormatter("json", "broken")(tagged))["value"] == "42"
    with pytest.raises(InvalidArgumentError, match="'name'"):
        register_value_format("auto", gauge)
    with pytest.raises(InvalidArgumentError, match="--value-format"):
        RecordFormatter("text", "nope")


def test_newest_selects_by_timestamp_across_or_per_partition() -> None:
    records = [
        record(b"a", partition=0, offset=0, timestamp=10),
        record(b"b", partition=0, offset=1, timestamp=40),
        record(b"c", partition=1, offset=0, timestamp=20),
        record(b"d", partition=1, offset=1, timestamp=30),
        record(b"e", partition=2, offset=5, timestamp=30),
    ]
    assert [r.value for r in newest(records, 3)] == [b"d", b"e", b"b"]
    assert [r.value for r in newest(records, 1, per_partition=True)] == [b"d", b"e", b"b"]
    assert [r.value for r in newest(records, 2, per_partition=True)] == [
        b"a",
        b"c",
        b"d",
        b"e",
        b"b",
    ]
    assert newest(records, 0) == []
    assert [r.value for r in newest(records, 99)] == [b"a", b"c", b"d", b"e", b"b"]


# -- send, with a sink that answers at once ------------------------------------------------


class InstantSink:
    """Stands in for Sink: resolves each record at once, failing the ones asked to."""

    def __init__(self, fail_values: tuple[bytes, ...] = (), interrupt_after: int = -1) -> None:
        self.produced: list[dict[str, Any]] = []
        self.fail_values = fail_values
        self.interrupt_after = interrupt_after
        self.closed = False

    def produce(self, topic: str, value: bytes, **options: Any) -> None:
        if len(self.produced) == self.interrupt_after:
            raise KeyboardInterrupt
        self.produced.append({"topic": topic, "value": value, **options})
        callback = options["on_delivery"]
        if value in self.fail_values:
            callback(None, DeliveryTimeoutError("not acknowledged in time"))
        else:
            partition = len(self.produced) % 2
            callback(RecordMetadata(topic, partition, 100 + len(self.produced), NOW), None)

    def flush(self, timeout: float | None = None) -> int:
        return 0

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def send_lines(sink: InstantSink, lines: list[bytes], *argv: str) -> int:
    args = parse("send", "-t", "logs", *argv)
    return cli_send._send_lines(args, sink, iter(lines))  # type: ignore[arg-type]  # a fake Sink


def test_send_turns_lines_into_records(capsys: pytest.CaptureFixture[str]) -> None:
    sink = InstantSink()
    code = send_lines(
        sink, [b"k1\tv1", b"", b"no separator", b"k2\t", b"\tv3\tv4"], "-K", "\\t", "-H", "a=1"
    )
    assert code == EXIT_OK
    assert [(r["key"], r["value"]) for r in sink.produced] == [
        (b"k1", b"v1"),
        (None, b"no separator"),
        (b"k2", b""),
        (b"", b"v3\tv4"),
    ]
    assert all(r["headers"] == [("a", b"1")] and r["partition"] is None for r in sink.produced)
    assert sink.closed
    [summary] = capsys.readouterr().out.splitlines()
    assert summary.startswith("delivered 4 of 4 records to logs in ")
    assert summary.endswith(": partition 0: 2 (offsets 102-104), partition 1: 2 (offsets 101-103)")


def test_send_with_one_key_and_a_partition() -> None:
    sink = InstantSink()
    assert send_lines(sink, [b"a", b"b"], "-k", "k", "-p", "3") == EXIT_OK
    assert [(r["key"], r["partition"], r["headers"]) for r in sink.produced] == [
        (b"k", 3, None),
        (b"k", 3, None),
    ]


def test_send_reports_failures_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    sink = InstantSink(fail_values=(b"bad", b"worse"))
    assert send_lines(sink, [b"ok", b"bad", b"worse"]) == EXIT_DELIVERY_FAILED
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("delivered 1 of 3 records to logs in ")
    assert lines[1] == "failed 2 records (timeout): not acknowledged in time"


def test_an_interrupted_send_delivers_what_it_read(capsys: pytest.CaptureFixture[str]) -> None:
    sink = InstantSink(interrupt_after=2)
    assert send_lines(sink, [b"a", b"b", b"c"]) == EXIT_INTERRUPTED
    assert sink.closed
    assert capsys.readouterr().out.startswith("delivered 2 of 2 records")


def test_send_reads_files_in_order_and_keeps_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "a.log"
    first.write_bytes(b"one\r\n\xff\xfe\n")
    second = tmp_path / "b.log"
    second.write_bytes(b"two\nthree")  # no final newline
    sink = InstantSink()
    monkeypatch.setattr(cli_send, "Connection", _FakeConnection)
    monkeypatch.setattr(cli_send, "Sink", lambda *a, **k: sink)
    code = main(["send", "-t", "logs", str(first), str(second)])
    assert code == EXIT_OK
    assert [r["value"] for r in sink.produced] == [b"one\r", b"\xff\xfe", b"two", b"three"]
    assert "delivered 4 of 4" in capsys.readouterr().out


def test_send_to_a_partition_the_topic_lacks_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_send, "Connection", _FakeConnection)
    monkeypatch.setattr("sys.stdin", _Stdin(b"x\n"))
    assert main(["send", "-t", "logs", "-p", "5"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "has no partition 5 (partitions: [0, 1])" in err


class _FakeConnection:
    def __init__(self, **options: Any) -> None:
        pass

    def __enter__(self) -> _FakeConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def partitions(self, topic: str) -> list[int]:
        return [0, 1]


class _Stdin:
    def __init__(self, data: bytes) -> None:
        import io

        self.buffer = io.BytesIO(data)

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("send reads standard input as bytes")


# -- metrics records ----------------------------------------------------------------


def _metrics_record(value: bytes, encoding: bytes | None) -> Any:
    from kafka_sink.net.fetcher import FetchedRecord
    from kafka_sink.protocol.records import TimestampType

    headers = () if encoding is None else (("metrics-encoding", encoding),)
    return FetchedRecord(
        "metrics", 0, 7, 1_700_000_000_000, TimestampType.CREATE_TIME, b"k", value, headers
    )


@pytest.mark.parametrize("encoding", ["json", "influx"])
def test_tail_shows_the_exporters_encodings_readably(encoding: str) -> None:
    from kafka_sink.cli import RecordFormatter
    from kafka_sink.metrics.encodings import encode_influx, encode_json
    from kafka_sink.metrics.samples import Sample, Snapshot

    snapshot = Snapshot(
        1_700_000_000_000,
        (
            Sample("http_requests_total", "counter", (("route", "/a"),), value=3),
            Sample("queue_depth", "gauge", value=7),
        ),
    )
    value = encode_json(snapshot) if encoding == "json" else encode_influx(snapshot)
    record = _metrics_record(value, encoding.encode())

    line = RecordFormatter()(record)
    assert 'http_requests_total{route="/a"} counter 3' in line
    assert "queue_depth gauge 7" in line
    assert "\n" not in line  # one record, one line

    shown = json.loads(RecordFormatter("json")(record))["value"]
    assert shown["encoding"] == encoding
    assert [s["name"] for s in shown["samples"]] == ["http_requests_total", "queue_depth"]


def test_tail_leaves_lookalikes_without_the_metrics_header_alone() -> None:
    from kafka_sink.cli import RecordFormatter

    influx_lookalike = b"cpu,host=a value=1 1700000000000000000"
    line = RecordFormatter()(_metrics_record(influx_lookalike, None))
    assert line.endswith(influx_lookalike.decode())
