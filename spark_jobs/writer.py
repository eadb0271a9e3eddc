"""Exactly-once Parquet output for a micro-batch, on any Hadoop file system.

A streaming query that is killed may re-run its last micro-batch.  Spark's own
file sink hides the first attempt's files only from readers of its
`_spark_metadata` log; Hive and Trino list directories, so they would see both.
So each batch is written to a staging folder, then moved into each partition's
folder as the metastore holds it (`locate`: compaction may have moved a day),
under names fixed by the sink's run and the batch id
(`batch-<run>-<batch>-<n>.parquet`, `spark_jobs.layout`).  A retried batch first
deletes what an earlier attempt of the same run left: never a file of another
run, so a sink whose checkpoint was lost cannot delete what it wrote before.
The batch is committed (and never written again) when the sink records it in
its commit log (`spark_jobs.commits`), after every table's files are in place.
"""

from __future__ import annotations

from typing import Callable

from pyspark.sql import DataFrame

from spark_jobs import layout
from spark_jobs.hadoop import HadoopFs

SMALL_BATCH_ROWS = 200_000
Locate = Callable[[set[tuple[str, ...]]], dict[tuple[str, ...], str]]


class BatchWriter:
    """One table's writer (its `prefix` partition of it, for quarantine's `source`)."""

    def __init__(self, fs: HadoopFs, warehouse: str, table: str, partition_cols: list[str],
                 prefix: dict[str, str] | None = None):
        self.fs, self.warehouse, self.table = fs, warehouse.rstrip("/"), table
        self.partition_cols, self.prefix = partition_cols, prefix or {}
        own = "-".join([table, *self.prefix.values()])
        self.placed: dict[tuple[str, ...], tuple[str, list[str]]] = {}  # the last batch's files, by partition
        self.staging_uri = f"{self.warehouse}/_staging/{own}"

    def remove(self, run: str, after: int = -1, batch_id: int | None = None) -> int:
        """Delete the files of `run` in this table: of one batch, or of every batch after `after`
        (what a run left of batches it never committed). Returns how many."""
        return self.remove_where(lambda r, b: r == run and b > after, run, batch_id)

    def remove_where(self, doomed, run: str | None = None, batch_id: int | None = None) -> int:
        """Delete the files of this table's batches for which `doomed(run, batch)` holds, listing again
        until none is left (compaction may be moving one from an old folder meanwhile)."""
        gone = 0
        for _ in range(5):
            found = [uri for pattern in layout.batch_globs(self.warehouse, self.table, self.prefix,
                                                             run or "*", batch_id)
                     for uri in self.fs.glob(pattern)
                     if (p := layout.parse_batch_file(uri.rsplit("/", 1)[1])) and p[0] and doomed(*p)]
            if not found:
                return gone
            gone += sum(self.fs.delete(uri) for uri in found)
        raise OSError(f"files of {self.table} still there after five attempts to delete them")

    def clear_staging(self) -> None:
        """Staging folders left by batches cut short (only this writer writes under its own)."""
        self.fs.delete(self.staging_uri, True)

    def write(self, df: DataFrame, run: str, batch_id: int, rows: int, locate: Locate,
              retry: bool = False) -> set[tuple[str, ...]]:
        """Write the batch, expected to hold about `rows` rows (it only shapes the output files), into the
        partitions' folders `locate` gives; `retry`: an earlier attempt of it may have left files.
        Returns the partition values (as tuples, after the prefix's) it wrote to."""
        staging = f"{self.staging_uri}/{run}-{batch_id}"
        # a small batch goes out as one task, without a shuffle; a large one a task per day
        shaped = df.coalesce(1) if rows < SMALL_BATCH_ROWS else df.repartition(*self.partition_cols)
        shaped.write.mode("overwrite").partitionBy(*self.partition_cols).parquet(staging)
        if retry:
            self.remove(run, batch_id=batch_id)
        root_len = len(self.fs.qualified(staging)) + 1
        staged: dict[tuple[str, ...], list[str]] = {}
        for uri in sorted(self.fs.files(staging)):
            if uri.endswith(".parquet"):
                rel_dir = uri[root_len:].rsplit("/", 1)[0]
                staged.setdefault(tuple(part.split("=", 1)[1] for part in rel_dir.split("/")), []).append(uri)
        where = locate(set(staged)) if staged else {}
        n, self.placed = 0, {}
        for values, files in sorted(staged.items()):
            self.fs.mkdirs(where[values])
            for uri in files:
                name = layout.batch_file(run, batch_id, n)
                self.fs.rename(uri, f"{where[values]}/{name}")
                self.placed.setdefault(values, (where[values], []))[1].append(name)
                n += 1
        self.fs.delete(staging, True)
        return set(staged)

    def follow(self, locate: Locate) -> int:
        """After a compaction swapped a partition while this batch was being written: its files that
        went to the old folder, moved to the partition's folder now (those compaction already moved
        are not there any more). Returns how many moved."""
        moved = 0
        for values, now in locate(set(self.placed)).items():
            was, names = self.placed[values]
            if self.fs.qualified(was) != self.fs.qualified(now):
                self.fs.mkdirs(now)
                for name in names:
                    if self.fs.exists(f"{now}/{name}"):
                        continue  # compaction moved it already
                    if not self.fs.move(f"{was}/{name}", f"{now}/{name}"):
                        # gone from both folders (an old folder deleted under it): the batch is not
                        # committed, so failing it makes its retry write it again
                        raise OSError(f"{name} of this batch is neither in {was} nor in {now}")
                    moved += 1
        return moved
