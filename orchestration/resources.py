"""Typed resources for every service the pipeline touches, one set per deployment.

`BAZAAR_DEPLOYMENT=local` (the default) points them at the local stack, read
from the same `BAZAAR_*` settings as `bazaar up`; `cluster` reads every
endpoint and secret from the environment through `EnvVar`, so nothing secret
is written in code or shown in the UI.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import pandas as pd
from dagster import ConfigurableResource, EnvVar

from bazaar import reports, warehouse
from bazaar.settings import Settings, get_settings
from bazaar.stack.kafka import ensure_topic
from bazaar.stack.metastore import get_all_databases
from bazaar.stack.sinks import SinkService
from engine.db import make_redis
from engine.store import Store


def _settings(**update) -> Settings:
    return get_settings().model_copy(update={k: v for k, v in update.items() if v is not None})


class RedisResource(ConfigurableResource):
    """The engine's Redis: its counters are the ground truth the tables are checked against."""

    url: str
    password: Optional[str] = None
    namespace: str = "bazaar"

    def store(self) -> Store:
        s = _settings(redis_url=self.url, redis_password=self.password, namespace=self.namespace)
        return Store(make_redis(s), s.namespace)


class KafkaResource(ConfigurableResource):
    bootstrap_servers: str
    topic: str = "events"
    partitions: int = 3
    retention_ms: int = 7 * 24 * 3600 * 1000

    def ensure_topic(self) -> dict:
        return ensure_topic(_settings(kafka_bootstrap=self.bootstrap_servers, topic=self.topic,
                                      topic_partitions=self.partitions, topic_retention_ms=self.retention_ms))


class SparkSinksResource(ConfigurableResource):
    """Starts and watches the two sink applications (their pid and status files live under `home`)."""

    home: str
    spark_master: str = "local[*]"
    kafka_bootstrap: str
    topic: str = "events"
    metastore_uri: str
    warehouse_uri: str
    database: str = "default"

    def sink(self, name: str) -> SinkService:
        return SinkService(_settings(home=self.home, spark_master=self.spark_master, kafka_bootstrap=self.kafka_bootstrap,
                                     topic=self.topic, metastore_uri=self.metastore_uri,
                                     warehouse_uri=self.warehouse_uri, database=self.database), name)


class ReportStoreResource(ConfigurableResource):
    """Where report files go (HOME/reports), for the download service to serve."""

    home: str

    def store(self, name: str, frame: pd.DataFrame) -> dict:
        return reports.store(Path(self.home), name, frame)

    def folder(self, name: str) -> Path:
        return reports.report_dir(Path(self.home), name)


class MetastoreResource(ConfigurableResource):
    uri: str

    def databases(self) -> list[str]:
        return get_all_databases(self.uri)


class TrinoResource(ConfigurableResource):
    """Trino (or Presto) through PyHive; runs the query files in sql/."""

    host: str
    port: int
    user: str = "bazaar"
    catalog: str = "hive"
    database: str = "default"

    @property
    def settings(self) -> Settings:
        return _settings(trino_host=self.host, trino_port=self.port, trino_user=self.user,
                         trino_catalog=self.catalog, database=self.database)

    def query(self, name: str, **params) -> pd.DataFrame:
        return warehouse.query(self.settings, name, **params)

    def execute(self, sql: str) -> pd.DataFrame:
        return warehouse.execute(self.settings, sql)


def local_resources(settings: Optional[Settings] = None) -> dict:
    s = settings or get_settings()
    pw = s.redis_password.get_secret_value() if s.redis_password else None
    return {
        "redis": RedisResource(url=s.effective_redis_url, password=pw, namespace=s.namespace),
        "kafka": KafkaResource(bootstrap_servers=s.effective_kafka_bootstrap, topic=s.topic,
                               partitions=s.topic_partitions, retention_ms=s.topic_retention_ms),
        "sinks": SparkSinksResource(home=str(s.home), spark_master=s.spark_master,
                                    kafka_bootstrap=s.effective_kafka_bootstrap, topic=s.topic,
                                    metastore_uri=s.effective_metastore_uri, warehouse_uri=s.effective_warehouse_uri,
                                    database=s.database),
        "report_store": ReportStoreResource(home=str(s.home)),
        "metastore": MetastoreResource(uri=s.effective_metastore_uri),
        "trino": TrinoResource(host=s.effective_trino_host, port=s.trino_port, user=s.trino_user,
                               catalog=s.trino_catalog, database=s.database),
    }


def cluster_resources() -> dict:
    return {
        "redis": RedisResource(url=EnvVar("BAZAAR_REDIS_URL"), password=EnvVar("BAZAAR_REDIS_PASSWORD"),
                               namespace=os.environ.get("BAZAAR_NAMESPACE", "bazaar")),
        "kafka": KafkaResource(bootstrap_servers=EnvVar("BAZAAR_KAFKA_BOOTSTRAP")),
        "sinks": SparkSinksResource(home=EnvVar("BAZAAR_HOME"), spark_master=EnvVar("BAZAAR_SPARK_MASTER"),
                                    kafka_bootstrap=EnvVar("BAZAAR_KAFKA_BOOTSTRAP"),
                                    metastore_uri=EnvVar("BAZAAR_METASTORE_URI"),
                                    warehouse_uri=EnvVar("BAZAAR_WAREHOUSE_URI")),
        "report_store": ReportStoreResource(home=EnvVar("BAZAAR_HOME")),
        "metastore": MetastoreResource(uri=EnvVar("BAZAAR_METASTORE_URI")),
        "trino": TrinoResource(host=EnvVar("BAZAAR_TRINO_HOST"), port=EnvVar.int("BAZAAR_TRINO_PORT")),
    }


def resources_for(deployment: str) -> dict:
    if deployment == "local":
        return local_resources()
    if deployment == "cluster":
        return cluster_resources()
    raise ValueError(f"BAZAAR_DEPLOYMENT must be 'local' or 'cluster', not {deployment!r}")
