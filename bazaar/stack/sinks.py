"""The two Spark sinks as supervised `spark-submit` applications."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from bazaar.settings import Settings
from bazaar.stack import artifacts
from bazaar.stack.process import Service, Status, children

STATUS_STALE_S = 60.0  # Spark reports progress at least every 10 s, even with no data
SPARK_JOBS = Path(__file__).resolve().parent.parent.parent / "spark_jobs"
# Without Hadoop's native library (not on Maven Central), Hadoop's local file system runs `chmod`,
# `ls -ld` and `readlink` as child processes of the driver JVM for files it creates, lists and
# renames: about 8 a second per sink at 10 trades/s, each a fork of a 1 GB JVM. This one does the
# same through Java NIO, without a process. Its jar must be on the JVM's class path from the start.
LOCAL_FS = ("com.globalmentor", "hadoop-bare-naked-local-fs", "0.1.0")
LOCAL_FS_CLASS = "com.globalmentor.apache.hadoop.fs.BareLocalFileSystem"
# The default checkpoint manager goes through Hadoop's FileContext, whose local file system is
# fixed (not the one above) and resolves links with `readlink` on every rename.
FS_CHECKPOINTS = "org.apache.spark.sql.execution.streaming.checkpointing.FileSystemBasedCheckpointFileManager"


def pyspark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def connector_jars(settings: Settings) -> list[str]:
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


class SinkService(Service):
    startup_timeout = 180.0
    stop_timeout = 60.0

    def __init__(self, settings: Settings, sink: str):
        super().__init__(settings)
        self.sink = sink
        self.name = f"sink-{sink}"

    @property
    def address(self) -> str:
        return f"{self.settings.effective_warehouse_uri}/{self.sink}"

    @property
    def status_path(self) -> Path:
        return self.data_dir / "status.json"

    def prepare(self) -> None:
        self.jars = connector_jars(self.settings)
        self.local_fs_jar = artifacts.fetch(self.settings.maven_repo, *LOCAL_FS, "jar",
                                            "fetching Hadoop's NIO local file system")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.status_path.unlink(missing_ok=True)

    def environment(self) -> dict[str, str]:
        return {**self.settings.to_env(), "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}

    def local_files_conf(self) -> list[str]:
        """spark-submit options for file:// paths on this machine (none for a cluster master)."""
        s = self.settings
        opts = []
        if s.spark_master.startswith("local"):  # executors elsewhere would lack the jar
            opts += ["--driver-class-path", str(self.local_fs_jar),
                     "--conf", f"spark.hadoop.fs.file.impl={LOCAL_FS_CLASS}"]
        if s.effective_checkpoint_uri.startswith("file:"):
            opts += ["--conf", f"spark.sql.streaming.checkpointFileManagerClass={FS_CHECKPOINTS}"]
        return opts

    def command(self) -> list[str]:
        s = self.settings
        return [str(pyspark_home() / "bin" / "spark-submit"), "--master", s.spark_master,
                "--driver-memory", s.spark_driver_memory, "--jars", ",".join(self.jars),
                "--conf", "spark.driver.extraJavaOptions=-Duser.timezone=UTC", *self.local_files_conf(),
                str(SPARK_JOBS / "sink.py"), "--sink", self.sink, "--status-file", str(self.status_path)]

    def terminate(self, pid: int) -> None:
        """SIGTERM to the Python driver alone: it stops the query and Spark, then the JVM exits
        with it. (Signalled too, the JVM's own shutdown hook would stop Spark under the query.)"""
        for child in children(pid):
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def progress(self) -> dict:
        try:
            return json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}

    def healthy(self) -> bool:
        p = self.progress()
        return (p.get("state") in ("started", "running", "idle") and p.get("pid") is not None
                and time.time() - p.get("written_at", 0) < STATUS_STALE_S)

    def status(self) -> Status:
        st = super().status()
        p = self.progress()
        if p:
            st.detail = (st.detail + "; " if st.detail else "") + (
                f"batch {p.get('batch_id', '-')}, {p.get('events_written', 0)} events, "
                f"{p.get('quarantined', 0)} quarantined, behind {p.get('offsets_behind_latest', '-')}")
        return st
