"""kafka-python's admin client, producer and consumer against one Strata.

Usage: admin_roundtrip.py KAFKA_ADDR ADMIN_ADDR
Exits non-zero (an AssertionError or a client error) on the first wrong outcome.
"""

import json
import sys
import urllib.error
import urllib.request

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import TopicAlreadyExistsError

bootstrap, admin_addr = sys.argv[1], sys.argv[2]
topic = "py-admin"


def rest_topic(name):
    try:
        with urllib.request.urlopen(f"http://{admin_addr}/v1/topics/{name}") as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        assert e.code == 404, e
        return None


def topic_configs(admin):
    resource = ConfigResource(ConfigResourceType.TOPIC, topic)
    described = admin.describe_configs([resource], config_filter="all")
    return described["topic"][topic]


admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="strata-admin-test")

created = admin.create_topics(
    {topic: {"num_partitions": 2, "replication_factor": 1, "configs": {"retention.ms": "3600000"}}}
)
assert created["topics"][0]["error_code"] == 0, created
assert rest_topic(topic)["partitions"] == 2
assert rest_topic(topic)["retention_ms"] == 3600000
try:
    admin.create_topics({topic: {"num_partitions": 2}})
    raise AssertionError("a second create of the same topic succeeded")
except TopicAlreadyExistsError:
    pass
assert topic in admin.list_topics()

configs = topic_configs(admin)
assert configs["retention.ms"]["value"] == "3600000", configs
assert configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG", configs
assert configs["retention.bytes"]["config_source"] == "DEFAULT_CONFIG", configs
assert configs["cleanup.policy"]["value"] == "delete", configs

# The legacy full-replace AlterConfigs, then the incremental API.
result = admin.alter_configs(
    [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "120000"})],
    incremental=False,
)
assert result["topic"][topic] == "OK", result
assert topic_configs(admin)["retention.ms"]["value"] == "120000"
assert rest_topic(topic)["retention_ms"] == 120000
result = admin.alter_configs(
    [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.bytes": "1048576"})]
)
assert result["topic"][topic] == "OK", result
assert rest_topic(topic)["retention_bytes"] == 1048576
assert rest_topic(topic)["retention_ms"] == 120000

# Records through the Kafka protocol, both ways.
producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
for i in range(5):
    producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % 2)
producer.flush()
producer.close()
consumer = KafkaConsumer(
    topic,
    bootstrap_servers=bootstrap,
    auto_offset_reset="earliest",
    enable_auto_commit=False,
    consumer_timeout_ms=10000,
)
values = sorted(m.value.decode() for _, m in zip(range(5), consumer))
consumer.close()
assert values == [f"v{i}" for i in range(5)], values

admin.delete_topics([topic])
assert rest_topic(topic) is None
assert topic not in admin.list_topics()
admin.close()
print("admin roundtrip ok")
