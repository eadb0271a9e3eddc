"""Typed resources for every service the pipeline touches, one set per deployment.

`BAZAAR_DEPLOYMENT=local` (the default) builds them from the runtime settings
(`BAZAAR_*` variables with their defaults, as `bazaar up` sets them);
`cluster` reads every endpoint and secret from the environment through
`EnvVar`, so nothing secret is written in code or shown in the UI.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

import pandas as pd
from dagster import ConfigurableResource, EnvVar
from pydantic import SecretStr

from engine.db import make_store
from engine.settings import RedisSettings
from engine.store import Store
from orchestration import compaction, reports, warehouse
from orchestration.settings import ReportSettings, TopicSettings, TrinoSettings
from orchestration.topic import ensure_topic
from spark_jobs.launch import SinkLauncher, launcher_for
from spark_jobs.settings import LauncherSettings, WarehouseSettings


def _secret(value: Optional[SecretStr]) -> Optional[str]:
    return value.get_secret_value() if value is not None else None


def _resolved(value: Optional[str]) -> Optional[str]:
    """A secret field's value, refused while it is still an unresolved `EnvVar` (its variable's name would
    pass for the password): only a resource Dagster initialized for a run or sensor holds the value."""
    if isinstance(value, EnvVar):
        raise RuntimeError(f"the resource holds ${value.env_var_name} unresolved: use the resource Dagster "
                           "gives the run or sensor (or process_config_and_initialize())")
    return value


class RedisResource(ConfigurableResource):
    """The engine's Redis: its counters are the ground truth the tables are checked against."""

    url: str
    password: Optional[str] = None
    namespace: str = "bazaar"

    def store(self) -> Store:
        return make_store(RedisSettings(redis_url=self.url, redis_password=_resolved(self.password), namespace=self.namespace))


class KafkaResource(ConfigurableResource):
    bootstrap_servers: str
    topic: str = "events"
    partitions: int = 3
    retention_ms: int = 7 * 24 * 3600 * 1000
    replication: int = 1
    min_insync_replicas: int = 1
    # the admin logs in to provision the topic and sets the relay's and the sinks' passwords (none: a
    # broker without SASL)
    admin_user: str = "admin"
    admin_password: Optional[str] = None
    relay_user: str = "relay"
    relay_password: Optional[str] = None
    sink_user: str = "sinks"
    sink_password: Optional[str] = None

    @classmethod
    def of(cls, topic: TopicSettings, **fields) -> "KafkaResource":
        """The resource for `topic`; `fields` replace what they name (the cluster's `EnvVar`s)."""
        return cls(**{"bootstrap_servers": topic.kafka_bootstrap, "topic": topic.topic,
                      "partitions": topic.topic_partitions, "retention_ms": topic.topic_retention_ms,
                      "replication": topic.topic_replication, "min_insync_replicas": topic.topic_min_insync_replicas,
                      "admin_user": topic.kafka_admin_user, "admin_password": _secret(topic.kafka_admin_password),
                      "relay_user": topic.relay_kafka_user, "relay_password": _secret(topic.relay_kafka_password),
                      "sink_user": topic.sink_kafka_user, "sink_password": _secret(topic.sink_kafka_password),
                      **fields})

    def ensure_topic(self) -> dict:
        return ensure_topic(TopicSettings(kafka_bootstrap=self.bootstrap_servers, topic=self.topic,
                                          topic_partitions=self.partitions, topic_retention_ms=self.retention_ms,
                                          topic_replication=self.replication,
                                          topic_min_insync_replicas=self.min_insync_replicas,
                                          kafka_admin_user=self.admin_user, kafka_admin_password=_resolved(self.admin_password),
                                          relay_kafka_user=self.relay_user, relay_kafka_password=_resolved(self.relay_password),
                                          sink_kafka_user=self.sink_user, sink_kafka_password=_resolved(self.sink_password)))


