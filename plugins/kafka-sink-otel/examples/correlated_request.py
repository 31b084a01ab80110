"""One request's spans and log records in Kafka, put back together by trace id.

Run it from the repository root (it needs ``pip install -e 'plugins/kafka-sink-otel[test]'``
for the embedded cluster and the reader)::

    python3 plugins/kafka-sink-otel/examples/correlated_request.py
    python3 plugins/kafka-sink-otel/examples/correlated_request.py --bootstrap-servers kafka1:9092

Without ``--bootstrap-servers`` it starts an embedded Kafka cluster
(librdkafka's mock cluster, :class:`kafka_sink.testing.MockCluster`). A
checkout handler serves one request: a server span with two child spans
(inventory, payment), and log records written through the standard
``logging`` module inside each of them, bridged to OpenTelemetry by
``LoggingHandler``. The spans go to ``otlp_spans`` and the log records to
``otlp_logs``, through one :class:`kafka_sink.Sink`, both keyed by the trace
id, as the Collector's Kafka exporter writes them (``otlp_proto``).

An independent consumer (librdkafka) then reads both topics, each message
is parsed with opentelemetry-proto's classes, and the request is printed as
its trace: the spans as a tree and, under each span, the log records
written inside it, found by their trace and span ids. The exit status is 0
when every log record of the request is under its span and the request's
spans and logs share one partition number in both topics.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import kafka_sink
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from kafka_sink_otel import KafkaLogExporter, KafkaSpanExporter

SPANS, LOGS = "otlp_spans", "otlp_logs"
PARTITIONS = 3
READ_TIMEOUT = 30.0


@contextlib.contextmanager
def cluster(bootstrap_servers: str | None) -> Iterator[str]:
    """The given cluster (topics created if missing), or an embedded one."""
    if bootstrap_servers:
        with kafka_sink.Connection(broker_list=bootstrap_servers, timeout=10) as connection:
            for topic in (SPANS, LOGS):
                try:
                    connection.partitions(topic)
                except kafka_sink.KafkaSinkError:
                    connection.create_topic(topic, PARTITIONS)
        yield bootstrap_servers
        return
    from kafka_sink.testing import MockCluster  # noqa: PLC0415 - only for the embedded cluster

    with MockCluster(num_brokers=3, topics={SPANS: PARTITIONS, LOGS: PARTITIONS}) as embedded:
        print(f"cluster: embedded (librdkafka mock) at {embedded.bootstrap_servers}")
        yield embedded.bootstrap_servers


def checkout(tracer: Any, log: logging.Logger, cart: str) -> str:
    """The application: one request, traced and logged. Returns its trace id (hex)."""
    with tracer.start_as_current_span(
        "POST /checkout", kind=SpanKind.SERVER, attributes={"http.route": "/checkout"}
    ) as request:
        log.info("checkout started for cart %s", cart, extra={"cart.id": cart})
        with tracer.start_as_current_span("inventory.reserve") as reserve:
            reserve.set_attribute("items", 3)
            log.info("reserved %d items", 3)
        with tracer.start_as_current_span("payment.charge", kind=SpanKind.CLIENT) as charge:
            charge.add_event("3-D Secure challenge", {"issuer": "bank-7"})
            log.warning("card needs 3-D Secure", extra={"issuer": "bank-7"})
            charge.set_status(Status(StatusCode.OK))
            log.info("charged %.2f EUR", 59.9)
        trace_id: int = request.get_span_context().trace_id
    return format(trace_id, "032x")


def end_offsets(consumer: Any, topic: str) -> dict[int, int]:
    from confluent_kafka import TopicPartition  # noqa: PLC0415 - the reader's library

    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
        for p in sorted(partitions)
    }


def read(consumer: Any, topic: str, start: dict[int, int]) -> list[Any]:
    """The messages written to ``topic`` since ``start``, up to its end now (librdkafka)."""
    from confluent_kafka import KafkaError, TopicPartition  # noqa: PLC0415 - the reader's library

    end = end_offsets(consumer, topic)
    pending = {p for p in end if start.get(p, 0) < end[p]}
    consumer.assign([TopicPartition(topic, p, start.get(p, 0)) for p in sorted(pending)])
    messages: list[Any] = []
    deadline = time.monotonic() + READ_TIMEOUT
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{topic}: partitions {sorted(pending)} not read in time")
        for message in consumer.consume(num_messages=500, timeout=0.1):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition())
                continue
            if message.offset() < end[message.partition()]:
                messages.append(message)
            if message.offset() >= end[message.partition()] - 1:
                pending.discard(message.partition())
    consumer.unassign()
    return messages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", help="a cluster of your own (default: embedded)")
    arguments = parser.parse_args()
    from confluent_kafka import Consumer  # noqa: PLC0415 - the reader's library

    with cluster(arguments.bootstrap_servers) as servers:
        consumer = Consumer(
            {
                "bootstrap.servers": servers,
                # assign() needs no group, but the consumer insists on an id;
                # nothing is ever committed under it.
                "group.id": f"kafka-sink-otel-example-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "fetch.wait.max.ms": 50,
            }
        )
        try:
            start = {topic: end_offsets(consumer, topic) for topic in (SPANS, LOGS)}
            trace_id = run_application(servers)
            spans = read(consumer, SPANS, start[SPANS])
            logs = read(consumer, LOGS, start[LOGS])
        finally:
            consumer.close()
    return report(trace_id, spans, logs)


def run_application(servers: str) -> str:
    """Serve one request with the exporters behind the SDK's batch processors."""
    resource = Resource.create({"service.name": "checkout", "service.version": "1.4.2"})
    with kafka_sink.Sink(servers, linger_ms=5) as sink:
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(BatchSpanProcessor(KafkaSpanExporter(sink=sink)))
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(KafkaLogExporter(sink=sink, partition_logs_by_trace_id=True))
        )
        with warnings.catch_warnings():
            # The SDK's LoggingHandler is deprecated in favour of the one of
            # opentelemetry-instrumentation-logging; either feeds the provider.
            warnings.simplefilter("ignore", DeprecationWarning)
            handler = LoggingHandler(level=logging.INFO, logger_provider=logger_provider)
        log = logging.getLogger("checkout")
        log.setLevel(logging.INFO)
        log.addHandler(handler)
        try:
            trace_id = checkout(tracer_provider.get_tracer("checkout.http"), log, "c-42")
        finally:
            log.removeHandler(handler)
            # Flush the processors through the exporters; the Sink is closed after them.
            tracer_provider.shutdown()
            logger_provider.shutdown()
    return trace_id


