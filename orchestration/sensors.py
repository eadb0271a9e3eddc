"""Sensors: a supervisor per sink, new partitions; and the hourly report schedule."""


import json
from pathlib import Path
from urllib.parse import urlparse

from dagster import (AssetSelection, DefaultScheduleStatus, DefaultSensorStatus, RunRequest,
                     ScheduleDefinition, SensorEvaluationContext, SkipReason, define_asset_job,
                     in_process_executor, sensor)

from orchestration.assets.pipeline import SINKS, hive_tables, player_states_sink, trades_sink
from orchestration.resources import SparkSinksResource

SUPERVISE_EVERY_S = 30
SINK_ASSETS = {"trades": trades_sink, "player_states": player_states_sink}


def sink_supervisor(name: str):
    """Restarts the sink when it died or stalled; the restart is a run of the sink's asset, tagged with why."""

    @sensor(name=f"{name}_sink_supervisor", minimum_interval_seconds=SUPERVISE_EVERY_S,
            target=[SINK_ASSETS[name]], default_status=DefaultSensorStatus.RUNNING,
            description=f"Every {SUPERVISE_EVERY_S}s: restart the {name} sink if it died or stalled.")
    def _supervise(context: SensorEvaluationContext, sinks: SparkSinksResource):
        svc = sinks.sink(name)
        status = svc.status()
        if status.healthy:
            return SkipReason(f"sink {name} healthy (pid {status.pid})")
        if svc.starting():
            return SkipReason(f"sink {name} starting (pid {status.pid})")
        why = "died" if status.pid is None else "stalled"
        if status.pid is not None:
            svc.stop()  # a stalled sink is stopped before the run starts it again
        context.log.warning(f"sink {name} {why}; requesting a restart")
        return RunRequest(tags={"bazaar/restart": name, "bazaar/restart_reason": why})

    return _supervise


def warehouse_partitions(warehouse_uri: str) -> list[str]:
    """`table/dt=...` folders under a file:// warehouse (other file systems: the sinks register their own)."""
    url = urlparse(warehouse_uri)
    if url.scheme != "file":
        return []
    root = Path(url.path)
    return sorted(str(p.relative_to(root)) for p in root.glob("*/dt=*") if p.is_dir()) + \
        sorted(str(p.relative_to(root)) for p in root.glob("quarantine/source=*/dt=*") if p.is_dir())


@sensor(target=[hive_tables], minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
        description="Registers new day partitions (cursor: the partition folders already seen).")
def new_partitions(context: SensorEvaluationContext, sinks: SparkSinksResource):
    found = warehouse_partitions(sinks.warehouse_uri)
    seen = set(json.loads(context.cursor)) if context.cursor else set()
    new = sorted(set(found) - seen)
    if not new:
        return SkipReason("no new partition folders")
    context.update_cursor(json.dumps(found))
    return RunRequest(run_key=f"partitions:{new[-1]}:{len(found)}", tags={"bazaar/new_partitions": ", ".join(new)})


# in one process: each report is one Trino query, quicker than a process per step
reports_job = define_asset_job("reports_job", selection=AssetSelection.groups("reports"),
                               executor_def=in_process_executor, description="Every economy report.")
hourly_reports = ScheduleDefinition(name="hourly_reports", cron_schedule="0 * * * *", job=reports_job,
                                    default_status=DefaultScheduleStatus.RUNNING,
                                    description="Materializes every report at the top of each hour.")
sensors = [sink_supervisor(name) for name in SINKS] + [new_partitions]
