"""The non-blocking, multiplexed I/O engine that the sender thread drives.

Theory of operation (Kafka protocol guide, "Network", "Requests and
responses"). :class:`NetworkClient` keeps at most one TCP connection per
broker node and pipelines requests on it: a broker answers the requests of one
connection in the order it received them, so several may be in flight at once
and each response is matched to the oldest unanswered request by its
correlation id (:class:`~kafka_sink.protocol.client.ClientProtocol` does the
framing and the matching; this module only moves bytes). Each node is a
:class:`~kafka_sink.net.connection.NodeConnection`, which holds that
connection's byte streams and requests; :mod:`kafka_sink.net.backoff` says
how long a failed one waits.

Each node's connection goes through the states of
:mod:`kafka_sink.net.state`: connecting, [handshaking] (TLS only),
negotiating, [authenticating] (SASL only), ready; a failure leads to a
back-off, and the next :meth:`NetworkClient.ready` after it connects again.
``ready()`` starts a connection; the steps of its set-up (TCP, TLS,
ApiVersions, SASL, and KIP-368's re-authentication) are those of
:class:`~kafka_sink.net.setup.Connector`, which this client calls when the
selector reports the connection's socket or the connection answers one of
its own requests. Setting up a connection is bounded by ``connect_timeout``;
a failed one is retried after an exponential back-off with jitter
(:mod:`kafka_sink.net.backoff`), reset once a connection becomes ready. A
refused authentication makes every node wait the longest back-off, and
:meth:`NetworkClient.authentication_error` reports it until a connection
authenticates. A connection whose SASL session is ending is paused:
:meth:`NetworkClient.ready` says False for it and nothing new is sent, until
its requests in flight are answered and it has authenticated again.

Everything runs on the caller's thread (the sender), except :meth:`wakeup`.
``send()`` only frames the request and queues its bytes; ``poll()`` writes
what is queued (several frames per ``sendmsg`` call, from the buffers the
frames were encoded into, never copied), waits in a selector for readiness,
reads, decodes, and runs the callbacks once all I/O of the turn is done, so a
callback may call ``send()``, ``set_nodes()`` or ``close()`` safely.

When anything goes wrong on a connection (a request older than
``request_timeout``, a reset, an end of stream, a malformed frame) the
position in the byte stream is no longer known, so the connection is closed
and every request in flight on it fails: with
:class:`~kafka_sink.errors.RequestTimeoutError` if it timed out, with the
:class:`~kafka_sink.errors.ProtocolError` if its answer was malformed, and
otherwise with :class:`~kafka_sink.errors.ReceiveError` if it had been
written completely (the broker may have acted on it) or
:class:`~kafka_sink.errors.SendError` if it had not (it is safe to send again).
"""

from __future__ import annotations

import contextlib
import encodings.idna  # noqa: F401 - see below
import functools
import logging
import math
import random
import selectors
import socket
import ssl
from collections.abc import Callable, Mapping
from typing import Any

from kafka_sink.config import (
    BrokerAddress,
    SecurityConfig,
    check_client_id,
    check_int,
    check_positive_number,
)
from kafka_sink.errors import (
    AuthenticationError,
    ConnectError,
    InvalidArgumentError,
    KafkaSinkError,
    NetworkError,
    ProtocolError,
    ReceiveError,
    RequestTimeoutError,
    SendError,
    UnsupportedVersionError,
)
from kafka_sink.net.backoff import Backoff
from kafka_sink.net.broker import describe_os_error
from kafka_sink.net.connection import NodeConnection as _Node
from kafka_sink.net.poller import READ as _READ
from kafka_sink.net.poller import WRITE as _WRITE
from kafka_sink.net.poller import Poller
from kafka_sink.net.response import Callback, ClientResponse
from kafka_sink.net.security import create_ssl_context, tls_failure
from kafka_sink.net.setup import Connector, SetupFailure
from kafka_sink.net.state import ConnectionEvent, ConnectionState
from kafka_sink.net.transport import Clock, monotonic
from kafka_sink.protocol.apis import choose_version
from kafka_sink.protocol.client import DEFAULT_MAX_RESPONSE_SIZE, ClientProtocol
from kafka_sink.protocol.schema import AnswerT, Message, Request

