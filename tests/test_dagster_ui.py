"""The Dagster UI in a real browser (Debian's chromium driven by Playwright): find the
asset graph, launch a report's materialization from the UI, and see the run succeed."""

import shutil
import time

import pytest
from playwright.sync_api import sync_playwright

from bazaar.stack import DagsterDaemonService, DagsterWebserverService, RelayService, SinkService
from bazaar.stack.kafka import ensure_topic
from tests.conftest import free_port
from tests.pipeline import Ledger, counts_settle, pipeline_settings

CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCATION = "orchestration.definitions"


@pytest.fixture(scope="module")
def ui(settings, tmp_path_factory, redis_service, kafka_service, trino_service):
    s = pipeline_settings(settings, tmp_path_factory.mktemp("ui"), dagster_port=free_port())
    ensure_topic(s)
    services = [RelayService(s), SinkService(s, "trades"), SinkService(s, "player_states"),
                DagsterWebserverService(s), DagsterDaemonService(s)]
    try:
        for svc in services:
            svc.start()
        import random

        ledger = Ledger(s)
        ledger.create(10, random.Random(31))
        ledger.trade(50, random.Random(32))
        counts_settle(s, ledger)
        yield s, ledger
    finally:
        for svc in reversed(services):
            svc.stop()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is installed by `make system-deps`")
def test_launch_a_report_from_the_ui(ui, tmp_path):
    s, ledger = ui
    base = f"http://{s.host}:{s.dagster_port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(f"{base}/assets/trade_count", wait_until="networkidle")
            page.get_by_text("trade_count").first.wait_for(timeout=60_000)
            page.get_by_role("button", name="Materialize", exact=True).first.click()
            # the launched run: wait for its success on the runs page
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                page.goto(f"{base}/runs", wait_until="networkidle")
                if page.get_by_text("Success", exact=True).count() > 0:
                    break
                if page.get_by_text("Failure", exact=True).count() > 0:
                    raise AssertionError("the run failed")
                time.sleep(3)
            else:
                raise AssertionError("no successful run within 4 minutes")
            page.goto(f"{base}/asset-groups", wait_until="networkidle")
            page.get_by_text("hive_tables").first.wait_for(timeout=60_000)  # the asset graph shows the pipeline
            page.screenshot(path=str(tmp_path / "dagster.png"))
        finally:
            browser.close()
    from bazaar.reports import load_meta

    assert load_meta(s.home, "trade_count")["rows"] == 1
