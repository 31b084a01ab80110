"""The state machine of one broker connection, without I/O: states, events, one table.

This module imports no socket, ssl, selectors, time or threading: it knows
nothing of bytes, clocks or threads, only of the order in which a connection
is set up, used and torn down. The non-blocking
:class:`~kafka_sink.net.client.NetworkClient` (through
:class:`~kafka_sink.net.connection.NodeConnection`) and the blocking
:class:`~kafka_sink.net.broker.BrokerConnection` both drive it.
"""

# Theory of operation
# ===================
#
# A connection to a broker is set up in steps, each of which must finish
# before the next may start: TCP, then TLS (only on SSL and SASL_SSL
# listeners), then ApiVersions, then SASL (only on SASL_PLAINTEXT and SASL_SSL
# listeners), and only then may the connection carry the caller's requests.
# Each step is a state of the machine below, and the end of a step is an
# event. Whoever does the I/O (the selector loop of NetworkClient, or the
# blocking calls of BrokerConnection) tells the machine what happened with
# ConnectionStateMachine.apply(event); the machine answers with the state the
# connection is in now, and the driver does what that state asks for (send
# ApiVersions, start the SASL exchange, mark the node ready). Neither driver
# codes the order of the steps: "what comes after TLS", "is SASL next, or are
# we ready" are rows of TRANSITIONS, and nowhere else.
#
# The states:
#
#   DISCONNECTED       no socket; a connection may be started now.
#   BACKOFF            no socket, after a failure; the driver waits for its
#                      back-off before it starts the next connection. (Whether
#                      that wait is over is a matter of time, which this
#                      module does not know: the driver reports a BACKOFF node
#                      whose wait has passed as "disconnected".)
#   CONNECTING         the TCP connect is under way.
#   TLS_HANDSHAKE      TCP is up; the TLS handshake is under way.
#   API_VERSIONS       the ApiVersions exchange is under way (Kafka protocol
#                      guide, "Retrieving Supported API versions"; KIP-35,
#                      and KIP-511's fallback: a broker that does not know the
#                      version asked for answers UNSUPPORTED_VERSION with the
#                      versions it does speak, and the client asks again; the
#                      repeats stay in this state).
#   SASL_HANDSHAKE     SaslHandshake is sent: the client names its mechanism
#                      (KIP-43).
#   SASL_AUTHENTICATE  SaslAuthenticate round trips carry the mechanism's
#                      tokens until it completes (KIP-152).
#   READY              the connection carries requests, pipelined.
#
# The events, and who sends them:
#
#   CONNECT            the driver starts a connection (a TCP connect).
#   TCP_CONNECTED      the TCP connect completed.
#   TLS_ESTABLISHED    the TLS handshake completed.
#   VERSIONS_AGREED    ApiVersions gave the broker's version ranges.
#   HANDSHAKE_ACCEPTED the broker accepted the SASL mechanism.
#   AUTHENTICATED      the SASL exchange completed.
#   REAUTHENTICATE     the SASL session is ending (KIP-368): a broker with
#                      connections.max.reauth.ms says in SaslAuthenticate v1
#                      how long the session lasts and closes a connection used
#                      after that, so once the requests in flight are answered
#                      the driver runs the SASL exchange again on the same
#                      connection (a new SCRAM nonce, a new OAUTHBEARER token).
#                      This is the only edge that leaves READY and comes back.
#   NOT_CONFIGURED     sent by the machine itself, never by a driver: a step
#                      that the listener does not use (TLS on a plaintext one,
#                      SASL without a mechanism) is passed at once.
#   FAILED             the connection failed (refused, reset, timed out, a
#                      malformed frame, credentials or a certificate refused).
#   CLOSED             the connection was closed on purpose (the node left the
#                      cluster, the client was closed).
#
# Why one table. A connection's steps used to be spelled twice, as strings
# assigned in the non-blocking client and again as calls in a row in the
# blocking one; adding a step (or reordering two) meant finding each place.
# Here the order is data: TRANSITIONS maps (state, event) to the next state,
# and anything it does not list is a bug, raised at once as
# IllegalStateTransitionError rather than carried on in an unknown state (a
# connection whose position in the byte stream is unknown cannot recover).
# The optional steps are rows like any other: the machine is built knowing
# which of TLS and SASL the listener uses, and a state for a step it does not
# use is left at once through its NOT_CONFIGURED row, so the rows say where
# the connection goes then too.
#
#   DISCONNECTED ──CONNECT──> CONNECTING ──TCP_CONNECTED──> TLS_HANDSHAKE
#   BACKOFF ─────┘                                              │
#      ^                                  TLS_ESTABLISHED or NOT_CONFIGURED
#      │                                                        v
#      │ FAILED (from any                                 API_VERSIONS
#      │ connected state)                                       │
#      │                                                 VERSIONS_AGREED
#      │                                                        v
#      │        READY <──NOT_CONFIGURED── SASL_HANDSHAKE <──REAUTHENTICATE── READY
#      │          ^                             │
#      │          │                     HANDSHAKE_ACCEPTED
#      │          │                             v
#      │          └──────AUTHENTICATED── SASL_AUTHENTICATE
#
#   CLOSED, from any state, leads to DISCONNECTED.

from __future__ import annotations

import enum

from kafka_sink.errors import IllegalStateTransitionError

__all__ = [
    "LABELS",
    "SETTING_UP",
    "TRANSITIONS",
    "ConnectionEvent",
    "ConnectionState",
    "ConnectionStateMachine",
]


