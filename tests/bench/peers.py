"""The contenders of the peer benchmark: one small adapter per Kafka client.

Each adapter wraps one producer behind the same handful of operations, so that
the scenarios in :mod:`tests.bench.worker` run the same loop for every client:

=====================  =====================================================
``unavailable()``      why this client cannot run here (``None`` if it can)
``version()``          the version to print in the results
``Contender(s)``       a producer configured from :class:`Settings`
``start()``            connect and learn the topic's metadata (one record)
``produce(v, k)``      hand one record over on the caller's thread; with
                       ``block_when_full`` wait for buffer space, else count
                       the record as rejected and return
``flush(timeout)``     wait until every record is acknowledged or has
                       failed; return how many are still pending
``failed()``           how many records finally failed (after ``flush``)
=====================  =====================================================

aiokafka is asynchronous: its adapter has the same operations as coroutines
(:class:`AsyncContender`) and the worker runs the same loops with ``await``.
The adapters hold each record's delivery handle when the client gives one
(futures), so that ``failed()`` can check every record after the timed part;
``keep_handles=False`` drops them where holding them would distort a memory
measurement.

Every adapter adds one Python call per record on top of the client's own
``produce``/``send``, about 0.05 us on a 2-core test machine: about 3% of
confluent-kafka's cost per record, 1% of kafka_sink's, less for the others.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "CONTENDERS",
    "AiokafkaContender",
    "AsyncContender",
    "ConfluentContender",
    "Contender",
    "KafkaPythonContender",
    "KafkaSinkContender",
    "KafkaSinkProduceContender",
    "KafkaSinkPureContender",
    "Settings",
    "SyncContender",
]


@dataclass(frozen=True, slots=True)
class Settings:
    """The producer settings every contender gets, in Java producer terms."""

    bootstrap_servers: str
    topic: str
    codec: str = "lz4"  # none, gzip, lz4 or zstd
    acks: int = 1
    linger_ms: int = 5
    batch_size: int = 131_072
    buffer_memory: int = 32 * 1024 * 1024
    max_block_ms: int = 60_000
    block_when_full: bool = True
    keep_handles: bool = True
    client_id: str = "kafka-sink-bench"


def _distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _missing(module: str, install: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed (pip install {install})"
    return None


class Contender(abc.ABC):
    """What every adapter declares about its client."""

    #: The name used on the command line.
    name: ClassVar[str]
    #: The name in the tables (the command-line name unless given).
    label: ClassVar[str | None] = None
    #: Environment variables of this contender's children (None: unset).
    env: ClassVar[dict[str, str | None]] = {}
    #: Why the RSS scenario does not apply to this client, or None.
    offline_limitation: ClassVar[str | None] = None
    is_async: ClassVar[bool] = False

    @classmethod
    @abc.abstractmethod
    def unavailable(cls) -> str | None:
        """Why this client cannot run here, or None."""

    @classmethod
    @abc.abstractmethod
    def version(cls) -> str:
        """The client's version, as printed in the tables."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: Records refused because the buffer was full (block_when_full=False).
        self.rejected = 0
        self._handles: list[Any] = []

    def stats(self) -> dict[str, Any]:
        """Client-specific numbers worth reporting (counts of drops, for example)."""
        return {}


class SyncContender(Contender):
    """A client whose producer is called from ordinary threads."""

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def produce(self, value: bytes, key: bytes | None) -> None: ...

    @abc.abstractmethod
    def flush(self, timeout: float) -> int: ...

    @abc.abstractmethod
    def failed(self) -> int: ...


class AsyncContender(Contender):
    """A client whose producer lives on an asyncio event loop."""

    is_async = True

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def produce(self, value: bytes, key: bytes | None) -> None: ...

    @abc.abstractmethod
    async def flush(self, timeout: float) -> int: ...

    @abc.abstractmethod
    def failed(self) -> int: ...


# ---------------------------------------------------------------------------
# kafka_sink
# ---------------------------------------------------------------------------


