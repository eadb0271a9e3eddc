"""The local stack: every service as a local process on 127.0.0.1, no Docker.

`services(stack)` lists them in start order; `bazaar up` starts them in that
order and `bazaar down` stops them in reverse.  The test fixtures start the
same classes on ports and a home of their own.
"""

from __future__ import annotations

from bazaar.settings import Stack
from bazaar.stack.dagster_services import DagsterCodeService, DagsterDaemonService, DagsterWebserverService, \
    ReportsService
from bazaar.stack.engine_server import EngineService
from bazaar.stack.hdfs import HdfsDataNodeService, HdfsNameNodeService, hdfs_services
from bazaar.stack.hive_metastore import MetastoreService
from bazaar.stack.kafka_broker import KafkaService, brokers
from bazaar.stack.postgres import PostgresService
from bazaar.stack.prometheus import PrometheusService
from bazaar.stack.redis_server import RedisService
from bazaar.stack.relay_process import RelayService
from bazaar.stack.service import Service, ServiceError, Status
from bazaar.stack.sink_drivers import SinkDriverService, SinkService, sink_services
from bazaar.stack.spark_cluster import SparkMasterService, SparkWorkerService
from bazaar.stack.trino_server import TrinoService

__all__ = ["DagsterCodeService", "DagsterDaemonService", "HdfsDataNodeService", "HdfsNameNodeService",
           "PostgresService", "PrometheusService", "DagsterWebserverService", "ReportsService", "EngineService", "KafkaService",
           "MetastoreService", "RedisService", "RelayService", "Service", "ServiceError", "SinkDriverService", "SinkService",
           "SparkMasterService", "SparkWorkerService", "Status",
           "TrinoService", "services"]


def services(stack: Stack) -> list[Service]:
    """In start order.  The cluster profile adds Postgres (the metastore's and Dagster's storage),
    HDFS (the warehouse), a Spark master and worker, and Dagster's code server."""
    cluster = stack.local.profile == "cluster"
    storage = [PostgresService(stack), *hdfs_services(stack)] if cluster else []
    spark = [SparkMasterService(stack), SparkWorkerService(stack)] if cluster else []
    code = [DagsterCodeService(stack)] if cluster else []
    return [RedisService(stack), *brokers(stack), *storage, MetastoreService(stack), TrinoService(stack), *spark,
            EngineService(stack), RelayService(stack), *sink_services(stack), ReportsService(stack), *code,
            DagsterWebserverService(stack), DagsterDaemonService(stack), PrometheusService(stack)]
