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
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

from kafka_sink import __version__
from kafka_sink.config import (
    SECURITY_PROTOCOLS,
    BrokerAddress,
    SinkConfig,
    check_topic,
    parse_broker_list,
)
from kafka_sink.errors import (
    BrokerResponseError,
    DeliveryError,
    InvalidArgumentError,
    KafkaSinkError,
)
from kafka_sink.metrics.encodings import ENCODING_HEADER, as_data, describe
from kafka_sink.net.cluster import Connection
from kafka_sink.net.fetcher import FetchedRecord, Fetcher
from kafka_sink.producer.futures import RecordMetadata
from kafka_sink.producer.sink import Sink
from kafka_sink.protocol.codecs import Compression
from kafka_sink.protocol.records import TimestampType

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

#: Environment variables holding the SASL password and the client key's password.
SASL_PASSWORD_ENV_VAR = "KAFKA_SINK_SASL_PASSWORD"
SSL_PASSWORD_ENV_VAR = "KAFKA_SINK_SSL_PASSWORD"
#: Where ``--bootstrap-servers`` comes from when it is not given.
BOOTSTRAP_ENV_VAR = "KAFKA_SINK_BOOTSTRAP_SERVERS"
_DEFAULT_BOOTSTRAP = "localhost:9092"

EXIT_OK = 0
#: ``send``: some records were not delivered.
EXIT_DELIVERY_FAILED = 1
#: A bad option or argument, an unreadable input file, an unknown partition.
EXIT_USAGE = 2
#: No broker reachable, unknown topic, a broker refused, a protocol error.
EXIT_KAFKA_ERROR = 3
#: Interrupted (Ctrl-C).
EXIT_INTERRUPTED = 130

_EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}    success
  {EXIT_DELIVERY_FAILED}    send: some records were not delivered (the summary says why)
  {EXIT_USAGE}    usage error: bad option or argument, unreadable file, unknown partition
  {EXIT_KAFKA_ERROR}    Kafka error: no broker reachable, unknown topic, a broker refused
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)

Errors are printed as one line on standard error."""

_SEND_EXAMPLES = """\
examples:
  echo '{"msg": "hello"}' | kafka-sink send -t logs
  kafka-sink send -b broker1:9092,broker2:9092 -t logs app.log other.log
  printf 'user-1\\t{"action": "login"}\\n' | kafka-sink send -t events -K '\\t'
  tail -F app.log | kafka-sink send -t logs -H source=web -H env=prod -z zstd --acks 1

Each line (without its newline) is one record; empty lines are skipped. The
summary says how many records were delivered to which partitions and, for
those that were not, why."""

_TAIL_EXAMPLES = """\
examples:
  kafka-sink tail -t logs                  the 10 newest records of the topic
  kafka-sink tail -t logs -n 100 -p 0      the 100 newest records of partition 0
  kafka-sink tail -t logs -n 5 --per-partition
  kafka-sink tail -t logs -f               the 10 newest, then new records as they come
  kafka-sink tail -t logs -n 0 -f          only new records
  kafka-sink tail -t logs --from-beginning --format json > logs.jsonl

Text output has one line per record, tab-separated: partition, offset,
timestamp (ISO 8601, UTC), key, headers (name=value,...), value. Keys,
header values and values are shown as text when they are UTF-8, with
control characters and invalid bytes escaped (\\n, \\t, \\x00); a null key or
value is shown as an empty field. --format json writes one JSON object per
line instead, exact: bytes that are not UTF-8 become {"base64": "..."}.

