"""The plugin manager factory.

Nothing is registered at import time: each handler, processor or exporter
asks :func:`plugin_manager` for a manager, calls the factory hooks once and
keeps the plain callables they return. Users can therefore block a built-in
plugin, or add their own, per handler.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

import pluggy

from kafka_sink.errors import InvalidArgumentError
from kafka_sink.hooks.specs import PROJECT_NAME, Specs

__all__ = ["DEFAULT_PLUGINS", "plugin_manager"]

#: The built-in plugins, registered under these names (modules that implement
#: hooks like any third-party plugin). Registered first, so every other
#: plugin is called before them and can override them.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "kafka_sink.hooks.builtin.serializers",
    "kafka_sink.hooks.builtin.partitioners",
    "kafka_sink.hooks.builtin.records",
    "kafka_sink.hooks.builtin.metrics",
)


def plugin_manager(
    plugins: Iterable[object] = (),
    *,
    block: Iterable[str] = (),
    entry_points: bool = True,
) -> pluggy.PluginManager:
    """Build a plugin manager with the built-in plugins, entry points and ``plugins``.

    ``block`` names plugins that must not be registered: a built-in module
    name from :data:`DEFAULT_PLUGINS` or an entry-point name. Plugins from
    the ``kafka_sink`` entry-point group are loaded unless ``entry_points``
    is False; ``plugins`` (modules, classes or instances with hook
    implementations) are registered last, so they are called first.

    Example::

        manager = plugin_manager([my_plugin], block=["kafka_sink.hooks.builtin.serializers"])
    """
    blocked = _names(block, "block")
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(Specs)
    for name in blocked:
        manager.set_blocked(name)
    for module_name in DEFAULT_PLUGINS:
        if module_name not in blocked:
            manager.register(importlib.import_module(module_name), name=module_name)
    if entry_points:
        manager.load_setuptools_entrypoints(PROJECT_NAME)
    if isinstance(plugins, str | bytes):
        raise InvalidArgumentError("plugins", "must be an iterable of plugin objects, not a string")
    for plugin in plugins:
        if isinstance(plugin, str):
            plugin = importlib.import_module(plugin)  # noqa: PLW2901 - a module named by string
        # Naming an installed plugin again (it is also found through its entry
        # point) asks for what is already there: not an error.
        if not manager.is_registered(plugin):
            manager.register(plugin)
    return manager


def _names(values: Iterable[str], argument: str) -> frozenset[str]:
    if isinstance(values, str | bytes):
        raise InvalidArgumentError(argument, "must be an iterable of names, not a string")
    names = frozenset(values)
    for name in names:
        if not isinstance(name, str):
            raise InvalidArgumentError(argument, f"must hold plugin names (str), got {name!r}")
    return names
