"""The built-in plugins, each an ordinary plugin module."""