class SparkSinksResource(ConfigurableResource):
    """The sinks' launcher of this deployment (`spark_jobs.launch`) and every setting it passes to
    the sinks, so a sink the supervisor restarts runs as the one `bazaar up` started."""

    launcher_name: str = "local"
    home: str
    spark_master: str = "local[*]"
    kafka_bootstrap: str
    topic: str = "events"
    metastore_uri: str
    warehouse_uri: str
    checkpoint_uri: str
    database: str = "default"
    driver_memory: str = "1g"
    cores_max: Optional[int] = None
    executor_memory: str = "1g"
    driver_host: str = "127.0.0.1"
    trigger_seconds: float = 0.5
    dedup_window: str = "1 hour"
    max_clock_skew: str = "5 minutes"
    max_offsets_per_trigger: Optional[int] = None
    jars: str = ""
    local_fs_jar: str = ""
    kafka_user: str = "sinks"
    kafka_password: Optional[str] = None  # the sinks' Kafka password, passed on to the sinks it starts

    @classmethod
    def of(cls, s: LauncherSettings, **endpoints) -> "SparkSinksResource":
        """From the sinks' settings; `endpoints` (EnvVars, in the cluster) take the place of theirs."""
        return cls(**{"launcher_name": s.sink_launcher, "home": str(s.sink_home), "spark_master": s.spark_master,
                      "kafka_bootstrap": s.kafka_bootstrap, "topic": s.topic, "metastore_uri": s.metastore_uri,
                      "warehouse_uri": s.warehouse_uri, "checkpoint_uri": s.checkpoint_uri, "database": s.database,
                      "driver_memory": s.spark_driver_memory, "driver_host": s.spark_driver_host,
                      "cores_max": s.spark_cores_max, "executor_memory": s.spark_executor_memory,
                      "trigger_seconds": s.sink_trigger_seconds, "dedup_window": s.sink_dedup_window,
                      "max_clock_skew": s.sink_max_clock_skew, "max_offsets_per_trigger": s.sink_max_offsets_per_trigger,
                      "jars": s.sink_jars, "local_fs_jar": s.sink_local_fs_jar, "kafka_user": s.sink_kafka_user,
                      "kafka_password": s.sink_kafka_password.get_secret_value() if s.sink_kafka_password else None,
                      **endpoints})

    def launcher(self) -> SinkLauncher:
        return launcher_for(self.settings())

    def settings(self) -> LauncherSettings:
        return LauncherSettings(
            sink_launcher=self.launcher_name, sink_home=self.home, spark_master=self.spark_master,
            kafka_bootstrap=self.kafka_bootstrap, topic=self.topic, metastore_uri=self.metastore_uri,
            warehouse_uri=self.warehouse_uri, checkpoint_uri=self.checkpoint_uri, database=self.database,
            spark_driver_memory=self.driver_memory, spark_driver_host=self.driver_host,
            spark_cores_max=self.cores_max, spark_executor_memory=self.executor_memory,
            sink_trigger_seconds=self.trigger_seconds, sink_dedup_window=self.dedup_window,
            sink_max_clock_skew=self.max_clock_skew, sink_max_offsets_per_trigger=self.max_offsets_per_trigger,
            sink_jars=self.jars, sink_local_fs_jar=self.local_fs_jar, sink_kafka_user=self.kafka_user,
            sink_kafka_password=_resolved(self.kafka_password))


