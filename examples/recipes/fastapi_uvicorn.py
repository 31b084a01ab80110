"""FastAPI served by uvicorn, with uvicorn's logs and the application's shipped to Kafka.

    python3 examples/recipes/fastapi_uvicorn.py    # needs fastapi and uvicorn

The server is started the way you would start it, in a process of its own::

    KAFKA_SINK_BOOTSTRAP_SERVERS=kafka1:9092 \\
        uvicorn fastapi_app:app --log-config uvicorn_logging.json

``uvicorn_logging.json`` (next to this script) is a ``dictConfig`` file: one
``KafkaHandler`` for uvicorn's own loggers (``uvicorn.error``: startup,
shutdown, tracebacks of unhandled exceptions; ``uvicorn.access``: one record
per request) and for the application's (``shop``), keyed by the request id
the application logs. The handler takes its brokers from
``$KAFKA_SINK_BOOTSTRAP_SERVERS``, so the file names none.

uvicorn ends its process by raising SIGTERM again once it has shut down
gracefully, and a process that a signal ends runs no exit hooks, so the
handler cannot deliver what it holds at exit: ``fastapi_app.py`` flushes
it at the end of the application's lifespan instead. Only the lines
uvicorn logs after that ("Application shutdown complete", "Finished server
process") may not arrive.

This script starts the server on a loopback port, sends it a few requests,
stops it with SIGTERM and reads the topic back.
"""

from __future__ import annotations

import json
import signal
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/_cluster.py

from _cluster import example_cluster  # noqa: E402 - found through the path set above
from _servers import Server, free_port, get  # noqa: E402 - next to this script

TOPIC = "web-logs"
ITEMS = 5


def main() -> int:
    with example_cluster(TOPIC) as cluster:
        port = free_port()
        server = Server(
            [
                "uvicorn",
                "fastapi_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-config",
                "uvicorn_logging.json",
            ],
            cwd=HERE,
            bootstrap_servers=cluster.bootstrap_servers,
        )
        try:
            server.wait_for("Uvicorn running on")
            statuses = [
                get(port, f"/items/{i}", {"X-Request-ID": f"r-{i}"})[0] for i in range(ITEMS)
            ]
            statuses.append(get(port, "/boom")[0])
        finally:
            status = server.stop()
        print(server.output())
        records = cluster.read(TOPIC)

    docs = [json.loads(record.value or b"") for record in records]
    print(f"\nread back from {TOPIC}: {len(records)} records")
    for record, doc in zip(records, docs, strict=True):
        print(f"  key {record.key!r}: {doc['level']} {doc['logger']}: {doc['message'].strip()}")
    by_logger = Counter(doc["logger"] for doc in docs)
    print(f"records per logger: {dict(sorted(by_logger.items()))}")
    errors = [doc for doc in docs if doc["logger"] == "uvicorn.error" and doc["level"] == "ERROR"]
    traceback_shipped = len(errors) == 1 and "the inventory service is down" in errors[0].get(
        "exception", ""
    )
    # Logged before the lifespan's flush, so delivered before the process ended.
    flushed = any(doc["message"] == "Waiting for application shutdown." for doc in docs)
    print(f"statuses: {statuses}; server exit status: {status}")
    print(f"the records logged during the shutdown arrived: {flushed}")
    print(f"the unhandled exception's traceback arrived: {traceback_shipped}")
    ok = (
        statuses == [200] * ITEMS + [500]
        and status in (0, -signal.SIGTERM)
        and by_logger["shop.api"] == ITEMS
        and by_logger["uvicorn.access"] == ITEMS + 1
        and traceback_shipped
        and flushed
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
