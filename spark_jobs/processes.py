"""Long-running processes on this machine: start, health-check, stop by pid.

Each process keeps, under a home folder:
`run/NAME.pid` (pid and the process's start time, so a recycled pid is never
mistaken for ours), `logs/NAME.log`, and its own data in `NAME/`.

Each runs under a keeper (`spark_jobs.keeper`) that starts it again when it exits, with a
backoff, and counts the restarts in `run/NAME.keeper.json`; the pid file is the keeper's (the
process group's leader), `main_pid()` the service's own. `stop()` asks the keeper, which passes
the request on and does not start the service again. Before a start, the ports the service
will bind are checked (`ports()`): one another program holds is named with that program.

The sinks' local launcher (`spark_jobs.launch`) runs the sinks' drivers this
way; the local stack (`bazaar up`) and the test fixtures start every other
service through the same class, each with their own home folder and ports.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


# What a service inherits from the environment of whoever starts it: where programs, libraries and
# certificates are, the locale and the time zone. Never a secret or a setting the operator's shell
# holds: a service's settings and secrets are its `environment()`, built for it.
INHERITED = frozenset({"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
                       "PYTHONPATH", "VIRTUAL_ENV", "JAVA_HOME", "LD_LIBRARY_PATH", "SSL_CERT_FILE", "SSL_CERT_DIR",
                       "REQUESTS_CA_BUNDLE"})


def inherited_environment() -> dict[str, str]:
    """The part of this process's environment a service it starts inherits (`INHERITED`, `LC_*`)."""
    return {k: v for k, v in os.environ.items() if k in INHERITED or k.startswith("LC_")}

class ServiceError(RuntimeError):
    pass


def start_ticks(pid: int) -> Optional[str]:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie is dead for our purposes
        return None
    return fields[19]


@dataclass
class Status:
    name: str
    pid: Optional[int]
    healthy: bool
    address: str
    detail: str = ""


