"""The economy's totals at a million players, in the configuration users run: `bazaar up redis kafka
engine relay` (the relay and Kafka beside the engine, on the same cores as the load generator).

    python bench/totals_bench.py [--players 1000000] [--seconds 20] [--rounds 2] [--chunk 100] [--pause-ms 40]

Players are written straight into Redis as the engine keeps them (creating a million through the API
would take most of an hour and measures nothing here); their running totals are then counted once,
as on a Redis an older engine filled.  Then:

- `GET /economy/totals` over HTTP with the stack's admin key: the running totals, at this size;
- trades with `wrk` (32 connections, random pairs of the million), alternated without and with
  `bazaar audit`'s recount running back to back beside them: executed trades/s, p50 and p99 of each,
  with the audit's steps and whether each audit matched the running totals.  Each audited run waits for
  its audit to end (at the default pace, about 7.5 minutes at a million players).

Prints a table and writes bench/results/totals.json.
"""

from __future__ import annotations

import os
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
from rich.console import Console
from rich.progress import track
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bazaar.stack.api_key import ensure_stack_key  # noqa: E402
from bazaar.stack.ports import isolated_env, stack_from_env  # noqa: E402
from bench.common import bazaar, save_results  # noqa: E402
from bench.engine_bench import WARM_UP_S, _meter, ensure_wrk, run_wrk  # noqa: E402
from engine import catalog, rules  # noqa: E402
from engine.db import make_store  # noqa: E402
from engine.offerbook import OfferBook  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 160)
BATCH = 5_000


def fill(book: OfferBook, upto: int) -> None:
    """Players 1..`upto` written into Redis as the engine keeps them, and its counter of players."""
    store, rng = book.store, random.Random(upto)
    have = int(store.r.get(store.k_seq) or 0)
    for start in track(range(have + 1, upto + 1, BATCH), description=f"players up to {upto:,}", console=console):
        pipe = store.r.pipeline(transaction=False)
        end = min(start + BATCH - 1, upto)
        for pid in range(start, end + 1):
            player = rules.new_player(pid, f"p{pid}", catalog.draw_class(rng))
            pipe.hset(store.player_key(pid), mapping={"v": 1, "s": player.dumps()})
        pipe.set(store.k_seq, end)
        pipe.hset(store.k_counters, "players", end)
        pipe.execute()
    store.r.delete(store.k_totals)  # as an engine without running totals left them


class Auditor(threading.Thread):
    """`OfferBook.audit` back to back until stopped: how many ran, each one's seconds and match."""

    def __init__(self, book: OfferBook, chunk: int, pause_s: float):
        super().__init__(daemon=True)
        self.book, self.chunk, self.pause_s = book, chunk, pause_s
        self.halt, self.runs = threading.Event(), []

    def run(self) -> None:
        while not self.halt.is_set():
            t = time.perf_counter()
            found = self.book.audit(self.chunk, self.pause_s)
            self.runs.append({"seconds": round(time.perf_counter() - t, 2), "matches": found.matches})


def step_ms(book: OfferBook, chunk: int, samples: int = 50) -> float:
    """The median Redis time of one audit step (the time one step holds Redis), with no load."""
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        book.audit_step(chunk, 60)
        times.append(time.perf_counter() - t)
    book.store.r.delete(book.store.k_audit)
    return round(1000 * statistics.median(times), 2)


@click.command()
@click.option("--players", default=1_000_000, show_default=True)
@click.option("--seconds", default=20, show_default=True, help="Length of each wrk run.")
@click.option("--rounds", default=2, show_default=True, help="Pairs of runs (without, then with the audit).")
@click.option("--chunk", default=100, show_default=True, help="Players an audit step counts.")
@click.option("--pause-ms", default=40, show_default=True, help="Pause between the audit's steps.")
def main(players: int, seconds: int, rounds: int, chunk: int, pause_ms: int) -> None:
    ensure_wrk()
    home = Path(tempfile.mkdtemp(prefix="bazaar-bench-"))
    env = isolated_env(home)
    settings = stack_from_env(env)
    results: dict = {"machine": {"cores": os.cpu_count()}, "players": players, "chunk": chunk, "pause_ms": pause_ms,
                     "configuration": "redis kafka engine relay"}
    try:
        console.print(f"starting {results['configuration']} (`bazaar up`)")
        bazaar(env, "up", "redis", "kafka", "engine", "relay")
        key = ensure_stack_key(settings)
        book = OfferBook(make_store(settings.engine))
        fill(book, players)
        t = time.perf_counter()
        book.totals()
        results["first_count_s"] = round(time.perf_counter() - t, 2)
        url = settings.engine_url
        auth = {"Authorization": f"Bearer {key}"}
        times = []
        for _ in range(50):
            t = time.perf_counter()
            answer = requests.get(f"{url}/economy/totals", headers=auth, timeout=10)
            times.append(time.perf_counter() - t)
            assert answer.status_code == 200, answer.text
        results["totals_http_ms"] = round(1000 * statistics.median(times), 2)
        results["audit_step_ms"] = step_ms(book, chunk)
        meter = _meter(settings)
        with console.status(f"warming up: 32 connections for {WARM_UP_S}s, not measured"):
            run_wrk(url, 32, WARM_UP_S, players, key)
            meter.drained()
        results["runs"] = []
        for _ in range(rounds):
            for audited in (False, True):
                auditor = Auditor(book, chunk, pause_ms / 1000) if audited else None
                with console.status(f"wrk: 32 connections for {seconds}s, audit {'running' if audited else 'off'}"):
                    if auditor:
                        auditor.start()
                    row = run_wrk(url, 32, seconds, players, key)
                    if auditor:
                        auditor.halt.set()
                        auditor.join()
                        row["audits"] = auditor.runs
                    meter.drained()
                results["runs"].append({"audit": audited, **row})
        audit = book.audit(5_000, 0)  # with no trades running: as fast as Redis counts
        results["final_audit_matches"] = audit.matches
    finally:
        bazaar(env, "down")
        shutil.rmtree(home, ignore_errors=True)
    report(results)
    console.print(f"written to {save_results('totals', results)}")


def report(results: dict) -> None:
    console.print(f"{results['players']:,} players: counted once in {results['first_count_s']} s (a Redis filled "
                  f"without running totals); GET /economy/totals then {results['totals_http_ms']} ms (median of 50); "
                  f"an audit step of {results['chunk']:,} players holds Redis {results['audit_step_ms']} ms")
    table = Table("audit", "trades/s", "p50 ms", "p99 ms", "audits (s each, matched)",
                  title=f"trades at 32 connections ({results['configuration']})")
    for r in results["runs"]:
        audits = ", ".join(f"{a['seconds']} {'✓' if a['matches'] else '✗'}" for a in r.get("audits", [])) or "-"
        table.add_row("running" if r["audit"] else "off", f"{r['executed_per_s']:,}", str(r["p50_ms"]),
                      str(r["p99_ms"]), audits)
    console.print(table)
    off = [r["p99_ms"] for r in results["runs"] if not r["audit"]]
    on = [r["p99_ms"] for r in results["runs"] if r["audit"]]
    console.print(f"p99 with the audit / without: {statistics.mean(on) / statistics.mean(off):.2f}; "
                  f"the last audit matched the running totals: {results['final_audit_matches']}")


if __name__ == "__main__":
    main()
