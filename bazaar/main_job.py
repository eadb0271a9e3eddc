"""The main job after `bazaar up`: play an economy through the engine, wait until
the tables hold every event, have Dagster materialize the reports, and show them.

Reports are materialized by the running Dagster (the `reports_job`, submitted
through the webserver's GraphQL API and launched by the daemon), so the run
and its reports are in the UI and the downloads afterwards.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from dagster_graphql import DagsterGraphQLClient
from rich.console import Console

from bazaar.settings import Stack
from bazaar.rings import FRAUD, evaluate
from bazaar.simulate import Simulator, Summary, Truth
from bazaar.stack.service import Status
from engine.db import make_store
from orchestration import reports, warehouse
from spark_jobs.launch import SINKS, launcher_for

REPORTS_JOB = "reports_job"
COMPACTION_JOB = "compaction_job"
RUN_TIMEOUT_S = 600


def simulation_dir(stack: Stack) -> Path:
    return stack.home / "simulation"


def simulate(stack: Stack, players: int, trades: int, concurrency: int, cheater_share: float,
             seed: int | None, show_progress: bool = True, url: str | None = None,
             offer_share: float = 0.2, lookalike_share: float = 0.03,
             patterns: tuple[str, ...] = FRAUD) -> tuple[Summary, Truth]:
    """Play the economy against the engine (the stack's, or `url`); the ground truth is saved
    under HOME/simulation (replacing an earlier run's: its player ids are this run's own)."""
    sim = Simulator(url or stack.engine_url, seed, concurrency, cheater_share, stack.api_key, offer_share,
                    lookalike_share, patterns)
    summary = sim.run(players, trades, show_progress)
    sim.truth.save(simulation_dir(stack))
    return summary, sim.truth


def wait_until_complete(stack: Stack, timeout: float = 600) -> dict[str, int]:
    """Wait until the tables hold every event the stack's engine counted (see `orchestration.warehouse`)."""
    store = make_store(stack.redis)
    try:
        return warehouse.wait_until_complete(stack.trino, store, timeout)
    finally:
        store.r.close()


STATUS_DRAIN_S = 10  # `bazaar status` answers in seconds; Dagster's check drains longer


def tables_status(stack: Stack) -> Status:
    """The completeness check as a row of `bazaar status`: complete, catching up (events still in
    the outbox or Kafka, or a sink starting), or missing events the engine counted."""
    from bazaar.stack import RelayService

    store = make_store(stack.redis)
    try:
        found = warehouse.completeness(stack.trino, store, drain_s=STATUS_DRAIN_S)
    except Exception as exc:  # no tables yet, the metastore down: say so in the row, not a traceback
        return Status("tables", None, False, stack.trino.database, f"unreadable: {str(exc).splitlines()[0][:120]}")
    finally:
        store.r.close()
    held = f"{found.tables['trades']:,} trades and {found.tables['player_states']:,} player states"
    if found.complete:
        return Status("tables", None, True, stack.trino.database, f"complete: {held}")
    waiting = RelayService(stack).lag().waiting
    launcher = launcher_for(stack.sinks)
    sinks = [launcher.status(sink) for sink in SINKS]
    behind = sum(st.progress.get("offsets_behind_latest") or 0 for st in sinks)
    if waiting or behind or not all(st.healthy for st in sinks):
        return Status("tables", None, True, stack.trino.database,
                      f"catching up: {found.missing_events:,} events to land; {waiting:,} in the outbox, "
                      f"sinks {behind:,} records behind Kafka")
    return Status("tables", None, False, stack.trino.database,
                  f"MISSING {found.missing_events:,} events the engine counted ({held} landed); "
                  "see `bazaar logs sink-trades` and `bazaar logs sink-player_states`")


def run_job(stack: Stack, job: str, tags: dict[str, str], run_config: dict | None = None,
            assets: list[str] | None = None) -> str:
    """Submit a job (only its `assets`, when given) to the stack's Dagster (its daemon launches it) and
    wait for it; returns the run id."""
    client = DagsterGraphQLClient(stack.host, port_number=stack.local.dagster_port)
    run_id = client.submit_job_execution(job, run_config=run_config, tags=tags, asset_selection=assets)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        status = client.get_run_status(run_id).value
        if status == "SUCCESS":
            return run_id
        if status in ("FAILURE", "CANCELED"):
            raise RuntimeError(f"Dagster run {run_id} of {job} ended {status}; open it in the UI at "
                               f"{stack.dagster_url}/runs/{run_id}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"Dagster run {run_id} of {job} still {status} after {RUN_TIMEOUT_S}s; "
                               f"is the daemon running? (`bazaar status`)")
        time.sleep(0.5)


def materialize_reports(stack: Stack, only: list[str] | None = None, trigger: str = "demo") -> str:
    """Run the reports job on the stack's Dagster (the job the schedule runs; with `only`, the views
    and those reports) and wait for it; returns the run id."""
    assets = ["hive_tables", *only] if only else None
    return run_job(stack, REPORTS_JOB, {"bazaar/trigger": trigger}, assets=assets)


def compact(stack: Stack, day: str, tables: list[str]) -> str:
    """Run Dagster's compaction job for one day partition (only `tables`, when given); returns the run id."""
    return run_job(stack, COMPACTION_JOB, {"dagster/partition": day, "bazaar/trigger": "cli"},
                   {"ops": {"compacted_days": {"config": {"tables": list(tables)}}}})


def stored_report(stack: Stack, name: str) -> pd.DataFrame:
    return pd.read_parquet(reports.report_dir(stack.reports.reports_dir, name) / "report.parquet")


def suspects_with_truth(frame: pd.DataFrame, truth: Truth) -> pd.DataFrame:
    """The suspected-cheaters report beside what the simulator planted."""
    def planted(row) -> str:
        if row.player_id in truth.cheaters:
            return "cheater"
        return "accomplice" if row.player_id in truth.accomplices else "-"
    return frame.assign(planted=[planted(r) for r in frame.itertuples()])


def fraud_figures(frame: pd.DataFrame, truth: Truth, players: set[int] | None = None) -> pd.DataFrame:
    """suspected_fraud against the run's own ground truth: per pattern, planted, flagged, found,
    precision and recall; then how many honest look-alikes it flagged. A flagged player counts when
    it is one of `players` (by default the run's own)."""
    flagged = [(int(r.player_id), r.pattern) for r in frame.itertuples()]
    return pd.DataFrame(evaluate(flagged, truth.roles, set(truth.players) if players is None else players))


def show(console: Console, stack: Stack, truth: Truth, print_frame) -> None:
    for name in warehouse.SEED_QUESTIONS:
        print_frame(name, stored_report(stack, name))
    suspects = suspects_with_truth(stored_report(stack, "suspected_cheaters"), truth)
    print_frame("suspected_cheaters (top 10)", suspects.head(10))
    ring = set(truth.cheaters) | truth.accomplices
    found = ring & set(suspects.player_id)
    console.print(f"planted: {len(truth.cheaters)} cheaters and {len(truth.accomplices)} accomplices; "
                  f"{len(found)} of them in the report, which lists {suspects.player_id.nunique()} players")
    print_frame("offers_funnel", stored_report(stack, "offers_funnel"))
    fraud = stored_report(stack, "suspected_fraud")
    print_frame("suspected_fraud (top 10)", fraud.head(10))
    print_frame("suspected_fraud against what this run planted", fraud_figures(fraud, truth))
