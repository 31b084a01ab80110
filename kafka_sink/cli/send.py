"""``kafka-sink send``: lines from files or standard input to a topic, then a summary.

Each line (without its newline) is one record produced through a
:class:`~kafka_sink.Sink`; the cluster is reached first, so that an
unreachable cluster or an unknown topic is one clear error before anything
is read. :class:`_Tally` counts the delivery reports for the summary.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

from kafka_sink.cli.common import (
    EXIT_CODES_HELP,
    EXIT_DELIVERY_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CommandError,
    add_connection_options,
    non_negative_float,
    non_negative_int,
    security_options,
    server_list,
    topic_name,
)
from kafka_sink.config import SinkConfig
from kafka_sink.errors import DeliveryError, InvalidArgumentError
from kafka_sink.net.cluster import Connection
from kafka_sink.producer.futures import RecordMetadata
from kafka_sink.producer.sink import Sink
from kafka_sink.protocol.codecs import Compression

_SEND_EXAMPLES = """\
examples:
  echo '{"msg": "hello"}' | kafka-sink send -t logs
  kafka-sink send -b broker1:9092,broker2:9092 -t logs app.log other.log
  printf 'user-1\\t{"action": "login"}\\n' | kafka-sink send -t events -K '\\t'
  tail -F app.log | kafka-sink send -t logs -H source=web -H env=prod -z zstd --acks 1

Each line (without its newline) is one record; empty lines are skipped. The
summary says how many records were delivered to which partitions and, for
those that were not, why."""


def _header(text: str) -> tuple[str, bytes]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value.encode("utf-8")


def _separator(text: str) -> bytes:
    if not text:
        raise argparse.ArgumentTypeError("the separator cannot be empty")
    # A tab is awkward to type in a shell: accept the two characters \t for it.
    return b"\t" if text == "\\t" else text.encode("utf-8")


def add_send_command(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``send`` and its options to the ``kafka-sink`` subcommands."""
    send = commands.add_parser(
        "send",
        help="send lines from files or standard input to a topic, one record per line",
        description="Send lines from files or standard input to a topic, one record per\n"
        "line, then print a delivery summary.",
        epilog=f"{_SEND_EXAMPLES}\n\n{EXIT_CODES_HELP}",
        formatter_class=formatter,
    )
    add_connection_options(send)
    send.add_argument("-t", "--topic", type=topic_name, required=True, help="the topic to send to")
    send.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="files to read, one record per line ('-' or none: standard input)",
    )
    keys = send.add_mutually_exclusive_group()
    keys.add_argument("-k", "--key", help="the key of every record (default: no key)")
    keys.add_argument(
        "-K",
        "--key-separator",
        type=_separator,
        metavar="SEP",
        help="split each line at its first SEP into key and value; a line without SEP "
        "has no key ('\\t' means a tab)",
    )
    send.add_argument(
        "-p",
        "--partition",
        type=non_negative_int,
        help="send every record to this partition (default: keyed records by the hash of "
        "their key, others spread in batches)",
    )
    send.add_argument(
        "-H",
        "--header",
        type=_header,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="add this header to every record (repeatable)",
    )
    send.add_argument(
        "-z",
        "--compression",
        choices=[codec.name.lower() for codec in Compression],
        default="lz4",
        help="compression codec of the batches (default: lz4)",
    )
    send.add_argument(
        "-a",
        "--acks",
        choices=["0", "1", "all"],
        default="all",
        help="acknowledgement the brokers give: 0 none, 1 the leader, all every in-sync "
        "replica (default: all, with idempotence)",
    )
    send.add_argument(
        "--linger-ms",
        type=non_negative_float,
        default=10.0,
        metavar="MS",
        help="how long a batch waits for more records (default: 10)",
    )
    send.set_defaults(run=_run_send)


def _open_inputs(paths: Sequence[str]) -> list[IO[bytes]]:
    streams: list[IO[bytes]] = []
    for path in paths or ["-"]:
        if path == "-":
            streams.append(sys.stdin.buffer)
            continue
        try:
            streams.append(open(path, "rb"))  # noqa: SIM115 - closed by _run_send
        except OSError as exc:
            for stream in streams:
                _close_input(stream)
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
    return streams


def _close_input(stream: IO[bytes]) -> None:
    if stream is not sys.stdin.buffer:
        stream.close()


def _lines(streams: Iterable[IO[bytes]]) -> Iterator[bytes]:
    for stream in streams:
        name = getattr(stream, "name", "<stdin>")
        try:
            for line in stream:
                yield line[:-1] if line.endswith(b"\n") else line
        except OSError as exc:
            raise CommandError(f"cannot read {name}: {exc.strerror or exc}") from None


