"""Where the warehouse keeps what, as pure functions of names (no I/O): the tables, who writes
each, the names of the files a sink's batch writes, the folders compaction swaps in, and the
small records beside the tables (`_commits`, `_compaction`).

    <warehouse>/<table>/[source=<sink>/]dt=<day>/batch-<run>-<batch>-<n>.parquet   as a sink lands a batch
    <warehouse>/<table>/compacted/[source=<sink>/]dt=<day>/<generation>/...       a day compacted, swapped in
    <warehouse>/_commits/<sink>/<run>/<batch>.json      the last batch a sink's run committed, with its offsets
    <warehouse>/_compaction/<table>/<partition>.json   a compaction under way (its journal)
    <warehouse>/_compaction/generation                 touched at every swap: the sinks look locations up again

A sink's *run* is its streaming query's id, kept in its checkpoint: the same across restarts
from that checkpoint, a new one when the checkpoint is lost.  A partition's folder is wherever
the metastore says it is; these names are only where new ones are made.
"""

from __future__ import annotations

import re
from typing import Optional

# the table each sink writes, and the sink that writes each table (quarantine: each sink its `source`)
SINK_TABLES = {"trades": ("trades", "trade_sides", "offers", "economy_trade_deltas"),
               "player_states": ("player_states", "state_summaries", "economy_player_deltas")}
OWNER = {table: sink for sink, tables in SINK_TABLES.items() for table in tables}
TABLES = (*OWNER, "quarantine")
PARTITION_COLUMNS = {**{t: ("dt",) for t in OWNER}, "quarantine": ("source", "dt")}
# what the reports filter and join on: the order rows are written in a compacted day, so Parquet's
# min/max statistics skip row groups
SORT_BY = {"trades": ("trade_id", "side"), "trade_sides": ("trade_id", "side"),
           "player_states": ("player_id", "state_time"), "state_summaries": ("player_id", "state_time"),
           "offers": ("offer_id", "action_time"), "quarantine": ("received_time",),
           "economy_trade_deltas": ("minute", "measure"), "economy_player_deltas": ("minute", "measure")}

COMPACTED = "compacted"
_BATCH = re.compile(r"^batch-(?:(?P<run>[0-9a-f]{32})-)?(?P<batch>\d{12})-\d{5}\.parquet$")


def run_name(query_id: str) -> str:
    """A streaming query's id as it appears in file names: 32 hex digits."""
    name = query_id.replace("-", "").lower()
    if not re.fullmatch(r"[0-9a-f]{32}", name):
        raise ValueError(f"not a query id: {query_id!r}")
    return name


def batch_file(run: str, batch_id: int, n: int) -> str:
    return f"batch-{run}-{batch_id:012d}-{n:05d}.parquet"


def batch_glob(run: str, batch_id: Optional[int] = None) -> str:
    return f"batch-{run}-{'*' if batch_id is None else f'{batch_id:012d}'}-*.parquet"


def parse_batch_file(name: str) -> Optional[tuple[Optional[str], int]]:
    """(run, batch id) of a file a sink wrote; run None for the files of before runs were named
    (`batch-<batch>-<n>.parquet`); None for any other file (a compacted one)."""
    m = _BATCH.match(name)
    return (m["run"], int(m["batch"])) if m else None


def committed(name: str, high_water: dict[str, int]) -> bool:
    """Whether a data file holds rows of a committed batch: a compacted file, a file of before runs
    were named, or a batch at or below its run's last commit (`high_water`: run -> last batch).
    A sink's batches commit in order, so its run's last commit covers every batch before it."""
    parsed = parse_batch_file(name)
    if parsed is None or parsed[0] is None:
        return True
    run, batch = parsed
    return batch <= high_water.get(run, -1)


def is_data_file(name: str) -> bool:
    """A file readers read: Parquet, not hidden (Hive and Trino skip names starting with _ or .)."""
    return name.endswith(".parquet") and not name.startswith(("_", "."))


def partition_path(spec: dict[str, str]) -> str:
    """`source=trades/dt=2026-12-01` for {"source": "trades", "dt": "2026-12-01"}."""
    return "/".join(f"{k}={v}" for k, v in spec.items())


def default_location(warehouse: str, table: str, spec: dict[str, str]) -> str:
    """Where a partition is made when a sink first writes to it."""
    return f"{warehouse}/{table}/{partition_path(spec)}"


def compacted_location(warehouse: str, table: str, spec: dict[str, str], generation: str) -> str:
    return f"{warehouse}/{table}/{COMPACTED}/{partition_path(spec)}/{generation}"


def journal_path(warehouse: str, table: str, spec: dict[str, str]) -> str:
    """A partition's compaction journal (`spec` empty: the table's folder of journals)."""
    return f"{warehouse}/_compaction/{table}/{partition_path(spec).replace('/', ',')}.json"


def generation_path(warehouse: str) -> str:
    return f"{warehouse}/_compaction/generation"


def commits_root(warehouse: str, sink: str) -> str:
    return f"{warehouse}/_commits/{sink}"


def batch_globs(warehouse: str, table: str, prefix: dict[str, str], run: str, batch_id: Optional[int] = None) -> list[str]:
    """Where a sink's run may have put a batch's files in a table (its own `prefix` partition of
    it, for quarantine): the partitions as made, and as compaction swapped them in."""
    head = f"{partition_path(prefix)}/" if prefix else ""
    name = batch_glob(run, batch_id)
    return [f"{warehouse}/{table}/{head}*/{name}", f"{warehouse}/{table}/{COMPACTED}/{head}*/*/{name}"]
