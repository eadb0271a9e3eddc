"""The code location's own settings, read from `BAZAAR_*` environment variables
(the engine's Redis and the sinks' launcher have theirs in `engine.settings` and
`spark_jobs.settings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_CONFIG = SettingsConfigDict(env_prefix="BAZAAR_", extra="ignore")


class TopicSettings(BaseSettings):
    model_config = _CONFIG

    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers.")
    topic: str = Field(default="events", description="The Kafka topic every event goes to.")
    topic_partitions: int = Field(default=3, description="Partitions of the topic.")
    topic_retention_ms: int = Field(default=7 * 24 * 3600 * 1000, description="Topic retention.ms.")
    topic_replication: int = Field(
        default=1, ge=1, description="Replicas of each partition of the topic (3 in the cluster shape).")
    topic_min_insync_replicas: int = Field(
        default=1, ge=1,
        description="min.insync.replicas of the topic: with the relay's acks=all, a write needs this many "
                    "replicas (2 in the cluster shape).")

    @model_validator(mode="after")
    def _writable(self) -> "TopicSettings":
        # more in-sync replicas required than there are replicas: every acks=all write would be refused
        if self.topic_min_insync_replicas > self.topic_replication:
            raise ValueError("BAZAAR_TOPIC_MIN_INSYNC_REPLICAS must not exceed BAZAAR_TOPIC_REPLICATION")
        return self


class TrinoSettings(BaseSettings):
    model_config = _CONFIG

    trino_host: str = Field(default="127.0.0.1", description="Trino coordinator host.")
    trino_port: int = Field(default=8080, description="Trino coordinator port.")
    trino_user: str = "bazaar"
    trino_catalog: str = "hive"
    database: str = Field(default="default", description="Hive database of the tables (Trino schema).")


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
