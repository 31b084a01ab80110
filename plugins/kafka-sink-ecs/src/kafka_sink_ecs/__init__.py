"""Elastic Common Schema (ECS) JSON for kafka_sink: ``serializer="ecs"``.

Installed, the plugin is found through the ``kafka_sink`` entry-point group;
a :class:`~kafka_sink.KafkaHandler` or :class:`~kafka_sink.KafkaProcessor`
built with ``serializer="ecs"`` then writes one ECS logging document per
record, which Filebeat, Logstash or an Elasticsearch ingest pipeline reading
the topic can index as is::

    handler = kafka_sink.KafkaHandler(
        "localhost:9092", topic="logs",
        serializer="ecs", serializer_options={"service_name": "shop"},
    )

The serializers can also be used directly::

    from kafka_sink_ecs import EcsLogSerializer, EcsOptions

    value = EcsLogSerializer(EcsOptions(service_name="shop"))(record)
"""

from kafka_sink_ecs.options import DEFAULT_ECS_VERSION, EcsOptions, ExtraFields
from kafka_sink_ecs.serializer import EcsEventSerializer, EcsLogSerializer

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_ECS_VERSION",
    "EcsEventSerializer",
    "EcsLogSerializer",
    "EcsOptions",
    "ExtraFields",
    "__version__",
]
