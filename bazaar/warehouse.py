"""The warehouse seen through Trino: the query files in `sql/`, run with PyHive."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from bazaar.settings import PROJECT_ROOT, Settings
from bazaar.stack.trino import connect

SQL_DIR = PROJECT_ROOT / "sql"
DEFAULT_PARAMS = {"ratio": 10, "min_value": 1_000, "min_repeats": 2}
TABLES = ("trades", "trade_sides", "player_states", "state_summaries", "quarantine")
SEED_QUESTIONS = ("trade_count", "most_traded_items", "most_diverse_inventory", "most_valuable_inventory")


def read_sql(name: str, **params) -> str:
    """The query in sql/<name>.sql, its {placeholders} filled from params and the defaults."""
    text = (SQL_DIR / f"{name}.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")).strip()
    return body.format(**{**DEFAULT_PARAMS, **params}) if "{" in body else body


def execute(settings: Settings, sql: str) -> pd.DataFrame:
    conn = connect(settings)
    try:
        cur = conn.cursor()
        cur.execute(sql)
        rows = cur.fetchall()
        return pd.DataFrame(rows, columns=[d[0] for d in cur.description])
    finally:
        conn.close()


def query(settings: Settings, name: str, **params) -> pd.DataFrame:
    return execute(settings, read_sql(name, **params))


def ensure_views(settings: Settings) -> list[str]:
    """Create (or replace) the views in sql/views; the tables must exist."""
    names = []
    for path in sorted((SQL_DIR / "views").glob("*.sql")):
        execute(settings, read_sql(str(Path("views") / path.stem)))
        names.append(path.stem)
    return names


def sync_partitions(settings: Settings, table: str) -> None:
    """Register partition folders the metastore does not know yet (the sinks register their own)."""
    execute(settings, f"CALL system.sync_partition_metadata('{settings.database}', '{table}', 'ADD')")


COUNTED_IN = {"trades": "trades", "trade_sides": "trades", "player_states": "player_states",
              "state_summaries": "player_states"}  # table -> the engine counter it must reach


def wait_until_complete(settings: Settings, timeout: float = 600) -> dict[str, int]:
    """Wait until the tables, and the summary tables the reports read (a sink writes them a moment
    after its table), hold every trade and player state the engine has counted."""
    from engine.db import make_redis
    from engine.store import Store

    store = Store(make_redis(settings), settings.namespace)
    deadline = time.monotonic() + timeout
    sql = "select " + ", ".join(f"(select count(distinct event_id) from {t}) as {t}" for t in COUNTED_IN)
    while True:
        want = store.counters()
        got = execute(settings, sql).iloc[0]
        have = {table: int(got[table]) for table in COUNTED_IN}
        if all(have[t] >= want.get(counter, 0) for t, counter in COUNTED_IN.items()):
            return have
        if time.monotonic() > deadline:
            raise TimeoutError(f"tables hold {have}, the engine counted {want}; see `bazaar status` and `bazaar lag`")
        time.sleep(1)
