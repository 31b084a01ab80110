"""``kafka-sink spool inspect`` and ``kafka-sink spool drain``: a Sink's durable spool.

``inspect`` describes what a spool directory holds without changing it;
``drain`` opens a :class:`~kafka_sink.Sink` on it, which adopts the logs no
live process holds and delivers their records.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from kafka_sink.cli.common import (
    EXIT_CODES_HELP,
    EXIT_DELIVERY_FAILED,
    EXIT_OK,
    CommandError,
    add_connection_options,
    security_options,
    server_list,
)
from kafka_sink.cli.formats import format_timestamp
from kafka_sink.config import SinkConfig
from kafka_sink.producer.sink import Sink

_SPOOL_EXAMPLES = """\
examples:
  kafka-sink spool inspect /var/spool/app          what each log holds, without changing it
  kafka-sink spool inspect /var/spool/app --format json
  kafka-sink spool drain /var/spool/app -b kafka1:9092 --timeout 300

A spool directory (a Sink's spool_dir) holds one log per process that used
it. inspect reads every log, live or not, and the dead-letter files, and
changes nothing. drain opens a Sink on the directory, which adopts the logs
no live process holds, delivers their records (sealed batches again with
their producer id, epoch and sequence, so that the broker drops what it
already has) and deletes them; logs of live processes are left alone."""


def add_spool_commands(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``spool`` and its actions, ``inspect`` and ``drain``, to the subcommands."""
    spool = commands.add_parser(
        "spool",
        help="inspect or drain a Sink's durable spool (spool_dir)",
        description="Inspect or drain the durable spool of a Sink (its spool_dir).",
        epilog=f"{_SPOOL_EXAMPLES}\n\n{EXIT_CODES_HELP}",
        formatter_class=formatter,
    )
    actions = spool.add_subparsers(dest="spool_command", required=True, metavar="ACTION")
    inspect = actions.add_parser(
        "inspect",
        help="describe what a spool directory holds, without changing it",
        description="Describe every log of a spool directory (or one log directory): its\n"
        "owner, segments, undelivered records by topic, sealed batches awaiting an\n"
        "acknowledgement, torn tails, and the dead-letter files.",
        epilog=_SPOOL_EXAMPLES,
        formatter_class=formatter,
    )
    inspect.add_argument("directory", metavar="DIR", help="a spool_dir, or one log in it")
    inspect.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="text for people, json for programs (default: text)",
    )
    inspect.set_defaults(run=_run_spool_inspect)
    drain = actions.add_parser(
        "drain",
        help="deliver the records of the logs no live process holds, then delete them",
        description="Deliver every record that the logs of dead (or closed) processes hold,\n"
        "then delete those logs.",
        epilog=f"{_SPOOL_EXAMPLES}\n\n{EXIT_CODES_HELP}",
        formatter_class=formatter,
    )
    drain.add_argument("directory", metavar="DIR", help="the spool_dir")
    add_connection_options(drain)
    # Draining a large spool takes longer than one request: a longer default.
    timeout = drain._option_string_actions["--timeout"]
    timeout.default = 60.0
    timeout.help = "how long to wait for the records to be delivered; default 60"
    drain.set_defaults(run=_run_spool_drain)


