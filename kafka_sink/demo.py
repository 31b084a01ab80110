"""``kafka-sink demo``: an application logs to Kafka, then the topics are read back.

What it does, in order:

1. It starts an embedded Kafka cluster: librdkafka's mock cluster, three
   brokers on loopback (:class:`kafka_sink.testing.MockCluster`, which needs
   ``pip install 'kafka-sink[testing]'``), unless ``-b`` names a cluster.
2. An application, a simulated online shop, serves requests at a steady
   rate on four worker threads. Each request logs one record through the
   standard :mod:`logging` module and a :class:`~kafka_sink.KafkaHandler`
   (INFO, WARNING for slow or unknown pages, ERROR with a traceback for
   failures; ``extra`` fields; keyed by user id); logins, carts, orders and
   failed payments are also structlog events, shipped by a
   :class:`~kafka_sink.KafkaProcessor`; and a
   :class:`~kafka_sink.MetricsExporter` ships a request counter and a
   latency histogram. One :class:`~kafka_sink.Sink` carries all three
   topics. A progress line on stderr shows how far it is.
3. It flushes and closes, then reads the topics back twice: with librdkafka
   (confluent-kafka's consumer, an independent implementation of the
   protocol) and with kafka_sink's own reader (the Fetcher behind
   ``kafka-sink tail``), and checks that they agree and that exactly what
   was logged arrived.
4. It prints counts per partition and per level, a few decoded records with
   their keys and headers, the metrics read back and the Sink's delivery
   metrics. The exit status is 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import math
import random
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from kafka_sink.errors import InvalidArgumentError, KafkaSinkError
from kafka_sink.integrations.handler import KafkaHandler
from kafka_sink.integrations.metrics_exporter import MetricsExporter
from kafka_sink.integrations.processor import KafkaProcessor
from kafka_sink.metrics import MetricsRegistry
from kafka_sink.metrics.encodings import decode
from kafka_sink.net.cluster import Connection
from kafka_sink.net.fetcher import Fetcher
from kafka_sink.producer.sink import Sink

__all__ = ["run_demo"]

LOGS_TOPIC = "demo-logs"
EVENTS_TOPIC = "demo-events"
METRICS_TOPIC = "demo-metrics"
TOPICS = (LOGS_TOPIC, EVENTS_TOPIC, METRICS_TOPIC)
PARTITIONS = 3
WORKERS = 4
ROUTES = ("/", "/search", "/cart", "/login", "/checkout")
#: The service each route waits for; a failed request names it in its traceback.
UPSTREAMS = {
    "/": "recommendations",
    "/search": "search-index",
    "/cart": "inventory",
    "/login": "accounts",
    "/checkout": "payments",
}
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
#: A request slower than this logs a WARNING.
SLOW_MS = 150.0
_SEVERITY = {"INFO": 1, "WARNING": 2, "ERROR": 3}
_INSTALL_HINT = "pip install 'kafka-sink[testing]'"

Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class _Record:
    """A record read back: what both readers return, comparable with ``==``."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == name and value is not None:
                return value.decode("utf-8", "replace")
        return ""

    def decoded(self) -> dict[str, Any]:
        """The value as a JSON object (empty if it is not one)."""
        try:
            obj = json.loads(self.value or b"")
        except ValueError:
            return {}
        return obj if isinstance(obj, dict) else {}


def run_demo(messages: int, bootstrap_servers: str | None = None, seconds: float = 3.0) -> int:
    """Run the demo: ``messages`` requests served in about ``seconds``; return the exit status.

    ``bootstrap_servers`` names an existing cluster instead of the embedded
    one (its topics are created if they are missing; records already in them
    are left out of the counts).
    """
    if not isinstance(messages, int) or not 1 <= messages <= 1_000_000:
        raise InvalidArgumentError("--messages", f"must be from 1 to 1000000, got {messages!r}")
    if not isinstance(seconds, (int, float)) or not 0 < seconds <= 3600:
        raise InvalidArgumentError(
            "--seconds", f"must be above 0 and at most 3600, got {seconds!r}"
        )
    missing = [name for name in ("structlog", "confluent_kafka") if not _importable(name)]
    if missing:
        print(
            f"kafka-sink demo: needs {' and '.join(missing)}: {_INSTALL_HINT}",
            file=sys.stderr,
        )
        return 2
    print("kafka-sink demo: an application logs to Kafka through kafka_sink\n")
    with _cluster(bootstrap_servers) as servers:
        start = _end_offsets(servers)
        shop, outcome = _run_application(servers, messages, seconds)
        end = _end_offsets(servers)
        return _report(servers, shop, outcome, start, end)


