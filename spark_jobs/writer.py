"""Exactly-once Parquet output for a micro-batch, on any Hadoop file system.

A streaming query that is killed may re-run its last micro-batch.  Spark's own
file sink hides the first attempt's files only from readers of its
`_spark_metadata` log; Hive and Trino list directories, so they would see both.
So each batch is written to a staging folder, then moved into the table under
names fixed by the batch id (`batch-<id>-<n>.parquet`), after deleting whatever
an earlier attempt of the same batch left there.  Re-running a batch replaces
its files; readers never see a row twice once a batch is done.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

SMALL_BATCH_ROWS = 200_000


class BatchWriter:
    def __init__(self, spark: SparkSession, table_uri: str, staging_uri: str, partition_cols: list[str]):
        self.spark = spark
        self.table_uri = table_uri.rstrip("/")
        self.staging_uri = staging_uri.rstrip("/")
        self.partition_cols = partition_cols
        jvm = spark._jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        self.fs = self._Path(self.table_uri).getFileSystem(spark._jsc.hadoopConfiguration())

    def _batch_glob(self, batch_id: int) -> str:
        depth = "/".join("*" for _ in self.partition_cols)
        return f"{self.table_uri}/{depth}/batch-{batch_id:012d}-*.parquet"

    def write(self, df: DataFrame, batch_id: int, rows: int) -> set[tuple[str, ...]]:
        """Write the batch, expected to hold about `rows` rows (it only shapes the output files);
        returns the partition values (as tuples) it wrote to."""
        staging = f"{self.staging_uri}/batch={batch_id}"
        # a small batch goes out as one task, without a shuffle; a large one a task per day
        shaped = df.coalesce(1) if rows < SMALL_BATCH_ROWS else df.repartition(*self.partition_cols)
        shaped.write.mode("overwrite").partitionBy(*self.partition_cols).parquet(staging)
        for old in self.fs.globStatus(self._Path(self._batch_glob(batch_id))) or []:
            self.fs.delete(old.getPath(), False)
        staged = self._Path(staging)
        root_len = len(self.fs.makeQualified(staged).toString()) + 1
        files = []
        it = self.fs.listFiles(staged, True)
        while it.hasNext():
            path = it.next().getPath()
            if path.getName().endswith(".parquet"):
                files.append(path)
        partitions: set[tuple[str, ...]] = set()
        for n, path in enumerate(sorted(files, key=lambda p: p.toString())):
            rel_dir = path.getParent().toString()[root_len:]
            target_dir = self._Path(f"{self.table_uri}/{rel_dir}")
            self.fs.mkdirs(target_dir)
            self.fs.rename(path, self._Path(target_dir, f"batch-{batch_id:012d}-{n:05d}.parquet"))
            partitions.add(tuple(part.split("=", 1)[1] for part in rel_dir.split("/")))
        self.fs.delete(staged, True)
        return partitions
