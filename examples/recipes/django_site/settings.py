"""Django settings: the ``LOGGING`` dict ships the application's and Django's records to Kafka.

Django runs ``LOGGING`` through :func:`logging.config.dictConfig` when it
starts (``django.setup()``, which ``manage.py``, ``runserver`` and the WSGI
and ASGI entry points call). The KafkaHandler takes its brokers, and any
TLS or SASL settings, from the ``KAFKA_SINK_*`` environment variables, so
the settings name no host and hold no secret.
"""

from __future__ import annotations

SECRET_KEY = "only-for-this-example"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
ROOT_URLCONF = "django_site.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "console": {"format": "{levelname} {name}: {message}", "style": "{"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "console"},
        "kafka": {
            "class": "kafka_sink.KafkaHandler",
            "topic": "django-logs",
            # brokers (and TLS, SASL) from $KAFKA_SINK_BOOTSTRAP_SERVERS and the other KAFKA_SINK_*
            "key": "user_id",
            "header_fields": ["request_id"],
            "serializer_options": {"static": {"service": "shop"}},
            "close_timeout_ms": 5000,
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        # Django's: 4xx answers as warnings, 5xx as errors with the traceback
        "django.request": {
            "handlers": ["console", "kafka"],
            "level": "WARNING",
            "propagate": False,
        },
        # the application's own
        "shop": {"handlers": ["console", "kafka"], "level": "INFO", "propagate": False},
    },
}
