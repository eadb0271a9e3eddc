"""The keeper every local service runs under: a command that exits is started again, with what it
left in the process group killed first; a stop reaches the command and nothing starts again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from spark_jobs.keeper import read_state
from spark_jobs.processes import LocalProcess


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def wait(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_command_that_dies_is_started_again_without_what_it_left(tmp_path):
    state, marks = tmp_path / "svc.keeper.json", tmp_path / "marks"
    # each run leaves a child behind in the group (as a server's worker would), writes its pid, then dies
    script = f"sleep 300 & echo $! >> {marks}; sleep 0.5; exit 3"
    keeper = subprocess.Popen([sys.executable, "-m", "spark_jobs.keeper", "--name", "svc", "--state", str(state),
                               "--", "sh", "-c", script], start_new_session=True, stdout=subprocess.PIPE, text=True)
    try:
        assert wait(lambda: read_state(state).get("restarts", 0) >= 2)
        st = read_state(state)
        assert st["last_exit"] == 3 and st["keeper"] == keeper.pid
        leftovers = [int(p) for p in marks.read_text().split()]
        assert len(leftovers) >= 2
        assert wait(lambda: not any(alive(p) for p in leftovers[:-1]))  # each run's leftover killed before the next
    finally:
        os.kill(keeper.pid, signal.SIGTERM)
        try:
            out, _ = keeper.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # a failure leaves nothing running
            os.killpg(keeper.pid, signal.SIGKILL)
            out, _ = keeper.communicate(timeout=10)
    assert "keeper: svc (sh) exited with 3" in out and "(restart 2)" in out
    assert wait(lambda: not any(alive(int(p)) for p in marks.read_text().split()))  # a stop leaves nothing


def test_a_stop_reaches_the_command_and_nothing_starts_again(tmp_path):
    state, stopped = tmp_path / "svc.keeper.json", tmp_path / "stopped"
    script = f"trap 'echo bye > {stopped}; exit 0' TERM; while true; do sleep 0.1; done"
    keeper = subprocess.Popen([sys.executable, "-m", "spark_jobs.keeper", "--name", "svc", "--state", str(state),
                               "--", "sh", "-c", script], start_new_session=True)
    try:
        assert wait(lambda: read_state(state).get("child") is not None)
        child = read_state(state)["child"]
        os.kill(keeper.pid, signal.SIGTERM)
        assert keeper.wait(timeout=30) == 0
        assert stopped.read_text().strip() == "bye" and not alive(child)
        assert read_state(state)["restarts"] == 0
    finally:
        try:
            os.killpg(keeper.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        keeper.wait(timeout=10)


def test_a_stop_can_go_to_the_commands_children_alone(tmp_path):
    """--stop-grandchildren (a sink: spark-submit's JVM runs the Python driver as its child): the
    child's own child is asked to stop, the child is not signalled and exits when its child has."""
    state, asked, parent_asked = tmp_path / "svc.keeper.json", tmp_path / "asked", tmp_path / "parent-asked"
    inner = f"trap 'echo yes > {asked}; exit 0' TERM; while true; do sleep 0.1; done"
    outer = f"trap 'echo yes > {parent_asked}' TERM; sh -c \"{inner}\" & wait $!; wait $!"
    keeper = subprocess.Popen([sys.executable, "-m", "spark_jobs.keeper", "--name", "svc", "--state", str(state),
                               "--stop-grandchildren", "--", "sh", "-c", outer], start_new_session=True)
    try:
        assert wait(lambda: read_state(state).get("child") is not None)
        assert wait(lambda: len([p for p in os.listdir("/proc") if p.isdigit()
                                 and _parent(int(p)) == read_state(state)["child"]]) == 1)
        os.kill(keeper.pid, signal.SIGTERM)
        assert keeper.wait(timeout=30) == 0
        assert asked.exists() and not parent_asked.exists()
    finally:  # a failure leaves nothing running: the keeper's group, by its id
        try:
            os.killpg(keeper.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        keeper.wait(timeout=10)


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat[stat.rindex(")") + 2:].split()[1])


class Sleeper(LocalProcess):
    name = "sleeper"

    def command(self) -> list[str]:
        return ["sleep", "300"]

    def healthy(self) -> bool:
        return self.main_pid() is not None


def test_a_service_left_running_by_a_killed_keeper_never_runs_twice(tmp_path):
    """Its keeper SIGKILLed alone, the service runs on unkept; the next start (or stop) ends it first."""
    svc = Sleeper(tmp_path)
    svc.start()
    try:
        keeper, child = svc.pid(), svc.main_pid()
        os.kill(keeper, signal.SIGKILL)
        assert wait(lambda: svc.pid() is None) and alive(child)
        svc.start()
        assert not alive(child) and svc.main_pid() not in (None, child)
        orphan = svc.main_pid()
        os.kill(svc.pid(), signal.SIGKILL)
        assert wait(lambda: svc.pid() is None) and alive(orphan)
        svc.stop()
        assert wait(lambda: not alive(orphan))
    finally:
        svc.stop()
