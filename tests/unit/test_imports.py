"""``import kafka_sink`` loads little, and a handler loads only what it needs.

What is loaded is checked here, in fresh interpreters; how long it takes is
measured by ``tests/bench/bench_import.py``, not by a timed test.
"""

from __future__ import annotations

import json

import pytest

import kafka_sink
from tests.child import run_python

# What ``import kafka_sink`` may load: the constants and the errors.
EAGER = {"kafka_sink", "kafka_sink.constants", "kafka_sink.errors", "kafka_sink.error_codes"}

# Modules a process that only logs to Kafka never needs.
NOT_FOR_A_HANDLER = {
    "kafka_sink.cli",
    "kafka_sink.demo",
    "kafka_sink.testing",
    "kafka_sink.net.fetcher",
    "kafka_sink.net.cluster",
    "kafka_sink.producer.sync",
    "kafka_sink.protocol.fetch",
    "kafka_sink.protocol.list_offsets",
    "kafka_sink.protocol.create_topics",
    "kafka_sink.integrations.metrics_exporter",
}


def loaded_after(code: str) -> set[str]:
    child = run_python(
        f"""
        import json, sys
        {code}
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("kafka_sink"))))
        """
    )
    assert child.returncode == 0, child.stderr
    return set(json.loads(child.stdout.splitlines()[-1]))


def test_import_kafka_sink_loads_only_the_errors_and_constants() -> None:
    assert loaded_after("import kafka_sink") <= EAGER


@pytest.mark.parametrize(
    "code",
    [
        "import kafka_sink; kafka_sink.KafkaHandler",
        "from kafka_sink import KafkaHandler",
        "import kafka_sink.integrations.handler",
        "import kafka_sink; kafka_sink.KafkaProcessor",
    ],
)
def test_a_handler_loads_neither_the_reader_nor_the_admin_api_nor_the_cli(code: str) -> None:
    loaded = loaded_after(code)
    assert "kafka_sink.producer.sink" in loaded
    assert not loaded & NOT_FOR_A_HANDLER


def test_the_reader_and_the_admin_api_load_when_used() -> None:
    loaded = loaded_after("from kafka_sink.net.fetcher import Fetcher")
    assert {"kafka_sink.protocol.fetch", "kafka_sink.protocol.list_offsets"} <= loaded
    assert "kafka_sink.protocol.create_topics" in loaded_after(
        "import kafka_sink; kafka_sink.Connection"
    )


def test_dictconfig_finds_the_handler_by_its_dotted_name() -> None:
    child = run_python(
        """
        import logging.config
        logging.config.dictConfig({
            "version": 1,
            "handlers": {"kafka": {"class": "kafka_sink.KafkaHandler", "topic": "logs",
                                   "bootstrap_servers": "kafka1:9092"}},
            "root": {"handlers": ["kafka"]},
        })
        (handler,) = logging.getLogger().handlers
        print(type(handler).__name__)
        handler.close(0.0)
        """
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.split()[-1] == "KafkaHandler"


def test_every_public_name_resolves() -> None:
    for name in kafka_sink.__all__:
        assert getattr(kafka_sink, name) is not None, name
    assert set(kafka_sink.__all__) <= set(dir(kafka_sink))
    child = run_python("from kafka_sink import *; print(Sink.__name__, KafkaHandler.__name__)")
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["Sink", "KafkaHandler"]


def test_submodules_are_reachable_as_attributes() -> None:
    child = run_python(
        "import kafka_sink; print(kafka_sink.hooks.plugin_manager.__name__, "
        "kafka_sink.metrics.Snapshot.__name__)"
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["plugin_manager", "Snapshot"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchThing'"):
        _ = kafka_sink.NoSuchThing
    assert not hasattr(kafka_sink, "no_such_module")
