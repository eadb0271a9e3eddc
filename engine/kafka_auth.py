"""Who a Kafka client is, as each client library the project uses spells it.

Principals:
- `admin` (SASL/PLAIN): the brokers know it from their own configuration (no password on any
  command line, none stored in the cluster's metadata); a super user; it creates the topic, the
  SCRAM users and the ACLs (`orchestration.topic.ensure_topic`).
- `relay` (SCRAM-SHA-512): WRITE and DESCRIBE on the events topic, IDEMPOTENT_WRITE on the cluster.
- `sinks` (SCRAM-SHA-512): READ and DESCRIBE on the events topic, READ on the consumer groups Spark's
  Kafka source makes (prefix `spark-kafka-source-`).
A client without a password is anonymous (PLAINTEXT), which a stack with SASL refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

SCRAM = "SCRAM-SHA-512"
PLAIN = "PLAIN"


@dataclass(frozen=True)
class KafkaLogin:
    username: Optional[str] = None
    password: Optional[str] = None
    mechanism: str = SCRAM

    @property
    def protocol(self) -> str:
        return "SASL_PLAINTEXT" if self.password is not None else "PLAINTEXT"

    def kafka_python(self) -> dict:
        """Keyword arguments of kafka-python's clients."""
        if self.password is None:
            return {}
        return {"security_protocol": self.protocol, "sasl_mechanism": self.mechanism,
                "sasl_plain_username": self.username, "sasl_plain_password": self.password}

    def librdkafka(self) -> dict:
        """Configuration of confluent-kafka's (librdkafka's) clients."""
        if self.password is None:
            return {}
        return {"security.protocol": self.protocol, "sasl.mechanisms": self.mechanism,
                "sasl.username": self.username, "sasl.password": self.password}

    def spark_options(self) -> dict:
        """Options of Spark's Kafka source (`kafka.`-prefixed client settings; a JAAS line for the login)."""
        if self.password is None:
            return {}
        module = ("org.apache.kafka.common.security.scram.ScramLoginModule" if self.mechanism == SCRAM
                  else "org.apache.kafka.common.security.plain.PlainLoginModule")
        return {"kafka.security.protocol": self.protocol, "kafka.sasl.mechanism": self.mechanism,
                "kafka.sasl.jaas.config": f'{module} required username="{self.username}" '
                                          f'password="{self.password}";'}
