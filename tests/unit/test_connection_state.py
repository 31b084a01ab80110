"""The connection set-up machine of kafka_sink.net.state, and the clients that drive it."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from kafka_sink.errors import IllegalStateTransitionError, ProtocolError
from kafka_sink.net.state import (
    SETTING_UP,
    TRANSITIONS,
    WITH_SOCKET,
    ConnectionEvent,
    ConnectionSetup,
    ConnectionState,
)

E = ConnectionEvent
S = ConnectionState
NET = Path(__file__).resolve().parents[2] / "kafka_sink" / "net"


def _run(setup: ConnectionSetup, *events: ConnectionEvent) -> list[ConnectionState]:
    return [setup.handle(event) for event in events]


@pytest.mark.parametrize(
    ("tls", "sasl", "states"),
    [
        (False, False, [S.CONNECTING, S.NEGOTIATING, S.READY]),
        (True, False, [S.CONNECTING, S.HANDSHAKING, S.NEGOTIATING, S.READY]),
        (False, True, [S.CONNECTING, S.NEGOTIATING, S.AUTHENTICATING, S.READY]),
        (True, True, [S.CONNECTING, S.HANDSHAKING, S.NEGOTIATING, S.AUTHENTICATING, S.READY]),
    ],
)
def test_the_set_up_takes_exactly_the_steps_of_its_security(
    tls: bool, sasl: bool, states: list[ConnectionState]
) -> None:
    setup = ConnectionSetup(tls=tls, sasl=sasl)
    seen = [setup.handle(E.CONNECT), setup.handle(E.TCP_UP)]
    if tls:
        seen.append(setup.handle(E.TLS_UP))
    seen.append(setup.handle(E.VERSIONS_AGREED))
    if sasl:
        seen.append(setup.handle(E.AUTHENTICATED))
    assert seen == states
    assert setup.ready


def test_every_pair_the_table_does_not_list_is_refused_and_changes_nothing() -> None:
    for state, event in itertools.product(S, E):
        setup = ConnectionSetup(tls=True, sasl=True)
        setup.state = state
        if (state, event) in TRANSITIONS:
            assert setup.handle(event) is TRANSITIONS[(state, event)]
            continue
        with pytest.raises(IllegalStateTransitionError) as info:
            setup.handle(event)
        assert isinstance(info.value, ProtocolError)
        assert info.value.context == {"state": state.value, "event": event.value}
        assert setup.state is state


def test_a_failure_backs_off_from_every_state_with_a_socket_and_a_connect_follows() -> None:
    assert {s for (s, e) in TRANSITIONS if e is E.FAIL} == WITH_SOCKET
    assert WITH_SOCKET - {S.READY} == SETTING_UP
    for state in WITH_SOCKET:
        setup = ConnectionSetup(tls=False, sasl=False)
        setup.state = state
        assert _run(setup, E.FAIL, E.CONNECT) == [S.BACKOFF, S.CONNECTING]
        assert setup.has_socket


def test_closed_is_the_end() -> None:
    setup = ConnectionSetup(tls=False, sasl=False)
    assert _run(setup, E.CONNECT, E.CLOSE) == [S.CONNECTING, S.CLOSED]
    for event in E:
        with pytest.raises(IllegalStateTransitionError):
            setup.handle(event)


def test_re_authentication_is_marked_until_it_ends() -> None:
    setup = ConnectionSetup(tls=False, sasl=True)
    _run(setup, E.CONNECT, E.TCP_UP, E.VERSIONS_AGREED)
    assert not setup.reauthenticating  # the first authentication
    _run(setup, E.AUTHENTICATED, E.SESSION_ENDING)
    assert setup.state is S.AUTHENTICATING
    assert setup.reauthenticating
    setup.handle(E.AUTHENTICATED)
    assert not setup.reauthenticating
    _run(setup, E.SESSION_ENDING, E.FAIL)
    assert not setup.reauthenticating


def test_state_values_are_what_connection_states_reports() -> None:
    assert [s.value for s in S] == [
        "disconnected",
        "connecting",
        "handshaking",
        "negotiating",
        "authenticating",
        "ready",
        "backoff",
        "closed",
    ]
    assert str(S.READY) == "ready"
    assert f"{S.READY}" == "ready"


@pytest.mark.parametrize("module", ["client.py", "broker.py"])
def test_neither_client_assigns_a_connection_state_itself(module: str) -> None:
    # The clients report events; only the machine moves a state.
    tree = ast.parse((NET / module).read_text())
    assigned = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Attribute) and target.attr in ("state", "reauthenticating")
    ]
    assert assigned == [], f"{module} assigns a connection state at lines {assigned}"
