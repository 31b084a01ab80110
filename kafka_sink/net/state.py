"""The set-up of one broker connection, as a state machine without I/O.

Theory of operation
-------------------
Every connection to a broker is set up the same way, whichever client opens
it: TCP, then TLS (on an ``SSL`` or ``SASL_SSL`` listener), then ApiVersions
(which versions of each API the broker speaks), then the SASL exchange (on a
``SASL_*`` listener), and only then requests. The non-blocking
:class:`~kafka_sink.net.client.NetworkClient` and the blocking
:class:`~kafka_sink.net.broker.BrokerConnection` do the I/O of each step in
their own way; this module is the one place that says which step comes after
which, and which events may happen in which state. Neither client assigns a
state itself: each reports an event to its :class:`ConnectionSetup` and acts
on the state it gets back (the client starts the TLS handshake when the
answer is ``HANDSHAKING``, sends ApiVersions when it is ``NEGOTIATING``, and
so on).

The states and events, as :data:`TRANSITIONS` has them::

    DISCONNECTED --CONNECT--> CONNECTING --TCP_UP--> HANDSHAKING --TLS_UP--> NEGOTIATING
                                                                                  |
                                                                          VERSIONS_AGREED
                                                                                  v
                              READY <-------------AUTHENTICATED------------ AUTHENTICATING
                                |                                                 ^
                                +---------------SESSION_ENDING--------------------+

    FAIL:       any state with a socket --> BACKOFF --CONNECT--> CONNECTING
    DISCONNECT: any state with a socket, or BACKOFF --> DISCONNECTED
    CLOSE:      any state --> CLOSED, which takes no further event

A step the connection's security does not have is passed straight through:
without TLS, ``TCP_UP`` leads to ``NEGOTIATING`` (``HANDSHAKING`` is skipped
as if ``TLS_UP`` had followed at once), and without SASL
``VERSIONS_AGREED`` leads to ``READY``. ``FAIL`` (refused, timed out, reset,
end of stream, malformed frame, credentials or certificate refused) leads
from any state with a socket to ``BACKOFF``: the client decides when to
``CONNECT`` again (the machine reads no clock), and reports the state as
``disconnected`` once that time has come. ``DISCONNECT`` is a deliberate
end without a back-off (the blocking connection was closed; its next request
connects again), and ``CLOSE`` the end for good (the node left the cluster,
or the client was closed): ``CLOSED`` takes no further event.
``SESSION_ENDING`` is KIP-368's re-authentication: a ready connection whose
SASL session is ending runs the exchange again in place.

An event that the table does not list for the current state is a bug in the
client that reported it, never something a broker can cause: it raises
:class:`~kafka_sink.errors.IllegalStateTransitionError` instead of letting
the connection carry on in a state nobody meant.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from kafka_sink.errors import IllegalStateTransitionError

__all__ = [
    "SETTING_UP",
    "TRANSITIONS",
    "WITH_SOCKET",
    "ConnectionEvent",
    "ConnectionSetup",
    "ConnectionState",
]


class ConnectionState(str, enum.Enum):
    """Where a connection is; the value is what ``connection_states()`` reports."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    HANDSHAKING = "handshaking"
    NEGOTIATING = "negotiating"
    AUTHENTICATING = "authenticating"
    READY = "ready"
    BACKOFF = "backoff"
    CLOSED = "closed"

    def __str__(self) -> str:
        return self.value


class ConnectionEvent(enum.Enum):
    """What happened to a connection, as its client reports it."""

    CONNECT = "connect"  # a TCP connection is being opened
    TCP_UP = "tcp up"
    TLS_UP = "tls up"
    VERSIONS_AGREED = "versions agreed"  # ApiVersions answered without error
    AUTHENTICATED = "authenticated"  # the SASL exchange succeeded
    SESSION_ENDING = "session ending"  # KIP-368: authenticate again, in place
    FAIL = "fail"
    DISCONNECT = "disconnect"
    CLOSE = "close"


_S = ConnectionState
_E = ConnectionEvent

#: States in which the connection has a socket.
WITH_SOCKET: frozenset[ConnectionState] = frozenset(
    (_S.CONNECTING, _S.HANDSHAKING, _S.NEGOTIATING, _S.AUTHENTICATING, _S.READY)
)
#: States of a connection being set up (bounded by the connect timeout).
SETTING_UP: frozenset[ConnectionState] = WITH_SOCKET - {_S.READY}

#: The one table of transitions: (state, event) -> next state.
TRANSITIONS: Mapping[tuple[ConnectionState, ConnectionEvent], ConnectionState] = {
    (_S.DISCONNECTED, _E.CONNECT): _S.CONNECTING,
    (_S.BACKOFF, _E.CONNECT): _S.CONNECTING,
    (_S.CONNECTING, _E.TCP_UP): _S.HANDSHAKING,
    (_S.HANDSHAKING, _E.TLS_UP): _S.NEGOTIATING,
    (_S.NEGOTIATING, _E.VERSIONS_AGREED): _S.AUTHENTICATING,
    (_S.AUTHENTICATING, _E.AUTHENTICATED): _S.READY,
    (_S.READY, _E.SESSION_ENDING): _S.AUTHENTICATING,
    **{(state, _E.FAIL): _S.BACKOFF for state in WITH_SOCKET},
    **{(state, _E.DISCONNECT): _S.DISCONNECTED for state in WITH_SOCKET | {_S.BACKOFF}},
    **{(state, _E.CLOSE): _S.CLOSED for state in _S if state is not _S.CLOSED},
}

# A state the connection's security does not have, and the event that leaves it.
_PASS_THROUGH = {_S.HANDSHAKING: _E.TLS_UP, _S.AUTHENTICATING: _E.AUTHENTICATED}


class ConnectionSetup:
    """The state of one connection, moved on by :meth:`handle`.

    ``tls`` and ``sasl`` say which optional steps the connection has.
    ``reauthenticating`` is True while a ready connection runs the SASL
    exchange again (KIP-368).
    """

    __slots__ = ("reauthenticating", "sasl", "state", "tls")

    def __init__(self, *, tls: bool, sasl: bool) -> None:
        self.tls = tls
        self.sasl = sasl
        self.state = ConnectionState.DISCONNECTED
        self.reauthenticating = False

    def __repr__(self) -> str:
        return f"<ConnectionSetup {self.state.value} tls={self.tls} sasl={self.sasl}>"

    def handle(self, event: ConnectionEvent) -> ConnectionState:
        """Apply ``event``; return the new state.

        Raises :class:`~kafka_sink.errors.IllegalStateTransitionError` for an
        event the current state does not take.
        """
        state = TRANSITIONS.get((self.state, event))
        if state is None:
            raise IllegalStateTransitionError(
                f"a connection that is {self.state.value} cannot take the event {event.value!r}",
                state=self.state.value,
                event=event.value,
            )
        skip = _PASS_THROUGH.get(state)
        if skip is not None and not (self.tls if state is _S.HANDSHAKING else self.sasl):
            state = TRANSITIONS[(state, skip)]
        self.reauthenticating = event is _E.SESSION_ENDING or (
            self.reauthenticating and state is _S.AUTHENTICATING
        )
        self.state = state
        return state

    @property
    def ready(self) -> bool:
        return self.state is _S.READY

    @property
    def has_socket(self) -> bool:
        return self.state in WITH_SOCKET

    @property
    def setting_up(self) -> bool:
        return self.state in SETTING_UP
