"""The events topic, provisioned idempotently (the `events_topic` asset; `bazaar up` too)."""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import (ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ConfigResource,
                         ConfigResourceType, NewPartitions, NewTopic, ResourcePattern, ResourceType, ScramMechanism,
                         UserScramCredentialUpsertion)
from kafka.errors import InvalidPartitionsError, TopicAlreadyExistsError

from orchestration.settings import TopicSettings

SCRAM_ITERATIONS = 8192
SPARK_GROUPS = "spark-kafka-source-"  # the prefix of the group ids Spark's Kafka source makes


def ensure_topic(settings: TopicSettings) -> dict:
    """Create the events topic if missing (with its replication); raise its partitions, and set its
    retention, its timestamp type (LogAppendTime) and its min.insync.replicas, if they differ. Returns
    what it found and did. (An existing topic's replication is left as it is: changing it is a
    reassignment of its partitions, an operator's decision.)"""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000,
                             **settings.kafka_login().kafka_python())
    # the broker stamps each record with its own append time: the time the sinks' watermark follows,
    # which no producer can set ahead
    want = {"retention.ms": str(settings.topic_retention_ms), "message.timestamp.type": "LogAppendTime",
            "min.insync.replicas": str(settings.topic_min_insync_replicas)}
    done = {"topic": settings.topic, "created": False, "partitions": settings.topic_partitions}
    try:
        done["principals"] = ensure_principals(admin, settings)
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


def ensure_principals(admin: KafkaAdminClient, settings: TopicSettings) -> list[str]:
    """The relay's and the sinks' SCRAM users (with the passwords `settings` holds) and their ACLs on
    the topic: the relay writes it, the sinks read it (and the consumer groups Spark's Kafka source
    names for itself).  Idempotent: an upsert and ACLs that exist already.  Returns the users set."""
    users = [(settings.relay_kafka_user, settings.relay_kafka_password),
             (settings.sink_kafka_user, settings.sink_kafka_password)]
    upserts = [UserScramCredentialUpsertion(user, ScramMechanism.SCRAM_SHA_512, pw.get_secret_value(),
                                            iterations=SCRAM_ITERATIONS)
               for user, pw in users if pw is not None]
    if not upserts:  # a broker without SASL: nothing to grant
        return []
    admin.alter_user_scram_credentials(upserts)
    topic = ResourcePattern(ResourceType.TOPIC, settings.topic)
    allow = lambda user, op, pattern: ACL(f"User:{user}", "*", op, ACLPermissionType.ALLOW, pattern)  # noqa: E731
    relay, sinks = settings.relay_kafka_user, settings.sink_kafka_user
    admin.create_acls([
        allow(relay, ACLOperation.WRITE, topic), allow(relay, ACLOperation.DESCRIBE, topic),
        allow(relay, ACLOperation.IDEMPOTENT_WRITE, ResourcePattern(ResourceType.CLUSTER, "kafka-cluster")),
        allow(sinks, ACLOperation.READ, topic), allow(sinks, ACLOperation.DESCRIBE, topic),
        allow(sinks, ACLOperation.READ, ResourcePattern(ResourceType.GROUP, SPARK_GROUPS, ACLResourcePatternType.PREFIXED)),
    ])
    return [u.user for u in upserts]
