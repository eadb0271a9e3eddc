"""Installable anywhere: the wheel carries every file the runtime reads at run time."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_the_code_and_its_data(tmp_path):
    # built from a clean copy: a build/ folder left in the checkout would supply files setup.py forgot
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info",
                                                                "__pycache__", ".pytest_cache", ".bazaar", "results"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(source)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = tmp_path.glob("bazaar-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # every data file of the checkout the code reads through importlib.resources
    data = [p for pattern in ("sql/**/*.sql", "engine/lua/*.lua", "engine/data/*.txt", "engine/templates/*.html",
                              "orchestration/templates/*.html", "bazaar/stack/java/*.java") for p in ROOT.glob(pattern)]
    assert len(data) >= 25
    missing = sorted(str(p.relative_to(ROOT)) for p in data if str(p.relative_to(ROOT)) not in names)
    assert not missing, f"left out of the wheel: {missing}"
    modules = {str(p.relative_to(ROOT)) for pkg in ("engine", "spark_jobs", "orchestration", "bazaar", "sql")
               for p in (ROOT / pkg).rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    assert not any(n.startswith(("tests/", "bench/")) for n in names)  # no tests or benchmarks installed
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "bazaar = bazaar.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    # installed on its own, run from outside the checkout: the runtime finds its data
    target = tmp_path / "site"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                          str(wheel)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    probe = ("import sql, engine.store, spark_jobs.launch as launch, orchestration.downloads as d, "
             "bazaar.stack.hive_metastore as m; from importlib import resources; from pathlib import Path; "
             "print(sql.ddl_columns('trades')[-1][0], len(sql.names('seed')), "
             "engine.store.script_text('totals.lua').count('redis.call') > 0, "
             "Path(launch.__file__).with_name('sink.py').is_file(), "
             "Path(d.__file__).with_name('templates').joinpath('reports.html').is_file(), "
             "resources.files('bazaar.stack').joinpath('java', 'LoopbackMetaStore.java').is_file(), "
             "sql.__file__.startswith(%r))" % str(target))
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["dt", "4", "True", "True", "True", "True", "True"]
