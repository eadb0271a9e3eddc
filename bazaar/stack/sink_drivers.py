"""The two sinks in the local stack: their jars fetched from Maven Central, their drivers
started through the sinks' local launcher (`spark_jobs.launch`), as Dagster's supervisor does; in
the cluster profile, each driver a service of its own, kept running as a service manager would
(`SinkDriverService`)."""

from __future__ import annotations

import shlex
import sys

from bazaar.settings import Stack, StackSettings
from bazaar.stack import artifacts
from spark_jobs.launch import LocalSinkLauncher, ServiceSinkLauncher, SinkProcess, pyspark_home
from spark_jobs.processes import Status
from spark_jobs.settings import LauncherSettings

# Hadoop's local file system through Java NIO, without a child process per file operation
LOCAL_FS = ("com.globalmentor", "hadoop-bare-naked-local-fs", "0.1.0")


def connector_jars(settings: StackSettings) -> list[str]:
    """The Kafka connector at pyspark's exact version, less the jars pyspark already ships."""
    import pyspark

    version = pyspark.__version__
    lib = artifacts.copy_dependencies(
        settings.maven_repo, settings.cache / f"spark-sql-kafka-{version}",
        [("org.apache.spark", "spark-sql-kafka-0-10_2.13", version)],
        f"fetching the Spark Kafka connector {version}",
    )
    shipped = {_artifact(p.name) for p in (pyspark_home() / "jars").glob("*.jar")}
    return sorted(str(p) for p in lib.glob("*.jar") if _artifact(p.name) not in shipped)


def _artifact(jar_name: str) -> str:
    """`kafka-clients-3.9.2.jar` -> `kafka-clients` (the name without its version)."""
    parts = jar_name[:-4].split("-")
    while parts and parts[-1][:1].isdigit():
        parts.pop()
    return "-".join(parts)


def launcher_settings(stack: Stack) -> LauncherSettings:
    """The stack's sink settings with the jars in place (fetched once, then read from the cache)."""
    local_fs = artifacts.fetch(stack.local.maven_repo, *LOCAL_FS, "jar", "fetching Hadoop's NIO local file system")
    return stack.sinks.model_copy(update={"sink_jars": ",".join(connector_jars(stack.local)),
                                          "sink_local_fs_jar": str(local_fs)})


class SinkService(SinkProcess):
    """A sink as a service of `bazaar up`: the local launcher's own process, once the jars are here."""

    def __init__(self, stack: Stack, sink: str):
        super().__init__(stack.sinks, sink)
        self.stack = stack

    def prepare(self) -> None:
        self.settings = launcher_settings(self.stack)
        super().prepare()

    def status(self) -> Status:
        st = super().status()
        st.detail = LocalSinkLauncher(self.settings).status(self.sink).detail
        return st


class SinkDriverService(SinkService):
    """A sink's driver as a service of its own (the cluster profile): `python -m spark_jobs.sink` in
    client mode against the Spark master, started again whenever it exits (by its keeper, as
    Compose's restart policy does for the driver's container).  Dagster's supervisor sees it only
    through its status file (`spark_jobs.launch.ServiceSinkLauncher`)."""

    stop_grandchildren = False  # the driver is Python, its JVM its child: the driver itself is asked

    def command(self) -> list[str]:
        return [sys.executable, "-m", "spark_jobs.sink", *self.driver_args()]

    def environment(self) -> dict[str, str]:
        # pyspark starts its JVM through spark-submit with these options
        return {**super().environment(), "SPARK_HOME": str(pyspark_home()),
                "PYSPARK_SUBMIT_ARGS": shlex.join([*self.submit_options(), "pyspark-shell"])}

    def driver_pid(self):
        """The driver's own process (the keeper's child), as a crash would take it."""
        return self.main_pid()

    def status(self) -> Status:
        st = SinkProcess.status(self)
        st.detail = ServiceSinkLauncher(self.settings).status(self.sink).detail
        return st


def sink_services(stack: Stack) -> list[SinkService]:
    cls = SinkDriverService if stack.sinks.sink_launcher == "service" else SinkService
    return [cls(stack, "trades"), cls(stack, "player_states")]
