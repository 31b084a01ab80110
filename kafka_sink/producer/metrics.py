"""The Sink's own metrics: counters kept by the pipeline, read as a snapshot.

Counters touched by callers' threads (dropped) are only changed under the
accumulator's lock; the others belong to the sender thread. The count of
records queued is the accumulator's own, passed in with the live values. A snapshot is
a plain dict, cheap to take and safe to serialise: it holds counts, sizes and
states, never record contents or credentials.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

__all__ = ["SinkMetrics"]

_LATENCY_SAMPLES = 1024


class SinkMetrics:
    """Mutable counters of one Sink."""

    __slots__ = (
        "batches_sent",
        "broker_errors",
        "bytes_compressed",
        "bytes_uncompressed",
        "callback_errors",
        "dropped",
        "failed",
        "idempotence",
        "latencies",
        "metadata_refreshes",
        "records_sent",
        "requests",
        "retries",
    )

    def __init__(self) -> None:
        self.records_sent = 0
        self.failed: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.bytes_uncompressed = 0
        self.bytes_compressed = 0
        self.batches_sent = 0
        self.requests = 0
        self.retries = 0
        self.broker_errors: Counter[str] = Counter()
        self.callback_errors = 0
        self.metadata_refreshes = 0
        self.idempotence = "pending"
        self.latencies: deque[float] = deque(maxlen=_LATENCY_SAMPLES)

    def snapshot(self, records_queued: int, **live: Any) -> dict[str, Any]:
        """A plain-dict view; ``live`` adds values read at call time (buffer, connections)."""
        latencies = sorted(self.latencies)
        batches = self.batches_sent or 1
        return {
            "records_queued": records_queued,
            "records_sent": self.records_sent,
            "records_failed": dict(self.failed),
            "records_dropped": dict(self.dropped),
            "records_failed_total": sum(self.failed.values()),
            "records_dropped_total": sum(self.dropped.values()),
            "bytes_uncompressed": self.bytes_uncompressed,
            "bytes_compressed": self.bytes_compressed,
            "batches_sent": self.batches_sent,
            "records_per_batch": self.records_sent / batches if self.batches_sent else 0.0,
            "bytes_per_batch": self.bytes_compressed / batches if self.batches_sent else 0.0,
            "requests": self.requests,
            "retries": self.retries,
            "broker_errors": dict(self.broker_errors),
            "callback_errors": self.callback_errors,
            "metadata_refreshes": self.metadata_refreshes,
            "request_latency_ms_p50": _quantile(latencies, 0.50),
            "request_latency_ms_p99": _quantile(latencies, 0.99),
            "idempotence": self.idempotence,
            **live,
        }


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0