class WarehouseJobsResource(ConfigurableResource):
    """Compaction and retention of the warehouse's days: a Spark job on this machine (`spark_jobs.compact`)
    with the sinks' endpoints."""

    target_file_mb: int = 128
    grace_s: float = 900
    parallelism: int = 2
    spark_master: str = "local[*]"
    driver_memory: str = "1g"
    nice: int = 10
    retention_days: dict[str, int] = {}
    quarantine_retention_days: int = 30

    @classmethod
    def of(cls, w: WarehouseSettings) -> "WarehouseJobsResource":
        return cls(target_file_mb=w.compact_target_file_mb, grace_s=w.compact_grace_s,
                   parallelism=w.compact_parallelism, spark_master=w.compact_spark_master,
                   driver_memory=w.compact_driver_memory, nice=w.compact_nice, retention_days=w.retention_days,
                   quarantine_retention_days=w.quarantine_retention_days)

    def settings(self) -> WarehouseSettings:
        return WarehouseSettings(
            compact_target_file_mb=self.target_file_mb, compact_grace_s=self.grace_s,
            compact_parallelism=self.parallelism, compact_spark_master=self.spark_master,
            compact_driver_memory=self.driver_memory, compact_nice=self.nice, retention_days=self.retention_days,
            quarantine_retention_days=self.quarantine_retention_days)

    def run(self, sinks: "SparkSinksResource", args: list[str], log) -> list[dict]:
        return compaction.run(sinks.settings(), self.settings(), args, log)


class ReportStoreResource(ConfigurableResource):
    """Where report files go, for the download service to serve."""

    reports_dir: str

    def store(self, name: str, frame: pd.DataFrame, seconds: Optional[float] = None) -> dict:
        return reports.store(Path(self.reports_dir), name, frame, seconds)

    def record_job(self, job: str, doc: dict) -> None:
        reports.record_job(Path(self.reports_dir), job, doc)

    def folder(self, name: str) -> Path:
        return reports.report_dir(Path(self.reports_dir), name)


class TrinoResource(ConfigurableResource):
    """Trino (or Presto) through PyHive; runs the query files in sql/."""

    host: str
    port: int
    http_scheme: str = "https"
    ca_file: Optional[str] = None
    user: str = "reader"
    password: Optional[str] = None
    owner_user: str = "owner"
    owner_password: Optional[str] = None
    catalog: str = "hive"
    database: str = "default"

    @classmethod
    def of(cls, trino: TrinoSettings, **fields) -> "TrinoResource":
        """The resource for `trino`; `fields` replace what they name (the cluster's `EnvVar`s)."""
        return cls(**{"host": trino.trino_host, "port": trino.trino_port, "http_scheme": trino.trino_http_scheme,
                      "ca_file": str(trino.trino_ca_file) if trino.trino_ca_file else None,
                      "user": trino.trino_user, "password": _secret(trino.trino_password),
                      "owner_user": trino.trino_owner_user, "owner_password": _secret(trino.trino_owner_password),
                      "catalog": trino.trino_catalog, "database": trino.database, **fields})

    @property
    def settings(self) -> TrinoSettings:
        return TrinoSettings(trino_host=self.host, trino_port=self.port, trino_http_scheme=self.http_scheme,
                             trino_ca_file=self.ca_file, trino_user=self.user, trino_password=_resolved(self.password),
                             trino_owner_user=self.owner_user, trino_owner_password=_resolved(self.owner_password),
                             trino_catalog=self.catalog, database=self.database)

    def query(self, name: str, **params) -> pd.DataFrame:
        return warehouse.query(self.settings, name, **params)

    def execute(self, statement: str) -> pd.DataFrame:
        return warehouse.execute(self.settings, statement)


def _secrets(redis: RedisSettings, topic: TopicSettings, sinks: LauncherSettings, trino: TrinoSettings,
             hold: Callable[[str, SecretStr], object]) -> dict[str, dict]:
    """Per resource, its secret fields as `hold(variable, value)` holds them, for the secrets set: the one
    list of which field takes which `BAZAAR_*` variable."""
    fields = {"redis": [("password", "BAZAAR_REDIS_PASSWORD", redis.redis_password)],
              "kafka": [("admin_password", "BAZAAR_KAFKA_ADMIN_PASSWORD", topic.kafka_admin_password),
                        ("relay_password", "BAZAAR_RELAY_KAFKA_PASSWORD", topic.relay_kafka_password),
                        ("sink_password", "BAZAAR_SINK_KAFKA_PASSWORD", topic.sink_kafka_password)],
              "sinks": [("kafka_password", "BAZAAR_SINK_KAFKA_PASSWORD", sinks.sink_kafka_password)],
              "trino": [("password", "BAZAAR_TRINO_PASSWORD", trino.trino_password),
                        ("owner_password", "BAZAAR_TRINO_OWNER_PASSWORD", trino.trino_owner_password)]}
    return {resource: {field: hold(name, value) for field, name, value in secrets if value is not None}
            for resource, secrets in fields.items()}


