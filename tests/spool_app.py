"""An application process for the spool's crash tests: produces numbered, keyed records.

Run as ``python -m tests.spool_app '<json spec>'``. It opens a Sink on
``spool_dir`` (adopting what earlier, killed processes left there), then
produces the numbers ``start .. start + count - 1`` to ``topic`` with key
``k{n % keys}`` and value ``n``, ``rate`` records per second. After each
``produce()`` returns it writes the number and a newline to standard output
with one unbuffered ``write()``: what the parent reads there was accepted,
and must be in the topic exactly once. Then, unless it was killed, it flushes,
closes and prints ``DONE`` and the Sink's metrics as JSON.

``kill`` makes the process SIGKILL itself at a chosen moment:

``{"after_request": n}``
    right after the bytes of the n-th Produce request were written to the
    socket, before any answer is read;
``{"on_response": n}``
    when the n-th Produce response arrives, before it is processed: the
    broker wrote the batches but the acknowledgement is lost;
``{"mid_write": n}``
    while writing the n-th record into the spool: half of its frame is
    written, then the process dies (a torn tail);
``{}`` (default)
    never by itself: the parent may kill it at any time.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kafka_sink.net.metadata import TopicPartition
    from kafka_sink.net.response import ClientResponse
    from kafka_sink.producer.accumulator import ProducerBatch
    from kafka_sink.protocol.produce import ProduceResponse
    from kafka_sink.protocol.records import Header


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(kill: dict[str, int]) -> None:
    from kafka_sink.net import connection
    from kafka_sink.producer import sender, spool

    if "after_request" in kill:
        target = kill["after_request"]
        sent = [0]
        armed = [False]
        original_send = sender.Sender._send_produce
        original_write = connection.NodeConnection.write_plain

        def send_produce(self: Any, node: int, batches: Any, now: float) -> None:
            original_send(self, node, batches, now)
            sent[0] += 1
            if sent[0] == target:
                armed[0] = True

        def write_plain(self: Any, sock: Any) -> str | None:
            failure = original_write(self, sock)
            if armed[0] and not self.out:
                _die()
            return failure

        sender.Sender._send_produce = send_produce  # type: ignore[method-assign]  # a kill point
        connection.NodeConnection.write_plain = write_plain  # type: ignore[method-assign]  # a kill point
    if "on_response" in kill:
        target = kill["on_response"]
        seen = [0]
        original_on_produce = sender.Sender._on_produce

        def on_produce(
            self: sender.Sender,
            response: ClientResponse[ProduceResponse | None],
            sent: dict[TopicPartition, ProducerBatch],
        ) -> None:
            if response.body is not None:
                seen[0] += 1
                if seen[0] == target:
                    _die()
            original_on_produce(self, response, sent)

        sender.Sender._on_produce = on_produce  # type: ignore[method-assign]  # a kill point
    if "mid_write" in kill:
        target = kill["mid_write"]
        written = [0]
        original_write_record = spool.SpoolLog.write_record

        def write_record(
            self: spool.SpoolLog,
            topic: str,
            partition: int | None,
            timestamp: int,
            key: bytes | None,
            value: bytes | None,
            headers: Sequence[Header],
        ) -> int:
            written[0] += 1
            if written[0] == target and self.mm is not None:
                # Half a frame, as a process killed inside the copy leaves it.
                data = b"\x2a\x00\x00\x00\x11\x22\x33\x44" + b"\x01" * 12
                self.mm[self.pos : self.pos + len(data)] = data
                _die()
            return original_write_record(self, topic, partition, timestamp, key, value, headers)

        spool.SpoolLog.write_record = write_record  # type: ignore[method-assign]  # a kill point


def main(spec_text: str) -> int:
    spec = json.loads(spec_text)
    _arm(spec.get("kill", {}))
    import kafka_sink

    sink = kafka_sink.Sink(
        spec["servers"],
        spool_dir=spec["spool_dir"],
        linger_ms=spec.get("linger_ms", 5),
        batch_size=spec.get("batch_size", 16384),
        buffer_memory=spec.get("buffer_memory", 32 * 1024 * 1024),
        spool_segment_bytes=spec.get("segment_bytes", 65536),
        spool_fsync=spec.get("fsync", "never"),
        request_timeout_ms=spec.get("request_timeout_ms", 10000),
        retry_backoff_ms=20,
        retry_backoff_max_ms=200,
        client_id=spec.get("client_id", "spool-app"),
    )
    topic: str = spec["topic"]
    keys: int = spec.get("keys", 8)
    rate: float = spec.get("rate", 3000.0)
    start: int = spec["start"]
    padding = b"." * spec.get("padding", 40)
    began = time.monotonic()
    for i in range(spec["count"]):
        number = start + i
        sink.produce(topic, b"%d:" % number + padding, key=b"k%d" % (number % keys))
        os.write(1, b"%d\n" % number)
        ahead = began + (i + 1) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    left = sink.flush(spec.get("flush_timeout", 60))
    metrics = sink.metrics()
    sink.close(5)
    os.write(1, b"DONE " + json.dumps({"left": left, "metrics": metrics}).encode() + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
