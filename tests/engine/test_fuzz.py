"""Schemathesis against the running engine (granian, real Redis) with the stack's key: every
check it has, thousands of generated requests, and not one failure.

The seed is fixed in `make test` so a run is reproducible; `make fuzz` runs longer with a fresh
seed (BAZAAR_FUZZ_SEED, BAZAAR_FUZZ_EXAMPLES).  A failure prints schemathesis's own report,
with a curl line that reproduces each case."""

import json
import os
import subprocess
import sys
from pathlib import Path

import requests

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("BAZAAR_FUZZ_EXAMPLES", "300"))  # per operation: ~5,700 cases in all
SEED = os.environ.get("BAZAAR_FUZZ_SEED", "20261129")
MIN_CASES = 2_000


def test_schemathesis_finds_no_failure(engine_service, api_key, redis_client, stack, tmp_path):
    base = engine_service.address
    auth = {"Authorization": f"Bearer {api_key}"}
    # players for the document's trade example (player 1 gives a Stale Bread for 10 gold), so
    # the fuzzer's trades reach the executing path as well as the rules' rejections
    for cls in ("monk", "merchant"):
        assert requests.put(f"{base}/create_player", json={"player_class": cls}, headers=auth).status_code == 201
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
               f"{base}/openapi.json", "--checks", "all", "--max-examples", str(EXAMPLES), "--no-color",
               "--report", "json", "--report-json-path", str(report)]
    if SEED != "random":
        command += ["--seed", SEED]
    run = subprocess.run(command, env={**os.environ, "BAZAAR_API_KEY": api_key}, capture_output=True, text=True,
                         timeout=1200, cwd=tmp_path)  # its crash cache (.schemathesis/) stays out of the checkout
    result = json.loads(report.read_text())
    cases = result["test_cases"]
    print(f"schemathesis {result['schemathesis_version']}, seed {result['seed']}: {cases['generated']} cases, "
          f"{cases['with_failures']} with failures; accepted per operation: "
          + ", ".join(f"{op} {sum(p['accepted'] for p in phases.values())}"
                      for op, phases in result["valid_rates"].items()))
    assert run.returncode == 0 and cases["with_failures"] == 0 and cases["errored"] == 0, run.stdout[-8000:]
    assert cases["generated"] >= MIN_CASES
    # the fuzzer reached both outcomes of a trade, not only the rules' rejections, and opened offers
    counters = redis_client.hgetall(f"{stack.redis.namespace}:counters")
    assert int(counters[b"trades_executed"]) > 0 and int(counters[b"trades_rejected"]) > 0
    assert int(counters[b"offers_opened"]) > 0
