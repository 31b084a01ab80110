"""A small WSGI application that logs each request; served by gunicorn in ``gunicorn_gthread.py``.

    gunicorn -c gunicorn.conf.py wsgi_app:app

It logs with :mod:`logging` only: the KafkaHandler comes from gunicorn's
``logconfig_dict`` (``gunicorn.conf.py``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

log = logging.getLogger("shop.web")


def app(environ: dict[str, str], start_response: Callable[..., object]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    request_id = environ.get("HTTP_X_REQUEST_ID", "-")
    log.info("served %s", path, extra={"request_id": request_id, "worker_pid": os.getpid()})
    body = f"{path} served by worker {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
