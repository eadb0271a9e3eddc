"""The warehouse's compaction and retention as Dagster runs them: the Spark job of
`spark_jobs.compact`, launched on this machine with the sinks' endpoints, its outcome read back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

from spark_jobs.launch import warehouse_job
from spark_jobs.settings import LauncherSettings, WarehouseSettings

LOG_TAIL = 40
SECRET = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY")  # variables that hold one, by their name


def run(sinks: LauncherSettings, opts: WarehouseSettings, args: list[str], log=None) -> list[dict]:
    """Run the job with `args` (`--day D ...`, `--retention`); returns an outcome per partition."""
    with tempfile.TemporaryDirectory(prefix="bazaar-compact-") as tmp:
        report = Path(tmp) / "outcome.json"
        command, env = warehouse_job(sinks, opts, [*args, "--report", str(report)])
        # the run's environment less every secret it holds (the job needs none: the metastore and the
        # files only), and the job's own settings
        mine = {k: v for k, v in os.environ.items() if not SECRET.search(k)}
        done = subprocess.run(command, env={**mine, **env}, capture_output=True, text=True)
        if log is not None:
            for line in done.stdout.splitlines():
                log.info(line)
        if done.returncode != 0 or not report.exists():
            raise RuntimeError(f"the warehouse job {' '.join(args)} exited {done.returncode}:\n{why(done.stderr)}")
        return json.loads(report.read_text())


def why(stderr: str) -> str:
    """What a failed job said: its Python traceback, without the JVM's stack frames (else the end of its
    error output)."""
    lines = [line for line in stderr.splitlines() if not line.lstrip().startswith(("at ", "... "))]
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
    return "\n".join(lines[starts[-1]:][-LOG_TAIL:] if starts else lines[-LOG_TAIL:])


def summary(outcomes: list[dict]) -> pd.DataFrame:
    """Files and rows before and after, per table, over the partitions compacted."""
    if not outcomes:
        return pd.DataFrame(columns=["table", "partitions", "action", "files_before", "files_after", "rows"])
    frame = pd.DataFrame(outcomes)
    return (frame.groupby(["table", "action"], as_index=False)
            .agg(partitions=("partition", "count"), files_before=("files_before", "sum"),
                 files_after=("files_after", "sum"), rows=("rows", "sum"))
            [["table", "partitions", "action", "files_before", "files_after", "rows"]])
