"""Artifacts from Maven Central, fetched with `mvn` and cached.

Maven keeps what it downloads in the local repository (~/.m2), and each
prepared artifact (a folder of jars, an unpacked server) is kept under the
settings' cache folder with a `.complete` marker, so a second `bazaar up` or a
second test session fetches nothing.  Downloads show progress.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import threading
import time
from pathlib import Path
from typing import Optional
from xml.sax.saxutils import escape

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TransferSpeedColumn)

from bazaar.stack.service import ServiceError

console = Console(stderr=True)
MARKER = ".complete"


def is_complete(path: Path) -> bool:
    return (path / MARKER).exists()


def mark_complete(path: Path) -> None:
    (path / MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))


def _require_mvn() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError("Maven (`mvn`) is needed to fetch jars from Maven Central: run `make system-deps`")
    return mvn


def _dir_bytes(path: Path) -> int:
    try:
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    except OSError:
        return 0


def run_mvn(repo: Path, args: list[str], description: str, watch: Optional[Path] = None,
            cwd: Optional[Path] = None) -> None:
    """Run mvn on the local repository `repo`, showing the files it downloads and,
    for one large artifact, the bytes arriving in its folder `watch`."""
    cmd = [_require_mvn(), "-B", f"-Dmaven.repo.local={repo}", *args]
    start_bytes = _dir_bytes(watch) if watch else 0
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(description, total=None)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        while proc.poll() is None:
            files = sum(1 for line in lines if line.startswith("Downloaded from"))
            progress.update(task, description=f"{description} ({files} files)",
                            completed=(_dir_bytes(watch) - start_bytes) if watch else None)
            time.sleep(0.5)
        reader.join()
    if proc.returncode != 0:
        tail = "".join(lines[-25:])
        raise ServiceError(f"{description} failed (mvn exit {proc.returncode}); is Maven Central reachable?\n{tail}")


def copy_dependencies(repo: Path, dest: Path, dependencies: list[tuple[str, str, str]], description: str) -> Path:
    """Every runtime jar of the given (group, artifact, version)s, in dest/lib."""
    if is_complete(dest):
        return dest / "lib"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    deps = "\n".join(
        f"    <dependency><groupId>{escape(g)}</groupId><artifactId>{escape(a)}</artifactId>"
        f"<version>{escape(v)}</version></dependency>"
        for g, a, v in dependencies
    )
    (dest / "pom.xml").write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n  <modelVersion>4.0.0</modelVersion>\n'
        "  <groupId>local.bazaar</groupId><artifactId>runtime</artifactId><version>1</version>\n"
        f"  <packaging>pom</packaging>\n  <dependencies>\n{deps}\n  </dependencies>\n</project>\n"
    )
    run_mvn(repo, ["dependency:copy-dependencies", f"-DoutputDirectory={dest / 'lib'}", "-DincludeScope=runtime"],
            description, cwd=dest)
    mark_complete(dest)
    return dest / "lib"


def fetch(repo: Path, group: str, artifact: str, version: str, packaging: str, description: str) -> Path:
    """One artifact file from Maven Central, in the local Maven repository."""
    folder = repo.joinpath(*group.split("."), artifact, version)
    path = folder / f"{artifact}-{version}.{packaging}"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        run_mvn(repo, ["dependency:get", f"-Dartifact={group}:{artifact}:{version}:{packaging}", "-Dtransitive=false"],
                description, watch=folder)
    return path


def unpack(archive: Path, dest: Path, description: str) -> None:
    """Extract a .tar.gz into dest, with a progress bar (hard links stay links)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with tarfile.open(archive, "r:gz") as tar:
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task(description, total=archive.stat().st_size)
            for member in tar:
                tar.extract(member, dest, filter="tar")
                progress.update(task, completed=tar.fileobj.fileobj.tell())


def write_if_changed(path: Path, text: str) -> None:
    """Replace the file whole (never half-written for a running reader), and only if it changed."""
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
