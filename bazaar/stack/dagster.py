"""Dagster's webserver and daemon (schedules and sensors need the daemon), and the
report-download service, as supervised processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from bazaar.settings import PROJECT_ROOT
from bazaar.stack.process import Service


class _DagsterProcess(Service):
    startup_timeout = 120.0

    @property
    def dagster_home(self) -> Path:
        return Path(self.settings.home) / "dagster"

    def prepare(self) -> None:
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        conf = self.dagster_home / "dagster.yaml"
        if not conf.exists():
            conf.write_text("telemetry:\n  enabled: false\n")

    def environment(self) -> dict[str, str]:
        return {**self.settings.to_env(), "DAGSTER_HOME": str(self.dagster_home)}


class DagsterWebserverService(_DagsterProcess):
    name = "dagster"

    @property
    def address(self) -> str:
        return f"http://{self.settings.host}:{self.settings.dagster_port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "dagster_webserver", "-h", self.settings.host,
                "-p", str(self.settings.dagster_port), "-w", str(PROJECT_ROOT / "workspace.yaml")]

    def healthy(self) -> bool:
        return requests.get(f"{self.address}/server_info", timeout=2).status_code == 200


class DagsterDaemonService(_DagsterProcess):
    name = "dagster-daemon"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "dagster._daemon", "run", "-w", str(PROJECT_ROOT / "workspace.yaml")]

    def healthy(self) -> bool:
        """The daemon's own liveness check: recent heartbeats in the instance's storage."""
        out = subprocess.run([sys.executable, "-m", "dagster._daemon", "liveness-check"],
                             env={**os.environ, **self.environment()}, capture_output=True, timeout=60)
        return out.returncode == 0


class ReportsService(Service):
    name = "reports"
    startup_timeout = 30.0

    @property
    def address(self) -> str:
        return f"http://{self.settings.host}:{self.settings.reports_port}/reports"

    def environment(self) -> dict[str, str]:
        return self.settings.to_env()

    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "--bind", f"{self.settings.host}:{self.settings.reports_port}",
                "--workers", "2", "bazaar.reports_app:create_app()"]

    def healthy(self) -> bool:
        return requests.get(f"http://{self.settings.host}:{self.settings.reports_port}/health", timeout=2).ok
