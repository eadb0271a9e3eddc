"""A service of the local stack: a local process (`spark_jobs.processes`) that knows the stack."""

from __future__ import annotations

from bazaar.settings import Stack
from spark_jobs.processes import LocalProcess, ServiceError, Status

__all__ = ["Service", "ServiceError", "Status"]


class Service(LocalProcess):
    # the stack's settings naming the ports this service binds (`LocalProcess.ports`)
    port_settings: tuple[str, ...] = ()

    def __init__(self, stack: Stack):
        super().__init__(stack.home)
        self.stack = stack
        self.local = stack.local

    def ports(self) -> dict[int, str]:
        return {getattr(self.local, name): f"BAZAAR_{name.upper()}" for name in self.port_settings}