def _importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


# -- the cluster --------------------------------------------------------------------------


@contextlib.contextmanager
def _cluster(bootstrap_servers: str | None) -> Iterator[str]:
    if bootstrap_servers:
        with Connection(broker_list=bootstrap_servers, timeout=10) as connection:
            for topic in TOPICS:
                try:
                    connection.partitions(topic)
                except KafkaSinkError:  # not there yet
                    connection.create_topic(topic, PARTITIONS)
        print(f"cluster      {bootstrap_servers}")
        print(f"topics       {', '.join(TOPICS)}\n")
        yield bootstrap_servers
        return
    from kafka_sink.testing import MockCluster  # noqa: PLC0415 - only for the embedded cluster

    with MockCluster(num_brokers=3, topics=dict.fromkeys(TOPICS, PARTITIONS)) as cluster:
        print(
            f"cluster      embedded: librdkafka {cluster.librdkafka_version} mock cluster, "
            f"{cluster.num_brokers} brokers at {cluster.bootstrap_servers}"
        )
        print(f"topics       {', '.join(TOPICS)} ({PARTITIONS} partitions each)\n")
        yield cluster.bootstrap_servers


def _end_offsets(servers: str) -> dict[str, dict[int, int]]:
    """The log end offset of every partition of the demo's topics."""
    with Connection(broker_list=servers, timeout=10) as connection:
        fetcher = Fetcher(connection)
        return {topic: {p: r.latest for p, r in fetcher.offsets(topic).items()} for topic in TOPICS}


# -- the application ----------------------------------------------------------------------


