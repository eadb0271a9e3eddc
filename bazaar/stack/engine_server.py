"""The trade engine under gunicorn."""

from __future__ import annotations

import sys

import requests

from bazaar.stack.service import Service


class EngineService(Service):
    name = "engine"
    startup_timeout = 30.0

    @property
    def address(self) -> str:
        return self.stack.engine_url

    def environment(self) -> dict[str, str]:
        return self.stack.engine_env()

    def command(self) -> list[str]:
        s = self.local
        return [
            sys.executable, "-m", "gunicorn",
            "--bind", f"{s.host}:{s.engine_port}",
            "--workers", str(s.engine_workers),
            "--backlog", "2048",
            "--graceful-timeout", "10",
            "--error-logfile", "-",
            # a line per request: no header or body, so no key or token ever reaches the log
            "--access-logfile", "-",
            "--access-logformat", '%(h)s "%(r)s" %(s)s %(B)s %(M)sms id=%({x-request-id}o)s',
            "engine:create_app()",
        ]

    def healthy(self) -> bool:
        return requests.get(f"{self.address}/health", timeout=2).status_code == 200
