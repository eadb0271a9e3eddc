"""Offers benchmark: offers opened and accepted per second under concurrency, the conflicts
when clients race for one offer, and conservation checked afterwards.

    python bench/offers_bench.py [--seconds 20] [--clients 32] [--players 200]

Starts its own Redis and engine (the `bazaar up` code, free ports, a temporary home): the
engine and Redis only, no relay and no Kafka beside them (so no offer expires during the run:
the relay's sweep is not running, and the offers here last 10 minutes).

- the flow: `--clients` threads, each opening an offer between two random players (gold one
  way, a little gold the other) and accepting it, some offers accepted by two clients at once
  and some cancelled: offers opened/s, accepted/s, cancelled/s, the conflicts (409 from the
  accept that lost), 503s, latency per call;
- one offer, 32 clients accepting it at the same instant, 20 times: how many 200s each time;
- conservation: gold in every inventory and in escrow, before and after (an independent sum
  over every player's state and every open offer, read over HTTP, and `/economy/totals`);
- (`GET /economy/totals` at a million players, and the audit beside trades: `bench/totals_bench.py`.)

Prints tables and writes bench/results/offers.json.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import click
import urllib3
from rich.console import Console
from rich.progress import track
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bazaar.stack import EngineService, RedisService  # noqa: E402
from bazaar.stack.api_key import ensure_stack_key  # noqa: E402
from bazaar.stack.ports import isolated_stack  # noqa: E402
from bench.common import percentile, save_results  # noqa: E402

console = Console()


class Client:
    def __init__(self, url: str, key: str, size: int):
        self.url = url
        self.http = urllib3.PoolManager(maxsize=size, timeout=60.0, retries=False)
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, body=None) -> tuple[int, dict, float]:
        t = time.perf_counter()
        r = self.http.request(method, f"{self.url}{path}", headers=self.headers,
                              body=None if body is None else json.dumps(body).encode())
        return r.status, json.loads(r.data), time.perf_counter() - t


def at_once(n: int, call) -> list:
    barrier, out = threading.Barrier(n), [None] * n

    def run(i):
        barrier.wait()
        out[i] = call(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def counted(client: Client, players: int) -> tuple[int, int]:
    """(gold held, gold in escrow) summed from every player's state and every open offer, over HTTP."""
    held = escrow = 0
    for pid in range(1, players + 1):
        held += client.call("GET", f"/players/{pid}")[1]["gold"]
        cursor = None
        while True:
            page = client.call("GET", f"/players/{pid}/offers?status=open&limit=200"
                                      + (f"&cursor={cursor}" if cursor else ""))[1]
            escrow += sum(o["give"]["gold"] for o in page["offers"] if o["from_player_id"] == pid)
            cursor = page["next_cursor"]
            if cursor is None:
                break
    return held, escrow


def flow(client: Client, clients: int, players: int, seconds: int) -> dict:
    """Open-and-accept (with races and cancels) from `clients` threads for `seconds`."""
    stop = time.monotonic() + seconds
    tally: Counter = Counter()
    latency: dict[str, list[float]] = {"open": [], "accept": [], "cancel": []}
    lock = threading.Lock()

    def worker(i: int) -> None:
        rng = random.Random(i)
        while time.monotonic() < stop:
            a, b = rng.sample(range(1, players + 1), 2)
            status, body, dt = client.call("POST", "/offers", {
                "from_player_id": a, "to_player_id": b, "give": {"gold": rng.randint(1, 50)},
                "want": {"gold": rng.randint(0, 5)}})
            with lock:
                tally[f"open {status}"] += 1
                latency["open"].append(dt)
            if status != 201:
                continue
            oid, pick = body["offer_id"], rng.random()
            if pick < 0.1:  # two clients race to accept it
                answers = at_once(2, lambda _: client.call("POST", f"/offers/{oid}/accept"))
            elif pick < 0.2:
                answers = [client.call("POST", f"/offers/{oid}/cancel")]
            else:
                answers = [client.call("POST", f"/offers/{oid}/accept")]
            with lock:
                for status, answer, dt in answers:
                    what = "cancel" if pick >= 0.1 and pick < 0.2 else "accept"
                    latency[what].append(dt)
                    tally[f"{what} {status} {answer.get('error') or answer.get('status') or ''}".strip()] += 1

    at_once(clients, worker)
    out = {"seconds": seconds, "clients": clients, "calls": dict(tally)}
    out["opened_per_s"] = round(tally["open 201"] / seconds, 1)
    out["accepted_per_s"] = round(tally["accept 200 executed"] / seconds, 1)
    out["cancelled_per_s"] = round(tally["cancel 200 cancelled"] / seconds, 1)
    out["conflicts"] = sum(n for k, n in tally.items() if "offer_not_open" in k)
    out["errors_5xx"] = sum(n for k, n in tally.items() if k.split()[1].startswith("5"))
    for what, values in latency.items():
        values.sort()
        if values:
            out[f"{what}_p50_ms"] = round(1000 * percentile(values, 0.5), 2)
            out[f"{what}_p99_ms"] = round(1000 * percentile(values, 0.99), 2)
    return out


