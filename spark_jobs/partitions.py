"""A table's partitions as the metastore holds them, for the sinks and compaction: which exist,
where each one's folder is, and the one file compaction and retention touch when they move or
drop one (`Generation`), so the sinks look again."""

from __future__ import annotations

import json

from pyspark.sql import SparkSession

from spark_jobs import layout
from spark_jobs.hadoop import HadoopFs
from spark_jobs.settings import SinkSettings


def spec_sql(spec: dict[str, str]) -> str:
    return ", ".join(f"{c}='{v}'" for c, v in spec.items())


class Partitions:
    """A table's partitions and their folders: a partition a batch writes to for the first time is
    added (at its default folder); a known one's folder is looked up, and looked up again after a
    compaction moved one or retention dropped one (`forget`). The one place partitions are added."""

    def __init__(self, spark: SparkSession, settings: SinkSettings, table: str, prefix: dict[str, str] | None = None):
        self.spark, self.name, self.table = spark, f"{settings.database}.{table}", table
        self.warehouse, self.prefix = settings.warehouse_uri, prefix or {}
        self.columns = layout.PARTITION_COLUMNS[table]
        self.where: dict[tuple[str, ...], str] = {}
        self.in_flux: set[tuple[str, ...]] = set()  # partitions a compaction may be swapping: looked up every time
        self.known = self.listed()

    def listed(self) -> set[tuple[str, ...]]:
        rows = self.spark.sql(f"SHOW PARTITIONS {self.name}").collect()
        return {tuple(kv.split("=", 1)[1] for kv in r[0].split("/")) for r in rows}

    def specs(self) -> list[dict[str, str]]:
        """Every partition of the table, as {column: value}, sorted."""
        return [dict(zip(self.columns, v)) for v in sorted(self.known)]

    def forget(self, fs: HadoopFs) -> None:
        """Look every folder up again, and note which partitions a compaction is swapping (its journal
        not marked swapped yet, or left so by a compaction killed; its swap may land any moment)."""
        self.where.clear()
        self.known = self.listed()
        self.in_flux = set()
        folder = layout.journal_path(self.warehouse, self.table, {}).rsplit("/", 1)[0]
        for name, is_dir, _ in fs.list(folder):
            if not is_dir and name.endswith(".json") and not name.startswith("."):
                journal = json.loads(fs.read(f"{folder}/{name}"))
                if "swapped_at" not in journal:
                    self.in_flux.add(tuple(journal["spec"].values()))

    def touches(self, values: set[tuple[str, ...]]) -> bool:
        """Whether a batch that wrote these partitions (after the prefix's values) wrote one in flux."""
        return any((*self.prefix.values(), *v) in self.in_flux for v in values)

    def location(self, spec: dict[str, str]) -> str:
        """The partition's folder as the metastore holds it."""
        rows = self.spark.sql(f"DESCRIBE FORMATTED {self.name} PARTITION ({spec_sql(spec)})").collect()
        # the partition's own Location comes first; the table's follows, under "# Storage Information"
        return next(r.data_type for r in rows if r.col_name == "Location")

    def move(self, spec: dict[str, str], location: str) -> None:
        """Point the partition at another folder: one metastore call, atomic for readers."""
        self.spark.sql(f"ALTER TABLE {self.name} PARTITION ({spec_sql(spec)}) SET LOCATION '{location}'")

    def drop(self, spec: dict[str, str]) -> None:
        """Forget the partition in the metastore (an external table's files stay)."""
        self.spark.sql(f"ALTER TABLE {self.name} DROP IF EXISTS PARTITION ({spec_sql(spec)})")
        self.known.discard(tuple(spec.values()))

    def locate(self, values: set[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
        """The folder of each partition (values after the prefix's), added to the metastore if new."""
        out = {}
        for v in sorted(values):
            full = (*self.prefix.values(), *v)
            if full not in self.where or full in self.in_flux:
                spec = dict(zip(self.columns, full))
                if full not in self.known:
                    self.spark.sql(f"ALTER TABLE {self.name} ADD IF NOT EXISTS PARTITION ({spec_sql(spec)}) "
                                   f"LOCATION '{layout.default_location(self.warehouse, self.table, spec)}'")
                    self.known.add(full)
                self.where[full] = self.location(spec)
            out[v] = self.where[full]
        return out


class Generation:
    """Compaction and retention touch one file whenever they move or drop a partition; a sink that
    sees it change looks its partitions up again before it moves a batch's files into them."""

    def __init__(self, fs: HadoopFs, warehouse: str):
        self.fs, self.path, self.seen = fs, layout.generation_path(warehouse), None

    def changed(self) -> bool:
        now = self.fs.mtime(self.path)
        changed, self.seen = now != self.seen, now
        return changed

    def touch(self) -> None:
        self.fs.write(self.path, "")
