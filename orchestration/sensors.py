"""Sensors and schedules: a supervisor per sink; the hourly reports; the warehouse's daily
compaction and retention, and a sensor that compacts again a closed day late events reached."""

import json
import time
from datetime import timedelta, timezone

from dagster import (AssetSelection, DefaultScheduleStatus, DefaultSensorStatus, RunRequest, ScheduleDefinition,
                     ScheduleEvaluationContext, SensorEvaluationContext, SkipReason, define_asset_job,
                     in_process_executor, schedule, sensor)

from orchestration.assets.pipeline import hive_tables, player_states_sink, trades_sink
from orchestration.assets.warehouse import DAYS, compacted_days, warehouse_retention
from orchestration.resources import SparkSinksResource
from spark_jobs.launch import SINKS

SUPERVISE_EVERY_S = 30
LATE_EVERY_S = 300
SINK_ASSETS = {"trades": trades_sink, "player_states": player_states_sink}
# runs that rewrite the warehouse's files, labelled (their assets' pool keeps them one at a time)
WAREHOUSE_WRITER = {"bazaar/warehouse": "rewrite"}


def sink_supervisor(name: str):
    """Restarts the sink when it died or stalled; the restart is a run of the sink's asset, tagged with why."""

    @sensor(name=f"{name}_sink_supervisor", minimum_interval_seconds=SUPERVISE_EVERY_S,
            target=[SINK_ASSETS[name]], default_status=DefaultSensorStatus.RUNNING,
            description=f"Every {SUPERVISE_EVERY_S}s: restart the {name} sink if it died or stalled.")
    def _supervise(context: SensorEvaluationContext, sinks: SparkSinksResource):
        launcher = sinks.launcher()
        status = launcher.status(name)
        if status.healthy:
            return SkipReason(f"sink {name} healthy ({status.where})")
        if status.starting:
            return SkipReason(f"sink {name} starting ({status.where})")
        why = "stalled" if status.running else "died"
        # stopped before the run starts it again: a stalled driver; for drivers run by a service
        # manager, also one whose process is gone or hung (its restart is then the manager's)
        launcher.stop(name)
        context.log.warning(f"sink {name} {why}; requesting a restart")
        return RunRequest(tags={"bazaar/restart": name, "bazaar/restart_reason": why})

    return _supervise


# in one process: each report is one Trino query, quicker than a process per step. The views the
# reports read are made by `hive_tables`, so it runs first, with its checks.
reports_job = define_asset_job("reports_job", selection=AssetSelection.groups("reports") | AssetSelection.assets(hive_tables),
                               executor_def=in_process_executor, description="The views and every economy report.")
hourly_reports = ScheduleDefinition(name="hourly_reports", cron_schedule="0 * * * *", job=reports_job,
                                    default_status=DefaultScheduleStatus.RUNNING,
                                    description="Materializes every report at the top of each hour.")

compaction_job = define_asset_job("compaction_job", selection=[compacted_days],
                                  tags=WAREHOUSE_WRITER, description="Compacts the days of every table.")
retention_job = define_asset_job("retention_job", selection=[warehouse_retention], tags=WAREHOUSE_WRITER,
                                 description="Drops the days retention no longer keeps.")


@schedule(job=compaction_job, cron_schedule="30 0 * * *", execution_timezone="UTC",
          default_status=DefaultScheduleStatus.RUNNING, description="At 00:30 UTC, compacts the day that closed.")
def daily_compaction(context: ScheduleEvaluationContext):
    day = (context.scheduled_execution_time.astimezone(timezone.utc) - timedelta(days=1)).date().isoformat()
    return RunRequest(run_key=day, partition_key=day)


daily_retention = ScheduleDefinition(name="daily_retention", cron_schedule="0 1 * * *", execution_timezone="UTC",
                                     job=retention_job, default_status=DefaultScheduleStatus.RUNNING,
                                     description="At 01:00 UTC, drops the days retention no longer keeps.")


def late_days(cursor: dict, progress: dict[str, dict], first_day: str) -> tuple[dict, list[str]]:
    """The closed days a sink wrote to since the last look, and the cursor after it. `progress`: each
    sink's status (`late_days`: day -> batches written to it since the driver `pid` started)."""
    seen, wanted = {}, set()
    for name, p in progress.items():
        if not p.get("pid"):
            continue
        key, late = f"{name}:{p['pid']}", p.get("late_days") or {}
        seen[key] = late
        wanted |= {day for day, n in late.items() if n > cursor.get(key, {}).get(day, 0) and day >= first_day}
    return seen, sorted(wanted)


@sensor(job=compaction_job, minimum_interval_seconds=LATE_EVERY_S, default_status=DefaultSensorStatus.RUNNING,
        description=f"Every {LATE_EVERY_S // 60} minutes: compacts again each closed day late events reached.")
def late_events_compaction(context: SensorEvaluationContext, sinks: SparkSinksResource):
    launcher = sinks.launcher()
    cursor, days = late_days(json.loads(context.cursor or "{}"),
                             {name: launcher.status(name).progress for name in SINKS}, DAYS.start.date().isoformat())
    context.update_cursor(json.dumps(cursor))
    if not days:
        return SkipReason("no late events since the last look")
    return [RunRequest(run_key=f"late-{day}-{int(time.time())}", partition_key=day) for day in days]


sensors = [*(sink_supervisor(name) for name in SINKS), late_events_compaction]
schedules = [hourly_reports, daily_compaction, daily_retention]
