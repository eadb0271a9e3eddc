"""The Dagster UI in a real browser (Debian's chromium driven by Playwright): find the
asset graph, launch a report's materialization from the UI, and see the run succeed."""

import shutil
import time

import pandas as pd
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from bazaar.stack import DagsterDaemonService, DagsterWebserverService
from orchestration.reports import report_dir
from tests.pipeline import pipeline_stack, played_ledger, running_pipeline

CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCATION = "orchestration.definitions"


@pytest.fixture(scope="module")
def ui(stack, tmp_path_factory, redis_service, kafka_service, trino_service):
    s = pipeline_stack(stack, tmp_path_factory.mktemp("ui"))
    with running_pipeline(s, DagsterWebserverService(s), DagsterDaemonService(s)):
        yield s, played_ledger(s, players=10, trades=50, seed=31)


def dismiss_welcome(page) -> None:
    """Dagster shows a newsletter dialog on a first visit; it covers the page."""
    try:
        page.get_by_role("button", name="Skip").click(timeout=5_000)
    except PlaywrightTimeout:
        pass


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is installed by `make system-deps`")
def test_launch_a_report_from_the_ui(ui, tmp_path):
    s, ledger = ui
    base = s.dagster_url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(f"{base}/asset-groups", wait_until="networkidle")  # "Lineage": the asset graph
            dismiss_welcome(page)
            page.get_by_text("Global asset lineage").wait_for(timeout=60_000)
            for group in ("pipeline", "reports"):  # the graph's nodes: the asset groups
                page.get_by_text(group, exact=True).first.wait_for(timeout=60_000)
            page.goto(f"{base}/assets/trade_count", wait_until="networkidle")
            dismiss_welcome(page)
            page.locator("button", has_text="Materialize").first.click()
            try:  # "upstream assets have not been materialized yet": they are the tables, which exist
                page.get_by_role("button", name="Confirm").click(timeout=5_000)
            except PlaywrightTimeout:
                pass
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:  # the asset page shows the run's materialization
                page.goto(f"{base}/assets/trade_count", wait_until="networkidle")
                if page.get_by_text("Never materialized").count() == 0 and \
                        page.get_by_text("Latest materialization").count() > 0:
                    break
                time.sleep(3)
            else:
                raise AssertionError("trade_count was not materialized within 4 minutes")
            page.goto(f"{base}/runs", wait_until="networkidle")
            page.get_by_text("Success", exact=True).first.wait_for(timeout=30_000)
            page.screenshot(path=str(tmp_path / "dagster-runs.png"))
        finally:
            browser.close()
    stored = pd.read_csv(report_dir(s.reports.reports_dir, "trade_count") / "report.csv")
    assert stored.iloc[0, 0] == len(ledger.trades)  # the UI's run computed the real answer
