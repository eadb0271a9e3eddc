"""The code location's own settings, read from `BAZAAR_*` environment variables
(the engine's Redis and the sinks' launcher have theirs in `engine.settings` and
`spark_jobs.settings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.kafka_auth import PLAIN, KafkaLogin

_CONFIG = SettingsConfigDict(env_prefix="BAZAAR_", extra="ignore")


class TopicSettings(BaseSettings):
    model_config = _CONFIG

    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers.")
    topic: str = Field(default="events", description="The Kafka topic every event goes to.")
    topic_partitions: int = Field(default=3, description="Partitions of the topic.")
    topic_retention_ms: int = Field(default=7 * 24 * 3600 * 1000, description="Topic retention.ms.")
    topic_replication: int = Field(
        default=1, ge=1, description="Replicas of each partition of the topic (3 in the cluster shape).")
    kafka_admin_user: str = Field(default="admin", description="The stack's Kafka admin (SASL/PLAIN, a super user): "
                                                              "it creates the topic, the SCRAM users and the ACLs.")
    kafka_admin_password: Optional[SecretStr] = Field(default=None, description="The Kafka admin's password.")
    relay_kafka_user: str = Field(default="relay", description="The principal granted WRITE on the topic.")
    relay_kafka_password: Optional[SecretStr] = Field(default=None, description="Its SCRAM password, set by the admin.")
    sink_kafka_user: str = Field(default="sinks", description="The principal granted READ on the topic.")
    sink_kafka_password: Optional[SecretStr] = Field(default=None, description="Its SCRAM password, set by the admin.")
    topic_min_insync_replicas: int = Field(
        default=1, ge=1,
        description="min.insync.replicas of the topic: with the relay's acks=all, a write needs this many "
                    "replicas (2 in the cluster shape).")

    def kafka_login(self) -> KafkaLogin:
        pw = self.kafka_admin_password
        return KafkaLogin(self.kafka_admin_user, pw.get_secret_value() if pw else None, PLAIN)

    @model_validator(mode="after")
    def _writable(self) -> "TopicSettings":
        # more in-sync replicas required than there are replicas: every acks=all write would be refused
        if self.topic_min_insync_replicas > self.topic_replication:
            raise ValueError("BAZAAR_TOPIC_MIN_INSYNC_REPLICAS must not exceed BAZAAR_TOPIC_REPLICATION")
        return self


class TrinoSettings(BaseSettings):
    """Where Trino is and who Bazaar is there: the reader (the reports, the dashboard, the checks)
    and the warehouse's owner (the views; the sinks' DDL and compaction go through the metastore)."""

    model_config = _CONFIG

    trino_host: str = Field(default="127.0.0.1", description="Trino coordinator host.")
    trino_port: int = Field(default=8080, description="Trino coordinator port (HTTPS, unless "
                                                      "BAZAAR_TRINO_HTTP_SCHEME says http).")
    trino_http_scheme: Literal["https", "http"] = Field(
        default="https", description="https: Trino takes a password only over TLS.")
    trino_ca_file: Optional[Path] = Field(
        default=None, description="The CA certificate (PEM) Trino's certificate is checked against; none: the "
                                  "system's CAs.")
    trino_user: str = Field(default="reader", description="The read-only principal the reports query as.")
    trino_password: Optional[SecretStr] = Field(default=None, description="The reader's password.")
    trino_owner_user: str = Field(default="owner", description="The principal that owns the tables and views.")
    trino_owner_password: Optional[SecretStr] = Field(default=None, description="The owner's password.")
    trino_catalog: str = "hive"
    database: str = Field(default="default", description="Hive database of the tables (Trino schema).")

    def as_owner(self) -> "TrinoSettings":
        """The same Trino, as the warehouse's owner (views, partition repairs, the benchmarks' tables)."""
        if self.trino_owner_password is None and self.trino_password is not None:
            raise ValueError("BAZAAR_TRINO_OWNER_PASSWORD is not set: only the warehouse's owner may change it "
                             "(`bazaar credentials trino --owner` prints the local stack's)")
        return self.model_copy(update={"trino_user": self.trino_owner_user, "trino_password": self.trino_owner_password})


class ReportSettings(BaseSettings):
    model_config = _CONFIG

    reports_dir: Path = Field(description="Where report files are stored and served from.")
    keeper_dir: Optional[Path] = Field(
        default=None, description="Where the stack's keepers count each service's restarts (HOME/run): the reports "
                                  "service's `/metrics` shows them.")
    prometheus_url: Optional[str] = Field(
        default=None, description="The stack's Prometheus, whose API the dashboard (`/dashboard`) reads the "
                                  "pipeline's health from.")


class CheckSettings(BaseSettings):
    model_config = _CONFIG

    completeness_drain_s: float = Field(
        default=60, description="How long the completeness check lets the pipeline drain before it calls "
                                "an event the engine counted missing from the tables."
    )
