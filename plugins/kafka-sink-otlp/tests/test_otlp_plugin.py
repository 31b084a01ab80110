"""The plugin is found through its entry point and answers to the name "otlp"."""

from __future__ import annotations

import json
import logging
from importlib.metadata import entry_points

import pytest
from kafka_sink import InvalidArgumentError, plugin_manager

import kafka_sink_otlp.plugin
from kafka_sink_otlp import OtlpEventSerializer, OtlpLogSerializer


def test_entry_point_is_installed() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="kafka_sink")}

    assert found.get("otlp") == "kafka_sink_otlp.plugin"


def test_plugin_manager_loads_the_entry_point() -> None:
    assert plugin_manager().get_plugin("otlp") is kafka_sink_otlp.plugin


def test_log_serializer_through_the_hook() -> None:
    serializer = plugin_manager().hook.kafka_sink_log_serializer(
        name="otlp", options={"service_name": "shop"}
    )
    record = logging.LogRecord("shop", logging.WARNING, "/srv/a.py", 7, "hi %s", ("you",), None)

    assert isinstance(serializer, OtlpLogSerializer)
    scope_logs = json.loads(serializer(record))["resourceLogs"][0]["scopeLogs"][0]
    assert scope_logs["scope"] == {"name": "shop"}
    assert scope_logs["logRecords"][0]["body"] == {"stringValue": "hi you"}
    assert scope_logs["logRecords"][0]["severityNumber"] == 13


def test_event_serializer_through_the_hook() -> None:
    serializer = plugin_manager().hook.kafka_sink_event_serializer(name="otlp", options={})

    assert isinstance(serializer, OtlpEventSerializer)
    log = json.loads(serializer({"event": "hi"}))["resourceLogs"][0]["scopeLogs"][0]
    assert log["logRecords"][0]["body"] == {"stringValue": "hi"}


def test_other_names_are_left_to_other_plugins() -> None:
    plugin = kafka_sink_otlp.plugin

    assert plugin.kafka_sink_log_serializer(name="json", options={}) is None
    assert plugin.kafka_sink_event_serializer(name="ecs", options={}) is None


def test_blocked_or_without_entry_points_there_is_no_otlp_serializer() -> None:
    for manager in (plugin_manager(block=["otlp"]), plugin_manager(entry_points=False)):
        assert manager.get_plugin("otlp") is None
        assert manager.hook.kafka_sink_log_serializer(name="otlp", options={}) is None


def test_bad_options_fail_when_the_serializer_is_built() -> None:
    hook = plugin_manager().hook

    with pytest.raises(InvalidArgumentError, match="service_nam"):
        hook.kafka_sink_log_serializer(name="otlp", options={"service_nam": "typo"})
    with pytest.raises(InvalidArgumentError, match="code_attributes"):
        hook.kafka_sink_event_serializer(name="otlp", options={"code_attributes": "new"})