class _Shop:
    """The demo's application: an online shop's request handlers, simulated.

    Request ``n`` is due ``n * seconds / requests`` after the start, whichever
    worker takes it; its route, user, latency and outcome come from a random
    generator seeded with ``n``, so a run's records do not depend on how the
    threads interleave. Latencies are simulated, not slept.
    """

    def __init__(self, requests: int, seconds: float, registry: MetricsRegistry) -> None:
        import structlog  # noqa: PLC0415 - checked by run_demo; optional for the library

        self.requests = requests
        self.seconds = seconds
        self._log = logging.getLogger("demo.http")
        self._events = structlog.get_logger().bind(logger="demo.shop")
        self._bind = structlog.contextvars.bind_contextvars
        self._clear = structlog.contextvars.clear_contextvars
        self._counter = registry.counter(
            "demo_requests_total", "Requests served", labels=["route", "status"]
        )
        self._latency = registry.histogram(
            "demo_request_seconds", "Time to serve a request", buckets=LATENCY_BUCKETS
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._next = 0
        self.served = 0
        self.levels: Counter[str] = Counter()  # stdlib records logged, by level name
        self.events: Counter[str] = Counter()  # structlog events, by event name
        self.statuses: Counter[str] = Counter()  # responses, by status code

    def start(self) -> list[threading.Thread]:
        began = time.monotonic()
        threads = [
            threading.Thread(target=self._work, args=(began,), name=f"worker-{i}", daemon=True)
            for i in range(1, WORKERS + 1)
        ]
        for thread in threads:
            thread.start()
        return threads

    def stop(self) -> None:
        self._stop.set()

    def progress(self) -> tuple[int, int, int]:
        """Requests served, log records and events logged so far."""
        with self._lock:
            return self.served, sum(self.levels.values()), sum(self.events.values())

    def _work(self, began: float) -> None:
        interval = self.seconds / self.requests
        while True:
            with self._lock:
                number = self._next
                self._next += 1
            if number >= self.requests:
                return
            # Pacing, not synchronisation: the request's turn in a steady stream.
            delay = began + number * interval - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            self._serve(number)

    def _serve(self, number: int) -> None:
        rng = random.Random(number)
        route = rng.choice(ROUTES)
        method = "POST" if route in ("/cart", "/login", "/checkout") else "GET"
        user = f"user-{rng.randrange(1, 40)}"
        request_id = f"req-{number:06d}"
        millis = round(rng.lognormvariate(math.log(20.0), 0.9), 1)
        roll = rng.random()
        status = 500 if roll < 0.04 else 404 if roll < 0.09 and method == "GET" else 200
        extra = {
            "user_id": user,
            "request_id": request_id,
            "route": route,
            "status": status,
            "duration_ms": millis,
        }
        self._bind(request_id=request_id)
        try:
            if status == 500:
                try:
                    _call_upstream(route, millis)
                except TimeoutError:
                    self._log.exception(
                        "%s %s failed after %.1f ms", method, route, millis, extra=extra
                    )
                level = "ERROR"
            elif status == 404 or millis > SLOW_MS:
                why = "no such page" if status == 404 else "slow"
                self._log.warning(
                    "%s %s %d in %.1f ms (%s)", method, route, status, millis, why, extra=extra
                )
                level = "WARNING"
            else:
                self._log.info("%s %s %d in %.1f ms", method, route, status, millis, extra=extra)
                level = "INFO"
            event = self._business_event(number, route, status, user, rng)
        finally:
            self._clear()
        self._counter.labels(route, status).inc()
        self._latency.observe(millis / 1000.0)
        with self._lock:
            self.served += 1
            self.levels[level] += 1
            self.statuses[str(status)] += 1
            if event:
                self.events[event] += 1

    def _business_event(
        self, number: int, route: str, status: int, user: str, rng: random.Random
    ) -> str | None:
        """A structlog event for requests that change something; its name, or None."""
        if route == "/login" and status == 200:
            self._events.info("user_logged_in", user_id=user, method="password")
            return "user_logged_in"
        if route == "/cart" and status == 200:
            self._events.info("cart_updated", user_id=user, items=rng.randint(1, 6))
            return "cart_updated"
        if route == "/checkout" and status == 200:
            amount = round(rng.uniform(5, 250), 2)
            self._events.info(
                "order_placed", user_id=user, order_id=f"o-{number}", amount=amount, currency="EUR"
            )
            return "order_placed"
        if route == "/checkout" and status == 500:
            self._events.error(
                "payment_failed", user_id=user, order_id=f"o-{number}", reason="timeout"
            )
            return "payment_failed"
        return None


def _call_upstream(route: str, millis: float) -> None:
    """The service that a failed request waits for in vain."""
    raise TimeoutError(f"{UPSTREAMS[route]} did not answer within {millis:.0f} ms")


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What the application's pipeline reported once it was closed."""

    elapsed: float
    close_seconds: float
    handler: Mapping[str, Any]
    processor: Mapping[str, Any]
    sink: Mapping[str, Any]
    exports: int
    metrics_dropped: int


def _run_application(servers: str, requests: int, seconds: float) -> tuple[_Shop, _Outcome]:
    import structlog  # noqa: PLC0415 - checked by run_demo; optional for the library

    with contextlib.ExitStack() as cleanup:  # also when interrupted (Ctrl-C)
        # One Sink for the three topics: its metrics are the whole pipeline's.
        sink = Sink(
            servers,
            client_id="kafka-sink-demo",
            compression_type="lz4",
            linger_ms=50,
            on_buffer_full="drop_oldest",  # as a handler's own sink: logging never waits
            max_block_ms=100,
        )
        cleanup.callback(sink.close, 0)
        # The built-in serializers and headers only: plugins installed in this
        # environment (kafka_sink entry points) stay out of the demo.
        handler = KafkaHandler(
            LOGS_TOPIC,
            sink=sink,
            level=logging.INFO,
            key="user_id",
            header_fields=["request_id"],
            entry_points=False,
        )
        cleanup.callback(handler.close)
        processor = KafkaProcessor(
            EVENTS_TOPIC,
            sink=sink,
            key="user_id",
            header_fields=["request_id"],
            drop=True,
            entry_points=False,
        )
        cleanup.callback(processor.close)
        registry = MetricsRegistry()
        exporter = _start_metrics(registry, sink)
        cleanup.callback(exporter.close, 0)

        logger = logging.getLogger("demo")
        logger.setLevel(logging.INFO)
        logger.propagate = False  # the demo's records go to Kafka, not to the console
        logger.addHandler(handler)
        cleanup.callback(logger.removeHandler, handler)
        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                processor,  # the last step: it ships the event, then drops it
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            cache_logger_on_first_use=False,
        )
        cleanup.callback(structlog.reset_defaults)

        shop = _Shop(requests, seconds, registry)
        cleanup.callback(shop.stop)
        print(
            f"application  {WORKERS} worker threads serve {requests} simulated requests "
            f"in {seconds:g} s ({requests / seconds:.0f} a second):"
        )
        print(f"  stdlib logging  -> KafkaHandler    -> {LOGS_TOPIC:12}  a record per request")
        print(f"  structlog       -> KafkaProcessor  -> {EVENTS_TOPIC:12}  logins, carts, orders")
        print(f"  MetricsRegistry -> MetricsExporter -> {METRICS_TOPIC:12}  requests and latencies")
        print("  all through one kafka_sink.Sink (lz4, linger 50 ms)")
        sys.stdout.flush()  # before the progress line on stderr
        progress = _Progress(sys.stderr)
        began = time.monotonic()
        threads = shop.start()
        while any(thread.is_alive() for thread in threads):
            next(t for t in threads if t.is_alive()).join(progress.interval)
            progress.update(_status(shop, began, handler, processor))
        progress.finish(_status(shop, began, handler, processor))
        elapsed = time.monotonic() - began

        closing = time.monotonic()
        exporter.close(10)  # a last export, then the shared sink is flushed
        handler.flush(10)
        processor.flush(10)
        sink.close(10)
        close_seconds = time.monotonic() - closing

    stats = exporter.stats()
    outcome = _Outcome(
        elapsed=elapsed,
        close_seconds=close_seconds,
        handler=handler.metrics(),
        processor=processor.metrics(),
        sink=sink.metrics(),
        exports=stats.exports,
        metrics_dropped=stats.records_dropped_total,
    )
    print(
        f"served {shop.served} requests in {elapsed:.2f} s: {sum(shop.levels.values())} log "
        f"records, {sum(shop.events.values())} events, {stats.records_produced} metrics "
        f"records; flushed and closed in {outcome.close_seconds:.2f} s\n"
    )
    return shop, outcome