def report(trace_id: str, span_messages: list[Any], log_messages: list[Any]) -> int:
    key = trace_id.encode("ascii")
    spans: dict[str, Any] = {}
    span_partitions: set[int] = set()
    for message in span_messages:
        if message.key() != key:
            continue  # another trace (on a cluster of your own)
        request = ExportTraceServiceRequest.FromString(message.value())
        span_partitions.add(message.partition())
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans[span.span_id.hex()] = span
    logs_under: dict[str, list[Any]] = {}
    log_partitions: set[int] = set()
    count = 0
    for message in log_messages:
        if message.key() != key:
            continue
        request = ExportLogsServiceRequest.FromString(message.value())
        log_partitions.add(message.partition())
        for resource_logs in request.resource_logs:
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    if record.trace_id.hex() == trace_id:
                        logs_under.setdefault(record.span_id.hex(), []).append(record)
                        count += 1
    print(
        f"trace {trace_id}: {len(spans)} spans in {SPANS} partitions {sorted(span_partitions)}, "
        f"{count} log records in {LOGS} partitions {sorted(log_partitions)}"
    )

    def show(span: Any, depth: int) -> None:
        took = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
        print(f"{'  ' * depth}{span.name}  [span {span.span_id.hex()}, {took:.2f} ms]")
        written_inside = logs_under.get(span.span_id.hex(), [])
        for record in sorted(written_inside, key=lambda r: r.time_unix_nano):
            print(f"{'  ' * (depth + 1)}{record.severity_text:<7} {record.body.string_value}")
        children = [s for s in spans.values() if s.parent_span_id == span.span_id]
        for child in sorted(children, key=lambda s: s.start_time_unix_nano):
            show(child, depth + 1)

    for root in (s for s in spans.values() if not s.parent_span_id):
        show(root, 1)
    placed = sum(len(records) for span_id, records in logs_under.items() if span_id in spans)
    one_partition = len(span_partitions) == 1 and span_partitions == log_partitions
    print(
        f"correlated: {placed} of {count} log records under their spans; spans and logs "
        f"{'share' if one_partition else 'do not share'} one partition number"
    )
    return 0 if len(spans) == 3 and placed == count == 4 and one_partition else 1


if __name__ == "__main__":
    sys.exit(main())