class LocalProcess:
    """A long-running local process with a protocol-level health check."""

    name: str = ""
    startup_timeout: float = 60.0
    stop_timeout: float = 30.0
    stop_grandchildren: bool = False  # the keeper asks the command's children to stop, not the command
    def __init__(self, home: Path):
        self.home = Path(home)

    # -- to override -------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return {}

    def prepare(self) -> None:
        """Fetch what is missing and write configuration; called before each start."""

    def healthy(self) -> bool:
        raise NotImplementedError

    def after_start(self) -> None:
        """Idempotent provisioning once healthy (on every `up`, started now or not)."""

    def ports(self) -> dict[int, str]:
        """The ports the service binds on this machine, each with the setting that moves it."""
        return {}

    @property
    def address(self) -> str:
        return ""

    # -- paths -------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.home / self.name

    @property
    def log_path(self) -> Path:
        return self.home / "logs" / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.home / "run" / f"{self.name}.pid"

    @property
    def keeper_path(self) -> Path:
        return self.home / "run" / f"{self.name}.keeper.json"

    def keeper_state(self) -> dict:
        """The keeper's state file: the service's pid, its restarts, the last exit code."""
        from spark_jobs.keeper import read_state

        return read_state(self.keeper_path) if self.pid() is not None else {}

    def main_pid(self) -> Optional[int]:
        """The service's own process (the keeper's child), if it runs."""
        keeper, child = self.pid(), self.keeper_state().get("child")
        if keeper is None or child is None:
            return None
        try:
            stat = Path(f"/proc/{child}/stat").read_text()
        except OSError:
            return None
        fields = stat[stat.rindex(")") + 2:].split()
        return child if fields[0] != "Z" and int(fields[1]) == keeper else None

    # -- lifecycle ---------------------------------------------------------
    def pid(self) -> Optional[int]:
        """Our process's pid if it is alive, else None."""
        try:
            pid_text, ticks = self.pid_path.read_text().split()
            pid = int(pid_text)
        except (OSError, ValueError):
            return None
        return pid if start_ticks(pid) == ticks else None

    def starting(self) -> bool:
        """Running, not healthy yet, and started less than `startup_timeout` ago (by `start`, or again
        by its keeper after it died), or waiting out its keeper's pause before a restart: a supervisor
        must give it that long before calling it stalled (a JVM under load takes a while)."""
        if self.pid() is None:
            return False
        state = self.keeper_state()
        if state and state.get("child") is None:
            return True  # between a death and the keeper's restart
        try:
            since = state.get("started_at") or self.pid_path.stat().st_mtime  # the pid file is written at start
        except OSError:
            return False
        return time.time() - since < self.startup_timeout and not self.is_healthy()

    def is_healthy(self) -> bool:
        try:
            return self.healthy()
        except Exception:  # a health probe fails closed, whatever the client library raises
            return False

    def start(self) -> bool:
        """Start unless already running; wait until healthy. True if it was started now."""
        if self.pid() is not None:
            self.wait_healthy()
            self.after_start()
            return False
        self.end_orphans()
        check_ports(self.name, self.ports())
        self.prepare()
        for d in (self.data_dir, self.log_path.parent, self.pid_path.parent):
            d.mkdir(parents=True, exist_ok=True)
        self.keeper_path.unlink(missing_ok=True)
        keeper = [sys.executable, "-m", "spark_jobs.keeper", "--name", self.name, "--state", str(self.keeper_path),
                  *(["--stop-grandchildren"] if self.stop_grandchildren else []), "--"]
        env = {**inherited_environment(), **self.environment()}
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- starting {self.name} at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                [*keeper, *self.command()], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=self.data_dir, start_new_session=True,
            )
        ticks = start_ticks(proc.pid)
        self.pid_path.write_text(f"{proc.pid} {ticks}\n")
        try:
            self.wait_healthy(proc)
        except ServiceError:
            self.stop()  # never leave a half-started process behind
            raise
        self.after_start()
        return True

    def wait_healthy(self, proc: Optional[subprocess.Popen] = None) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.is_healthy():
                return
            if self.pid() is None or (proc is not None and proc.poll() is not None) or (
                    proc is not None and self.keeper_state().get("restarts")):
                raise ServiceError(f"{self.name} exited while starting; see {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.2)
        raise ServiceError(
            f"{self.name} not healthy after {self.startup_timeout:.0f}s; see {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self) -> bool:
        """Stop our process (and its process group). True if something was stopped."""
        pid = self.pid()
        if pid is None:
            self.end_orphans()  # a keeper killed alone left its service running: that goes too
            self.pid_path.unlink(missing_ok=True)
            return False
        self.terminate(pid)
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline and self.pid() is not None:
            reap(pid)
            time.sleep(0.1)
        if self.pid() is not None:
            self._signal(pid, signal.SIGKILL)
            while self.pid() is not None:
                reap(pid)
                time.sleep(0.05)
        self.pid_path.unlink(missing_ok=True)
        return True

    def terminate(self, pid: int) -> None:
        """Ask the keeper to stop the service (SIGTERM; it passes it on and starts nothing again);
        `stop` waits, then kills the whole process group."""
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def end_orphans(self) -> None:
        """SIGKILL what an earlier start left running without its keeper (a keeper killed alone): never
        two of a service at once (two sinks on one checkpoint)."""
        from spark_jobs.keeper import boot_id, read_state

        try:
            group = int(self.pid_path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        # ours only if the keeper that wrote its state ran since this boot, the service it started is still
        # alive (the same pid and start time) in that group, and no other process took the group's id
        state = read_state(self.keeper_path)
        child, ticks = state.get("child"), state.get("child_ticks")
        if (state.get("boot") != boot_id() or start_ticks(group) is not None or child is None
                or start_ticks(child) != ticks or ticks is None):
            return
        table = process_table()
        if not any(pid == child and g == group for pid, _, g in table):
            return
        left = [pid for pid, _, g in table if g == group and start_ticks(pid) is not None]
        if left:
            print(f"{self.name}: ending {len(left)} processes its dead keeper left (group {group})", flush=True)
            self._signal(group, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(start_ticks(p) is not None for p in left):
                time.sleep(0.1)

    def crash(self) -> Optional[int]:
        """SIGKILL of the service's own process, as a crash would take it: its keeper starts it
        again (tests use it). Returns the pid killed."""
        pid = self.main_pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pid

    def restarts(self) -> int:
        return int(self.keeper_state().get("restarts") or 0)

    def kill(self) -> None:
        """SIGKILL of the service and its keeper, as the loss of the machine would (tests use it); the
        pid file stays, as after a crash."""
        pid = self.pid()
        if pid is not None:
            self._signal(pid, signal.SIGKILL)
            while self.pid() is not None:
                reap(pid)
                time.sleep(0.05)

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        try:
            os.killpg(pid, sig)  # started with start_new_session, so pid is the group id
        except ProcessLookupError:
            pass

    def status(self) -> Status:
        pid = self.pid()
        healthy = pid is not None and self.is_healthy()
        detail = "" if healthy else ("not running" if pid is None else "running, not healthy")
        return Status(self.name, self.main_pid() or pid, healthy, self.address, detail)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def port_holder(port: int) -> Optional[str]:
    """Who listens on `port` on this machine, as `pid N (command)`, or None when it is free."""
    import psutil

    try:
        conns = psutil.net_connections(kind="inet")
    except psutil.Error:
        conns = []
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return "a process of another user"
            try:
                cmd = " ".join(psutil.Process(conn.pid).cmdline())[:160]
            except psutil.Error:
                cmd = "?"
            return f"pid {conn.pid} ({cmd})"
    return None


def check_ports(name: str, ports: dict[int, str]) -> None:
    """Refuse to start `name` when another program holds one of its ports, naming that program."""
    for port, setting in ports.items():
        holder = port_holder(port)
        if holder is not None:
            raise ServiceError(f"{name} cannot start: port {port} is held by {holder}. Stop that program, or "
                               f"move {name} to a free port with {setting}=PORT")


def process_table() -> list[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every process on this machine, from /proc."""
    table = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table.append((int(proc.name), int(fields[1]), int(fields[2])))
    return table


def children(pid: int) -> list[int]:
    """The pids whose parent is `pid`."""
    return [child for child, parent, _ in process_table() if parent == pid]


def group_rss_mib(pgid: int) -> float:
    """Resident memory of every process in a process group (a service and its children)."""
    total_kib = 0
    for pid, _, group in process_table():
        if group != pgid:
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total_kib += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total_kib / 1024


def reap(pid: int) -> None:
    """Collect our own child's exit status so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
