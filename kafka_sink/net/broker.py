"""One connection to one broker: connect, negotiate versions, authenticate, exchange requests.

The connection is blocking and bounded: every operation takes a deadline. On
any network or framing failure the socket is closed, because the position in
the byte stream is no longer known; the next request reconnects.

Setting up a connection: the transport connects (and, for TLS, completes the
handshake: :mod:`kafka_sink.net.security`), ApiVersions tells which versions
the broker speaks, and on a SASL listener the SaslHandshake/SaslAuthenticate
exchange of :class:`~kafka_sink.protocol.sasl.SaslAuthenticator` runs before
any other request, all within the connect timeout. The order of these steps
is :mod:`kafka_sink.net.state`'s, the same machine the non-blocking client
drives: each step reports its event there.
"""

from __future__ import annotations

import math
import ssl
import time
from typing import cast

from kafka_sink.config import BrokerAddress, SecurityConfig
from kafka_sink.error_codes import KafkaErrorCode
from kafka_sink.errors import (
    AuthenticationError,
    ConnectError,
    KafkaSinkError,
    ProtocolError,
    ReceiveError,
    RequestTimeoutError,
    SendError,
    TlsError,
    UnsupportedVersionError,
)
from kafka_sink.net.security import TlsTransport, tls_failure
from kafka_sink.net.state import ConnectionEvent, ConnectionSetup, ConnectionState
from kafka_sink.net.transport import Clock, Stream, Transport, monotonic
from kafka_sink.protocol.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka_sink.protocol.apis import ApiKey, choose_version, supported_versions
from kafka_sink.protocol.client import ClientProtocol
from kafka_sink.protocol.oauthbearer import (
    OAuthBearerMechanism,
    fetch_token,
    reauthentication_delay,
)
from kafka_sink.protocol.sasl import SaslAuthenticator, create_mechanism
from kafka_sink.protocol.schema import AnswerT, Request

__all__ = ["ApiVersionsNegotiation", "BrokerConnection", "describe_os_error", "sasl_authenticator"]


_RECV_CHUNK = 256 * 1024
# The most one recv() asks for. A frame's size comes from the broker, and
# socket.recv(n) allocates n bytes before any arrives: a 4-byte size claiming
# 100 MiB must not cost 100 MiB up front.
_RECV_MAX = 4 * 1024 * 1024
_NEGOTIATION_ATTEMPTS = 3


class ApiVersionsNegotiation:
    """The ApiVersions exchange that opens every connection, without I/O.

    Shared by the blocking :class:`BrokerConnection` and the non-blocking
    :class:`~kafka_sink.net.client.NetworkClient`: send :meth:`request`, feed
    the answer to :meth:`handle`, and repeat while it returns None. KIP-511: a
    broker that does not know the version asked for answers error 35 with the
    range it does speak (or with a list that decodes at no version, in which
    case v0, which every broker speaks, is tried next).
    """

    __slots__ = ("_attempts", "_broker", "_software_version", "version")

    def __init__(self, broker: str, software_version: str = "0") -> None:
        self._broker = broker
        self._software_version = software_version
        self._attempts = 0
        #: The version the next request is sent at.
        self.version = supported_versions(ApiKey.API_VERSIONS)[1]

    def request(self) -> tuple[ApiVersionsRequest, int]:
        """The request to send next and its version."""
        return ApiVersionsRequest("kafka-sink", self._software_version), self.version

    def handle(self, response: ApiVersionsResponse) -> dict[int, tuple[int, int]] | None:
        """The negotiated ranges, or None when :meth:`request` must be sent again.

        Raises :class:`ProtocolError` when the broker refuses, and
        :class:`UnsupportedVersionError` when no version is left to try.
        """
        self._attempts += 1
        version = self.version
        if response.error_code == KafkaErrorCode.UNSUPPORTED_VERSION and version > 0:
            if self._attempts >= _NEGOTIATION_ATTEMPTS:
                raise UnsupportedVersionError(
                    f"broker {self._broker} offers no ApiVersions version in common",
                    broker=self._broker,
                )
            offered = response.ranges().get(ApiKey.API_VERSIONS)
            # Lower than the version just refused, never below v0, whatever
            # (negative, say) the broker offers.
            self.version = max(0, min(version - 1, offered[1])) if offered else 0
            return None
        if response.error_code != KafkaErrorCode.NONE:
            raise ProtocolError(
                f"broker {self._broker} refused ApiVersions with error {response.error_code}",
                broker=self._broker,
            )
        return response.ranges()


