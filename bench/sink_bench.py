"""Sink benchmark: sustained throughput of each Spark sink, and freshness (a
trade's HTTP answer to its row being visible through Trino).

    python bench/sink_bench.py [--events 1000000] [--trades 300] [--rate 10] [--settle 60]

Brings up a stack of its own, stops the Dagster daemon (its supervisor would
restart the sinks) and the sinks, produces a backlog of events in
the engine's format straight to Kafka, starts the sinks and times each one
draining it (records read per second while it catches up: the most it
sustains).  Then, at the default trigger, sends trades over HTTP and polls Trino
for each: right after the sinks caught up (they are still expiring the backlog's
dedup state), and again after `--settle` seconds more of trades at the same rate,
the steady state the target is about.  Writes bench/results/sinks.json.

The backlog's events are dated `--backlog-age` seconds ago (2 h by default),
as the tables' history.  The sinks' dedup window follows each record's arrival
in Kafka, not its own date, so a backlog produced at once is inside the window
whatever its age: the dedup state holds every one of its events until the
window has passed, as it would after a sink was down while events arrived.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click
import requests
from kafka import KafkaProducer
from rich.console import Console
from rich.progress import track
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bazaar.stack import DagsterDaemonService, SinkService  # noqa: E402
from bazaar.stack.ports import isolated_env, stack_from_env  # noqa: E402
from bench.common import bazaar, percentile, save_results  # noqa: E402
from engine import catalog, events, rules  # noqa: E402
from engine.rules import Offer  # noqa: E402
from orchestration import warehouse  # noqa: E402

console = Console()
POLL_S = 0.5  # each poll is a Trino query on the same 2 cores as the sinks; faster polling slows them


def produce_backlog(settings, n: int, age_s: float) -> int:
    """n events, a trade and its two states at a time, as the engine would append them `age_s` ago,
    compressed as the relay compresses them (`BAZAAR_RELAY_COMPRESSION`): the sinks decompress what
    they read."""
    rng = random.Random(5)
    codec = settings.relay.relay_compression
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_login().kafka_python(), acks="all", linger_ms=20,
                             batch_size=512 * 1024, compression_type=None if codec == "none" else codec)
    kit = catalog.CLASSES["merchant"]
    sent = 0
    for _ in track(range(n // 3), description=f"producing {n:,} events", console=console):
        a, b = rng.sample(range(1, 5001), 2)
        when = events.utc_iso(datetime.now(timezone.utc) - timedelta(seconds=age_s))
        trade = events.trade_event(events.new_id(), when, None, rules.trade_side(Offer(a, {1: 1})),
                                   rules.trade_side(Offer(b, {}, 3)))
        producer.send(settings.topic.topic, key=trade.kafka_key.encode(), value=trade.model_dump_json().encode())
        for pid in (a, b):
            state = events.player_state_event(rules.new_player(pid, f"p{pid}", kit).to_state(), when)
            producer.send(settings.topic.topic, key=state.kafka_key.encode(), value=state.model_dump_json().encode())
        sent += 3
    producer.flush()
    producer.close()
    return sent


def drain(sink: SinkService, total_records: int, expected_events: int) -> dict:
    """Start a sink on the backlog; its rate from the end of its first batch to having read everything."""
    sink.start()
    first = None
    while True:
        p = sink.progress()
        if first is None and p.get("batch_id") is not None:
            first = (time.monotonic(), p.get("events_written", 0))
        if p.get("events_written", 0) >= expected_events and p.get("offsets_behind_latest") == 0:
            break
        time.sleep(0.1)
    seconds = time.monotonic() - first[0]
    events_per_s = (p["events_written"] - first[1]) / seconds
    return {"records": total_records, "events_written": p["events_written"], "seconds": round(seconds, 1),
            "events_per_s": round(events_per_s), "records_per_s": round(events_per_s * total_records / expected_events)}


def send_trades(settings, trades: int, rate: float, answered: dict[str, float]) -> None:
    """`trades` trades at `rate` a second, each answer's time recorded by trade id."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {settings.api_key}"
    ids = [session.put(f"{settings.engine_url}/create_player").json()["player_id"] for _ in range(10)]
    due = time.monotonic()
    for _ in range(trades):
        time.sleep(max(0.0, due - time.monotonic()))
        a, b = random.sample(ids, 2)
        r = session.post(f"{settings.engine_url}/trade",
                         json={"player_1": {"player_id": a, "gold_traded": 1}, "player_2": {"player_id": b}})
        answered[r.json()["trade_id"]] = time.monotonic()
        due += 1 / rate


