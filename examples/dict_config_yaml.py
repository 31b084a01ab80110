"""``logging.config.dictConfig`` from a YAML file (``logging.yaml``, next to this script).

    python3 examples/dict_config_yaml.py        # needs PyYAML: pip install pyyaml

Every argument of :class:`kafka_sink.KafkaHandler` is a key of the handler's
entry. The file names production brokers; the script points
``bootstrap_servers`` at its own cluster before it configures logging, as an
application would from its environment. Records are JSON, keyed by
``user_id``, with a ``request_id`` header and a static ``service`` field.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from pathlib import Path

import yaml
from _cluster import example_cluster, headers

CONFIG = Path(__file__).with_name("logging.yaml")


def main() -> int:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    topic = config["handlers"]["kafka"]["topic"]
    with example_cluster(topic) as cluster:
        config["handlers"]["kafka"]["bootstrap_servers"] = cluster.bootstrap_servers
        logging.config.dictConfig(config)

        log = logging.getLogger("billing.invoices")
        for number, user in enumerate(["u-1", "u-2", "u-1"], start=1):
            log.info(
                "invoice %d sent", number, extra={"user_id": user, "request_id": f"r-{number}"}
            )
        log.warning("card expires soon", extra={"user_id": "u-2", "request_id": "r-4"})

        logging.shutdown()
        records = cluster.read(topic)

    print(f"\nread back from {topic}:")
    values = [json.loads(record.value or b"") for record in records]
    for record, value in zip(records, values, strict=True):
        print(f"  key {record.key!r} headers {headers(record)}")
        print(f"    service={value['service']} {value['level']} {value['message']}")
    shaped = all(
        value["service"] == "billing" and "request_id" in headers(record)
        for record, value in zip(records, values, strict=True)
    )
    print(f"{len(records)} of 4 records read back, each with the service field: {shaped}")
    return 0 if len(records) == 4 and shaped else 1


if __name__ == "__main__":
    sys.exit(main())
