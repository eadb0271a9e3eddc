"""Helpers the benchmarks share: a stack of their own (ports, home) driven by the `bazaar` command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORTS = ["REDIS", "ENGINE", "KAFKA", "KAFKA_CONTROLLER", "METASTORE", "TRINO", "DAGSTER", "REPORTS"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for a stack on free ports under `home`."""
    return {**os.environ, "BAZAAR_HOME": str(home), **{f"BAZAAR_{p}_PORT": str(free_port()) for p in PORTS}, **extra}


def settings_from(env: dict[str, str]):
    from bazaar.settings import Settings

    return Settings(**{k[len("BAZAAR_"):].lower(): v for k, v in env.items() if k.startswith("BAZAAR_")})


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


def group_rss_mib(pgid: int) -> float:
    """Resident memory of every process in a process group (a service and its children)."""
    total_kib = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            if int(stat[stat.rindex(")") + 2:].split()[2]) != pgid:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total_kib / 1024


def stack_rss_mib(settings) -> float:
    """Resident memory of every running service of the stack, children included."""
    from bazaar.stack import services

    return sum(group_rss_mib(pid) for pid in (s.pid() for s in services(settings)) if pid)
