"""A service of the local stack: a local process (`spark_jobs.processes`) that knows the stack."""

from __future__ import annotations

from bazaar.settings import Stack
from spark_jobs.processes import LocalProcess, ServiceError, Status

__all__ = ["Service", "ServiceError", "Status"]


class Service(LocalProcess):
    def __init__(self, stack: Stack):
        super().__init__(stack.home)
        self.stack = stack
        self.local = stack.local
