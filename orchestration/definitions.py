"""Bazaar's Dagster code location (loaded by workspace.yaml).

Resources come from the deployment named by BAZAAR_DEPLOYMENT: `local` (the
default, the local stack) or `cluster` (endpoints and secrets from EnvVar).
"""

from __future__ import annotations

import os

from dagster import Definitions

from orchestration.assets.pipeline import events_topic, hive_tables, player_states_sink, trades_sink
from orchestration.assets.reports import report_assets
from orchestration.assets.warehouse import compacted_days, warehouse_retention
from orchestration.checks import checks
from orchestration.resources import resources_for
from orchestration.sensors import compaction_job, reports_job, retention_job, schedules, sensors

defs = Definitions(
    assets=[events_topic, trades_sink, player_states_sink, hive_tables, *report_assets, compacted_days,
            warehouse_retention],
    asset_checks=checks,
    jobs=[reports_job, compaction_job, retention_job],
    sensors=sensors,
    schedules=schedules,
    resources=resources_for(os.environ.get("BAZAAR_DEPLOYMENT", "local")),
)
