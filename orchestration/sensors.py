"""Sensors: a supervisor per sink; and the hourly report schedule."""


from dagster import (AssetSelection, DefaultScheduleStatus, DefaultSensorStatus, RunRequest,
                     ScheduleDefinition, SensorEvaluationContext, SkipReason, define_asset_job,
                     in_process_executor, sensor)

from orchestration.assets.pipeline import hive_tables, player_states_sink, trades_sink
from orchestration.resources import SparkSinksResource
from spark_jobs.launch import SINKS

SUPERVISE_EVERY_S = 30
SINK_ASSETS = {"trades": trades_sink, "player_states": player_states_sink}


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
sensors = [sink_supervisor(name) for name in SINKS]
