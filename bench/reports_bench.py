"""Report benchmark: how long the whole report suite takes on Trino at 10k, 100k and 1M trades.

    python bench/reports_bench.py [--levels 10000,100000,1000000] [--players 10000]

Brings up a stack of its own and produces trades in bulk straight to Kafka, in the
engine's event format and decided by the engine's own rules (`engine.rules`) on an
economy of `--players` players: each trade event, and for an executed trade the two
player states after it. The sinks land them; once the tables hold every event, each
report's query runs on Trino, one after the other, as the `reports_job` runs them.
Writes bench/results/reports.json.
"""

from __future__ import annotations

import random
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

from orchestration import reports, warehouse  # noqa: E402
from bazaar.stack.ports import isolated_env, stack_from_env  # noqa: E402
from bench.common import bazaar, save_results  # noqa: E402
from engine import catalog, events, rules  # noqa: E402
from engine.rules import Offer  # noqa: E402

console = Console()


class Economy:
    """Players held in memory and traded by the engine's rules, emitting the engine's events."""

    def __init__(self, players: int, seed: int = 3, first_id: int = 1):
        """`players` from id `first_id` on (above the ids an engine has made, when its players share the tables)."""
        self.rng = random.Random(seed)
        self.players = {pid: rules.new_player(pid, f"bench{pid}", catalog.draw_class(self.rng))
                        for pid in range(first_id, first_id + players)}
        self.ids = list(self.players)

    def created(self):
        when = events.utc_now_iso()
        return [events.player_state_event(p.to_state(), when) for p in self.players.values()]

    def trade(self, when: str | None = None):
        """One trade at `when` (now by default): a seller offers an item it holds (or one it does not,
        now and then), the buyer pays about its value; returns the events the engine would append."""
        a, b = self.rng.sample(self.ids, 2)
        seller, buyer = self.players[a], self.players[b]
        held = list(seller.items) or [1]
        item = self.rng.choice(held) if self.rng.random() > 0.05 else self.rng.choice(list(catalog.ITEMS))
        price = int(catalog.ITEMS[item].value * self.rng.uniform(0.5, 1.5))
        o1, o2 = Offer(a, {item: 1}), Offer(b, {}, price)
        reason = rules.trade_fail_reason(seller, buyer, o1, o2)
        when = when or events.utc_now_iso()
        out = [events.trade_event(events.new_id(), when, reason, rules.trade_side(o1), rules.trade_side(o2))]
        if reason is None:
            self.players[a], self.players[b] = rules.apply_trade(seller, buyer, o1, o2)
            out += [events.player_state_event(self.players[p].to_state(), when) for p in (a, b)]
        return out


def produce(producer: KafkaProducer, topic: str, batch) -> int:
    for ev in batch:
        producer.send(topic, key=ev.kafka_key.encode(), value=ev.model_dump_json().encode())
    return len(batch)


def table_counts(settings) -> tuple[int, int]:
    got = warehouse.execute(settings.trino, "select (select count(distinct event_id) from trades) as t, "
                                      "(select count(distinct event_id) from player_states) as s").iloc[0]
    return int(got["t"]), int(got["s"])


def wait_for_tables(settings, trades: int, states: int, timeout: float = 1800) -> float:
    start = time.monotonic()
    while table_counts(settings) != (trades, states):
        if time.monotonic() - start > timeout:
            raise SystemExit(f"tables hold {table_counts(settings)}, expected {(trades, states)}")
        time.sleep(2)
    return time.monotonic() - start


def run_suite(settings) -> dict:
    """Seconds per report query, and in all."""
    times = {}
    for name in reports.REPORTS:
        t = time.monotonic()
        try:
            reports.REPORTS[name].run(lambda query: warehouse.query(settings.trino, query))
        except Exception as exc:
            raise SystemExit(f"report {name} failed: {exc}") from exc
        times[name] = round(time.monotonic() - t, 2)
    times["total"] = round(sum(times.values()), 2)
    return times


@click.command()
@click.option("--levels", default="10000,100000,1000000", show_default=True, help="Trade counts to time at.")
@click.option("--players", default=10_000, show_default=True)
def main(levels: str, players: int) -> None:
    targets = sorted(int(x) for x in levels.split(","))
    work = Path(tempfile.mkdtemp(prefix="bazaar-reports-bench-"))
    env = isolated_env(work / "home")
    settings = stack_from_env(env)
    results: dict = {"players": players, "levels": {}}
    try:
        with console.status("bazaar up"):
            bazaar(env, "up")
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_login().kafka_python(), acks="all", linger_ms=20,
                                 batch_size=512 * 1024)
        economy = Economy(players)
        trades, states = 0, produce(producer, settings.topic.topic, economy.created())
        for target in targets:
            for _ in track(range(target - trades), description=f"producing trades up to {target:,}",
                           console=console):
                batch = economy.trade()
                trades += 1
                states += produce(producer, settings.topic.topic, batch) - 1
            producer.flush()
            with console.status(f"sinks landing {trades:,} trades and {states:,} states"):
                landed = wait_for_tables(settings, trades, states)
            run_suite(settings)  # the first run warms Trino's JIT and metastore caches
            with console.status(f"report suite at {trades:,} trades"):
                results["levels"][str(target)] = {"trades": trades, "states": states,
                                                  "landed_wait_s": round(landed, 1), "queries_s": run_suite(settings)}
            save_results("reports", results)  # each level as it is done
        producer.close()
    finally:
        bazaar(env, "down")
        shutil.rmtree(work, ignore_errors=True)
    table = Table("report", *[f"{int(k):,} trades (s)" for k in results["levels"]], title="report suite on Trino")
    for name in [*reports.REPORTS, "total"]:
        table.add_row(name, *[str(v["queries_s"][name]) for v in results["levels"].values()])
    console.print(table)
    console.print(f"written to {save_results('reports', results)}")


if __name__ == "__main__":
    main()