-n selects the N newest records of the topic by timestamp (of each
partition with --per-partition) and prints them oldest first; compacted
topics and transaction markers can make them fewer. --from-beginning prints
every record, partition by partition as they are fetched. -f then keeps
printing records as they are written (partitions added meanwhile are not
followed) until interrupted."""


# -- value formats ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decoded:
    """A value a decoder understood, as a JSON-compatible structure.

    ``text``, when given, is how the text format shows it (else ``data`` as JSON).
    """

    data: Any
    text: str | None = None


#: ``decoder(record)``: a :class:`Decoded` value, or None to leave the record to others.
ValueDecoder = Callable[[FetchedRecord], Decoded | None]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_json_value(record: FetchedRecord) -> Decoded | None:
    """The value parsed as JSON, or None when it is not JSON."""
    if record.value is None:
        return None
    try:
        return Decoded(json.loads(record.value, parse_constant=_reject_constant))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError too
        return None


_AUTO = "auto"
# name -> decoders tried in order; "auto" is resolved from _AUTO_DECODERS at use,
# so that a decoder registered with auto=True later still takes part.
_VALUE_FORMATS: dict[str, tuple[ValueDecoder, ...]] = {
    _AUTO: (),
    "raw": (),
    "json": (decode_json_value,),
}
_AUTO_DECODERS: list[ValueDecoder] = []


def decode_metrics_value(record: FetchedRecord) -> Decoded | None:
    """A metrics exporter's record (it carries the ``metrics-encoding`` header), or None."""
    encoding = next((v for name, v in record.headers if name == ENCODING_HEADER), None)
    if encoding is None or record.value is None:
        return None
    name = encoding.decode("utf-8", "replace")
    data = as_data(record.value, name)
    if data is None:
        return None
    text = describe(record.value, name)
    return Decoded(data, None if text is None else text.replace("\n", " | "))


def register_value_format(name: str, decoder: ValueDecoder, *, auto: bool = False) -> None:
    """Make ``tail --value-format NAME`` show values through ``decoder``.

    With ``auto`` the default format (``auto``) tries ``decoder`` too, after
    those registered before it. Register before :func:`build_parser` runs
    (at import time of the module that defines the decoder)::

        def decode_gauge(record):
            if dict(record.headers).get("content-type") != b"application/x-gauge":
                return None
            return Decoded({"gauge": struct.unpack(">d", record.value)[0]})

        register_value_format("gauge", decode_gauge, auto=True)
    """
    if not isinstance(name, str) or not name.isidentifier() or name == _AUTO:
        raise InvalidArgumentError("name", f"{name!r} cannot name a value format")
    if not callable(decoder):
        raise InvalidArgumentError("decoder", "must be callable")
    _VALUE_FORMATS[name] = (decoder,)
    if auto:
        _AUTO_DECODERS.append(decoder)


def _decoders(value_format: str) -> tuple[ValueDecoder, ...]:
    if value_format == _AUTO:
        return tuple(_AUTO_DECODERS)
    try:
        return _VALUE_FORMATS[value_format]
    except KeyError:
        known = ", ".join(sorted(_VALUE_FORMATS))
        raise InvalidArgumentError(
            "--value-format", f"unknown format {value_format!r} (known: {known})"
        ) from None


# The metrics exporter's encodings are recognised by their header, so a log
# line that happens to look like Influx line protocol is left alone.
register_value_format("metrics", decode_metrics_value, auto=True)


# -- rendering --------------------------------------------------------------------------

