"""The Dagster code location against the real stack: assets, checks, sensors, schedule,
and the report downloads."""

import html
import importlib
import io
import os
import random
from collections import Counter
from datetime import datetime, timezone

import pandas as pd
import pytest
import requests
from dagster import (AssetCheckSeverity, Definitions, RunRequest, build_schedule_context, build_sensor_context,
                     materialize)

from bazaar.stack import RelayService, ReportsService, SinkService
from bazaar.stack.sink_drivers import launcher_settings
from orchestration import reports, warehouse
from orchestration.assets.pipeline import events_topic, hive_tables, player_states_sink, trades_sink
from orchestration.assets.reports import report_assets
from orchestration.checks import checks
from orchestration.resources import local_resources
from orchestration.sensors import late_days, sink_supervisor
from tests.pipeline import counts_settle, funnel, pipeline_stack, played_ledger, wait_for


@pytest.fixture(scope="module")
def orch(stack, tmp_path_factory, redis_service, kafka_service, trino_service):
    s = pipeline_stack(stack, tmp_path_factory.mktemp("orchestration"))
    relay = RelayService(s)
    resources = local_resources(redis=s.redis, topic=s.topic, sinks=launcher_settings(s), trino=s.trino,
                                report_settings=s.reports)
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
    return played_ledger(orch[0], players=25, trades=300, seed=21, offers=20)


@pytest.mark.parametrize("deployment", ["local", "cluster"])
def test_definitions_load_from_the_environment(stack, monkeypatch, deployment):
    """The code location as Dagster loads it: resources from the BAZAAR_* variables the stack sets."""
    for name, value in {**stack.env(), "BAZAAR_DEPLOYMENT": deployment}.items():
        monkeypatch.setenv(name, value)
    defs = importlib.reload(importlib.import_module("orchestration.definitions")).defs
    Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {"events_topic", "trades_sink", "player_states_sink", "hive_tables", *reports.REPORTS,
                    "compacted_days", "warehouse_retention"}
    assert {s.name for s in defs.sensors} == {"trades_sink_supervisor", "player_states_sink_supervisor",
                                              "late_events_compaction"}
    # the reports job makes the views first (hive_tables) and runs the tables' checks
    report_job = defs.resolve_job_def("reports_job")
    assert {n.name for n in report_job.graph.node_defs} == {"hive_tables", *reports.REPORTS, *(
        f"hive_tables_{c.check_key.name}" for c in checks)}
    assert {s.name: s.cron_schedule for s in defs.schedules} == {
        "hourly_reports": "0 * * * *", "daily_compaction": "30 0 * * *", "daily_retention": "0 1 * * *"}
    # the runs that rewrite the warehouse's folders carry the tag the instance's run queue limits to one
    for job in ("compaction_job", "retention_job"):
        assert defs.resolve_job_def(job).tags["bazaar/warehouse"] == "rewrite"


def test_the_daily_compaction_asks_for_the_day_that_just_closed(stack, monkeypatch):
    for name, value in stack.env().items():
        monkeypatch.setenv(name, value)
    defs = importlib.reload(importlib.import_module("orchestration.definitions")).defs
    schedule = defs.resolve_schedule_def("daily_compaction")
    tick = datetime(2026, 3, 1, 0, 30, tzinfo=timezone.utc)
    (request,) = schedule.evaluate_tick(build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def())).run_requests
    assert request.partition_key == "2026-02-28"


def test_the_late_events_sensor_asks_once_for_each_closed_day_a_sink_wrote_to_again():
    first = "2026-01-01"
    status = {"trades": {"pid": 10, "late_days": {"2026-02-01": 1}}, "player_states": {"pid": 11}}
    cursor, days = late_days({}, status, first)
    assert days == ["2026-02-01"]
    assert late_days(cursor, status, first)[1] == []  # nothing new since
    status["trades"]["late_days"] = {"2026-02-01": 3, "2025-12-30": 1}  # more of it; one before the first day
    status["player_states"]["late_days"] = {"2026-02-02": 1}
    cursor, days = late_days(cursor, status, first)
    assert days == ["2026-02-01", "2026-02-02"]
    status["trades"] = {"pid": 12, "late_days": {"2026-02-01": 1}}  # a restarted driver counts again
    assert late_days(cursor, status, first)[1] == ["2026-02-01"]


def test_topic_asset_is_idempotent_and_sinks_run(orch):
    s, resources = orch
    result = materialize([events_topic, trades_sink], resources=resources)
    meta = result.asset_materializations_for_node("events_topic")[0].metadata
    assert meta["created"].value is False and meta["partitions"].value == s.topic.topic_partitions
    sink_meta = result.asset_materializations_for_node("trades_sink")[0].metadata
    assert sink_meta["started_now"].value is False
    assert sink_meta["where"].value == f"pid {SinkService(s, 'trades').pid()}"


