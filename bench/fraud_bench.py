"""Fraud benchmark: how well `suspected_fraud` finds each planted pattern, and how long it takes.

    python bench/fraud_bench.py [--trades 106000] [--players 10000] [--bulk-to 1000000]

On a stack of its own (`bazaar up`: the engine, the relay, Kafka, the sinks, the metastore, Trino and
Dagster, all running as users run them), the simulator plays `--trades` trades through the engine's
HTTP API among `--players` players, 2% of the players in fraud rings (pairs, stars, chains, mules,
real-money sellers) and 3% in honest groups shaped like them (friends, guild banks, veterans helping
newcomers), with fair purchases priced from half to twice an item's worth. About a twentieth of the
requests are offers that end without a trade, so the default lands a little over 100,000 trades
(executed or refused by the engine's rules).
Once the tables hold every event, the report runs on Trino (once to warm it, then timed) and is held
against the simulator's ground truth: per pattern, planted, flagged, found, precision and recall, and
the honest look-alikes flagged.

Then (`--bulk-to`) honest trades are added in bulk up to that many trades in all: produced straight
to Kafka in the engine's format, decided by the engine's own rules among players of their own
(`reports_bench.Economy`, ids above the simulated ones), landed by the same sinks; the report is timed
again and judged again (a bulk player flagged counts against precision). The bulk trades are fair
purchases only: they grow the tables the report reads, not its fraud.

Prints the tables and writes bench/results/fraud.json.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import click
from kafka import KafkaProducer
from rich.console import Console
from rich.progress import track
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bazaar import main_job  # noqa: E402
from bazaar.simulate import Simulator  # noqa: E402
from bazaar.stack.ports import isolated_env, stack_from_env  # noqa: E402
from bench.common import bazaar, save_results  # noqa: E402
from bench.reports_bench import Economy, produce, table_counts, wait_for_tables  # noqa: E402
from engine.db import make_store  # noqa: E402
from orchestration import reports, warehouse  # noqa: E402

console = Console()


def timed_report(settings) -> tuple[float, object]:
    report = reports.REPORTS["suspected_fraud"]
    run = lambda: report.run(lambda query: warehouse.query(settings.trino, query))  # noqa: E731
    run()  # warms Trino's JIT and the metastore's caches
    t = time.monotonic()
    frame = run()
    return round(time.monotonic() - t, 2), frame


def judged(frame, truth, players: set[int]) -> list[dict]:
    return main_job.fraud_figures(frame, truth, players).to_dict("records")


def print_level(name: str, level: dict) -> None:
    table = Table("pattern", "planted", "flagged", "found", "precision", "recall",
                  title=f"{name}: {level['trades']:,} trades, report {level['report_s']} s")
    for row in level["patterns"]:
        table.add_row(*[("-" if row[k] is None else str(row[k]))
                        for k in ("pattern", "planted", "flagged", "found", "precision", "recall")])
    console.print(table)


@click.command()
@click.option("--trades", default=106_000, show_default=True,
              help="Trade requests the simulator plays through the engine (offers never accepted among them: ~100k trades land).")
@click.option("--players", default=10_000, show_default=True)
@click.option("--cheater-share", default=0.02, show_default=True, type=click.FloatRange(0, 0.5, max_open=True))
@click.option("--lookalike-share", default=0.03, show_default=True, type=click.FloatRange(0, 0.5, max_open=True))
@click.option("--bulk-to", default=1_000_000, show_default=True, help="Trades in all after the bulk honest ones (0: none).")
@click.option("--seed", default=7, show_default=True)
def main(trades: int, players: int, cheater_share: float, lookalike_share: float, bulk_to: int, seed: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bazaar-fraud-bench-"))
    env = isolated_env(work / "home")
    settings = stack_from_env(env)
    results: dict = {"players": players, "cheater_share": cheater_share, "lookalike_share": lookalike_share,
                     "beside": "engine, relay, Kafka, both sinks, metastore, Trino, Dagster (bazaar up)", "levels": {}}
    try:
        with console.status("bazaar up"):
            bazaar(env, "up")
        sim = Simulator(settings.engine_url, seed, 8, cheater_share, settings.api_key, 0.2, lookalike_share)
        summary = sim.run(players, trades)
        truth = sim.truth
        results["simulation"] = {"trades": summary.trades, "executed": summary.executed, "seconds": round(summary.seconds, 1),
                                 "errors": dict(summary.errors)}
        store = make_store(settings.redis)
        with console.status("waiting until the tables hold every event…"):
            warehouse.wait_until_complete(settings.trino, store, timeout=1800)
        store.r.close()
        warehouse.ensure_views(settings.trino)
        seconds, frame = timed_report(settings)
        mine = set(truth.players)
        results["levels"]["simulated"] = {"trades": summary.trades, "report_s": seconds, "rows": len(frame),
                                          "patterns": judged(frame, truth, mine)}
        print_level("simulated", results["levels"]["simulated"])
        save_results("fraud", results)

        landed_trades, landed_states = table_counts(settings)
        if bulk_to > landed_trades:
            first = max(mine) + 1
            economy = Economy(players, seed=seed, first_id=first)
            bulk_ids = set(economy.players)
            producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=20,
                                     batch_size=512 * 1024, **settings.kafka_login().kafka_python())
            states = landed_states + produce(producer, settings.topic.topic, economy.created())
            added = bulk_to - landed_trades
            for _ in track(range(added), description=f"producing {added:,} honest trades in bulk", console=console):
                states += produce(producer, settings.topic.topic, economy.trade()) - 1
            producer.flush()
            producer.close()
            with console.status(f"sinks landing {bulk_to:,} trades"):
                wait_for_tables(settings, bulk_to, states, timeout=3600)
            seconds, frame = timed_report(settings)
            results["levels"]["bulk"] = {"trades": bulk_to, "report_s": seconds, "rows": len(frame),
                                         "patterns": judged(frame, truth, mine | bulk_ids)}
            print_level("with honest trades in bulk", results["levels"]["bulk"])
            save_results("fraud", results)
    finally:
        bazaar(env, "down")
        shutil.rmtree(work, ignore_errors=True)
    console.print(f"written to {save_results('fraud', results)}")


if __name__ == "__main__":
    main()
