"""The economy reports: which query each runs, how it is stored and charted.

A report is a query file in `sql/` (most read the summary tables the sinks
write; `most_traded_items` is the seed's query as it was asked), run on Trino, stored under
`BAZAAR_REPORTS_DIR/<name>/` as `report.csv` and `report.parquet` (+ `chart.png`
where a chart says more, + `meta.json` with the time it was computed).  Files
are written beside their final names and renamed, so a download never sees a
half-written report.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import matplotlib

matplotlib.use("Agg")  # no display: render to files
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def _bar(x: str, y: str, top: int = 15, horizontal: bool = True) -> Callable[[pd.DataFrame, plt.Axes], None]:
    def draw(frame: pd.DataFrame, ax: plt.Axes) -> None:
        data = frame.head(top)
        labels = data[x].fillna("(none)").astype(str)
        (ax.barh if horizontal else ax.bar)(labels[::-1] if horizontal else labels,
                                            data[y][::-1] if horizontal else data[y], color="#4c72b0")
        ax.set_xlabel(y if horizontal else x)
    return draw


def _hourly(frame: pd.DataFrame, ax: plt.Axes) -> None:
    ax.plot(frame["hour"], frame["executed"], label="executed", marker="o")
    ax.plot(frame["hour"], frame["rejected"], label="rejected", marker="o")
    ax.set_ylabel("trades per hour")
    ax.legend()
    ax.tick_params(axis="x", rotation=30)


def _classes(frame: pd.DataFrame, ax: plt.Axes) -> None:
    data = frame.set_index("player_class")[["avg_gold", "avg_item_value"]]
    data.plot.barh(ax=ax, stacked=True, logx=True)
    ax.set_xlabel("average per player (gold, log scale)")


def _funnel(frame: pd.DataFrame, ax: plt.Axes) -> None:
    frame.set_index("day")[["accepted", "cancelled", "expired", "still_open"]].plot.bar(ax=ax, stacked=True)
    ax.set_ylabel("offers opened that day")
    ax.tick_params(axis="x", rotation=30)


PATTERN_COLOURS = {"pair": "#4c72b0", "star": "#dd8452", "chain": "#55a868", "mule": "#c44e52", "rmt": "#8172b3"}


def _components(frame: pd.DataFrame) -> list[list[int]]:
    """The flagged players grouped by the partner links between them (connected components)."""
    parent = {int(p): int(p) for p in frame["player_id"]}

    def root(p: int) -> int:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for row in frame.itertuples():
        for partner in str(row.partner_ids).split(","):
            if partner and int(partner) in parent:
                parent[root(int(partner))] = root(int(row.player_id))
    groups: dict[int, list[int]] = {}
    for p in parent:
        groups.setdefault(root(p), []).append(p)
    return sorted(groups.values(), key=lambda g: (-len(g), min(g)))


def _fraud_graph(frame: pd.DataFrame, ax: plt.Axes, most: int = 24) -> None:
    """The flagged subgraph: each ring (connected component) in a cell of its own, its most connected
    player in the middle, a line for each pair of partners, coloured by pattern."""
    import math

    by_id = {int(r.player_id): r for r in frame.itertuples()}
    rings = _components(frame)[:most]
    cols = max(1, math.ceil(math.sqrt(len(rings))))
    where: dict[int, tuple[float, float]] = {}
    for k, ring in enumerate(rings):
        cx, cy = (k % cols) * 3.0, -(k // cols) * 3.0
        centre = max(ring, key=lambda p: (by_id[p].partners, -p))
        where[centre] = (cx, cy)
        others = [p for p in ring if p != centre]
        for i, p in enumerate(others):
            angle = 2 * math.pi * i / max(1, len(others))
            where[p] = (cx + math.cos(angle), cy + math.sin(angle))
    for p, (x, y) in where.items():
        for partner in str(by_id[p].partner_ids).split(","):
            if partner and int(partner) in where and int(partner) > p:
                px, py = where[int(partner)]
                ax.plot([x, px], [y, py], color="#999999", linewidth=0.8, zorder=1)
    for pattern, colour in PATTERN_COLOURS.items():
        pts = [where[p] for p in where if by_id[p].pattern == pattern]
        if pts:
            ax.scatter([x for x, _ in pts], [y for _, y in pts], s=60, color=colour, label=pattern, zorder=2)
    for p, (x, y) in where.items():
        ax.annotate(f"{p} {by_id[p].role}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_axis_off()
    ax.legend(loc="upper right", fontsize=7)


@dataclass(frozen=True)
class Report:
    name: str
    description: str
    chart: Optional[Callable[[pd.DataFrame, plt.Axes], None]] = None
    query: Optional[str] = None  # the file in sql/ it runs, when not sql/<name>.sql
    build: Optional[Callable[[pd.DataFrame], pd.DataFrame]] = None  # the report from the query's rows, if not them

    @property
    def sql(self) -> str:
        return self.query or self.name

    def run(self, query: Callable[[str], pd.DataFrame]) -> pd.DataFrame:
        """The report, its query run by `query` (a name in sql/ -> its rows)."""
        frame = query(self.sql)
        return self.build(frame) if self.build is not None else frame


def _suspected_fraud(flows: pd.DataFrame) -> pd.DataFrame:
    from orchestration import fraud, warehouse

    return fraud.detect(flows, **warehouse.DEFAULT_PARAMS)


REPORTS = {r.name: r for r in (
    Report("trade_count", "How many trades (distinct trade ids), executed or rejected."),
    Report("most_traded_items", "Items by the number of trade rows they appear in.",
           _bar("item_traded_name", "num_traded"), query="seed/most_traded_items"),
    Report("most_diverse_inventory", "The player state holding the most distinct items."),
    Report("most_valuable_inventory", "The player state whose items are worth the most."),
    Report("trade_volume_by_hour", "Trades per hour, executed and rejected.", _hourly),
    Report("lopsided_trades", "Executed trades where one side gave 10x the value it got (suspected cheating)."),
    Report("lopsided_players", "Players who gained the most through lopsided trades.",
           _bar("player_id", "value_gained", top=10)),
    Report("suspected_cheaters", "Players in pairs with repeated lopsided trades: givers and receivers.",
           lambda frame, ax: _bar("player", "value_moved", top=10)(
               frame.assign(player=frame["player_id"].astype(str) + " " + frame["role"]), ax)),
    Report("suspected_fraud", "Players whose trades form a fraud pattern (pair, star, chain, mule, real-money "
                              "selling), with their role, a score and the evidence.", _fraud_graph,
           query="fraud_flows", build=_suspected_fraud),
    Report("class_wealth", "Gold and item value per player class.", _classes),
    Report("rejections_by_reason", "Rejected trades by reason.", _bar("fail_reason", "trades")),
    Report("offers_funnel", "Offers by the day they opened: accepted, cancelled, expired, still open; "
                            "median seconds to accept.", _funnel),
)}


def report_dir(reports_dir: Path, name: str) -> Path:
    return Path(reports_dir) / name


def _replace(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def store(reports_dir: Path, name: str, frame: pd.DataFrame, seconds: Optional[float] = None) -> dict:
    """Write a report's files; returns its meta (computed_at, rows, files, and the query's seconds)."""
    folder = report_dir(reports_dir, name)
    folder.mkdir(parents=True, exist_ok=True)
    _replace(folder / "report.csv", lambda p: frame.to_csv(p, index=False))
    _replace(folder / "report.parquet", lambda p: frame.to_parquet(p, index=False))
    files = ["report.csv", "report.parquet"]
    chart = REPORTS[name].chart
    if chart is not None and not frame.empty:
        fig, ax = plt.subplots(figsize=(9, 5), dpi=100)
        chart(frame, ax)
        ax.set_title(REPORTS[name].description)
        fig.tight_layout()
        _replace(folder / "chart.png", lambda p: fig.savefig(p, format="png"))
        plt.close(fig)
        files.append("chart.png")
    meta = {"name": name, "description": REPORTS[name].description, "rows": len(frame),
            "columns": list(frame.columns), "computed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "computed_at_s": time.time(), "seconds": seconds, "files": files}
    _replace(folder / "meta.json", lambda p: p.write_text(json.dumps(meta, indent=2)))
    return meta


def record_job(reports_dir: Path, job: str, doc: dict) -> None:
    """A warehouse job's last success (`_jobs/JOB.json`), for the reports service's metrics."""
    folder = reports_dir / "_jobs"
    folder.mkdir(parents=True, exist_ok=True)
    _replace(folder / f"{job}.json", lambda p: p.write_text(json.dumps({**doc, "finished_at_s": time.time()})))


def load_jobs(reports_dir: Path) -> dict[str, dict]:
    out = {}
    for path in sorted((reports_dir / "_jobs").glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return out


def load_meta(reports_dir: Path, name: str) -> Optional[dict]:
    try:
        return json.loads((report_dir(reports_dir, name) / "meta.json").read_text())
    except (OSError, ValueError):
        return None
