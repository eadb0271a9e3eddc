"""The events topic, provisioned idempotently (the `events_topic` asset; `bazaar up` too)."""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.errors import InvalidPartitionsError, TopicAlreadyExistsError

from orchestration.settings import TopicSettings


def ensure_topic(settings: TopicSettings) -> dict:
    """Create the events topic if missing (with its replication); raise its partitions, and set its
    retention, its timestamp type (LogAppendTime) and its min.insync.replicas, if they differ. Returns
    what it found and did. (An existing topic's replication is left as it is: changing it is a
    reassignment of its partitions, an operator's decision.)"""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000)
    # the broker stamps each record with its own append time: the time the sinks' watermark follows,
    # which no producer can set ahead
    want = {"retention.ms": str(settings.topic_retention_ms), "message.timestamp.type": "LogAppendTime",
            "min.insync.replicas": str(settings.topic_min_insync_replicas)}
    done = {"topic": settings.topic, "created": False, "partitions": settings.topic_partitions}
    try:
        try:
            admin.create_topics([NewTopic(settings.topic, settings.topic_partitions, settings.topic_replication,
                                          topic_configs=want)])
            done["created"] = True
            return done
        except TopicAlreadyExistsError:
            pass
        (meta,) = admin.describe_topics([settings.topic])
        have = len(meta["partitions"])
        if have < settings.topic_partitions:
            try:
                admin.create_partitions({settings.topic: NewPartitions(settings.topic_partitions)})
            except InvalidPartitionsError:
                # the broker holds that many already: the metadata just read was behind it (a topic
                # created a moment ago lists its partitions late), and a count at or under the
                # topic's own is the one request it refuses with this error
                pass
        done["partitions"] = max(have, settings.topic_partitions)
        # incremental (IncrementalAlterConfigs): the topic's other overrides stay as an operator set them
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, settings.topic, configs=want)])
        return done
    finally:
        admin.close()
