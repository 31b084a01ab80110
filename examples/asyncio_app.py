"""An asyncio web service: each request is logged to Kafka, and its page view awaited.

    python3 examples/asyncio_app.py

A small HTTP server (``asyncio.start_server``, on loopback) answers GET
requests. Each request is logged through a :class:`kafka_sink.KafkaHandler`
(topic ``web-logs``, keyed by the request id), and its page view is produced
to ``page-views`` with :meth:`kafka_sink.Sink.produce`; the handler awaits
that record's delivery with :func:`asyncio.wrap_future` before it answers,
so the response says where the view was stored, and the event loop serves
the other requests meanwhile. Nothing blocks the loop: ``produce()`` and
logging never do network I/O, and the shutdown awaits ``sink.flush_async()``
and ``sink.aclose()``, which wait in a thread. Both topics are then read
back, and each page view must be where its response said.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections import Counter
from dataclasses import dataclass

from _cluster import example_cluster

import kafka_sink

LOG_TOPIC = "web-logs"
VIEW_TOPIC = "page-views"
PATHS = ("/", "/products", "/cart", "/missing")
REQUESTS = 12

log = logging.getLogger("web")


@dataclass(frozen=True)
class Response:
    request_id: str
    path: str
    status: int
    partition: int  # where the server said the page view was stored
    offset: int


def page_view(request_id: str, path: str, status: int) -> bytes:
    """The page-view event of one request (JSON)."""
    view = {"request_id": request_id, "path": path, "status": status}
    return json.dumps(view, separators=(",", ":")).encode()


async def handle(
    sink: kafka_sink.Sink, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Serve one HTTP/1.1 request, then close the connection."""
    method, path, _ = (await reader.readline()).decode("latin-1").split(" ", 2)
    request_headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        request_headers[name.strip().lower()] = value.strip()
    request_id = request_headers["x-request-id"]
    status = 404 if path == "/missing" else 200

    log.info("%s %s %d", method, path, status, extra={"request_id": request_id})
    # produce() returns at once with a concurrent.futures.Future; awaiting its
    # asyncio wrapper lets the loop serve other requests until the broker acks.
    future = sink.produce(VIEW_TOPIC, page_view(request_id, path, status), key=request_id)
    metadata = await asyncio.wrap_future(future)

    body = f"view stored at {metadata.partition}:{metadata.offset}\n".encode()
    reason = "OK" if status == 200 else "Not Found"
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def visit(port: int, number: int) -> Response:
    """A client: one GET request, and what the server answered."""
    request_id = f"r-{number}"
    path = PATHS[number % len(PATHS)]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: {request_id}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    await writer.drain()
    answer = (await reader.read()).decode()
    writer.close()
    await writer.wait_closed()
    status = int(answer.split(" ", 2)[1])
    where = answer.rsplit(" ", 1)[1].strip()
    partition, offset = (int(part) for part in where.split(":"))
    return Response(request_id, path, status, partition, offset)


async def serve(bootstrap_servers: str) -> list[Response]:
    """Run the server and its visitors; shut down without blocking the loop."""
    sink = kafka_sink.Sink(bootstrap_servers, acks="all", linger_ms=5)
    # The handler shares the application's sink: one sender thread for both topics.
    kafka = kafka_sink.KafkaHandler(LOG_TOPIC, sink=sink, key="request_id")
    logging.basicConfig(level=logging.INFO, handlers=[kafka])
    try:
        server = await asyncio.start_server(lambda r, w: handle(sink, r, w), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            responses = await asyncio.gather(*(visit(port, n) for n in range(REQUESTS)))
        left = await sink.flush_async(timeout=10)  # the log records too
        print(f"undelivered after flush_async: {left}")
    finally:
        logging.getLogger().removeHandler(kafka)
        kafka.close()  # a shared sink is closed by its owner, here
        await sink.aclose(timeout=10)
    return list(responses)


def main() -> int:
    with example_cluster(LOG_TOPIC, VIEW_TOPIC) as cluster:
        responses = asyncio.run(serve(cluster.bootstrap_servers))
        logs = cluster.read(LOG_TOPIC)
        views = cluster.read(VIEW_TOPIC)

    statuses = Counter(response.status for response in responses)
    print(f"served {len(responses)} requests: {statuses[200]} x 200, {statuses[404]} x 404")

    logged = sorted((record.key, json.loads(record.value or b"")["message"]) for record in logs)
    expected_logs = sorted((r.request_id.encode(), f"GET {r.path} {r.status}") for r in responses)
    print(f"{len(logs)} of {len(responses)} log records read back from {LOG_TOPIC}")
    for key, message in logged[:3]:
        print(f"  key {key!r}: {message}")

    stored = {(record.partition, record.offset): record for record in views}
    where_said = all(
        (record := stored.get((r.partition, r.offset))) is not None
        and record.key == r.request_id.encode()
        and record.value == page_view(r.request_id, r.path, r.status)
        for r in responses
    )
    print(
        f"{len(views)} of {len(responses)} page views read back from {VIEW_TOPIC}, "
        f"each where its response said: {where_said}"
    )
    ok = logged == expected_logs and len(views) == len(responses) and where_said
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
