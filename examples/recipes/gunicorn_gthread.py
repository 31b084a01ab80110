"""gunicorn with gthread workers, each worker's records and gunicorn's own shipped to Kafka.

    python3 examples/recipes/gunicorn_gthread.py    # needs gunicorn (Linux, macOS)

The server runs as it would in production, in a process of its own::

    KAFKA_SINK_BOOTSTRAP_SERVERS=kafka1:9092 gunicorn -c gunicorn.conf.py wsgi_app:app

``gunicorn.conf.py`` (next to this script) sets three gthread workers of
four threads and a ``logconfig_dict`` with a KafkaHandler, which the master
configures before it forks the workers. This script starts gunicorn on a
loopback port, waits for every worker, sends requests from several threads
at once, stops gunicorn with SIGTERM (each worker, then the master,
delivers what it logged as it exits) and reads the topic back: each
request's record once, each worker's records once, and gunicorn's own.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/_cluster.py

from _cluster import example_cluster  # noqa: E402 - found through the path set above
from _servers import Server, free_port, get  # noqa: E402 - next to this script

TOPIC = "web-logs"
WORKERS = 3  # as gunicorn.conf.py says
REQUESTS = 30


def main() -> int:
    with example_cluster(TOPIC) as cluster:
        port = free_port()
        server = Server(
            [
                "gunicorn",
                "-c",
                str(HERE / "gunicorn.conf.py"),
                "--bind",
                f"127.0.0.1:{port}",
                "wsgi_app:app",
            ],
            cwd=HERE,
            bootstrap_servers=cluster.bootstrap_servers,
        )
        try:
            server.wait_for(r"worker \d+ ready", count=WORKERS)
            with ThreadPoolExecutor(max_workers=6) as pool:
                statuses = list(
                    pool.map(
                        lambda i: get(port, f"/orders/{i}", {"X-Request-ID": f"r-{i}"})[0],
                        range(REQUESTS),
                    )
                )
        finally:
            status = server.stop()
        print(server.output())
        records = cluster.read(TOPIC)

    docs = [json.loads(record.value or b"") for record in records]
    print(f"\nread back from {TOPIC}: {len(records)} records")
    by_logger = Counter(doc["logger"] for doc in docs)
    print(f"records per logger: {dict(sorted(by_logger.items()))}")
    served = Counter(
        record.key for record, doc in zip(records, docs, strict=True) if doc["logger"] == "shop.web"
    )
    booted = {
        int(match[1])
        for doc in docs
        if (match := re.fullmatch(r"Booting worker with pid: (\d+)", doc["message"]))
    }
    ready = Counter(doc["process"] for doc in docs if doc["logger"] == "shop.worker")
    per_worker = Counter(doc["process"] for doc in docs if doc["logger"] == "shop.web")
    for pid in sorted(booted):
        print(f"  worker {pid}: ready {ready[pid]} time(s), served {per_worker[pid]} request(s)")
    duplicates = sum(count - 1 for count in served.values())
    print(f"requests answered: {statuses.count(200)} of {REQUESTS}; server exit status: {status}")
    print(f"requests whose record arrived once: {sum(c == 1 for c in served.values())}")
    print(f"duplicated records: {duplicates}")
    ok = (
        statuses == [200] * REQUESTS
        and status == 0
        and served == {f"r-{i}".encode(): 1 for i in range(REQUESTS)}
        and by_logger["gunicorn.access"] == REQUESTS
        and len(booted) == WORKERS
        and ready == dict.fromkeys(booted, 1)
        and set(per_worker) <= booted
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
