"""Season benchmark: the warehouse as it ages, and what compaction gives back.

    python bench/season_bench.py [--days 30] [--batches 2000] [--trades-per-day 3] [--rate 5]

Brings up a stack of its own (`bazaar up`: the engine, the relay, Kafka, both sinks, the metastore,
Trino, Dagster; the Dagster daemon is stopped, so that neither its daily compaction nor its
late-events sensor compacts the season while it is laid down). Produces a season of `--days` UTC
days ending yesterday, in the engine's event format and decided by the engine's own rules (as
`reports_bench` makes them), to Kafka in `--batches` rounds; each round holds `--trades-per-day`
trades of every day (and the player states after them), and the sinks take one round a micro-batch
(`BAZAAR_SINK_MAX_OFFSETS_PER_TRIGGER`), so each micro-batch lands a file in every day of every
table: `--batches` files a day per table, streamed through the real sinks. (Production lays a day's
files in that day's batches; a round carrying every day is how a season of them is laid in an
hour here.) Then:

1. the report suite on that layout (the aged warehouse), after one untimed run;
2. the whole season compacted by the compaction job Dagster's `compacted_days` runs
   (`orchestration.compaction.run`, one run for every day), with the job's peak memory, while
   trades go to the engine over HTTP at `--rate` a second and each one's freshness (answer to
   row in Trino) is measured; the same load's freshness just before, without compaction;
3. today compacted too (the players' creation and the freshness trades), then the report suite;
4. the same rows loaded in bulk (`create table ... as select` through Trino into a schema of their
   own: few large files a day) and the suite on them.

Prints files per day per table before and after, and the suite's times as ratios to the bulk
layout; writes bench/results/season.json.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click
from kafka import KafkaProducer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bazaar.stack import SinkService  # noqa: E402
from bazaar.stack.ports import isolated_env, stack_from_env  # noqa: E402
from bazaar.stack.sink_drivers import launcher_settings  # noqa: E402
from bench.common import bazaar, percentile, save_results  # noqa: E402
from bench.reports_bench import Economy, run_suite  # noqa: E402
from bench.sink_bench import freshness  # noqa: E402
from engine import events  # noqa: E402
from orchestration import compaction, warehouse  # noqa: E402

console = Console()
TABLES = ("trades", "trade_sides", "player_states", "state_summaries")  # what the season fills
BULK = "bulk"  # the schema of the same rows loaded in bulk


class Season(Economy):
    """The report benchmark's economy, each trade dated a moment of a given day."""

    def trade_on(self, day: datetime):
        return self.trade(events.utc_iso(day + timedelta(seconds=self.rng.uniform(0, 86_399))))


def lay_down(settings, days: list[datetime], batches: int, per_day: int, players: int) -> dict:
    """Produce the season round by round and wait until the tables hold it all; returns counts."""
    economy = Season(players)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_login().kafka_python(), acks="all", linger_ms=20,
                             batch_size=512 * 1024)
    topic, trades, states = settings.topic.topic, 0, 0
    for ev in economy.created():
        producer.send(topic, key=ev.kafka_key.encode(), value=ev.model_dump_json().encode())
        states += 1
    with Progress(console=console) as progress:
        task = progress.add_task("producing the season", total=batches)
        for _ in range(batches):
            for day in days:
                for _ in range(per_day):
                    for ev in economy.trade_on(day):
                        producer.send(topic, key=ev.kafka_key.encode(), value=ev.model_dump_json().encode())
                        trades += ev.event_type == "trade"
                        states += ev.event_type == "player_state"
            progress.advance(task)
        producer.flush()
    producer.close()
    return {"trades": trades, "states": states}


def wait_for_tables(settings, want: dict, timeout: float) -> float:
    start, got = time.monotonic(), None
    with console.status("the sinks landing the season") as status:
        while time.monotonic() - start < timeout:
            got = warehouse.execute(settings.trino, "select (select count(distinct event_id) from trades) as trades, "
                                                    "(select count(distinct event_id) from player_states) as states"
                                    ).iloc[0].to_dict()
            status.update(f"the sinks landing the season: {got['trades']:,}/{want['trades']:,} trades, "
                          f"{got['states']:,}/{want['states']:,} states")
            if got == want:
                return time.monotonic() - start
            time.sleep(5)
    raise SystemExit(f"after {timeout:.0f}s the tables hold {got}, the season {want}")


