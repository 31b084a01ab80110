"""Logging on confluent-kafka, written the way its users write it: the benchmarks' peers.

* :class:`ConfluentHandler`: a :class:`logging.Handler` whose ``emit()``
  formats the record with the handler's formatter and hands it to a
  confluent-kafka ``Producer`` (``produce()`` then ``poll(0)``). It keeps
  :meth:`logging.Handler.handle`, which takes the handler's lock around
  ``emit()``, as every handler that does not override it does.
* :class:`ConfluentLoggerFactory`: a structlog logger factory whose loggers
  produce the rendered event (the string the last processor returned, e.g.
  ``JSONRenderer``'s) the same way.

A full queue (``BufferError``) is served with ``poll()`` and retried, so that
no record is lost while being timed; it does not happen with the benchmarks'
32 MiB queue.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["ConfluentHandler", "ConfluentLogger", "ConfluentLoggerFactory", "produce_retrying"]


def produce_retrying(producer: Any, topic: str, value: bytes, key: Any) -> None:
    """``produce()`` after serving delivery reports until the queue has room."""
    while True:
        try:
            producer.produce(topic, value, key)
            return
        except BufferError:
            producer.poll(0.001)


class ConfluentHandler(logging.Handler):
    """Formats each record and produces it; the key is a record attribute, if named."""

    def __init__(
        self, producer: Any, topic: str, key: str | None = None, level: int = logging.NOTSET
    ) -> None:
        super().__init__(level)
        self.producer = producer
        self.topic = topic
        self.key = key
        self._produce = producer.produce
        self._poll = producer.poll

    def emit(self, record: logging.LogRecord) -> None:
        try:
            value = self.format(record).encode()
            key = getattr(record, self.key, None) if self.key is not None else None
            try:
                self._produce(self.topic, value, key)
            except BufferError:
                produce_retrying(self.producer, self.topic, value, key)
            self._poll(0)
        except Exception:
            self.handleError(record)

    def flush(self, timeout: float = 60.0) -> None:
        self.producer.flush(timeout)


class ConfluentLogger:
    """A structlog logger: every method produces its one argument, the rendered event."""

    def __init__(self, producer: Any, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self._produce = producer.produce
        self._poll = producer.poll

    def msg(self, message: str) -> None:
        value = message.encode()
        try:
            self._produce(self.topic, value)
        except BufferError:
            produce_retrying(self.producer, self.topic, value, None)
        self._poll(0)

    log = debug = info = warn = warning = error = err = critical = fatal = exception = msg


class ConfluentLoggerFactory:
    """``structlog.configure(logger_factory=ConfluentLoggerFactory(producer, topic))``."""

    def __init__(self, producer: Any, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def __call__(self, *args: Any) -> ConfluentLogger:
        return ConfluentLogger(self.producer, self.topic)
