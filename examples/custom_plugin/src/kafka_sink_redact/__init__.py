"""kafka_sink_redact: a kafka_sink plugin (see :mod:`kafka_sink_redact.plugin`)."""
