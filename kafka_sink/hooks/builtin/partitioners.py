"""Built-in hook implementations: partitioners."""
