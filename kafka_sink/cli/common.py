"""What every ``kafka-sink`` command shares: exit codes, option types, connection options.

The exit codes and the help text that lists them, the argparse types of the
options (numbers, topics, broker lists), the ``--bootstrap-servers``,
``--timeout`` and security options of the commands that reach a cluster, and
:class:`CommandError`, a problem of the command line itself.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from typing import Any

from kafka_sink.config import SECURITY_PROTOCOLS, BrokerAddress, check_topic, parse_broker_list
from kafka_sink.errors import InvalidArgumentError

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

#: The end of every command's help.
EXIT_CODES_HELP = f"""\
exit codes:
  {EXIT_OK}    success
  {EXIT_DELIVERY_FAILED}    send: some records were not delivered (the summary says why)
  {EXIT_USAGE}    usage error: bad option or argument, unreadable file, unknown partition
  {EXIT_KAFKA_ERROR}    Kafka error: no broker reachable, unknown topic, a broker refused
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)

Errors are printed as one line on standard error."""

# -- option types (argparse reports their ArgumentTypeError as a usage error) -----------


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


def positive_float(text: str) -> float:
    """A number more than 0 (seconds)."""
    return _number(text, allow_zero=False)


def non_negative_float(text: str) -> float:
    """A number, 0 or more (milliseconds)."""
    return _number(text, allow_zero=True)


def non_negative_int(text: str) -> int:
    """An integer, 0 or more (a partition, a count of records)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def topic_name(text: str) -> str:
    """A legal topic name."""
    try:
        return check_topic(text)
    except InvalidArgumentError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


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


def security_options(args: argparse.Namespace) -> dict[str, Any]:
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


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """Add the security options, ``--bootstrap-servers`` and ``--timeout`` to a command."""
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
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="bound on connecting and on each request (send: on each record's delivery); "
        "default 10",
    )


# -- the commands' shared parts ---------------------------------------------------------


class CommandError(Exception):
    """A problem of the command line itself (an unreadable file), with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def server_list(addresses: Sequence[BrokerAddress]) -> list[str]:
    """``--bootstrap-servers`` as the ``host:port`` strings of ``broker_list``."""
    return [str(address) for address in addresses]