def _start_metrics(registry: MetricsRegistry, sink: Sink) -> MetricsExporter:
    """The metrics plug-in point: export the registry through the shared sink each second."""
    return MetricsExporter(
        registry,
        METRICS_TOPIC,
        sink=sink,
        interval=1.0,
        labels={"service": "demo-shop"},
        sink_metrics=False,  # True adds the sink's own kafka_sink_* series
        entry_points=False,
    )


def _status(shop: _Shop, began: float, handler: KafkaHandler, processor: KafkaProcessor) -> str:
    delivered = handler.metrics()["records_delivered"] + processor.metrics()["records_delivered"]
    served, logged, events = shop.progress()
    return (
        f"  {time.monotonic() - began:5.1f} s  {served}/{shop.requests} requests  "
        f"{logged} log records  {events} events  {delivered} delivered"
    )


class _Progress:
    """A live progress line on ``stream``: rewritten in place on a terminal,
    else a new line each second (a log file or a pipe gets no carriage returns)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self.interval = 0.1 if self._tty else 1.0
        self._last = -math.inf
        self._width = 0

    def update(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._write(text, final=False)

    def finish(self, text: str) -> None:
        self._write(text, final=True)

    def _write(self, text: str, *, final: bool) -> None:
        if self._tty:
            self._stream.write("\r" + text.ljust(self._width) + ("\n" if final else ""))
            self._width = len(text)
        else:
            self._stream.write(text + "\n")
        self._stream.flush()


# -- reading back -------------------------------------------------------------------------


def _read_with_kafka_sink(
    servers: str, topic: str, start: Mapping[int, int], end: Mapping[int, int]
) -> list[_Record]:
    with Connection(broker_list=servers, timeout=10) as connection:
        records = Fetcher(connection).read(topic, start, end=end)
        return sorted(
            (
                _Record(topic, r.partition, r.offset, r.key, r.value, tuple(r.headers))
                for r in records
            ),
            key=_position,
        )


def _read_with_librdkafka(
    servers: str, topic: str, start: Mapping[int, int], end: Mapping[int, int]
) -> list[_Record]:
    """Read with librdkafka: an independent implementation checks kafka_sink's records."""
    from confluent_kafka import Consumer, TopicPartition  # noqa: PLC0415 - demo-only dependency

    wanted = {p: e for p, e in end.items() if e > start[p]}
    consumer = Consumer(
        {"bootstrap.servers": servers, "group.id": "kafka-sink-demo", "enable.auto.commit": False}
    )
    records: list[_Record] = []
    try:
        consumer.assign([TopicPartition(topic, p, start[p]) for p in wanted])
        # A bound, so that a broken cluster cannot hang the demo; the counts
        # then show what is missing.
        deadline = time.monotonic() + 30
        while wanted and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                if message.error():
                    continue
                partition, offset = message.partition(), message.offset()
                if partition not in wanted or offset is None or offset >= wanted[partition]:
                    continue
                raw = message.headers() or []
                pairs = raw.items() if isinstance(raw, dict) else raw  # a list, when consumed
                headers = tuple((name, _bytes(value)) for name, value in pairs)
                records.append(
                    _Record(
                        topic,
                        partition,
                        offset,
                        _bytes(message.key()),
                        _bytes(message.value()),
                        headers,
                    )
                )
                if offset == wanted[partition] - 1:
                    del wanted[partition]
    finally:
        consumer.close()
    return sorted(records, key=_position)


