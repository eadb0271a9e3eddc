"""Dagster's webserver and daemon (schedules and sensors need the daemon) on the code location
`orchestration.definitions`, and the report-download service, as supervised processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import requests

from bazaar.stack.service import Service, ServiceError
from bazaar.stack.sink_drivers import launcher_settings

CODE_LOCATION = "orchestration.definitions"


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

    def prepare(self) -> None:
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        conf = self.dagster_home / "dagster.yaml"
        if not conf.exists():
            conf.write_text("telemetry:\n  enabled: false\n")

    def environment(self) -> dict[str, str]:
        # the code location's sink launcher gets the jars `bazaar up` fetched
        return {**self.stack.env(launcher_settings(self.stack)), "DAGSTER_HOME": str(self.dagster_home),
                "BAZAAR_DEPLOYMENT": "local"}


class DagsterWebserverService(_DagsterProcess):
    name = "dagster"

    @property
    def address(self) -> str:
        return self.stack.dagster_url

    def command(self) -> list[str]:
        return [console_script("dagster-webserver"), "-h", self.local.host, "-p", str(self.local.dagster_port),
                "-m", CODE_LOCATION]

    def healthy(self) -> bool:
        return requests.get(f"{self.address}/server_info", timeout=2).status_code == 200


class DagsterDaemonService(_DagsterProcess):
    name = "dagster-daemon"

    def command(self) -> list[str]:
        return [console_script("dagster-daemon"), "run", "-m", CODE_LOCATION]

    def healthy(self) -> bool:
        """The daemon's own liveness check: recent heartbeats in the instance's storage."""
        out = subprocess.run([console_script("dagster-daemon"), "liveness-check"],
                             env={**os.environ, **self.environment()}, capture_output=True, timeout=60)
        return out.returncode == 0


class ReportsService(Service):
    name = "reports"
    startup_timeout = 30.0

    @property
    def address(self) -> str:
        return self.stack.reports_url

    def environment(self) -> dict[str, str]:
        return self.stack.env()

    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "--bind", f"{self.local.host}:{self.local.reports_port}",
                "--workers", "2", "orchestration.downloads:create_app()"]

    def healthy(self) -> bool:
        return requests.get(f"http://{self.local.host}:{self.local.reports_port}/health", timeout=2).ok
