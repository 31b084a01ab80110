"""Setting up broker connections without blocking: TCP, TLS, ApiVersions, SASL, re-authentication.

Theory of operation
-------------------
:class:`Connector` does the I/O of each step of a connection's set-up, for
the :class:`~kafka_sink.net.client.NetworkClient` that owns the connections.
Which step follows which is not decided here: each step reports an event to
the connection's state machine (:mod:`kafka_sink.net.state`) and does what
the state it gets back asks for.

- :meth:`Connector.start` resolves the broker's name (the first time, and
  again once every address of it has been tried) and starts a non-blocking
  connect to the next address.
- :meth:`Connector.advance` runs when the selector reports the socket of a
  connection in ``connecting`` or ``handshaking``: it completes the connect,
  then runs the TLS handshake one step at a time (``SSLWantRead`` and
  ``SSLWantWrite`` say which readiness event the next step waits for).
- Once TCP and TLS are up, the connection sends ApiVersions (with the
  KIP-511 fallback of :class:`~kafka_sink.net.broker.ApiVersionsNegotiation`)
  and then, on a SASL listener, runs the exchange of
  :class:`~kafka_sink.protocol.sasl.SaslAuthenticator`. Their answers come
  back through the client's reading of the connection, which hands each of
  them to :meth:`Connector.on_response`.
- The set-up, from TCP to SASL, is bounded by ``connect_timeout``
  (``NodeConnection.deadline``; the client enforces it).

Re-authentication (KIP-368). A broker with ``connections.max.reauth.ms``
says in SaslAuthenticate v1 how long the session lasts, and closes a
connection used after that. The connection is renewed at 85-95 % of it (at
least a second after the last authentication): the client pauses it, and
once every request in flight has its answer calls
:meth:`Connector.reauthenticate`, which runs the SASL exchange again in place
(a new SCRAM nonce, a new OAUTHBEARER token).

A step that fails raises :class:`SetupFailure`; the client closes the
connection and backs off. A refused authentication (SASL credentials, or a
TLS certificate) would be refused again: the failure carries the
:class:`~kafka_sink.errors.AuthenticationError`, and after
:meth:`Connector.refused` no connection to any node starts for the longest
back-off; :attr:`Connector.auth_error` reports it until a connection
authenticates.

The connector sends its own requests (ApiVersions, SASL) by queueing them on
the connection (``NodeConnection.queue``, with no callback); the client
writes whatever a connection has queued.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import socket
import ssl
from collections.abc import Callable
from typing import Any

from kafka_sink.config import SecurityConfig
from kafka_sink.errors import AuthenticationError, KafkaSinkError, ProtocolError
from kafka_sink.net.backoff import Backoff
from kafka_sink.net.broker import ApiVersionsNegotiation, describe_os_error, sasl_authenticator
from kafka_sink.net.connection import NodeConnection
from kafka_sink.net.poller import READ, WRITE, Poller
from kafka_sink.net.security import tls_failure
from kafka_sink.net.state import ConnectionEvent, ConnectionState
from kafka_sink.protocol.api_versions import ApiVersionsResponse
from kafka_sink.protocol.client import ClientProtocol
from kafka_sink.protocol.oauthbearer import reauthentication_delay
from kafka_sink.protocol.sasl import SaslAuthenticator
from kafka_sink.protocol.schema import Message

__all__ = ["Connector", "SetupFailure"]

_IN_PROGRESS = frozenset(
    {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EALREADY, 10035}  # WSAEWOULDBLOCK
)


class SetupFailure(Exception):
    """A step of a connection's set-up failed; the connection must be closed.

    ``reason`` says why; ``refused`` is the broker's refusal of the
    credentials or the certificate, when that is why.
    """

    def __init__(self, reason: str, refused: AuthenticationError | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refused = refused

    @classmethod
    def of(cls, error: KafkaSinkError) -> SetupFailure:
        """The failure a typed error of TLS or SASL makes."""
        refused = error if isinstance(error, AuthenticationError) else None
        return cls(error.message, refused)


class Connector:
    """The set-up steps of every connection of one client (see the module docstring)."""

    def __init__(
        self,
        *,
        client_id: str,
        security: SecurityConfig,
        ssl_context: ssl.SSLContext | None,
        poller: Poller,
        backoff: Backoff,
        connect_timeout: float,
        family: socket.AddressFamily,
        socket_factory: Callable[..., socket.socket],
        max_response_size: int,
        software_version: str,
        debug: Callable[[NodeConnection, str], None],
    ) -> None:
        self._client_id = client_id
        self._security = security
        self._ssl_context = ssl_context
        self._poller = poller
        self._backoff = backoff
        self.connect_timeout = connect_timeout
        self._family = family
        self._socket_factory = socket_factory
        self._max_response_size = max_response_size
        self._software_version = software_version
        self._debug = debug
        #: The last refused authentication, until a connection authenticates.
        self.auth_error: AuthenticationError | None = None
        #: No connection starts before this (after a refused authentication).
        self.auth_retry_at = 0.0

    def may_start(self, node: NodeConnection, now: float) -> bool:
        """Whether a connection to ``node``, which has none, may start now."""
        if now < node.retry_at or now < self.auth_retry_at:
            return False
        if self.auth_error is not None:
            # One node at a time tries the credentials that were refused.
            self.auth_retry_at = now + self._backoff.maximum
        return True

    def refused(self, node: NodeConnection, now: float, error: AuthenticationError) -> None:
        """Bookkeeping of a refused authentication, once its connection is closed."""
        node.failures += 1
        self.auth_error = error
        self._debug(node, f"authentication failed: {error.message}")
        node.retry_at = now + self._backoff.longest()
        self.auth_retry_at = node.retry_at

    # -- TCP and TLS ------------------------------------------------------------------

    def start(self, node: NodeConnection, now: float) -> None:
        """Start a non-blocking connect to the node's next address."""
        node.handle(ConnectionEvent.CONNECT)
        node.deadline = now + self.connect_timeout
        if not node.addresses:
            node.addresses = self._resolve(node)
        family, kind, proto, _, sockaddr = node.addresses.pop(0)
        self._debug(node, f"connecting to {sockaddr}")
        try:
            sock = self._socket_factory(family, kind, proto)
        except OSError as exc:
            raise SetupFailure(f"cannot open a socket: {describe_os_error(exc)}") from None
        try:
            sock.setblocking(False)
            if family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = sock.connect_ex(sockaddr)
        except OSError as exc:
            err = exc.errno or errno.EIO
        if err == 0:
            node.sock = sock
            self._poller.watch(node, sock, READ)
            self._connected(node, now)
        elif err in _IN_PROGRESS:
            node.sock = sock
            self._poller.watch(node, sock, WRITE)
        else:
            with contextlib.suppress(OSError):
                sock.close()
            raise SetupFailure(os.strerror(err))

    def _resolve(self, node: NodeConnection) -> list[tuple[Any, ...]]:
        address = node.address
        if not 0 < address.port < 65536:
            # Ports come from the brokers' metadata; getaddrinfo would take
            # 70000 for 4464 and connect to the wrong port.
            raise SetupFailure(f"port {address.port} is not a TCP port (1-65535)")
        try:
            infos = socket.getaddrinfo(address.host, address.port, self._family, socket.SOCK_STREAM)
        except (OSError, ValueError, LookupError) as exc:  # ValueError: a bad name
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise SetupFailure(f"cannot resolve {address.host!r}: {reason}") from None
        if not infos:
            raise SetupFailure(f"{address.host!r} resolves to no address")
        return [*infos]

    def advance(self, node: NodeConnection, now: float) -> None:
        """The socket of a connection in ``connecting`` or ``handshaking`` is ready."""
        if node.state is ConnectionState.CONNECTING:
            self._finish_connect(node, now)
        else:
            self._handshake(node, now)

    def _finish_connect(self, node: NodeConnection, now: float) -> None:
        sock = node.sock
        assert sock is not None
        try:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        except OSError as exc:
            err = exc.errno or errno.EIO
        if err in _IN_PROGRESS:  # a spurious readiness report
            return
        if err:
            raise SetupFailure(os.strerror(err))
        self._connected(node, now)

    def _connected(self, node: NodeConnection, now: float) -> None:
        """TCP is up: start TLS, or negotiate versions."""
        node.addresses = []  # the next connection resolves the name again
        if node.handle(ConnectionEvent.TCP_UP) is ConnectionState.HANDSHAKING:
            self._start_tls(node, now)
            return
        self._start_negotiation(node, now)

    def _start_tls(self, node: NodeConnection, now: float) -> None:
        sock = node.sock
        assert sock is not None
        assert self._ssl_context is not None
        # The TLS socket takes over the descriptor: register it in the raw one's place.
        self._poller.forget(sock)
        try:
            tls = self._ssl_context.wrap_socket(
                sock, server_hostname=node.address.host, do_handshake_on_connect=False
            )
        except (OSError, ValueError) as exc:
            # Not a refusal by the broker: no certificate was exchanged yet.
            raise SetupFailure(tls_failure(exc, node.broker).message) from None
        node.sock = tls
        self._poller.watch(node, tls, READ | WRITE)
        self._debug(node, "connected, TLS handshake")
        self._handshake(node, now)

    def _handshake(self, node: NodeConnection, now: float) -> None:
        """One step of the TLS handshake, as far as the socket allows without blocking."""
        sock = node.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._poller.want(node, READ)
            return
        except ssl.SSLWantWriteError:
            self._poller.want(node, WRITE)
            return
        except (OSError, ValueError) as exc:  # SSLCertVerificationError is both
            raise SetupFailure.of(tls_failure(exc, node.broker)) from None
        self._poller.want(node, READ)
        self._debug(node, f"TLS up ({sock.version()}), negotiating versions")
        node.handle(ConnectionEvent.TLS_UP)
        self._start_negotiation(node, now)

    # -- ApiVersions and SASL ---------------------------------------------------------

    def _start_negotiation(self, node: NodeConnection, now: float) -> None:
        node.protocol = ClientProtocol(self._client_id, max_response_size=self._max_response_size)
        node.negotiation = ApiVersionsNegotiation(node.broker, self._software_version)
        self._debug(node, "connected, negotiating versions")
        self._send_api_versions(node, now)

    def _send_api_versions(self, node: NodeConnection, now: float) -> None:
        assert node.negotiation is not None
        request, version = node.negotiation.request()
        node.queue(request, version, None, now)

    def on_response(self, node: NodeConnection, now: float, body: Message) -> None:
        """The answer to one of the connection's own requests (ApiVersions or SASL)."""
        if node.state is ConnectionState.AUTHENTICATING:
            self._authenticating(node, body, now)
        else:
            self._negotiated(node, body, now)

    def _negotiated(self, node: NodeConnection, body: Message, now: float) -> None:
        assert node.negotiation is not None
        if not isinstance(body, ApiVersionsResponse):  # the decoder of ApiVersions made it
            raise SetupFailure(f"expected an ApiVersions response, got {type(body).__name__}")
        try:
            ranges = node.negotiation.handle(body)
        except ProtocolError as exc:
            raise SetupFailure(exc.message) from None
        if ranges is None:  # KIP-511: ask again at the version the broker offers
            self._send_api_versions(node, now)
            return
        node.api_versions = ranges
        node.versions = {}
        node.negotiation = None
        if node.handle(ConnectionEvent.VERSIONS_AGREED) is ConnectionState.READY:
            self._ready(node, now)
            return
        node.auth = self._authenticator(node, ranges)
        self._debug(node, f"authenticating with SASL {node.auth.mechanism}")
        self._send_auth(node, now)

    def _authenticator(
        self, node: NodeConnection, ranges: dict[int, tuple[int, int]]
    ) -> SaslAuthenticator:
        try:
            return sasl_authenticator(self._security, node.broker, ranges)
        except KafkaSinkError as exc:
            # An OAUTHBEARER token provider that failed (an AuthenticationError),
            # or a broker older than Kafka 1.0.
            raise SetupFailure.of(exc) from None

    def _send_auth(self, node: NodeConnection, now: float) -> None:
        assert node.auth is not None
        request, version = node.auth.request()
        node.queue(request, version, None, now)

    def _authenticating(self, node: NodeConnection, body: Message, now: float) -> None:
        assert node.auth is not None
        try:
            done = node.auth.handle(body)
        except AuthenticationError as exc:
            raise SetupFailure.of(exc) from None
        if not done:
            self._send_auth(node, now)
            return
        lifetime = node.auth.session_lifetime_ms
        node.auth = None
        again = node.reauthenticating
        node.handle(ConnectionEvent.AUTHENTICATED)
        self._ready(node, now, lifetime, again=again)

    def reauthenticate(self, node: NodeConnection, now: float) -> None:
        """KIP-368: run the SASL exchange again on a paused connection with nothing in flight."""
        node.auth = self._authenticator(node, node.api_versions)
        node.handle(ConnectionEvent.SESSION_ENDING)
        node.deadline = now + self.connect_timeout
        self._debug(node, f"re-authenticating with SASL {node.auth.mechanism}")
        self._send_auth(node, now)

    def _ready(
        self, node: NodeConnection, now: float, session_lifetime_ms: int = 0, *, again: bool = False
    ) -> None:
        """Bookkeeping of a connection that has just become READY (``again``: re-authenticated)."""
        node.fresh = not again
        node.failures = 0
        node.last_error = None
        node.paused = False
        # KIP-368: the broker closes a connection used after its session ends;
        # authenticate again before then (bounded below: see reauthentication_delay).
        delay = reauthentication_delay(session_lifetime_ms)
        node.reauth_at = math.inf if delay is None else now + delay
        self.auth_error = None
        self.auth_retry_at = 0.0
        what = "re-authenticated" if again else "ready"
        if delay is None:
            self._debug(node, what)
        else:
            self._debug(node, f"{what}; the SASL session is renewed in {delay:.1f}s")