def files_per_day(settings, tables, days: list[str], database: str | None = None) -> dict[str, dict]:
    """Per table, the files readers read per day: min, median, max over the season's days."""
    s = settings.trino if database is None else settings.trino.model_copy(update={"database": database})
    out = {}
    for table in tables:
        got = warehouse.execute(s, f"select dt, count(distinct \"$path\") from {table} "
                                   f"where dt between '{days[0]}' and '{days[-1]}' group by dt")
        counts = sorted(int(n) for n in got.iloc[:, 1])
        out[table] = {"days": len(counts), "min": counts[0], "median": percentile(counts, 0.5), "max": counts[-1]}
    return out


def suite(settings, database: str | None = None) -> dict:
    s = settings if database is None else settings.replace(database=database)
    run_suite(s)  # warms Trino's JIT and its metastore cache
    return run_suite(s)


def bulk_copy(settings) -> None:
    """The same rows, in a schema of their own, written by Trino (as the warehouse's owner) in one go
    per table."""
    owner = settings.trino.as_owner()
    warehouse.execute(owner, f"create schema if not exists {BULK}")
    for table in [*TABLES, "offers", "quarantine", "economy_trade_deltas", "economy_player_deltas"]:
        warehouse.execute(owner, f"drop table if exists {BULK}.{table}")
        parts = "ARRAY['source', 'dt']" if table == "quarantine" else "ARRAY['dt']"
        warehouse.execute(owner, f"create table {BULK}.{table} with (format = 'PARQUET', "
                                          f"partitioned_by = {parts}) as select * from {table}")
    warehouse.ensure_views(settings.trino.model_copy(update={"database": BULK}))


