"""One settings object for every part of Bazaar, read from the environment.

Every endpoint is configurable (prefix `BAZAAR_`, e.g. `BAZAAR_REDIS_URL`), so
the same code runs on the local stack and against a cluster.  Secrets have no
defaults: a password comes from the environment or is absent.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Optional

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BAZAAR_", extra="ignore")

    home: Path = Field(
        default=PROJECT_ROOT / ".bazaar",
        description="Folder for the local stack's configs, logs, pids and data.",
    )
    cache: Path = Field(
        default=Path.home() / ".cache" / "bazaar",
        description="Downloaded and built artifacts (Kafka and Trino jars), shared by every home.",
    )
    maven_repo: Path = Field(
        default=Path.home() / ".m2" / "repository", description="Maven's local repository (download cache)."
    )
    host: str = Field(default="127.0.0.1", description="Address the local services bind to.")

    redis_port: int = 6379
    redis_url: Optional[str] = Field(
        default=None, description="Redis URL; defaults to the local stack's redis on redis_port."
    )
    redis_password: Optional[SecretStr] = Field(
        default=None, description="Redis password, if the server requires one (never logged)."
    )
    namespace: str = Field(default="bazaar", description="Prefix of every Redis key of the engine.")

    engine_port: int = 5000
    engine_workers: int = Field(default=4, description="gunicorn worker processes.")
    max_body_bytes: int = Field(default=64 * 1024, description="Larger request bodies get 413.")

    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_version: str = Field(default="4.1.1", description="org.apache.kafka:kafka_2.13 version.")
    kafka_heap: str = "512m"
    kafka_bootstrap: Optional[str] = Field(
        default=None, description="Kafka bootstrap servers; defaults to the local broker on kafka_port."
    )
    topic: str = Field(default="events", description="The Kafka topic every event goes to.")
    topic_partitions: int = 3
    topic_retention_ms: int = Field(default=7 * 24 * 3600 * 1000, description="Topic retention.ms.")

    relay_consumer: str = Field(
        default="relay-1", description="The relay's consumer name; a restarted relay resumes its own pending entries."
    )
    relay_batch: int = Field(default=2000, description="Outbox entries the relay moves per batch.")
    relay_claim_idle_ms: int = Field(
        default=30_000, description="Entries another relay left pending this long are claimed and re-sent."
    )

    metastore_port: int = 9083
    metastore_heap: str = "512m"
    metastore_uri: Optional[str] = Field(
        default=None, description="Hive Metastore thrift URI; defaults to the local metastore."
    )
    database: str = Field(default="default", description="Hive database of the tables (Trino schema).")
    warehouse_uri: Optional[str] = Field(
        default=None, description="Where tables live (file://, hdfs://, s3a://); defaults to HOME/warehouse."
    )

    spark_master: str = Field(default="local[*]", description="Spark master of the sinks.")
    spark_driver_memory: str = "1g"
    sink_trigger_seconds: float = Field(default=0.5, description="Micro-batch interval of the sinks.")
    sink_dedup_window: str = Field(
        default="1 hour", description="How long an event_id is remembered to drop a re-sent copy (event time)."
    )
    sink_max_offsets_per_trigger: Optional[int] = Field(
        default=None, description="Cap on Kafka records per micro-batch (none: all available)."
    )
    checkpoint_uri: Optional[str] = Field(
        default=None, description="Where the sinks keep their checkpoints; defaults to HOME/checkpoints."
    )

    dagster_port: int = 3000
    reports_port: int = 5050

    trino_port: int = 8080
    trino_version: str = Field(default="476", description="io.trino:trino-server version (Maven Central).")
    trino_heap: str = Field(default="2G", description="Trino's JVM heap (-Xmx).")
    trino_query_memory: str = Field(
        default="1GB", description="Memory one query may hold (query.max-memory[-per-node]); beyond, it spills to disk."
    )
    trino_java_home: Optional[Path] = Field(
        default=None, description="JDK for Trino (24 or newer); found under /usr/lib/jvm when unset."
    )
    trino_host: Optional[str] = Field(default=None, description="Trino coordinator host; defaults to host.")
    trino_user: str = "bazaar"
    trino_catalog: str = "hive"

    @property
    def effective_kafka_bootstrap(self) -> str:
        return self.kafka_bootstrap or f"{self.host}:{self.kafka_port}"

    @property
    def effective_metastore_uri(self) -> str:
        return self.metastore_uri or f"thrift://{self.host}:{self.metastore_port}"

    @property
    def effective_warehouse_uri(self) -> str:
        return self.warehouse_uri or (Path(self.home).resolve() / "warehouse").as_uri()

    @property
    def effective_checkpoint_uri(self) -> str:
        return self.checkpoint_uri or (Path(self.home).resolve() / "checkpoints").as_uri()

    @property
    def effective_trino_host(self) -> str:
        return self.trino_host or self.host

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or f"redis://{self.host}:{self.redis_port}/0"

    @property
    def engine_url(self) -> str:
        return f"http://{self.host}:{self.engine_port}"

    def to_env(self) -> dict[str, str]:
        """These settings as BAZAAR_* variables, so a child process sees the same configuration."""
        env = {}
        for name, value in self.model_dump(exclude_none=True).items():
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"BAZAAR_{name.upper()}"] = str(value)
        return env


@cache
def get_settings() -> Settings:
    return Settings()