def stampede(client: Client, rounds: int) -> list[int]:
    """32 clients accept one offer at the same instant; the 200s of each round."""
    wins = []
    for r in range(rounds):
        _, body, _ = client.call("POST", "/offers", {"from_player_id": 1 + r % 2, "to_player_id": 2 - r % 2,
                                                     "give": {"gold": 1}})
        answers = at_once(32, lambda _: client.call("POST", f"/offers/{body['offer_id']}/accept"))
        wins.append(sum(status == 200 for status, _, _ in answers))
    return wins


@click.command()
@click.option("--seconds", default=20, show_default=True, help="Length of the concurrent flow.")
@click.option("--clients", default=32, show_default=True, help="Client threads in the flow.")
@click.option("--players", default=200, show_default=True, help="Players trading through offers.")
@click.option("--workers", default=4, show_default=True, help="The engine's worker processes.")
def main(seconds: int, clients: int, players: int, workers: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="bazaar-bench-"))
    settings = isolated_stack(home, engine_workers=workers)
    services = [RedisService(settings), EngineService(settings)]
    results: dict = {"machine": {"cores": os.cpu_count()}, "workers": workers,
                     "configuration": "Redis + engine (granian); no relay, no Kafka"}
    try:
        for svc in services:
            svc.start()
        key = ensure_stack_key(settings)
        client = Client(settings.engine_url, key, clients + 64)
        for _ in track(range(players), description=f"creating {players} players", console=console):
            client.call("PUT", "/create_player", {"player_class": "noble"})
        before = counted(client, players)
        with console.status(f"{clients} clients opening and accepting offers for {seconds}s"):
            results["flow"] = flow(client, clients, players, seconds)
        with console.status("32 clients accepting one offer at once, 20 times"):
            results["stampede_wins"] = stampede(client, 20)
        after = counted(client, players)
        totals = client.call("GET", "/economy/totals")[1]
        results["conservation"] = {
            "gold_before": sum(before), "gold_after_held": after[0], "gold_after_escrow": after[1],
            "gold_after": sum(after), "totals_endpoint_gold": totals["total"]["gold"],
            "conserved": sum(before) == sum(after) == totals["total"]["gold"],
            "negative_balances": sum(client.call("GET", f"/players/{p}")[1]["gold"] < 0
                                     for p in range(1, players + 1))}

    finally:
        for svc in reversed(services):
            svc.stop()
        shutil.rmtree(home, ignore_errors=True)
    report(results)
    console.print(f"written to {save_results('offers', results)}")


def report(results: dict) -> None:
    f = results["flow"]
    table = Table("offers", "value", title=f"{f['clients']} clients for {f['seconds']}s ({results['configuration']})")
    for name in ("opened_per_s", "accepted_per_s", "cancelled_per_s", "conflicts", "errors_5xx", "open_p50_ms",
                 "open_p99_ms", "accept_p50_ms", "accept_p99_ms"):
        table.add_row(name, str(f.get(name)))
    console.print(table)
    console.print(f"calls: {f['calls']}")
    console.print(f"32 clients on one offer, 20 rounds: 200s per round {results['stampede_wins']}")
    c = results["conservation"]
    console.print(f"gold before {c['gold_before']:,}; after {c['gold_after_held']:,} held + "
                  f"{c['gold_after_escrow']:,} in escrow = {c['gold_after']:,}; /economy/totals "
                  f"{c['totals_endpoint_gold']:,}; conserved: {c['conserved']}; "
                  f"negative balances: {c['negative_balances']}")


if __name__ == "__main__":
    main()