# C0 controls and DEL would break the one-line-per-record, tab-separated layout.
_ESCAPES: dict[int, str] = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F]}
_ESCAPES.update({ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r"})
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def render_text(data: bytes | str | None) -> str:
    """Bytes as one line of text: UTF-8 decoded, invalid bytes and controls escaped.

    >>> render_text(b'caf\\xc3\\xa9\\tbar\\xff')
    'café\\\\tbar\\\\xff'
    """
    if data is None:
        return ""
    text = data if isinstance(data, str) else data.decode("utf-8", "backslashreplace")
    return text.translate(_ESCAPES)


def format_timestamp(ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC; "" for -1 (no timestamp).

    >>> format_timestamp(1_700_000_000_123)
    '2023-11-14T22:13:20.123Z'
    """
    if ms < 0:
        return ""
    try:
        moment = _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:  # beyond year 9999: show the number
        return str(ms)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _json_bytes(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


_TIMESTAMP_TYPES = {
    TimestampType.CREATE_TIME: "CreateTime",
    TimestampType.LOG_APPEND_TIME: "LogAppendTime",
}


class RecordFormatter:
    """Turns a fetched record into one line of output (without the newline).

    ``line_format`` is ``"text"`` (tab-separated columns) or ``"json"`` (one
    JSON object); ``value_format`` names the decoders tried on the value.
    """

    __slots__ = ("_decoders", "_json")

    def __init__(self, line_format: str = "text", value_format: str = _AUTO) -> None:
        if line_format not in ("text", "json"):
            raise InvalidArgumentError("--format", f"must be text or json, got {line_format!r}")
        self._json = line_format == "json"
        self._decoders = _decoders(value_format)

    def _decode(self, record: FetchedRecord) -> Decoded | None:
        for decoder in self._decoders:
            try:
                decoded = decoder(record)
            except Exception:  # a broken decoder must not stop the listing: show raw bytes
                continue
            if decoded is not None:
                return decoded
        return None

    def __call__(self, record: FetchedRecord) -> str:
        decoded = self._decode(record)
        if self._json:
            return json.dumps(
                {
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "timestamp": format_timestamp(record.timestamp) or None,
                    "timestamp_ms": record.timestamp,
                    "timestamp_type": _TIMESTAMP_TYPES.get(record.timestamp_type),
                    "key": _json_bytes(record.key),
                    "headers": [[name, _json_bytes(value)] for name, value in record.headers],
                    "value": _json_bytes(record.value) if decoded is None else decoded.data,
                },
                ensure_ascii=False,
            )
        if decoded is None:
            value = render_text(record.value)
        else:
            text = decoded.text
            value = render_text(
                json.dumps(decoded.data, ensure_ascii=False) if text is None else text
            )
        headers = ",".join(
            render_text(name) if data is None else f"{render_text(name)}={render_text(data)}"
            for name, data in record.headers
        )
        return "\t".join(
            (
                str(record.partition),
                str(record.offset),
                format_timestamp(record.timestamp),
                render_text(record.key),
                headers,
                value,
            )
        )


# -- argument parsing -------------------------------------------------------------------


def _brokers(text: str) -> tuple[BrokerAddress, ...]:
    try:
        return parse_broker_list(text, "--bootstrap-servers")
    except InvalidArgumentError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _number(text: str, allow_zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = "0 or more" if allow_zero else "more than 0"
        raise argparse.ArgumentTypeError(f"must be a number {bound}, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    return _number(text, allow_zero=False)


def _non_negative_float(text: str) -> float:
    return _number(text, allow_zero=True)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _topic(text: str) -> str:
    try:
        return check_topic(text)
    except InvalidArgumentError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _header(text: str) -> tuple[str, bytes]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value.encode("utf-8")


def _separator(text: str) -> bytes:
    if not text:
        raise argparse.ArgumentTypeError("the separator cannot be empty")
    # A tab is awkward to type in a shell: accept the two characters \t for it.
    return b"\t" if text == "\\t" else text.encode("utf-8")


def _add_security_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "security",
        "TLS and SASL, with the option names of kafka_sink.Connection and kafka_sink.Sink. "
        f"Passwords are read from the environment (${SASL_PASSWORD_ENV_VAR}, "
        f"${SSL_PASSWORD_ENV_VAR}), never from the command line, where other users "
        "of the machine could see them.",
    )
    group.add_argument(
        "--security-protocol",
        choices=SECURITY_PROTOCOLS,
        default="PLAINTEXT",
        help="how to talk to the brokers (default: PLAINTEXT)",
    )
    group.add_argument("--ssl-cafile", metavar="PEM", help="CA certificates to trust")
    group.add_argument("--ssl-capath", metavar="DIR", help="a directory of CA certificates")
    group.add_argument("--ssl-certfile", metavar="PEM", help="client certificate (mutual TLS)")
    group.add_argument("--ssl-keyfile", metavar="PEM", help="client certificate's private key")
    group.add_argument(
        "--ssl-no-check-hostname",
        dest="ssl_check_hostname",
        action="store_false",
        help="accept a certificate issued for another host name (still verified)",
    )
    group.add_argument(
        "--ssl-insecure-skip-verify",
        action="store_true",
        help="INSECURE, for development only: accept any certificate",
    )
    group.add_argument(
        "--sasl-mechanism", choices=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), default=None
    )
    group.add_argument("--sasl-username", metavar="USER")


def _security_options(args: argparse.Namespace) -> dict[str, Any]:
    """The security options of ``Connection`` and ``Sink`` from the command line and env."""
    options: dict[str, Any] = {"security_protocol": args.security_protocol}
    for name in ("ssl_cafile", "ssl_capath", "ssl_certfile", "ssl_keyfile", "sasl_mechanism"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if not args.ssl_check_hostname:
        options["ssl_check_hostname"] = False
    if args.ssl_insecure_skip_verify:
        options["ssl_insecure_skip_verify"] = True
    if args.sasl_username is not None:
        options["sasl_plain_username"] = args.sasl_username
    sasl_password = os.environ.get(SASL_PASSWORD_ENV_VAR)
    if sasl_password is not None and args.security_protocol.startswith("SASL"):
        options["sasl_plain_password"] = sasl_password
    ssl_password = os.environ.get(SSL_PASSWORD_ENV_VAR)
    if ssl_password is not None and args.ssl_keyfile is not None:
        options["ssl_password"] = ssl_password
    return options


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    _add_security_options(parser)
    default = os.environ.get(BOOTSTRAP_ENV_VAR) or _DEFAULT_BOOTSTRAP
    parser.add_argument(
        "-b",
        "--bootstrap-servers",
        type=_brokers,
        default=default,
        metavar="HOST:PORT,...",
        help=f"brokers to bootstrap from (default: ${BOOTSTRAP_ENV_VAR} or {_DEFAULT_BOOTSTRAP})",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="bound on connecting and on each request (send: on each record's delivery); "
        "default 10",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``kafka-sink`` argument parser."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="kafka-sink",
        description="Ship application logs, events and metrics to Apache Kafka, and read\n"
        "them back. Run 'kafka-sink COMMAND --help' for the options of a command.",
        epilog=_EXIT_CODES,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    send = commands.add_parser(
        "send",
        help="send lines from files or standard input to a topic, one record per line",
        description="Send lines from files or standard input to a topic, one record per\n"
        "line, then print a delivery summary.",
        epilog=f"{_SEND_EXAMPLES}\n\n{_EXIT_CODES}",
        formatter_class=formatter,
    )
    _add_connection_options(send)
    send.add_argument("-t", "--topic", type=_topic, required=True, help="the topic to send to")
    send.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="files to read, one record per line ('-' or none: standard input)",
    )
    keys = send.add_mutually_exclusive_group()
    keys.add_argument("-k", "--key", help="the key of every record (default: no key)")
    keys.add_argument(
        "-K",
        "--key-separator",
        type=_separator,
        metavar="SEP",
        help="split each line at its first SEP into key and value; a line without SEP "
        "has no key ('\\t' means a tab)",
    )
    send.add_argument(
        "-p",
        "--partition",
        type=_non_negative_int,
        help="send every record to this partition (default: keyed records by the hash of "
        "their key, others spread in batches)",
    )
    send.add_argument(
        "-H",
        "--header",
        type=_header,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="add this header to every record (repeatable)",
    )
    send.add_argument(
        "-z",
        "--compression",
        choices=[codec.name.lower() for codec in Compression],
        default="lz4",
        help="compression codec of the batches (default: lz4)",
    )
    send.add_argument(
        "-a",
        "--acks",
        choices=["0", "1", "all"],
        default="all",
        help="acknowledgement the brokers give: 0 none, 1 the leader, all every in-sync "
        "replica (default: all, with idempotence)",
    )
    send.add_argument(
        "--linger-ms",
        type=_non_negative_float,
        default=10.0,
        metavar="MS",
        help="how long a batch waits for more records (default: 10)",
    )
    send.set_defaults(run=_run_send)

    tail = commands.add_parser(
        "tail",
        help="print the last records of a topic, or follow it",
        description="Print the last records of a topic, or all of them, and optionally\n"
        "follow it. Every compression codec is decoded.",
        epilog=f"{_TAIL_EXAMPLES}\n\n{_EXIT_CODES}",
        formatter_class=formatter,
    )
    _add_connection_options(tail)
    tail.add_argument("-t", "--topic", type=_topic, required=True, help="the topic to read")
    start = tail.add_mutually_exclusive_group()
    start.add_argument(
        "-n",
        "--last",
        type=_non_negative_int,
        default=10,
        metavar="N",
        help="print the N newest records of the topic, by timestamp (default: 10)",
    )
    start.add_argument(
        "--from-beginning", action="store_true", help="print every record still stored"
    )
    tail.add_argument(
        "--per-partition",
        action="store_true",
        help="-n counts the records of each partition rather than of the topic",
    )
    tail.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new records until interrupted"
    )
    tail.add_argument(
        "-p",
        "--partition",
        type=_non_negative_int,
        action="append",
        metavar="N",
        help="read only this partition (repeatable; default: every partition)",
    )
    tail.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="text: tab-separated columns; json: one JSON object per line (default: text)",
    )
    tail.add_argument(
        "--value-format",
        choices=sorted(_VALUE_FORMATS),
        default=_AUTO,
        help="how values are shown: raw bytes as text, json parsed as JSON, auto the "
        "known encodings (default: auto)",
    )
    tail.set_defaults(run=_run_tail)

    demo = commands.add_parser(
        "demo",
        help="start an embedded local cluster, log to it through kafka_sink, read it back",
        description="Start an embedded local cluster (librdkafka's mock cluster), run a small\n"
        "application that logs through KafkaHandler and structlog and exports metrics,\n"
        "then read the topics back and print what arrived and the delivery metrics\n"
        "(needs pip install 'kafka-sink[testing]').",
        epilog=_EXIT_CODES,
        formatter_class=formatter,
    )
    demo.add_argument(
        "--messages",
        type=int,
        default=600,
        help="how many requests the application serves, one log record each (default: 600)",
    )
    demo.add_argument(
        "--seconds",
        type=_positive_float,
        default=3.0,
        help="how long the application takes to serve them (default: 3)",
    )
    demo.add_argument(
        "-b",
        "--bootstrap-servers",
        help="use this cluster instead of starting the embedded one (host:port,...)",
    )
    demo.set_defaults(run=_run_demo)
    _add_spool_commands(commands, formatter)
    return parser


_SPOOL_EXAMPLES = """\
examples:
  kafka-sink spool inspect /var/spool/app          what each log holds, without changing it
  kafka-sink spool inspect /var/spool/app --format json
  kafka-sink spool drain /var/spool/app -b kafka1:9092 --timeout 300

A spool directory (a Sink's spool_dir) holds one log per process that used
it. inspect reads every log, live or not, and the dead-letter files, and
changes nothing. drain opens a Sink on the directory, which adopts the logs
no live process holds, delivers their records (sealed batches again with
their producer id, epoch and sequence, so that the broker drops what it
already has) and deletes them; logs of live processes are left alone."""


def _add_spool_commands(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    spool = commands.add_parser(
        "spool",
        help="inspect or drain a Sink's durable spool (spool_dir)",
        description="Inspect or drain the durable spool of a Sink (its spool_dir).",
        epilog=f"{_SPOOL_EXAMPLES}\n\n{_EXIT_CODES}",
        formatter_class=formatter,
    )
    actions = spool.add_subparsers(dest="spool_command", required=True, metavar="ACTION")
    inspect = actions.add_parser(
        "inspect",
        help="describe what a spool directory holds, without changing it",
        description="Describe every log of a spool directory (or one log directory): its\n"
        "owner, segments, undelivered records by topic, sealed batches awaiting an\n"
        "acknowledgement, torn tails, and the dead-letter files.",
        epilog=_SPOOL_EXAMPLES,
        formatter_class=formatter,
    )
    inspect.add_argument("directory", metavar="DIR", help="a spool_dir, or one log in it")
    inspect.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="text for people, json for programs (default: text)",
    )
    inspect.set_defaults(run=_run_spool_inspect)
    drain = actions.add_parser(
        "drain",
        help="deliver the records of the logs no live process holds, then delete them",
        description="Deliver every record that the logs of dead (or closed) processes hold,\n"
        "then delete those logs.",
        epilog=f"{_SPOOL_EXAMPLES}\n\n{_EXIT_CODES}",
        formatter_class=formatter,
    )
    drain.add_argument("directory", metavar="DIR", help="the spool_dir")
    _add_connection_options(drain)
    # Draining a large spool takes longer than one request: a longer default.
    timeout = drain._option_string_actions["--timeout"]
    timeout.default = 60.0
    timeout.help = "how long to wait for the records to be delivered; default 60"
    drain.set_defaults(run=_run_spool_drain)


# -- commands ---------------------------------------------------------------------------


class _CommandError(Exception):
    """A problem of the command line itself (an unreadable file), with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def _servers(addresses: Sequence[BrokerAddress]) -> list[str]:
    return [str(address) for address in addresses]


def _open_inputs(paths: Sequence[str]) -> list[IO[bytes]]:
    streams: list[IO[bytes]] = []
    for path in paths or ["-"]:
        if path == "-":
            streams.append(sys.stdin.buffer)
            continue
        try:
            streams.append(open(path, "rb"))  # noqa: SIM115 - closed by _run_send
        except OSError as exc:
            for stream in streams:
                _close_input(stream)
            raise _CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
    return streams


def _close_input(stream: IO[bytes]) -> None:
    if stream is not sys.stdin.buffer:
        stream.close()


def _lines(streams: Iterable[IO[bytes]]) -> Iterator[bytes]:
    for stream in streams:
        name = getattr(stream, "name", "<stdin>")
        try:
            for line in stream:
                yield line[:-1] if line.endswith(b"\n") else line
        except OSError as exc:
            raise _CommandError(f"cannot read {name}: {exc.strerror or exc}") from None


class _Tally:
    """Counts delivery outcomes; called on the sink's thread (and the caller's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.delivered = 0
        # partition -> [count, lowest offset, highest offset]
        self.partitions: dict[int, list[int]] = {}
        # reason -> [count, first message]
        self.failures: dict[str, list[Any]] = {}

    def __call__(self, metadata: RecordMetadata | None, error: DeliveryError | None) -> None:
        with self._lock:
            if metadata is not None:
                self.delivered += 1
                entry = self.partitions.setdefault(
                    metadata.partition, [0, metadata.offset, metadata.offset]
                )
                entry[0] += 1
                entry[1] = min(entry[1], metadata.offset)
                entry[2] = max(entry[2], metadata.offset)
            elif error is not None:
                failure = self.failures.setdefault(error.reason, [0, error.message])
                failure[0] += 1

    @property
    def failed(self) -> int:
        return sum(count for count, _ in self.failures.values())

    def summary(self, topic: str, sent: int, elapsed: float) -> list[str]:
        with self._lock:
            parts = []
            for partition, (count, low, high) in sorted(self.partitions.items()):
                offsets = f"offsets {low}-{high}" if low >= 0 else "offsets unknown"
                parts.append(f"partition {partition}: {count} ({offsets})")
            lines = [
                f"delivered {self.delivered} of {sent} records to {topic} in {elapsed:.2f} s"
                + (f": {', '.join(parts)}" if parts else "")
            ]
            for reason, (count, message) in sorted(self.failures.items()):
                lines.append(f"failed {count} records ({reason}): {message}")
            unconfirmed = sent - self.delivered - self.failed
            if unconfirmed > 0:
                lines.append(f"{unconfirmed} records still unconfirmed when the command ended")
            return lines


def _run_send(args: argparse.Namespace) -> int:
    topic: str = args.topic
    servers = _servers(args.bootstrap_servers)
    timeout: float = args.timeout
    codec = Compression.from_name(args.compression)  # zstd: is zstandard installed?
    streams = _open_inputs(args.files)
    try:
        # Reach the cluster first: an unreachable cluster or an unknown topic
        # is one clear error before anything is read or buffered.
        security = _security_options(args)
        with Connection(broker_list=servers, timeout=timeout, **security) as connection:
            partitions = connection.partitions(topic)
        if args.partition is not None and args.partition not in partitions:
            raise InvalidArgumentError(
                "--partition",
                f"topic {topic!r} has no partition {args.partition} (partitions: {partitions})",
            )
        timeout_ms = timeout * 1000.0
        options: dict[str, object] = {
            "client_id": "kafka-sink-cli",
            "acks": args.acks,
            "compression_type": codec.name.lower(),
            "linger_ms": args.linger_ms,
            # A command line must not drop its input: wait for buffer space instead.
            "on_buffer_full": "block",
            "max_block_ms": timeout_ms,
            "request_timeout_ms": timeout_ms,
            "delivery_timeout_ms": timeout_ms,
            **security,
        }
        # Its flags and the variables it documents configure the command, not
        # the library's KAFKA_SINK_* options: the Connection above reads no
        # environment, and both must reach the cluster the same way.
        config = SinkConfig.from_mapping(options, bootstrap_servers=servers, environ={})
        sink = Sink(config=config)
        return _send_lines(args, sink, _lines(streams))
    finally:
        for stream in streams:
            _close_input(stream)


def _send_lines(args: argparse.Namespace, sink: Sink, lines: Iterable[bytes]) -> int:
    topic: str = args.topic
    key: bytes | None = None if args.key is None else args.key.encode("utf-8")
    separator: bytes | None = args.key_separator
    headers: list[tuple[str, bytes]] = args.header
    tally = _Tally()
    started = time.monotonic()
    sent = 0
    interrupted = False
    try:
        for line in lines:
            if not line:
                continue
            record_key, value = key, line
            if separator is not None:
                head, found, rest = line.partition(separator)
                if found:
                    record_key, value = head, rest
            sink.produce(
                topic,
                value,
                key=record_key,
                partition=args.partition,
                headers=headers or None,
                on_delivery=tally,
            )
            sent += 1
    except KeyboardInterrupt:
        interrupted = True  # deliver what was read, then say so
    finally:
        sink.flush(args.timeout)
        sink.close(args.timeout)
    for text in tally.summary(topic, sent, time.monotonic() - started):
        print(text)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if tally.delivered == sent else EXIT_DELIVERY_FAILED


def _run_tail(args: argparse.Namespace) -> int:
    topic: str = args.topic
    formatter = RecordFormatter(args.format, args.value_format)
    out = sys.stdout
    # Keys and values may hold text the terminal's encoding cannot show.
    reconfigure = getattr(out, "reconfigure", None)
    if reconfigure is not None:
        with contextlib.suppress(ValueError, OSError):
            reconfigure(errors="backslashreplace")

    def on_reset(topic: str, partition: int, old: int, new: int) -> None:
        print(
            f"kafka-sink tail: partition {partition}: offset {old} is out of range, "
            f"continuing at {new}",
            file=sys.stderr,
        )

    connection = Connection(
        broker_list=_servers(args.bootstrap_servers),
        timeout=args.timeout,
        # Up to about 20 s of back-off in a row: a follower rides out a leader
        # election or a broker restart.
        send_max_attempts=8,
        **_security_options(args),
    )
    with connection:
        fetcher = Fetcher(connection, on_offset_reset=on_reset)
        ranges = fetcher.offsets(topic, args.partition)
        end = {p: r.latest for p, r in ranges.items()}
        if args.from_beginning:
            start = {p: r.earliest for p, r in ranges.items()}
            for record in fetcher.read(topic, start, end=end):
                out.write(formatter(record) + "\n")
        elif args.last:
            n: int = args.last
            start = {p: max(r.earliest, r.latest - n) for p, r in ranges.items()}
            records = list(fetcher.read(topic, start, end=end))
            for record in newest(records, n, per_partition=args.per_partition):
                out.write(formatter(record) + "\n")
        out.flush()
        if args.follow:
            for record in fetcher.read(topic, end):
                out.write(formatter(record) + "\n")
                out.flush()
    return EXIT_OK


def newest(
    records: Iterable[FetchedRecord], n: int, *, per_partition: bool = False
) -> list[FetchedRecord]:
    """The ``n`` newest records by timestamp (of each partition), oldest first.

    Ties are broken by partition and offset, so the order is stable.
    """
    ordered = sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))
    if n <= 0:
        return []
    if not per_partition:
        return ordered[-n:]
    kept: list[FetchedRecord] = []
    seen: dict[int, int] = {}
    for record in reversed(ordered):
        if seen.get(record.partition, 0) < n:
            seen[record.partition] = seen.get(record.partition, 0) + 1
            kept.append(record)
    kept.reverse()
    return kept


def _spool_directory(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise _CommandError(f"{text} is not a directory")
    return path


def _run_spool_inspect(args: argparse.Namespace) -> int:
    from kafka_sink.producer.spool import inspect_spool  # noqa: PLC0415 - spool users only

    report = inspect_spool(_spool_directory(args.directory))
    if args.format == "json":
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        for line in _spool_report_lines(report):
            print(line)
    return EXIT_OK


def _spool_report_lines(report: dict[str, Any]) -> list[str]:
    lines = [f"spool {report['path']}: {len(report['logs'])} log(s)"]
    for log in report["logs"]:
        owner = log.get("owner") or {}
        who = f" (pid {owner['pid']} on {owner.get('host', '?')})" if "pid" in owner else ""
        lines.append(f"log {Path(log['path']).name}: {log['state']}{who}")
        if "error" in log:
            lines.append(f"  cannot be read: {log['error']}")
            continue
        lines.append(
            f"  {len(log['segments'])} segment(s), {log['bytes']} bytes, {log['records']} "
            f"records, {log['unresolved']} undelivered"
        )
        for name, topic in sorted(log["topics"].items()):
            oldest = topic["oldest_timestamp_ms"]
            since = f", oldest {format_timestamp(oldest)}" if oldest is not None else ""
            lines.append(f"  topic {name}: {topic['unresolved']} undelivered{since}")
        for batch in log["sealed_unacknowledged"]:
            lines.append(
                f"  sealed, not acknowledged: {batch['topic']} partition {batch['partition']}, "
                f"{batch['records']} records, producer id {batch['producer_id']} epoch "
                f"{batch['producer_epoch']} base sequence {batch['base_sequence']}"
            )
        if log["sealed_incomplete"]:
            lines.append(
                f"  {log['sealed_incomplete']} sealed batch(es) lost records to a torn "
                "segment: their other records may be delivered twice"
            )
        if log["truncated_entries"]:
            lines.append(
                f"  torn or corrupt tails: {log['truncated_entries']} "
                f"({log['truncated_bytes']} bytes cut off)"
            )
        for name in log["foreign"]:
            lines.append(f"  not a spool file (left alone): {name}")
    for dead in report["dead_letter"]:
        topics = ", ".join(f"{t}: {n}" for t, n in sorted(dead.get("topics", {}).items()))
        lines.append(
            f"dead letters {dead['file']}: {dead.get('records', 0)} record(s)"
            + (f" ({topics})" if topics else "")
        )
        for reason in dead.get("reasons", []):
            lines.append(f"  {reason}")
    for name in report["foreign"]:
        lines.append(f"not a spool log (left alone): {name}")
    return lines


def _run_spool_drain(args: argparse.Namespace) -> int:
    from kafka_sink.producer.spool import inspect_spool  # noqa: PLC0415 - spool users only

    directory = _spool_directory(args.directory)
    timeout: float = args.timeout
    live = [log for log in inspect_spool(directory)["logs"] if log["state"] == "live"]
    timeout_ms = timeout * 1000.0
    options: dict[str, object] = {
        "client_id": "kafka-sink-spool-drain",
        "spool_dir": str(directory),
        "linger_ms": 5,
        "request_timeout_ms": timeout_ms,
        **_security_options(args),
    }
    config = SinkConfig.from_mapping(
        options, bootstrap_servers=_servers(args.bootstrap_servers), environ={}
    )
    started = time.monotonic()
    sink = Sink(config=config)
    try:
        left = sink.flush(timeout)
        metrics = sink.metrics()
    finally:
        sink.close(min(timeout, 10.0))
    print(
        f"adopted {metrics['spool_adopted_logs']} log(s): delivered "
        f"{metrics['spool_replayed_delivered']} of {metrics['spool_replayed_records']} records "
        f"in {time.monotonic() - started:.2f} s ({metrics['spool_replayed_batches']} sealed "
        f"batch(es) sent again)"
    )
    if metrics["spool_truncated_entries"]:
        print(
            f"cut off {metrics['spool_truncated_entries']} torn or corrupt tail(s) "
            f"({metrics['spool_truncated_bytes']} bytes)"
        )
    if metrics["spool_duplicate_risk_records"]:
        print(
            f"{metrics['spool_duplicate_risk_records']} records may have been delivered twice "
            "(the broker no longer knew the producer that sent them first)"
        )
    if metrics["spool_dead_letter_records"]:
        print(f"{metrics['spool_dead_letter_records']} records moved to the dead-letter file")
    for log in live:
        owner = log.get("owner") or {}
        print(f"left alone: {Path(log['path']).name} is held by pid {owner.get('pid', '?')}")
    if left:
        print(f"{left} records still undelivered; they stay in the spool")
        return EXIT_DELIVERY_FAILED
    return EXIT_OK


def _run_demo(args: argparse.Namespace) -> int:
    from kafka_sink.demo import run_demo  # noqa: PLC0415 - keeps the other commands light

    return run_demo(args.messages, args.bootstrap_servers, seconds=args.seconds)


# -- entry point ------------------------------------------------------------------------


def _describe(exc: KafkaSinkError) -> str:
    topic = exc.context.get("topic")
    if isinstance(exc, BrokerResponseError) and topic and str(topic) not in exc.message:
        return f"topic {topic!r}: {exc.message}"
    return exc.message


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kafka-sink`` with ``argv`` (default: the process's arguments); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"{parser.prog} {args.command}: error:"
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (``| head``): stop quietly, and
        # keep the interpreter's final flush from complaining about it.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except _CommandError as exc:
        print(f"{prefix} {exc.message}", file=sys.stderr)
        return exc.exit_code
    except InvalidArgumentError as exc:
        print(f"{prefix} {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except KafkaSinkError as exc:
        print(f"{prefix} {_describe(exc)}", file=sys.stderr)
        return EXIT_KAFKA_ERROR
    return code
