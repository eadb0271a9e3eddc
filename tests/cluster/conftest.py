"""The cluster profile's services for its tests, started through the same classes as
`bazaar up --profile cluster`, on ports and a home of their own, stopped after this package's
tests (not kept through the rest of the run)."""

from __future__ import annotations

import pytest

from bazaar.stack import EngineService, MetastoreService, PostgresService, RedisService, RelayService, \
    SparkMasterService, SparkWorkerService
from bazaar.stack.hdfs import hdfs_services
from bazaar.stack.kafka_broker import brokers
from bazaar.stack.ports import isolated_stack
from bazaar.stack.sink_drivers import sink_services


@pytest.fixture(scope="package")
def cluster_started():
    started = []
    yield started
    for svc in reversed(started):
        svc.stop()


def _start(started: list, *svcs):
    for svc in svcs:
        started.append(svc)  # before its start: one that fails half-way is stopped too
        svc.start()


@pytest.fixture(scope="package")
def cluster(tmp_path_factory, cluster_started):
    """Redis, three Kafka brokers, the engine and the relay of a cluster-profile stack."""
    stack = isolated_stack(tmp_path_factory.mktemp("cluster-home"), profile="cluster", namespace="cluster")
    _start(cluster_started, RedisService(stack), *brokers(stack), EngineService(stack), RelayService(stack))
    return stack


@pytest.fixture(scope="package")
def spark_cluster(cluster, cluster_started):
    """And Postgres, HDFS, the metastore (on Postgres), a Spark master and worker, and both sinks'
    drivers as services of their own, writing to HDFS."""
    _start(cluster_started, PostgresService(cluster), *hdfs_services(cluster), MetastoreService(cluster),
           SparkMasterService(cluster), SparkWorkerService(cluster), *sink_services(cluster))
    return cluster