class _Tally:
    """Counts delivery outcomes; called on the sink's thread (and the caller's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.delivered = 0
        # partition -> [count, lowest offset, highest offset]
        self.partitions: dict[int, list[int]] = {}
        # reason -> [count, first message]
        self.failures: dict[str, list[Any]] = {}

    def __call__(self, metadata: RecordMetadata | None, error: DeliveryError | None) -> None:
        with self._lock:
            if metadata is not None:
                self.delivered += 1
                entry = self.partitions.setdefault(
                    metadata.partition, [0, metadata.offset, metadata.offset]
                )
                entry[0] += 1
                entry[1] = min(entry[1], metadata.offset)
                entry[2] = max(entry[2], metadata.offset)
            elif error is not None:
                failure = self.failures.setdefault(error.reason, [0, error.message])
                failure[0] += 1

    @property
    def failed(self) -> int:
        return sum(count for count, _ in self.failures.values())

    def summary(self, topic: str, sent: int, elapsed: float) -> list[str]:
        with self._lock:
            parts = []
            for partition, (count, low, high) in sorted(self.partitions.items()):
                offsets = f"offsets {low}-{high}" if low >= 0 else "offsets unknown"
                parts.append(f"partition {partition}: {count} ({offsets})")
            lines = [
                f"delivered {self.delivered} of {sent} records to {topic} in {elapsed:.2f} s"
                + (f": {', '.join(parts)}" if parts else "")
            ]
            for reason, (count, message) in sorted(self.failures.items()):
                lines.append(f"failed {count} records ({reason}): {message}")
            unconfirmed = sent - self.delivered - self.failed
            if unconfirmed > 0:
                lines.append(f"{unconfirmed} records still unconfirmed when the command ended")
            return lines


def _run_send(args: argparse.Namespace) -> int:
    topic: str = args.topic
    servers = server_list(args.bootstrap_servers)
    timeout: float = args.timeout
    codec = Compression.from_name(args.compression)  # zstd: is zstandard installed?
    streams = _open_inputs(args.files)
    try:
        # Reach the cluster first: an unreachable cluster or an unknown topic
        # is one clear error before anything is read or buffered.
        security = security_options(args)
        with Connection(broker_list=servers, timeout=timeout, **security) as connection:
            partitions = connection.partitions(topic)
        if args.partition is not None and args.partition not in partitions:
            raise InvalidArgumentError(
                "--partition",
                f"topic {topic!r} has no partition {args.partition} (partitions: {partitions})",
            )
        timeout_ms = timeout * 1000.0
        options: dict[str, object] = {
            "client_id": "kafka-sink-cli",
            "acks": args.acks,
            "compression_type": codec.name.lower(),
            "linger_ms": args.linger_ms,
            # A command line must not drop its input: wait for buffer space instead.
            "on_buffer_full": "block",
            "max_block_ms": timeout_ms,
            "request_timeout_ms": timeout_ms,
            "delivery_timeout_ms": timeout_ms,
            **security,
        }
        # Its flags and the variables it documents configure the command, not
        # the library's KAFKA_SINK_* options: the Connection above reads no
        # environment, and both must reach the cluster the same way.
        config = SinkConfig.from_mapping(options, bootstrap_servers=servers, environ={})
        sink = Sink(config=config)
        return _send_lines(args, sink, _lines(streams))
    finally:
        for stream in streams:
            _close_input(stream)


def _send_lines(args: argparse.Namespace, sink: Sink, lines: Iterable[bytes]) -> int:
    topic: str = args.topic
    key: bytes | None = None if args.key is None else args.key.encode("utf-8")
    separator: bytes | None = args.key_separator
    headers: list[tuple[str, bytes]] = args.header
    tally = _Tally()
    started = time.monotonic()
    sent = 0
    interrupted = False
    try:
        for line in lines:
            if not line:
                continue
            record_key, value = key, line
            if separator is not None:
                head, found, rest = line.partition(separator)
                if found:
                    record_key, value = head, rest
            sink.produce(
                topic,
                value,
                key=record_key,
                partition=args.partition,
                headers=headers or None,
                on_delivery=tally,
            )
            sent += 1
    except KeyboardInterrupt:
        interrupted = True  # deliver what was read, then say so
    finally:
        sink.flush(args.timeout)
        sink.close(args.timeout)
    for text in tally.summary(topic, sent, time.monotonic() - started):
        print(text)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if tally.delivered == sent else EXIT_DELIVERY_FAILED
