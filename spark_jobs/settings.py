"""The sinks' settings, read from `BAZAAR_*` environment variables.

`SinkSettings` is what a sink's driver reads; `LauncherSettings` is how the
sinks are started and watched in a deployment (the Dagster supervisor and
`bazaar up` use it).  Where tables and checkpoints live has no default: the
deployment says (`file://` on one machine, `hdfs://` in a cluster).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.kafka_auth import KafkaLogin


class SinkSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BAZAAR_", extra="ignore")

    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers.")
    topic: str = Field(default="events", description="The Kafka topic every event goes to.")
    metastore_uri: str = Field(default="thrift://127.0.0.1:9083", description="Hive Metastore thrift URI.")
    database: str = Field(default="default", description="Hive database of the tables (Trino schema).")
    warehouse_uri: str = Field(description="Where tables live (file://, hdfs://, s3a://).")
    checkpoint_uri: str = Field(description="Where the sinks keep their checkpoints.")
    sink_kafka_user: str = Field(default="sinks", description="The sinks' Kafka principal (SCRAM-SHA-512).")
    sink_kafka_password: Optional[SecretStr] = Field(
        default=None, description="The sinks' Kafka password; none: anonymous (PLAINTEXT).")
    spark_master: str = Field(default="local[*]", description="Spark master of the sinks.")
    spark_driver_memory: str = "1g"
    spark_driver_host: str = Field(default="127.0.0.1", description="Address the sinks' drivers bind to.")
    spark_cores_max: Optional[int] = Field(
        default=None, ge=1,
        description="Cores one sink may take from a Spark cluster (spark.cores.max): without a cap, the first "
                    "sink to start takes every core and the other waits.")
    spark_executor_memory: str = Field(default="1g", description="Memory of a sink's executor on a Spark cluster.")
    sink_trigger_seconds: float = Field(default=0.5, description="Micro-batch interval of the sinks.")
    sink_dedup_window: str = Field(
        default="1 hour", description="How long an event_id is remembered to drop a re-sent copy (time of arrival in Kafka)."
    )
    sink_max_clock_skew: str = Field(
        default="5 minutes", description="An event dated more than this ahead of its arrival in Kafka is flagged future_dated."
    )
    sink_max_offsets_per_trigger: Optional[int] = Field(
        default=None, description="Cap on Kafka records per micro-batch (none: all available)."
    )
    sink_metrics_port: int = Field(
        default=9465, ge=0, description="Port of the trades sink's `/metrics` (on `spark_driver_host`); the "
                                        "player_states sink's is the next one (0: none).")

    def kafka_login(self) -> KafkaLogin:
        pw = self.sink_kafka_password
        return KafkaLogin(self.sink_kafka_user, pw.get_secret_value() if pw else None)


class LauncherSettings(SinkSettings):
    sink_launcher: Literal["local", "service"] = Field(
        default="local",
        description="How the sinks' drivers run: `local` (processes this launcher starts on this machine) or "
                    "`service` (each a service of its own, run and restarted by the deployment's service manager).")
    sink_home: Path = Field(description="Each sink's status file (shared with the drivers for `service`); "
                                        "for `local`, also its pid and log.")
    sink_jars: str = Field(
        default="", description="Comma-separated jars for spark-submit (the Kafka connector and its dependencies)."
    )
    sink_local_fs_jar: str = Field(
        default="", description="Hadoop's NIO local file system jar (hadoop-bare-naked-local-fs), for a local master."
    )


class WarehouseSettings(BaseSettings):
    """How the warehouse ages: compaction of its days and how long it keeps them."""

    model_config = SettingsConfigDict(env_prefix="BAZAAR_", extra="ignore")

    warehouse_first_day: date = Field(
        default=date(2026, 1, 1), description="The first UTC day Dagster offers to compact (its day partitions).")
    compact_target_file_mb: int = Field(
        default=128, ge=1, description="Size a compacted day's files aim at (a day smaller than it is one file).")
    compact_grace_s: float = Field(
        default=900, ge=0, description="How long a compacted day's old files stay after the swap, so a query "
                                       "already running on them finishes.")
    compact_parallelism: int = Field(default=2, ge=1, description="Partitions compacted at once.")
    compact_spark_master: str = Field(default="local[*]", description="Spark master of the compaction job.")
    compact_driver_memory: str = Field(default="1g", description="Driver memory of the compaction job.")
    compact_nice: int = Field(
        default=10, ge=0, le=19, description="Niceness of the compaction job's processes on this machine: "
        "background work, it yields the cores to the sinks and the engine when they need them.")
    retention_days: dict[str, int] = Field(
        default_factory=dict,
        description='Days each table keeps, as JSON ({"trades": 400}); a table not named keeps every day.')
    quarantine_retention_days: int = Field(
        default=30, ge=0, description="Days quarantine keeps (by the day records arrived); 0: for ever.")

    @field_validator("retention_days")
    @classmethod
    def _whole_days(cls, days: dict[str, int]) -> dict[str, int]:
        short = {t: n for t, n in days.items() if n < 1}
        if short:
            raise ValueError(f"BAZAAR_RETENTION_DAYS keeps at least one day per table (leave a table out to keep "
                             f"every day): {short}")
        return days

    def retention_for(self, table: str) -> Optional[int]:
        """Days the table keeps, None for ever."""
        if table == "quarantine":
            return self.retention_days.get(table, self.quarantine_retention_days) or None
        return self.retention_days.get(table)