def _from_this_process(name: str, value: SecretStr):
    """A secret as the local deployment holds it: the variable it came from when this process has it with
    that value (the UI then shows the variable's name, never the value), else the value itself."""
    plain = value.get_secret_value()
    return EnvVar(name) if os.environ.get(name) == plain else plain


def local_resources(redis: Optional[RedisSettings] = None, topic: Optional[TopicSettings] = None,
                    sinks: Optional[LauncherSettings] = None, trino: Optional[TrinoSettings] = None,
                    report_settings: Optional[ReportSettings] = None,
                    warehouse_settings: Optional[WarehouseSettings] = None) -> dict:
    """Resources from runtime settings; each read from the environment when not given. A secret that came
    from this process' environment is held as its `EnvVar`, so the UI never shows it."""
    redis, topic, sinks = redis or RedisSettings(), topic or TopicSettings(), sinks or LauncherSettings()
    trino, report_settings = trino or TrinoSettings(), report_settings or ReportSettings()
    secret = _secrets(redis, topic, sinks, trino, _from_this_process)
    return {
        "redis": RedisResource(url=redis.redis_url, namespace=redis.namespace, **secret["redis"]),
        "kafka": KafkaResource.of(topic, **secret["kafka"]),
        "sinks": SparkSinksResource.of(sinks, **secret["sinks"]),
        "warehouse_jobs": WarehouseJobsResource.of(warehouse_settings or WarehouseSettings()),
        "report_store": ReportStoreResource(reports_dir=str(report_settings.reports_dir)),
        "trino": TrinoResource.of(trino, **secret["trino"]),
    }


def cluster_resources() -> dict:
    """Endpoints, and the Redis, Trino and Kafka passwords, as `EnvVar`s (the UI shows the variable, not its
    value; each must be set); names and sizes from the same settings as locally."""
    redis, topic, sinks, trino = RedisSettings(), TopicSettings(), LauncherSettings(), TrinoSettings()
    secret = _secrets(redis, topic, sinks, trino, lambda name, _: EnvVar(name))
    return {
        "redis": RedisResource(url=EnvVar("BAZAAR_REDIS_URL"), namespace=redis.namespace, **secret["redis"]),
        "kafka": KafkaResource.of(topic, bootstrap_servers=EnvVar("BAZAAR_KAFKA_BOOTSTRAP"), **secret["kafka"]),
        "sinks": SparkSinksResource.of(sinks, home=EnvVar("BAZAAR_SINK_HOME"), spark_master=EnvVar("BAZAAR_SPARK_MASTER"),
                                       **secret["sinks"],
                                       kafka_bootstrap=EnvVar("BAZAAR_KAFKA_BOOTSTRAP"),
                                       metastore_uri=EnvVar("BAZAAR_METASTORE_URI"),
                                       warehouse_uri=EnvVar("BAZAAR_WAREHOUSE_URI"),
                                       checkpoint_uri=EnvVar("BAZAAR_CHECKPOINT_URI")),
        "warehouse_jobs": WarehouseJobsResource.of(WarehouseSettings()),
        "report_store": ReportStoreResource(reports_dir=EnvVar("BAZAAR_REPORTS_DIR")),
        "trino": TrinoResource.of(trino, host=EnvVar("BAZAAR_TRINO_HOST"), port=EnvVar.int("BAZAAR_TRINO_PORT"),
                                  **secret["trino"]),
    }


def resources_for(deployment: str) -> dict:
    if deployment == "local":
        return local_resources()
    if deployment == "cluster":
        return cluster_resources()
    raise ValueError(f"BAZAAR_DEPLOYMENT must be 'local' or 'cluster', not {deployment!r}")