def _spool_directory(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise CommandError(f"{text} is not a directory")
    return path


def _run_spool_inspect(args: argparse.Namespace) -> int:
    from kafka_sink.producer.spool import inspect_spool  # noqa: PLC0415 - spool users only

    report = inspect_spool(_spool_directory(args.directory))
    if args.format == "json":
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        for line in _spool_report_lines(report):
            print(line)
    return EXIT_OK


def _spool_report_lines(report: dict[str, Any]) -> list[str]:
    lines = [f"spool {report['path']}: {len(report['logs'])} log(s)"]
    for log in report["logs"]:
        owner = log.get("owner") or {}
        who = f" (pid {owner['pid']} on {owner.get('host', '?')})" if "pid" in owner else ""
        lines.append(f"log {Path(log['path']).name}: {log['state']}{who}")
        if "error" in log:
            lines.append(f"  cannot be read: {log['error']}")
            continue
        lines.append(
            f"  {len(log['segments'])} segment(s), {log['bytes']} bytes, {log['records']} "
            f"records, {log['unresolved']} undelivered"
        )
        for name, topic in sorted(log["topics"].items()):
            oldest = topic["oldest_timestamp_ms"]
            since = f", oldest {format_timestamp(oldest)}" if oldest is not None else ""
            lines.append(f"  topic {name}: {topic['unresolved']} undelivered{since}")
        for batch in log["sealed_unacknowledged"]:
            lines.append(
                f"  sealed, not acknowledged: {batch['topic']} partition {batch['partition']}, "
                f"{batch['records']} records, producer id {batch['producer_id']} epoch "
                f"{batch['producer_epoch']} base sequence {batch['base_sequence']}"
            )
        if log["sealed_incomplete"]:
            lines.append(
                f"  {log['sealed_incomplete']} sealed batch(es) lost records to a torn "
                "segment: their other records may be delivered twice"
            )
        if log["truncated_entries"]:
            lines.append(
                f"  torn or corrupt tails: {log['truncated_entries']} "
                f"({log['truncated_bytes']} bytes cut off)"
            )
        for name in log["foreign"]:
            lines.append(f"  not a spool file (left alone): {name}")
    for dead in report["dead_letter"]:
        topics = ", ".join(f"{t}: {n}" for t, n in sorted(dead.get("topics", {}).items()))
        lines.append(
            f"dead letters {dead['file']}: {dead.get('records', 0)} record(s)"
            + (f" ({topics})" if topics else "")
        )
        for reason in dead.get("reasons", []):
            lines.append(f"  {reason}")
    for name in report["foreign"]:
        lines.append(f"not a spool log (left alone): {name}")
    return lines


def _run_spool_drain(args: argparse.Namespace) -> int:
    from kafka_sink.producer.spool import inspect_spool  # noqa: PLC0415 - spool users only

    directory = _spool_directory(args.directory)
    timeout: float = args.timeout
    live = [log for log in inspect_spool(directory)["logs"] if log["state"] == "live"]
    timeout_ms = timeout * 1000.0
    options: dict[str, object] = {
        "client_id": "kafka-sink-spool-drain",
        "spool_dir": str(directory),
        "linger_ms": 5,
        "request_timeout_ms": timeout_ms,
        **security_options(args),
    }
    config = SinkConfig.from_mapping(
        options, bootstrap_servers=server_list(args.bootstrap_servers), environ={}
    )
    started = time.monotonic()
    sink = Sink(config=config)
    try:
        left = sink.flush(timeout)
        metrics = sink.metrics()
    finally:
        sink.close(min(timeout, 10.0))
    print(
        f"adopted {metrics['spool_adopted_logs']} log(s): delivered "
        f"{metrics['spool_replayed_delivered']} of {metrics['spool_replayed_records']} records "
        f"in {time.monotonic() - started:.2f} s ({metrics['spool_replayed_batches']} sealed "
        f"batch(es) sent again)"
    )
    if metrics["spool_truncated_entries"]:
        print(
            f"cut off {metrics['spool_truncated_entries']} torn or corrupt tail(s) "
            f"({metrics['spool_truncated_bytes']} bytes)"
        )
    if metrics["spool_duplicate_risk_records"]:
        print(
            f"{metrics['spool_duplicate_risk_records']} records may have been delivered twice "
            "(the broker no longer knew the producer that sent them first)"
        )
    if metrics["spool_dead_letter_records"]:
        print(f"{metrics['spool_dead_letter_records']} records moved to the dead-letter file")
    for log in live:
        owner = log.get("owner") or {}
        print(f"left alone: {Path(log['path']).name} is held by pid {owner.get('pid', '?')}")
    if left:
        print(f"{left} records still undelivered; they stay in the spool")
        return EXIT_DELIVERY_FAILED
    return EXIT_OK