class KafkaSinkContender(SyncContender):
    """kafka_sink's asynchronous producer, ``kafka_sink.Sink``.

    Targets this API::

        sink = kafka_sink.Sink(bootstrap_servers=..., client_id=..., acks=1,
                               compression_type="lz4", linger_ms=5, batch_size=...,
                               buffer_memory=..., max_block_ms=...)
        future = sink.produce(topic, value, key=None, partition=None,
                              timestamp=None, headers=None, on_delivery=None)
        remaining = sink.flush(timeout=None)
        sink.close(timeout=None); sink.metrics() -> dict

    When the configuration also knows ``on_buffer_full``, it is set to
    ``"block"`` where the scenario needs every record delivered (throughput,
    produce cost) and left at its default where the buffer is meant to
    overflow (RSS with every broker down).
    """

    name = "kafka_sink"
    label = "kafka_sink (compiled)"
    #: The compiled path, where the extension is built: KAFKA_SINK_PURE unset.
    env: ClassVar[dict[str, str | None]] = {"KAFKA_SINK_PURE": None}
    #: Sink.enqueue (no future per record) or Sink.produce (a future each).
    api: ClassVar[str] = "enqueue"

    @classmethod
    def unavailable(cls) -> str | None:
        try:
            import kafka_sink
        except ImportError as exc:  # pragma: no cover - this is the repository under test
            return f"kafka_sink cannot be imported: {exc}"
        sink = getattr(kafka_sink, "Sink", None)
        if sink is None:
            return "kafka_sink.Sink does not exist yet in this checkout"
        missing = [m for m in ("produce", "flush", "close", "metrics") if not hasattr(sink, m)]
        if missing:
            return f"kafka_sink.Sink lacks {', '.join(missing)}()"
        return None

    @classmethod
    def version(cls) -> str:
        import kafka_sink

        return str(getattr(kafka_sink, "__version__", "?"))

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        import kafka_sink

        options: dict[str, Any] = {
            "bootstrap_servers": settings.bootstrap_servers,
            "client_id": settings.client_id,
            "acks": settings.acks,
            "compression_type": settings.codec,
            "linger_ms": settings.linger_ms,
            "batch_size": settings.batch_size,
            "buffer_memory": settings.buffer_memory,
            "max_block_ms": settings.max_block_ms,
        }
        config_type = getattr(kafka_sink, "SinkConfig", None)
        if (
            settings.block_when_full
            and dataclasses.is_dataclass(config_type)
            and "on_buffer_full" in {f.name for f in dataclasses.fields(config_type)}
        ):
            options["on_buffer_full"] = "block"
        self._sink = kafka_sink.Sink(**options)
        # Like confluent-kafka's produce(): no object per record, failures
        # counted (here per batch, in metrics()). The futures of produce()
        # are measured by the "-produce" contender, and wherever a scenario
        # keeps the handles.
        with_futures = self.api == "produce" or settings.keep_handles
        self._produce = self._sink.produce if with_futures else self._sink.enqueue
        self._topic = settings.topic

    def start(self) -> None:
        self._sink.produce(self._topic, b"warm-up", key=b"warm-up")
        remaining = self._sink.flush(30.0)
        if remaining:
            raise RuntimeError(f"kafka_sink could not deliver a first record ({remaining} left)")

    def produce(self, value: bytes, key: bytes | None) -> None:
        future = self._produce(self._topic, value, key=key)
        if self.settings.keep_handles:
            self._handles.append(future)

    def flush(self, timeout: float) -> int:
        remaining: int = self._sink.flush(timeout)
        return remaining

    def failed(self) -> int:
        if not self._handles:
            return int(self._sink.metrics().get("records_failed_total", 0))
        failures = 0
        for future in self._handles:
            # A pending record is counted by flush(), not here.
            if future.done() and future.exception(0) is not None:
                failures += 1
        return failures

    def stats(self) -> dict[str, Any]:
        metrics = self._sink.metrics()
        words = ("drop", "buffer", "fail", "error", "reject")
        return {
            key: value
            for key, value in metrics.items()
            if isinstance(value, int | float) and any(word in key for word in words)
        }


