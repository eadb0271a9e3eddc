"""A Spark standalone cluster for the cluster profile: a master and a worker from pyspark's own
`spark-class`, on this machine.  The sinks' drivers run against it in client mode, each as a
service of its own (`bazaar.stack.sink_drivers.SinkDriverService`); their executors run on the
worker."""

from __future__ import annotations

import requests

from bazaar.stack.service import Service
from spark_jobs.launch import pyspark_home


class SparkService(Service):
    startup_timeout = 90.0

    def environment(self) -> dict[str, str]:
        return {"SPARK_HOME": str(pyspark_home())}

    def master_state(self) -> dict:
        return requests.get(f"http://{self.local.host}:{self.local.spark_master_ui_port}/json/", timeout=2).json()


class SparkMasterService(SparkService):
    port_settings = ('spark_master_port', 'spark_master_ui_port')
    name = "spark-master"

    @property
    def address(self) -> str:
        return self.stack.spark_master_url

    def command(self) -> list[str]:
        s = self.local
        return [str(pyspark_home() / "bin" / "spark-class"), "org.apache.spark.deploy.master.Master",
                "--host", s.host, "--port", str(s.spark_master_port), "--webui-port", str(s.spark_master_ui_port)]

    def healthy(self) -> bool:
        return self.master_state().get("status") == "ALIVE"


class SparkWorkerService(SparkService):
    """One worker with the machine's cores and `spark_worker_memory` for the sinks' executors."""
    port_settings = ('spark_worker_ui_port',)

    name = "spark-worker"

    @property
    def address(self) -> str:
        return f"http://{self.local.host}:{self.local.spark_worker_ui_port}"

    def command(self) -> list[str]:
        s = self.local
        return [str(pyspark_home() / "bin" / "spark-class"), "org.apache.spark.deploy.worker.Worker",
                "--host", s.host, "--webui-port", str(s.spark_worker_ui_port), "--cores", str(s.spark_worker_cores),
                "--memory", s.spark_worker_memory, "--work-dir", str(self.data_dir / "work"),
                self.stack.spark_master_url]

    def healthy(self) -> bool:
        """The master counts this worker alive (its web UI's port names it)."""
        return any(w.get("state") == "ALIVE" and w.get("webuiaddress", "").endswith(f":{self.local.spark_worker_ui_port}")
                   for w in self.master_state().get("workers", []))
