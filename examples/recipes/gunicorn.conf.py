"""gunicorn's configuration: gthread workers, and every log record shipped to Kafka.

    KAFKA_SINK_BOOTSTRAP_SERVERS=kafka1:9092 gunicorn -c gunicorn.conf.py wsgi_app:app

gunicorn runs ``logconfig_dict`` through :func:`logging.config.dictConfig`
in its master process, before it forks the workers; the workers inherit
the KafkaHandler. Its Sink is fork-safe: each worker starts with an empty
buffer and a sender thread of its own, and ships only what it logs itself,
so every record reaches the topic once, whichever process logged it. The
brokers come from ``$KAFKA_SINK_BOOTSTRAP_SERVERS``.
"""

from __future__ import annotations

import logging
from typing import Any

worker_class = "gthread"
workers = 3
threads = 4
graceful_timeout = 10
# gunicorn 25.1 and later: no control socket (its default path is one per
# user, which servers started side by side would share).
control_socket_disable = True

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "console": {"format": "[%(process)d] %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "console",
            "stream": "ext://sys.stderr",
        },
        "kafka": {
            "class": "kafka_sink.KafkaHandler",
            "topic": "web-logs",
            "key": "request_id",
            "header_fields": ["request_id"],
            "close_timeout_ms": 5000,
        },
    },
    "root": {"level": "INFO", "handlers": ["console", "kafka"]},
    "loggers": {
        # gunicorn's own: the master's and the workers' lifecycle, errors...
        "gunicorn.error": {"level": "INFO", "handlers": ["console", "kafka"], "propagate": False},
        # ...and one record per request (the handler's JSON holds the formatted line)
        "gunicorn.access": {"level": "INFO", "handlers": ["kafka"], "propagate": False},
    },
}


def post_worker_init(worker: Any) -> None:
    """Runs in each worker once it has loaded the application."""
    logging.getLogger("shop.worker").info("worker %d ready", worker.pid)


def worker_exit(server: Any, worker: Any) -> None:
    """Runs in each worker as it exits: deliver what it logged, bounded by close_timeout_ms.

    Interpreter exit would do it too; doing it here also covers a worker
    that gunicorn ends without running the interpreter's exit hooks.
    """
    for handler in logging.getLogger().handlers:
        handler.flush()
