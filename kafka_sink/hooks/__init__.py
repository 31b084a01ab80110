"""kafka_sink internals."""
