"""``kafka-sink demo``: its options; the demo itself is :mod:`kafka_sink.demo`.

The demo's module (and the mock cluster it starts) is imported only when the
command runs, so that the other commands stay light.
"""

from __future__ import annotations

import argparse
from typing import Any

from kafka_sink.cli.common import EXIT_CODES_HELP, positive_float


def add_demo_command(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``demo`` and its options to the ``kafka-sink`` subcommands."""
    demo = commands.add_parser(
        "demo",
        help="start an embedded local cluster, log to it through kafka_sink, read it back",
        description="Start an embedded local cluster (librdkafka's mock cluster), run a small\n"
        "application that logs through KafkaHandler and structlog and exports metrics,\n"
        "then read the topics back and print what arrived and the delivery metrics\n"
        "(needs pip install 'kafka-sink[testing]').",
        epilog=EXIT_CODES_HELP,
        formatter_class=formatter,
    )
    demo.add_argument(
        "--messages",
        type=int,
        default=600,
        help="how many requests the application serves, one log record each (default: 600)",
    )
    demo.add_argument(
        "--seconds",
        type=positive_float,
        default=3.0,
        help="how long the application takes to serve them (default: 3)",
    )
    demo.add_argument(
        "-b",
        "--bootstrap-servers",
        help="use this cluster instead of starting the embedded one (host:port,...)",
    )
    demo.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from kafka_sink.demo import run_demo  # noqa: PLC0415 - keeps the other commands light

    return run_demo(args.messages, args.bootstrap_servers, seconds=args.seconds)
