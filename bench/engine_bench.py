"""Engine benchmark, in the configuration users run: `bazaar up redis kafka engine relay` (the relay
and Kafka always beside the engine, on the same cores as the load generator).

    python bench/engine_bench.py [--seconds 10] [--steady-seconds 60] [--players 10000]
    python bench/engine_bench.py --whole-stack      (the sinks, metastore, Trino and Dagster up too)
    python bench/engine_bench.py --metrics-only     (only the engine's metrics off and on)

Starts its own stack with the `bazaar` command (free ports, a temporary home).  Every request carries
the stack's API key, so every figure includes the key check and the rate limit.  From one run:

- after a 30 s warm-up that is not measured (a stack just started runs its first minute of load
  slower: the broker's JIT compiles on the same cores), trades with `wrk` at 1, 8 and 32
  connections: executed trades/s, p50/p99, the CPU each process used per executed trade (engine
  workers, Redis, relay, Kafka; from /proc), relay CPU per event, and the bytes Kafka's log grew on
  disk per executed trade;
- the ceiling: the same wrk against a minimal Flask route under the engine's server command, and the
  engine's ratio to it;
- a steady run at 32 connections (`--steady-seconds`): the outbox's lag sampled every 2 s (flat or
  growing), and trade -> Kafka latency: each trade event's broker append time (the topic stamps
  LogAppendTime) minus its `trade_time` (taken when the engine decided it, before the answer);
- what the trust boundary costs (with and without a fresh Idempotency-Key, alternated), the key check
  timed alone, and `PUT /create_player` at 1k and 100k players.

- what the engine's metrics cost: 32 connections with `BAZAAR_METRICS` off and on, alternated three
  times, the engine restarted for each: trades/s and the engine's CPU per executed trade (its keeper,
  granian and its workers), on/off as a ratio.

`--whole-stack` runs only the steady run, with the whole stack up, and samples the sinks'
`offsets_behind_latest` beside the outbox's lag.  Prints tables and writes bench/results/engine.json
(or engine_whole_stack.json).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import click
import orjson
import redis
import requests
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console
from rich.progress import track
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bazaar.stack import EngineService, KafkaService, RedisService, RelayService  # noqa: E402
from bazaar.stack.api_key import ensure_stack_key  # noqa: E402
from bazaar.stack.ports import free_port, isolated_env, stack_from_env  # noqa: E402
from bench.common import bazaar, percentile, save_results  # noqa: E402
from engine import catalog  # noqa: E402
from engine.auth import Keys  # noqa: E402
from engine.db import make_redis  # noqa: E402
from engine.store import Store  # noqa: E402
from bazaar.stack.sink_drivers import launcher_settings  # noqa: E402
from spark_jobs.launch import launcher_for  # noqa: E402
from spark_jobs.processes import process_table  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 160)



def ensure_wrk() -> None:
    if shutil.which("wrk") is None:
        console.print("installing wrk (Debian package) for the load generator")
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "wrk"], check=True)


def fill(store: Store, upto: int) -> None:
    """Create players through the engine's own store code until there are `upto`."""
    rng = random.Random(upto)
    have = store.player_count()
    for _ in track(range(upto - have), description=f"creating players up to {upto:,}", console=console):
        store.create_player(catalog.draw_class(rng), None, rng)


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes have used so far, from /proc."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


