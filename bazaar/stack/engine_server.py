"""The trade engine under granian (a WSGI server in Rust: HTTP parsing and keep-alive off the
GIL).  Measured beside gunicorn's sync workers on this machine with the relay and Kafka
on (README, benchmarks): the same engine answered ~50% more trades for ~0.8 ms less CPU each, and a
minimal Flask route twice as many requests."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import requests

from bazaar.stack.service import Service
from engine.metrics import MULTIPROC_ENV


class EngineService(Service):
    port_settings = ('engine_port',)
    name = "engine"
    startup_timeout = 30.0

    @property
    def address(self) -> str:
        return self.stack.engine_url

    @property
    def metrics_dir(self) -> Path:
        """The workers' metric files (prometheus_client's multiprocess mode: `engine.metrics`)."""
        return self.data_dir / "metrics"

    def prepare(self) -> None:
        # the counts of an earlier run start from zero, as a restarted process's would
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        self.metrics_dir.mkdir(parents=True)

    def environment(self) -> dict[str, str]:
        return {**self.stack.engine_env(), MULTIPROC_ENV: str(self.metrics_dir)}

    def command(self) -> list[str]:
        s = self.local
        return [
            sys.executable, "-m", "granian", "--interface", "wsgi", "--factory", "engine:create_app",
            "--host", s.host, "--port", str(s.engine_port),
            "--workers", str(s.engine_workers),
            "--blocking-threads", str(s.engine_threads),
            "--http", "1", "--no-ws",
            "--backlog", "2048",
            "--respawn-failed-workers",
            "--workers-kill-timeout", "10",
            # a line per request when asked for: no header, query or body, so no key or token reaches the log
            "--access-log" if s.engine_access_log else "--no-access-log",
            "--access-log-fmt", '%(addr)s "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1fms',
        ]

    def healthy(self) -> bool:
        return requests.get(f"{self.address}/health", timeout=2).status_code == 200
