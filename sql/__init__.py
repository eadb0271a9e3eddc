"""Bazaar's SQL as package data: one query a file, DDL in `ddl/`, views in `views/`,
the seed's four questions verbatim in `seed/` (see README.md beside this file)."""

from __future__ import annotations

from importlib import resources


def text(name: str) -> str:
    """The file `sql/<name>.sql` (`name` may hold a folder: `ddl/trades`, `seed/trade_count`)."""
    return resources.files(__name__).joinpath(f"{name}.sql").read_text()


def names(folder: str) -> list[str]:
    """The query names in a folder of `sql/`, sorted: `names("views")` -> `["views/trade_values"]`."""
    return sorted(f"{folder}/{p.name[:-4]}" for p in resources.files(__name__).joinpath(folder).iterdir()
                  if p.name.endswith(".sql"))
