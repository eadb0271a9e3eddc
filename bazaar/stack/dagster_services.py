"""Dagster's webserver and daemon (schedules and sensors need the daemon) on the code location
`orchestration.definitions`, and the report-download service, as supervised processes.

The local profile keeps Dagster's instance in SQLite under the home and lets the webserver and the
daemon load the code location themselves.  The cluster profile deploys it as Dagster's docs do: the
instance in Postgres (`dagster-postgres`, its connection from `DAGSTER_PG_*` variables, so no
password is written), and the code location served over gRPC by a process of its own
(`dagster api grpc`), named as a `grpc_server` in the workspace the webserver and the daemon read.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import requests

from bazaar.stack.artifacts import write_if_changed
from bazaar.stack.postgres import ROLE
from bazaar.stack.service import Service, ServiceError
from bazaar.stack.sink_drivers import launcher_settings
from spark_jobs.processes import inherited_environment

CODE_LOCATION = "orchestration.definitions"
LOCATION_NAME = "bazaar"

# What both profiles' instances hold: the run queue, the warehouse's pool, no telemetry.
INSTANCE_COMMON = """\
concurrency:
  runs:
    max_concurrent_runs: 4
  # compaction and retention rewrite the warehouse's folders: one such step at a time, whichever job
  # or asset materialization runs it (their assets' pool, bazaar_warehouse; no other pool is used)
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""
# The cluster profile's instance: Postgres, every connection setting from the environment.
POSTGRES_INSTANCE = """\
storage:
  postgres:
    postgres_db:
      hostname: {env: DAGSTER_PG_HOST}
      port: {env: DAGSTER_PG_PORT}
      db_name: {env: DAGSTER_PG_DB}
      username: {env: DAGSTER_PG_USER}
      password: {env: DAGSTER_PG_PASSWORD}
      scheme: postgresql+psycopg2  # the driver dagster-postgres installs; SQLAlchemy 2.1's default is psycopg 3
""" + INSTANCE_COMMON
# The local profile's instance: SQLite under DAGSTER_HOME (Dagster's default).
LOCAL_INSTANCE = INSTANCE_COMMON


def console_script(name: str) -> str:
    """A console script installed beside this Python (the virtualenv's), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise ServiceError(f"`{name}` is not installed: run `make install` (pip install the project)")
    return found


class _DagsterProcess(Service):
    startup_timeout = 120.0

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def on_grpc(self) -> bool:
        """The cluster profile's shape: the code location in a gRPC server of its own."""
        return self.local.profile == "cluster"

    @property
    def workspace(self) -> Path:
        return self.dagster_home / "workspace.yaml"

    def prepare(self) -> None:
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        conf = self.dagster_home / "dagster.yaml"
        if self.on_grpc:
            write_if_changed(conf, POSTGRES_INSTANCE)
            write_if_changed(
                self.workspace, f"load_from:\n  - grpc_server:\n      host: {self.local.host}\n"
                f"      port: {self.local.dagster_grpc_port}\n      location_name: {LOCATION_NAME}\n")
        else:
            write_if_changed(conf, LOCAL_INSTANCE)

    def code_location(self) -> list[str]:
        """How the webserver and the daemon find the code location."""
        return ["-w", str(self.workspace)] if self.on_grpc else ["-m", CODE_LOCATION]

    def environment(self) -> dict[str, str]:
        # the code location's sink launcher gets the jars `bazaar up` fetched; in the cluster profile,
        # its resources come from the BAZAAR_* variables as in Compose (`BAZAAR_DEPLOYMENT=cluster`)
        # (the checks read the engine's counters: Redis' password too, if it has one; Trino's passwords)
        env = {**self.stack.env(launcher_settings(self.stack)), **self.stack.redis_env(),
               **self.stack.trino_env(owner=True),  # the reports read as the reader; the views are the owner's
               # the topic asset logs in as Kafka's admin and sets the relay's and the sinks' passwords;
               # the supervisor starts sinks that log in as theirs
               **self.stack.kafka_env("admin", "relay", "sinks"),
               "DAGSTER_HOME": str(self.dagster_home), "BAZAAR_DEPLOYMENT": "local"}
        if self.on_grpc:
            env.update({"BAZAAR_DEPLOYMENT": "cluster", "DAGSTER_PG_HOST": self.local.host,
                        "DAGSTER_PG_PORT": str(self.local.postgres_port), "DAGSTER_PG_DB": "dagster",
                        "DAGSTER_PG_USER": ROLE, "DAGSTER_PG_PASSWORD": self.stack.postgres_password})
        return env


class DagsterCodeService(_DagsterProcess):
    """The code location's gRPC server (cluster profile): it loads Bazaar's code and launches the runs."""
    port_settings = ('dagster_grpc_port',)

    name = "dagster-code"

    @property
    def address(self) -> str:
        return f"grpc://{self.local.host}:{self.local.dagster_grpc_port}"

    def command(self) -> list[str]:
        return [console_script("dagster"), "api", "grpc", "-h", self.local.host, "-p", str(self.local.dagster_grpc_port),
                "-m", CODE_LOCATION, "--location-name", LOCATION_NAME]

    def healthy(self) -> bool:
        out = subprocess.run([console_script("dagster"), "api", "grpc-health-check", "-h", self.local.host,
                              "-p", str(self.local.dagster_grpc_port)],
                             env={**inherited_environment(), **self.environment()}, capture_output=True, timeout=60)
        return out.returncode == 0


class DagsterWebserverService(_DagsterProcess):
    port_settings = ('dagster_port',)
    name = "dagster"

    @property
    def address(self) -> str:
        return self.stack.dagster_url

    def command(self) -> list[str]:
        return [console_script("dagster-webserver"), "-h", self.local.host, "-p", str(self.local.dagster_port),
                *self.code_location()]

    def healthy(self) -> bool:
        return requests.get(f"{self.address}/server_info", timeout=2).status_code == 200


class DagsterDaemonService(_DagsterProcess):
    name = "dagster-daemon"

    def command(self) -> list[str]:
        return [console_script("dagster-daemon"), "run", *self.code_location()]

    def healthy(self) -> bool:
        """The daemon's own liveness check: recent heartbeats in the instance's storage."""
        out = subprocess.run([console_script("dagster-daemon"), "liveness-check"],
                             env={**inherited_environment(), **self.environment()}, capture_output=True, timeout=60)
        return out.returncode == 0


class ReportsService(Service):
    port_settings = ('reports_port',)
    name = "reports"
    startup_timeout = 30.0

    @property
    def address(self) -> str:
        return self.stack.reports_url

    def environment(self) -> dict[str, str]:
        return {**self.stack.env(), **self.stack.trino_env()}  # the dashboard reads Trino as the reader

    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "--bind", f"{self.local.host}:{self.local.reports_port}",
                "--workers", "2", "orchestration.downloads:create_app()"]

    def healthy(self) -> bool:
        return requests.get(f"http://{self.local.host}:{self.local.reports_port}/health", timeout=2).ok
