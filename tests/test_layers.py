"""The floor plan: the runtime packages never import the tooling around them."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_dependencies_point_one_way():
    """import-linter's layers contract (.importlinter): bazaar > orchestration > spark_jobs > engine > sql."""
    out = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache", "--config",
                          str(ROOT / ".importlinter")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 kept, 0 broken" in out.stdout