def test_tables_reports_and_checks_run_against_the_stack(orch, ledger):
    s, resources = orch
    result = materialize([hive_tables, *report_assets, *checks], resources=resources)
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {"tables_match_engine_counters", "no_duplicate_events", "quarantine_below_threshold"}
    assert all(e.passed for e in evaluations.values()), {k: e.metadata for k, e in evaluations.items()}
    assert evaluations["tables_match_engine_counters"].metadata["trades_tables"].value == len(ledger.trades)

    stored = pd.read_csv(reports.report_dir(s.reports.reports_dir, "trade_count") / "report.csv")
    assert stored.iloc[0, 0] == len(ledger.trades)
    rejected = Counter(a["fail_reason"] for _, a in ledger.trades if a["status"] == "rejected")
    by_reason = pd.read_parquet(reports.report_dir(s.reports.reports_dir, "rejections_by_reason") / "report.parquet")
    assert dict(zip(by_reason.fail_reason, by_reason.trades)) == dict(rejected)
    classes = pd.read_parquet(reports.report_dir(s.reports.reports_dir, "class_wealth") / "report.parquet")
    latest = {}
    for st in ledger.states:
        if st["version"] >= latest.get(st["player_id"], {"version": 0})["version"]:
            latest[st["player_id"]] = st
    assert dict(zip(classes.player_class, classes.players)) == dict(Counter(st["player_class"]
                                                                            for st in latest.values()))
    stored = pd.read_parquet(reports.report_dir(s.reports.reports_dir, "offers_funnel") / "report.parquet")
    want = funnel(ledger.offers.values())
    assert [r[:6] for r in stored.values.tolist()] == [r[:6] for r in want]
    assert stored.median_seconds_to_accept.tolist() == pytest.approx([r[6] for r in want], abs=1e-6)
    meta = result.asset_materializations_for_node("most_traded_items")[0].metadata
    assert "chart" in meta and "item_traded_name" in meta["preview"].value
    assert (reports.report_dir(s.reports.reports_dir, "most_traded_items") / "chart.png").read_bytes()[:4] == b"\x89PNG"


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


def test_completeness_fails_while_events_are_missing_and_passes_once_they_land(orch, ledger, monkeypatch):
    s, resources = orch
    check = next(c for c in checks if c.check_key.name == "tables_match_engine_counters")
    launcher = resources["sinks"].launcher()
    launcher.stop("trades")  # trade events reach Kafka, and stay there
    try:
        before = len(ledger.trades)
        ledger.trade(20, random.Random(23))
        for table in ("player_states", "state_summaries"):  # the other sink runs: its events land
            wait_for(s, f"select count(distinct event_id) from {table}", [[len(ledger.states)]])
        monkeypatch.setenv("BAZAAR_COMPLETENESS_DRAIN_S", "5")
        (failed,) = materialize([hive_tables, check], resources=resources).get_asset_check_evaluations()
        assert not failed.passed and failed.severity == AssetCheckSeverity.ERROR
        assert failed.metadata["trades_missing"].value == len(ledger.trades) - before == 20
        assert failed.metadata["trade_sides_missing"].value == 20
        assert failed.metadata["player_states_missing"].value == 0  # that sink runs
        assert failed.description.startswith("20 events the engine counted are missing")
    finally:
        launcher.start("trades")
    monkeypatch.setenv("BAZAAR_COMPLETENESS_DRAIN_S", "120")
    (passed,) = materialize([hive_tables, check], resources=resources).get_asset_check_evaluations()
    assert passed.passed and passed.metadata["trades_tables"].value == len(ledger.trades)


def test_reports_download_in_every_format(orch, ledger):
    s, resources = orch
    materialize([report_assets[1]], resources=resources)  # most_traded_items, fresh
    service = ReportsService(s)
    service.start()
    base = s.reports_url
    listing = {r["name"]: r for r in requests.get(base, timeout=10).json()}
    assert set(listing) == set(reports.REPORTS)
    entry = listing["most_traded_items"]
    assert entry["computed_at"] and set(entry["downloads"]) == {"csv", "json", "parquet", "png"}

    expected = warehouse.query(s.trino, reports.REPORTS["most_traded_items"].sql)
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

    page = requests.get(base, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, timeout=10)
    assert page.headers["Content-Type"].startswith("text/html")
    text = page.text
    top = normal(expected).sort_values("num_traded", ascending=False).iloc[0]
    for report in reports.REPORTS.values():
        assert html.escape(report.description) in text
    assert entry["computed_at"] in text and f'<img src="{entry["downloads"]["png"]}"' in text
    assert f'href="{entry["downloads"]["csv"]}"' in text
    assert f"<td>{top.num_traded}</td>" in text  # the preview holds the report's top row
    assert requests.get(base, timeout=10).headers["Content-Type"].startswith("application/json")
