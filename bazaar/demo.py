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

from bazaar import reports, warehouse
from bazaar.settings import Settings
from bazaar.simulate import Simulator, Summary, Truth

REPORTS_JOB = "reports_job"
RUN_TIMEOUT_S = 600


def simulation_dir(settings: Settings) -> Path:
    return Path(settings.home) / "simulation"


def simulate(settings: Settings, players: int, trades: int, concurrency: int, cheater_share: float,
             seed: int | None, show_progress: bool = True, url: str | None = None) -> tuple[Summary, Truth]:
    """Play the economy against the engine (the stack's, or `url`); the ground truth is saved
    under HOME/simulation."""
    sim = Simulator(url or settings.engine_url, seed, concurrency, cheater_share)
    summary = sim.run(players, trades, show_progress)
    sim.truth.save(simulation_dir(settings))
    return summary, sim.truth


def materialize_reports(settings: Settings) -> str:
    """Run the reports job on the stack's Dagster and wait for it; returns the run id."""
    client = DagsterGraphQLClient(settings.host, port_number=settings.dagster_port)
    run_id = client.submit_job_execution(REPORTS_JOB, tags={"bazaar/trigger": "demo"})
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        status = client.get_run_status(run_id).value
        if status == "SUCCESS":
            return run_id
        if status in ("FAILURE", "CANCELED"):
            raise RuntimeError(f"Dagster run {run_id} of {REPORTS_JOB} ended {status}; open it in the UI at "
                               f"http://{settings.host}:{settings.dagster_port}/runs/{run_id}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"Dagster run {run_id} still {status} after {RUN_TIMEOUT_S}s; "
                               f"is the daemon running? (`bazaar status`)")
        time.sleep(0.5)


def stored_report(settings: Settings, name: str) -> pd.DataFrame:
    return pd.read_parquet(reports.report_dir(settings.home, name) / "report.parquet")


def suspects_with_truth(frame: pd.DataFrame, truth: Truth) -> pd.DataFrame:
    """The suspected-cheaters report beside what the simulator planted."""
    def planted(row) -> str:
        if row.player_id in truth.cheaters:
            return "cheater"
        return "accomplice" if row.player_id in truth.accomplices else "-"
    return frame.assign(planted=[planted(r) for r in frame.itertuples()])


def show(console: Console, settings: Settings, truth: Truth, print_frame) -> None:
    for name in warehouse.SEED_QUESTIONS:
        print_frame(name, stored_report(settings, name))
    suspects = suspects_with_truth(stored_report(settings, "suspected_cheaters"), truth)
    print_frame("suspected_cheaters (top 10)", suspects.head(10))
    ring = set(truth.cheaters) | truth.accomplices
    found = ring & set(suspects.player_id)
    console.print(f"planted: {len(truth.cheaters)} cheaters and {len(truth.accomplices)} accomplices; "
                  f"{len(found)} of them in the report, which lists {suspects.player_id.nunique()} players")
