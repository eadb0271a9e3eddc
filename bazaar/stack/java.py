"""Finding a JDK of a given major version (Trino needs a newer one than the default java)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Optional

from bazaar.stack.service import ServiceError

JVM_ROOT = Path("/usr/lib/jvm")


def major_version(java_home: Path) -> Optional[int]:
    try:
        text = (java_home / "release").read_text()
    except OSError:
        return None
    m = re.search(r'^JAVA_VERSION="(\d+)', text, re.M)
    return int(m.group(1)) if m else None


def find_java_home(minimum: int, configured: Optional[Path] = None) -> Path:
    """The configured JDK, else the newest under /usr/lib/jvm of at least `minimum`."""
    if configured is not None:
        if (major_version(configured) or 0) < minimum:
            raise ServiceError(f"{configured} is not a JDK {minimum} or newer")
        return configured
    candidates = [(major_version(p) or 0, p) for p in JVM_ROOT.glob("*") if (p / "bin" / "java").exists()]
    good = sorted(c for c in candidates if c[0] >= minimum)
    if not good:
        raise ServiceError(f"no JDK {minimum}+ under {JVM_ROOT}: install one (e.g. Temurin) "
                           "and/or set BAZAAR_TRINO_JAVA_HOME")
    return good[-1][1]


def default_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise ServiceError("`java` (17 or newer) is not on PATH: run `make system-deps`")
    return java
