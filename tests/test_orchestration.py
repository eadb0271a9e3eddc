"""The Dagster code location against the real stack: assets, checks, sensors, schedule,
and the report downloads."""

import io
import json
import os
import random
from collections import Counter

import pandas as pd
import pytest
import requests
from dagster import Definitions, RunRequest, SkipReason, build_sensor_context, materialize

from bazaar import reports, warehouse
from bazaar.stack import RelayService, ReportsService, SinkService
from orchestration.assets.pipeline import events_topic, hive_tables, player_states_sink, trades_sink
from orchestration.assets.reports import report_assets
from orchestration.checks import checks
from orchestration.definitions import defs
from orchestration.resources import local_resources
from orchestration.sensors import new_partitions, sink_supervisor
from tests.pipeline import counts_settle, pipeline_settings, played_ledger


@pytest.fixture(scope="module")
def orch(settings, tmp_path_factory, redis_service, kafka_service, trino_service):
    s = pipeline_settings(settings, tmp_path_factory.mktemp("orchestration"))
    relay = RelayService(s)
    resources = local_resources(s)
    try:
        result = materialize([events_topic, trades_sink, player_states_sink], resources=resources)
        assert result.success
        relay.start()
        yield s, resources
    finally:
        for svc in (relay, SinkService(s, "trades"), SinkService(s, "player_states"), ReportsService(s)):
            svc.stop()


@pytest.fixture(scope="module")
def ledger(orch):
    return played_ledger(orch[0], players=25, trades=300, seed=21)


def test_definitions_load():
    Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {"events_topic", "trades_sink", "player_states_sink", "hive_tables", *reports.REPORTS}
    assert {s.name for s in defs.sensors} == {"trades_sink_supervisor", "player_states_sink_supervisor",
                                              "new_partitions"}
    (schedule,) = defs.schedules
    assert schedule.cron_schedule == "0 * * * *"


def test_topic_asset_is_idempotent_and_sinks_run(orch):
    s, resources = orch
    result = materialize([events_topic, trades_sink], resources=resources)
    meta = result.asset_materializations_for_node("events_topic")[0].metadata
    assert meta["created"].value is False and meta["partitions"].value == s.topic_partitions
    sink_meta = result.asset_materializations_for_node("trades_sink")[0].metadata
    assert sink_meta["started_now"].value is False and sink_meta["pid"].value == SinkService(s, "trades").pid()


def test_tables_reports_and_checks_run_against_the_stack(orch, ledger):
    s, resources = orch
    result = materialize([hive_tables, *report_assets, *checks], resources=resources)
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {"tables_match_engine_counters", "no_duplicate_events", "quarantine_below_threshold"}
    assert all(e.passed for e in evaluations.values()), {k: e.metadata for k, e in evaluations.items()}
    assert evaluations["tables_match_engine_counters"].metadata["trades_tables"].value == len(ledger.trades)

    stored = pd.read_csv(reports.report_dir(s.home, "trade_count") / "report.csv")
    assert stored.iloc[0, 0] == len(ledger.trades)
    rejected = Counter(a["fail_reason"] for _, a in ledger.trades if a["status"] == "rejected")
    by_reason = pd.read_parquet(reports.report_dir(s.home, "rejections_by_reason") / "report.parquet")
    assert dict(zip(by_reason.fail_reason, by_reason.trades)) == dict(rejected)
    classes = pd.read_parquet(reports.report_dir(s.home, "class_wealth") / "report.parquet")
    latest = {}
    for st in ledger.states:
        if st["version"] >= latest.get(st["player_id"], {"version": 0})["version"]:
            latest[st["player_id"]] = st
    assert dict(zip(classes.player_class, classes.players)) == dict(Counter(st["player_class"]
                                                                            for st in latest.values()))
    meta = result.asset_materializations_for_node("most_traded_items")[0].metadata
    assert "chart" in meta and "item_traded_name" in meta["preview"].value
    assert (reports.report_dir(s.home, "most_traded_items") / "chart.png").read_bytes()[:4] == b"\x89PNG"


def test_supervisor_restarts_a_killed_sink_without_loss(orch, ledger):
    s, resources = orch
    supervise = sink_supervisor("trades")
    assert "healthy" in supervise(build_sensor_context(resources=resources)).skip_message
    # just started and not reporting yet (a JVM under load takes a while): left alone, not "stalled"
    sink = SinkService(s, "trades")
    sink.status_path.unlink()
    os.utime(sink.pid_path)
    assert "starting" in supervise(build_sensor_context(resources=resources)).skip_message
    SinkService(s, "trades").kill()
    ledger.trade(100, random.Random(22))  # trades go on while the sink is down
    request = supervise(build_sensor_context(resources=resources))
    assert isinstance(request, RunRequest) and request.tags["bazaar/restart_reason"] == "died"
    # the run the sensor requests: the sink's asset, which starts it again
    result = materialize([trades_sink], resources=resources, tags=request.tags)
    assert result.asset_materializations_for_node("trades_sink")[0].metadata["started_now"].value is True
    counts_settle(s, ledger)


def test_new_partitions_sensor_follows_its_cursor(orch, ledger):
    _, resources = orch
    first = new_partitions(build_sensor_context(cursor=None, resources=resources))
    assert isinstance(first, RunRequest)
    ctx = build_sensor_context(cursor=None, resources=resources)
    new_partitions(ctx)
    seen = json.loads(ctx.cursor)
    assert any(p.startswith("trades/dt=") for p in seen) and any(p.startswith("player_states/dt=") for p in seen)
    assert isinstance(new_partitions(build_sensor_context(cursor=ctx.cursor, resources=resources)), SkipReason)
    older = json.dumps([p for p in seen if not p.startswith("player_states/")])
    again = new_partitions(build_sensor_context(cursor=older, resources=resources))
    assert isinstance(again, RunRequest) and "player_states/dt=" in again.tags["bazaar/new_partitions"]


def test_reports_download_in_every_format(orch, ledger):
    s, resources = orch
    materialize([report_assets[1]], resources=resources)  # most_traded_items, fresh
    service = ReportsService(s)
    service.start()
    base = f"http://{s.host}:{s.reports_port}/reports"
    listing = {r["name"]: r for r in requests.get(base, timeout=10).json()}
    assert set(listing) == set(reports.REPORTS)
    entry = listing["most_traded_items"]
    assert entry["computed_at"] and set(entry["downloads"]) == {"csv", "json", "parquet", "png"}

    expected = warehouse.query(s, reports.REPORTS["most_traded_items"].sql)
    key = ["item_traded_item_id", "item_traded_name", "num_traded"]

    def normal(frame):
        out = frame[key].astype({"item_traded_item_id": "Int64", "num_traded": "int64"})
        out["item_traded_name"] = out["item_traded_name"].where(out["item_traded_name"].notna(), None)
        return out.sort_values(key, na_position="first").reset_index(drop=True)

    def same(frame):
        pd.testing.assert_frame_equal(normal(frame), normal(expected), check_dtype=False)

    csv = requests.get(f"{base}/most_traded_items.csv", timeout=10)
    assert csv.headers["Content-Type"].startswith("text/csv")
    same(pd.read_csv(io.StringIO(csv.text)))
    same(pd.DataFrame(requests.get(f"{base}/most_traded_items.json", timeout=10).json()))
    same(pd.read_parquet(io.BytesIO(requests.get(f"{base}/most_traded_items.parquet", timeout=10).content)))
    missing = requests.get(f"{base}/no_such_report.csv", timeout=10)
    assert missing.status_code == 404 and "no report" in missing.json()["message"]
