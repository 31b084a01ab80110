"""Built-in hook implementations: metrics."""
