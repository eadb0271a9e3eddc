"""Bazaar's SQL as package data: one query a file, DDL in `ddl/`, views in `views/`,
the seed's four questions verbatim in `seed/` (see README.md beside this file)."""

from __future__ import annotations

import re
from importlib import resources


def text(name: str) -> str:
    """The file `sql/<name>.sql` (`name` may hold a folder: `ddl/trades`, `seed/trade_count`)."""
    return resources.files(__name__).joinpath(f"{name}.sql").read_text()


def names(folder: str) -> list[str]:
    """The query names in a folder of `sql/`, sorted: `names("views")` -> `["views/trade_values"]`."""
    return sorted(f"{folder}/{p.name[:-4]}" for p in resources.files(__name__).joinpath(folder).iterdir()
                  if p.name.endswith(".sql"))


def ddl_columns(table: str) -> list[tuple[str, str]]:
    """(name, Hive type) of each column `ddl/<table>.sql` declares, partition columns last."""
    body, partitions = text(f"ddl/{table}").split("PARTITIONED BY", 1)
    kinds = r"(STRING|BIGINT|INT|BOOLEAN|TIMESTAMP)"
    return (re.findall(rf"^\s+(\w+)\s+{kinds}\b", body, re.M)
            + re.findall(rf"(\w+) {kinds}", partitions.split(")")[0]))
