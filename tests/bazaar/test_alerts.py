"""The stack's alert rules, against series that must fire each one and look-alikes that must not
(`promtool test rules`, Prometheus' own evaluator)."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources

import pytest


def promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: `make install-test` installs Debian's prometheus package")
    return tool


def test_alert_rules_are_valid_and_fire_only_where_they_should():
    folder = resources.files("bazaar.stack").joinpath("prometheus")
    with resources.as_file(folder) as path:
        checked = subprocess.run([promtool(), "check", "rules", "alerts.yml"], cwd=path, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "SUCCESS: 6 rules found" in checked.stdout
        tested = subprocess.run([promtool(), "test", "rules", "alerts_test.yml"], cwd=path, capture_output=True,
                                text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
