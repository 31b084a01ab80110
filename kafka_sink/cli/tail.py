"""``kafka-sink tail``: the newest records of a topic, all of them, or new ones as they come.

The records are read with the :class:`~kafka_sink.net.fetcher.Fetcher` and
printed through a :class:`~kafka_sink.cli.formats.RecordFormatter`;
:func:`newest` picks the last records by timestamp.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterable
from typing import Any

from kafka_sink.cli import formats
from kafka_sink.cli.common import (
    EXIT_CODES_HELP,
    EXIT_OK,
    add_connection_options,
    non_negative_int,
    security_options,
    server_list,
    topic_name,
)
from kafka_sink.cli.formats import RecordFormatter
from kafka_sink.net.cluster import Connection
from kafka_sink.net.fetcher import FetchedRecord, Fetcher

_TAIL_EXAMPLES = """\
examples:
  kafka-sink tail -t logs                  the 10 newest records of the topic
  kafka-sink tail -t logs -n 100 -p 0      the 100 newest records of partition 0
  kafka-sink tail -t logs -n 5 --per-partition
  kafka-sink tail -t logs -f               the 10 newest, then new records as they come
  kafka-sink tail -t logs -n 0 -f          only new records
  kafka-sink tail -t logs --from-beginning --format json > logs.jsonl

Text output has one line per record, tab-separated: partition, offset,
timestamp (ISO 8601, UTC), key, headers (name=value,...), value. Keys,
header values and values are shown as text when they are UTF-8, with
control characters and invalid bytes escaped (\\n, \\t, \\x00); a null key or
value is shown as an empty field. --format json writes one JSON object per
line instead, exact: bytes that are not UTF-8 become {"base64": "..."}.

-n selects the N newest records of the topic by timestamp (of each
partition with --per-partition) and prints them oldest first; compacted
topics and transaction markers can make them fewer. --from-beginning prints
every record, partition by partition as they are fetched. -f then keeps
printing records as they are written (partitions added meanwhile are not
followed) until interrupted."""


def add_tail_command(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``tail`` and its options to the ``kafka-sink`` subcommands."""
    tail = commands.add_parser(
        "tail",
        help="print the last records of a topic, or follow it",
        description="Print the last records of a topic, or all of them, and optionally\n"
        "follow it. Every compression codec is decoded.",
        epilog=f"{_TAIL_EXAMPLES}\n\n{EXIT_CODES_HELP}",
        formatter_class=formatter,
    )
    add_connection_options(tail)
    tail.add_argument("-t", "--topic", type=topic_name, required=True, help="the topic to read")
    start = tail.add_mutually_exclusive_group()
    start.add_argument(
        "-n",
        "--last",
        type=non_negative_int,
        default=10,
        metavar="N",
        help="print the N newest records of the topic, by timestamp (default: 10)",
    )
    start.add_argument(
        "--from-beginning", action="store_true", help="print every record still stored"
    )
    tail.add_argument(
        "--per-partition",
        action="store_true",
        help="-n counts the records of each partition rather than of the topic",
    )
    tail.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new records until interrupted"
    )
    tail.add_argument(
        "-p",
        "--partition",
        type=non_negative_int,
        action="append",
        metavar="N",
        help="read only this partition (repeatable; default: every partition)",
    )
    tail.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="text: tab-separated columns; json: one JSON object per line (default: text)",
    )
    tail.add_argument(
        "--value-format",
        choices=formats.value_format_names(),
        default=formats.AUTO,
        help="how values are shown: raw bytes as text, json parsed as JSON, auto the "
        "known encodings (default: auto)",
    )
    tail.set_defaults(run=_run_tail)


def _run_tail(args: argparse.Namespace) -> int:
    topic: str = args.topic
    formatter = RecordFormatter(args.format, args.value_format)
    out = sys.stdout
    # Keys and values may hold text the terminal's encoding cannot show.
    reconfigure = getattr(out, "reconfigure", None)
    if reconfigure is not None:
        with contextlib.suppress(ValueError, OSError):
            reconfigure(errors="backslashreplace")

    def on_reset(topic: str, partition: int, old: int, new: int) -> None:
        print(
            f"kafka-sink tail: partition {partition}: offset {old} is out of range, "
            f"continuing at {new}",
            file=sys.stderr,
        )

    connection = Connection(
        broker_list=server_list(args.bootstrap_servers),
        timeout=args.timeout,
        # Up to about 20 s of back-off in a row: a follower rides out a leader
        # election or a broker restart.
        send_max_attempts=8,
        **security_options(args),
    )
    with connection:
        fetcher = Fetcher(connection, on_offset_reset=on_reset)
        ranges = fetcher.offsets(topic, args.partition)
        end = {p: r.latest for p, r in ranges.items()}
        if args.from_beginning:
            start = {p: r.earliest for p, r in ranges.items()}
            for record in fetcher.read(topic, start, end=end):
                out.write(formatter(record) + "\n")
        elif args.last:
            n: int = args.last
            start = {p: max(r.earliest, r.latest - n) for p, r in ranges.items()}
            records = list(fetcher.read(topic, start, end=end))
            for record in newest(records, n, per_partition=args.per_partition):
                out.write(formatter(record) + "\n")
        out.flush()
        if args.follow:
            for record in fetcher.read(topic, end):
                out.write(formatter(record) + "\n")
                out.flush()
    return EXIT_OK


def newest(
    records: Iterable[FetchedRecord], n: int, *, per_partition: bool = False
) -> list[FetchedRecord]:
    """The ``n`` newest records by timestamp (of each partition), oldest first.

    Ties are broken by partition and offset, so the order is stable.
    """
    ordered = sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))
    if n <= 0:
        return []
    if not per_partition:
        return ordered[-n:]
    kept: list[FetchedRecord] = []
    seen: dict[int, int] = {}
    for record in reversed(ordered):
        if seen.get(record.partition, 0) < n:
            seen[record.partition] = seen.get(record.partition, 0) + 1
            kept.append(record)
    kept.reverse()
    return kept