class Meter:
    """What the stack's processes used between two readings: CPU seconds per process group, events
    the relay sent, and bytes Kafka's log grew on disk (the topic's segment files)."""

    def __init__(self, groups: dict[str, list[int]], relay: RelayService, kafka_logs: Path, topic: str):
        self.groups, self.relay, self.kafka_logs, self.topic = groups, relay, kafka_logs, topic

    def kafka_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.kafka_logs.glob(f"{self.topic}-*/*.log"))

    def read(self) -> dict:
        return {"cpu": {name: cpu_s(pids) for name, pids in self.groups.items()},
                "sent": self.relay.lag().sent, "kafka_bytes": self.kafka_bytes()}

    def drained(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.relay.lag().waiting and time.monotonic() < deadline:
            time.sleep(0.1)

    def per_trade(self, before: dict, executed: int) -> dict:
        """CPU ms per executed trade by process group, relay CPU per event, Kafka bytes per trade."""
        self.drained()
        time.sleep(0.5)  # the broker's last append, and its CPU, after the relay's last confirm
        after = self.read()
        cpu = {name: after["cpu"][name] - before["cpu"][name] for name in self.groups}
        sent = after["sent"] - before["sent"]
        out = {f"{name}_cpu_ms_per_trade": round(1000 * v / executed, 4) for name, v in cpu.items()}
        out["engine_redis_relay_cpu_ms_per_trade"] = round(
            1000 * sum(cpu[n] for n in ("engine", "redis", "relay") if n in cpu) / executed, 4)
        out["events_sent"] = sent
        out["events_per_trade"] = round(sent / executed, 3)
        if "relay" in cpu and sent:
            out["relay_cpu_ms_per_event"] = round(1000 * cpu["relay"] / sent, 4)
        out["kafka_bytes_per_trade"] = round((after["kafka_bytes"] - before["kafka_bytes"]) / executed, 1)
        return out


def run_wrk(url: str, connections: int, seconds: int, players: int, key: str, idempotent: bool = False,
            meter: Meter | None = None) -> dict:
    """A wrk run of trades; with a `meter`, what each process used per executed trade."""
    threads = min(2, connections)
    before = meter.read() if meter else None
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
         "-s", str(ROOT / "bench" / "trade.lua"), url],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PLAYERS": str(players), "API_KEY": key, "IDEMPOTENT": "1" if idempotent else "0",
             "RUN": f"{time.time_ns()}"},
    ).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    errors = re.search(r"Socket errors: (.*)", out)
    pct = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.M))
    executed = total - non2xx
    row = {
        "connections": connections,
        "idempotency_key": idempotent,
        "requests": total,
        "executed": executed,
        "executed_per_s": round(executed / seconds, 1),
        "p50_ms": _ms(pct["50"]),
        "p99_ms": _ms(pct["99"]),
        "socket_errors": errors.group(1) if errors else None,
    }
    if meter and executed:
        row |= meter.per_trade(before, executed)
    return row


class MinimalFlask(EngineService):
    """A minimal Flask route (`bench/minimal_app.py`) under the engine's own server command, started
    and stopped as the stack's services are, on a port of its own."""

    name = "minimal-flask"

    def command(self) -> list[str]:
        cmd = super().command()
        cmd[cmd.index("engine:create_app")] = "bench.minimal_app:create_app"
        return cmd

    def environment(self) -> dict[str, str]:
        return {"PYTHONPATH": str(ROOT)}

    def healthy(self) -> bool:
        return requests.get(f"{self.address}/health", timeout=2).ok


WARM_UP_S = 30


def warm_up(url: str, players: int, key: str, meter: Meter) -> None:
    """Trades for WARM_UP_S, not measured: a stack just started runs its first minute of load slower
    (the broker's JIT compiles on the same cores), which is not how a stack up for a while runs."""
    with console.status(f"warming up: 32 connections for {WARM_UP_S}s, not measured"):
        run_wrk(url, 32, WARM_UP_S, players, key)
        meter.drained()


def ceiling(settings, seconds: int, players: int, key: str) -> dict:
    """wrk at 32 connections against a minimal Flask route under the engine's own server command."""
    app = MinimalFlask(settings.replace(engine_port=free_port()))
    app.start()
    try:
        return run_wrk(app.address, 32, seconds, players, key)
    finally:
        app.stop()


def lag_samples(stop: threading.Event, relay: RelayService, launcher, every_s: float = 2.0) -> list[dict]:
    """The outbox's lag (and the sinks' offsets behind the topic's end, when a launcher is given)
    every `every_s` until `stop`; sampled on a thread of its own."""
    samples: list[dict] = []

    def sample():
        t0 = time.monotonic()
        while not stop.wait(every_s):
            row = {"t_s": round(time.monotonic() - t0, 1), "outbox": relay.lag().waiting}
            if launcher is not None:
                for sink in ("trades", "player_states"):
                    row[sink] = launcher.status(sink).progress.get("offsets_behind_latest")
            samples.append(row)

    threading.Thread(target=sample, daemon=True).start()
    return samples


def flat(samples: list[dict], field: str) -> dict:
    """Whether a lag stayed flat: its mean over the run's second half against the first half's."""
    values = [s[field] for s in samples if s.get(field) is not None]
    if len(values) < 4:
        return {"samples": len(values)}
    half = len(values) // 2
    first, second = statistics.fmean(values[:half]), statistics.fmean(values[half:])
    return {"samples": len(values), "first_half_mean": round(first, 1), "second_half_mean": round(second, 1),
            "max": max(values), "end": values[-1],
            # growing: the second half's mean well above the first's, and above a few batches' worth
            "flat": not (second > 2 * first + 100)}


