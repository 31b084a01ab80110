"""Django's ``LOGGING`` setting with a KafkaHandler: the application's and Django's records.

    python3 examples/recipes/django_logging.py    # needs Django

``django_site/settings.py`` holds the ``LOGGING`` dict: the ``shop``
loggers and ``django.request`` (which logs every 4xx answer as a warning and
every 5xx as an error with its traceback) go to the console and to a
KafkaHandler whose brokers come from ``$KAFKA_SINK_BOOTSTRAP_SERVERS``.
The script sets that variable to its cluster, starts Django (which
configures logging), sends four requests through Django's whole request
handling with its test client (two orders, an unknown order, an order whose
view raises), and reads the topic back.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/_cluster.py

from _cluster import ENV_VAR, example_cluster, headers  # noqa: E402 - see the path above

TOPIC = "django-logs"


def main() -> int:
    with example_cluster(TOPIC) as cluster:
        os.environ[ENV_VAR] = cluster.bootstrap_servers  # as a deployment would set it
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")
        import django  # noqa: PLC0415 - after the environment is set
        from django.test import Client  # noqa: PLC0415 - idem

        django.setup()  # runs settings.LOGGING through dictConfig
        client = Client(raise_request_exception=False)
        statuses = [
            client.get(f"/orders/{order}", headers={"X-Request-ID": f"r-{n}"}).status_code
            for n, order in enumerate(["o-1", "o-2", "o-404", "broken"], start=1)
        ]
        logging.shutdown()  # what the exit does: deliver what is buffered (bounded)
        records = cluster.read(TOPIC)

    print(f"\nstatuses: {statuses}")
    print(f"read back from {TOPIC}:")
    arrived = []
    for record in records:
        doc = json.loads(record.value or b"")
        arrived.append((doc["logger"], doc["level"], doc["message"]))
        print(f"  key {record.key!r} headers {headers(record)}")
        if "exception" in doc:  # a traceback: show its last line
            doc["exception"] = doc["exception"].splitlines()[-1]
        print(f"    {json.dumps(doc, sort_keys=True)}")
    logged = [
        ("shop.orders", "INFO", "order o-1 shown"),
        ("shop.orders", "INFO", "order o-2 shown"),
        ("django.request", "WARNING", "Not Found: /orders/o-404"),
        ("django.request", "ERROR", "Internal Server Error: /orders/broken"),
    ]
    print(f"{len(records)} of {len(logged)} records read back")
    return 0 if sorted(arrived) == sorted(logged) and statuses == [200, 200, 404, 500] else 1


if __name__ == "__main__":
    sys.exit(main())
