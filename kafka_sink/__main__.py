"""Command line entry point: ``python -m kafka_sink demo``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kafka-sink",
        description="Ship application logs, events and metrics to Apache Kafka.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="start an embedded local cluster, send records through kafka_sink, read them back",
    )
    demo.add_argument("--messages", type=int, default=12, help="how many messages to send")
    demo.add_argument(
        "--bootstrap-servers",
        help="use this cluster instead of starting the embedded one (host:port,...)",
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        from kafka_sink.demo import run_demo  # noqa: PLC0415 - keeps --help fast

        return run_demo(args.messages, args.bootstrap_servers)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
