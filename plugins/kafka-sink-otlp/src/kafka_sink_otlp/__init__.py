"""OpenTelemetry logs as OTLP/JSON for kafka_sink: ``serializer="otlp"``.

Installed, the plugin is found through the ``kafka_sink`` entry-point group;
a :class:`~kafka_sink.KafkaHandler` or :class:`~kafka_sink.KafkaProcessor`
built with ``serializer="otlp"`` then writes one OTLP/JSON ``LogsData``
document per record, which any OTLP/JSON reader takes as is (the
OpenTelemetry Collector's Kafka receiver with ``encoding: otlp_json``, for
instance)::

    handler = kafka_sink.KafkaHandler(
        "localhost:9092", topic="otlp_logs",
        serializer="otlp", serializer_options={"service_name": "shop"},
    )

No OpenTelemetry package is needed at run time. The serializers can also be
used directly::

    from kafka_sink_otlp import OtlpLogSerializer, OtlpOptions

    value = OtlpLogSerializer(OtlpOptions(service_name="shop"))(record)
"""

from kafka_sink_otlp.options import CodeAttributes, ExtraFields, OtlpOptions
from kafka_sink_otlp.serializer import OtlpEventSerializer, OtlpLogSerializer, severity_number

__version__ = "0.1.0"

__all__ = [
    "CodeAttributes",
    "ExtraFields",
    "OtlpEventSerializer",
    "OtlpLogSerializer",
    "OtlpOptions",
    "__version__",
    "severity_number",
]
