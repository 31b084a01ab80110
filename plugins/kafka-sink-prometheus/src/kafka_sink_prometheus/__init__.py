"""The Prometheus text exposition format for kafka_sink's metrics: ``encoding="prometheus"``.

Installed, the plugin is found through the ``kafka_sink`` entry-point group;
a :class:`~kafka_sink.MetricsExporter` built with ``encoding="prometheus"``
then writes each record's value in the text format Prometheus scrapes, so a
consumer of the topic can hand it to any Prometheus text parser (or a
Pushgateway) as it is::

    exporter = kafka_sink.MetricsExporter(
        registry, "metrics", "localhost:9092", encoding="prometheus",
        encoding_options={"timestamps": False},
    )

The encoder can also be used directly::

    from kafka_sink_prometheus import encode_text

    text = encode_text(kafka_sink.metrics.Snapshot(now_ms, tuple(registry.collect())))
"""

from kafka_sink_prometheus.exposition import (
    CONTENT_TYPE,
    PrometheusEncoder,
    PrometheusOptions,
    encode_text,
)

__version__ = "0.1.0"

__all__ = ["CONTENT_TYPE", "PrometheusEncoder", "PrometheusOptions", "__version__", "encode_text"]
