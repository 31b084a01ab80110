"""Built-in hook implementations: records."""
