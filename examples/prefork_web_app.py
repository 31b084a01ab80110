"""A pre-forking web server: logging is configured in the parent, then workers fork.

    python3 examples/prefork_web_app.py        # Linux and macOS (os.fork)

Servers such as gunicorn with ``--preload`` and uWSGI (without
``lazy-apps``) load the application, and its logging configuration, in a
master process that then forks its workers. The KafkaHandler's Sink is
fork-safe: a worker starts with an empty buffer and its own sender thread,
ships only its own records, and never a copy of what the master had not
sent yet. Here the master logs a record and forks at once; three workers
each serve 40 requests of a tiny WSGI application and exit. The topic then
holds every record exactly once: the master's, and each worker's 40.
(Python 3.12 and later warn that forking a process that runs threads may
deadlock; the Sink and :mod:`logging` reset their locks in the child.)
"""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable

from _cluster import example_cluster, headers

import kafka_sink

TOPIC = "web-logs"
WORKERS = 3
REQUESTS = 40  # per worker
PATHS = ("/", "/products", "/cart", "/missing")

log = logging.getLogger("web")


def app(environ: dict[str, str], start_response: Callable[..., object]) -> Iterable[bytes]:
    """A tiny WSGI application that logs each request."""
    path = environ["PATH_INFO"]
    status = "404 Not Found" if path == "/missing" else "200 OK"
    log.info(
        "%s %s %s",
        environ["REQUEST_METHOD"],
        path,
        status[:3],
        extra={"request_id": environ["HTTP_X_REQUEST_ID"], "worker": os.getpid()},
    )
    start_response(status, [("Content-Type", "text/plain")])
    return [b"hello\n"]


def worker(number: int) -> int:
    """A worker's life: serve requests (made up here), then exit as a server's worker does."""
    for i in range(REQUESTS):
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": PATHS[i % len(PATHS)],
            "HTTP_X_REQUEST_ID": f"w{number}-{i}",
        }
        b"".join(app(environ, lambda status, response_headers: None))
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, kafka_sink.KafkaHandler)
    logging.shutdown()  # what the exit does: deliver this worker's records (bounded)
    delivered = handler.metrics()["records_delivered"]
    print(f"worker {number} (pid {os.getpid()}): {delivered} records delivered", flush=True)
    return 0 if delivered == REQUESTS else 1


def main() -> int:
    with example_cluster(TOPIC) as cluster:
        # The master configures logging once; the workers inherit it.
        kafka = kafka_sink.KafkaHandler(
            TOPIC,
            cluster.bootstrap_servers,
            key="request_id",
            header_fields=["worker"],
            # Batches wait up to 200 ms: the master's record is still in its
            # buffer when the workers fork, and must stay the master's.
            linger_ms=200,
        )
        logging.basicConfig(level=logging.INFO, handlers=[kafka])
        log.info("master %d forks %d workers", os.getpid(), WORKERS, extra={"worker": "master"})

        pids = {}
        for number in range(1, WORKERS + 1):
            pid = os.fork()
            if pid == 0:  # the worker: it never returns into the master's code
                code = 1
                try:
                    code = worker(number)
                finally:
                    os._exit(code)
            pids[pid] = number
        failed = 0
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            failed += os.waitstatus_to_exitcode(status) != 0

        logging.shutdown()  # the master's own record
        records = cluster.read(TOPIC)

    by_process = Counter(headers(record)["worker"] for record in records)
    keys = Counter(record.key for record in records)
    print(f"\nread back from {TOPIC}: {len(records)} records")
    for process, count in sorted(by_process.items()):
        name = f"worker {pids[int(process)]} (pid {process})" if process.isdigit() else process
        print(f"  {name}: {count} record{'s' if count != 1 else ''}")
    duplicates = sum(count - 1 for count in keys.values())
    print(f"duplicated records: {duplicates}; workers that failed: {failed}")
    expected = {"master": 1, **{str(pid): REQUESTS for pid in pids}}
    return 0 if dict(by_process) == expected and duplicates == 0 and failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
