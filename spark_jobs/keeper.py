"""Run a service's command, and start it again whenever it exits, until told to stop: the one owner
that keeps every service of the local stack alive (`LocalProcess.start` runs each under one), as a
service manager's restart policy does (Compose's `restart: unless-stopped` in `docker/`).

    python -m spark_jobs.keeper --name NAME --state FILE [--stop-grandchildren] -- COMMAND [ARG...]

- SIGTERM or SIGINT is passed on to the command (with `--stop-grandchildren`, to the command's own
  children instead: a Spark driver stops its query cleanly when its Python process is asked, not
  its JVM), and the keeper exits once the command has.
- A command that exits is started again after a pause: 1 s, doubling while it keeps failing within
  `QUICK_S` of its start, at most `MAX_PAUSE_S`; back to 1 s after a run of two minutes or more.
  Before the start, whatever the dead command left in the keeper's process group (a server's
  workers, a JVM's children) is killed, so the new one finds its ports free.
- Each restart is a line in the service's log (the keeper's output is the service's log) and a count
  in the state file (JSON: the command's pid, restarts, last exit code and time), which
  `bazaar status` and the stack's metrics read (`read_state`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from spark_jobs.processes import children, process_table, start_ticks

MAX_PAUSE_S = 30.0
QUICK_S = 120.0  # a run shorter than this counts as a failure to start (a Spark driver boots in ~1 min)


def boot_id() -> str:
    """This boot of the machine (a pid of an earlier boot names nothing of ours)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def read_state(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def write_state(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(path)


def kill_leftovers(grace_s: float = 0.0) -> None:
    """End whatever the command left in our process group (never the keeper itself): with a grace
    period (a clean stop's children), SIGTERM and a wait first; then SIGKILL."""
    me = os.getpid()

    def others() -> list[int]:
        reap()
        return [pid for pid, _, group in process_table() if group == os.getpgrp() and pid != me and start_ticks(pid)]

    def signal_all(pids: list[int], sig: int) -> None:
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    if grace_s and (left := others()):
        signal_all(left, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while others() and time.monotonic() < deadline:
            time.sleep(0.1)
    for _ in range(50):
        left = others()
        if not left:
            return
        signal_all(left, signal.SIGKILL)
        time.sleep(0.1)


def reap() -> None:
    """Our own children that ended, collected, so they are gone rather than zombies."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the service's name, for its log")
    parser.add_argument("--state", type=Path, required=True, help="the state file (JSON)")
    parser.add_argument("--stop-grandchildren", action="store_true",
                        help="pass a stop signal to the command's children, not to the command")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    stopping = False
    child: Optional[subprocess.Popen] = None

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        if child is None or child.poll() is not None:
            return
        targets = children(child.pid) if args.stop_grandchildren else [child.pid]
        for pid in targets or [child.pid]:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if os.getpgrp() != os.getpid():  # a group of its own: what it kills on a restart is only the service's
        os.setpgid(0, 0)
    state = {"name": args.name, "keeper": os.getpid(), "keeper_ticks": start_ticks(os.getpid()), "boot": boot_id(),
             "restarts": 0, "last_exit": None, "last_restart_at": None}
    pause = 0.5  # doubled before the first pause
    try:
        while True:
            started = time.monotonic()
            child = subprocess.Popen(command)
            write_state(args.state, {**state, "child": child.pid, "child_ticks": start_ticks(child.pid),
                                     "started_at": time.time()})
            if stopping:  # told to stop while it was being started
                child.send_signal(signal.SIGTERM)
            code = child.wait()
            if stopping:
                kill_leftovers(grace_s=5.0)  # what the stopped service started and left (a server's children)
                return code
            ran = time.monotonic() - started
            pause = min(pause * 2, MAX_PAUSE_S) if ran < QUICK_S else 1.0
            print(f"keeper: {args.name} ({command[0]}) exited with {code} after {ran:.0f}s; starting it again in "
                  f"{pause:.0f}s (restart {state['restarts'] + 1})", flush=True)
            kill_leftovers()
            state.update(restarts=state["restarts"] + 1, last_exit=code, last_restart_at=time.time())
            write_state(args.state, {**state, "child": None})
            deadline = time.monotonic() + pause
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.1)
            if stopping:
                kill_leftovers(grace_s=5.0)
                return code
    except BaseException:
        # the keeper itself failing (a full disk for its state file, a bug): the service must not run
        # on unkept, where a later start would run a second one beside it
        if child is not None and child.poll() is None:
            child.kill()
        kill_leftovers()
        raise


if __name__ == "__main__":
    sys.exit(main())
