"""Built-in hook implementations: serializers."""
