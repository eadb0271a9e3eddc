"""The live dashboard's data (`GET /dashboard/data` of the reports service): the last hour of
`economy_minutes` from Trino, and the pipeline's health from Prometheus' API. Cached for a few
seconds, so any number of open dashboards costs Trino one query per refresh."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional

import pandas as pd
import requests

from orchestration import warehouse
from orchestration.settings import TrinoSettings

CACHE_S = 3.0
COLUMNS = ["trades_executed", "trades_rejected", "gold_moved", "items_moved", "lopsided_trades", "new_players",
           "offers_opened", "offers_accepted", "offers_cancelled", "offers_expired"]
# (what, PromQL): the pipeline's health as `bazaar status` shows it
HEALTH = {
    "relay_oldest_s": "max(bazaar_relay_oldest_entry_age_seconds)",
    "sinks_behind": "sum(bazaar_sink_offsets_behind)",
    "freshness_s": "max(time() - bazaar_sink_newest_arrival_timestamp_seconds)",
    "targets_down": "count(up == 0) or vector(0)",
}


def economy(trino: TrinoSettings, minutes: int = 60) -> dict:
    """The last `minutes` of `economy_minutes`, one list per column (uPlot's shape), minutes as epoch seconds."""
    since = datetime.now(timezone.utc) - timedelta(minutes=minutes)
    try:  # the day too: Trino reads only the partitions of the days the hour spans
        frame = warehouse.execute(trino, f"select minute, {', '.join(COLUMNS)} from economy_minutes "
                                         f"where dt >= '{since:%Y-%m-%d}' and minute >= timestamp "
                                         f"'{since:%Y-%m-%d %H:%M:%S}' order by minute")
    except Exception as exc:  # the view is made by Dagster's hive_tables asset, with the reports
        return {"error": f"economy_minutes cannot be read yet ({str(exc).splitlines()[0][:200]}): materialize "
                         f"the reports once in Dagster (`bazaar demo` does), which creates the view"}
    minutes = pd.to_datetime(frame.minute, utc=True)  # PyHive gives timestamps as text
    return {"minute": [int(m.timestamp()) for m in minutes],
            **{c: [int(v) for v in frame[c]] for c in COLUMNS}}


def health(prometheus_url: Optional[str]) -> dict:
    if not prometheus_url:
        return {"error": "no Prometheus configured (BAZAAR_PROMETHEUS_URL)"}
    out: dict = {}
    try:
        for name, promql in HEALTH.items():
            got = requests.get(f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=3).json()
            result = got["data"]["result"]
            out[name] = round(float(result[0]["value"][1]), 1) if result else None
        alerts = requests.get(f"{prometheus_url}/api/v1/alerts", timeout=3).json()["data"]["alerts"]
        out["alerts_firing"] = sorted({a["labels"]["alertname"] for a in alerts if a.get("state") == "firing"})
    except (requests.RequestException, ValueError, KeyError) as exc:
        return {"error": f"Prometheus at {prometheus_url} did not answer ({exc.__class__.__name__})"}
    return out


class Cached:
    """A function's last answer, kept `CACHE_S` seconds (one computation at a time)."""

    def __init__(self, compute: Callable[[], dict]):
        self.compute, self.lock, self.at, self.value = compute, threading.Lock(), 0.0, None

    def __call__(self) -> dict:
        with self.lock:
            if self.value is None or time.monotonic() - self.at > CACHE_S:
                self.value, self.at = self.compute(), time.monotonic()
            return self.value
