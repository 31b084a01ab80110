"""A real Sink (and sender thread) over the in-memory FakeCluster, for the logging unit tests.

:class:`tests.fakes.FakeNetwork` answers at once and never waits, which is
what turn-by-turn sender tests want; a Sink's own thread would spin on it.
:class:`ThreadedFakeNetwork` waits in ``poll`` like the real network client:
until a wakeup (new records, a flush) or the sender's deadline.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from kafka_sink import Sink
from kafka_sink.protocol.records import decode_batches
from tests.fakes import FakeCluster, FakeNetwork


class ThreadedFakeNetwork(FakeNetwork):
    def __init__(self, cluster: FakeCluster) -> None:
        super().__init__(cluster)
        self._woken = threading.Event()

    def wakeup(self) -> None:
        self.wakeups += 1
        self._woken.set()

    def poll(self, timeout: float) -> None:
        if not self.queue:
            self._woken.wait(max(0.0, timeout))
        self._woken.clear()
        super().poll(0.0)


@dataclass(frozen=True)
class Stored:
    """A record as the fake cluster stored it."""

    partition: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes | None]
    timestamp: int


def fake_sink(
    partitions: int = 3, topics: tuple[str, ...] = ("logs",), **options: Any
) -> tuple[Sink, FakeCluster]:
    """A Sink, and its cluster that has ``topics`` with ``partitions`` each."""
    cluster = FakeCluster(1)
    for topic in topics:
        cluster.add_topic(topic, partitions)
    options.setdefault("linger_ms", 1)
    sink = Sink("fake:9001", network_factory=lambda config: ThreadedFakeNetwork(cluster), **options)
    return sink, cluster


def stored(cluster: FakeCluster, topic: str = "logs") -> list[Stored]:
    """Every record the fake cluster holds for ``topic``, by partition then offset."""
    out: list[Stored] = []
    for (name, partition), wires in sorted(cluster.logs.items()):
        if name != topic:
            continue
        for wire in wires:
            for batch in decode_batches(wire):
                out.extend(
                    Stored(partition, r.key, r.value, dict(r.headers), r.timestamp)
                    for r in batch.records
                )
    return out
