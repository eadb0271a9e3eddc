"""Engine benchmark: trade throughput and latency under gunicorn, and the cost
of create_player as the player count grows.

    python bench/engine_bench.py [--seconds 10] [--players 10000]

Starts its own Redis and engine (the `bazaar up` code, free ports, a temporary
home), drives trades with `wrk` at 1, 8 and 32 connections, then times
`PUT /create_player` over HTTP at 1k and at 100k existing players.  Prints a
table and writes bench/results/engine.json.
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
from engine import catalog  # noqa: E402
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


def run_wrk(url: str, connections: int, seconds: int, players: int) -> dict:
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
         "-s", str(ROOT / "bench" / "trade.lua"), url],
        capture_output=True, text=True, check=True, env={**os.environ, "PLAYERS": str(players)},
    ).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    errors = re.search(r"Socket errors: (.*)", out)
    pct = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.M))
    return {
        "connections": connections,
        "requests": total,
        "executed": total - non2xx,
        "executed_per_s": round((total - non2xx) / seconds, 1),
        "p50_ms": _ms(pct["50"]),
        "p99_ms": _ms(pct["99"]),
        "socket_errors": errors.group(1) if errors else None,
    }


def time_creates(url: str, n: int) -> dict:
    session = requests.Session()
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

        fill(store, players)
        results["trades"] = []
        for c in (1, 8, 32):
            with console.status(f"wrk: {c} connection(s) for {seconds}s"):
                results["trades"].append(run_wrk(url, c, seconds, players))

        client.flushall()
        creates = {}
        for size in (1_000, 100_000):
            fill(store, size)
            with console.status(f"timing {samples} create_player calls at {size:,} players"):
                creates[size] = time_creates(url, samples)
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
    cp = results["create_player"]
    table = Table("players", "mean ms", "p50 ms", "p99 ms", title="PUT /create_player (one client)")
    for size in ("1000", "100000"):
        table.add_row(size, f"{cp[size]['mean_ms']:.3f}", f"{cp[size]['p50_ms']:.3f}", f"{cp[size]['p99_ms']:.3f}")
    console.print(table)
    console.print(f"create_player mean at 100k / at 1k: {cp['ratio_100k_to_1k']:.3f}")


if __name__ == "__main__":
    main()