class ConnectionState(enum.Enum):
    """Where one connection is; see the theory of operation above."""

    DISCONNECTED = "disconnected"
    BACKOFF = "backoff"
    CONNECTING = "connecting"
    TLS_HANDSHAKE = "tls_handshake"
    API_VERSIONS = "api_versions"
    SASL_HANDSHAKE = "sasl_handshake"
    SASL_AUTHENTICATE = "sasl_authenticate"
    READY = "ready"


class ConnectionEvent(enum.Enum):
    """What happened to a connection; see the theory of operation above."""

    CONNECT = "connect"
    TCP_CONNECTED = "tcp_connected"
    TLS_ESTABLISHED = "tls_established"
    VERSIONS_AGREED = "versions_agreed"
    HANDSHAKE_ACCEPTED = "handshake_accepted"
    AUTHENTICATED = "authenticated"
    REAUTHENTICATE = "reauthenticate"
    NOT_CONFIGURED = "not_configured"
    FAILED = "failed"
    CLOSED = "closed"


_S = ConnectionState
_E = ConnectionEvent

#: Every legal transition: (state, event) -> the next state. Nothing else is legal.
TRANSITIONS: dict[tuple[ConnectionState, ConnectionEvent], ConnectionState] = {
    # Starting a connection.
    (_S.DISCONNECTED, _E.CONNECT): _S.CONNECTING,
    (_S.BACKOFF, _E.CONNECT): _S.CONNECTING,
    # Setting it up, step by step.
    (_S.CONNECTING, _E.TCP_CONNECTED): _S.TLS_HANDSHAKE,
    (_S.TLS_HANDSHAKE, _E.TLS_ESTABLISHED): _S.API_VERSIONS,
    (_S.TLS_HANDSHAKE, _E.NOT_CONFIGURED): _S.API_VERSIONS,
    (_S.API_VERSIONS, _E.VERSIONS_AGREED): _S.SASL_HANDSHAKE,
    (_S.SASL_HANDSHAKE, _E.HANDSHAKE_ACCEPTED): _S.SASL_AUTHENTICATE,
    (_S.SASL_HANDSHAKE, _E.NOT_CONFIGURED): _S.READY,
    (_S.SASL_AUTHENTICATE, _E.AUTHENTICATED): _S.READY,
    # KIP-368: the SASL exchange again, in place.
    (_S.READY, _E.REAUTHENTICATE): _S.SASL_HANDSHAKE,
    # Failures: the connection is gone, the next one waits for its back-off.
    (_S.CONNECTING, _E.FAILED): _S.BACKOFF,
    (_S.TLS_HANDSHAKE, _E.FAILED): _S.BACKOFF,
    (_S.API_VERSIONS, _E.FAILED): _S.BACKOFF,
    (_S.SASL_HANDSHAKE, _E.FAILED): _S.BACKOFF,
    (_S.SASL_AUTHENTICATE, _E.FAILED): _S.BACKOFF,
    (_S.READY, _E.FAILED): _S.BACKOFF,
    # Closing on purpose, from anywhere.
    **{(state, _E.CLOSED): _S.DISCONNECTED for state in ConnectionState},
}

#: The states of a connection being set up (a socket, not yet ready).
SETTING_UP = frozenset(
    {_S.CONNECTING, _S.TLS_HANDSHAKE, _S.API_VERSIONS, _S.SASL_HANDSHAKE, _S.SASL_AUTHENTICATE}
)

#: How each state is reported (``NetworkClient.connection_states()``, metrics).
LABELS: dict[ConnectionState, str] = {
    _S.DISCONNECTED: "disconnected",
    _S.BACKOFF: "backoff",
    _S.CONNECTING: "connecting",
    _S.TLS_HANDSHAKE: "handshaking",
    _S.API_VERSIONS: "negotiating",
    _S.SASL_HANDSHAKE: "authenticating",
    _S.SASL_AUTHENTICATE: "authenticating",
    _S.READY: "ready",
}


class ConnectionStateMachine:
    """The state of one connection, moved only by :meth:`apply` along :data:`TRANSITIONS`.

    ``tls`` and ``sasl`` say whether the listener uses those steps; a step it
    does not use is passed through its ``NOT_CONFIGURED`` row.
    ``reauthenticating`` is True from ``REAUTHENTICATE`` until the connection
    is ready again or gone.
    """

    __slots__ = ("_unused", "reauthenticating", "state")

    def __init__(self, *, tls: bool, sasl: bool) -> None:
        self.state = ConnectionState.DISCONNECTED
        self.reauthenticating = False
        unused: set[ConnectionState] = set()
        if not tls:
            unused.add(ConnectionState.TLS_HANDSHAKE)
        if not sasl:
            unused.add(ConnectionState.SASL_HANDSHAKE)
        self._unused = frozenset(unused)

    def apply(self, event: ConnectionEvent) -> ConnectionState:
        """Move along the table; the new state. Raises :class:`IllegalStateTransitionError`."""
        state = TRANSITIONS.get((self.state, event))
        if state is None:
            raise IllegalStateTransitionError(
                f"a connection in state {self.state.name} cannot take event {event.name}",
                state=self.state.name,
                event=event.name,
            )
        while state in self._unused:
            state = TRANSITIONS[(state, ConnectionEvent.NOT_CONFIGURED)]
        if event is ConnectionEvent.REAUTHENTICATE:
            self.reauthenticating = state is not ConnectionState.READY
        elif state not in SETTING_UP:
            self.reauthenticating = False
        self.state = state
        return state
