"""The plugin is found through its entry point and answers to the name "ecs"."""

from __future__ import annotations

import json
import logging
from importlib.metadata import entry_points

import pytest
from kafka_sink import InvalidArgumentError, plugin_manager

import kafka_sink_ecs.plugin
from kafka_sink_ecs import EcsEventSerializer, EcsLogSerializer


def test_entry_point_is_installed() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="kafka_sink")}

    assert found.get("ecs") == "kafka_sink_ecs.plugin"


def test_plugin_manager_loads_the_entry_point() -> None:
    manager = plugin_manager()

    assert manager.get_plugin("ecs") is kafka_sink_ecs.plugin


def test_log_serializer_through_the_hook() -> None:
    serializer = plugin_manager().hook.kafka_sink_log_serializer(
        name="ecs", options={"service_name": "shop", "hostname": None}
    )
    record = logging.LogRecord("shop", logging.INFO, "/srv/a.py", 7, "hello %s", ("you",), None)

    assert isinstance(serializer, EcsLogSerializer)
    doc = json.loads(serializer(record))
    assert doc["message"] == "hello you"
    assert doc["service"] == {"name": "shop"}
    assert "host" not in doc


def test_event_serializer_through_the_hook() -> None:
    serializer = plugin_manager().hook.kafka_sink_event_serializer(name="ecs", options={})

    assert isinstance(serializer, EcsEventSerializer)
    assert json.loads(serializer({"event": "hi", "level": "info"}))["message"] == "hi"


def test_other_names_are_left_to_other_plugins() -> None:
    plugin = kafka_sink_ecs.plugin

    assert plugin.kafka_sink_log_serializer(name="json", options={}) is None
    assert plugin.kafka_sink_event_serializer(name="otlp", options={}) is None


def test_blocked_or_without_entry_points_there_is_no_ecs_serializer() -> None:
    for manager in (plugin_manager(block=["ecs"]), plugin_manager(entry_points=False)):
        assert manager.get_plugin("ecs") is None
        assert manager.hook.kafka_sink_log_serializer(name="ecs", options={}) is None


def test_bad_options_fail_when_the_serializer_is_built() -> None:
    hook = plugin_manager().hook

    with pytest.raises(InvalidArgumentError, match="service_nam"):
        hook.kafka_sink_log_serializer(name="ecs", options={"service_nam": "typo"})
    with pytest.raises(InvalidArgumentError, match="extra_fields"):
        hook.kafka_sink_event_serializer(name="ecs", options={"extra_fields": "all"})
