"""Helpers the benchmarks share: a stack of their own (ports, home) driven by the `bazaar` command."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from spark_jobs.processes import group_rss_mib

ROOT = Path(__file__).resolve().parent.parent


def bazaar(env: dict[str, str], *args: str) -> float:
    """Run `bazaar ARGS` in that environment; returns the seconds it took."""
    t = time.monotonic()
    subprocess.run([sys.executable, "-m", "bazaar", *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, max(0, int(round(q * len(sorted_values))) - 1))]


def save_results(name: str, results: dict) -> Path:
    """bench/results/<name>.json (gitignored)."""
    out = ROOT / "bench" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return out


def stack_rss_mib(stack) -> float:
    """Resident memory of every running service of the stack, children included."""
    from bazaar.stack import services

    return sum(group_rss_mib(pid) for pid in (s.pid() for s in services(stack)) if pid)
