"""`bazaar up | status | down` as a user runs them, on ports and a home of its own."""

import os
import signal
import subprocess
import sys

import pytest

from bazaar.stack import services
from bazaar.stack.ports import isolated_env, stack_from_env


@pytest.fixture
def stack_env(tmp_path):
    env = isolated_env(tmp_path / "home", BAZAAR_ENGINE_WORKERS="1")
    yield env
    subprocess.run([sys.executable, "-m", "bazaar", "down"], env=env, capture_output=True, timeout=120)


def bazaar(env, *args):
    return subprocess.run([sys.executable, "-m", "bazaar", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def pids(env):
    return {s.name: s.pid() for s in services(stack_from_env(env))}


def test_up_is_idempotent_status_sees_a_killed_service_and_down_stops_all(stack_env):
    assert bazaar(stack_env, "status").returncode == 1  # nothing runs yet
    first = bazaar(stack_env, "up")
    assert first.returncode == 0, first.stdout + first.stderr
    running = pids(stack_env)
    assert all(running.values())
    assert bazaar(stack_env, "status").returncode == 0

    again = bazaar(stack_env, "up")
    assert again.returncode == 0 and "already running" in again.stdout
    assert pids(stack_env) == running  # nothing started twice

    os.killpg(running["engine"], signal.SIGKILL)
    st = bazaar(stack_env, "status")
    assert st.returncode == 1 and "not running" in st.stdout

    assert bazaar(stack_env, "up").returncode == 0
    restarted = pids(stack_env)
    assert restarted["engine"] not in (None, running["engine"])
    assert {k: v for k, v in restarted.items() if k != "engine"} == {k: v for k, v in running.items() if k != "engine"}

    down = bazaar(stack_env, "down")
    assert down.returncode == 0
    assert all(f"{name}: stopped" in down.stdout for name in running)
    assert not any(pids(stack_env).values())
    for pid in restarted.values():
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