def freshness(settings, trades: int, rate: float, sinks: dict) -> dict:
    """Seconds from each trade's HTTP answer to the start of the first Trino query that returns it.

    Trades go out from a thread of their own at `rate`, whatever the polls take. The start of the
    query, not its end: how long the query itself runs depends on the table's size, not on how
    soon the sink made the row visible."""
    answered: dict[str, float] = {}
    seen: dict[str, float] = {}
    polls: list[float] = []  # how long each Trino poll took: a row is seen at the next poll's start
    batches: dict[str, dict[int, float]] = {name: {} for name in sinks}  # batch id -> seconds
    start = time.time()
    sender = threading.Thread(target=send_trades, args=(settings, trades, rate, answered), daemon=True)
    sender.start()
    deadline = None  # a minute after the last trade for every row to show
    while deadline is None or (time.monotonic() < deadline and not answered.keys() <= seen.keys()):
        if deadline is None and not sender.is_alive():
            deadline = time.monotonic() + 60
        now = time.monotonic()
        # what a dashboard polling twice a second sees: today's partitions, this run's trades
        since = time.gmtime(start - 5)
        rows = warehouse.execute(settings.trino, f"select distinct trade_id from trades "
                                           f"where dt >= '{time.strftime('%Y-%m-%d', since)}' and "
                                           f"trade_time >= timestamp '{time.strftime('%Y-%m-%d %H:%M:%S', since)}'")
        polls.append(time.monotonic() - now)
        for name, sink in sinks.items():
            p = sink.progress()
            if p.get("batch_id") is not None and p.get("batch_duration_ms") is not None:
                batches[name][p["batch_id"]] = p["batch_duration_ms"] / 1000
        # visible to a query started at `now`: Trino lists the files when the query starts
        for tid in rows.trade_id:
            seen.setdefault(tid, now)
        time.sleep(max(0.0, now + POLL_S - time.monotonic()))
    lags = sorted(seen[t] - answered[t] for t in answered if t in seen)
    polls.sort()
    out = {"trades": trades, "visible": len(lags), "p50_s": round(percentile(lags, 0.5), 2),
           "p95_s": round(percentile(lags, 0.95), 2), "max_s": round(lags[-1], 2),
           "not_visible": sorted(set(answered) - set(seen))[:10],
           "poll_p50_s": round(percentile(polls, 0.5), 2), "poll_p95_s": round(percentile(polls, 0.95), 2)}
    for name, seconds in batches.items():  # the batches seen at the polls: a sample, not every one
        took = sorted(seconds.values())
        out[f"{name}_batch_p50_s"] = round(percentile(took, 0.5), 2) if took else None
        out[f"{name}_batch_p95_s"] = round(percentile(took, 0.95), 2) if took else None
    return out


@click.command()
@click.option("--events", "n_events", default=1_000_000, show_default=True, help="Backlog size.")
@click.option("--trades", default=300, show_default=True, help="Trades timed for freshness, each time.")
@click.option("--rate", default=10.0, show_default=True, help="Trades per second in the freshness run.")
@click.option("--settle", default=60.0, show_default=True,
              help="Seconds of trades, untimed, between the two freshness runs.")
@click.option("--backlog-age", default=7200.0, show_default=True,
              help="Seconds before now the backlog's events happened (0: inside the dedup window).")
def main(n_events: int, trades: int, rate: float, settle: float, backlog_age: float) -> None:
    work = Path(tempfile.mkdtemp(prefix="bazaar-sink-bench-"))
    # batches of at most 200k records, so the backlog is drained over several batches at the sink's pace
    env = isolated_env(work / "home", BAZAAR_SINK_MAX_OFFSETS_PER_TRIGGER="200000")
    settings = stack_from_env(env)
    results: dict = {"trigger_s": settings.sinks.sink_trigger_seconds}
    try:
        with console.status("bazaar up"):
            bazaar(env, "up")
        # the daemon's supervisor would restart the sinks this benchmark stops on purpose
        DagsterDaemonService(settings).stop()
        sinks = {name: SinkService(settings, name) for name in ("trades", "player_states")}
        for sink in sinks.values():
            sink.stop()
        total = produce_backlog(settings, n_events, backlog_age)
        results["backlog_age_s"] = backlog_age
        results["backlog_records"] = total
        for name, sink in sinks.items():
            expected = total // 3 if name == "trades" else total * 2 // 3
            with console.status(f"sink {name} draining {total:,} records"):
                results[name] = drain(sink, total, expected)
        with console.status(f"freshness right after catching up: {trades} trades at {rate}/s"):
            results["freshness_after_backlog"] = freshness(settings, trades, rate, sinks)
        with console.status(f"settling: {settle:.0f} s of trades at {rate}/s"):
            send_trades(settings, int(settle * rate), rate, {})
        with console.status(f"freshness, steady: {trades} trades at {rate}/s"):
            results["freshness"] = freshness(settings, trades, rate, sinks)
    finally:
        bazaar(env, "down")
        shutil.rmtree(work, ignore_errors=True)
    table = Table("measure", "value", title=f"Spark sinks (trigger {settings.sinks.sink_trigger_seconds}s)")
    for name in ("trades", "player_states"):
        r = results[name]
        table.add_row(f"{name}: records read/s", f"{r['records_per_s']:,} (backlog {r['records']:,})")
        table.add_row(f"{name}: events written/s", f"{r['events_per_s']:,}")
    for key, label in (("freshness_after_backlog", "right after catching up"), ("freshness", "steady")):
        f = results[key]
        table.add_row(f"freshness {label}: p50 / p95 / max (s)",
                      f"{f['p50_s']} / {f['p95_s']} / {f['max_s']} ({f['visible']}/{f['trades']} visible)")
        table.add_row("  Trino poll p50 / p95 (s)", f"{f['poll_p50_s']} / {f['poll_p95_s']}")
        for name in ("trades", "player_states"):
            table.add_row(f"  {name} batch p50 / p95 (s)", f"{f[f'{name}_batch_p50_s']} / {f[f'{name}_batch_p95_s']}")
    console.print(table)
    console.print(f"written to {save_results('sinks', results)}")


if __name__ == "__main__":
    main()
