"""Demo benchmark: how long the main job takes to reach its printed reports, and the stack's
peak memory while it runs.

    python bench/demo_bench.py [--cold/--no-cold] [--players 1000] [--trades 10000]

Runs `bazaar demo` (what `make demo` runs once installed) on a stack of its own
ports and home: warm (the Maven and Trino downloads already cached), and cold
(empty caches: every jar and the Trino server fetched again, ~1 GB). Python
packages are installed in both cases. Samples the resident memory of every
service once a second. Writes bench/results/demo.json.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bazaar.stack.ports import isolated_env, stack_from_env  # noqa: E402
from bench.common import bazaar, save_results, stack_rss_mib  # noqa: E402

console = Console()


def timed_demo(env: dict[str, str], players: int, trades: int) -> dict:
    """Seconds of `bazaar demo` and the stack's peak resident memory during it."""
    settings = stack_from_env(env)
    peak = [0.0]
    done = threading.Event()

    def sample():
        while not done.wait(1.0):
            peak[0] = max(peak[0], stack_rss_mib(settings))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "bazaar", "demo", "--players", str(players), "--trades", str(trades)],
                         env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    done.set()
    sampler.join()
    if out.returncode != 0:
        raise SystemExit(f"bazaar demo failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    (ROOT / "bench" / "results" / "demo-output.txt").write_text(out.stdout)  # what the user saw, last run
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(peak[0])}


@click.command()
@click.option("--cold/--no-cold", default=True, help="Also run from empty caches (downloads ~1 GB).")
@click.option("--players", default=1000, show_default=True)
@click.option("--trades", default=10_000, show_default=True)
def main(cold: bool, players: int, trades: int) -> None:
    results: dict = {"players": players, "trades": trades}
    runs = [("warm", {})]
    if cold:
        runs.append(("cold", {"BAZAAR_CACHE": "cache", "BAZAAR_MAVEN_REPO": "m2"}))
    for name, fresh_dirs in runs:
        work = Path(tempfile.mkdtemp(prefix=f"bazaar-demo-bench-{name}-"))
        env = isolated_env(work / "home", **{k: str(work / v) for k, v in fresh_dirs.items()})
        try:
            with console.status(f"bazaar demo ({name})"):
                results[name] = timed_demo(env, players, trades)
        finally:
            bazaar(env, "down")
            shutil.rmtree(work, ignore_errors=True)
    table = Table("run", "seconds to the reports", "peak stack RSS (MiB)",
                  title=f"bazaar demo: {players:,} players, {trades:,} trades")
    for name, _ in runs:
        table.add_row(name, str(results[name]["seconds"]), f"{results[name]['peak_rss_mib']:,}")
    console.print(table)
    console.print(f"written to {save_results('demo', results)}")


if __name__ == "__main__":
    main()
