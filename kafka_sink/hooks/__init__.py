"""Plugins: hook specifications, the plugin manager factory and the built-in plugins.

A plugin is a module or object with functions marked ``@kafka_sink.hookimpl``
whose names are those of :class:`~kafka_sink.hooks.specs.Specs`. Third-party
plugins are found through the ``kafka_sink`` entry-point group::

    [project.entry-points.kafka_sink]
    my_plugin = "my_package.plugin"
"""

from kafka_sink.hooks.manager import DEFAULT_PLUGINS, plugin_manager
from kafka_sink.hooks.specs import PROJECT_NAME, DeadLetter, Specs, hookimpl, hookspec

__all__ = [
    "DEFAULT_PLUGINS",
    "PROJECT_NAME",
    "DeadLetter",
    "Specs",
    "hookimpl",
    "hookspec",
    "plugin_manager",
]