class PeakMemory(threading.Thread):
    """The largest resident memory of the compaction job's processes (its JVM and its Python driver)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_mib, self.running = 0.0, True

    def run(self):
        while self.running:
            total = 0
            for pid in Path("/proc").iterdir():
                try:
                    if b"spark_jobs/compact.py" not in (pid / "cmdline").read_bytes():
                        continue
                    status = (pid / "status").read_text()
                except OSError:
                    continue
                total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
            self.peak_mib = max(self.peak_mib, total / 1024)
            time.sleep(0.5)


def compact_season(settings, days: list[str], rate: float) -> tuple[dict, dict]:
    """The season compacted in one run of the job, while trades flow; (compaction figures, freshness)."""
    memory, outcome, took = PeakMemory(), {}, {}

    def job():
        t = time.monotonic()
        outcome["list"] = compaction.run(launcher_settings(settings), settings.warehouse,
                                         [a for d in days for a in ("--day", d)])
        took["s"] = time.monotonic() - t

    sinks = {name: SinkService(settings, name) for name in ("trades", "player_states")}
    idle = [freshness(settings, int(rate * 20), rate, sinks) for _ in range(3)]  # the same load, no compaction
    memory.start()
    worker = threading.Thread(target=job)
    worker.start()
    fresh = []
    while worker.is_alive():  # freshness measured in rounds for as long as the compaction runs
        fresh.append(freshness(settings, int(rate * 20), rate, sinks))
    worker.join()
    memory.running = False
    rows = sum(o["rows"] for o in outcome["list"])
    worst = lambda rounds: {k: max(f[k] for f in rounds) for k in ("p50_s", "p95_s", "max_s")} if rounds else {}
    return ({"seconds": round(took["s"], 1), "rows": rows, "rows_per_s": round(rows / took["s"]),
             "partitions": sum(o["action"] == "compacted" for o in outcome["list"]),
             "peak_rss_mib": round(memory.peak_mib)},
            {"rounds": len(fresh), "trades": sum(f["trades"] for f in fresh), **worst(fresh),
             "without_compaction": {"rounds": len(idle), **worst(idle)}})


@click.command()
@click.option("--days", default=30, show_default=True, help="UTC days of the season, ending yesterday.")
@click.option("--batches", default=2000, show_default=True, help="Micro-batches, so files a day per table.")
@click.option("--trades-per-day", default=3, show_default=True, help="Trades of each day in each round.")
@click.option("--players", default=2_000, show_default=True)
@click.option("--rate", default=5.0, show_default=True, help="Trades a second over HTTP during compaction.")
def main(days: int, batches: int, trades_per_day: int, players: int, rate: float) -> None:
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    season = [today - timedelta(days=d) for d in range(days, 0, -1)]
    names = [d.date().isoformat() for d in season]
    work = Path(tempfile.mkdtemp(prefix="bazaar-season-bench-"))
    # one round a micro-batch: its trades, and about two player states each
    per_batch = days * trades_per_day * 3
    env = isolated_env(work / "home", BAZAAR_SINK_MAX_OFFSETS_PER_TRIGGER=str(per_batch),
                       BAZAAR_WAREHOUSE_FIRST_DAY=names[0])
    settings = stack_from_env(env)
    results: dict = {"days": days, "batches": batches, "trades_per_day_per_round": trades_per_day,
                     "records_per_micro_batch": per_batch}
    try:
        with console.status("bazaar up"):
            bazaar(env, "up")
            bazaar(env, "down", "dagster-daemon")
        t = time.monotonic()
        want = lay_down(settings, season, batches, trades_per_day, players)
        wait_for_tables(settings, want, 6 * 3600)
        results["season"] = {**want, "landed_s": round(time.monotonic() - t, 1)}  # produced and landed
        warehouse.ensure_views(settings.trino)  # as the reports job's first step makes them
        results["files_per_day_before"] = files_per_day(settings, TABLES, names)
        with console.status("report suite on the aged warehouse"):
            results["suite_aged_s"] = suite(settings)
        save_results("season", results)  # each stage's figures kept as they come: a later failure loses none
        with console.status(f"compacting {days} days while trades flow at {rate}/s"):
            results["compaction"], results["freshness_during_compaction"] = compact_season(settings, names, rate)
        save_results("season", results)
        console.print(f"compaction: {results['compaction']}; freshness: {results['freshness_during_compaction']}")
        # today's partition too (the engine's players and the freshness trades): every day compacted
        compaction.run(launcher_settings(settings), settings.warehouse,
                       ["--day", datetime.now(timezone.utc).date().isoformat()])
        results["files_per_day_after"] = files_per_day(settings, TABLES, names)
        with console.status("report suite after compaction"):
            results["suite_compacted_s"] = suite(settings)
        with console.status("the same rows loaded in bulk"):
            bulk_copy(settings)
            results["files_per_day_bulk"] = files_per_day(settings, TABLES, names, BULK)
            results["suite_bulk_s"] = suite(settings, BULK)
        save_results("season", results)
    finally:
        bazaar(env, "down")
        shutil.rmtree(work, ignore_errors=True)
    show(results)
    console.print(f"written to {save_results('season', results)}")


def show(r: dict) -> None:
    files = Table("table", "files a day, aged (min/median/max)", "compacted", "bulk", title="files per day")
    for t in TABLES:
        row = [f"{r[k][t]['min']}/{r[k][t]['median']}/{r[k][t]['max']}"
               for k in ("files_per_day_before", "files_per_day_after", "files_per_day_bulk")]
        files.add_row(t, *row)
    console.print(files)
    bulk = r["suite_bulk_s"]["total"]
    suite_table = Table("layout", "report suite (s)", "ratio to bulk", title="report suite")
    for label, key in (("aged (small files)", "suite_aged_s"), ("compacted", "suite_compacted_s"),
                       ("bulk-loaded", "suite_bulk_s")):
        suite_table.add_row(label, str(r[key]["total"]), f"{r[key]['total'] / bulk:.2f}")
    console.print(suite_table)
    c, f = r["compaction"], r["freshness_during_compaction"]
    console.print(f"compaction: {c['partitions']} partitions, {c['rows']:,} rows in {c['seconds']}s "
                  f"({c['rows_per_s']:,} rows/s), peak memory {c['peak_rss_mib']} MiB; freshness during it "
                  f"(worst round of {f.get('rounds')}): p50 {f.get('p50_s')}s, p95 {f.get('p95_s')}s; without "
                  f"compaction (worst of {f['without_compaction']['rounds']}): p50 {f['without_compaction']['p50_s']}s, "
                  f"p95 {f['without_compaction']['p95_s']}s")


if __name__ == "__main__":
    main()
