"""How a deployment starts, stops and watches the two sinks' drivers.

One abstraction, `SinkLauncher`, with one implementation per deployment, picked
by `BAZAAR_SINK_LAUNCHER` (`launcher_for`).  The Dagster sink assets and the
supervisor sensors use it, and so does `bazaar up`, so a sink is started and
judged the same way whoever asks.

- `local`: each driver is a `spark-submit` process on this machine, with its pid,
  log and status file under `BAZAAR_SINK_HOME` (`spark_jobs.processes`).
- `service`: each driver is a service of its own, run and restarted by the
  deployment's service manager (a container with a restart policy in Compose; a
  supervised process in `bazaar up --profile cluster`), in client mode against a
  Spark cluster.  This launcher sees it only through its status file, in
  `BAZAAR_SINK_HOME` shared with the drivers, and stops it by asking: the driver
  finds a stop request beside its status file, stops between batches and exits,
  and its service manager starts it again.

A sink's health comes from its own progress: the status file its driver writes
on every Structured Streaming progress event (`spark_jobs.sink.StatusFile`).
"""

from __future__ import annotations

import json
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from engine.settings import to_env
from spark_jobs.processes import LocalProcess, children
from spark_jobs.settings import LauncherSettings, WarehouseSettings

SINKS = ("trades", "player_states")
STATUS_STALE_S = 60.0  # Spark reports progress at least every 10 s, even with no data
BATCH_STALL_S = 600.0  # a batch under way this long, the driver still beating, is a stall
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
    # spark-submit's JVM runs the Python driver as its child: the keeper asks the driver alone to
    # stop; it stops the query and Spark, then the JVM exits with it (signalled too, the JVM's own
    # shutdown hook would stop Spark under the query)
    stop_grandchildren = True

    def __init__(self, settings: LauncherSettings, sink: str):
        super().__init__(settings.sink_home)
        self.settings, self.sink, self.name = settings, sink, f"sink-{sink}"

    @property
    def address(self) -> str:
        return f"{self.settings.warehouse_uri}/{self.sink}"

    @property
    def status_path(self) -> Path:
        return status_path(self.home, self.sink)

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.status_path.unlink(missing_ok=True)

    def environment(self) -> dict[str, str]:
        return {**to_env(self.settings), "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}

    def local_files_conf(self) -> list[str]:
        return local_files_conf(self.settings, self.settings.spark_master)

    def submit_options(self) -> list[str]:
        """spark-submit's options for the driver (client mode)."""
        s = self.settings
        jars = ["--jars", s.sink_jars] if s.sink_jars else []
        return ["--master", s.spark_master, "--driver-memory", s.spark_driver_memory, *jars,
                "--conf", "spark.driver.extraJavaOptions=-Duser.timezone=UTC", *self.local_files_conf()]

    def driver_args(self) -> list[str]:
        return ["--sink", self.sink, "--status-file", str(self.status_path)]

    def command(self) -> list[str]:
        return [str(pyspark_home() / "bin" / "spark-submit"), *self.submit_options(),
                str(Path(__file__).with_name("sink.py")), *self.driver_args()]

    def progress(self) -> dict:
        return read_progress(self.status_path)

    def healthy(self) -> bool:
        """The driver reports progress, and it is this process's driver (after a crash, its keeper's
        new one; not the status file the dead one left)."""
        p, main = self.progress(), self.main_pid()
        return (p.get("pid") is not None and main is not None and p["pid"] in (main, *children(main))
                and progressing(p))


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


def local_files_conf(s: LauncherSettings, master: str) -> list[str]:
    """spark-submit options for file:// paths on this machine (none for a cluster master)."""
    opts = []
    if master.startswith("local") and s.sink_local_fs_jar:  # executors elsewhere would lack the jar
        opts += ["--driver-class-path", s.sink_local_fs_jar, "--conf", f"spark.hadoop.fs.file.impl={LOCAL_FS_CLASS}"]
    if s.checkpoint_uri.startswith("file:"):
        opts += ["--conf", f"spark.sql.streaming.checkpointFileManagerClass={FS_CHECKPOINTS}"]
    return opts


def warehouse_job(s: LauncherSettings, w: WarehouseSettings, args: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command and environment of the compaction and retention job (`spark_jobs.compact`), a Spark
    application of its own on this machine (`BAZAAR_COMPACT_SPARK_MASTER`) beside the sinks, niced
    (`BAZAAR_COMPACT_NICE`) so that the sinks' batches keep their pace while it runs."""
    command = ["nice", "-n", str(w.compact_nice), str(pyspark_home() / "bin" / "spark-submit"),
               "--master", w.compact_spark_master, "--driver-memory", w.compact_driver_memory,
               "--conf", "spark.driver.extraJavaOptions=-Duser.timezone=UTC", "--conf", "spark.log.level=WARN",
               # a day's input files are listed by the driver, not by a Spark job of a task per file
               # (the default above 32 paths), which took half of a rewrite's time
               "--conf", "spark.sql.sources.parallelPartitionDiscovery.threshold=1000000",
               *local_files_conf(s, w.compact_spark_master), str(Path(__file__).with_name("compact.py")), *args]
    # the sinks' settings less their Kafka password: the job reads no topic
    env = {**to_env(s.model_copy(update={"spark_master": w.compact_spark_master, "sink_kafka_password": None}), w),
           "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    return command, env


def status_path(sink_home: Path, sink: str) -> Path:
    """Where a sink's driver writes its progress (`--status-file`)."""
    return Path(sink_home) / f"sink-{sink}" / "status.json"


def stop_request_path(status_file: Path) -> Path:
    """The file that asks a driver to stop between batches (beside its status file)."""
    return Path(status_file).with_name("stop-requested")


def read_progress(path: Path | str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def progressing(progress: dict) -> bool:
    """The driver's query runs and reported progress lately, or is in a batch (a backlog's first, on a
    loaded machine) that started less than `BATCH_STALL_S` ago while the driver's heartbeat is fresh."""
    if progress.get("state") not in ("started", "running", "idle"):
        return False
    now = time.time()
    if now - progress.get("written_at", 0) < STATUS_STALE_S:
        return True
    since = progress.get("batch_since")
    return (since is not None and now - since < BATCH_STALL_S
            and now - progress.get("alive_at", 0) < STATUS_STALE_S)


class ServiceSinkLauncher(SinkLauncher):
    """Drivers run by the deployment's service manager, seen through their status files."""

    startup_timeout = SinkProcess.startup_timeout

    def __init__(self, settings: LauncherSettings):
        self.settings = settings

    def paths(self, sink: str) -> tuple[Path, Path]:
        if sink not in SINKS:
            raise ValueError(f"no sink {sink!r}; the sinks are {', '.join(SINKS)}")
        status = status_path(self.settings.sink_home, sink)
        return status, stop_request_path(status)

    def start(self, sink: str) -> bool:
        """Nothing to start here: wait until the service's driver reports (after a restart too)."""
        status, _ = self.paths(sink)
        deadline = time.monotonic() + self.startup_timeout
        while not progressing(read_progress(status)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"sink {sink} has not reported for {self.startup_timeout:.0f}s: its driver runs "
                                   f"as a service of its own (sink-{sink}); see that service's log and status "
                                   f"(`docker compose ps`, or `bazaar status --profile cluster`)")
            time.sleep(1)
        return False

    def stop(self, sink: str) -> bool:
        """Ask the driver to stop between batches; its service manager starts it again."""
        status, request = self.paths(sink)
        request.parent.mkdir(parents=True, exist_ok=True)
        request.write_text(f"{time.time()}\n")  # the driver removes it when it stops
        request.with_name("stop-asked-at").write_text(f"{time.time()}\n")  # kept: when it was asked
        return progressing(read_progress(status))

    def status(self, sink: str) -> SinkStatus:
        status, request = self.paths(sink)
        progress = read_progress(status)
        now = time.time()
        fresh = now - max(progress.get("written_at", 0), progress.get("alive_at", 0)) < STATUS_STALE_S
        try:  # a stop asked for lately: the driver is stopping or its restart is under way
            asked = now - request.with_name("stop-asked-at").stat().st_mtime < self.startup_timeout
        except OSError:
            asked = False
        # a driver reports `starting` before Spark's start-up, which takes a minute or more
        booting = progress.get("state") == "starting" and now - progress.get("written_at", 0) < self.startup_timeout
        healthy = progressing(progress)
        return SinkStatus(sink, running=fresh, healthy=healthy, starting=(asked or booting) and not healthy,
                          where=f"service sink-{sink}" + (f", pid {progress['pid']}" if "pid" in progress else ""),
                          progress=progress, log=f"the log of service sink-{sink}")


def launcher_for(settings: LauncherSettings) -> SinkLauncher:
    """The launcher `BAZAAR_SINK_LAUNCHER` names."""
    launchers = {"local": LocalSinkLauncher, "service": ServiceSinkLauncher}
    return launchers[settings.sink_launcher](settings)