def _bytes(data: str | bytes | None) -> bytes | None:
    return data.encode("utf-8") if isinstance(data, str) else data


def _position(record: _Record) -> tuple[int, int]:
    return record.partition, record.offset


# -- the report ---------------------------------------------------------------------------


def _report(
    servers: str,
    shop: _Shop,
    outcome: _Outcome,
    start: Mapping[str, Mapping[int, int]],
    end: Mapping[str, Mapping[int, int]],
) -> int:
    import confluent_kafka  # noqa: PLC0415 - demo-only dependency

    problems: list[str] = []
    read: dict[str, list[_Record]] = {}
    for topic in TOPICS:
        independent = _read_with_librdkafka(servers, topic, start[topic], end[topic])
        own = _read_with_kafka_sink(servers, topic, start[topic], end[topic])
        if independent != own:
            problems.append(
                f"{topic}: librdkafka read {len(independent)} records, kafka_sink's reader "
                f"{len(own)}, and they differ"
            )
        read[topic] = independent
    total = sum(len(records) for records in read.values())
    print(
        f"read back with librdkafka {confluent_kafka.libversion()[0]} (an independent consumer); "
        f"kafka_sink's own reader read the same {total} records"
        if not problems
        else "read back with librdkafka (an independent consumer) and kafka_sink's own reader"
    )

    logs, events, metrics = read[LOGS_TOPIC], read[EVENTS_TOPIC], read[METRICS_TOPIC]
    levels = Counter(record.header("level") for record in logs)
    names = Counter(str(record.decoded().get("event")) for record in events)
    _print_counts(LOGS_TOPIC, logs, "levels", levels, shop.levels)
    _print_counts(EVENTS_TOPIC, events, "events", names, shop.events)
    exports = f"{outcome.exports} export{'s' if outcome.exports != 1 else ''}"
    print(f"  {METRICS_TOPIC:13} {len(metrics):5} records  from {exports}\n")
    if levels != shop.levels:
        problems.append(f"{LOGS_TOPIC}: levels read back {dict(levels)} != logged {shop.levels}")
    request_ids = {record.header("request_id") for record in logs}
    if len(logs) != shop.served or len(request_ids) != shop.served:
        problems.append(
            f"{LOGS_TOPIC}: {len(logs)} records for {shop.served} requests "
            f"({len(request_ids)} distinct request ids)"
        )
    if names != shop.events:
        problems.append(f"{EVENTS_TOPIC}: events read back {dict(names)} != {shop.events}")

    print("a few records")
    for record in _samples(logs, events):
        _print_record(record)
    print()
    problems += _print_metrics(metrics, shop)
    problems += _print_sink_metrics(outcome)
    if problems:
        print("\nFAILED:")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print("\nOK: every record logged arrived exactly once; none failed or was dropped")
    return 0


def _print_counts(
    topic: str,
    records: Sequence[_Record],
    what: str,
    counts: Counter[str],
    expected: Counter[str],
) -> None:
    partitions = Counter(record.partition for record in records)
    spread = ", ".join(f"{p}: {n}" for p, n in sorted(partitions.items()))
    print(f"  {topic:13} {len(records):5} records  partitions {spread}")
    ordered = sorted(counts.items(), key=lambda item: (_SEVERITY.get(item[0], 0), item[0]))
    listed = ", ".join(f"{name} {n}" for name, n in ordered)
    verdict = "as logged" if counts == expected else f"logged: {dict(sorted(expected.items()))}"
    print(f"  {'':13} {'':5} {what:8} {listed} ({verdict})")


def _samples(logs: Sequence[_Record], events: Sequence[_Record]) -> list[_Record]:
    """The first record of each level, and the first of two kinds of event."""
    chosen: dict[str, _Record] = {}
    for record in logs:
        chosen.setdefault(record.header("level"), record)
    for record in events:
        name = record.decoded().get("event")
        if name in ("order_placed", "payment_failed"):
            chosen.setdefault(name, record)
    order = ("INFO", "WARNING", "ERROR", "order_placed", "payment_failed")
    return [chosen[name] for name in order if name in chosen]