def _iso_ms(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp() * 1000


def trade_to_kafka(settings, start: dict[int, int]) -> dict:
    """For every trade event appended since the offsets `start`: broker append time (LogAppendTime)
    minus the trade's `trade_time` (both this machine's clock)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_login().kafka_python(), consumer_timeout_ms=3000,
                             max_partition_fetch_bytes=8 * 1024 * 1024)
    parts = [TopicPartition(settings.topic.topic, p) for p in start]
    consumer.assign(parts)
    ends = consumer.end_offsets(parts)
    for tp in parts:
        consumer.seek(tp, start[tp.partition])
    lat = []
    for msg in consumer:
        if b'"event_type":"trade"' in msg.value:
            lat.append(msg.timestamp - _iso_ms(orjson.loads(msg.value)["trade_time"]))
        if all(consumer.position(tp) >= ends[tp] for tp in parts):
            break
    consumer.close()
    lat.sort()
    return {"trades": len(lat), "p50_ms": round(statistics.median(lat), 1), "p99_ms": round(percentile(lat, 0.99), 1),
            "max_ms": round(lat[-1], 1)} if lat else {"trades": 0}


def end_offsets(settings) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_login().kafka_python())
    parts = [TopicPartition(settings.topic.topic, p) for p in consumer.partitions_for_topic(settings.topic.topic)]
    ends = consumer.end_offsets(parts)
    consumer.close()
    return {tp.partition: off for tp, off in ends.items()}


def steady(settings, seconds: int, players: int, key: str, meter: Meter, launcher=None) -> dict:
    """32 connections for `seconds`, lags sampled throughout, then trade -> Kafka latency."""
    start = end_offsets(settings)
    stop = threading.Event()
    samples = lag_samples(stop, meter.relay, launcher)
    row = run_wrk(settings.engine_url, 32, seconds, players, key, meter=meter)
    stop.set()
    out = {"run": row, "lags": samples, "outbox_lag": flat(samples, "outbox")}
    if launcher is not None:
        out |= {f"{sink}_lag": flat(samples, sink) for sink in ("trades", "player_states")}
    meter.drained()
    out["trade_to_kafka"] = trade_to_kafka(settings, start)
    return out


def time_key_check(client: redis.Redis, keys: Keys, key: str, namespace: str, redis_pids: list[int],
                   calls: int) -> dict:
    """The key check and rate limit as a trade pays for them: `authorize.lua` queued in the pipeline
    that reads the trade's two players.  CPU per read, here and in Redis, with and without it."""

    def read(with_key: bool) -> None:
        pipe = client.pipeline(transaction=False)
        if with_key:
            keys.queue_authorize(pipe, key)
        pipe.hmget(f"{namespace}:player:1", "v", "s")
        pipe.hmget(f"{namespace}:player:2", "v", "s")
        pipe.execute()

    out = {"calls": calls}
    for with_key in (True, False, True, False):  # warm, then measured
        for _ in range(200):
            read(with_key)
        here, there = time.process_time(), cpu_s(redis_pids)
        for _ in range(calls):
            read(with_key)
        name = "with_key_check" if with_key else "without"
        out[name] = {"client_cpu_ms": round(1000 * (time.process_time() - here) / calls, 4),
                     "redis_cpu_ms": round(1000 * (cpu_s(redis_pids) - there) / calls, 4)}
    both = lambda side: side["client_cpu_ms"] + side["redis_cpu_ms"]  # noqa: E731
    out["cost_ms"] = round(both(out["with_key_check"]) - both(out["without"]), 4)
    return out


def time_creates(url: str, n: int, key: str) -> dict:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        r = session.put(f"{url}/create_player")
        samples.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 201, r.text
    samples.sort()
    return {"samples": n, "mean_ms": round(statistics.fmean(samples), 3),
            "p50_ms": round(samples[n // 2], 3), "p99_ms": round(samples[int(n * 0.99)], 3)}


def codecs(env: dict[str, str], seconds: int, players: int, key: str, meter: Meter) -> dict:
    """Kafka bytes per executed trade, and the relay's and broker's CPU, with each of the relay's
    codecs: the relay restarted with `BAZAAR_RELAY_COMPRESSION`, 32 connections for `seconds`."""
    out = {}
    for codec in ("none", "snappy", "lz4", "zstd"):  # zstd, the default, last: the stack is left as it runs
        with console.status(f"wrk: 32 connections for {seconds}s, relay compression {codec}"):
            run_env = {**env, "BAZAAR_RELAY_COMPRESSION": codec}
            bazaar(run_env, "down", "relay")
            bazaar(run_env, "up", "relay")
            meter.relay = RelayService(stack_from_env(run_env))
            meter.groups["relay"] = group_of(meter.relay)
            row = run_wrk(stack_from_env(run_env).engine_url, 32, seconds, players, key, meter=meter)
            out[codec] = {k: row.get(k) for k in ("executed_per_s", "kafka_bytes_per_trade", "relay_cpu_ms_per_event",
                                                   "kafka_cpu_ms_per_trade")}
    return out


def group_of(svc) -> list[int]:
    """Every process of a service's process group: its keeper, the service, and the service's children
    (granian's workers, a JVM's)."""
    leader = svc.pid()
    return [pid for pid, _, group in process_table() if group == leader]


def _meter(settings) -> Meter:
    engine, redis_, relay, kafka = (EngineService(settings), RedisService(settings), RelayService(settings),
                                    KafkaService(settings))
    groups = {"engine": group_of(engine), "redis": group_of(redis_), "relay": group_of(relay),
              "kafka": group_of(kafka)}
    return Meter(groups, relay, kafka.data_dir / "log", settings.topic.topic)


def metrics_cost(env: dict[str, str], seconds: int, players: int, key: str, meter: Meter, rounds: int = 3) -> dict:
    """Trades/s and the engine's CPU per executed trade with its metrics off and on (`BAZAAR_METRICS`),
    alternated `rounds` times so drift hits both alike; the engine restarted for each, and warmed."""
    rows: dict[str, list[dict]] = {"off": [], "on": []}
    for _ in range(rounds):
        for state in ("off", "on"):
            run_env = {**env, "BAZAAR_METRICS": "true" if state == "on" else "false"}
            bazaar(run_env, "down", "engine")
            bazaar(run_env, "up", "engine")
            engine = EngineService(stack_from_env(run_env))
            meter.groups["engine"] = group_of(engine)
            with console.status(f"wrk: 32 connections for {seconds}s, engine metrics {state}"):
                run_wrk(engine.address, 32, 5, players, key)  # the new workers' first requests, not measured
                meter.drained()
                rows[state].append(run_wrk(engine.address, 32, seconds, players, key, meter=meter))
    mean = lambda state, f: statistics.fmean(r[f] for r in rows[state])  # noqa: E731
    summary = {state: {"executed_per_s": round(mean(state, "executed_per_s"), 1),
                       "engine_cpu_ms_per_trade": round(mean(state, "engine_cpu_ms_per_trade"), 4),
                       "p99_ms": round(mean(state, "p99_ms"), 2)} for state in rows}
    summary["cpu_ratio_on_to_off"] = round(summary["on"]["engine_cpu_ms_per_trade"]
                                           / summary["off"]["engine_cpu_ms_per_trade"], 3)
    summary["throughput_ratio_on_to_off"] = round(summary["on"]["executed_per_s"] / summary["off"]["executed_per_s"], 3)
    return {"runs": rows, "summary": summary}


@click.command()
@click.option("--seconds", default=10, show_default=True, help="Length of each wrk run.")
@click.option("--steady-seconds", default=60, show_default=True, help="Length of the steady run.")
@click.option("--players", default=10_000, show_default=True, help="Players trading in the wrk runs.")
@click.option("--samples", default=2_000, show_default=True, help="create_player calls timed at each size.")
@click.option("--whole-stack", is_flag=True, help="Only the steady run, with the whole stack up.")
@click.option("--metrics-only", is_flag=True, help="Only the engine's metrics off and on.")
def main(seconds: int, steady_seconds: int, players: int, samples: int, whole_stack: bool, metrics_only: bool) -> None:
    ensure_wrk()
    home = Path(tempfile.mkdtemp(prefix="bazaar-bench-"))
    env = isolated_env(home)
    settings = stack_from_env(env)
    results: dict = {"machine": {"cores": os.cpu_count()}, "workers": settings.local.engine_workers,
                     "server": "granian", "compression": settings.relay.relay_compression,
                     "configuration": "whole stack" if whole_stack else "redis kafka engine relay"}
    try:
        console.print(f"starting {results['configuration']} (`bazaar up`)")
        bazaar(env, "up", *([] if whole_stack else ["redis", "kafka", "engine", "relay"]))
        store = Store(make_redis(settings.redis), settings.redis.namespace)
        url = settings.engine_url
        key = ensure_stack_key(settings)
        meter = _meter(settings)
        if metrics_only:
            fill(store, players)
            meter.drained()
            warm_up(url, players, key, meter)
            results["metrics"] = metrics_cost(env, seconds, players, key, meter)
        elif whole_stack:
            fill(store, players)
            meter.drained()
            warm_up(url, players, key, meter)
            launcher = launcher_for(launcher_settings(settings))
            with console.status(f"wrk: 32 connections for {steady_seconds}s, whole stack up"):
                results["steady"] = steady(settings, steady_seconds, players, key, meter, launcher)
        else:
            fill(store, 1_000)
            warm_up(url, 1_000, key, meter)
            with console.status(f"timing {samples} create_player calls at 1,000 players"):
                creates = {1_000: time_creates(url, samples, key)}
            fill(store, players)
            meter.drained()
            with console.status(f"wrk: a minimal Flask route, 32 connections for {seconds}s"):
                results["ceiling"] = ceiling(settings, seconds, players, key)
            results["trades"] = []
            for c in (1, 8, 32):
                with console.status(f"wrk: {c} connection(s) for {seconds}s"):
                    results["trades"].append(run_wrk(url, c, seconds, players, key, meter=meter))
            results["ceiling"]["engine_ratio"] = round(
                results["trades"][-1]["executed_per_s"] / results["ceiling"]["executed_per_s"], 3)
            with console.status(f"wrk: 32 connections for {steady_seconds}s, lags sampled"):
                results["steady"] = steady(settings, steady_seconds, players, key, meter)
            results["codecs"] = codecs(env, seconds, players, key, meter)
            results["metrics"] = metrics_cost(env, seconds, players, key, meter)

            costs = []
            for idempotent in (False, True, False, True):  # alternated, so drift hits both alike
                with console.status(f"wrk: 32 connections for {seconds}s, Idempotency-Key: {idempotent}"):
                    costs.append(run_wrk(url, 32, seconds, players, key, idempotent, meter))
            client = make_redis(settings.redis)
            results["trust"] = {"runs": costs, "key_check": time_key_check(
                client, Keys(client, settings.redis.namespace), key, settings.redis.namespace,
                meter.groups["redis"], 20_000)}

            fill(store, 100_000)
            with console.status(f"timing {samples} create_player calls at 100,000 players"):
                creates[100_000] = time_creates(url, samples, key)
            results["create_player"] = {str(k): v for k, v in creates.items()}
            results["create_player"]["ratio_100k_to_1k"] = round(
                creates[100_000]["mean_ms"] / creates[1_000]["mean_ms"], 3)
    finally:
        bazaar(env, "down")
        shutil.rmtree(home, ignore_errors=True)

    report(results)
    name = "engine_whole_stack" if whole_stack else "engine_metrics" if metrics_only else "engine"
    console.print(f"written to {save_results(name, results)}")


def report_metrics(results: dict) -> None:
    m = results["metrics"]["summary"]
    table = Table("engine metrics (BAZAAR_METRICS)", "executed/s", "p99 ms", "engine CPU ms/trade",
                  title="What the engine's metrics cost (32 connections, mean of 3 runs each, alternated)")
    for state in ("off", "on"):
        table.add_row(state, f"{m[state]['executed_per_s']:.0f}", f"{m[state]['p99_ms']:.1f}",
                      f"{m[state]['engine_cpu_ms_per_trade']:.3f}")
    console.print(table)
    console.print(f"engine CPU per trade, metrics on / off: {m['cpu_ratio_on_to_off']:.3f} (target <= 1.05); "
                  f"throughput on / off: {m['throughput_ratio_on_to_off']:.3f}")


def report(results: dict) -> None:
    if "metrics" in results:
        report_metrics(results)
    if "steady" not in results:  # --metrics-only
        return
    console.print(f"configuration: {results['configuration']}, engine: {results['server']} "
                  f"x{results['workers']} workers, relay compression: {results['compression']}, "
                  f"{results['machine']['cores']} cores shared with the load generator")
    cpu_cols = ("engine", "redis", "relay", "kafka")
    table = Table("clients", "executed/s", "p50 ms", "p99 ms", *(f"{c} CPU ms/trade" for c in cpu_cols),
                  "relay ms/event", "Kafka B/trade", title="POST /trade, relay and Kafka on")
    rows = [*results.get("trades", []), results["steady"]["run"]]
    for row in rows:
        name = str(row["connections"]) + (" (steady)" if row is results["steady"]["run"] else "")
        table.add_row(name, f"{row['executed_per_s']:.0f}", f"{row['p50_ms']:.1f}", f"{row['p99_ms']:.1f}",
                      *(f"{row.get(f'{c}_cpu_ms_per_trade', 0):.3f}" for c in cpu_cols),
                      f"{row.get('relay_cpu_ms_per_event', 0):.3f}", f"{row.get('kafka_bytes_per_trade', 0):.0f}")
    console.print(table)
    st = results["steady"]
    run = st["run"]
    console.print(f"steady run: {run['executed_per_s']:.0f} executed trades/s, p99 {run['p99_ms']:.1f} ms; "
                  f"engine + Redis + relay CPU {run.get('engine_redis_relay_cpu_ms_per_trade', 0):.3f} ms/trade; "
                  f"outbox lag {st['outbox_lag']}; trade -> Kafka {st['trade_to_kafka']}")
    for sink in ("trades", "player_states"):
        if f"{sink}_lag" in st:
            console.print(f"{sink} sink offsets behind: {st[f'{sink}_lag']}")
    if "ceiling" not in results:
        return
    table = Table("relay compression", "executed/s", "Kafka bytes/trade", "relay CPU ms/event", "Kafka CPU ms/trade",
                  title="The relay's codecs (32 connections)")
    for codec, row in results["codecs"].items():
        table.add_row(codec, f"{row['executed_per_s']:.0f}", f"{row['kafka_bytes_per_trade']:.0f}",
                      f"{row['relay_cpu_ms_per_event']:.3f}", f"{row['kafka_cpu_ms_per_trade']:.3f}")
    console.print(table)
    c = results["ceiling"]
    console.print(f"minimal Flask route, same server: {c['executed_per_s']:.0f} requests/s at 32 connections; "
                  f"the engine reaches {100 * c['engine_ratio']:.0f}% of it")
    trust = results["trust"]
    plain = [r for r in trust["runs"] if not r["idempotency_key"]]
    keyed = [r for r in trust["runs"] if r["idempotency_key"]]
    mean = lambda rows, f: statistics.fmean(r[f] for r in rows)  # noqa: E731
    table = Table("POST /trade, 32 connections", "executed/s", "p99 ms", "engine CPU ms/trade",
                  "Redis CPU ms/trade", title="What the trust boundary costs (each row: mean of 2 runs)")
    for name, rows in (("API key + rate limit", plain), ("... + Idempotency-Key", keyed)):
        table.add_row(name, f"{mean(rows, 'executed_per_s'):.0f}", f"{mean(rows, 'p99_ms'):.1f}",
                      f"{mean(rows, 'engine_cpu_ms_per_trade'):.3f}", f"{mean(rows, 'redis_cpu_ms_per_trade'):.3f}")
    console.print(table)
    per_trade = mean(plain, "engine_cpu_ms_per_trade") + mean(plain, "redis_cpu_ms_per_trade")
    auth = trust["key_check"]["cost_ms"]
    idem = (mean(keyed, "engine_cpu_ms_per_trade") + mean(keyed, "redis_cpu_ms_per_trade")) - per_trade
    trust["summary"] = {"trade_cpu_ms": round(per_trade, 4), "authorize_cpu_ms": round(auth, 4),
                        "idempotency_cpu_ms": round(idem, 4),
                        "share_of_trade": round((auth + max(idem, 0)) / per_trade, 4),
                        "throughput_ratio_keyed_to_plain": round(
                            mean(keyed, "executed_per_s") / mean(plain, "executed_per_s"), 3)}
    console.print(
        f"per executed trade (engine + Redis CPU {per_trade:.3f} ms): key check and rate limit {auth:.3f} ms "
        f"(in the trade's read pipeline, timed alone), Idempotency-Key {idem:+.3f} ms (difference of the runs); "
        f"together {100 * trust['summary']['share_of_trade']:.1f}% of a trade; throughput with a key / "
        f"without: {trust['summary']['throughput_ratio_keyed_to_plain']:.3f}")
    cp = results["create_player"]
    table = Table("players", "mean ms", "p50 ms", "p99 ms", title="PUT /create_player (one client)")
    for size in ("1000", "100000"):
        table.add_row(size, f"{cp[size]['mean_ms']:.3f}", f"{cp[size]['p50_ms']:.3f}", f"{cp[size]['p99_ms']:.3f}")
    console.print(table)
    console.print(f"create_player mean at 100k / at 1k: {cp['ratio_100k_to_1k']:.3f}")


if __name__ == "__main__":
    main()
