"""Run a command, and start it again whenever it exits, until told to stop: the local stack's
stand-in for a service manager's restart policy (Compose's `restart: unless-stopped`), for the
services that run so in the cluster shape (the sinks' drivers).

    python -m bazaar.stack.keep_running COMMAND [ARG...]

SIGTERM or SIGINT is passed on to the command, and this exits once the command has.  A command
that keeps failing is started again after a growing pause (1 s, doubling, at most 30 s; back to
1 s after a run of two minutes or more).  A few lines rather than a supervisor daemon: the stack already keeps
each service's pid, log and health (`spark_jobs.processes`); only the restart is missing.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Optional

MAX_PAUSE_S = 30.0
QUICK_S = 120.0  # a run shorter than this counts as a failure to start (a Spark driver boots in ~1 min)


def main(command: list[str]) -> int:
    if not command:
        print("usage: python -m bazaar.stack.keep_running COMMAND [ARG...]", file=sys.stderr)
        return 2
    stopping = False
    child: Optional[subprocess.Popen] = None

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    pause = 0.5  # doubled before the first pause
    while True:
        started = time.monotonic()
        child = subprocess.Popen(command)
        if stopping:  # told to stop while it was being started
            child.send_signal(signal.SIGTERM)
        code = child.wait()
        if stopping:
            return code
        ran = time.monotonic() - started
        pause = min(pause * 2, MAX_PAUSE_S) if ran < QUICK_S else 1.0
        print(f"keep_running: {command[0]} exited with {code} after {ran:.0f}s; starting it again in {pause:.0f}s",
              flush=True)
        deadline = time.monotonic() + pause
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.1)
        if stopping:
            return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
