"""Micro-benchmark of NetworkClient: many small pipelined Produce requests to the mock cluster.

Run it directly (pytest does not collect it)::

    python tests/bench/bench_network.py [--requests 10000] [--in-flight 5] [--rounds 5]

The librdkafka mock cluster runs in a child process, so the CPU time measured
here (``time.process_time``) is this process's alone: the sender-side cost.
It prints, as the median of several rounds:

* pipelined Produce with acks=1: requests/s and us of CPU per request, with
  ``max_in_flight`` requests in flight on one connection;
* the same with acks=0 (completion on write, no response to decode);
* the part of that CPU spent in the sans-I/O layer alone (framing and encoding
  the request, decoding a response), measured without sockets, so the rest is
  the engine's own overhead (syscalls, selector, bookkeeping, callbacks);
* for comparison, the blocking ``BrokerConnection`` doing one request at a time.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from kafka_sink.config import parse_broker_list
from kafka_sink.net.broker import BrokerConnection
from kafka_sink.net.client import ClientResponse, NetworkClient
from kafka_sink.net.transport import TcpTransport
from kafka_sink.protocol.client import ClientProtocol
from kafka_sink.protocol.produce import (
    PartitionProduceData,
    PartitionProduceResponse,
    ProduceRequest,
    ProduceResponse,
    TopicProduceData,
    TopicProduceResponse,
)
from kafka_sink.protocol.records import encode_batch
from kafka_sink.protocol.schema import encode
from kafka_sink.testing import MockCluster

TOPIC = "bench"
PRODUCE = 0


def small_request(acks: int) -> ProduceRequest:
    """One batch of one 100-byte record: the request is about 200 bytes on the wire."""
    batch = encode_batch([(1_700_000_000_000, None, b"x" * 100, ())])
    return ProduceRequest(
        acks=acks,
        timeout_ms=5000,
        topic_data=[TopicProduceData(TOPIC, [PartitionProduceData(0, batch)])],
    )


def pipelined(client: NetworkClient, node: int, count: int, acks: int) -> tuple[float, float]:
    """Send ``count`` requests keeping the pipe full; return (wall s, CPU s)."""
    request = small_request(acks)
    done = 0
    failed: list[ClientResponse[Any]] = []

    def on_done(response: ClientResponse[Any]) -> None:
        nonlocal done
        done += 1
        if response.error is not None:
            failed.append(response)

    sent = 0
    wall, cpu = time.perf_counter(), time.process_time()
    while done < count:
        while sent < count and client.ready(node):
            client.send(node, request, on_done)
            sent += 1
        client.poll(1.0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if failed:
        raise SystemExit(f"{len(failed)} requests failed, e.g. {failed[0].error}")
    return wall, cpu


def protocol_only(count: int, version: int) -> float:
    """CPU s to frame ``count`` requests and decode as many responses, without I/O."""
    request = small_request(1)
    body = encode(
        ProduceResponse([TopicProduceResponse(TOPIC, [PartitionProduceResponse(0, 0, 42)])]),
        version,
    )
    protocol = ClientProtocol("bench")
    cpu = time.process_time()
    for _ in range(count):
        correlation_id, _frame = protocol.frame(request, version)
        header = struct.pack(">ii", len(body) + 4 + (version >= 9), correlation_id)
        protocol.receive_data(header + (b"\0" if version >= 9 else b"") + body)
        protocol.next_response()
    return time.process_time() - cpu


def blocking(address: str, count: int) -> tuple[float, float]:
    [broker] = parse_broker_list(address)
    connection = BrokerConnection(broker, TcpTransport(), client_id="bench")
    connection.connect(10.0)
    request = small_request(1)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        connection.request(request, 10.0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    connection.close()
    return wall, cpu


def median_of(rounds: int, run: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    results = [run() for _ in range(rounds)]
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


def report(label: str, count: int, wall: float, cpu: float) -> None:
    print(
        f"{label:44s} {count / wall:9.0f} requests/s   {cpu / count * 1e6:6.1f} us CPU/request"
        f"   ({wall:.3f} s wall, {cpu:.3f} s CPU)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--in-flight", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    count = args.requests

    with MockCluster(1, topics={TOPIC: 1}, replication_factor=1) as cluster:
        client = NetworkClient(client_id="bench", max_in_flight=args.in_flight)
        client.set_nodes({1: parse_broker_list(cluster.bootstrap_servers)[0]})
        deadline = time.monotonic() + 30
        while not client.ready(1):
            if time.monotonic() > deadline:
                raise SystemExit(f"cannot connect: {client.connection_error(1)}")
            client.poll(0.1)
        version = client.version_for(1, PRODUCE)
        print(
            f"{count} Produce requests of ~200 bytes, Produce v{version}, "
            f"max_in_flight={args.in_flight}, median of {args.rounds} rounds "
            f"(Python {sys.version.split()[0]})"
        )
        pipelined(client, 1, 1000, 1)  # warm up
        wall, cpu = median_of(args.rounds, lambda: pipelined(client, 1, count, 1))
        report("NetworkClient, pipelined, acks=1", count, wall, cpu)
        wall0, cpu0 = median_of(args.rounds, lambda: pipelined(client, 1, count, 0))
        report("NetworkClient, acks=0 (done when written)", count, wall0, cpu0)
        codec = statistics.median(protocol_only(count, version) for _ in range(args.rounds))
        print(
            f"{'  of which framing + encode + decode':44s} {'':9s}"
            f"{'':13s}   {codec / count * 1e6:6.1f} us CPU/request (no I/O)"
        )
        print(
            f"{'  so the engine itself, acks=1':44s} {'':9s}{'':13s}   "
            f"{(cpu - codec) / count * 1e6:6.1f} us CPU/request"
        )
        client.close()
        bwall, bcpu = median_of(
            args.rounds, lambda: blocking(cluster.bootstrap_servers, max(count // 5, 1))
        )
        report("BrokerConnection, blocking, one at a time", max(count // 5, 1), bwall, bcpu)


if __name__ == "__main__":
    main()