class KafkaSinkPureContender(KafkaSinkContender):
    """The same ``kafka_sink.Sink``, its pure-Python path forced (``KAFKA_SINK_PURE=1``)."""

    name = "kafka_sink-pure"
    label = "kafka_sink (pure)"
    env: ClassVar[dict[str, str | None]] = {"KAFKA_SINK_PURE": "1"}


class KafkaSinkProduceContender(KafkaSinkContender):
    """``Sink.produce``, a delivery future per record, on the compiled path."""

    name = "kafka_sink-produce"
    label = "kafka_sink produce() (compiled)"
    api: ClassVar[str] = "produce"


# ---------------------------------------------------------------------------
# confluent-kafka (librdkafka)
# ---------------------------------------------------------------------------


class ConfluentContender(SyncContender):
    """confluent-kafka's ``Producer`` (librdkafka).

    Delivery reports are requested for failures only
    (``delivery.report.only.error``): a record is acknowledged when
    ``flush()`` has returned 0 without a failure report. ``poll(0)`` is called
    every 1024 records to serve those reports. ``queue.buffering.max.kbytes``
    is the buffer bound (the message-count bound is lifted so that bytes are
    what limits); a full queue raises ``BufferError``, on which the adapter
    polls for 1 ms and retries when blocking is wanted.
    """

    name = "confluent-kafka"

    @classmethod
    def unavailable(cls) -> str | None:
        return _missing("confluent_kafka", "confluent-kafka")

    @classmethod
    def version(cls) -> str:
        import confluent_kafka

        librdkafka = confluent_kafka.libversion()[0]
        return f"{_distribution_version('confluent-kafka')} (librdkafka {librdkafka})"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        from confluent_kafka import Producer

        self._failures = 0
        self._count = 0
        config: dict[str, Any] = {
            "bootstrap.servers": settings.bootstrap_servers,
            "client.id": settings.client_id,
            "acks": settings.acks,
            "compression.type": settings.codec,
            "linger.ms": settings.linger_ms,
            "batch.size": settings.batch_size,
            "queue.buffering.max.kbytes": settings.buffer_memory // 1024,
            "queue.buffering.max.messages": 2_147_483_647,
            # Java-compatible key hashing, as every other contender uses.
            "partitioner": "murmur2_random",
            "delivery.report.only.error": True,
            "on_delivery": self._on_delivery,
        }
        self._producer = Producer(config)
        self._topic = settings.topic

    def _on_delivery(self, error: Any, message: Any) -> None:
        if error is not None:
            self._failures += 1

    def start(self) -> None:
        self._producer.produce(self._topic, b"warm-up", b"warm-up")
        remaining = self._producer.flush(30.0)
        if remaining or self._failures:
            raise RuntimeError("confluent-kafka could not deliver a first record")

    def produce(self, value: bytes, key: bytes | None) -> None:
        producer = self._producer
        while True:
            try:
                producer.produce(self._topic, value, key)
                break
            except BufferError:
                if not self.settings.block_when_full:
                    self.rejected += 1
                    return
                producer.poll(0.001)
        self._count += 1
        if not self._count & 1023:
            producer.poll(0)

    def flush(self, timeout: float) -> int:
        remaining: int = self._producer.flush(timeout)
        return remaining

    def failed(self) -> int:
        return self._failures

    def stats(self) -> dict[str, Any]:
        return {"queued": len(self._producer)}


# ---------------------------------------------------------------------------
# kafka-python
# ---------------------------------------------------------------------------


