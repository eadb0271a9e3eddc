"""The warehouse seen through Trino: the query files in `sql/`, run with PyHive;
the views created over the tables; and the one completeness check (the tables
against the engine's own counters)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
from pyhive import trino as pyhive_trino
from requests.auth import HTTPBasicAuth

import sql
from engine.store import Store
from orchestration.settings import TrinoSettings

DEFAULT_PARAMS = {"ratio": 10, "min_value": 1_000, "min_repeats": 2,
                  # suspected_fraud: the fewest farmers of a star, mules of a hub, buyers of a real-money seller
                  "star_min_farmers": 4, "mule_min": 3, "rmt_min_buyers": 3}
SEED_QUESTIONS = ("trade_count", "most_traded_items", "most_diverse_inventory", "most_valuable_inventory")
COUNTED_IN = {"trades": "trades", "trade_sides": "trades", "player_states": "player_states",
              "state_summaries": "player_states", "offers": "offer_events"}  # table -> the engine counter it must reach


def connect(settings: TrinoSettings):
    """A PyHive connection to the configured Trino (its catalog, the tables' database as schema).

    PyHive polls a running query once a second by default, which alone made a
    50 ms query take 1-3 s; 20 ms polls cost Trino nothing noticeable.  The password goes as HTTP
    basic authentication, which Trino takes over HTTPS only."""
    if settings.trino_password is not None and settings.trino_http_scheme != "https":
        raise ValueError("a Trino password goes only over HTTPS: set BAZAAR_TRINO_HTTP_SCHEME=https")
    tls = {"verify": str(settings.trino_ca_file)} if settings.trino_ca_file else {}
    auth = {"auth": HTTPBasicAuth(settings.trino_user, settings.trino_password.get_secret_value())} \
        if settings.trino_password is not None else {}
    return pyhive_trino.connect(host=settings.trino_host, port=settings.trino_port, username=settings.trino_user,
                                catalog=settings.trino_catalog, schema=settings.database, poll_interval=0.02,
                                protocol=settings.trino_http_scheme, requests_kwargs={**tls, **auth})


def read_sql(name: str, **params) -> str:
    """The query in sql/<name>.sql, its {placeholders} filled from params and the defaults."""
    body = "\n".join(line for line in sql.text(name).splitlines() if not line.lstrip().startswith("--")).strip()
    return body.format(**{**DEFAULT_PARAMS, **params}) if "{" in body else body


def execute(settings: TrinoSettings, statement: str) -> pd.DataFrame:
    conn = connect(settings)
    try:
        cur = conn.cursor()
        cur.execute(statement)
        rows = cur.fetchall()
        return pd.DataFrame(rows, columns=[d[0] for d in cur.description])
    finally:
        conn.close()


def query(settings: TrinoSettings, name: str, **params) -> pd.DataFrame:
    return execute(settings, read_sql(name, **params))


def ensure_views(settings: TrinoSettings) -> list[str]:
    """Create (or replace) the views in sql/views, the one place views are made, as the warehouse's owner;
    the tables must exist."""
    names, owner = sql.names("views"), settings.as_owner()
    for name in names:
        execute(owner, read_sql(name))
    return [name.split("/", 1)[1] for name in names]


def day_layout(settings: TrinoSettings, tables: list[str], day: str) -> pd.DataFrame:
    """Per table, the files readers read for a UTC day and their rows (Trino's `$path`)."""
    parts = [f"select '{t}' as table_name, count(distinct \"$path\") as files, count(*) as rows_ from {t} "
             f"where dt = '{day}'" for t in tables]
    frame = execute(settings, " union all ".join(parts))
    return frame.rename(columns={"table_name": "table", "rows_": "rows"}).set_index("table").loc[list(tables)]


@dataclass(frozen=True)
class Completeness:
    """Distinct events per table beside the engine's counter each table must reach."""

    tables: dict[str, int]
    engine: dict[str, int]

    @property
    def missing(self) -> dict[str, int]:
        return {t: max(0, self.engine.get(c, 0) - self.tables[t]) for t, c in COUNTED_IN.items()}

    @property
    def missing_events(self) -> int:
        """Events the engine counted that are missing from a table or its summary table."""
        m = self.missing
        return max(m["trades"], m["trade_sides"]) + max(m["player_states"], m["state_summaries"]) + m["offers"]

    @property
    def complete(self) -> bool:
        return not any(self.missing.values())


def table_counts(settings: TrinoSettings) -> dict[str, int]:
    """Distinct events in each table the engine's counters are compared with."""
    got = execute(settings, "select " + ", ".join(f"(select count(distinct event_id) from {t}) as {t}"
                                                  for t in COUNTED_IN)).iloc[0]
    return {t: int(got[t]) for t in COUNTED_IN}


def completeness(settings: TrinoSettings, store: Store, drain_s: float = 0, poll_s: float = 1) -> Completeness:
    """The engine's counters now, then the tables, again until they hold every event counted or
    `drain_s` has passed: whatever is missing then was counted by the engine at least `drain_s`
    ago (time for the relay and the sinks to bring it) and has not landed."""
    want = store.counters()
    engine = {c: int(want.get(c, 0)) for c in set(COUNTED_IN.values())}
    deadline = time.monotonic() + drain_s
    while True:
        found = Completeness(tables=table_counts(settings), engine=engine)
        if found.complete or time.monotonic() >= deadline:
            return found
        time.sleep(poll_s)


def wait_until_complete(settings: TrinoSettings, store: Store, timeout: float = 600) -> dict[str, int]:
    """Wait until the tables, and the summary tables the reports read (a sink writes them a moment
    after its table), hold every trade, player state and offer event the engine has counted."""
    found = completeness(settings, store, drain_s=timeout)
    if not found.complete:
        raise TimeoutError(f"after {timeout:.0f}s the tables hold {found.tables} and the engine counted "
                           f"{found.engine}: is the relay moving the outbox, are both sinks running?")
    return found.tables
