"""Typed resources for every service the pipeline touches, one set per deployment.

`BAZAAR_DEPLOYMENT=local` (the default) builds them from the runtime settings
(`BAZAAR_*` variables with their defaults, as `bazaar up` sets them);
`cluster` reads every endpoint and secret from the environment through
`EnvVar`, so nothing secret is written in code or shown in the UI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
from dagster import ConfigurableResource, EnvVar

from engine.db import make_store
from engine.settings import RedisSettings
from engine.store import Store
from orchestration import reports, warehouse
from orchestration.settings import ReportSettings, TopicSettings, TrinoSettings
from orchestration.topic import ensure_topic
from spark_jobs.launch import SinkLauncher, launcher_for
from spark_jobs.settings import LauncherSettings


class RedisResource(ConfigurableResource):
    """The engine's Redis: its counters are the ground truth the tables are checked against."""

    url: str
    password: Optional[str] = None
    namespace: str = "bazaar"

    def store(self) -> Store:
        return make_store(RedisSettings(redis_url=self.url, redis_password=self.password, namespace=self.namespace))


class KafkaResource(ConfigurableResource):
    bootstrap_servers: str
    topic: str = "events"
    partitions: int = 3
    retention_ms: int = 7 * 24 * 3600 * 1000

    def ensure_topic(self) -> dict:
        return ensure_topic(TopicSettings(kafka_bootstrap=self.bootstrap_servers, topic=self.topic,
                                          topic_partitions=self.partitions, topic_retention_ms=self.retention_ms))


class SparkSinksResource(ConfigurableResource):
    """The sinks' launcher of this deployment (`spark_jobs.launch`) and what it passes to the sinks."""

    launcher_name: str = "local"
    home: str
    spark_master: str = "local[*]"
    kafka_bootstrap: str
    topic: str = "events"
    metastore_uri: str
    warehouse_uri: str
    checkpoint_uri: str
    database: str = "default"
    jars: str = ""
    local_fs_jar: str = ""

    def launcher(self) -> SinkLauncher:
        return launcher_for(LauncherSettings(
            sink_launcher=self.launcher_name, sink_home=self.home, spark_master=self.spark_master,
            kafka_bootstrap=self.kafka_bootstrap, topic=self.topic, metastore_uri=self.metastore_uri,
            warehouse_uri=self.warehouse_uri, checkpoint_uri=self.checkpoint_uri, database=self.database,
            sink_jars=self.jars, sink_local_fs_jar=self.local_fs_jar))


class ReportStoreResource(ConfigurableResource):
    """Where report files go, for the download service to serve."""

    reports_dir: str

    def store(self, name: str, frame: pd.DataFrame) -> dict:
        return reports.store(Path(self.reports_dir), name, frame)

    def folder(self, name: str) -> Path:
        return reports.report_dir(Path(self.reports_dir), name)


class TrinoResource(ConfigurableResource):
    """Trino (or Presto) through PyHive; runs the query files in sql/."""

    host: str
    port: int
    user: str = "bazaar"
    catalog: str = "hive"
    database: str = "default"

    @property
    def settings(self) -> TrinoSettings:
        return TrinoSettings(trino_host=self.host, trino_port=self.port, trino_user=self.user,
                             trino_catalog=self.catalog, database=self.database)

    def query(self, name: str, **params) -> pd.DataFrame:
        return warehouse.query(self.settings, name, **params)

    def execute(self, statement: str) -> pd.DataFrame:
        return warehouse.execute(self.settings, statement)


def local_resources(redis: Optional[RedisSettings] = None, topic: Optional[TopicSettings] = None,
                    sinks: Optional[LauncherSettings] = None, trino: Optional[TrinoSettings] = None,
                    report_settings: Optional[ReportSettings] = None) -> dict:
    """Resources from runtime settings; each read from the environment when not given."""
    redis, topic, sinks = redis or RedisSettings(), topic or TopicSettings(), sinks or LauncherSettings()
    trino, report_settings = trino or TrinoSettings(), report_settings or ReportSettings()
    pw = redis.redis_password.get_secret_value() if redis.redis_password else None
    return {
        "redis": RedisResource(url=redis.redis_url, password=pw, namespace=redis.namespace),
        "kafka": KafkaResource(bootstrap_servers=topic.kafka_bootstrap, topic=topic.topic,
                               partitions=topic.topic_partitions, retention_ms=topic.topic_retention_ms),
        "sinks": SparkSinksResource(launcher_name=sinks.sink_launcher, home=str(sinks.sink_home),
                                    spark_master=sinks.spark_master, kafka_bootstrap=sinks.kafka_bootstrap,
                                    topic=sinks.topic, metastore_uri=sinks.metastore_uri,
                                    warehouse_uri=sinks.warehouse_uri, checkpoint_uri=sinks.checkpoint_uri,
                                    database=sinks.database, jars=sinks.sink_jars, local_fs_jar=sinks.sink_local_fs_jar),
        "report_store": ReportStoreResource(reports_dir=str(report_settings.reports_dir)),
        "trino": TrinoResource(host=trino.trino_host, port=trino.trino_port, user=trino.trino_user,
                               catalog=trino.trino_catalog, database=trino.database),
    }


def cluster_resources() -> dict:
    """Endpoints and the Redis password as `EnvVar`s (the UI shows the variable, not its value; each
    must be set); names and sizes from the same settings as locally."""
    redis, topic, sinks, trino = RedisSettings(), TopicSettings(), LauncherSettings(), TrinoSettings()
    password = {"password": EnvVar("BAZAAR_REDIS_PASSWORD")} if redis.redis_password else {}
    return {
        "redis": RedisResource(url=EnvVar("BAZAAR_REDIS_URL"), namespace=redis.namespace, **password),
        "kafka": KafkaResource(bootstrap_servers=EnvVar("BAZAAR_KAFKA_BOOTSTRAP"), topic=topic.topic,
                               partitions=topic.topic_partitions, retention_ms=topic.topic_retention_ms),
        "sinks": SparkSinksResource(launcher_name=sinks.sink_launcher, home=EnvVar("BAZAAR_SINK_HOME"),
                                    spark_master=EnvVar("BAZAAR_SPARK_MASTER"),
                                    kafka_bootstrap=EnvVar("BAZAAR_KAFKA_BOOTSTRAP"), topic=sinks.topic,
                                    metastore_uri=EnvVar("BAZAAR_METASTORE_URI"),
                                    warehouse_uri=EnvVar("BAZAAR_WAREHOUSE_URI"),
                                    checkpoint_uri=EnvVar("BAZAAR_CHECKPOINT_URI"), database=sinks.database,
                                    jars=sinks.sink_jars, local_fs_jar=sinks.sink_local_fs_jar),
        "report_store": ReportStoreResource(reports_dir=EnvVar("BAZAAR_REPORTS_DIR")),
        "trino": TrinoResource(host=EnvVar("BAZAAR_TRINO_HOST"), port=EnvVar.int("BAZAAR_TRINO_PORT"),
                               user=trino.trino_user, catalog=trino.trino_catalog, database=trino.database),
    }


def resources_for(deployment: str) -> dict:
    if deployment == "local":
        return local_resources()
    if deployment == "cluster":
        return cluster_resources()
    raise ValueError(f"BAZAAR_DEPLOYMENT must be 'local' or 'cluster', not {deployment!r}")