def sasl_authenticator(
    security: SecurityConfig, broker: str, api_versions: dict[int, tuple[int, int]]
) -> SaslAuthenticator:
    """A fresh SASL exchange for one connection (a new SCRAM nonce, a new OAUTHBEARER token).

    With OAUTHBEARER this calls the token provider; what goes wrong there
    raises :class:`~kafka_sink.errors.AuthenticationError`.
    """
    mechanism = security.sasl_mechanism or "PLAIN"
    provider = security.sasl_oauth_token_provider
    if mechanism == "OAUTHBEARER" and provider is not None:
        token = fetch_token(provider, broker, wall_clock=time.time)
        return SaslAuthenticator(
            OAuthBearerMechanism(token), broker, api_versions, user=token.principal
        )
    username = security.sasl_plain_username or ""
    mechanism_client = create_mechanism(
        mechanism,
        username,
        security.sasl_plain_password or "",
        scram_max_iterations=security.sasl_scram_max_iterations,
    )
    return SaslAuthenticator(mechanism_client, broker, api_versions, user=username)


class BrokerConnection:
    """A blocking, deadline-bounded connection to one broker.

    ``transport`` opens the byte stream (TLS included, when it is a
    :class:`~kafka_sink.net.security.TlsTransport`); ``security`` supplies the
    SASL settings, used when its ``security_protocol`` is a SASL one.
    """

    def __init__(
        self,
        address: BrokerAddress,
        transport: Transport,
        *,
        client_id: str | None,
        node_id: int | None = None,
        clock: Clock = monotonic,
        software_version: str = "0",
        security: SecurityConfig | None = None,
    ) -> None:
        self.address = address
        self.node_id = node_id
        self._transport = transport
        self._client_id = client_id
        self._clock = clock
        self._software_version = software_version
        self._security = security or SecurityConfig()
        self._setup = ConnectionSetup(
            tls=isinstance(transport, TlsTransport), sasl=self._security.uses_sasl
        )
        # Whether the broker has answered a request since the set-up ended.
        self._answered = False
        # KIP-368: when the SASL session must be renewed (inf: never).
        self._reauth_at = math.inf
        self._stream: Stream | None = None
        self._protocol: ClientProtocol | None = None
        self.api_versions: dict[int, tuple[int, int]] = {}
        self.last_error: KafkaSinkError | None = None

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed"
        return f"<BrokerConnection {self.address} node={self.node_id} {state}>"

    @property
    def connected(self) -> bool:
        return self._stream is not None

    @property
    def state(self) -> ConnectionState:
        """Where the connection is (:mod:`kafka_sink.net.state`)."""
        return self._setup.state

    @property
    def _phase(self) -> str | None:
        """What the connection is setting up, for messages (None once it is ready)."""
        state = self._setup.state
        if state is ConnectionState.NEGOTIATING:
            return "version negotiation"
        if state is ConnectionState.AUTHENTICATING:
            again = self._setup.reauthenticating
            return "SASL re-authentication" if again else "SASL authentication"
        return None

    def connect(self, timeout: float) -> None:
        """Connect (if not connected) and learn the broker's API versions."""
        if self._stream is not None:
            return
        deadline = self._clock() + timeout
        setup = self._setup
        setup.handle(ConnectionEvent.CONNECT)
        try:
            stream = self._transport.connect(self.address.host, self.address.port, timeout)
        except TlsError as exc:
            raise self._fail(exc) from None
        except OSError as exc:
            raise self._failure(
                ConnectError, f"cannot connect to {self.address}: {describe_os_error(exc)}"
            ) from None
        self._stream = stream
        self._protocol = ClientProtocol(self._client_id)
        self._answered = False
        if setup.handle(ConnectionEvent.TCP_UP) is ConnectionState.HANDSHAKING:
            setup.handle(ConnectionEvent.TLS_UP)  # the TLS transport completed the handshake
        self._negotiate(deadline)
        if setup.handle(ConnectionEvent.VERSIONS_AGREED) is ConnectionState.AUTHENTICATING:
            self._authenticate(deadline)

    def _negotiate(self, deadline: float) -> None:
        """ApiVersions with the KIP-511 fallback to the version the broker offers."""
        negotiation = ApiVersionsNegotiation(str(self.address), self._software_version)
        while True:
            request, version = negotiation.request()
            response: ApiVersionsResponse = self._exchange(request, version, deadline)
            try:
                ranges = negotiation.handle(response)
            except ProtocolError:
                self.close()
                raise
            if ranges is not None:
                self.api_versions = ranges
                return

    def _authenticate(self, deadline: float) -> None:
        """The SASL exchange; AuthenticationError (never retried) when it fails."""
        try:
            auth = sasl_authenticator(self._security, str(self.address), self.api_versions)
        except KafkaSinkError as exc:
            # A token provider's own exception stays the cause (the traceback shows it).
            raise self._fail(exc) from exc.__cause__
        while True:
            request, version = auth.request()
            response = self._exchange(request, version, deadline)
            try:
                if auth.handle(response):
                    delay = reauthentication_delay(auth.session_lifetime_ms)
                    self._reauth_at = math.inf if delay is None else self._clock() + delay
                    self._setup.handle(ConnectionEvent.AUTHENTICATED)
                    return
            except AuthenticationError as exc:
                raise self._fail(exc) from None

    def version_for(self, api_key: int) -> int:
        """The version of ``api_key`` to use with this broker."""
        try:
            return choose_version(api_key, self.api_versions)
        except UnsupportedVersionError as exc:
            raise UnsupportedVersionError(
                f"{exc.message} (broker {self.address})", broker=str(self.address)
            ) from None

    def request(
        self,
        request: Request[AnswerT],
        timeout: float,
        version: int | None = None,
        client_id: str | None = None,
    ) -> AnswerT:
        """Send ``request`` and wait for its response (None when none is expected)."""
        deadline = self._clock() + timeout
        if self._stream is None:
            self.connect(timeout)
        elif self._clock() >= self._reauth_at:
            # KIP-368: the broker closes a connection whose session has expired
            # at its next request; authenticate again first, in place (nothing
            # else is in flight on a blocking connection).
            self._reauth_at = math.inf
            self._setup.handle(ConnectionEvent.SESSION_ENDING)
            self._authenticate(deadline)
        if version is None:
            version = self.version_for(request.API_KEY)
        return self._exchange(request, version, deadline, client_id)

    def _exchange(
        self, request: Request[AnswerT], version: int, deadline: float, client_id: str | None = None
    ) -> AnswerT:
        stream, protocol = self._stream, self._protocol
        if stream is None or protocol is None:
            raise SendError(f"not connected to {self.address}", broker=str(self.address))
        _, frame = protocol.send(request, version, client_id)
        try:
            stream.sendall(frame, self._remaining(deadline))
        except OSError as exc:
            raise self._failure(
                SendError, f"cannot send to {self.address}: {describe_os_error(exc)}"
            ) from None
        if not request.expects_response():
            # A Produce with acks=0: its type, Request[ProduceResponse | None], allows None.
            return cast(AnswerT, None)
        try:
            while True:
                response = protocol.next_response()
                if response is not None:
                    self._answered = self._phase is None
                    # Decoded by the response class of the request's API key.
                    return cast(AnswerT, response.body)
                remaining = self._remaining(deadline)
                if remaining <= 0:
                    raise TimeoutError
                wanted = min(max(_RECV_CHUNK, protocol.bytes_needed()), _RECV_MAX)
                data = stream.recv(wanted, remaining)
                if not data:
                    raise self._failure(
                        ReceiveError, f"connection closed by {self.address}{self._hint()}"
                    )
                protocol.receive_data(data)
        except TimeoutError:
            raise self._failure(
                RequestTimeoutError,
                f"no response from {self.address} within the timeout{self._hint()}",
            ) from None
        except ssl.SSLError as exc:
            if self._phase is not None and not isinstance(exc, ssl.SSLEOFError):
                # TLS 1.3 reports a refused client certificate after the handshake.
                raise self._fail(tls_failure(exc, str(self.address))) from None
            raise self._failure(
                ReceiveError,
                f"cannot receive from {self.address}: {describe_os_error(exc)}{self._hint()}",
            ) from None
        except OSError as exc:
            raise self._failure(
                ReceiveError,
                f"cannot receive from {self.address}: {describe_os_error(exc)}{self._hint()}",
            ) from None
        except ProtocolError as exc:
            exc.context.setdefault("broker", str(self.address))
            if self._phase is not None:
                exc = type(exc)(
                    f"{exc.message} (broker {self.address}, during {self._phase})",
                    code=exc.code,
                    **exc.context,
                )
            raise self._fail(exc) from None

    def _hint(self) -> str:
        """Why a new connection may end: the wrong security_protocol for the listener."""
        expected = (
            f"is security_protocol {self._security.security_protocol!r} what this listener expects?"
        )
        if self._phase is not None:
            return f" during {self._phase} ({expected})"
        if not self._answered and not self._security.uses_sasl:
            # A SASL listener answers ApiVersions, then drops a client that does
            # not authenticate at its first other request.
            return f" before answering any request ({expected})"
        return ""

    def _remaining(self, deadline: float) -> float:
        return max(0.0, deadline - self._clock())

    def _failure(self, error: type[KafkaSinkError], message: str) -> KafkaSinkError:
        """A network failure of this broker: recorded, the socket closed."""
        return self._fail(error(message, broker=str(self.address)))

    def _fail(self, exc: KafkaSinkError) -> KafkaSinkError:
        self.last_error = exc
        self._close(ConnectionEvent.FAIL)
        return exc

    def close(self) -> None:
        """Close the socket; requests in flight are forgotten. Never raises."""
        self._close(ConnectionEvent.DISCONNECT)

    def _close(self, event: ConnectionEvent) -> None:
        if self._setup.has_socket or (
            event is ConnectionEvent.DISCONNECT and self._setup.state is ConnectionState.BACKOFF
        ):
            self._setup.handle(event)
        stream, self._stream = self._stream, None
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.fail_all()
        if stream is not None:
            stream.close()


def describe_os_error(exc: OSError) -> str:
    """A short description of a socket error for messages ("timed out", "Connection refused")."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    return exc.strerror or str(exc) or type(exc).__name__
