"""Local-stack benchmark: `bazaar up` cold and warm, resident memory of each
service, relay throughput and trade -> Kafka latency.

    python bench/stack_bench.py [--cold/--no-cold] [--events 60000] [--trades 2000] [--profile cluster]

With `--profile cluster` it measures the cluster shape on this machine (three
brokers, HDFS, Spark standalone, Postgres, Dagster over gRPC) and, beyond the
above, what one broker's loss costs: the trade answer's and trade -> Kafka
latency before the broker is killed (SIGKILL), while it is down, and after it
is started again.

Everything runs on ports and folders of its own.  "Cold" starts from an empty
artifact cache and an empty Maven repository, so it includes every download;
"warm" is `up` again after `down`, with everything cached.  Prints a table and
writes bench/results/stack.json.
"""

from __future__ import annotations

import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import click
import requests
from kafka import KafkaConsumer
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bazaar.settings import Stack  # noqa: E402
from bazaar.stack import RelayService, services  # noqa: E402
from bazaar.stack.kafka_broker import brokers  # noqa: E402
from bazaar.stack.ports import isolated_env, stack_from_env  # noqa: E402
from bench.common import bazaar, group_rss_mib, percentile, save_results  # noqa: E402
from engine import catalog  # noqa: E402
from engine.db import make_redis  # noqa: E402
from engine.rules import Offer  # noqa: E402
from engine.store import Store  # noqa: E402

console = Console()


def relay_throughput(settings: Stack, events: int) -> dict:
    """Fill the outbox with the relay stopped, then time the relay draining it."""
    relay = RelayService(settings)
    relay.stop()
    store = Store(make_redis(settings.redis), settings.redis.namespace)
    rng = random.Random(1)
    base = store.player_count()
    for _ in range(200):
        store.create_player(catalog.CLASSES["merchant"], None, rng)
    while relay.lag().waiting < events:
        a, b = rng.sample(range(base + 1, base + 201), 2)
        store.trade(Offer(a, {}, 1), Offer(b, {}, 0))
    waiting = relay.lag().waiting
    t = time.monotonic()
    relay.start()
    while relay.lag().waiting > 0:
        time.sleep(0.05)
    seconds = time.monotonic() - t
    return {"events": waiting, "seconds": round(seconds, 2), "events_per_s": round(waiting / seconds)}


def trade_to_kafka_latency(settings: Stack, trades: int, rate: float) -> dict:
    """Send trades at `rate`/s over HTTP; time from sending each to its trade event arriving in Kafka."""
    arrived: dict[bytes, float] = {}
    stop = threading.Event()
    consumer = KafkaConsumer(settings.topic.topic, bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_login().kafka_python(),
                             auto_offset_reset="latest", consumer_timeout_ms=200)
    consumer.poll(timeout_ms=1000)  # join before the first trade

    def consume():
        while not stop.is_set():
            for msg in consumer:
                arrived.setdefault(msg.key, time.monotonic())

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    session, sent, answered = requests.Session(), {}, []
    session.headers["Authorization"] = f"Bearer {settings.api_key}"
    ids = [int(session.put(f"{settings.engine_url}/create_player").json()["player_id"]) for _ in range(20)]
    for i in range(trades):
        t = time.monotonic()
        a, b = random.sample(ids, 2)
        r = session.post(f"{settings.engine_url}/trade",
                         json={"player_1": {"player_id": a, "gold_traded": 1}, "player_2": {"player_id": b}})
        answered.append((time.monotonic() - t) * 1000)
        sent[r.json()["trade_id"].encode()] = t
        time.sleep(max(0.0, t + 1 / rate - time.monotonic()))
    deadline = time.monotonic() + 30
    while len(set(sent) & set(arrived)) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    reader.join()
    consumer.close()
    lat = sorted((arrived[k] - t) * 1000 for k, t in sent.items() if k in arrived)
    answered.sort()
    return {"trades": trades, "arrived": len(lat), "rate_per_s": rate,
            "p50_ms": round(statistics.median(lat), 1), "p99_ms": round(percentile(lat, 0.99), 1),
            "max_ms": round(lat[-1], 1), "answer_p50_ms": round(statistics.median(answered), 1),
            "answer_p99_ms": round(percentile(answered, 0.99), 1)}