__all__ = [
    "AUTHENTICATING",
    "BACKOFF",
    "CONNECTING",
    "DISCONNECTED",
    "HANDSHAKING",
    "NEGOTIATING",
    "READY",
    "ClientResponse",
    "NetworkClient",
]

# Connection states, as connection_states() reports them (net/state has the table).
CONNECTING = ConnectionState.CONNECTING
HANDSHAKING = ConnectionState.HANDSHAKING
NEGOTIATING = ConnectionState.NEGOTIATING
AUTHENTICATING = ConnectionState.AUTHENTICATING
READY = ConnectionState.READY
DISCONNECTED = ConnectionState.DISCONNECTED
BACKOFF = ConnectionState.BACKOFF

# socket.getaddrinfo() encodes host names with the "idna" codec, which Python
# imports on first use. Imported here, with this module, so that it is never
# first imported by the sender thread while another thread forks: a child
# forked during that import could not load the codec, and no name would resolve.

# Only connection state changes are logged, at DEBUG: the library may itself be
# the handler of these records, so nothing is logged per request.
_log = logging.getLogger("kafka_sink.net")

_RECV_BUFFER = 256 * 1024
# recv() calls per connection and poll, so that one busy broker cannot starve others.
_MAX_READS = 16
_TLS_RETRY = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError)
# States whose connection takes no frames yet (TCP or TLS is still being set up).
_NOT_WRITABLE = (CONNECTING, HANDSHAKING)
# The longest single wait in the selector (an infinite timeout is not accepted).
_MAX_WAIT = 3600.0
_FAMILIES: dict[int | None, socket.AddressFamily] = {
    None: socket.AF_UNSPEC,
    4: socket.AF_INET,
    6: socket.AF_INET6,
}


