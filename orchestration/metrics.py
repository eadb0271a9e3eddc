"""The reports service's `/metrics`: what Dagster's runs leave behind them, read from the report
store at each scrape (the runs themselves come and go), and the stack's keepers.

    bazaar_report_last_success_timestamp_seconds{report}   when the report was last materialized
    bazaar_report_duration_seconds{report}                 how long its query took then
    bazaar_report_rows{report}                             its rows then
    bazaar_warehouse_job_last_success_timestamp_seconds{job}   compaction and retention's last success
    bazaar_warehouse_job_duration_seconds{job}             ... its duration
    bazaar_warehouse_job_files{job,when}                   files before and after it
    bazaar_service_restarts_total{service}                 restarts by each service's keeper
    bazaar_service_running{service}                        1 while the keeper's service process runs
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from orchestration import reports
from orchestration.settings import ReportSettings


def keeper_states(folder: Optional[Path]) -> dict[str, dict]:
    """Each service's keeper state (`spark_jobs.keeper`), by service name."""
    from spark_jobs.keeper import read_state

    if folder is None:
        return {}
    out = {}
    for path in sorted(Path(folder).glob("*.keeper.json")):
        state = read_state(path)
        if state:
            out[path.name[: -len(".keeper.json")]] = state
    return out


def _alive(pid, ticks) -> bool:
    """The process the keeper recorded, alive: the same pid and start time (a reused pid is another)."""
    from spark_jobs.processes import start_ticks

    try:
        return pid is not None and ticks is not None and start_ticks(int(pid)) == ticks
    except (TypeError, ValueError):
        return False


class StoreCollector(Collector):
    def __init__(self, settings: ReportSettings):
        self.settings = settings

    def collect(self) -> Iterator:
        last = GaugeMetricFamily("bazaar_report_last_success_timestamp_seconds",
                                 "When the report was last materialized.", labels=["report"])
        took = GaugeMetricFamily("bazaar_report_duration_seconds", "How long its query took then.", labels=["report"])
        rows = GaugeMetricFamily("bazaar_report_rows", "Its rows then.", labels=["report"])
        for name in reports.REPORTS:
            meta = reports.load_meta(self.settings.reports_dir, name)
            if not meta or meta.get("computed_at_s") is None:
                continue
            last.add_metric([name], meta["computed_at_s"])
            rows.add_metric([name], meta["rows"])
            if meta.get("seconds") is not None:
                took.add_metric([name], meta["seconds"])
        yield from (last, took, rows)
        job_last = GaugeMetricFamily("bazaar_warehouse_job_last_success_timestamp_seconds",
                                     "When the warehouse job last succeeded.", labels=["job"])
        job_took = GaugeMetricFamily("bazaar_warehouse_job_duration_seconds", "How long it took then.", labels=["job"])
        files = GaugeMetricFamily("bazaar_warehouse_job_files", "Files of the partitions it worked on, before "
                                  "and after.", labels=["job", "when"])
        for job, doc in reports.load_jobs(self.settings.reports_dir).items():
            job_last.add_metric([job], doc["finished_at_s"])
            job_took.add_metric([job], doc.get("seconds", 0))
            files.add_metric([job, "before"], doc.get("files_before", 0))
            files.add_metric([job, "after"], doc.get("files_after", 0))
        yield from (job_last, job_took, files)
        restarts = CounterMetricFamily("bazaar_service_restarts", "Restarts of each service by its keeper.",
                                       labels=["service"])
        running = GaugeMetricFamily("bazaar_service_running", "1 while the keeper's service process runs.",
                                    labels=["service"])
        for service, state in keeper_states(self.settings.keeper_dir).items():
            restarts.add_metric([service], state.get("restarts") or 0)
            running.add_metric([service], 1 if _alive(state.get("keeper"), state.get("keeper_ticks"))
                               and _alive(state.get("child"), state.get("child_ticks")) else 0)
        yield from (restarts, running)
