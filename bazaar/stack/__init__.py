"""The local stack: every service as a local process on 127.0.0.1, no Docker.

`services(settings)` lists them in start order; `bazaar up` starts them in that
order and `bazaar down` stops them in reverse.
"""

from __future__ import annotations

from bazaar.settings import Settings
from bazaar.stack.dagster import DagsterDaemonService, DagsterWebserverService, ReportsService
from bazaar.stack.engine import EngineService
from bazaar.stack.kafka import KafkaService
from bazaar.stack.metastore import MetastoreService
from bazaar.stack.process import Service, ServiceError, Status
from bazaar.stack.redis import RedisService
from bazaar.stack.relay import RelayService
from bazaar.stack.sinks import SinkService
from bazaar.stack.trino import TrinoService

__all__ = ["DagsterDaemonService", "DagsterWebserverService", "ReportsService", "EngineService", "KafkaService", "MetastoreService", "RedisService", "RelayService", "Service",
           "ServiceError", "SinkService", "Status", "TrinoService", "services"]


def services(settings: Settings) -> list[Service]:
    return [RedisService(settings), KafkaService(settings), MetastoreService(settings), TrinoService(settings),
            EngineService(settings), RelayService(settings), SinkService(settings, "trades"),
            SinkService(settings, "player_states"), ReportsService(settings), DagsterWebserverService(settings),
            DagsterDaemonService(settings)]
