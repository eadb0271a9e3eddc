"""How a deployment starts, stops and watches the two sinks' drivers.

One abstraction, `SinkLauncher`, with one implementation per deployment, picked
by `BAZAAR_SINK_LAUNCHER` (`launcher_for`).  The Dagster sink assets and the
supervisor sensors use it, and so does `bazaar up`, so a sink is started and
judged the same way whoever asks.

- `local`: each driver is a `spark-submit` process on this machine, with its pid,
  log and status file under `BAZAAR_SINK_HOME` (`spark_jobs.processes`).

A sink's health comes from its own progress: the status file its driver writes
on every Structured Streaming progress event (`spark_jobs.sink.StatusFile`).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from engine.settings import to_env
from spark_jobs.processes import LocalProcess, children
from spark_jobs.settings import LauncherSettings

SINKS = ("trades", "player_states")
STATUS_STALE_S = 60.0  # Spark reports progress at least every 10 s, even with no data
# Hadoop's local file system through Java NIO (hadoop-bare-naked-local-fs): without Hadoop's native
# library, the stock one runs `chmod`, `ls -ld` and `readlink` as child processes of the driver JVM
# for files it creates, lists and renames. Its jar must be on the JVM's class path from the start.
LOCAL_FS_CLASS = "com.globalmentor.apache.hadoop.fs.BareLocalFileSystem"
# The default checkpoint manager goes through Hadoop's FileContext, whose local file system is
# fixed (not the one above) and resolves links with `readlink` on every rename.
FS_CHECKPOINTS = "org.apache.spark.sql.execution.streaming.checkpointing.FileSystemBasedCheckpointFileManager"


@dataclass
class SinkStatus:
    sink: str
    running: bool
    healthy: bool
    starting: bool  # running, not healthy yet, and within its startup time: not stalled
    where: str  # the driver's pid, or the service that runs it
    progress: dict = field(default_factory=dict)  # the driver's last status file
    log: str = ""

    @property
    def detail(self) -> str:
        p = self.progress
        state = "healthy" if self.healthy else "starting" if self.starting else (
            "running, not healthy" if self.running else "not running")
        if not p:
            return state
        flags = "".join(f", {p[k]} {what}" for k, what in (("future_dated", "future-dated"),
                                                           ("dropped_late", "DROPPED AS LATE")) if p.get(k))
        return (f"{state}; batch {p.get('batch_id', '-')}, {p.get('events_written', 0)} events, "
                f"{p.get('quarantined', 0)} quarantined{flags}, behind {p.get('offsets_behind_latest', '-')}")


class SinkLauncher(ABC):
    """Starts, stops and watches the sinks' drivers in one deployment."""

    @abstractmethod
    def start(self, sink: str) -> bool:
        """Start the sink unless it runs; wait until it reports. True if it was started now."""

    @abstractmethod
    def stop(self, sink: str) -> bool:
        """Stop the sink cleanly (between batches). True if it was running."""

    @abstractmethod
    def status(self, sink: str) -> SinkStatus:
        """Whether the sink runs and progresses, and its last progress."""


def pyspark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


class SinkProcess(LocalProcess):
    """One sink's driver as a local `spark-submit` process."""

    startup_timeout = 180.0
    stop_timeout = 60.0

    def __init__(self, settings: LauncherSettings, sink: str):
        super().__init__(settings.sink_home)
        self.settings, self.sink, self.name = settings, sink, f"sink-{sink}"

    @property
    def address(self) -> str:
        return f"{self.settings.warehouse_uri}/{self.sink}"

    @property
    def status_path(self) -> Path:
        return self.data_dir / "status.json"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.status_path.unlink(missing_ok=True)

    def environment(self) -> dict[str, str]:
        return {**to_env(self.settings), "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}

    def local_files_conf(self) -> list[str]:
        """spark-submit options for file:// paths on this machine (none for a cluster master)."""
        s, opts = self.settings, []
        if s.spark_master.startswith("local") and s.sink_local_fs_jar:  # executors elsewhere would lack the jar
            opts += ["--driver-class-path", s.sink_local_fs_jar, "--conf", f"spark.hadoop.fs.file.impl={LOCAL_FS_CLASS}"]
        if s.checkpoint_uri.startswith("file:"):
            opts += ["--conf", f"spark.sql.streaming.checkpointFileManagerClass={FS_CHECKPOINTS}"]
        return opts

    def command(self) -> list[str]:
        s = self.settings
        jars = ["--jars", s.sink_jars] if s.sink_jars else []
        return [str(pyspark_home() / "bin" / "spark-submit"), "--master", s.spark_master,
                "--driver-memory", s.spark_driver_memory, *jars,
                "--conf", "spark.driver.extraJavaOptions=-Duser.timezone=UTC", *self.local_files_conf(),
                str(Path(__file__).with_name("sink.py")), "--sink", self.sink, "--status-file", str(self.status_path)]

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


class LocalSinkLauncher(SinkLauncher):
    """The sinks' drivers as processes on this machine, under `BAZAAR_SINK_HOME`."""

    def __init__(self, settings: LauncherSettings):
        self.settings = settings

    def process(self, sink: str) -> SinkProcess:
        if sink not in SINKS:
            raise ValueError(f"no sink {sink!r}; the sinks are {', '.join(SINKS)}")
        return SinkProcess(self.settings, sink)

    def start(self, sink: str) -> bool:
        return self.process(sink).start()

    def stop(self, sink: str) -> bool:
        return self.process(sink).stop()

    def status(self, sink: str) -> SinkStatus:
        proc = self.process(sink)
        pid = proc.pid()
        healthy = pid is not None and proc.is_healthy()
        return SinkStatus(sink, running=pid is not None, healthy=healthy, starting=not healthy and proc.starting(),
                          where="-" if pid is None else f"pid {pid}", progress=proc.progress(),
                          log=str(proc.log_path))


def launcher_for(settings: LauncherSettings) -> SinkLauncher:
    """The launcher `BAZAAR_SINK_LAUNCHER` names."""
    launchers = {"local": LocalSinkLauncher}
    return launchers[settings.sink_launcher](settings)