def broker_loss(settings: Stack, trades: int, rate: float) -> dict:
    """Trade -> Kafka latency with every broker up, with the first broker killed (SIGKILL: it is a
    leader of some partitions and a voter of the quorum), and after it is started again."""
    victim = brokers(settings)[0]
    out = {"before": trade_to_kafka_latency(settings, trades, rate)}
    victim.kill()
    try:
        out["broker_down"] = trade_to_kafka_latency(settings, trades, rate)
    finally:
        t = time.monotonic()
        victim.start()
        out["restart_s"] = round(time.monotonic() - t, 1)
    out["after_restart"] = trade_to_kafka_latency(settings, trades, rate)
    return out


@click.command()
@click.option("--cold/--no-cold", default=True, help="Also time `up` from empty caches (downloads ~1 GB).")
@click.option("--events", default=60_000, show_default=True, help="Outbox events for the relay run.")
@click.option("--trades", default=2_000, show_default=True, help="Trades for the latency run.")
@click.option("--rate", default=200.0, show_default=True, help="Trades per second in the latency run.")
@click.option("--profile", type=click.Choice(["local", "cluster"]), default="local", show_default=True,
              help="The stack's shape; `cluster` adds the broker-loss run.")
def main(cold: bool, events: int, trades: int, rate: float, profile: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="bazaar-stack-bench-"))
    env = isolated_env(work / "home", BAZAAR_PROFILE=profile)
    if cold:
        env |= {"BAZAAR_CACHE": str(work / "cache"), "BAZAAR_MAVEN_REPO": str(work / "m2")}
    settings = stack_from_env(env)
    results: dict = {}
    try:
        with console.status("bazaar up (cold)" if cold else "bazaar up (first)"):
            results["up_cold_s" if cold else "up_first_s"] = round(bazaar(env, "up"), 1)
        bazaar(env, "down")
        with console.status("bazaar up (warm)"):
            results["up_warm_s"] = round(bazaar(env, "up"), 1)
        time.sleep(10)  # let the JVMs settle before reading memory
        results["rss_mib"] = {s.name: round(group_rss_mib(s.pid()), 1) for s in services(settings)}
        results["rss_mib"]["total"] = round(sum(results["rss_mib"].values()), 1)
        with console.status(f"relay draining {events:,} events"):
            results["relay"] = relay_throughput(settings, events)
        with console.status(f"{trades} trades at {rate:.0f}/s -> Kafka"):
            results["trade_to_kafka"] = trade_to_kafka_latency(settings, trades, rate)
        if profile == "cluster":
            with console.status(f"{trades} trades at {rate:.0f}/s before, during and after a broker's loss"):
                results["broker_loss"] = broker_loss(settings, trades, rate)
    finally:
        bazaar(env, "down")
        shutil.rmtree(work, ignore_errors=True)
    results["profile"] = profile
    report(results)
    console.print(f"written to {save_results('stack' if profile == 'local' else 'stack-cluster', results)}")


def report(results: dict) -> None:
    table = Table("measure", "value", title=f"{results['profile']} stack")
    for key in ("up_cold_s", "up_first_s", "up_warm_s"):
        if key in results:
            table.add_row(key.replace("_s", " (s)").replace("_", " "), str(results[key]))
    for name, mib in results["rss_mib"].items():
        table.add_row(f"RSS {name} (MiB)", str(mib))
    r = results["relay"]
    table.add_row("relay events/s", f"{r['events_per_s']:,} ({r['events']:,} in {r['seconds']}s)")
    k = results["trade_to_kafka"]
    table.add_row("trade -> Kafka p50 / p99 (ms)", f"{k['p50_ms']} / {k['p99_ms']} ({k['arrived']}/{k['trades']})")
    loss = results.get("broker_loss")
    if loss:
        for phase in ("before", "broker_down", "after_restart"):
            p = loss[phase]
            table.add_row(f"{phase.replace('_', ' ')}: answer p50 / p99, -> Kafka p50 / p99 / max (ms)",
                          f"{p['answer_p50_ms']} / {p['answer_p99_ms']}, {p['p50_ms']} / {p['p99_ms']} / {p['max_ms']}"
                          f" ({p['arrived']}/{p['trades']})")
        table.add_row("broker restart (s)", str(loss["restart_s"]))
    console.print(table)


if __name__ == "__main__":
    main()
