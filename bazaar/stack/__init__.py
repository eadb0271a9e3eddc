"""The local stack: every service as a local process on 127.0.0.1, no Docker.

`services(stack)` lists them in start order; `bazaar up` starts them in that
order and `bazaar down` stops them in reverse.  The test fixtures start the
same classes on ports and a home of their own.
"""

from __future__ import annotations

from bazaar.settings import Stack
from bazaar.stack.dagster_services import DagsterDaemonService, DagsterWebserverService, ReportsService
from bazaar.stack.engine_server import EngineService
from bazaar.stack.hive_metastore import MetastoreService
from bazaar.stack.kafka_broker import KafkaService, brokers
from bazaar.stack.redis_server import RedisService
from bazaar.stack.relay_process import RelayService
from bazaar.stack.service import Service, ServiceError, Status
from bazaar.stack.sink_drivers import SinkService
from bazaar.stack.trino_server import TrinoService

__all__ = ["DagsterDaemonService", "DagsterWebserverService", "ReportsService", "EngineService", "KafkaService",
           "MetastoreService", "RedisService", "RelayService", "Service", "ServiceError", "SinkService", "Status",
           "TrinoService", "services"]


def services(stack: Stack) -> list[Service]:
    return [RedisService(stack), *brokers(stack), MetastoreService(stack), TrinoService(stack),
            EngineService(stack), RelayService(stack), SinkService(stack, "trades"),
            SinkService(stack, "player_states"), ReportsService(stack), DagsterWebserverService(stack),
            DagsterDaemonService(stack)]
