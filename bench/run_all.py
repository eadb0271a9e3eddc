"""Every benchmark, one after the other, into one JSON file and one short table.

    python bench/run_all.py [--quick]          (or `make bench`)

Runs engine_bench, offers_bench, totals_bench, stack_bench, sink_bench, reports_bench, demo_bench, season_bench and
fraud_bench (each
brings up and tears down a stack of its own, so they never overlap), then
gathers their results into bench/results/all.json.  `--quick` skips the cold
runs (which fetch ~1 GB again), stops the report suite at 100k trades and lays 200 batches of the
season instead of 2,000, and plays 20,000 trades among 2,000 players for the fraud benchmark, without the bulk.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bazaar.rings import FRAUD  # noqa: E402
from bench.common import save_results  # noqa: E402

console = Console()
RESULTS = ROOT / "bench" / "results"


def benches(quick: bool) -> list[tuple[str, str, list[str]]]:
    """(name, script, arguments) of each benchmark, in the order they run."""
    cold = ["--no-cold"] if quick else []
    return [
        ("engine", "engine_bench.py", []),
        ("offers", "offers_bench.py", []),
        ("totals", "totals_bench.py", ["--rounds", "1", "--players", "100000"] if quick else []),
        ("stack", "stack_bench.py", cold),
        ("sinks", "sink_bench.py", []),
        ("reports", "reports_bench.py", ["--levels", "10000,100000"] if quick else []),
        ("demo", "demo_bench.py", cold),
        ("season", "season_bench.py", ["--batches", "200"] if quick else []),
        ("fraud", "fraud_bench.py", ["--trades", "20000", "--players", "2000", "--bulk-to", "0"] if quick else []),
    ]


NAMES = tuple(name for name, _, _ in benches(quick=False))


def summary_rows(r: dict) -> list[tuple[str, str, str]]:
    """(measure, value, target) for the table, from the gathered results."""
    rows = []
    if "engine" in r:
        top = r["engine"]["trades"][-1]  # the most concurrent clients
        rows.append((f"API executed trades/s ({top['connections']} clients)", f"{top['executed_per_s']:,.0f}",
                     ">= 1,000"))
        rows.append(("API trade latency p50 / p99 (ms)", f"{top['p50_ms']} / {top['p99_ms']}", "p99 < 50"))
        rows.append(("create_player 100k/1k players ratio", str(r["engine"]["create_player"]["ratio_100k_to_1k"]),
                     "<= 1.2"))
    if "offers" in r:
        o = r["offers"]
        rows.append((f"offers accepted/s ({o['flow']['clients']} clients)", str(o["flow"]["accepted_per_s"]), ""))
        rows.append(("32 clients accepting one offer: 200s per round", str(sorted(set(o["stampede_wins"]))), "[1]"))
        rows.append(("gold conserved, escrow included", str(o["conservation"]["conserved"]), "True"))
    if "totals" in r:
        t = r["totals"]
        off = [x["p99_ms"] for x in t["runs"] if not x["audit"]]
        on = [x["p99_ms"] for x in t["runs"] if x["audit"]]
        rows.append((f"GET /economy/totals at {t['players']:,} players (ms)", str(t["totals_http_ms"]), ""))
        rows.append(("trade p99 with `bazaar audit` running / without", f"{sum(on) / len(on) / (sum(off) / len(off)):.2f}",
                     "~1"))
    if "stack" in r:
        rows.append(("relay events/s", f"{r['stack']['relay']['events_per_s']:,}", ">= 10,000"))
        rows.append(("trade -> Kafka p99 (ms)", str(r["stack"]["trade_to_kafka"]["p99_ms"]), "< 1,000"))
        rows.append(("stack RSS idle (MiB)", f"{r['stack']['rss_mib']['total']:,.0f}", "< 6,144"))
    if "sinks" in r:
        for name in ("trades", "player_states"):
            rows.append((f"sink {name} records/s", f"{r['sinks'][name]['records_per_s']:,}", ">= 20,000"))
        f = r["sinks"]["freshness"]
        rows.append(("freshness p50 / p95 (s)", f"{f['p50_s']} / {f['p95_s']}", "p95 < 5"))
    if "reports" in r:
        for level, v in r["reports"]["levels"].items():
            rows.append((f"report suite at {int(level):,} trades (s)", str(v["queries_s"]["total"]),
                         "< 15 at 1M"))
    if "demo" in r:
        for run, target in (("warm", "< 180"), ("cold", "< 600")):
            if run in r["demo"]:
                rows.append((f"make demo {run} (s)", str(r["demo"][run]["seconds"]), target))
        rows.append(("stack peak RSS during demo (MiB)", f"{r['demo']['warm']['peak_rss_mib']:,}", ""))
    if "season" in r:
        s = r["season"]
        rows.append(("report suite compacted / bulk-loaded", f"{s['suite_compacted_s']['total'] / s['suite_bulk_s']['total']:.2f}",
                     "<= 1.2"))
        rows.append(("files a day per table after compaction (max)",
                     str(max(t["max"] for t in s["files_per_day_after"].values())), "<= 4"))
        rows.append((f"compaction of {s['days']} days (s)", str(s["compaction"]["seconds"]), "<= 600"))
        rows.append(("freshness p95 during compaction (s)", str(s["freshness_during_compaction"].get("p95_s")), "<= 2"))
    if "fraud" in r:
        for name, level in r["fraud"]["levels"].items():
            judged = [x for x in level["patterns"] if x["pattern"] in FRAUD]
            worst = min((min(x["precision"] or 0, x["recall"] or 0) for x in judged), default=0)
            rows.append((f"suspected_fraud at {level['trades']:,} trades: worst precision or recall", str(worst),
                         ">= 0.95"))
            rows.append((f"suspected_fraud at {level['trades']:,} trades (s)", str(level["report_s"]), "<= 60 at 1M"))
    return rows


@click.command()
@click.option("--quick", is_flag=True, help="No cold runs; report suite up to 100k trades.")
@click.option("--only", default=None, help="Comma-separated subset: engine,offers,totals,stack,sinks,reports,demo,season.")
def main(quick: bool, only: str | None) -> None:
    chosen = set(only.split(",")) if only else set(NAMES)
    unknown = chosen - set(NAMES)
    if unknown:
        raise click.BadParameter(f"unknown benchmark(s) {sorted(unknown)}; choose from {list(NAMES)}")
    gathered: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": quick}
    for name, script, args in benches(quick):
        if name not in chosen:
            continue
        console.rule(f"{name} benchmark")
        t = time.monotonic()
        subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], check=True)
        gathered[name] = json.loads((RESULTS / f"{name}.json").read_text())
        gathered[name]["bench_seconds"] = round(time.monotonic() - t)
    table = Table("measure", "value", "target", title="Bazaar benchmarks")
    for row in summary_rows(gathered):
        table.add_row(*row)
    console.print(table)
    console.print(f"written to {save_results('all', gathered)}")


if __name__ == "__main__":
    main()