def _print_record(record: _Record) -> None:
    key = record.key.decode("utf-8", "replace") if record.key is not None else "(none)"
    print(f"  {record.topic} partition {record.partition} offset {record.offset}  key {key}")
    headers = " ".join(f"{name}={record.header(name)}" for name, _ in record.headers)
    print(f"    headers  {headers}")
    value = record.decoded()
    exception = value.get("exception")
    if isinstance(exception, str):
        # A traceback is many lines: show how many, and the last (the error itself).
        lines = exception.strip().splitlines()
        value["exception"] = f"<traceback, {len(lines)} lines> {lines[-1]}"
    lines = textwrap.wrap(json.dumps(value, ensure_ascii=False), 88) or [""]
    print(f"    value    {lines[0]}")
    for line in lines[1:]:
        print(f"             {line}")


def _print_metrics(records: Sequence[_Record], shop: _Shop) -> list[str]:
    """Print the last export's values; return how they differ from the application's."""
    snapshots = [
        decoded[1]
        for r in records
        if (decoded := decode(r.value or b"", r.header("metrics-encoding") or None))
    ]
    if not snapshots:
        return [f"{METRICS_TOPIC}: no metrics read back"]
    last = max(snapshot.timestamp_ms for snapshot in snapshots)
    statuses: Counter[str] = Counter()
    count, total_seconds = 0.0, 0.0
    buckets: tuple[tuple[float, float], ...] = ()
    for snapshot in snapshots:
        if snapshot.timestamp_ms != last:
            continue
        for sample in snapshot.samples:
            if sample.name == "demo_requests_total":
                statuses[dict(sample.labels)["status"]] += int(sample.value)
            elif sample.name == "demo_request_seconds":
                count, total_seconds, buckets = sample.count, sample.sum, sample.buckets
    print(f"metrics read back ({METRICS_TOPIC}, the last export)")
    by_status = ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))
    print(f"  demo_requests_total    by status {by_status} (summed over {len(ROUTES)} routes)")
    shown = " ".join(
        f"<={bound * 1000:g}ms:{int(n)}" for bound, n in buckets if not math.isinf(bound)
    )
    print(f"  demo_request_seconds   count {int(count)}, sum {total_seconds:.2f} s; {shown}")
    problems = []
    if statuses != shop.statuses:
        problems.append(f"{METRICS_TOPIC}: requests by status {dict(statuses)} != {shop.statuses}")
    if int(count) != shop.served:
        problems.append(f"{METRICS_TOPIC}: latency count {count} != {shop.served} requests")
    return problems


def _print_sink_metrics(outcome: _Outcome) -> list[str]:
    """Print the Sink's delivery metrics; return what went wrong."""
    sink = outcome.sink
    ratio = sink["bytes_uncompressed"] / sink["bytes_compressed"] if sink["bytes_compressed"] else 0
    print("\nthe Sink's delivery metrics")
    print(
        f"  records  sent {sink['records_sent']}, failed {sink['records_failed_total']}, "
        f"dropped {sink['records_dropped_total']}, retries {sink['retries']}"
    )
    print(
        f"  batches  {sink['batches_sent']} in {sink['requests']} produce requests, "
        f"{sink['records_per_batch']:.1f} records a batch"
    )
    print(
        f"  bytes    {_size(sink['bytes_uncompressed'])} of records, "
        f"{_size(sink['bytes_compressed'])} with lz4 (compression ratio {ratio:.1f})"
    )
    print(
        f"  latency  p50 {sink['request_latency_ms_p50']:.1f} ms, "
        f"p99 {sink['request_latency_ms_p99']:.1f} ms (produce request to acknowledgement)"
    )
    problems = []
    failed = (
        sink["records_failed_total"]
        + sink["records_dropped_total"]
        + outcome.handler["records_failed_total"]
        + outcome.processor["records_failed_total"]
        + outcome.metrics_dropped
    )
    if failed:
        problems.append(
            f"records failed or dropped: sink {sink['records_failed']} {sink['records_dropped']}, "
            f"handler {outcome.handler['records_failed']}, "
            f"processor {outcome.processor['records_failed']}, metrics {outcome.metrics_dropped}"
        )
    return problems


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if count < 1024 or unit == "MiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"
