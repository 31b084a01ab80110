"""The command line of ``python -m kafka_sink.testing``: a standalone mock cluster.

Run until interrupted, it prints the bootstrap servers of the cluster it
started. With the hidden ``--serve`` it is the child process of a
:class:`~kafka_sink.testing.MockCluster` (:func:`kafka_sink.testing.child.serve`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from kafka_sink.errors import KafkaSinkError
from kafka_sink.testing.child import serve
from kafka_sink.testing.cluster import MockCluster
from kafka_sink.testing.library import find_librdkafka

__all__ = ["main"]


def _topic_spec(text: str) -> tuple[str, int]:
    name, _, partitions = text.rpartition(":")
    if not name or not partitions.isdigit() or int(partitions) < 1:
        raise argparse.ArgumentTypeError(f"expected NAME:PARTITIONS, not {text!r}")
    return name, int(partitions)


def _run_standalone(args: argparse.Namespace) -> int:
    topics = dict(args.topic)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        cluster = MockCluster(
            args.brokers,
            topics=topics,
            replication_factor=args.replication_factor,
            debug=args.debug,
        )
    except KafkaSinkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with cluster:
        print(f"bootstrap.servers={cluster.bootstrap_servers}", flush=True)
        print(
            f"librdkafka {cluster.librdkafka_version} mock cluster, {args.brokers} broker(s); "
            "Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run a standalone mock cluster (or, with ``--serve``, a MockCluster's child)."""
    parser = argparse.ArgumentParser(
        prog="python -m kafka_sink.testing",
        description="Run librdkafka's mock Kafka cluster on loopback until interrupted.",
    )
    parser.add_argument("--brokers", type=int, default=3, help="number of brokers (default 3)")
    parser.add_argument(
        "--topic",
        type=_topic_spec,
        action="append",
        default=[],
        metavar="NAME:PARTITIONS",
        help="create a topic (repeatable)",
    )
    parser.add_argument("--replication-factor", type=int, default=None)
    parser.add_argument("--debug", default="", help="librdkafka debug contexts, e.g. mock,protocol")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--library", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--owned-log", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.library or find_librdkafka(), args.brokers, args.debug, args.owned_log)
    return _run_standalone(args)
