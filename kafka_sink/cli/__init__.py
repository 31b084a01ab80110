"""The ``kafka-sink`` command line: send lines to a topic, read a topic back, run the demo.

``kafka-sink send`` produces one record per input line through a
:class:`~kafka_sink.Sink` and prints a delivery summary; ``kafka-sink tail``
prints the last records of a topic, or follows it, with the
:class:`~kafka_sink.net.fetcher.Fetcher`; ``kafka-sink demo`` runs
:mod:`kafka_sink.demo`. ``python3 -m kafka_sink`` is the same program.

Values are shown through a *value format* (``tail --value-format``): a list
of decoders, each turning a record's value into a JSON-compatible structure
or declining it; the first that accepts wins and raw bytes are the fallback.
:func:`register_value_format` adds one (``auto``, the default, tries every
decoder registered with ``auto=True``).

The modules, from the entry point down:

* :mod:`~kafka_sink.cli.command`: the argument parser and :func:`main`;
* :mod:`~kafka_sink.cli.send`, :mod:`~kafka_sink.cli.tail`,
  :mod:`~kafka_sink.cli.spool`, :mod:`~kafka_sink.cli.demo`: one command
  each, its options and what it runs;
* :mod:`~kafka_sink.cli.formats`: the value formats and the lines ``tail``
  prints;
* :mod:`~kafka_sink.cli.common`: the exit codes, the option types and the
  connection and security options every command shares.
"""

from __future__ import annotations

from kafka_sink.cli.command import build_parser, main
from kafka_sink.cli.common import (
    BOOTSTRAP_ENV_VAR,
    EXIT_DELIVERY_FAILED,
    EXIT_INTERRUPTED,
    EXIT_KAFKA_ERROR,
    EXIT_OK,
    EXIT_USAGE,
)
from kafka_sink.cli.common import SASL_PASSWORD_ENV_VAR as SASL_PASSWORD_ENV_VAR
from kafka_sink.cli.common import SSL_PASSWORD_ENV_VAR as SSL_PASSWORD_ENV_VAR
from kafka_sink.cli.formats import (
    Decoded,
    RecordFormatter,
    ValueDecoder,
    format_timestamp,
    register_value_format,
    render_text,
)
from kafka_sink.cli.formats import decode_json_value as decode_json_value
from kafka_sink.cli.formats import decode_metrics_value as decode_metrics_value
from kafka_sink.cli.tail import newest

__all__ = [
    "BOOTSTRAP_ENV_VAR",
    "EXIT_DELIVERY_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_KAFKA_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "Decoded",
    "RecordFormatter",
    "ValueDecoder",
    "build_parser",
    "format_timestamp",
    "main",
    "newest",
    "register_value_format",
    "render_text",
]
