"""The ``kafka-sink`` program: its argument parser, and :func:`main`, which runs a command.

Each command adds its own subparser (``send``, ``tail``, ``demo``, ``spool``);
:func:`main` parses the arguments, runs the command and turns its errors
into one line on standard error and an exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from kafka_sink import __version__
from kafka_sink.cli.common import (
    EXIT_CODES_HELP,
    EXIT_INTERRUPTED,
    EXIT_KAFKA_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
)
from kafka_sink.cli.demo import add_demo_command
from kafka_sink.cli.send import add_send_command
from kafka_sink.cli.spool import add_spool_commands
from kafka_sink.cli.tail import add_tail_command
from kafka_sink.errors import BrokerResponseError, InvalidArgumentError, KafkaSinkError


def build_parser() -> argparse.ArgumentParser:
    """The ``kafka-sink`` argument parser."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="kafka-sink",
        description="Ship application logs, events and metrics to Apache Kafka, and read\n"
        "them back. Run 'kafka-sink COMMAND --help' for the options of a command.",
        epilog=EXIT_CODES_HELP,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_send_command(commands, formatter)
    add_tail_command(commands, formatter)
    add_demo_command(commands, formatter)
    add_spool_commands(commands, formatter)
    return parser


def _describe(exc: KafkaSinkError) -> str:
    topic = exc.context.get("topic")
    if isinstance(exc, BrokerResponseError) and topic and str(topic) not in exc.message:
        return f"topic {topic!r}: {exc.message}"
    return exc.message


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kafka-sink`` with ``argv`` (default: the process's arguments); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"{parser.prog} {args.command}: error:"
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (``| head``): stop quietly, and
        # keep the interpreter's final flush from complaining about it.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except CommandError as exc:
        print(f"{prefix} {exc.message}", file=sys.stderr)
        return exc.exit_code
    except InvalidArgumentError as exc:
        print(f"{prefix} {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except KafkaSinkError as exc:
        print(f"{prefix} {_describe(exc)}", file=sys.stderr)
        return EXIT_KAFKA_ERROR
    return code
