"""A stack of its own, beside any other on this machine: free ports on 127.0.0.1 and a home
folder of its own (the tests and the benchmarks use it, so they never touch a user's stack)."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

from bazaar.settings import Stack, StackSettings

PORTS = ("redis_port", "engine_port", "kafka_port", "kafka_controller_port", "metastore_port", "trino_port",
         "dagster_port", "reports_port", "spark_master_port", "spark_master_ui_port", "spark_worker_ui_port",
         "hdfs_port", "hdfs_http_port", "hdfs_datanode_port", "hdfs_datanode_http_port", "hdfs_datanode_ipc_port",
         "postgres_port", "dagster_grpc_port", "prometheus_port", "relay_metrics_port", "sink_metrics_port",
         "kafka_metrics_port", "metastore_metrics_port", "trino_metrics_port", "trino_internal_port")


_given: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(span: int = 1) -> int:
    """A port free now (the first of `span` consecutive ones), below the ephemeral range: a port the
    kernel hands out (bind to 0) may next be taken as the source port of some outgoing connection
    before the service binds it."""
    low = min(_ephemeral_range()[0], 32768)
    for _ in range(200):
        port = random.randrange(10_000, low - span)
        ports = range(port, port + span)
        if _given.intersection(ports):  # free now, but promised to another service of this process
            continue
        if all(_free(p) for p in ports):
            _given.update(ports)
            return port
    raise RuntimeError(f"no {span} free ports found between 10000 and {low}")


# the Kafka brokers of a stack take consecutive ports from these (`StackSettings.kafka_brokers`)
SPANS = {"kafka_port": 9, "kafka_controller_port": 9, "kafka_metrics_port": 9, "sink_metrics_port": 2}


def isolated_stack(home: Path, **changes) -> Stack:
    """A stack on free ports under `home`; `changes` set other settings (stack or runtime)."""
    local = {k: changes.pop(k) for k in list(changes) if k in StackSettings.model_fields}
    ports = {p: free_port(SPANS.get(p, 1)) for p in PORTS}
    return Stack(StackSettings(**{"home": home, **ports, **local})).replace(**changes)


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a `bazaar` command for a stack on free ports under `home`."""
    return {**os.environ, "BAZAAR_HOME": str(home),
            **{f"BAZAAR_{p.upper()}": str(free_port(SPANS.get(p, 1))) for p in PORTS}, **extra}


def stack_from_env(env: dict[str, str]) -> Stack:
    """The stack a `bazaar` command run in `env` sees."""
    local = {k[len("BAZAAR_"):].lower(): v for k, v in env.items() if k.startswith("BAZAAR_")}
    return Stack(StackSettings(**{k: v for k, v in local.items() if k in StackSettings.model_fields}),
                 {k: v for k, v in local.items() if k not in StackSettings.model_fields})