class NetworkClient:
    """Non-blocking connections to the brokers of one cluster, driven by :meth:`poll`.

    Example (the producer's sender thread runs a loop like this)::

        client = NetworkClient(client_id="app")
        client.set_nodes({-1: BrokerAddress("localhost", 9092)})
        while not client.ready(-1):
            client.poll(0.1)
        client.send(-1, MetadataRequest.for_topics(["logs"]), on_metadata)
        client.poll(1.0)  # on_metadata(ClientResponse(...)) runs in here

    Every method but :meth:`wakeup` must be called from one thread. ``send()``
    never raises: a request that cannot be sent (the node is not ready, no
    common API version) fails through its callback, at the next :meth:`poll`.

    ``security`` (a :class:`~kafka_sink.config.SecurityConfig`) adds TLS and
    SASL to every connection; its SSL context is built here, so a file that
    cannot be loaded raises :class:`~kafka_sink.errors.InvalidArgumentError`.
    """

    def __init__(
        self,
        *,
        client_id: str,
        clock: Clock = monotonic,
        request_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        reconnect_backoff: float = 0.05,
        reconnect_backoff_max: float = 1.0,
        max_in_flight: int = 5,
        ip_version: int | None = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        socket_factory: Callable[..., socket.socket] | None = None,
        selector_factory: Callable[[], selectors.BaseSelector] = selectors.DefaultSelector,
        software_version: str = "0",
        security: SecurityConfig | None = None,
    ) -> None:
        self._client_id = check_client_id(client_id)
        self._clock = clock
        self._request_timeout = check_positive_number(request_timeout, "request_timeout")
        self._connect_timeout = check_positive_number(connect_timeout, "connect_timeout")
        backoff = check_positive_number(reconnect_backoff, "reconnect_backoff", allow_zero=True)
        self._backoff_max = check_positive_number(
            reconnect_backoff_max, "reconnect_backoff_max", allow_zero=True
        )
        if self._backoff_max < backoff:
            raise InvalidArgumentError(
                "reconnect_backoff_max",
                f"must be >= reconnect_backoff ({reconnect_backoff}), got {reconnect_backoff_max}",
            )
        self._backoff = Backoff(backoff, self._backoff_max)
        self._max_in_flight = check_int(max_in_flight, "max_in_flight", 1)
        if ip_version not in _FAMILIES:
            raise InvalidArgumentError("ip_version", f"must be None, 4 or 6, got {ip_version!r}")
        max_response_size = check_int(max_response_size, "max_response_size", 8, 2**31 - 1)
        if security is not None and not isinstance(security, SecurityConfig):
            raise InvalidArgumentError(
                "security", f"must be a SecurityConfig, got {type(security).__name__}"
            )
        self._security = security or SecurityConfig()
        ssl_context = create_ssl_context(self._security)
        self._tls = ssl_context is not None
        self._sasl = self._security.uses_sasl
        self._poller = Poller(selector_factory)
        self._connector = Connector(
            client_id=self._client_id,
            security=self._security,
            ssl_context=ssl_context,
            poller=self._poller,
            backoff=self._backoff,
            connect_timeout=self._connect_timeout,
            family=_FAMILIES[ip_version],
            socket_factory=socket_factory or socket.socket,
            max_response_size=max_response_size,
            software_version=software_version,
            debug=self._debug,
        )
        # TLS connections whose decrypted input waits in OpenSSL's buffer,
        # where the selector cannot see it: read at the next poll.
        self._tls_backlog: set[_Node] = set()
        # Connections waiting for their requests in flight before re-authenticating.
        self._paused: set[_Node] = set()
        self._nodes: dict[int, _Node] = {}
        self._dirty: set[_Node] = set()  # nodes with output not yet tried
        self._completed: list[tuple[Callback, ClientResponse[Any]]] = []
        self._dispatching = False
        self._closed = False
        self._silent = False
        # No request or connection setup times out before this (it may be
        # early, never late): poll() skips the scan of every node until then.
        self._next_deadline = math.inf
        self._recv_view = memoryview(bytearray(_RECV_BUFFER))
        #: Exceptions raised by callbacks (caught, counted, otherwise ignored).
        self.callback_errors = 0

    def __repr__(self) -> str:
        states = ", ".join(f"{n}={s}" for n, s in self.connection_states().items())
        return f"<NetworkClient {self._client_id!r} {states or 'no nodes'}>"

    # -- nodes ------------------------------------------------------------------------

    def set_nodes(self, nodes: Mapping[int, BrokerAddress]) -> None:
        """Make ``nodes`` (node id -> address) the brokers known to the client.

        Connections to nodes that are no longer listed, or whose address
        changed, are closed and their requests in flight fail (at the next
        :meth:`poll`). Bootstrap addresses take negative node ids.
        """
        if self._closed:
            return
        now = self._clock()
        for node_id, node in list(self._nodes.items()):
            address = nodes.get(node_id)
            if address == node.address:
                continue
            reason = "left the cluster" if address is None else f"moved to {address}"
            self._drop(node, now, reason, event=ConnectionEvent.CLOSE)
            del self._nodes[node_id]
            self._debug(node, f"forgotten: {reason}")
        for node_id, address in nodes.items():
            if node_id not in self._nodes:
                self._nodes[node_id] = self._new_node(node_id, address)

    def _new_node(self, node_id: int, address: BrokerAddress) -> _Node:
        return _Node(node_id, address, tls=self._tls, sasl=self._sasl)

    def ready(self, node_id: int) -> bool:
        """Whether a request can be sent to ``node_id`` now.

        True when the connection is up, its versions are negotiated and fewer
        than ``max_in_flight`` requests are in flight on it. Otherwise starts
        a non-blocking connect, unless one is under way or the node is backing
        off after a failure, and returns False. Never blocks (except for a
        name resolution when a connection starts).
        """
        node = self._nodes.get(node_id)
        if node is None:
            return False
        if node.state is READY:
            return not node.paused and node.pending() < self._max_in_flight
        if not node.has_socket and not self._closed:
            now = self._clock()
            if self._connector.may_start(node, now):
                self._connect(node, now)
        return False

    def can_send_more(self, node_id: int) -> bool:
        """Like :meth:`ready`, without starting a connection."""
        node = self._nodes.get(node_id)
        return (
            node is not None
            and node.state is READY
            and not node.paused
            and len(node.awaiting) + len(node.unanswered) < self._max_in_flight
        )

    def in_flight(self, node_id: int | None = None) -> int:
        """Requests sent and not yet completed, to ``node_id`` or to every node."""
        if node_id is not None:
            node = self._nodes.get(node_id)
            return node.pending() if node is not None and node.state is READY else 0
        return sum(n.pending() for n in self._nodes.values() if n.state is READY)

    def api_versions(self, node_id: int) -> dict[int, tuple[int, int]]:
        """The version ranges the node supports by API key (empty until it is ready)."""
        node = self._nodes.get(node_id)
        return dict(node.api_versions) if node is not None else {}

    def version_for(self, node_id: int, api_key: int) -> int:
        """The version of ``api_key`` to use with ``node_id`` (which must be ready).

        Raises :class:`~kafka_sink.errors.UnsupportedVersionError` when the
        node and the library share no version of the API, and
        :class:`~kafka_sink.errors.ConnectError` when the node is not ready.
        """
        node = self._nodes.get(node_id)
        if node is None or node.state is not READY:
            raise self._not_ready(node_id, node)
        version = node.versions.get(api_key)
        if version is None:
            version = self._choose_version(node, api_key)
        return version

    def connection_delay(self, node_id: int) -> float:
        """Seconds until :meth:`ready` may start a connection to ``node_id`` (0: now)."""
        node = self._nodes.get(node_id)
        if node is None or node.sock is not None:
            return 0.0
        now = self._clock()
        return max(0.0, node.retry_at - now, self._connector.auth_retry_at - now)

    def connection_error(self, node_id: int) -> str | None:
        """Why the last connection to ``node_id`` failed or closed (None: it did not)."""
        node = self._nodes.get(node_id)
        return node.last_error if node is not None else None

    def authentication_error(self) -> AuthenticationError | None:
        """The last refused authentication, or None once a connection has authenticated since.

        SASL credentials or a TLS certificate that a broker refused: trying
        again with the same settings fails the same way, so the caller may
        give up on what it was going to send (the sender fails the records).
        """
        return self._connector.auth_error

    def least_loaded_node(self) -> int | None:
        """A node to send a request that any broker can answer (Metadata), or None.

        A ready node with the fewest requests in flight; else one whose
        connection is being set up; else one that may be connected to now.
        Ties are broken at random, to spread such requests.
        """
        nodes = list(self._nodes.values())
        if not nodes:
            return None
        now = self._clock()
        best: _Node | None = None
        best_load = self._max_in_flight
        setting_up: _Node | None = None
        connectable: _Node | None = None
        start = random.randrange(len(nodes))
        for i in range(len(nodes)):
            node = nodes[(start + i) % len(nodes)]
            if node.state is READY and not node.paused:
                load = node.pending()
                if load < best_load:
                    best, best_load = node, load
                    if load == 0:
                        break
            elif node.sock is not None:
                setting_up = setting_up or node
            elif now >= node.retry_at:
                connectable = connectable or node
        chosen = best or setting_up or connectable
        return chosen.node_id if chosen is not None else None

    def connection_states(self) -> dict[int, str]:
        """Each node's connection state: connecting, handshaking, negotiating,
        authenticating, ready, disconnected or backoff."""
        now = self._clock()
        return {node_id: self._state(node, now) for node_id, node in self._nodes.items()}

    @staticmethod
    def _state(node: _Node, now: float) -> str:
        if node.has_socket:
            return node.state.value
        # The machine reads no clock: a back-off whose time is over reads as disconnected.
        return BACKOFF.value if now < node.retry_at else DISCONNECTED.value

    # -- requests ---------------------------------------------------------------------

    def send(
        self,
        node_id: int,
        request: Request[AnswerT],
        callback: Callable[[ClientResponse[AnswerT]], None],
        *,
        version: int | None = None,
    ) -> None:
        """Queue ``request`` for ``node_id``; ``callback`` receives its outcome from :meth:`poll`.

        Call only when :meth:`ready` says so. ``version`` defaults to the
        highest version both sides speak. The request's bytes are written by
        the next :meth:`poll`; a request that gets no answer (Produce with
        ``acks=0``) completes when they all are.
        """
        node = self._nodes.get(node_id)
        if node is None or node.state is not READY:
            self._refuse(node_id, request, version, callback, self._not_ready(node_id, node))
            return
        pending = len(node.awaiting) + len(node.unanswered)
        if pending >= self._max_in_flight:
            self._refuse(
                node_id,
                request,
                version,
                callback,
                SendError(
                    f"node {node_id} ({node.broker}) already has {pending} requests in flight "
                    f"(max_in_flight={self._max_in_flight})",
                    broker=node.broker,
                    node_id=node_id,
                ),
            )
            return
        try:
            if version is None:
                version = node.versions.get(request.API_KEY)
                if version is None:
                    version = self._choose_version(node, request.API_KEY)
            self._enqueue(node, request, version, callback, self._clock())
        except KafkaSinkError as exc:
            self._refuse(node_id, request, version, callback, exc)
        except Exception as exc:  # an encoder rejecting a field value: the request is bad
            self._refuse(
                node_id,
                request,
                version,
                callback,
                InvalidArgumentError(
                    "request", f"{type(request).__name__} cannot be encoded: {exc!r}"
                ),
            )

    def poll(self, timeout: float) -> None:
        """Do the I/O that is possible, waiting at most ``timeout`` seconds for some.

        Writes queued requests, completes connections and their negotiation,
        reads and decodes responses, fails requests and connections that timed
        out, then runs the callbacks of everything that completed, on this
        thread. Returns early when :meth:`wakeup` is called. Callbacks that
        raise are counted in ``callback_errors``; nothing raises out of here.
        """
        if self._closed:
            self._dispatch()
            return
        now = self._clock()
        self._flush(now)
        if now >= self._next_deadline:
            self._next_deadline = self._expire(now)
        if self._completed or self._tls_backlog:
            wait = 0.0
        else:
            wait = min(timeout, self._next_deadline - now, _MAX_WAIT)
            wait = wait if wait > 0.0 else 0.0
        events = self._poller.select(wait)
        now = self._clock()
        for key, mask in events:
            node: _Node | None = key.data
            if node is None:
                self._poller.drain()
            elif key.fileobj is node.sock:  # else the connection was replaced this turn
                state = node.state
                if state is CONNECTING or state is HANDSHAKING:
                    self._set_up(self._connector.advance, node, now)
                    continue
                if mask & _READ:
                    self._read(node, now)
                if mask & _WRITE and node.sock is key.fileobj:
                    self._write(node, now)
        if self._tls_backlog:
            backlog, self._tls_backlog = self._tls_backlog, set()
            for node in backlog:
                if node.sock is not None and node.protocol is not None:
                    self._read(node, now)
        self._flush(now)
        if now >= self._next_deadline:
            self._next_deadline = self._expire(now)
        if self._paused:
            self._start_reauthentications(now)
        self._dispatch()

    def wakeup(self) -> None:
        """Make a :meth:`poll` under way (or the next one) return promptly.

        Safe from any thread and cheap: calls are coalesced until the poll
        sees the first one, and it never blocks.
        """
        self._poller.wake()

    def close(self) -> None:
        """Close every connection; requests in flight fail with a NetworkError. Idempotent."""
        if self._closed:
            return
        self._closed = True
        now = self._clock()
        for node in self._nodes.values():
            self._drop(node, now, "the client was closed", event=ConnectionEvent.CLOSE)
        self._nodes.clear()
        self._dirty.clear()
        self._poller.close()
        self._dispatch()

    @property
    def closed(self) -> bool:
        return self._closed

    def reset_after_fork(self) -> None:
        """Forget every connection in a child process, without disturbing the parent's.

        The child shares the parent's sockets and the kernel state of its
        selector: nothing is written to them and nothing is unregistered (that
        would change the parent's interest list); the child's copies of the
        descriptors are closed. Requests in flight are dropped without their
        callbacks, which belong to the parent. Known nodes are kept, so the
        child connects afresh when it needs to.
        """
        if self._closed:  # nothing of the parent's is open any more
            return
        self._poller.reset_after_fork()
        for node_id, node in self._nodes.items():
            if node.sock is not None:
                with contextlib.suppress(OSError):
                    node.sock.close()  # the child's descriptor only; no shutdown()
            self._nodes[node_id] = self._new_node(node_id, node.address)
        self._dirty = set()
        self._tls_backlog = set()
        self._paused = set()
        self._completed = []
        self._dispatching = False
        self._next_deadline = math.inf
        self.callback_errors = 0

    # -- connecting -------------------------------------------------------------------

    def _connect(self, node: _Node, now: float) -> None:
        """Start a connection to the node's next address (see :class:`Connector`)."""
        self._set_up(self._connector.start, node, now)

    def _set_up(self, step: Callable[[_Node, float], None], node: _Node, now: float) -> bool:
        """Run one step of the node's set-up; False when it ended the connection."""
        try:
            step(node, now)
        except SetupFailure as failure:
            self._setup_failed(node, now, failure)
            return False
        if node.out:  # the step queued ApiVersions or SASL
            self._dirty.add(node)
        deadline = node.reauth_at if node.state is READY else node.deadline
        self._next_deadline = min(self._next_deadline, deadline)
        return True

    def _setup_failed(self, node: _Node, now: float, failure: SetupFailure) -> None:
        if failure.refused is None:
            self._fail(node, now, failure.reason)
            return
        # Refused credentials or certificate: retrying soon would only be
        # refused again, so every node waits the longest back-off.
        self._drop(node, now, failure.reason)
        node.last_error = failure.reason
        self._connector.refused(node, now, failure.refused)

    def _start_reauthentications(self, now: float) -> None:
        """KIP-368: authenticate again the paused connections that have nothing in flight.

        The broker takes no other request between the SaslHandshake and the
        end of the exchange, so the connection waits for the answers to what
        it sent before, and sends nothing else until it is ready again.
        """
        started = False
        for node in list(self._paused):
            if node.state is not READY or node.sock is None:
                self._paused.discard(node)
                continue
            if node.awaiting or node.unanswered or node.out:
                continue
            self._paused.discard(node)
            started |= self._set_up(self._connector.reauthenticate, node, now)
        if started:
            self._flush(now)

    def _choose_version(self, node: _Node, api_key: int) -> int:
        try:
            version = choose_version(api_key, node.api_versions)
        except UnsupportedVersionError as exc:
            raise UnsupportedVersionError(
                f"{exc.message} (node {node.node_id}, {node.broker})",
                broker=node.broker,
                node_id=node.node_id,
            ) from None
        node.versions[api_key] = version
        return version

    # -- the byte streams -------------------------------------------------------------

    def _enqueue(
        self,
        node: _Node,
        request: Message,
        version: int,
        callback: Callback | None,
        now: float,
    ) -> None:
        node.queue(request, version, callback, now)
        self._dirty.add(node)
        deadline = now + self._request_timeout
        self._next_deadline = min(self._next_deadline, deadline)

    def _flush(self, now: float) -> None:
        dirty = self._dirty
        while dirty:
            node = dirty.pop()
            if node.sock is not None and node.state not in _NOT_WRITABLE:
                self._write(node, now)

    def _write(self, node: _Node, now: float) -> None:
        """Write as much queued output as the socket takes, without blocking."""
        sock = node.sock
        assert sock is not None
        out = node.out
        failure = node.write_tls(sock) if self._tls else node.write_plain(sock)
        if failure is not None:
            self._fail(node, now, failure)
            return
        unanswered = node.unanswered
        while unanswered and unanswered[0].end <= node.written:
            entry = unanswered.popleft()
            if entry.callback is not None:
                self._completed.append(
                    (
                        entry.callback,
                        ClientResponse(
                            node.node_id,
                            entry.request,
                            entry.version,
                            None,
                            None,
                            now - entry.sent_at,
                        ),
                    )
                )
        want = _READ | _WRITE if out else _READ
        if want != node.mask:  # checked here too: most writes leave the mask as it is
            self._poller.want(node, want)

    def _read(self, node: _Node, now: float) -> None:
        """Read what has arrived and complete the requests it answers."""
        sock = node.sock
        protocol = node.protocol
        assert sock is not None
        assert protocol is not None
        view = self._recv_view
        tls = self._tls
        for _ in range(_MAX_READS):
            try:
                count = sock.recv_into(view)
            except _TLS_RETRY:
                return
            except OSError as exc:
                if tls and node.state is not READY and isinstance(exc, ssl.SSLError):
                    # TLS 1.3 reports a refused client certificate after the handshake.
                    self._setup_failed(node, now, SetupFailure.of(tls_failure(exc, node.broker)))
                    return
                self._fail(node, now, f"cannot receive: {describe_os_error(exc)}{self._hint(node)}")
                return
            if count == 0:
                self._fail(node, now, f"connection closed by the broker{self._hint(node)}")
                return
            protocol.receive_data(view[:count])
            if not self._take_responses(node, protocol, now):
                return
            # A TLS read returns one record at most: only "want read" says it is drained.
            if count < len(view) and not tls:
                return
        if tls and isinstance(sock, ssl.SSLSocket) and sock.pending():
            self._tls_backlog.add(node)

    def _hint(self, node: _Node) -> str:
        """Why a new connection may end: the wrong security_protocol for the listener."""
        expected = (
            f"is security_protocol {self._security.security_protocol!r} what this listener expects?"
        )
        if node.reauthenticating:
            return " while re-authenticating"
        if node.state is not READY:
            return f" while {node.state.value} ({expected})"
        if node.fresh and not self._sasl:
            # A SASL listener answers ApiVersions, then drops a client that does
            # not authenticate at its first other request.
            return f" before answering any request ({expected})"
        return ""

    def _take_responses(self, node: _Node, protocol: ClientProtocol, now: float) -> bool:
        """Complete the requests answered by whole frames; False when the connection ended."""
        awaiting = node.awaiting
        completed = self._completed
        while True:
            try:
                response = protocol.next_response()
            except ProtocolError as exc:
                exc.context.setdefault("broker", node.broker)
                self._fail(node, now, f"bad response: {exc.message}", error=exc)
                return False
            if response is None:
                return True
            entry = awaiting.popleft()
            if entry.callback is None:  # the connection's own ApiVersions or SASL
                step = functools.partial(self._connector.on_response, body=response.body)
                if not self._set_up(step, node, now):
                    return False
                continue
            node.fresh = False
            completed.append(
                (
                    entry.callback,
                    ClientResponse(
                        node.node_id,
                        entry.request,
                        entry.version,
                        response.body,
                        None,
                        now - entry.sent_at,
                    ),
                )
            )

    # -- failures and time ------------------------------------------------------------

    def _expire(self, now: float) -> float:
        """Fail what has timed out; return the next deadline (inf: none)."""
        next_deadline = math.inf
        timeout = self._request_timeout
        for node in self._nodes.values():
            if node.sock is None:
                continue
            if node.state is not READY:
                if now >= node.deadline:
                    what = "re-authentication" if node.reauthenticating else "connection"
                    self._fail(
                        node,
                        now,
                        f"no {what} within {self._connect_timeout:g}s{self._hint(node)}",
                    )
                    if node.sock is None:
                        continue
                next_deadline = min(next_deadline, node.deadline)
                continue
            if not node.paused:
                if node.reauth_at <= now:
                    node.paused = True
                    self._paused.add(node)
                    self._debug(node, "the SASL session is ending: pausing to re-authenticate")
                else:
                    next_deadline = min(next_deadline, node.reauth_at)
            oldest = math.inf
            if node.awaiting:
                oldest = node.awaiting[0].sent_at
            if node.unanswered:
                oldest = min(oldest, node.unanswered[0].sent_at)
            if oldest + timeout <= now:
                self._fail(node, now, f"a request got no response within {timeout:g}s")
            elif oldest < math.inf:
                next_deadline = min(next_deadline, oldest + timeout)
        return next_deadline

    def _fail(
        self, node: _Node, now: float, reason: str, *, error: KafkaSinkError | None = None
    ) -> None:
        """Close the node's connection after a failure and schedule the next attempt.

        ``error`` goes to the request whose answer caused the failure.
        """
        setting_up = node.state is not READY
        self._drop(node, now, reason, error=error)
        node.last_error = reason
        if setting_up:
            self._debug(node, f"connection failed: {reason}")
            if node.addresses:  # another address of the same name may work
                self._connect(node, now)
                return
        else:
            self._debug(node, f"disconnected: {reason}")
        self._back_off(node, now)

    def _back_off(self, node: _Node, now: float) -> None:
        node.failures += 1
        node.retry_at = now + self._backoff.delay(node.failures)

    def _drop(
        self,
        node: _Node,
        now: float,
        reason: str,
        *,
        error: KafkaSinkError | None = None,
        event: ConnectionEvent = ConnectionEvent.FAIL,
    ) -> None:
        """Close the node's connection and fail every request queued or in flight on it.

        ``event`` is FAIL (the connection broke: back off), or CLOSE (the node
        left, or the client closed).
        """
        expired = now - self._request_timeout
        written = node.written
        head = node.awaiting[0] if node.awaiting and error is not None else None
        entries = node.take_in_flight()
        context: dict[str, Any] = {"broker": node.broker, "node_id": node.node_id}
        for entry in entries:
            if entry.callback is None:
                continue
            exc: KafkaSinkError
            if entry is head and error is not None:
                exc = error
            elif entry.sent_at <= expired:
                exc = RequestTimeoutError(
                    f"no response from node {node.node_id} ({node.broker}) within "
                    f"{self._request_timeout:g}s",
                    **context,
                )
            elif entry.end <= written:
                exc = ReceiveError(
                    f"node {node.node_id} ({node.broker}): {reason}; the request was sent, "
                    "its response was not received",
                    **context,
                )
            else:
                exc = SendError(
                    f"node {node.node_id} ({node.broker}): {reason}; the request was not sent",
                    **context,
                )
            self._completed.append(
                (
                    entry.callback,
                    ClientResponse(
                        node.node_id, entry.request, entry.version, None, exc, now - entry.sent_at
                    ),
                )
            )
        sock = node.sock
        if sock is not None:
            self._poller.forget(sock)
            with contextlib.suppress(OSError):
                sock.close()
        if node.protocol is not None:
            node.protocol.fail_all()
        node.forget_streams()
        self._dirty.discard(node)
        self._tls_backlog.discard(node)
        self._paused.discard(node)
        if event is not ConnectionEvent.FAIL or node.has_socket:
            # A connection that has already failed (no socket) fails no further.
            node.handle(event)

    def _not_ready(self, node_id: int, node: _Node | None) -> NetworkError:
        if self._closed:
            return ConnectError("the network client is closed", node_id=node_id)
        if node is None:
            return ConnectError(f"node {node_id} is not known", node_id=node_id)
        state = self._state(node, self._clock())
        detail = f"; last error: {node.last_error}" if node.last_error else ""
        return ConnectError(
            f"node {node_id} ({node.broker}) is not ready ({state}){detail}",
            broker=node.broker,
            node_id=node_id,
        )

    def _refuse(
        self,
        node_id: int,
        request: Message,
        version: int | None,
        callback: Callback,
        error: KafkaSinkError,
    ) -> None:
        self._completed.append(
            (
                callback,
                ClientResponse(
                    node_id, request, -1 if version is None else version, None, error, 0.0
                ),
            )
        )

    def _dispatch(self) -> None:
        """Run the callbacks of completed requests (re-entrant calls queue more)."""
        completed = self._completed
        if not completed or self._dispatching:
            return
        self._dispatching = True
        done = 0
        try:
            while done < len(completed):
                callback, response = completed[done]
                done += 1
                try:
                    callback(response)
                except Exception:
                    self.callback_errors += 1
        finally:
            del completed[:done]
            self._dispatching = False

    def silence(self) -> None:
        """Emit no more log records, from now on (a sink that is closing must not
        feed records to a logging handler that may be shipping through it)."""
        self._silent = True

    def _debug(self, node: _Node, what: str) -> None:
        if not self._silent and _log.isEnabledFor(logging.DEBUG):
            _log.debug("node %d (%s): %s", node.node_id, node.broker, what)