class KafkaPythonContender(SyncContender):
    """kafka-python's ``KafkaProducer`` (pure Python, a sender thread).

    kafka-python 2.x deprecated ``buffer_memory`` and has no buffer bound, so
    the RSS scenario shows its unbounded growth. kafka-python 3.0 cannot
    bootstrap from librdkafka's mock cluster: it fails to decode the
    ``UNSUPPORTED_VERSION`` answer to its first ApiVersions request (Kafka
    brokers before 2.4 give the same answer), so the benchmark needs
    ``kafka-python<3``.
    """

    name = "kafka-python"

    @classmethod
    def unavailable(cls) -> str | None:
        return _missing("kafka", "'kafka-python<3'")

    @classmethod
    def version(cls) -> str:
        return _distribution_version("kafka-python")

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        from kafka import KafkaProducer
        from kafka.errors import KafkaTimeoutError

        try:
            self._producer = KafkaProducer(
                bootstrap_servers=settings.bootstrap_servers.split(","),
                client_id=settings.client_id,
                acks=settings.acks,
                compression_type=None if settings.codec == "none" else settings.codec,
                linger_ms=settings.linger_ms,
                batch_size=settings.batch_size,
                max_block_ms=settings.max_block_ms,
            )
        except KafkaTimeoutError as exc:
            raise RuntimeError(
                f"kafka-python {self.version()} cannot bootstrap ({exc}); "
                "kafka-python 3.0 fails on the mock cluster: install 'kafka-python<3'"
            ) from exc
        self._send = self._producer.send
        self._topic = settings.topic

    def start(self) -> None:
        self._producer.send(self._topic, value=b"warm-up", key=b"warm-up").get(timeout=30)

    def produce(self, value: bytes, key: bytes | None) -> None:
        future = self._send(self._topic, value=value, key=key)
        if self.settings.keep_handles:
            self._handles.append(future)

    def flush(self, timeout: float) -> int:
        from kafka.errors import KafkaTimeoutError

        with contextlib.suppress(KafkaTimeoutError):
            self._producer.flush(timeout=timeout)
        return sum(1 for future in self._handles if not future.is_done)

    def failed(self) -> int:
        return sum(1 for future in self._handles if future.failed())


# ---------------------------------------------------------------------------
# aiokafka
# ---------------------------------------------------------------------------


class AiokafkaContender(AsyncContender):
    """aiokafka's ``AIOKafkaProducer`` (asyncio).

    Not part of the RSS scenario: aiokafka has no buffer bound, and once a
    partition's batch is full ``send()`` waits for it to drain (up to
    ``request_timeout_ms``), so with every broker down the caller blocks
    instead of buffering.
    """

    name = "aiokafka"
    offline_limitation = (
        "send() waits for a full partition batch to drain, so with every broker down "
        "the caller blocks rather than buffers"
    )

    @classmethod
    def unavailable(cls) -> str | None:
        return _missing("aiokafka", "aiokafka")

    @classmethod
    def version(cls) -> str:
        return _distribution_version("aiokafka")

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._producer: Any = None
        self._send: Callable[..., Any] | None = None
        self._topic = settings.topic

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        settings = self.settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=settings.client_id,
            acks=settings.acks,
            compression_type=None if settings.codec == "none" else settings.codec,
            linger_ms=settings.linger_ms,
            max_batch_size=settings.batch_size,
        )
        await self._producer.start()
        self._send = self._producer.send
        await self._producer.send_and_wait(self._topic, b"warm-up", key=b"warm-up")

    async def produce(self, value: bytes, key: bytes | None) -> None:
        assert self._send is not None
        future = await self._send(self._topic, value, key=key)
        if self.settings.keep_handles:
            self._handles.append(future)

    async def flush(self, timeout: float) -> int:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._producer.flush(), timeout)
        return sum(1 for future in self._handles if not future.done())

    def failed(self) -> int:
        return sum(1 for future in self._handles if future.done() and future.exception())


#: Every contender, in the order the rounds run them.
CONTENDERS: dict[str, type[SyncContender] | type[AsyncContender]] = {
    contender.name: contender
    for contender in (
        KafkaSinkContender,
        KafkaSinkPureContender,
        KafkaSinkProduceContender,
        ConfluentContender,
        AiokafkaContender,
        KafkaPythonContender,
    )
}
