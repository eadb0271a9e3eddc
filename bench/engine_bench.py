"""Engine benchmark: trade throughput and latency under gunicorn, what the trust
boundary costs per trade, and the cost of create_player as the player count grows.

    python bench/engine_bench.py [--seconds 10] [--players 10000]

Starts its own Redis and engine (the `bazaar up` code, free ports, a temporary
home) — the engine and Redis only: no relay and no Kafka beside them, so these
figures are the engine's own, not the whole hot path (`stack_bench.py` runs
that).  Every request carries the stack's API key, so every figure includes
the key check and the rate limit.

- trades with `wrk` at 1, 8 and 32 connections;
- at 32 connections, without and with a fresh `Idempotency-Key` on every
  trade: executed trades/s and the CPU (engine workers + Redis, from /proc)
  per executed trade, so the idempotency's cost is a difference in one run;
- the key check and rate limit timed alone as a trade pays for them (queued in
  the pipeline that reads the trade's players): client and Redis CPU per read
  with and without it, as a share of a trade's;
- `PUT /create_player` over HTTP at 1k and at 100k existing players.

Prints tables and writes bench/results/engine.json.
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
import time
from pathlib import Path

import click
import redis
import requests
from rich.console import Console
from rich.progress import track
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bazaar.stack.ports import isolated_stack  # noqa: E402
from bench.common import save_results  # noqa: E402
from bazaar.stack import EngineService, RedisService  # noqa: E402
from bazaar.stack.api_key import ensure_stack_key  # noqa: E402
from engine import catalog  # noqa: E402
from engine.auth import Keys  # noqa: E402
from spark_jobs.processes import children  # noqa: E402
from engine.store import Store  # noqa: E402

console = Console()



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


def run_wrk(url: str, connections: int, seconds: int, players: int, key: str, idempotent: bool = False,
            measured: tuple[list[int], list[int]] = ((), ())) -> dict:
    """A wrk run; with `measured` (engine pids, Redis pids), the CPU each used per executed trade."""
    threads = min(2, connections)
    engine_cpu, redis_cpu = cpu_s(measured[0]), cpu_s(measured[1])
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
         "-s", str(ROOT / "bench" / "trade.lua"), url],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PLAYERS": str(players), "API_KEY": key, "IDEMPOTENT": "1" if idempotent else "0",
             "RUN": f"{time.time_ns()}"},
    ).stdout
    engine_cpu, redis_cpu = cpu_s(measured[0]) - engine_cpu, cpu_s(measured[1]) - redis_cpu
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
    if measured[0] and executed:
        row["engine_cpu_ms_per_trade"] = round(1000 * engine_cpu / executed, 4)
        row["redis_cpu_ms_per_trade"] = round(1000 * redis_cpu / executed, 4)
    return row


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


@click.command()
@click.option("--seconds", default=10, show_default=True, help="Length of each wrk run.")
@click.option("--players", default=10_000, show_default=True, help="Players trading in the wrk runs.")
@click.option("--workers", default=4, show_default=True, help="gunicorn workers.")
@click.option("--samples", default=2_000, show_default=True, help="create_player calls timed at each size.")
def main(seconds: int, players: int, workers: int, samples: int) -> None:
    ensure_wrk()
    home = Path(tempfile.mkdtemp(prefix="bazaar-bench-"))
    settings = isolated_stack(home, engine_workers=workers)
    services = [RedisService(settings), EngineService(settings)]
    results: dict = {"machine": {"cores": os.cpu_count()}, "workers": workers}
    try:
        for svc in services:
            svc.start()
        client = redis.Redis.from_url(settings.redis.redis_url)
        store = Store(client, settings.redis.namespace)
        url = settings.engine_url

        key = ensure_stack_key(settings)
        fill(store, players)
        results["trades"] = []
        for c in (1, 8, 32):
            with console.status(f"wrk: {c} connection(s) for {seconds}s"):
                results["trades"].append(run_wrk(url, c, seconds, players, key))

        engine_pids = [services[1].pid(), *children(services[1].pid())]
        redis_pids = [services[0].pid()]
        costs = []
        for idempotent in (False, True, False, True):  # alternated, so drift hits both alike
            with console.status(f"wrk: 32 connections for {seconds}s, Idempotency-Key: {idempotent}"):
                costs.append(run_wrk(url, 32, seconds, players, key, idempotent, (engine_pids, redis_pids)))
        results["trust"] = {"runs": costs, "key_check": time_key_check(
            client, Keys(client, settings.redis.namespace), key, settings.redis.namespace, redis_pids, 20_000)}

        client.flushall()
        key = ensure_stack_key(settings)
        creates = {}
        for size in (1_000, 100_000):
            fill(store, size)
            with console.status(f"timing {samples} create_player calls at {size:,} players"):
                creates[size] = time_creates(url, samples, key)
        results["create_player"] = {str(k): v for k, v in creates.items()}
        results["create_player"]["ratio_100k_to_1k"] = round(
            creates[100_000]["mean_ms"] / creates[1_000]["mean_ms"], 3)
    finally:
        for svc in reversed(services):
            svc.stop()
        shutil.rmtree(home, ignore_errors=True)

    report(results)
    console.print(f"written to {save_results('engine', results)}")


def report(results: dict) -> None:
    table = Table("clients", "requests", "executed/s", "p50 ms", "p99 ms", title="POST /trade under gunicorn")
    for row in results["trades"]:
        table.add_row(str(row["connections"]), str(row["requests"]), f"{row['executed_per_s']:.0f}",
                      f"{row['p50_ms']:.2f}", f"{row['p99_ms']:.2f}")
    console.print(table)
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
        "together "
        f"{100 * trust['summary']['share_of_trade']:.1f}% of a trade (target < 10%); throughput with a key / "
        f"without: {trust['summary']['throughput_ratio_keyed_to_plain']:.3f}")
    cp = results["create_player"]
    table = Table("players", "mean ms", "p50 ms", "p99 ms", title="PUT /create_player (one client)")
    for size in ("1000", "100000"):
        table.add_row(size, f"{cp[size]['mean_ms']:.3f}", f"{cp[size]['p50_ms']:.3f}", f"{cp[size]['p99_ms']:.3f}")
    console.print(table)
    console.print(f"create_player mean at 100k / at 1k: {cp['ratio_100k_to_1k']:.3f}")


if __name__ == "__main__":
    main()
