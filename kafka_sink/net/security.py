"""TLS for broker connections: the client's SSL context and the TLS transport.

TLS comes from the standard library's :mod:`ssl`. :func:`create_ssl_context`
turns a :class:`~kafka_sink.config.SecurityConfig` into an
:class:`ssl.SSLContext` once per connection pool, with certificate
verification and host-name checking on unless the configuration turns them
off; :class:`TlsTransport` wraps the plain TCP transport for the blocking
:class:`~kafka_sink.net.broker.BrokerConnection` (the non-blocking
:class:`~kafka_sink.net.client.NetworkClient` drives the same context's
handshake itself); :func:`tls_failure` says what a failed handshake means, the
same way for both.

A handshake that TLS itself refused (the broker's certificate is not trusted
or not issued for the host name; the broker refused the client's certificate;
no protocol in common) cannot succeed on a retry and raises
:class:`~kafka_sink.errors.TlsAuthenticationError`. One that did not complete
(the peer closed or reset the connection, or time ran out) raises
:class:`~kafka_sink.errors.TlsError`, a retriable connection error; the usual
cause is a listener that does not speak TLS.
"""

from __future__ import annotations

import contextlib
import ssl
import warnings

from kafka_sink.config import BrokerAddress, SecurityConfig
from kafka_sink.errors import InvalidArgumentError, TlsAuthenticationError, TlsError
from kafka_sink.net.transport import SocketStream, Stream, TcpTransport, Transport, monotonic

__all__ = [
    "InsecureTlsWarning",
    "TlsTransport",
    "create_ssl_context",
    "tls_failure",
    "transport_for",
]


class InsecureTlsWarning(UserWarning):
    """TLS is configured without verification of the broker's certificate."""


def create_ssl_context(security: SecurityConfig) -> ssl.SSLContext | None:
    """The SSL context for ``security`` (None when it does not use TLS).

    A file that cannot be loaded raises
    :class:`~kafka_sink.errors.InvalidArgumentError` naming the option.
    """
    if not security.uses_tls:
        return None
    if security.ssl_context is not None:
        return security.ssl_context
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=security.ssl_cafile, capath=security.ssl_capath
        )
    except (ssl.SSLError, OSError) as exc:
        argument = "ssl_cafile" if security.ssl_cafile is not None else "ssl_capath"
        raise InvalidArgumentError(
            argument, f"cannot load CA certificates: {_reason(exc)}"
        ) from None
    if security.ssl_certfile is not None:
        _load_client_certificate(context, security)
    if security.ssl_insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        warnings.warn(
            "ssl_insecure_skip_verify=True: the broker's TLS certificate is not verified, so "
            "anyone on the network path can read and change the traffic",
            InsecureTlsWarning,
            stacklevel=4,
        )
    else:
        context.check_hostname = security.ssl_check_hostname
    return context


def _load_client_certificate(context: ssl.SSLContext, security: SecurityConfig) -> None:
    password = security.ssl_password

    def give_password() -> str:
        # Without a callback OpenSSL would prompt on the terminal and hang a
        # process that has none: an encrypted key without a password is an error.
        if password is None:
            raise InvalidArgumentError(
                "ssl_password", "is required: the client key in ssl_keyfile is encrypted"
            )
        return password

    try:
        context.load_cert_chain(security.ssl_certfile or "", security.ssl_keyfile, give_password)
    except (ssl.SSLError, OSError) as exc:
        hint = " (or a wrong ssl_password)" if password is not None else ""
        argument = "ssl_keyfile" if security.ssl_keyfile is not None else "ssl_certfile"
        raise InvalidArgumentError(
            argument, f"cannot load the client certificate and key: {_reason(exc)}{hint}"
        ) from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def tls_failure(exc: BaseException, broker: str) -> TlsError:
    """The error a failed TLS handshake with ``broker`` raises (see the module docstring)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or _reason(exc)
        return TlsAuthenticationError(
            f"the TLS certificate of broker {broker} failed verification: {detail} "
            "(check ssl_cafile/ssl_capath, and that the certificate names the host "
            "the client connects to)",
            broker=broker,
        )
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)) or not (
        isinstance(exc, ssl.SSLError)
    ):
        if isinstance(exc, TimeoutError):
            what = "timed out"
        elif isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            what = "the broker closed the connection"
        else:
            what = _reason(exc)
        return TlsError(
            f"TLS handshake with broker {broker} failed: {what} "
            "(does the listener speak TLS? check security_protocol)",
            broker=broker,
        )
    return TlsAuthenticationError(
        f"broker {broker} refused the TLS handshake: {_reason(exc)} (does it require a "
        "client certificate, ssl_certfile/ssl_keyfile, or a TLS version the client lacks?)",
        broker=broker,
    )


class TlsTransport:
    """TLS over :class:`~kafka_sink.net.transport.TcpTransport`, for blocking connections.

    The handshake completes within the connect timeout; its failures raise
    :class:`~kafka_sink.errors.TlsError` (or its subclass
    :class:`~kafka_sink.errors.TlsAuthenticationError`) instead of ``OSError``.
    """

    __slots__ = ("_context", "_tcp")

    def __init__(self, context: ssl.SSLContext, tcp: TcpTransport | None = None) -> None:
        self._context = context
        self._tcp = tcp or TcpTransport()

    def connect(self, host: str, port: int, timeout: float) -> Stream:
        deadline = monotonic() + timeout
        sock = self._tcp.open_socket(host, port, timeout)
        try:
            sock.settimeout(max(deadline - monotonic(), 0.0001))
            tls = self._context.wrap_socket(sock, server_hostname=host)
        except (OSError, ValueError) as exc:  # SSLCertVerificationError is both
            with contextlib.suppress(OSError):
                sock.close()
            raise tls_failure(exc, str(BrokerAddress(host, port))) from None
        return SocketStream(tls)


def transport_for(security: SecurityConfig, ip_version: int | None = None) -> Transport:
    """The transport that ``security`` asks for: plain TCP, or TLS over it."""
    tcp = TcpTransport(ip_version)
    context = create_ssl_context(security)
    return tcp if context is None else TlsTransport(context, tcp)
